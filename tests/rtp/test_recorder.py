import numpy as np
from twisted.internet import defer
from twisted.trial import unittest

from portaum_tx.rtp import tones
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.dtmf import InbandDtmfDetector, TelephoneEvent
from portaum_tx.rtp.recorder import Recorder, RecordingSettings, frame_levels_dbfs
from portaum_tx.rtp.session import MediaParams
from tests.rtp.fakes import PEER, FakePeer, Rig
from tests.rtp.audio import recorded_speech


def numbered_frame(n):
    """A frame whose u-law bytes identify packet n."""
    return bytes([0x80 + n % 100]) * 160


def value_of(n):
    return int(PCMU.decode(numbered_frame(n))[0])


class RecorderTests(unittest.TestCase):
    def setUp(self):
        self.rig = Rig()
        self.session = self.rig.session()
        self.peer = FakePeer(self.session)

    def send_packets(self, order, base_seq=100, base_ts=8000):
        for n in order:
            self.peer.send(numbered_frame(n), advance=False, sequence=base_seq + n, timestamp=base_ts + 160 * n)

    def test_reorders_and_fills_loss_with_silence(self):
        settings = RecordingSettings(silence_seconds=None, max_seconds=0.4)
        results = []
        Recorder(self.session, settings).start().addCallback(results.append)
        # after the first two, packets arrive in pairs, swapped, and packet 5 never arrives
        arrival = [[0], [1], [3, 2], [4], [7, 6], [9, 8], [11, 10], [13, 12], [15, 14], [17, 16], [19, 18]]
        for group in arrival:
            self.send_packets(group)
            self.rig.run(0.02)
        self.rig.run(0.2)
        result = results[0]
        self.assertEqual((result.reason, result.duration_ms), ("max_length", 400))
        frames = result.pcm.reshape(-1, 160)
        values = [int(f[0]) if np.all(f == f[0]) else None for f in frames]
        # two frames of jitter-buffer delay first, then every packet in order, 5 as silence
        expected = [0, 0] + [value_of(n) if n != 5 else 0 for n in range(18)]
        self.assertEqual(values, expected)
        self.assertEqual(self.session.stats.lost, 1)

    def test_stops_on_terminator_digit_from_rfc4733(self):
        results = []
        Recorder(self.session, RecordingSettings(terminators="#*")).start().addCallback(results.append)
        for n in range(20):
            self.send_packets([n])
            self.rig.run(0.02)
        self.peer.send(TelephoneEvent(1, False, 10, 160).to_bytes(), payload_type=101, marker=True,
                       sequence=200, timestamp=90000, advance=False)
        self.assertEqual(results, [])
        self.peer.send(TelephoneEvent(11, False, 10, 160).to_bytes(), payload_type=101, marker=True,
                       sequence=201, timestamp=91000, advance=False)
        self.assertEqual((results[0].reason, results[0].digit, results[0].duration_ms), ("digit", "#", 400))

    def test_inband_terminator_tone_is_cut_off(self):
        session = self.rig.session(MediaParams(PEER, telephone_event_pt=None))
        peer = FakePeer(session)
        results = []
        Recorder(session).start().addCallback(results.append)
        speech = recorded_speech()[:8000]
        audio = np.concatenate([speech, tones.dtmf("#", 100), tones.silence(200)])
        for start in range(0, len(audio), 160):
            peer.send(PCMU.encode(audio[start:start + 160]))
            self.rig.run(0.02)
            if results:
                break
        result = results[0]
        self.assertEqual((result.reason, result.digit), ("digit", "#"))
        # what is left is the speech after the 40 ms jitter delay, without the tone
        # (at most one 20 ms frame of voice is cut with it)
        self.assertTrue(1000 <= result.duration_ms <= 1040, result.duration_ms)
        tail = result.pcm[-320:].reshape(2, 160)
        self.assertEqual(list(InbandDtmfDetector().classify(tail)), [-1, -1])
        self.assertGreater(np.abs(result.pcm[:-320].astype(int)).max(), 3000)  # the voice is kept

    def test_stops_on_silence_and_trims_it(self):
        settings = RecordingSettings(silence_seconds=1.0, silence_threshold_dbfs=-40)
        results = []
        Recorder(self.session, settings).start().addCallback(results.append)
        speech = recorded_speech()[:16000]  # 2 s of voice, then quiet line noise
        rng = np.random.default_rng(1)
        hiss = rng.normal(0, 30, 8000 * 3).astype(np.int16)
        audio = np.concatenate([speech, hiss])
        for start in range(0, len(audio), 160):
            self.peer.send(PCMU.encode(audio[start:start + 160]))
            self.rig.run(0.02)
        result = results[0]
        self.assertEqual(result.reason, "silence")
        # stopped 1 s into the hiss; the recording ends where the voice (and its own pauses) ends
        self.assertTrue(1500 <= result.duration_ms <= 2100, result.duration_ms)
        self.assertGreater(frame_levels_dbfs(result.pcm[-160:].reshape(1, 160))[0], -40)

    def test_max_length_hangup_stop_and_cancel(self):
        results = []
        Recorder(self.session, RecordingSettings(max_seconds=1.0, silence_seconds=None)).start().addCallback(results.append)
        self.rig.run(2.0)
        self.assertEqual((results[0].reason, results[0].duration_ms), ("max_length", 1000))

        recorder = Recorder(self.session)
        recorder.start().addCallback(results.append)
        self.rig.run(0.3)
        recorder.stop()
        self.assertEqual((results[1].reason, results[1].duration_ms), ("stopped", 300))

        cancelled = Recorder(self.session).start()
        cancelled.cancel()
        self.failureResultOf(cancelled, defer.CancelledError)

        Recorder(self.session).start().addCallback(results.append)
        self.rig.run(0.5)
        self.session.close()
        self.assertEqual((results[2].reason, results[2].duration_ms), ("hangup", 500))
        self.assertEqual(self.session.consumers, [])
