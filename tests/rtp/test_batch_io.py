"""The media tick reading RTP sockets itself (portaum_tx.rtp.batch_io), over real
loopback sockets."""

import socket

import numpy as np
from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.rtp.batch_io import BatchedMediaClock, BatchedMediaEngine
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.jitter import FRAME_AUDIO
from portaum_tx.rtp.packet import RtpPacket, build_rtp
from portaum_tx.rtp.session import MediaParams

from tests.rtp.loopback import LoopbackRig, Peer, SocketReactor
from tests.support import has_ipv6_loopback


def speech_frame(index):
    t = np.arange(160) + index * 160
    return PCMU.encode((8000 * np.sin(2 * np.pi * 440 * t / 8000)).astype(np.int16))


def packets(count, first_sequence=100, ssrc=0x1234):
    return [build_rtp(RtpPacket(payload_type=0, sequence=first_sequence + i,
                                timestamp=1000 + 160 * i, ssrc=ssrc, payload=speech_frame(i)))
            for i in range(count)]


class Frames:
    def __init__(self):
        self.statuses = []
        self.pcm = []

    def inbound_frame(self, session, pcm, status):
        self.statuses.append(status)
        self.pcm.append(pcm.copy())


IP_RECVERR = 11  # linux/in.h




class BatchedMediaClockTests(unittest.TestCase):
    def test_a_packet_that_arrived_before_a_tick_is_read_in_that_tick(self):
        # read at the end of the tick, played from the next one on
        rig, peer = LoopbackRig(self), Peer(self)
        session = rig.session(peer.address)
        frames = Frames()
        session.add_consumer(frames)
        for index, data in enumerate(packets(8)):
            peer.send(data, session)
            rig.tick()
            self.assertEqual(session.packets_received, index + 1)
        self.assertEqual(rig.media.packets_read, 8)
        audio = [pcm for status, pcm in zip(frames.statuses, frames.pcm) if status == FRAME_AUDIO]
        self.assertGreaterEqual(len(audio), 5)
        for index, pcm in enumerate(audio):
            np.testing.assert_array_equal(pcm, PCMU.decode(speech_frame(index)))

    def test_the_tick_sends_before_it_reads(self):
        # the send instants must not move with how long the reads take
        rig, peer = LoopbackRig(self), Peer(self)
        session = rig.session(peer.address)
        seen_by_peer = []
        handle = session.rtp_received

        def received(data, addr):
            seen_by_peer.append(len(peer.received()))
            handle(data, addr)
        session.rtp_received = received  # the first packet (not latched yet) takes this path
        peer.send(packets(1)[0], session)
        rig.tick()
        self.assertEqual(seen_by_peer, [1])

    def test_every_waiting_packet_is_read_and_idle_sessions_cost_nothing(self):
        rig, peer = LoopbackRig(self), Peer(self)
        session, idle = rig.session(peer.address), rig.session(peer.address)
        for data in packets(2):
            peer.send(data, session)
        rig.tick()
        self.assertEqual((session.packets_received, idle.packets_received), (2, 0))
        self.assertEqual(rig.media.packets_read, 2)
        rig.tick()
        self.assertEqual(rig.media.packets_read, 2)

    def _latched(self, rig, peer, **kwargs):
        """A session past probation and latched (the first three packets, through the
        session's own code), its rtp_received recording what still reaches it."""
        session = rig.session(peer.address, **kwargs)
        for data in packets(3):
            peer.send(data, session)
        rig.tick()
        self.assertTrue(session.latched)
        calls = []
        handle = session.rtp_received
        session.rtp_received = lambda data, addr: (calls.append(data), handle(data, addr))
        return session, calls

    def test_the_usual_packet_is_handled_without_the_session(self):
        rig, peer = LoopbackRig(self), Peer(self)
        session, calls = self._latched(rig, peer)
        for data in packets(10)[3:]:
            peer.send(data, session)
        rig.tick()
        self.assertEqual(calls, [])
        self.assertEqual(session.packets_received, 10)
        self.assertEqual(session.stats.received, 9)  # the first packet was on probation
        self.assertEqual(rig.media._reader.fast_packets, 8)  # from the latch on

    def test_the_fast_path_remembers_a_verified_session_until_it_changes(self):
        rig, peer = LoopbackRig(self), Peer(self)
        session, calls = self._latched(rig, peer)
        reader, fd = rig.media._reader, rig.media._fds[session]
        self.assertTrue(reader.armed(fd))
        # a re-INVITE to A-law: the slot is forgotten, so mu-law packets are no longer
        # taken for audio and A-law ones are (once checked against the new parameters)
        session.configure(MediaParams(remote_address=peer.address, payload_type=8))
        self.assertFalse(reader.armed(fd))
        peer.send(packets(1, first_sequence=103)[0], session)
        rig.tick()
        self.assertEqual(len(calls), 1)
        self.assertEqual(session.packets_dropped, 1)
        alaw = build_rtp(RtpPacket(payload_type=8, sequence=104, timestamp=1000 + 160 * 4,
                                   ssrc=0x1234, payload=b"\xd5" * 160))
        for _ in range(2):
            peer.send(alaw, session)
            rig.tick()
        self.assertEqual(len(calls), 1)
        self.assertTrue(reader.armed(fd))

    def test_a_new_ssrc_disarms_and_the_old_one_is_not_taken_for_it(self):
        rig, peer = LoopbackRig(self), Peer(self)
        session, calls = self._latched(rig, peer)
        reader, fd = rig.media._reader, rig.media._fds[session]
        old_stats = session.stats
        peer.send(packets(1, first_sequence=500, ssrc=0x9999)[0], session)
        rig.tick()
        self.assertEqual(len(calls), 1)  # the new source went through the session
        self.assertEqual(session.remote_ssrc, 0x9999)
        self.assertIsNot(session.stats, old_stats)
        self.assertFalse(reader.armed(fd))
        received_before = old_stats.received
        peer.send(packets(1, first_sequence=103)[0], session)  # the old SSRC again
        rig.tick()
        self.assertEqual(len(calls), 2)  # checked by the session, not the stale slot
        self.assertEqual(old_stats.received, received_before)

    def test_a_packet_from_elsewhere_is_not_taken_by_the_armed_slot(self):
        rig, peer, stranger = LoopbackRig(self), Peer(self), Peer(self)
        session, calls = self._latched(rig, peer)
        stranger.send(packets(1, first_sequence=103)[0], session)
        rig.tick()
        self.assertEqual(len(calls), 1)
        self.assertEqual(session.packets_dropped, 1)
        self.assertEqual(session.packets_received, 3)

    def test_any_datagram_from_the_latched_peer_leaves_the_stream_intact(self):
        # whatever arrives on an armed socket (garbage, RTCP, other payload types and
        # SSRCs, extensions, padding) is either taken or refused without an error, and
        # the stream's next packet is still counted
        rig, peer = LoopbackRig(self), Peer(self)
        session, _ = self._latched(rig, peer)
        sequence = [103]
        header = st.builds(
            lambda first, second, seq, ts, ssrc, payload: bytes([first, second]) +
            seq.to_bytes(2, "big") + ts.to_bytes(4, "big") + ssrc.to_bytes(4, "big") + payload,
            st.sampled_from([0x80, 0x90, 0xA0, 0x81, 0x00, 0xFF]), st.integers(0, 255),
            st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1),
            st.sampled_from([0x1234, 0x9999, 0]), st.binary(max_size=300))

        @settings(max_examples=150, deadline=None)
        @given(st.lists(st.one_of(st.binary(max_size=200), header), min_size=1, max_size=4))
        def arrive(datagrams):
            for data in datagrams:
                peer.send(data, session)
            rig.tick()
            received = session.packets_received
            peer.send(packets(1, first_sequence=sequence[0])[0], session)
            sequence[0] += 1
            rig.tick()
            self.assertFalse(session.closed)
            self.assertEqual(session.packets_received, received + 1)
        arrive()
        self.assertEqual(rig.media.read_errors, 0)

    def test_a_closed_session_leaves_no_slot_for_the_next_socket(self):
        rig, peer = LoopbackRig(self), Peer(self)
        session, _ = self._latched(rig, peer)
        reader, fd = rig.media._reader, rig.media._fds[session]
        session.close()
        self.assertFalse(reader.armed(fd))
        self.assertFalse(reader.disarm(fd))

    def test_a_flooded_port_gives_up_the_rest_of_its_queue_until_the_next_tick(self):
        rig, peer = LoopbackRig(self, max_reads=5), Peer(self)
        flooded, quiet = rig.session(peer.address), rig.session(peer.address)
        for data in packets(12):
            peer.send(data, flooded)
        peer.send(packets(1, ssrc=0x99)[0], quiet)
        rig.tick()
        self.assertEqual((flooded.packets_received, quiet.packets_received), (5, 1))
        rig.tick()
        self.assertEqual(flooded.packets_received, 10)
        rig.tick()
        self.assertEqual(flooded.packets_received, 12)

    def test_a_refused_read_is_counted_and_the_other_sessions_are_still_read(self):
        rig, peer = LoopbackRig(self), Peer(self)
        gone = Peer(self)
        gone_address = gone.address
        gone.socket.close()  # our packets to it come back as ICMP port unreachable
        first, second = rig.session(gone_address), rig.session(peer.address)
        # An unconnected UDP socket hears of ICMP errors only with IP_RECVERR; with it
        # the next read fails with ECONNREFUSED.
        first._rtp_transport.socket.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        peer.send(packets(1)[0], second)
        rig.tick()
        self.assertGreaterEqual(rig.media.read_errors, 1)
        self.assertEqual(second.packets_received, 1)
        peer.send(packets(1)[0], first)
        rig.tick()
        self.assertEqual(first.packets_received, 1)

    def test_ipv6_addresses_are_cut_to_host_and_port(self):
        if not has_ipv6_loopback():
            raise unittest.SkipTest("this host has no IPv6 loopback")
        rig = LoopbackRig(self, interface="::1")
        peer = Peer(self, socket.AF_INET6, "::1")
        session = rig.session(peer.address)
        seen = []
        handle = session.rtp_received
        session.rtp_received = lambda data, addr: (seen.append(addr), handle(data, addr))
        for data in packets(4):
            peer.send(data, session)
        rig.tick()
        self.assertEqual(seen[0], peer.address)
        self.assertEqual(session.remote_address, peer.address)
        self.assertEqual(session.packets_received, 4)
        self.assertEqual(len(seen), 2)  # from the latch on, without the session
        rig.tick()
        self.assertEqual(len(peer.received()), 2)  # and our packets reach it

    def test_sessions_not_started_or_closed_are_not_read(self):
        rig, peer = LoopbackRig(self), Peer(self)
        waiting = rig.session(peer.address, start=False)
        closed = rig.session(peer.address)
        peer.send(packets(1)[0], waiting)
        closed_port = closed.local_port
        closed.close("hangup")
        peer.socket.sendto(packets(1)[0], ("127.0.0.1", closed_port))
        rig.tick()
        self.assertEqual(rig.media.packets_read, 0)
        waiting.start()
        rig.tick()
        self.assertEqual(waiting.packets_received, 1)

    def test_a_failing_session_does_not_stop_the_tick(self):
        rig, peer = LoopbackRig(self), Peer(self)
        broken, fine = rig.session(peer.address), rig.session(peer.address)

        def explode(data, addr):
            raise RuntimeError("boom")
        broken.rtp_received = explode
        peer.send(packets(1)[0], broken)
        peer.send(packets(1, ssrc=0x77)[0], fine)
        rig.tick()
        self.assertEqual(fine.packets_received, 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class BatchedMediaEngineTests(unittest.TestCase):
    def test_rtp_ports_leave_the_reactor_and_rtcp_ports_stay(self):
        reactor = SocketReactor()
        engine = BatchedMediaEngine(reactor, port_range=(46000, 46999), interface="127.0.0.1")
        self.assertIsInstance(engine.media_clock, BatchedMediaClock)
        peer = Peer(self)
        session = engine.create_session()
        self.addCleanup(engine.stop)
        self.assertNotIn(session._rtp_transport, reactor.readers)
        self.assertIn(session._rtcp_transport, reactor.readers)
        session.configure(MediaParams(peer.address, telephone_event_pt=None))
        session.start()
        engine.start()
        stream = packets(5)
        for data in stream[:3]:
            peer.send(data, session)
        reactor.clock.advance(0.020)
        self.assertEqual(session.packets_received, 3)
        self.assertEqual(session.remote_address, peer.address)  # latched
        for data in stream[3:]:
            peer.send(data, session)
        reactor.clock.advance(0.020)
        self.assertEqual(session.packets_received, 5)
        self.assertEqual(engine.media_clock.packets_read, 5)
        self.assertEqual(len(peer.received()), 2)  # one packet per tick back to the peer
        session.close("hangup")
        self.assertEqual(engine.media_clock.sockets_read, 0)
