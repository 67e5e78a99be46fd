import warnings

import numpy as np
from twisted.trial import unittest

from portaum_tx.rtp.codecs import (
    PCMA, PCMU, CodecError, codec_for_payload_type, packetize, samples_per_packet, ulaw_to_alaw,
)


def itu_ulaw_compress(x):
    """Scalar transliteration of ulaw_compress() from the ITU-T G.191 STL g711.c."""
    absno = (((~x) >> 2) if x < 0 else (x >> 2)) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i:
        segno += 1
        i >>= 1
    code = ((8 - segno) << 4) | (15 - ((absno >> segno) & 15))
    return code | 0x80 if x >= 0 else code


def itu_ulaw_expand(code):
    sign = -1 if code < 0x80 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 7
    step = 4 << (exponent + 1)
    return sign * ((0x80 << exponent) + step * (mantissa & 15) + step // 2 - 4 * 33)


def itu_alaw_compress(x):
    ix = ((~x) >> 4) if x < 0 else (x >> 4)
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


def itu_alaw_expand(code):
    ix = code ^ 0x55
    sign = ix & 0x80
    ix &= 0x7F
    iexp = ix >> 4
    mant = ix & 15
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 8
    if iexp > 1:
        mant <<= iexp - 1
    return mant if sign else -mant


ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)


class G711Tests(unittest.TestCase):
    def test_ulaw_encode_matches_itu_reference_for_every_sample(self):
        reference = np.array([itu_ulaw_compress(int(x)) for x in ALL_PCM], dtype=np.uint8)
        np.testing.assert_array_equal(PCMU.encode_array(ALL_PCM), reference)

    def test_alaw_encode_matches_itu_reference_for_every_sample(self):
        reference = np.array([itu_alaw_compress(int(x)) for x in ALL_PCM], dtype=np.uint8)
        np.testing.assert_array_equal(PCMA.encode_array(ALL_PCM), reference)

    def test_decode_matches_itu_reference(self):
        codes = np.arange(256, dtype=np.uint8)
        np.testing.assert_array_equal(PCMU.decode_array(codes), [itu_ulaw_expand(c) for c in range(256)])
        np.testing.assert_array_equal(PCMA.decode_array(codes), [itu_alaw_expand(c) for c in range(256)])

    def test_against_audioop_where_available(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import audioop
            except ImportError:  # removed from Python 3.13; the ITU tests above still hold
                audioop = None
        codes = bytes(range(256))
        if audioop is None:
            self.assertEqual(PCMU.decode_array(codes)[0xFF], 0)
            return
        raw = ALL_PCM.tobytes()
        self.assertEqual(PCMA.encode(ALL_PCM), audioop.lin2alaw(raw, 2))
        self.assertEqual(PCMA.decode(codes).tobytes(), audioop.alaw2lin(codes, 2))
        self.assertEqual(PCMU.decode(codes).tobytes(), audioop.ulaw2lin(codes, 2))
        ours = PCMU.encode_array(ALL_PCM)
        theirs = np.frombuffer(audioop.lin2ulaw(raw, 2), np.uint8)
        differ = ALL_PCM[ours != theirs]
        # audioop negates before shifting; G.191 takes the one's complement. Only the
        # decision points of negative samples differ, by one code step.
        self.assertEqual(len(differ), 508)
        self.assertTrue(np.all(differ < 0))
        self.assertTrue(np.all(np.abs(ours[ours != theirs].astype(int) - theirs[ours != theirs]) == 1))

    def test_known_values(self):
        self.assertEqual(PCMU.encode(np.array([0, 32767, -32768], np.int16)), b"\xff\x80\x00")
        self.assertEqual(PCMA.encode(np.array([0, 32767, -32768], np.int16)), b"\xd5\xaa\x2a")
        np.testing.assert_array_equal(PCMU.decode(b"\xff\x7f\x80\x00"), [0, 0, 32124, -32124])
        np.testing.assert_array_equal(PCMA.decode(b"\xd5\x55\xaa"), [8, -8, 32256])

    def test_roundtrip_error_is_small_and_vectorized_shape_kept(self):
        pcm = (np.sin(np.arange(1000 * 160) * 0.05) * 20000).astype(np.int16).reshape(1000, 160)
        for codec in (PCMU, PCMA):
            codes = codec.encode_array(pcm)
            self.assertEqual(codes.shape, (1000, 160))
            back = codec.decode_array(codes).astype(float)
            snr = 10 * np.log10(np.sum(pcm.astype(float) ** 2) / np.sum((back - pcm) ** 2))
            self.assertGreater(snr, 33)

    def test_transcoding_table(self):
        self.assertEqual(ulaw_to_alaw(b"\xff\x80\x00"), PCMA.encode(PCMU.decode(b"\xff\x80\x00")))

    def test_payload_types_and_errors(self):
        self.assertIs(codec_for_payload_type(0), PCMU)
        self.assertIs(codec_for_payload_type(8), PCMA)
        with self.assertRaisesRegex(CodecError, "payload type 18"):
            codec_for_payload_type(18)
        with self.assertRaisesRegex(CodecError, "int16"):
            PCMU.encode(np.zeros(4, np.float32))
        with self.assertRaisesRegex(CodecError, "ptime 25"):
            samples_per_packet(25)

    def test_packetize(self):
        self.assertEqual([samples_per_packet(p) for p in (10, 20, 30)], [80, 160, 240])
        data = bytes(range(200)) * 3  # 600 samples
        self.assertEqual([len(p) for p in packetize(data, 20)], [160, 160, 160, 120])
        padded = packetize(data, 30, PCMU)
        self.assertEqual([len(p) for p in padded], [240, 240, 240])
        self.assertEqual(padded[-1][120:], b"\xff" * 120)
        self.assertEqual(b"".join(packetize(data, 10)), data)

    def test_decode_then_encode_is_lossless(self):
        # a bridge between two legs of the same codec decodes and re-encodes every frame
        codes = np.arange(256, dtype=np.uint8)
        for codec in (PCMU, PCMA):
            reencoded = codec.encode_array(codec.decode_array(codes))
            if codec is PCMU:
                # 0x7F (-0) and 0xFF (+0) both decode to 0, which encodes as +0
                self.assertEqual(int(reencoded[0x7F]), 0xFF)
                reencoded[0x7F] = 0x7F
            np.testing.assert_array_equal(reencoded, codes)
