"""JitterBuffer and ReceiverStatistics, each test run against both implementations:
the pure-Python reference and the C extension's, which must not differ in any result
or counter."""

import gc
import importlib.machinery
import pathlib
import sys

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

import portaum_tx.rtp
from portaum_tx.rtp.jitter import FRAME_AUDIO, FRAME_IDLE, FRAME_LOST, JitterBuffer, PyJitterBuffer
from portaum_tx.rtp.stats import PyReceiverStatistics, ReceiverStatistics

# by name: without the built extension, the directory of its sources imports as an
# empty namespace package
try:
    from portaum_tx.rtp._rtpcore import JitterBuffer as CJitterBuffer
    from portaum_tx.rtp._rtpcore import ReceiverStatistics as CReceiverStatistics
except ImportError as error:
    CJitterBuffer = CReceiverStatistics = None
    _import_error = error

NOT_BUILT = "portaum_tx.rtp._rtpcore is not built (python3 setup.py build_ext --inplace)"


def frame(n, size=160):
    return bytes([n % 256]) * size


class JitterBufferTestsMixin:
    JitterBuffer = PyJitterBuffer  # the implementation under test

    def drain(self, buffer, count):
        return [buffer.pop() for _ in range(count)]

    def test_waits_depth_then_plays_in_order(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=2)
        self.assertEqual(buffer.pop(), (b"\xff" * 160, FRAME_IDLE))
        for n in range(4):
            buffer.push(1000 + 160 * n, frame(n))
        out = self.drain(buffer, 6)
        self.assertEqual([s for _, s in out], [FRAME_IDLE, FRAME_IDLE, FRAME_AUDIO, FRAME_AUDIO,
                                               FRAME_AUDIO, FRAME_AUDIO])
        self.assertEqual([f[0] for f, _ in out[2:]], [0, 1, 2, 3])

    def test_reorders_by_timestamp(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        for n in (0, 2, 1, 4, 3):
            buffer.push(160 * n, frame(n))
        self.assertEqual([f[0] for f, _ in self.drain(buffer, 5)], [0, 1, 2, 3, 4])

    def test_loss_is_silence_and_flagged(self):
        buffer = self.JitterBuffer(0xD5, depth_frames=0)
        for n in (0, 1, 3):
            buffer.push(160 * n, frame(n))
        out = self.drain(buffer, 5)
        self.assertEqual(out[2], (b"\xd5" * 160, FRAME_LOST))
        self.assertEqual([s for _, s in out], [FRAME_AUDIO, FRAME_AUDIO, FRAME_LOST, FRAME_AUDIO, FRAME_IDLE])

    def test_late_packets_dropped(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        buffer.push(0, frame(0))
        buffer.push(160, frame(1))
        self.drain(buffer, 2)
        buffer.push(0, frame(9))
        self.assertEqual(buffer.late, 1)
        self.assertEqual(buffer.pop()[1], FRAME_IDLE)

    def test_other_ptimes_are_reframed(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        for n in range(4):  # 30 ms packets: 240 samples each
            buffer.push(240 * n, bytes(range(n * 60, n * 60 + 60)) * 4)
        data = b"".join(f for f, s in self.drain(buffer, 6))
        expected = b"".join(bytes(range(n * 60, n * 60 + 60)) * 4 for n in range(4))
        self.assertEqual(data, expected)
        buffer = self.JitterBuffer(0xFF, depth_frames=1)
        for n in (1, 0, 3, 2):  # 10 ms packets, reordered from the very first one
            buffer.push(80 * n, frame(n, 80))
        self.assertEqual(buffer.pop()[1], FRAME_IDLE)
        self.assertEqual(self.drain(buffer, 2), [(frame(0, 80) + frame(1, 80), FRAME_AUDIO),
                                                 (frame(2, 80) + frame(3, 80), FRAME_AUDIO)])

    def test_timestamp_wrap_and_resync(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        buffer.push(0xFFFFFF60, frame(1))
        buffer.push(0x00000000, frame(2))
        self.assertEqual([f[0] for f, _ in self.drain(buffer, 2)], [1, 2])
        buffer.push(5_000_000, frame(3))  # a jump far ahead: start over there
        self.assertEqual(buffer.resyncs, 2)
        self.assertEqual(buffer.pop(), (frame(3), FRAME_AUDIO))
        self.drain(buffer, 3)  # idle for a while, then the sender restarts behind us
        buffer.push(100, frame(4))
        self.assertEqual(buffer.pop(), (frame(4), FRAME_AUDIO))

    def test_audio_after_idle_restarts_the_idle_count(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=0, resync_after_idle=2)
        buffer.push(0, frame(0))
        self.assertEqual([s for _, s in self.drain(buffer, 3)], [FRAME_AUDIO, FRAME_IDLE, FRAME_IDLE])
        buffer.push(480, frame(3))  # the sender is back, on time
        self.assertEqual(buffer.pop(), (frame(3), FRAME_AUDIO))
        buffer.push(320, frame(2))  # so this one is merely late, not a restart
        self.assertEqual((buffer.late, buffer.resyncs), (1, 1))

    def test_a_late_sender_is_waited_for(self):
        # The sender skips a beat and carries on where it was: from then on every
        # packet comes a frame later. The play-out waits a frame instead of dropping
        # the stream's next packets as late and starting over.
        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        buffer.push(0, frame(0))
        buffer.push(160, frame(1))
        self.assertEqual(self.drain(buffer, 2), [(frame(0), FRAME_AUDIO), (frame(1), FRAME_AUDIO)])
        played = [buffer.pop()]  # packet 2 is not there yet
        for n in range(2, 8):
            buffer.push(160 * n, frame(n))
            played.append(buffer.pop())
        self.assertEqual(played, [(b"\xff" * 160, FRAME_IDLE)] + [(frame(n), FRAME_AUDIO) for n in range(2, 8)])
        self.assertEqual((buffer.late, buffer.resyncs, buffer.held_frames), (0, 1, 1))

    def test_a_wait_is_given_back_when_the_packets_were_lost(self):
        # Packets 2 and 3 never come; 4 does, on time: the wait ends and 4 plays when
        # it would have played had nothing been held, as does all that follows.
        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        buffer.push(0, frame(0))
        buffer.push(160, frame(1))
        self.drain(buffer, 2)
        self.assertEqual([s for _, s in self.drain(buffer, 2)], [FRAME_IDLE, FRAME_IDLE])
        for n in range(4, 8):
            buffer.push(160 * n, frame(n))
            self.assertEqual(buffer.pop(), (frame(n), FRAME_AUDIO))
        self.assertEqual((buffer.late, buffer.resyncs, buffer.held_frames), (0, 1, 2))

    def test_a_pause_longer_than_the_hold_keeps_the_sender_timeline(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=0, max_hold_frames=3, resync_after_idle=100)
        buffer.push(0, frame(0))
        self.drain(buffer, 1)
        self.assertEqual({s for _, s in self.drain(buffer, 9)}, {FRAME_IDLE})
        self.assertEqual(buffer._next, 160 * 10)  # 3 frames held, then given back
        buffer.push(160 * 10, frame(10))  # silence suppression ends on time
        self.assertEqual(buffer.pop(), (frame(10), FRAME_AUDIO))
        self.assertEqual(buffer.held_frames, 3)

    def test_no_hold_when_asked_for_none(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=0, max_hold_frames=0)
        buffer.push(0, frame(0))
        self.drain(buffer, 2)
        buffer.push(160, frame(1))  # a frame late: dropped, as it was played as idle
        self.assertEqual((buffer.late, buffer.held_frames), (1, 0))

    def test_a_negative_hold_is_refused(self):
        with self.assertRaisesRegex(ValueError, "max_hold_frames must not be negative"):
            self.JitterBuffer(0xFF, max_hold_frames=-1)

    def test_fast_sender_does_not_grow_the_delay(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=2)
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
        buffer = self.JitterBuffer(0xFF, depth_frames=2)
        for n in range(8):  # a burst: 8 packets at once after a network hiccup
            buffer.push(160 * n, frame(n))
        out = [buffer.pop() for _ in range(10)]
        self.assertEqual([f[0] for f, s in out if s == FRAME_AUDIO], list(range(8)))
        self.assertEqual(buffer.dropped_frames, 0)

    def test_the_buffer_stays_bounded_whatever_the_sender_piles_up(self):
        # one-octet fragments all over the window: never played out one by one
        buffer = self.JitterBuffer(0xFF, depth_frames=2, max_packets=8)
        for n in range(200):
            buffer.push((n * 37) % 1200, b"\x01")
        self.assertEqual(buffer.buffered_packets, 8)
        self.assertEqual(buffer.overflows, 192)
        buffer.push(0, frame(9))  # a packet replacing a buffered one is still taken
        self.assertEqual(buffer.overflows, 192)
        for _ in range(3):
            buffer.pop()
        self.assertLess(buffer.buffered_packets, 8)


class ReceiverStatisticsTestsMixin:
    ReceiverStatistics = PyReceiverStatistics

    def test_probation_then_counts(self):
        stats = self.ReceiverStatistics(1, 100)
        self.assertFalse(stats.update(100, 0, 0.0))
        self.assertTrue(stats.update(101, 160, 0.02))
        self.assertTrue(stats.valid)
        for seq in range(102, 110):
            stats.update(seq, 160 * (seq - 100), 0.02 * (seq - 100))
        self.assertEqual((stats.expected, stats.received, stats.lost), (9, 9, 0))
        self.assertLess(stats.jitter, 1e-6)

    def test_loss_fraction_and_sequence_wrap(self):
        stats = self.ReceiverStatistics(1, 65530)
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
        stats = self.ReceiverStatistics(1, 0)
        stats.update(0, 0, 0.0)
        # packets every 20 ms of media, arriving alternately 0 and 10 ms late
        for n in range(1, 200):
            stats.update(n, 160 * n, 0.020 * n + (0.010 if n % 2 else 0.0))
        # |D| is 80 timestamp units each time; J converges to 80
        self.assertLess(abs(stats.jitter - 80.0), 1.0)

    def test_restart_after_big_jump(self):
        stats = self.ReceiverStatistics(1, 0)
        for seq in range(0, 10):
            stats.update(seq, 0, 0.0)
        self.assertFalse(stats.update(30000, 0, 0.0))
        self.assertTrue(stats.update(30001, 0, 0.0))
        self.assertEqual(stats.base_seq, 30001)


class PyJitterBufferTests(JitterBufferTestsMixin, unittest.TestCase):
    pass


class CJitterBufferTests(JitterBufferTestsMixin, unittest.TestCase):
    if CJitterBuffer is None:
        skip = NOT_BUILT
    else:
        JitterBuffer = CJitterBuffer

    def test_frame_of_one_packet_is_the_packet(self):
        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        payload = frame(7)
        buffer.push(0, payload)
        self.assertIs(buffer.pop()[0], payload)

    def test_references_are_released(self):
        payload = bytes(range(160))
        tail = bytes(range(240))
        before = sys.getrefcount(payload), sys.getrefcount(tail)

        def counts():
            return sys.getrefcount(payload), sys.getrefcount(tail)

        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        buffer.push(0, payload)
        buffer.push(160, tail)
        self.assertEqual(counts(), (before[0] + 1, before[1] + 1))
        played = buffer.pop()
        self.assertEqual(counts(), (before[0] + 1, before[1] + 1))  # now held by played
        del played
        buffer.pop()  # the first 160 samples of tail: the rest is kept as a new object
        self.assertEqual(counts(), before)
        buffer.push(400, payload)
        buffer.reset()
        self.assertEqual(counts(), before)
        buffer.push(0, payload)
        buffer.set_silence_byte(0x7F)
        self.assertEqual(counts(), before)
        buffer.push(0, payload)
        buffer.push(5_000_000, tail)  # a resync empties the buffer
        self.assertEqual(counts(), (before[0], before[1] + 1))
        del buffer
        self.assertEqual(counts(), before)

    def test_subclass_in_a_reference_cycle_is_collected(self):
        class Buffer(self.JitterBuffer):
            def __init__(self, silence_byte):
                super().__init__(silence_byte, depth_frames=0)
                self.myself = self

        payload = bytes(range(160))
        before = sys.getrefcount(payload)
        buffer = Buffer(0xD5)
        buffer.push(0, payload)
        self.assertEqual(buffer.pop(), (payload, FRAME_AUDIO))
        buffer.push(160, payload)
        del buffer
        gc.collect()
        self.assertEqual(sys.getrefcount(payload), before)

    def test_not_initialised(self):
        buffer = self.JitterBuffer.__new__(self.JitterBuffer)
        self.assertRaises(RuntimeError, buffer.pop)
        self.assertRaises(RuntimeError, buffer.push, 0, b"\0")

    def test_arguments_checked(self):
        self.assertRaises(ValueError, self.JitterBuffer, 256)
        self.assertRaises(ValueError, self.JitterBuffer, 0xFF, frame_samples=0)
        self.assertRaises(TypeError, self.JitterBuffer(0xFF).push, 0, "text")
        self.assertRaises(TypeError, self.JitterBuffer(0xFF).push, 0.5, b"\0")
        buffer = self.JitterBuffer(0xFF, depth_frames=0)
        buffer.push(0, bytearray(frame(1)))  # any bytes-like payload, kept as bytes
        self.assertEqual(buffer.pop(), (frame(1), FRAME_AUDIO))


class PyReceiverStatisticsTests(ReceiverStatisticsTestsMixin, unittest.TestCase):
    pass


class CReceiverStatisticsTests(ReceiverStatisticsTestsMixin, unittest.TestCase):
    if CReceiverStatistics is None:
        skip = NOT_BUILT
    else:
        ReceiverStatistics = ReceiverStatistics  # the C core with stats.py's report figures


class ExtensionInUseTests(unittest.TestCase):
    def test_built_extension_is_used(self):
        here = pathlib.Path(portaum_tx.rtp.__file__).parent
        built = [path for suffix in importlib.machinery.EXTENSION_SUFFIXES
                 for path in here.glob("_rtpcore" + suffix)]
        if not built:
            raise unittest.SkipTest(NOT_BUILT)
        if CJitterBuffer is None:
            self.fail(f"{built[0]} is there but does not import: {_import_error}")
        self.assertTrue(issubclass(JitterBuffer, CJitterBuffer))
        self.assertTrue(issubclass(ReceiverStatistics, CReceiverStatistics))


PATTERN = bytes(range(256)) * 3
JITTER_SETTINGS = st.fixed_dictionaries({
    "silence_byte": st.sampled_from([0xFF, 0xD5]),
    "frame_samples": st.sampled_from([160, 160, 80, 240]),
    "depth_frames": st.integers(0, 3),
    "max_packets": st.sampled_from([64, 8, 2, 1]),
    "resync_after_idle": st.integers(0, 4),
    "excess_frames": st.integers(0, 3),
    "excess_pops": st.integers(1, 6),
    "max_hold_frames": st.integers(0, 6),
})
# the private ones too: the C types expose them read-only so that a difference shows
# where it arises rather than frames later
JITTER_FIELDS = ("late", "overflows", "resyncs", "dropped_frames", "buffered_packets", "_next", "_highest_end",
                 "_delay", "_idle_pops", "_excess_run", "_packets", "held_frames", "_held")
STATISTICS_FIELDS = ("ssrc", "clock_rate", "base_seq", "max_seq", "bad_seq", "cycles", "received",
                     "received_prior", "expected_prior", "probation", "jitter",
                     "valid", "extended_max", "expected", "lost",
                     "_transit", "_last_arrival", "_last_timestamp")


class DifferentialTests(unittest.TestCase):
    """The C types against the Python references on random streams."""

    if CJitterBuffer is None:
        skip = NOT_BUILT

    def assertSameBuffers(self, c_buffer, py_buffer):
        self.assertEqual({name: getattr(c_buffer, name) for name in JITTER_FIELDS},
                         {name: getattr(py_buffer, name) for name in JITTER_FIELDS})

    @settings(max_examples=300, deadline=None)
    @given(JITTER_SETTINGS, st.data())
    def test_jitter_buffer(self, arguments, data):
        c_buffer = CJitterBuffer(**arguments)
        py_buffer = PyJitterBuffer(**arguments)
        frame_samples = arguments["frame_samples"]
        sender = data.draw(st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 3000, 2**32 - 1)),
                           "first timestamp")
        pushed = [sender]
        for serial in range(data.draw(st.integers(1, 120), "steps")):
            action = data.draw(st.sampled_from(
                ["pop", "pop", "pop", "next", "next", "near", "play", "play", "again", "far", "reset", "codec"]))
            if action == "pop":
                c_frame, py_frame = c_buffer.pop(), py_buffer.pop()
                self.assertIs(type(c_frame[0]), bytes)
                self.assertEqual(c_frame, py_frame)
            elif action == "reset":
                c_buffer.reset()
                py_buffer.reset()
            elif action == "codec":
                c_buffer.set_silence_byte(serial % 256)
                py_buffer.set_silence_byte(serial % 256)
            else:
                size = data.draw(st.one_of(st.sampled_from([frame_samples, 80, 160, 240, 320, 480]),
                                           st.integers(1, 480)))
                if action == "next":  # in order, the sender's own framing
                    timestamp = sender
                elif action == "near":  # lost, reordered, late or overlapping
                    timestamp = sender + data.draw(st.integers(-3000, 6000))
                elif action == "play":  # around what plays next, wherever the sender is
                    position = sender if py_buffer._next is None else py_buffer._next
                    timestamp = position + data.draw(st.one_of(
                        st.integers(-2, 6).map(lambda frames: frames * frame_samples),
                        st.integers(-2 * frame_samples, 6 * frame_samples)))
                elif action == "again":  # a duplicate, or a retransmission with new content
                    timestamp = data.draw(st.sampled_from(pushed))
                else:  # a jump, or the sender restarting anywhere
                    timestamp = data.draw(st.integers(0, 2**32 - 1))
                timestamp &= 0xFFFFFFFF
                sender = (timestamp + size) & 0xFFFFFFFF
                pushed.append(timestamp)
                payload = PATTERN[serial % 256:serial % 256 + size]
                c_buffer.push(timestamp, payload)
                py_buffer.push(timestamp, payload)
            self.assertSameBuffers(c_buffer, py_buffer)
        for _ in range(6):  # whatever is left plays out the same
            self.assertEqual(c_buffer.pop(), py_buffer.pop())
        self.assertSameBuffers(c_buffer, py_buffer)

    def assertSameStatistics(self, c_stats, py_stats):
        self.assertEqual({name: getattr(c_stats, name) for name in STATISTICS_FIELDS},
                         {name: getattr(py_stats, name) for name in STATISTICS_FIELDS})

    @settings(max_examples=300, deadline=None)
    @given(st.integers(0, 2**32 - 1), st.one_of(st.integers(0, 65535), st.integers(65400, 65535)),
           st.sampled_from([8000, 16000, 48000]), st.data())
    def test_receiver_statistics(self, ssrc, first, clock_rate, data):
        c_stats = ReceiverStatistics(ssrc, first, clock_rate)
        py_stats = PyReceiverStatistics(ssrc, first, clock_rate)
        sequence = first
        timestamp = data.draw(st.integers(0, 2**32 - 1), "first timestamp")
        arrival = data.draw(st.floats(0, 1e6), "first arrival")
        for _ in range(data.draw(st.integers(1, 150), "steps")):
            action = data.draw(st.sampled_from(
                ["next", "next", "next", "next", "skip", "back", "again", "jump", "report"]))
            if action == "report":
                self.assertEqual(c_stats.report_block(), py_stats.report_block())
                continue
            if action == "next":
                sequence += 1
            elif action == "skip":  # loss, up to beyond MAX_DROPOUT
                sequence += data.draw(st.integers(2, 3500))
            elif action == "back":  # reordered, up to beyond MAX_MISORDER
                sequence -= data.draw(st.integers(1, 200))
            elif action == "jump":  # a wild jump, or a restart once followed by "next"
                sequence = data.draw(st.integers(0, 65535))
            sequence &= 0xFFFF
            timestamp = (timestamp + data.draw(st.one_of(st.just(160), st.integers(-4000, 8000)))) & 0xFFFFFFFF
            arrival += data.draw(st.floats(-0.05, 0.2))
            self.assertEqual(c_stats.update(sequence, timestamp, arrival),
                             py_stats.update(sequence, timestamp, arrival))
            self.assertSameStatistics(c_stats, py_stats)
