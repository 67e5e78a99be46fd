"""G.711 u-law (PCMU, PT 0) and A-law (PCMA, PT 8), vectorized with lookup tables.

Encoding is one table lookup per sample: a 65536-entry table indexed by the
16-bit PCM value seen as unsigned. The tables are computed once at import from
the ITU-T G.191 reference algorithm (the one's-complement magnitude of negative
samples, which makes the quantizer symmetric); A-law matches Python's audioop
exactly, u-law matches it except on 508 negative decision boundaries where
audioop rounds the magnitude the other way. Decoding is a 256-entry table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 8000
SAMPLES_PER_MS = SAMPLE_RATE // 1000
ALLOWED_PTIMES = (10, 20, 30, 40, 60)


class CodecError(ValueError):
    """Unknown payload type, bad ptime, or audio that is not 16-bit PCM."""


def _ulaw_encode_table() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32)
    magnitude = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    magnitude = np.minimum(magnitude, 0x1FFF)
    # segment = 1 + number of significant bits of (magnitude >> 6)
    segment = np.ones_like(magnitude)
    shifted = magnitude >> 6
    while np.any(shifted):
        segment += shifted != 0
        shifted >>= 1
    high = 8 - segment
    low = 15 - ((magnitude >> segment) & 0xF)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    return _index_by_unsigned(code.astype(np.uint8))


def _alaw_encode_table() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32)
    magnitude = np.where(x < 0, (~x) >> 4, x >> 4)
    exponent = np.zeros_like(magnitude)
    mantissa = magnitude.copy()
    big = magnitude > 15
    exponent[big] = 1
    while True:
        more = mantissa > 31
        if not np.any(more):
            break
        mantissa = np.where(more, mantissa >> 1, mantissa)
        exponent += more
    code = np.where(big, (mantissa - 16) + (exponent << 4), magnitude)
    code = np.where(x >= 0, code | 0x80, code)
    return _index_by_unsigned((code ^ 0x55).astype(np.uint8))


def _index_by_unsigned(codes_from_minus_32768: np.ndarray) -> np.ndarray:
    """Reorder so that table[pcm.view(uint16)] is the code of pcm."""
    return np.roll(codes_from_minus_32768, -32768)


def _ulaw_decode_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32)
    inverted = ~code & 0xFF
    exponent = (inverted >> 4) & 0x7
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    return np.where(code < 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (code & 0x70) >> 4
    mantissa = code & 0x0F
    value = np.where(exponent > 0, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
                     (mantissa << 4) + 8)
    return np.where(code & 0x80, value, -value).astype(np.int16)


ULAW_ENCODE = _ulaw_encode_table()
ALAW_ENCODE = _alaw_encode_table()
ULAW_DECODE = _ulaw_decode_table()
ALAW_DECODE = _alaw_decode_table()
for _table in (ULAW_ENCODE, ALAW_ENCODE, ULAW_DECODE, ALAW_DECODE):
    _table.setflags(write=False)


def _as_pcm(pcm) -> np.ndarray:
    array = np.asarray(pcm)
    if array.dtype != np.int16:
        raise CodecError(f"PCM must be int16 samples, got {array.dtype}")
    return array


def _as_codes(data) -> np.ndarray:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    array = np.asarray(data)
    if array.dtype != np.uint8:
        raise CodecError(f"G.711 data must be bytes or uint8, got {array.dtype}")
    return array


@dataclass(frozen=True, eq=False, repr=False)  # compared and hashed by identity: one instance per codec
class G711Codec:
    name: str
    payload_type: int
    encode_table: np.ndarray
    decode_table: np.ndarray
    silence_byte: int  # the code that decodes closest to zero
    clock_rate: int = SAMPLE_RATE

    def encode_array(self, pcm) -> np.ndarray:
        """int16 PCM of any shape -> uint8 codes of the same shape."""
        return self.encode_table[_as_pcm(pcm).view(np.uint16)]

    def decode_array(self, data) -> np.ndarray:
        """bytes or uint8 codes of any shape -> int16 PCM of the same shape."""
        return self.decode_table[_as_codes(data)]

    def encode(self, pcm) -> bytes:
        return self.encode_array(pcm).tobytes()

    def decode(self, data) -> np.ndarray:
        return self.decode_array(data)

    def silence(self, samples: int) -> bytes:
        return bytes([self.silence_byte]) * samples

    def __repr__(self) -> str:
        return f"<G711Codec {self.name} PT {self.payload_type}>"


PCMU = G711Codec("PCMU", 0, ULAW_ENCODE, ULAW_DECODE, 0xFF)
PCMA = G711Codec("PCMA", 8, ALAW_ENCODE, ALAW_DECODE, 0xD5)
CODECS_BY_PAYLOAD_TYPE = {0: PCMU, 8: PCMA}
CODECS_BY_NAME = {"PCMU": PCMU, "PCMA": PCMA}


def codec_for_payload_type(payload_type: int) -> G711Codec:
    try:
        return CODECS_BY_PAYLOAD_TYPE[payload_type]
    except KeyError:
        raise CodecError(f"payload type {payload_type!r} is not G.711 (expected 0 or 8)") from None


def samples_per_packet(ptime_ms: int) -> int:
    if ptime_ms not in ALLOWED_PTIMES:
        raise CodecError(f"ptime {ptime_ms!r} ms is not one of {ALLOWED_PTIMES}")
    return ptime_ms * SAMPLES_PER_MS


def packetize(encoded: bytes, ptime_ms: int, codec: G711Codec | None = None) -> list[bytes]:
    """Split encoded G.711 into payloads of ptime each; a short last one is padded with
    the codec's silence when a codec is given, else kept short."""
    size = samples_per_packet(ptime_ms)
    payloads = [encoded[i:i + size] for i in range(0, len(encoded), size)]
    if codec is not None and payloads and len(payloads[-1]) < size:
        payloads[-1] += codec.silence(size - len(payloads[-1]))
    return payloads


ULAW_TO_ALAW = PCMA.encode_array(ULAW_DECODE)
ULAW_TO_ALAW.setflags(write=False)


def ulaw_to_alaw(data: bytes) -> bytes:
    """Transcode through the PCM value, as a PCMA leg fed from u-law prompts needs."""
    return ULAW_TO_ALAW[_as_codes(data)].tobytes()
