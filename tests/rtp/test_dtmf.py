import numpy as np
from twisted.trial import unittest

from portaum_tx.rtp import tones
from portaum_tx.rtp.dtmf import (
    DIGIT_TONES, DtmfDigit, DtmfError, InbandDtmfDetector, InbandDtmfSettings, TelephoneEvent,
    TelephoneEventReceiver,
    dft_basis, goertzel_power, parse_sip_info_dtmf, telephone_event_payloads, tone_powers,
)
from tests.rtp.audio import add_white_noise, blocks, run_bank, speech_variants

ALL_DIGITS = "0123456789*#ABCD"


def event(code, end=False, volume=10, duration=160):
    return TelephoneEvent(code, end, volume, duration).to_bytes()


class TelephoneEventReceiverTests(unittest.TestCase):
    def test_one_digit_per_press_with_updates_and_redundant_ends(self):
        receiver = TelephoneEventReceiver()
        digits = [receiver.feed(1000, True, event(5, duration=160))]
        for d in (320, 480, 640):
            digits.append(receiver.feed(1000, False, event(5, duration=d)))
        for _ in range(3):
            digits.append(receiver.feed(1000, False, event(5, end=True, duration=800)))
        found = [d for d in digits if d]
        self.assertEqual(found, [DtmfDigit("5", "rfc4733", None, 10)])

    def test_new_timestamp_is_a_new_press_even_for_the_same_digit(self):
        receiver = TelephoneEventReceiver()
        got = []
        for ts in (1000, 3000):
            got.append(receiver.feed(ts, True, event(1)))
            got.append(receiver.feed(ts, False, event(1, end=True, duration=800)))
        self.assertEqual([d.digit for d in got if d], ["1", "1"])

    def test_duplicates_and_late_packets_ignored(self):
        receiver = TelephoneEventReceiver()
        self.assertEqual(receiver.feed(5000, True, event(11)).digit, "#")
        self.assertIsNone(receiver.feed(5000, True, event(11)))  # duplicate start
        self.assertEqual(receiver.feed(9000, True, event(2)).digit, "2")
        # a straggler of the '#' press and an even older event arrive late
        self.assertIsNone(receiver.feed(5000, False, event(11, end=True)))
        self.assertIsNone(receiver.feed(1000, True, event(3)))

    def test_lost_start_packets_still_report_once(self):
        receiver = TelephoneEventReceiver()
        first = receiver.feed(800, False, event(10, end=True, duration=960, volume=20))
        self.assertEqual((first.digit, first.duration_ms, first.volume), ("*", 120, 20))
        self.assertIsNone(receiver.feed(800, False, event(10, end=True, duration=960)))

    def test_timestamp_wraparound(self):
        receiver = TelephoneEventReceiver()
        self.assertEqual(receiver.feed(0xFFFFFF00, True, event(7)).digit, "7")
        self.assertEqual(receiver.feed(0x00000100, True, event(8)).digit, "8")
        self.assertIsNone(receiver.feed(0xFFFFFF00, False, event(7, end=True)))

    def test_long_event_segment_is_not_a_new_press(self):
        receiver = TelephoneEventReceiver()
        self.assertIsNotNone(receiver.feed(0, True, event(9, duration=0xFFFF)))
        self.assertIsNone(receiver.feed(0xFFFF, False, event(9, duration=160)))
        self.assertIsNone(receiver.feed(0xFFFF, False, event(9, end=True, duration=800)))

    def test_non_key_events_and_bad_payloads(self):
        receiver = TelephoneEventReceiver()
        self.assertIsNone(receiver.feed(10, True, event(70)))  # a tone event, not a key
        self.assertEqual(receiver.feed(20, True, event(16)).digit, "!")
        with self.assertRaisesRegex(DtmfError, "3 octets"):
            receiver.feed(30, True, b"\x01\x02\x03")


class TelephoneEventSenderTests(unittest.TestCase):
    def test_packets_for_one_press(self):
        packets = telephone_event_payloads("#", duration_ms=100, interval_ms=20, volume=10)
        markers = [m for m, _ in packets]
        decoded = [TelephoneEvent.parse(p) for _, p in packets]
        self.assertEqual(markers, [True] + [False] * 6)
        self.assertEqual([e.duration for e in decoded], [160, 320, 480, 640, 800, 800, 800])
        self.assertEqual([e.end for e in decoded], [False] * 4 + [True] * 3)
        self.assertTrue(all(e.event == 11 and e.volume == 10 for e in decoded))

    def test_sender_output_feeds_receiver_as_one_press(self):
        receiver = TelephoneEventReceiver()
        got = [receiver.feed(4242, m, p) for m, p in telephone_event_payloads("D", 60)]
        self.assertEqual([d.digit for d in got if d], ["D"])

    def test_bad_digit(self):
        with self.assertRaisesRegex(DtmfError, "'x' is not a DTMF digit"):
            telephone_event_payloads("x")


class SipInfoTests(unittest.TestCase):
    def test_dtmf_relay(self):
        digit = parse_sip_info_dtmf("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n")
        self.assertEqual(digit, DtmfDigit("5", "info", 160))
        self.assertEqual(parse_sip_info_dtmf("Application/DTMF-Relay; x=1", "signal= #\nduration = 250").digit, "#")
        self.assertEqual(parse_sip_info_dtmf("application/dtmf-relay", "Signal=11\r\n").digit, "#")
        self.assertEqual(parse_sip_info_dtmf("application/dtmf-relay", "Signal=a").digit, "A")

    def test_dtmf(self):
        self.assertEqual(parse_sip_info_dtmf("application/dtmf", b"7\r\n"), DtmfDigit("7", "info"))

    def test_errors(self):
        cases = [
            ("application/dtmf-relay", b"Duration=160", "no Signal"),
            ("application/dtmf-relay", b"Signal=Z", "'Z' is not a digit"),
            ("application/dtmf-relay", b"Signal=1\nDuration=abc", "Duration 'abc'"),
            ("application/dtmf-relay", b"garbage", "not name=value"),
            ("text/plain", b"5", "does not carry DTMF"),
            ("application/dtmf", b"\xff", "not ASCII"),
            ("application/dtmf", "\u00b2", "not a digit"),  # a superscript two is no key
        ]
        for content_type, body, message in cases:
            with self.assertRaisesRegex(DtmfError, message):
                parse_sip_info_dtmf(content_type, body)


def press_sequence(digits, on_ms=60, off_ms=60, row_dbm0=-10.0, column_dbm0=-10.0):
    parts = [tones.silence(33)]
    for digit in digits:
        parts += [tones.dtmf(digit, on_ms, row_dbm0, column_dbm0), tones.silence(off_ms)]
    return np.concatenate(parts)


def detected(signals, offsets=None):
    return ["".join(d for _, d in events) for events in run_bank(InbandDtmfDetector(), signals, offsets)]


class InbandDtmfTests(unittest.TestCase):
    def test_vectorized_power_equals_goertzel(self):
        rng = np.random.default_rng(3)
        block = rng.integers(-8000, 8000, size=(3, 160)).astype(np.int16)
        freqs = (697.0, 1633.0)
        powers = tone_powers(block, dft_basis(freqs, 160))
        for row in range(3):
            for k, f in enumerate(freqs):
                self.assertAlmostEqual(powers[row, k] / goertzel_power(block[row], f), 1.0, places=3)

    def test_all_digits_clean_at_any_alignment(self):
        signal = press_sequence(ALL_DIGITS)
        self.assertEqual(detected([signal] * 4, offsets=[0, 40, 80, 130]), [ALL_DIGITS] * 4)

    def test_minimum_duration_and_gap(self):
        self.assertEqual(detected([press_sequence("1234", on_ms=40, off_ms=40)], [17]), ["1234"])
        self.assertEqual(detected([press_sequence("55", on_ms=15, off_ms=100)]), [""])
        # presses of the same key separated by 40 ms are two presses
        self.assertEqual(detected([press_sequence("77", on_ms=50, off_ms=40)], [50]), ["77"])

    def test_noisy_tones_at_several_snrs(self):
        rng = np.random.default_rng(7)
        for snr in (20, 12, 6):
            signals = [add_white_noise(press_sequence(ALL_DIGITS, 70, 70), snr, rng) for _ in range(8)]
            results = detected(signals, offsets=list(range(0, 160, 20)))
            correct = sum(r == ALL_DIGITS for r in results)
            self.assertEqual(correct, 8, f"SNR {snr} dB: {results}")

    def test_twist_limits(self):
        # normal twist: column louder; reverse twist: row louder
        accepted = [press_sequence(ALL_DIGITS, row_dbm0=-17, column_dbm0=-10),
                    press_sequence(ALL_DIGITS, row_dbm0=-10, column_dbm0=-13.5)]
        self.assertEqual(detected(accepted), [ALL_DIGITS] * 2)
        rejected = [press_sequence(ALL_DIGITS, row_dbm0=-20, column_dbm0=-10),
                    press_sequence(ALL_DIGITS, row_dbm0=-10, column_dbm0=-16)]
        self.assertEqual(detected(rejected), ["", ""])

    def test_level_limits(self):
        self.assertEqual(detected([press_sequence("159", row_dbm0=-33, column_dbm0=-33)]), ["159"])
        self.assertEqual(detected([press_sequence("159", row_dbm0=-45, column_dbm0=-45)]), [""])

    def test_off_frequency_tones_rejected(self):
        for shift in (1.035, 0.965):
            n = np.arange(800)
            signals = []
            for digit in "1590":
                row, col = DIGIT_TONES[digit]
                s = 4000 * (np.sin(2 * np.pi * row * shift * n / 8000) + np.sin(2 * np.pi * col * shift * n / 8000))
                signals.append(s.astype(np.int16))
            self.assertEqual(detected(signals), [""] * 4)

    def test_no_false_digits_on_recorded_speech(self):
        variants = speech_variants()
        length = max(len(v) for v in variants)
        signals = [np.concatenate([v, np.zeros(length - len(v), np.int16)]) for v in variants]
        detector = InbandDtmfDetector()
        events = run_bank(detector, signals + signals, offsets=[0] * len(signals) + [80] * len(signals))
        self.assertEqual(sum(len(e) for e in events), 0)
        # and not even a single block of speech looks like a DTMF pair
        blocks_of_speech = np.concatenate([s[: len(s) // 160 * 160].reshape(-1, 160) for s in signals])
        self.assertGreater(len(blocks_of_speech), 5000)
        self.assertEqual(int(np.sum(detector.classify(blocks_of_speech) >= 0)), 0)

    def test_digits_still_found_over_speech_pauses(self):
        speech = speech_variants()[1][:8000]
        signal = np.concatenate([speech, press_sequence("42#", 80, 80), speech])
        self.assertEqual(detected([signal]), ["42#"])

    def test_no_false_digits_on_music(self):
        n = np.arange(4000)
        rng = np.random.default_rng(11)
        signals = []

        def note(f0, harmonics=6):
            return sum(0.6 ** k * np.sin(2 * np.pi * f0 * (k + 1) * n / 8000 + rng.uniform(0, 6))
                       for k in range(harmonics))

        for root in np.arange(180.0, 1000.0, 41.0):
            for ratio in (2 ** (4 / 12), 2 ** (7 / 12), 1.25, 1.5, 1.735):
                signals.append((2500 * (note(root) + note(root * ratio) + 0.7 * note(root * 2))).astype(np.int16))
        # harmonic-rich notes placed exactly on DTMF row/column pairs are not digits either
        for digit in "159#D":
            row, col = DIGIT_TONES[digit]
            signals.append((3000 * (note(row) + note(col))).astype(np.int16))
        self.assertEqual(sum(len(d) for d in detected(signals)), 0)

    def test_state_is_per_slot(self):
        detector = InbandDtmfDetector()
        tone = tones.dtmf("3", 60).reshape(3, 160)
        quiet = np.zeros(160, np.int16)
        # slot 5 hears 40 ms of tone, slot 9 only 20 ms: only slot 5 has a key press
        self.assertEqual(detector.process(np.vstack([tone[0], quiet]), [5, 9]), [])
        self.assertEqual(detector.process(np.vstack([tone[1], tone[0]]), [5, 9]), [(0, "3")])
        self.assertEqual(detector.process(np.vstack([quiet, quiet]), [5, 9]), [])
        detector.reset(5)
        self.assertEqual(detector.process(tone[2:3], [5]), [])
        with self.assertRaisesRegex(DtmfError, "block"):
            detector.classify(np.zeros((2, 100), np.int16))
        with self.assertRaisesRegex(DtmfError, "block"):
            detector.process(np.zeros((1, 100), np.int16), [0])

    def test_forty_ms_presses_and_gaps_at_every_alignment(self):
        signal = press_sequence(ALL_DIGITS, on_ms=40, off_ms=40)
        offsets = list(range(0, 160, 5))
        self.assertEqual(detected([signal] * len(offsets), offsets), [ALL_DIGITS] * len(offsets))
        repeated = press_sequence("7777", on_ms=40, off_ms=40)
        self.assertEqual(detected([repeated] * len(offsets), offsets), ["7777"] * len(offsets))

    def test_presses_shorter_than_twenty_ms_are_rejected_at_every_alignment(self):
        offsets = list(range(0, 160, 5))
        short = press_sequence(ALL_DIGITS, on_ms=18, off_ms=60)
        self.assertEqual(sum(len(d) for d in detected([short] * len(offsets), offsets)), 0)


def detected_with_losses(signal, lost, offset=0, tell_detector=True, settings=None):
    """Digits heard in one session whose blocks numbered in ``lost`` never arrived: the
    jitter buffer conceals them with silence and (when told) says so."""
    detector = InbandDtmfDetector(settings)
    digits = ""
    for index, block in enumerate(blocks(signal, offset=offset)):
        heard = index not in lost
        if not heard:
            block = np.zeros_like(block)
        flags = np.array([heard]) if tell_detector else None
        digits += "".join(d for _, d in detector.process(block[None, :], [0], flags))
    return digits


class ConcealedFrameTests(unittest.TestCase):
    """A lost packet inside a tone is concealed with silence; heard as silence, it
    would end the key and start it again (one press, two digits)."""

    press = np.concatenate([tones.silence(40), tones.dtmf("5", 300), tones.silence(100)])

    def test_a_lost_packet_inside_a_tone_is_one_press(self):
        for lost in ({4}, {5}, {6}, {8}, {5, 6}, {5, 6, 7}):
            for offset in (0, 40, 80, 120):
                self.assertEqual(detected_with_losses(self.press, lost, offset), "5", (lost, offset))

    def test_the_same_losses_heard_as_silence_split_the_press(self):
        # why the flags are needed: these are the cases the jitter buffer's silence broke
        split = [detected_with_losses(self.press, lost, offset, tell_detector=False)
                 for lost in ({4}, {5}, {5, 6}, {5, 6, 7}) for offset in (0, 40)]
        self.assertIn("55", split)
        self.assertEqual(detected_with_losses(self.press, {5, 6}, 0, tell_detector=False), "55")

    def test_a_gap_longer_than_the_limit_ends_the_press(self):
        # a phone that stops sending between two presses of the same key: 100 ms of
        # nothing is five concealed blocks, more than max_concealed_frames (3)
        two = np.concatenate([tones.silence(40), tones.dtmf("8", 100), tones.silence(100),
                              tones.dtmf("8", 100), tones.silence(100)])
        gap = set(range(7, 12))  # the blocks of the silence between the presses
        self.assertEqual(detected_with_losses(two, gap), "88")
        self.assertEqual(detected_with_losses(two, gap, settings=InbandDtmfSettings(max_concealed_frames=0)), "88")
        # and with the limit switched off, concealment is heard as silence as before
        self.assertEqual(
            detected_with_losses(self.press, {5, 6}, settings=InbandDtmfSettings(max_concealed_frames=0)),
            "55")

    def test_state_of_other_sessions_is_untouched(self):
        detector = InbandDtmfDetector()
        tone = tones.dtmf("2", 120).reshape(6, 160)
        quiet = np.zeros(160, np.int16)
        events = []
        for index in range(6):
            # slot 3 loses its third block, slot 4 hears everything, both press once
            heard = np.array([index != 2, True])
            first = quiet if index == 2 else tone[index]
            events += detector.process(np.vstack([first, tone[index]]), [3, 4], heard)
        for _ in range(4):
            events += detector.process(np.vstack([quiet, quiet]), [3, 4], np.array([True, True]))
        self.assertEqual(sorted(events), [(0, "2"), (1, "2")])
        with self.assertRaisesRegex(DtmfError, "2 heard flags for 1 blocks"):
            detector.process(quiet[None, :], [3], np.array([True, True]))
