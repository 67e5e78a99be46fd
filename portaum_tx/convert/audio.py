"""Audio formats at the edges of the system.

Inside, audio is either G.711 u-law bytes (prompts, RTP) or 16-bit PCM at 8 kHz mono as a
numpy int16 array (recordings, DSP). This module turns those into what users download (WAV,
MP3), and turns what operators upload (WAV, AIFF, AU, MP3, OGG, FLAC, GSM, raw) into a prompt
(.au, u-law 8 kHz mono). Uploads are untrusted: their type is sniffed from the content, their
size is checked before anything is decoded, and every decoding failure becomes an
AudioFormatError whose message says what was received.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from typing import Optional, Union

import lameenc
import magic
import numpy as np
import soundfile
import soxr

from portaum_tx.rtp.codecs import PCMU

SAMPLE_RATE = 8000

AU_MAGIC = b".snd"
AU_HEADER = struct.Struct(">4sIIIII")
AU_UNKNOWN_SIZE = 0xFFFFFFFF
AU_ENCODING_ULAW = 1

DEFAULT_MAX_UPLOAD_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_SECONDS = 600.0
# What a declared header may claim before we believe it enough to allocate for it.
MIN_RATE, MAX_RATE = 1000, 384000
MAX_CHANNELS = 32
BLOCK_SAMPLES = 1 << 18

# Content types libmagic reports for the containers libsndfile decodes.
_CONTAINERS = {
    "audio/x-wav": "WAV", "audio/wav": "WAV", "audio/vnd.wave": "WAV", "audio/x-w64": "WAV",
    "audio/x-aiff": "AIFF", "audio/aiff": "AIFF",
    "audio/basic": "AU",
    "audio/mpeg": "MP3", "audio/mp3": "MP3",
    "audio/ogg": "OGG", "application/ogg": "OGG", "audio/x-vorbis+ogg": "OGG", "audio/x-opus+ogg": "OGG",
    "audio/flac": "FLAC", "audio/x-flac": "FLAC",
}
# Headerless formats: the uploader has to say which one it is.
RAW_FORMATS = {
    "s16le": ("RAW", "PCM_16", "LITTLE"),
    "ulaw": ("RAW", "ULAW", None),
    "alaw": ("RAW", "ALAW", None),
    "gsm": ("RAW", "GSM610", None),
}


class AudioFormatError(ValueError):
    """Audio that cannot be read or written as asked; the message names what was received."""


class AudioTooLargeError(AudioFormatError):
    """An upload over the configured size or length limit."""


# ---------------------------------------------------------------- G.711 and .au

def ulaw_to_pcm16(data: Union[bytes, bytearray, memoryview]) -> np.ndarray:
    return PCMU.decode_array(data)


def pcm16_to_ulaw(pcm: np.ndarray) -> bytes:
    return PCMU.encode(_as_pcm16(pcm))


@dataclass(frozen=True)
class AuHeader:
    data_offset: int
    data_size: int
    encoding: int
    sample_rate: int
    channels: int


def read_au(data: bytes) -> tuple[AuHeader, bytes]:
    """Parse a Sun .au file into its header and the sample bytes (not converted)."""
    if len(data) < AU_HEADER.size:
        raise AudioFormatError(f"not a .au file: {len(data)} bytes is shorter than the 24-byte header")
    magic_bytes, offset, size, encoding, rate, channels = AU_HEADER.unpack_from(data)
    if magic_bytes != AU_MAGIC:
        raise AudioFormatError(f"not a .au file: starts with {magic_bytes!r}, expected {AU_MAGIC!r}")
    if offset < AU_HEADER.size or offset > len(data):
        raise AudioFormatError(f"bad .au header: data offset {offset} in a file of {len(data)} bytes")
    available = len(data) - offset
    if size == AU_UNKNOWN_SIZE:
        size = available
    elif size > available:
        raise AudioFormatError(f"truncated .au file: header announces {size} data bytes, {available} present")
    if rate == 0 or channels == 0:
        raise AudioFormatError(f"bad .au header: {rate} Hz, {channels} channels")
    return AuHeader(offset, size, encoding, rate, channels), bytes(data[offset:offset + size])


def make_au(ulaw: Union[bytes, bytearray]) -> bytes:
    """u-law 8 kHz mono samples -> a .au file."""
    return AU_HEADER.pack(AU_MAGIC, AU_HEADER.size, len(ulaw), AU_ENCODING_ULAW, SAMPLE_RATE, 1) + bytes(ulaw)


def au_to_pcm16(data: bytes) -> np.ndarray:
    """A u-law 8 kHz mono .au file (a prompt) -> PCM."""
    header, payload = read_au(data)
    if (header.encoding, header.sample_rate, header.channels) != (AU_ENCODING_ULAW, SAMPLE_RATE, 1):
        raise AudioFormatError(f".au file is encoding {header.encoding}, {header.sample_rate} Hz, "
                               f"{header.channels} channel(s); expected u-law (1), 8000 Hz, mono")
    return ulaw_to_pcm16(payload)


# ---------------------------------------------------------------- downloads

def pcm16_to_wav(pcm: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """PCM mono -> a canonical 44-byte-header RIFF WAVE file (16-bit PCM)."""
    samples = _as_pcm16(pcm).astype("<i2", copy=False).tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(samples), b"WAVE", b"fmt ", 16,
                         1, 1, sample_rate, sample_rate * 2, 2, 16, b"data", len(samples))
    return header + samples


def pcm16_to_mp3(pcm: np.ndarray, sample_rate: int = SAMPLE_RATE, bitrate_kbps: int = 32,
                 encode_rate: int = 16000) -> bytes:
    """PCM mono -> MP3 (mono, CBR).

    8 kHz MP3 exists only as the unofficial MPEG-2.5, which some phones and players refuse, so
    the audio is resampled to 16 kHz (MPEG-2) first by default; 32 kbit/s is plenty for speech.
    """
    pcm = _as_pcm16(pcm)
    if encode_rate != sample_rate:
        pcm = soxr.resample(pcm, sample_rate, encode_rate, quality="HQ")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate_kbps)
    encoder.set_in_sample_rate(encode_rate)
    encoder.set_channels(1)
    encoder.set_quality(5)
    return bytes(encoder.encode(pcm.tobytes()) + encoder.flush())


def ulaw_to_wav(ulaw: bytes) -> bytes:
    return pcm16_to_wav(ulaw_to_pcm16(ulaw))


def ulaw_to_mp3(ulaw: bytes, **options) -> bytes:
    return pcm16_to_mp3(ulaw_to_pcm16(ulaw), **options)


# ---------------------------------------------------------------- uploads

def sniff(data: bytes) -> tuple[str, str]:
    """(MIME type, human description) of some bytes, from their content."""
    head = bytes(data[:65536])
    return magic.from_buffer(head, mime=True), magic.from_buffer(head)


def describe(description: str) -> str:
    """'PNG image data, 4 x 4, ...' -> 'a PNG image'."""
    what = description.split(",", 1)[0].split(" - ", 1)[0].strip()[:60]
    if what.endswith(" data") and len(what) > 5:
        what = what[:-5]
    what = what or "unrecognised data"
    return ("an " if what[0].lower() in "aeiou" else "a ") + what


def decode_upload(data: bytes, declared: Optional[str] = None, *,
                  raw_rate: int = SAMPLE_RATE,
                  max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                  max_seconds: float = DEFAULT_MAX_SECONDS,
                  normalise: bool = True) -> np.ndarray:
    """An uploaded audio file -> PCM int16, 8 kHz mono.

    Containers (WAV, AIFF, AU, MP3, OGG, FLAC, and GSM inside WAV) are recognised by content;
    headerless audio must be declared as one of RAW_FORMATS ('s16le', 'ulaw', 'alaw', 'gsm'),
    at raw_rate. The size limit is checked before decoding, the length limit before most of it.
    """
    if not data:
        raise AudioFormatError("uploaded file is empty")
    if len(data) > max_bytes:
        raise AudioTooLargeError(f"uploaded file is {len(data)} bytes; the limit is {max_bytes}")
    if declared is not None and not isinstance(declared, str):
        raise AudioFormatError(f"declared audio type must be a name such as 'wav' or 's16le', "
                               f"got {type(declared).__name__}")
    declared = declared.strip().lower().lstrip(".") if declared else None
    if declared in RAW_FORMATS:
        container, subtype, endian = RAW_FORMATS[declared]
        options = dict(format=container, subtype=subtype, endian=endian, samplerate=raw_rate, channels=1)
        label = f"raw {declared}"
    else:
        mime, description = sniff(data)
        container = _CONTAINERS.get(mime)
        if container is None:
            if mime.startswith("audio/"):
                raise AudioFormatError(f"uploaded file is {describe(description)} ({mime}), an audio "
                                       f"format that is not supported")
            if mime in ("application/octet-stream", "application/x-empty"):
                raise AudioFormatError(
                    "uploaded file is not a recognised audio format; headerless audio must be "
                    "declared as one of " + ", ".join(sorted(RAW_FORMATS)))
            raise AudioFormatError(f"uploaded file is {describe(description)}, not audio")
        options = {}
        label = container
    pcm = _decode(data, label, options, max_seconds)
    if normalise:
        pcm = normalise_level(pcm)
    return _to_pcm16(pcm)


def upload_to_au(data: bytes, declared: Optional[str] = None, **options) -> bytes:
    """An uploaded audio file -> a prompt (.au, u-law 8 kHz mono)."""
    return make_au(pcm16_to_ulaw(decode_upload(data, declared, **options)))


def _decode(data: bytes, label: str, options: dict, max_seconds: float) -> np.ndarray:
    """Decode block by block, mixing to mono and resampling to 8 kHz on the way, so that
    memory holds only the 8 kHz result however long or wide the input."""
    chunks = []
    # libsndfile rejects corrupt input in many ways (and MP3/Vorbis decoders raise from deep
    # inside); whatever it raises on untrusted bytes is a format error of the upload.
    try:
        with soundfile.SoundFile(io.BytesIO(data), **options) as source:
            rate, channels = source.samplerate, source.channels
            if not (MIN_RATE <= rate <= MAX_RATE and 1 <= channels <= MAX_CHANNELS):
                raise AudioFormatError(f"uploaded {label} file declares {rate} Hz, {channels} channels; "
                                       f"accepted are {MIN_RATE}-{MAX_RATE} Hz, 1-{MAX_CHANNELS} channels")
            block_frames = max(1024, BLOCK_SAMPLES // channels)
            limit = int(max_seconds * rate)
            if source.frames > limit and label != "MP3":  # an MP3's frame count is only an estimate
                raise AudioTooLargeError(f"uploaded recording is {source.frames / rate:.0f} s long; "
                                         f"the limit is {max_seconds:.0f} s")
            resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ") \
                if rate != SAMPLE_RATE else None
            read = 0
            while True:
                # read() rather than blocks(): GSM 6.10 streams are not seekable
                block = source.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    break
                read += len(block)
                if read > limit:
                    raise AudioTooLargeError(f"uploaded recording is longer than the limit of "
                                             f"{max_seconds:.0f} s")
                mono = block.mean(axis=1) if channels > 1 else block[:, 0]
                chunks.append(resampler.resample_chunk(mono) if resampler else mono.copy())
            if resampler:
                chunks.append(resampler.resample_chunk(np.zeros(0, dtype="float32"), last=True))
    except AudioFormatError:
        raise
    except Exception as e:
        reason = re.sub(r"^Error opening <[^>]*>: ", "", str(e)) or type(e).__name__
        raise AudioFormatError(f"uploaded {label} file could not be decoded: {reason}") from None
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype="float32")
    if not len(pcm):
        raise AudioFormatError(f"uploaded {label} file contains no audio")
    return pcm


def normalise_level(pcm: np.ndarray, target_rms: float = 0.1, target_peak: float = 0.89,
                    max_gain: float = 4.0) -> np.ndarray:
    """Remove DC and raise quiet recordings toward -20 dBFS RMS, by at most +12 dB and never
    past -1 dBFS peak. Loud recordings are left alone: attenuating is not "gentle"."""
    x = pcm.astype(np.float32) / 32768.0 if pcm.dtype == np.int16 else pcm.astype(np.float32, copy=True)
    if not len(x):
        return x
    x -= x.mean()
    peak = float(np.abs(x).max())
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if peak < 1e-4 or rms < 1e-5:
        return x
    gain = max(1.0, min(max_gain, target_rms / rms, target_peak / peak))
    return x * np.float32(gain)


def _to_pcm16(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.int16:
        return x
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)  # corrupt compressed input can decode to NaN
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


def _as_pcm16(pcm) -> np.ndarray:
    array = np.asarray(pcm)
    if array.dtype != np.int16 or array.ndim != 1:
        raise AudioFormatError(f"expected mono int16 PCM (1-D), got {array.dtype} of shape {array.shape}")
    return array


__all__ = [
    "AudioFormatError", "AudioTooLargeError", "AuHeader", "RAW_FORMATS", "SAMPLE_RATE",
    "au_to_pcm16", "decode_upload", "describe", "make_au", "normalise_level", "pcm16_to_mp3",
    "pcm16_to_ulaw", "pcm16_to_wav", "read_au", "sniff", "ulaw_to_mp3", "ulaw_to_pcm16",
    "ulaw_to_wav", "upload_to_au",
]
