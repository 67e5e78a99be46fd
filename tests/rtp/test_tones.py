import numpy as np
from twisted.trial import unittest

from portaum_tx.rtp import tones
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.dtmf import DIGIT_TONES, dft_basis, tone_powers
from portaum_tx.rtp.tones import CED, CNG, FaxToneDetector, FaxToneSettings, ToneError
from tests.rtp.audio import add_white_noise, run_bank, speech_variants


def dominant_frequencies(signal, count):
    spectrum = np.abs(np.fft.rfft(signal.astype(float)))
    freqs = np.fft.rfftfreq(len(signal), 1 / 8000)
    return sorted(float(f) for f in freqs[np.argsort(spectrum)[-count:]])


class GeneratorTests(unittest.TestCase):
    def test_beep(self):
        beep = tones.beep(500)
        self.assertEqual((beep.dtype, len(beep)), (np.int16, 4000))
        self.assertEqual(dominant_frequencies(beep, 1), [1000.0])
        # G.711-ready: survives u-law with the level intact
        back = PCMU.decode(PCMU.encode(beep)).astype(float)
        self.assertAlmostEqual(np.sqrt(np.mean(back ** 2)) / np.sqrt(np.mean(beep.astype(float) ** 2)), 1, 1)

    def test_ringback_and_busy_cadence(self):
        ring = tones.ringback(2)
        self.assertEqual(len(ring), 2 * 6 * 8000)
        self.assertTrue(np.all(ring[16000:48000] == 0))
        self.assertEqual(dominant_frequencies(ring[:16000], 2), [440.0, 480.0])
        busy = tones.busy(3)
        self.assertEqual(len(busy), 3 * 8000)
        self.assertTrue(np.all(busy[4000:8000] == 0))
        self.assertEqual(dominant_frequencies(busy[:4000], 2), [480.0, 620.0])

    def test_dtmf_pairs(self):
        for digit, (row, col) in DIGIT_TONES.items():
            self.assertEqual(dominant_frequencies(tones.dtmf(digit, 1000), 2), [row, col])
        seq = tones.dtmf_sequence("12", 100, 50)
        self.assertEqual(len(seq), 2 * 1200)

    def test_errors(self):
        with self.assertRaisesRegex(ToneError, "negative"):
            tones.silence(-1)
        with self.assertRaises(ValueError):
            tones.dtmf("!")


def fax_events(signals, settings=None, offsets=None):
    return run_bank(FaxToneDetector(settings), signals, offsets)


class FaxToneDetectionTests(unittest.TestCase):
    def test_cng_per_burst_with_noise(self):
        rng = np.random.default_rng(5)
        signals = [tones.fax_cng(3)] + [add_white_noise(tones.fax_cng(3), snr, rng) for snr in (15, 6, 3)]
        for events in fax_events(signals, offsets=[0, 30, 77, 120]):
            self.assertEqual([e for _, e in events], [CNG] * 3)
            # each reported shortly after the 0.5 s burst ends, 3.5 s apart
            self.assertTrue(all(25 <= index % 175 <= 31 for index, _ in events), events)

    def test_cng_cadence_mode_needs_two_bursts(self):
        settings = FaxToneSettings(cng_bursts=2)
        events = fax_events([tones.fax_cng(2), np.tile(tones.cadence((1100.0,), 500, 1000), 4)], settings)
        self.assertEqual([len(e) for e in events], [1, 0])
        self.assertEqual(events[0][0][1], CNG)

    def test_wrong_length_bursts_are_not_cng(self):
        events = fax_events([tones.cadence((1100.0,), 200, 3000, 3, -15), tones.beep(3000, 1100.0)])
        self.assertEqual(events, [[], []])

    def test_ced_and_ansam(self):
        rng = np.random.default_rng(9)
        signals = [
            np.concatenate([tones.silence(300), tones.fax_ced(3000)]),
            add_white_noise(np.concatenate([tones.silence(300), tones.fax_ced(3000, ansam=True)]), 6, rng),
        ]
        for events in fax_events(signals):
            self.assertEqual([e for _, e in events], [CED])
            self.assertTrue(15 + 24 <= events[0][0] <= 15 + 27, events)

    def test_short_2100_is_not_ced(self):
        self.assertEqual(fax_events([tones.fax_ced(350)]), [[]])

    def test_no_fax_tones_in_speech_or_call_progress(self):
        variants = speech_variants()
        others = [tones.beep(2000), tones.ringback(2), tones.busy(6), tones.dtmf_sequence("0123456789*#")]
        signals = variants + others
        self.assertEqual(sum(len(e) for e in fax_events(signals)), 0)
        # not even single speech blocks dominated by 1100 or 2100 Hz
        detector = FaxToneDetector()
        block = np.concatenate([v[: len(v) // 160 * 160].reshape(-1, 160) for v in variants])
        cng, ced = detector.tones_present(block)
        self.assertLess(int(cng.sum() + ced.sum()), 3)

    def test_bank_slots_are_independent(self):
        detector = FaxToneDetector()
        ced = tones.fax_ced(1000).reshape(-1, 160)
        quiet = np.zeros_like(ced)
        fired = []
        for index in range(len(ced)):
            fired += detector.process(np.vstack([ced[index], quiet[index]]), [3, 1])
        self.assertEqual(fired, [(0, CED)])
        self.assertEqual(len(tone_powers(ced[:2], dft_basis((2100.0,), 160))), 2)
