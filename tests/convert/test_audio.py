import io
import struct
import wave

import numpy as np
import soundfile
from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.convert.audio import (
    RAW_FORMATS, AudioFormatError, AudioTooLargeError, au_to_pcm16, decode_upload, make_au,
    normalise_level, pcm16_to_mp3, pcm16_to_ulaw, pcm16_to_wav, read_au, sniff, ulaw_to_mp3,
    ulaw_to_pcm16, ulaw_to_wav, upload_to_au,
)

TONE_HZ = 440


class CloseMixin:
    def assertClose(self, actual, expected, delta, msg=None):
        self.assertTrue(abs(actual - expected) <= delta, f"{actual} is not {expected} +/- {delta} {msg or ''}")


def tone(seconds=1.0, rate=8000, level=0.4, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = (level * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def encode(data, rate, container, subtype, **options):
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format=container, subtype=subtype, **options)
    return buffer.getvalue()


def dominant_frequency(pcm, rate=8000):
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return np.argmax(spectrum) * rate / len(pcm)


def reference_ulaw(sample):
    """ITU-T G.191 ulaw_compress, one sample, as written in the reference."""
    absno = ((~sample) >> 2) + 33 if sample < 0 else (sample >> 2) + 33
    absno = min(absno, 0x1FFF)
    i, segno = absno >> 6, 1
    while i:
        segno += 1
        i >>= 1
    code = ((8 - segno) << 4) | (15 - ((absno >> segno) & 0xF))
    return code | 0x80 if sample >= 0 else code


# name -> (bytes, declared type or None, seconds)
def upload_samples():
    one = tone(1.0)
    samples = {
        "wav-pcm16-44k-stereo": (encode(tone(1.0, 44100, channels=2), 44100, "WAV", "PCM_16"), None),
        "wav-gsm": (encode(one, 8000, "WAV", "GSM610"), None),
        "wav-ulaw": (encode(one, 8000, "WAV", "ULAW"), None),
        "aiff": (encode(tone(1.0, 22050), 22050, "AIFF", "PCM_16"), None),
        "au-pcm16-16k": (encode(tone(1.0, 16000), 16000, "AU", "PCM_16"), None),
        "au-ulaw": (encode(one, 8000, "AU", "ULAW"), None),
        "mp3": (encode(tone(1.0, 16000), 16000, "MP3", "MPEG_LAYER_III"), None),
        "ogg-vorbis": (encode(tone(1.0, 22050), 22050, "OGG", "VORBIS"), None),
        "ogg-opus": (encode(tone(1.0, 48000), 48000, "OGG", "OPUS"), None),
        "flac": (encode(tone(1.0, 32000), 32000, "FLAC", "PCM_16"), None),
        "raw-s16le": ((one * 32767).astype("<i2").tobytes(), "s16le"),
        "raw-ulaw": (encode(one, 8000, "RAW", "ULAW"), "ulaw"),
        "raw-alaw": (encode(one, 8000, "RAW", "ALAW"), "alaw"),
        "raw-gsm": (encode(one, 8000, "RAW", "GSM610"), "gsm"),
    }
    return samples


SAMPLES = upload_samples()


class G711Tests(unittest.TestCase):
    def test_known_values(self):
        self.assertEqual(ulaw_to_pcm16(b"\x00\x80\xff\x7f").tolist(), [-32124, 32124, 0, 0])
        self.assertEqual(pcm16_to_ulaw(np.array([0, 32767, -32768, -1], dtype=np.int16)), b"\xff\x80\x00\x7f")

    def test_encoder_is_bit_exact_with_the_g191_reference(self):
        every = np.arange(-32768, 32768, dtype=np.int32)
        expected = bytes(reference_ulaw(int(s)) for s in every)
        self.assertEqual(pcm16_to_ulaw(every.astype(np.int16)), expected)

    def test_every_code_round_trips(self):
        codes = bytes(range(256))
        back = pcm16_to_ulaw(ulaw_to_pcm16(codes))
        # 0x7F is u-law's negative zero; it decodes to 0, which encodes as 0xFF
        self.assertEqual(back, codes[:0x7F] + b"\xff" + codes[0x80:])

    def test_rejects_what_is_not_mono_int16(self):
        self.assertRaises(AudioFormatError, pcm16_to_ulaw, np.zeros(4, dtype=np.float32))
        self.assertRaises(AudioFormatError, pcm16_to_wav, np.zeros((4, 2), dtype=np.int16))


class AuTests(unittest.TestCase):
    def test_round_trip(self):
        ulaw = bytes(range(256)) * 4
        header, payload = read_au(make_au(ulaw))
        self.assertEqual((header.encoding, header.sample_rate, header.channels, header.data_offset),
                         (1, 8000, 1, 24))
        self.assertEqual(payload, ulaw)
        self.assertEqual(au_to_pcm16(make_au(ulaw)).tolist(), ulaw_to_pcm16(ulaw).tolist())

    def test_unknown_data_size_means_to_the_end(self):
        data = bytearray(make_au(b"\x01\x02\x03"))
        data[8:12] = b"\xff\xff\xff\xff"
        self.assertEqual(read_au(bytes(data))[1], b"\x01\x02\x03")

    def test_errors(self):
        good = make_au(b"\x7f" * 100)
        cases = {
            b"": "shorter than",
            b"RIFF" + good[4:]: "not a .au file",
            good[:4] + struct.pack(">I", 4) + good[8:]: "data offset",
            good[:60]: "truncated",
            good[:16] + struct.pack(">II", 0, 1) + good[24:]: "0 Hz",
        }
        for data, words in cases.items():
            error = self.assertRaises(AudioFormatError, read_au, data)
            self.assertIn(words, str(error))
        pcm16_au = good[:12] + struct.pack(">I", 3) + good[16:]
        self.assertIn("expected u-law", str(self.assertRaises(AudioFormatError, au_to_pcm16, pcm16_au)))


class DownloadTests(CloseMixin, unittest.TestCase):
    def setUp(self):
        self.pcm = (tone(2.0) * 32767).astype(np.int16)

    def test_wav_is_readable_by_the_standard_library(self):
        data = pcm16_to_wav(self.pcm)
        with wave.open(io.BytesIO(data)) as w:
            self.assertEqual((w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()),
                             (1, 2, 8000, len(self.pcm)))
            frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        self.assertEqual(frames.tolist(), self.pcm.tolist())
        self.assertEqual(sniff(data)[0], "audio/x-wav")

    def test_mp3_is_mpeg2_16k_mono_and_keeps_the_tone(self):
        data = pcm16_to_mp3(self.pcm)
        self.assertIn("layer III", sniff(data)[1])
        self.assertIn("16 kHz", sniff(data)[1])
        decoded, rate = soundfile.read(io.BytesIO(data))
        self.assertEqual(rate, 16000)
        self.assertEqual(decoded.ndim, 1)
        self.assertClose(len(decoded) / rate, 2.0, delta=0.15)
        self.assertClose(dominant_frequency(decoded, rate), TONE_HZ, delta=5)
        # 32 kbit/s for 2 s is about 8 kB
        self.assertLess(len(data), 10000)

    def test_mp3_at_8k(self):
        data = pcm16_to_mp3(self.pcm, encode_rate=8000, bitrate_kbps=16)
        decoded, rate = soundfile.read(io.BytesIO(data))
        self.assertEqual(rate, 8000)
        self.assertClose(dominant_frequency(decoded, rate), TONE_HZ, delta=5)

    def test_from_ulaw(self):
        ulaw = pcm16_to_ulaw(self.pcm)
        self.assertEqual(ulaw_to_wav(ulaw)[44:], ulaw_to_pcm16(ulaw).astype("<i2").tobytes())
        self.assertEqual(sniff(ulaw_to_mp3(ulaw))[0], "audio/mpeg")

    def test_empty_audio(self):
        empty = np.zeros(0, dtype=np.int16)
        self.assertEqual(len(pcm16_to_wav(empty)), 44)
        self.assertIsInstance(pcm16_to_mp3(empty), bytes)


class UploadTests(CloseMixin, unittest.TestCase):
    def test_every_supported_format(self):
        for name, (data, declared) in SAMPLES.items():
            pcm = decode_upload(data, declared)
            self.assertEqual((pcm.dtype, pcm.ndim), (np.int16, 1), name)
            self.assertClose(len(pcm) / 8000, 1.0, delta=0.1, msg=name)
            self.assertClose(dominant_frequency(pcm), TONE_HZ, delta=10, msg=name)
            self.assertGreater(np.abs(pcm).max(), 5000, name)

    def test_upload_to_au_makes_a_prompt(self):
        data, _ = SAMPLES["ogg-vorbis"]
        header, payload = read_au(upload_to_au(data))
        self.assertEqual((header.encoding, header.sample_rate, header.channels), (1, 8000, 1))
        self.assertClose(dominant_frequency(ulaw_to_pcm16(payload)), TONE_HZ, delta=10)

    def test_declared_type_does_not_override_content(self):
        data, _ = SAMPLES["flac"]
        self.assertClose(len(decode_upload(data, declared="mp3")) / 8000, 1.0, delta=0.05)

    def test_declared_type_must_be_a_name(self):
        data, _ = SAMPLES["raw-s16le"]
        self.assertEqual(len(decode_upload(data, " S16LE ")), 8000)
        self.assertIn("declared audio type", str(self.assertRaises(AudioFormatError, decode_upload, data, 12)))

    def test_not_audio(self):
        from PIL import Image
        png = io.BytesIO()
        Image.new("RGB", (4, 4)).save(png, "PNG")
        cases = {
            png.getvalue(): "uploaded file is a PNG image, not audio",
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n": "uploaded file is a PDF document, not audio",
            b"Hello, this is my greeting.\n": "uploaded file is an ASCII text, not audio",
            b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk": "not supported",
            np.random.default_rng(7).bytes(2048): "not a recognised audio format",
        }
        for data, message in cases.items():
            error = self.assertRaises(AudioFormatError, decode_upload, data)
            self.assertIn(message, str(error))

    def test_empty(self):
        self.assertIn("empty", str(self.assertRaises(AudioFormatError, decode_upload, b"")))
        self.assertIn("empty", str(self.assertRaises(AudioFormatError, decode_upload, b"", "s16le")))

    def test_truncated_header(self):
        data, _ = SAMPLES["wav-pcm16-44k-stereo"]
        error = self.assertRaises(AudioFormatError, decode_upload, data[:30])
        self.assertEqual(str(error), "uploaded WAV file could not be decoded: Error in WAV file. No 'data' chunk marker.")
        error = self.assertRaises(AudioFormatError, decode_upload, data[:44])
        self.assertIn("contains no audio", str(error))

    def test_truncated_anywhere_is_audio_or_a_format_error(self):
        for name, (data, declared) in SAMPLES.items():
            for fraction in (0.01, 0.1, 0.5, 0.97):
                cut = data[:max(1, int(len(data) * fraction))]
                try:
                    pcm = decode_upload(cut, declared)
                except AudioFormatError:
                    continue
                self.assertEqual(pcm.dtype, np.int16, name)
                self.assertLessEqual(len(pcm), 8000 * 1.1, name)

    def test_size_is_checked_before_decoding(self):
        error = self.assertRaises(AudioTooLargeError, decode_upload, b"\x89PNG" + b"\0" * 2000, max_bytes=1000)
        self.assertIn("2004 bytes; the limit is 1000", str(error))

    def test_length_limit(self):
        three_seconds = encode(tone(3.0, 16000), 16000, "WAV", "PCM_16")
        error = self.assertRaises(AudioTooLargeError, decode_upload, three_seconds, max_seconds=2)
        self.assertIn("3 s long; the limit is 2 s", str(error))
        mp3 = encode(tone(3.0, 16000), 16000, "MP3", "MPEG_LAYER_III")
        self.assertRaises(AudioTooLargeError, decode_upload, mp3, max_seconds=2)
        raw = b"\0" * 8000 * 2 * 3
        self.assertRaises(AudioTooLargeError, decode_upload, raw, "s16le", max_seconds=2)
        self.assertEqual(len(decode_upload(raw, "s16le", max_seconds=3)), 24000)

    def test_absurd_headers_are_refused_before_allocating(self):
        wav = bytearray(encode(tone(0.1), 8000, "WAV", "PCM_16"))
        many_channels = bytes(wav[:22]) + struct.pack("<H", 500) + bytes(wav[24:])
        error = self.assertRaises(AudioFormatError, decode_upload, many_channels)
        self.assertIn("500 channels", str(error))
        self.assertRaises(AudioFormatError, decode_upload, b"\0" * 100, "s16le", raw_rate=100)

    def test_raw_rate(self):
        raw = (tone(1.0, 16000) * 32767).astype("<i2").tobytes()
        pcm = decode_upload(raw, "s16le", raw_rate=16000)
        self.assertEqual(len(pcm), 8000)
        self.assertClose(dominant_frequency(pcm), TONE_HZ, delta=10)
        self.assertEqual(sorted(RAW_FORMATS), ["alaw", "gsm", "s16le", "ulaw"])

    @settings(max_examples=60, deadline=None)
    @given(st.binary(min_size=1, max_size=3000), st.sampled_from([None, "s16le", "ulaw", "gsm", "wav"]))
    def test_arbitrary_bytes_never_raise_anything_else(self, data, declared):
        try:
            pcm = decode_upload(data, declared)
        except AudioFormatError:
            return
        self.assertEqual(pcm.dtype, np.int16)

    @settings(max_examples=30, deadline=None)
    @given(st.sampled_from(sorted(SAMPLES)), st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=8))
    def test_corrupted_uploads_never_raise_anything_else(self, name, offset, junk):
        data, declared = SAMPLES[name]
        offset = min(offset, len(data) - 1)
        corrupted = data[:offset] + junk + data[offset + len(junk):]
        try:
            decode_upload(corrupted, declared)
        except AudioFormatError:
            pass


class LevelTests(CloseMixin, unittest.TestCase):
    def test_quiet_recordings_are_raised_at_most_12_db(self):
        quiet = (tone(1.0, level=0.01) * 32767).astype(np.int16)
        louder = normalise_level(quiet)
        gain = np.abs(louder).max() / (np.abs(quiet).max() / 32768)
        self.assertClose(gain, 4.0, delta=0.05)

    def test_moderate_recordings_reach_the_target_without_clipping(self):
        x = tone(1.0, level=0.05)
        y = normalise_level(x)
        self.assertClose(float(np.sqrt(np.mean(y ** 2))), 0.1, delta=0.005)
        self.assertLessEqual(np.abs(y).max(), 0.89 + 1e-6)

    def test_loud_recordings_and_silence_are_left_alone(self):
        loud = tone(1.0, level=0.8)
        self.assertTrue(np.allclose(normalise_level(loud), loud - loud.mean()))
        silence = np.zeros(800, dtype=np.float32)
        self.assertEqual(np.abs(normalise_level(silence)).max(), 0)

    def test_dc_is_removed(self):
        offset = tone(1.0, level=0.3) + np.float32(0.2)
        self.assertClose(float(normalise_level(offset).mean()), 0.0, delta=1e-4)

    def test_upload_can_skip_normalisation(self):
        raw = (tone(1.0, level=0.01) * 32767).astype("<i2").tobytes()
        self.assertEqual(decode_upload(raw, "s16le", normalise=False).tobytes(), raw)


class AuFuzzTests(unittest.TestCase):
    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=64), st.booleans())
    def test_read_au_accepts_or_names_the_problem(self, data, with_magic):
        if with_magic:
            data = b".snd" + data
        try:
            header, payload = read_au(data)
        except AudioFormatError:
            return
        self.assertEqual(len(payload), header.data_size)
        self.assertGreaterEqual(header.data_offset, 24)
