from twisted.trial import unittest

from portaum_tx.rtp.jitter import FRAME_AUDIO, FRAME_IDLE, FRAME_LOST, JitterBuffer
from portaum_tx.rtp.stats import ReceiverStatistics


def frame(n, size=160):
    return bytes([n % 256]) * size


class JitterBufferTests(unittest.TestCase):
    def drain(self, buffer, count):
        return [buffer.pop() for _ in range(count)]

    def test_waits_depth_then_plays_in_order(self):
        buffer = JitterBuffer(0xFF, depth_frames=2)
        self.assertEqual(buffer.pop(), (b"\xff" * 160, FRAME_IDLE))
        for n in range(4):
            buffer.push(1000 + 160 * n, frame(n))
        out = self.drain(buffer, 6)
        self.assertEqual([s for _, s in out], [FRAME_IDLE, FRAME_IDLE, FRAME_AUDIO, FRAME_AUDIO,
                                               FRAME_AUDIO, FRAME_AUDIO])
        self.assertEqual([f[0] for f, _ in out[2:]], [0, 1, 2, 3])

    def test_reorders_by_timestamp(self):
        buffer = JitterBuffer(0xFF, depth_frames=0)
        for n in (0, 2, 1, 4, 3):
            buffer.push(160 * n, frame(n))
        self.assertEqual([f[0] for f, _ in self.drain(buffer, 5)], [0, 1, 2, 3, 4])

    def test_loss_is_silence_and_flagged(self):
        buffer = JitterBuffer(0xD5, depth_frames=0)
        for n in (0, 1, 3):
            buffer.push(160 * n, frame(n))
        out = self.drain(buffer, 5)
        self.assertEqual(out[2], (b"\xd5" * 160, FRAME_LOST))
        self.assertEqual([s for _, s in out], [FRAME_AUDIO, FRAME_AUDIO, FRAME_LOST, FRAME_AUDIO, FRAME_IDLE])

    def test_late_packets_dropped(self):
        buffer = JitterBuffer(0xFF, depth_frames=0)
        buffer.push(0, frame(0))
        buffer.push(160, frame(1))
        self.drain(buffer, 2)
        buffer.push(0, frame(9))
        self.assertEqual(buffer.late, 1)
        self.assertEqual(buffer.pop()[1], FRAME_IDLE)

    def test_other_ptimes_are_reframed(self):
        buffer = JitterBuffer(0xFF, depth_frames=0)
        for n in range(4):  # 30 ms packets: 240 samples each
            buffer.push(240 * n, bytes(range(n * 60, n * 60 + 60)) * 4)
        data = b"".join(f for f, s in self.drain(buffer, 6))
        expected = b"".join(bytes(range(n * 60, n * 60 + 60)) * 4 for n in range(4))
        self.assertEqual(data, expected)
        buffer = JitterBuffer(0xFF, depth_frames=1)
        for n in (1, 0, 3, 2):  # 10 ms packets, reordered from the very first one
            buffer.push(80 * n, frame(n, 80))
        self.assertEqual(buffer.pop()[1], FRAME_IDLE)
        self.assertEqual(self.drain(buffer, 2), [(frame(0, 80) + frame(1, 80), FRAME_AUDIO),
                                                 (frame(2, 80) + frame(3, 80), FRAME_AUDIO)])

    def test_timestamp_wrap_and_resync(self):
        buffer = JitterBuffer(0xFF, depth_frames=0)
        buffer.push(0xFFFFFF60, frame(1))
        buffer.push(0x00000000, frame(2))
        self.assertEqual([f[0] for f, _ in self.drain(buffer, 2)], [1, 2])
        buffer.push(5_000_000, frame(3))  # a jump far ahead: start over there
        self.assertEqual(buffer.resyncs, 2)
        self.assertEqual(buffer.pop(), (frame(3), FRAME_AUDIO))
        self.drain(buffer, 3)  # idle for a while, then the sender restarts behind us
        buffer.push(100, frame(4))
        self.assertEqual(buffer.pop(), (frame(4), FRAME_AUDIO))


class ReceiverStatisticsTests(unittest.TestCase):
    def test_probation_then_counts(self):
        stats = ReceiverStatistics(1, 100)
        self.assertFalse(stats.update(100, 0, 0.0))
        self.assertTrue(stats.update(101, 160, 0.02))
        self.assertTrue(stats.valid)
        for seq in range(102, 110):
            stats.update(seq, 160 * (seq - 100), 0.02 * (seq - 100))
        self.assertEqual((stats.expected, stats.received, stats.lost), (9, 9, 0))
        self.assertLess(stats.jitter, 1e-6)

    def test_loss_fraction_and_sequence_wrap(self):
        stats = ReceiverStatistics(1, 65530)
        received = [s & 0xFFFF for s in range(65530, 65550) if s % 4]
        for n, seq in enumerate(received):
            stats.update(seq, 0, 0.0)
        block = stats.report_block()
        self.assertEqual(stats.cycles, 65536)
        self.assertEqual(block.highest_sequence, 65536 + received[-1])
        self.assertEqual(block.cumulative_lost, stats.expected - stats.received)
        self.assertEqual(block.fraction_lost, (block.cumulative_lost << 8) // stats.expected)
        # next interval without loss reports no fraction lost
        for seq in range(received[-1] + 1, received[-1] + 11):
            stats.update(seq, 0, 0.0)
        self.assertEqual(stats.report_block().fraction_lost, 0)

    def test_jitter_per_rfc3550_a8(self):
        stats = ReceiverStatistics(1, 0)
        stats.update(0, 0, 0.0)
        # packets every 20 ms of media, arriving alternately 0 and 10 ms late
        for n in range(1, 200):
            stats.update(n, 160 * n, 0.020 * n + (0.010 if n % 2 else 0.0))
        # |D| is 80 timestamp units each time; J converges to 80
        self.assertLess(abs(stats.jitter - 80.0), 1.0)

    def test_restart_after_big_jump(self):
        stats = ReceiverStatistics(1, 0)
        for seq in range(0, 10):
            stats.update(seq, 0, 0.0)
        self.assertFalse(stats.update(30000, 0, 0.0))
        self.assertTrue(stats.update(30001, 0, 0.0))
        self.assertEqual(stats.base_seq, 30001)


class DriftTests(unittest.TestCase):
    def test_fast_sender_does_not_grow_the_delay(self):
        buffer = JitterBuffer(0xFF, depth_frames=2)
        timestamp = 0
        played = []
        # the far end's clock is 2 % fast: 51 packets for every 50 of our ticks
        for tick in range(3000):
            packets = 2 if tick % 50 == 0 else 1
            for _ in range(packets):
                buffer.push(timestamp, frame(timestamp // 160))
                timestamp += 160
            played.append(buffer.pop())
        self.assertTrue(all(status == FRAME_AUDIO for _, status in played[10:]))
        self.assertLessEqual(buffer.buffered_packets, 2 + 3 + 2)
        self.assertGreater(buffer.dropped_frames, 40)
        self.assertEqual(buffer.resyncs, 1)

    def test_short_jitter_spike_is_not_trimmed(self):
        buffer = JitterBuffer(0xFF, depth_frames=2)
        for n in range(8):  # a burst: 8 packets at once after a network hiccup
            buffer.push(160 * n, frame(n))
        out = [buffer.pop() for _ in range(10)]
        self.assertEqual([f[0] for f, s in out if s == FRAME_AUDIO], list(range(8)))
        self.assertEqual(buffer.dropped_frames, 0)
