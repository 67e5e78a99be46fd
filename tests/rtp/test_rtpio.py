"""The C packet I/O of the media tick (portaum_tx/rtp/csrc/rtpio.c) against the
Python session code it stands in for: the same packets on the wire, the same session
state, for every kind of packet, over real loopback sockets."""

import random

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.rtp import _rtpcore
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.dtmf import telephone_event_payloads
from portaum_tx.rtp.jitter import JitterBuffer
from portaum_tx.rtp.packet import RtpPacket, build_rtp
from portaum_tx.rtp.session import MediaParams
from portaum_tx.rtp.stats import ReceiverStatistics

from tests.rtp.loopback import LoopbackRig, Peer

SEND_STATE = ("_sequence", "_timestamp", "packets_sent", "octets_sent", "_marker_pending",
              "_sent_since_report", "send_errors")
RECEIVE_STATE = ("packets_received", "packets_dropped", "latched", "remote_address", "remote_ssrc",
                 "_last_heard", "_dead_reported")
STATS_STATE = ("ssrc", "base_seq", "max_seq", "bad_seq", "cycles", "received", "probation", "jitter")


class Tone:
    """A source of 20 ms frames: PCM on even ticks, codec bytes on odd ones."""

    def __init__(self):
        self.index = 0

    def next_frame(self, session):
        self.index += 1
        t = np.arange(160) + self.index * 160
        pcm = (6000 * np.sin(2 * np.pi * 350 * t / 8000)).astype(np.int16)
        return pcm if self.index % 2 else PCMU.encode(pcm)


class Digits:
    def __init__(self, session):
        self.digits = []
        session.dtmf_listeners.append(lambda digit: self.digits.append(digit.digit))


class Frames:
    def __init__(self, session):
        self.frames = []
        session.add_consumer(self)

    def inbound_frame(self, session, pcm, status):
        self.frames.append((status, pcm.tobytes()))


class SendTests(unittest.TestCase):
    """Session A is sent by the C path, session B (same SSRC, sequence and timestamp
    seeds) by RtpSession.send_frame; their peers must receive the same bytes."""

    def setUp(self):
        self.rig = LoopbackRig(self)
        self.peer_a, self.peer_b = Peer(self), Peer(self)
        self.a = self.rig.session(self.peer_a.address, rng=random.Random(5))
        self.b = self.rig.session(self.peer_b.address, rng=random.Random(5))
        self.b._rtp_fd = -1  # the C path hands it to send_frame
        for session in (self.a, self.b):
            session.set_source(Tone())

    def assertSame(self, ticks=1):
        self.rig.tick(ticks)
        sent_a, sent_b = self.peer_a.received(), self.peer_b.received()
        self.assertEqual(sent_a, sent_b)
        for name in SEND_STATE:
            self.assertEqual(getattr(self.a, name), getattr(self.b, name), name)
        return sent_a

    def test_plain_audio_with_the_marker_on_the_first_packet(self):
        sent = self.assertSame(5)
        self.assertEqual(len(sent), 5)
        self.assertEqual([data[1] & 0x80 for data in sent], [0x80, 0, 0, 0, 0])
        self.assertEqual(self.a.packets_sent, 5)

    def test_telephone_events_in_between_and_the_new_talk_spurt_after(self):
        self.assertSame(2)
        for session in (self.a, self.b):
            session.send_dtmf("5")
        sent = self.assertSame(12)
        self.assertIn(101, [data[1] & 0x7F for data in sent])
        self.assertIn(0x80, [data[1] & 0x80 for data in sent[1:] if data[1] & 0x7F == 0])

    def test_hold_resume_other_ptime_and_silence(self):
        self.assertSame(3)
        for session in (self.a, self.b):
            session.configure(MediaParams(session.remote_address, direction="inactive"))
        self.assertEqual(self.assertSame(3), [])
        for session in (self.a, self.b):
            session.configure(MediaParams(session.remote_address, ptime=40))
        self.assertEqual(len(self.assertSame(4)), 2)
        for session in (self.a, self.b):
            session.configure(MediaParams(session.remote_address, payload_type=8))
            session.set_source(None)
        sent = self.assertSame(3)
        self.assertEqual({data[12:] for data in sent}, {bytes([0xD5]) * 160})

    def test_a_send_that_fails_is_counted_and_the_timestamp_still_moves(self):
        for session in (self.a, self.b):
            session.configure(MediaParams(("127.0.0.1", 0)))  # port 0: sendto refuses it
        self.assertSame(3)
        self.assertEqual(self.a.send_errors, 3)
        self.assertEqual(self.a.packets_sent, 0)

    def test_housekeeping_runs_when_due(self):
        self.a.housekeeping_due = self.b.housekeeping_due = 0.0
        self.a._next_rtcp = self.b._next_rtcp = 0.0
        self.assertSame(1)
        self.assertEqual((self.a.rtcp_sent, self.b.rtcp_sent), (1, 1))

    def test_closed_sessions_are_skipped(self):
        self.a.close("hangup")
        self.rig.tick()
        self.assertEqual(self.peer_a.received()[:1], [])

    def test_frames_must_be_one_per_session(self):
        with self.assertRaises(ValueError):
            _rtpcore.send_frames([self.a], [], 0.0)


def audio(sequence, timestamp, ssrc, size=160, marker=False, payload_type=0):
    payload = bytes((sequence + i) % 256 for i in range(size))
    return build_rtp(RtpPacket(payload_type=payload_type, sequence=sequence & 0xFFFF,
                               timestamp=timestamp & 0xFFFFFFFF, ssrc=ssrc, payload=payload,
                               marker=marker))


def event(sequence, timestamp, ssrc, digit="7"):
    return [build_rtp(RtpPacket(payload_type=101, sequence=(sequence + i) & 0xFFFF,
                                timestamp=timestamp & 0xFFFFFFFF, ssrc=ssrc, payload=payload,
                                marker=marker))
            for i, (marker, payload) in enumerate(telephone_event_payloads(digit, 100, 20))]


# one tick's worth of arrivals: (kind, sequence step, timestamp step, ssrc index, size)
ARRIVAL = st.tuples(
    st.sampled_from(["audio", "audio", "audio", "audio", "event", "rtcp", "garbage", "stranger"]),
    st.sampled_from([1, 1, 1, 1, 0, 2, -1, -3, 40, 3500, -70]),
    st.sampled_from([160, 160, 160, 0, 320, -160, 80, 1 << 20]),
    st.sampled_from([0, 0, 0, 0, 1]),
    st.sampled_from([160, 160, 160, 80, 320, 0, 7]),
)


class ReceiveTests(unittest.TestCase):
    """Session A is read by the C reader, session B gets the same packets through
    RtpSession.rtp_received at the same instant; they must end up the same."""

    def make(self):
        rig = LoopbackRig(self)
        peer, stranger = Peer(self), Peer(self)
        a = rig.session(peer.address, rng=random.Random(9))
        b = rig.session(peer.address, rng=random.Random(9))
        return rig, peer, stranger, a, b

    def deliver(self, rig, sender, a, b, datagrams):
        for data in datagrams:
            sender.send(data, a)
        rig.tick()
        for data in datagrams:
            b.rtp_received(data, sender.address)

    def assertSameState(self, a, b):
        for name in RECEIVE_STATE:
            self.assertEqual(getattr(a, name), getattr(b, name), name)
        self.assertEqual(a.stats is None, b.stats is None)
        if a.stats is not None:
            for name in STATS_STATE:
                self.assertEqual(getattr(a.stats, name), getattr(b.stats, name), name)
        for name in ("late", "resyncs", "dropped_frames", "buffered_packets"):
            self.assertEqual(getattr(a.jitter, name), getattr(b.jitter, name), name)

    def test_the_session_buffers_are_the_c_types(self):
        rig, peer, stranger, a, b = self.make()
        self.assertIsInstance(a.jitter, _rtpcore.JitterBuffer)
        self.deliver(rig, peer, a, b, [audio(1, 160, 0xAB)])
        self.assertIsInstance(a.stats, _rtpcore.ReceiverStatistics)
        self.assertTrue(issubclass(JitterBuffer, _rtpcore.JitterBuffer))
        self.assertTrue(issubclass(ReceiverStatistics, _rtpcore.ReceiverStatistics))

    def test_a_call_in_order_then_reordered_lost_and_events(self):
        rig, peer, stranger, a, b = self.make()
        frames_a, frames_b = Frames(a), Frames(b)
        digits_a, digits_b = Digits(a), Digits(b)
        ssrc = 0x1234
        for n in range(6):
            self.deliver(rig, peer, a, b, [audio(100 + n, 8000 + 160 * n, ssrc)])
        self.deliver(rig, peer, a, b, [audio(107, 8000 + 160 * 7, ssrc), audio(106, 8000 + 160 * 6, ssrc)])
        self.deliver(rig, peer, a, b, [audio(109, 8000 + 160 * 9, ssrc)])  # 108 lost
        self.deliver(rig, peer, a, b, event(110, 8000 + 160 * 10, ssrc))
        self.deliver(rig, peer, a, b, [audio(110 + 7, 8000 + 160 * 16, ssrc, marker=True)])
        self.deliver(rig, peer, a, b, [audio(118, 8000 + 160 * 17, ssrc, payload_type=8)])  # wrong PT
        stranger.send(audio(119, 8000 + 160 * 18, ssrc), a)  # not the latched peer
        rig.tick()
        b.rtp_received(audio(119, 8000 + 160 * 18, ssrc), stranger.address)
        rig.tick(3)
        self.assertSameState(a, b)
        self.assertEqual(frames_a.frames, frames_b.frames)
        self.assertEqual(digits_a.digits, ["7"])
        self.assertEqual(digits_a.digits, digits_b.digits)
        self.assertEqual(a.stats.lost, 1)
        self.assertGreater(rig.media._reader.fast_packets, 5)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ticks=st.lists(st.lists(ARRIVAL, max_size=3), min_size=1, max_size=30),
           start=st.integers(0, 0xFFFF), start_ts=st.integers(0, 0xFFFFFFFF))
    def test_any_stream_leaves_both_paths_in_the_same_state(self, ticks, start, start_ts):
        rig, peer, stranger, a, b = self.make()
        try:
            frames_a, frames_b = Frames(a), Frames(b)
            digits_a, digits_b = Digits(a), Digits(b)
            ssrcs = (0x5EED, 0xBEEF)
            sequence, timestamp = start, start_ts
            for arrivals in ticks:
                datagrams, strangers = [], []
                for kind, step, ts_step, ssrc_index, size in arrivals:
                    sequence += step
                    timestamp += ts_step
                    ssrc = ssrcs[ssrc_index]
                    if kind == "audio":
                        datagrams.append(audio(sequence, timestamp, ssrc, size))
                    elif kind == "event":
                        datagrams.extend(event(sequence, timestamp, ssrc, "#")[:3])
                    elif kind == "rtcp":
                        datagrams.append(bytes([0x80, 201, 0, 1]) + ssrc.to_bytes(4, "big"))
                    elif kind == "garbage":
                        datagrams.append(bytes([0x80, 0]) + bytes(size % 11))
                    else:
                        strangers.append(audio(sequence, timestamp, ssrc, size))
                for data in datagrams:
                    peer.send(data, a)
                for data in strangers:
                    stranger.send(data, a)
                rig.tick()
                for data in datagrams:
                    b.rtp_received(data, peer.address)
                for data in strangers:
                    b.rtp_received(data, stranger.address)
                self.assertSameState(a, b)
            rig.tick(3)
            self.assertSameState(a, b)
            self.assertEqual(frames_a.frames, frames_b.frames)
            self.assertEqual(digits_a.digits, digits_b.digits)
        finally:
            rig.close()


class PopFramesTests(unittest.TestCase):
    def test_a_python_jitter_buffer_is_popped_through_its_method(self):
        rig, peer = LoopbackRig(self), Peer(self)
        session = rig.session(peer.address)
        python_buffer = _PythonJitter(0xFF)
        session.jitter = python_buffer
        codes, statuses = _rtpcore.pop_frames([session])
        self.assertEqual(codes, b"\xff" * 160)
        self.assertEqual(list(statuses), [2])
        self.assertEqual(python_buffer.pops, 1)

    def test_a_frame_of_the_wrong_size_is_refused(self):
        rig, peer = LoopbackRig(self), Peer(self)
        session = rig.session(peer.address)
        session.jitter = _PythonJitter(0xFF, frame_samples=80)
        with self.assertRaises(ValueError):
            _rtpcore.pop_frames([session])


class _PythonJitter:
    def __init__(self, silence, frame_samples=160):
        self.frame = bytes([silence]) * frame_samples
        self.pops = 0

    def pop(self):
        self.pops += 1
        return self.frame, 2


class StreamStateTests(unittest.TestCase):
    """RtpSession's per-packet fields live in the C base StreamState: they must still
    behave as the session's attributes, and the C send path must follow them."""

    def test_a_new_far_end_address_is_sent_to_from_the_next_packet(self):
        rig = LoopbackRig(self)
        first, second = Peer(self), Peer(self)
        session = rig.session(first.address)
        session.set_source(Tone())
        rig.tick(2)
        self.assertEqual(len(first.received()), 2)
        session.configure(MediaParams(second.address, payload_type=8))
        rig.tick(3)
        self.assertEqual(first.received(), [])
        sent = second.received()
        self.assertEqual(len(sent), 3)
        self.assertEqual({data[1] & 0x7F for data in sent}, {8})

    def test_fields_read_and_assign_as_attributes(self):
        rig, peer = LoopbackRig(self), Peer(self)
        session = rig.session(peer.address, start=False)
        self.assertIsInstance(session, _rtpcore.StreamState)
        self.assertIs(session.closed, False)
        self.assertEqual(session.remote_address, peer.address)
        session.packets_sent += 2
        self.assertEqual(session.packets_sent, 2)
        session.housekeeping_due = 3
        self.assertEqual(session.housekeeping_due, 3.0)
        with self.assertRaises(TypeError):
            session._sequence = None
        with self.assertRaises(TypeError):
            session.closed = 1

    def test_a_session_in_a_reference_cycle_is_collected(self):
        import gc
        import weakref
        rig, peer = LoopbackRig(self), Peer(self)
        session = rig.session(peer.address, start=False)
        session.close("hangup")
        rig.clock.advance(0)  # the ports' connectionLost
        rig.sessions.remove(session)
        session._outbound = [session]  # a cycle through a C field
        gone = weakref.ref(session)
        del session
        gc.collect()
        self.assertIsNone(gone())


class NextFramesTests(unittest.TestCase):
    """next_frames takes a Player's frames inside a prompt in C; they must be the
    frames Player.next_frame gives, through prompt ends, loops, silence and a codec
    change, and the playback must count the same time played."""

    def make_pair(self, items):
        from portaum_tx.rtp.player import Player
        rig, peer = LoopbackRig(self), Peer(self)
        a = rig.session(peer.address, start=False)
        b = rig.session(peer.address, start=False)
        calls = []
        player_a, player_b = Player(a), Player(b)
        python_next_frame = player_a.next_frame

        def counted(session):
            calls.append(1)
            return python_next_frame(session)
        player_a.next_frame = counted
        results = []
        for player in (player_a, player_b):
            player.play(items).addCallback(results.append)
        return a, b, player_a, player_b, calls, results

    def test_the_same_frames_as_the_player_gives(self):
        from portaum_tx.rtp.player import MusicOnHold, Prompt, Silence
        speech = Prompt(PCMU, bytes(range(256)) * 40 + b"\x11" * 13, "speech")  # not whole frames
        hold = Prompt(PCMU, bytes(range(100, 200)) * 50, "hold")
        a, b, player_a, player_b, calls, results = self.make_pair([speech, Silence(30), MusicOnHold(hold)])
        taken = expected = 0
        for tick in range(200):
            if tick == 7:
                for session in (a, b):
                    session.configure(MediaParams(session.remote_address, payload_type=8))
            frames, pcm_rows = _rtpcore.next_frames([a], np.ndarray)
            self.assertEqual(pcm_rows, [])
            self.assertEqual(frames, [b.next_outbound()], "tick %d" % tick)
            taken += 1
            expected += 1
        self.assertEqual(player_a._played, player_b._played)
        self.assertLess(len(calls), taken // 4)  # most frames never reached Python
        player_a.stop()
        player_b.stop()
        self.assertEqual(results[0], results[1])
        self.assertEqual(results[0].played_ms, expected * 20)

    def test_keys_to_send_and_closed_sessions_go_through_python(self):
        from portaum_tx.rtp.player import Prompt
        prompt = Prompt(PCMU, bytes(range(256)) * 10, "prompt")
        a, b, player_a, player_b, calls, results = self.make_pair([prompt])
        _rtpcore.next_frames([a], np.ndarray)
        before = len(calls)
        a.params = b.params = MediaParams(a.remote_address, telephone_event_pt=None).validated()
        for session in (a, b):
            session.send_dtmf("1")  # in-band: the tone replaces the prompt's audio
        frames, pcm_rows = _rtpcore.next_frames([a], np.ndarray)
        self.assertEqual(pcm_rows, [0])
        self.assertEqual(len(calls), before + 1)
        a.close("hangup")
        self.assertEqual(_rtpcore.next_frames([a], np.ndarray), ([None], []))

    def test_listening_names_the_open_sessions_with_consumers(self):
        rig, peer = LoopbackRig(self), Peer(self)
        sessions = [rig.session(peer.address, start=False) for _ in range(4)]
        for index in (1, 2, 3):
            Frames(sessions[index])
        sessions[2].close("hangup")
        self.assertEqual(_rtpcore.listening(sessions), [1, 3])


class NotASessionTests(unittest.TestCase):
    def test_the_tick_functions_refuse_anything_but_an_rtp_session(self):
        stranger = [object()]
        for call in (lambda: _rtpcore.next_frames(stranger, np.ndarray),
                     lambda: _rtpcore.listening(stranger),
                     lambda: _rtpcore.pop_frames(stranger),
                     lambda: _rtpcore.send_frames(stranger, [None], 0.0)):
            with self.assertRaisesRegex(TypeError, "session 0 is a object, not an RtpSession"):
                call()
