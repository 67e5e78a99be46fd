import numpy as np
from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.rtp import tones
from portaum_tx.rtp.codecs import PCMA, PCMU
from portaum_tx.rtp.dtmf import TelephoneEvent
from portaum_tx.rtp.packet import (
    Goodbye, ReceiverReport, ReportBlock, SenderReport, SourceDescription, build_rtcp,
    ntp_from_seconds, ntp_middle32,
)
from portaum_tx.rtp.session import MediaParams, PortAllocator, PortRangeExhausted, RtpSession, RtpSessionError
from tests.rtp.fakes import PEER, FakePeer, FakeUdpReactor, Rig


def port_of(rig, session):
    return rig.reactor.ports[session.local_port]


class OutboundTests(unittest.TestCase):
    def test_one_packet_per_tick_with_consecutive_headers(self):
        rig = Rig()
        session = rig.session()
        rig.run(1.0)
        sent = port_of(rig, session).rtp()
        self.assertEqual(len(sent), 50)
        packets = [p for p, _ in sent]
        self.assertTrue(all(addr == PEER for _, addr in sent))
        self.assertEqual([p.marker for p in packets], [True] + [False] * 49)
        self.assertEqual({p.ssrc for p in packets}, {session.ssrc})
        seqs = [p.sequence for p in packets]
        self.assertEqual([(b - a) & 0xFFFF for a, b in zip(seqs, seqs[1:])], [1] * 49)
        stamps = [p.timestamp for p in packets]
        self.assertEqual({(b - a) & 0xFFFFFFFF for a, b in zip(stamps, stamps[1:])}, {160})
        self.assertEqual(packets[0].payload, b"\xff" * 160)  # silence without a source

    def test_random_initial_values_differ_between_sessions(self):
        rig = Rig()
        a, b = rig.session(), rig.session()
        rig.run(0.02)
        pa, pb = port_of(rig, a).rtp()[0][0], port_of(rig, b).rtp()[0][0]
        self.assertNotEqual((pa.ssrc, pa.sequence, pa.timestamp), (pb.ssrc, pb.sequence, pb.timestamp))

    def test_ptime_and_codec_from_sdp(self):
        rig = Rig()
        s30 = rig.session(MediaParams(PEER, payload_type=8, ptime=30))
        s10 = rig.session(MediaParams(PEER, ptime=10))
        rig.run(1.2)
        p30 = [p for p, _ in port_of(rig, s30).rtp()]
        p10 = [p for p, _ in port_of(rig, s10).rtp()]
        self.assertEqual((len(p30), {len(p.payload) for p in p30}, {p.payload_type for p in p30}),
                         (40, {240}, {8}))
        self.assertEqual(p30[0].payload, b"\xd5" * 240)
        self.assertEqual((len(p10), {len(p.payload) for p in p10}), (120, {80}))

    def test_source_pcm_and_bytes_are_sent(self):
        rig = Rig()
        ulaw, alaw = rig.session(), rig.session(MediaParams(PEER, payload_type=8))
        beep = tones.beep(20)

        class Beep:
            def next_frame(self, session):
                return beep

        class Raw:
            def next_frame(self, session):
                return b"\x11" * 160

        ulaw.set_source(Beep())
        alaw.set_source(Beep())
        rig.run(0.02)
        self.assertEqual(port_of(rig, ulaw).rtp()[0][0].payload, PCMU.encode(beep))
        self.assertEqual(port_of(rig, alaw).rtp()[0][0].payload, PCMA.encode(beep))
        ulaw.set_source(Raw())
        rig.run(0.02)
        self.assertEqual(port_of(rig, ulaw).rtp()[1][0].payload, b"\x11" * 160)

    def test_rfc4733_digits_sent_then_audio_resumes_with_marker(self):
        rig = Rig()
        session = rig.session()
        rig.run(0.1)
        session.send_dtmf("5#", duration_ms=60)
        rig.run(0.4)
        packets = [p for p, _ in port_of(rig, session).rtp()][5:]
        kinds = "".join("E" if p.payload_type == 101 else "a" for p in packets)
        # five event packets per press, 60 ms of audio between presses and after
        self.assertTrue(kinds.startswith("EEEEEaaaEEEEEaaa"), kinds)
        events = [p for p in packets if p.payload_type == 101]
        first = events[:5]
        self.assertEqual({p.timestamp for p in first}, {first[0].timestamp})
        self.assertEqual([p.marker for p in first], [True, False, False, False, False])
        decoded = [TelephoneEvent.parse(p.payload) for p in first]
        self.assertEqual([(e.event, e.end, e.duration) for e in decoded],
                         [(5, False, 160), (5, False, 320), (5, True, 480), (5, True, 480), (5, True, 480)])
        self.assertEqual(TelephoneEvent.parse(events[5].payload).event, 11)
        self.assertEqual((events[5].timestamp - first[0].timestamp) & 0xFFFFFFFF, 160 * 8)
        audio_after = packets[5]
        self.assertEqual((audio_after.payload_type, audio_after.marker), (0, True))
        seqs = [p.sequence for p in packets]
        self.assertEqual([(b - a) & 0xFFFF for a, b in zip(seqs, seqs[1:])], [1] * (len(seqs) - 1))
        stamps = [p.timestamp for p in packets if p.payload_type == 0]
        self.assertEqual({(b - a) & 0xFFFFFFFF for a, b in zip(stamps, stamps[1:])} - {160}, {160 * 6})

    def test_inband_digits_when_no_telephone_event(self):
        rig = Rig()
        sender = rig.session(MediaParams(PEER, telephone_event_pt=None))
        sender.send_dtmf("7")
        rig.run(0.3)
        audio = np.concatenate([PCMU.decode(p.payload) for p, _ in port_of(rig, sender).rtp()])
        receiver = rig.session(MediaParams(PEER, telephone_event_pt=None))
        digits = []
        receiver.dtmf_listeners.append(digits.append)
        peer = FakePeer(receiver)
        for start in range(0, len(audio), 160):
            peer.send(PCMU.encode(audio[start:start + 160]))
            rig.run(0.02)
        self.assertEqual([(d.digit, d.source) for d in digits], [("7", "inband")])

    def test_inband_press_with_lost_packets_is_one_digit(self):
        # the jitter buffer conceals a lost packet with silence; the detector must not
        # hear that as the key's end (one press reported twice)
        audio = np.concatenate([tones.silence(40), tones.dtmf("5", 300), tones.silence(200)])
        for lost in ((5,), (6, 7)):
            rig = Rig()
            receiver = rig.session(MediaParams(PEER, telephone_event_pt=None))
            digits = []
            receiver.dtmf_listeners.append(digits.append)
            peer = FakePeer(receiver)
            for index, start in enumerate(range(0, len(audio), 160)):
                if index in lost:
                    peer.sequence += 1
                    peer.timestamp += 160
                else:
                    peer.send(PCMU.encode(audio[start:start + 160]))
                rig.run(0.02)
            self.assertEqual([(d.digit, d.source) for d in digits], [("5", "inband")], lost)
            self.assertEqual(receiver.stats.lost, len(lost))


class InboundTests(unittest.TestCase):
    def test_decoded_audio_reaches_consumers_in_order(self):
        rig = Rig()
        session = rig.session()
        frames = []

        class Collector:
            def inbound_frame(self, session, pcm, status):
                frames.append((pcm.copy(), status))

        session.add_consumer(Collector())
        peer = FakePeer(session)
        for n in range(5):
            peer.send(bytes([0x80 + n]) * 160)
            rig.run(0.02)
        rig.run(0.06)
        audio = [f for f, status in frames if status == 0]
        self.assertEqual([int(f[0]) for f in audio], [int(PCMU.decode(bytes([0x80 + n]))[0]) for n in range(5)])

    def test_rfc4733_digit_reported_once(self):
        rig = Rig()
        session = rig.session()
        digits = []
        session.dtmf_listeners.append(digits.append)
        peer = FakePeer(session)
        for n in range(3):
            peer.send(b"\xff" * 160)
        for duration, end in ((160, False), (320, False), (480, True), (480, True), (480, True)):
            payload = TelephoneEvent(9, end, 12, duration).to_bytes()
            peer.send(payload, advance=False, payload_type=101, marker=duration == 160)
            peer.sequence += 1
        self.assertEqual([(d.digit, d.source, d.volume) for d in digits], [("9", "rfc4733", 12)])

    def test_sip_info_digits_go_to_the_same_listeners(self):
        rig = Rig()
        session = rig.session()
        digits = []
        session.dtmf_listeners.append(digits.append)
        session.receive_info_dtmf("application/dtmf-relay", "Signal=*\r\nDuration=100\r\n")
        self.assertEqual([(d.digit, d.source) for d in digits], [("*", "info")])

    def test_bad_datagrams_and_unknown_payload_types_are_counted_and_dropped(self):
        rig = Rig()
        session = rig.session()
        session.rtp_received(b"\x00\x01", PEER)
        session.rtp_received(FakePeer(session).packet(b"x" * 20, payload_type=18), PEER)
        session.rtp_received(FakePeer(session).packet(b"\x01", payload_type=101), PEER)
        self.assertEqual(session.packets_dropped, 3)

    def test_symmetric_rtp_latches_to_the_real_source(self):
        rig = Rig()
        session = rig.session()
        nat = ("127.0.0.9", 61000)
        peer = FakePeer(session, addr=nat)
        peer.send(b"\xff" * 160)
        self.assertFalse(session.latched)  # one packet is not yet a valid source
        peer.send(b"\xff" * 160)
        self.assertTrue(session.latched)
        self.assertEqual(session.remote_address, nat)
        rig.run(0.04)
        self.assertEqual(port_of(rig, session).written[-1][1], nat)
        # once latched, packets from anywhere else are ignored
        before = session.packets_received
        FakePeer(session, addr=("127.0.0.66", 5000), ssrc=1).send(b"\xff" * 160)
        self.assertEqual(session.packets_received, before)
        self.assertEqual(session.packets_dropped, 1)
        # a re-INVITE with the same address keeps the latch, a new address replaces it
        session.configure(MediaParams(PEER, payload_type=8))
        self.assertEqual(session.remote_address, nat)
        moved = ("127.0.0.1", 40002)
        session.configure(MediaParams(moved))
        self.assertEqual((session.remote_address, session.latched), (moved, False))

    def test_without_symmetric_rtp_the_sdp_address_is_kept(self):
        rig = Rig()
        session = rig.session(symmetric=False)
        peer = FakePeer(session, addr=("127.0.0.9", 61000))
        for _ in range(3):
            peer.send(b"\xff" * 160)
        rig.run(0.02)
        self.assertFalse(session.latched)
        self.assertEqual(port_of(rig, session).written[-1][1], PEER)


class DeadPeerTests(unittest.TestCase):
    def test_timeout_reported_once_and_reset_by_traffic(self):
        rig = Rig()
        session = rig.session(dead_peer_timeout=10.0)
        gone = []
        session.dead_peer_listeners.append(lambda s, reason: gone.append((rig.clock.seconds(), reason)))
        peer = FakePeer(session)
        rig.run(6.0)
        peer.send(b"\xff" * 160)  # heard at t=6: the countdown restarts
        rig.run(9.9)
        self.assertEqual(gone, [])
        rig.run(5.0)
        self.assertEqual(len(gone), 1)
        self.assertEqual(gone[0][1], "timeout")
        self.assertTrue(16.0 <= gone[0][0] <= 16.04, gone)

    def test_rtcp_bye_from_peer(self):
        rig = Rig()
        session = rig.session()
        gone = []
        session.dead_peer_listeners.append(lambda s, reason: gone.append(reason))
        peer = FakePeer(session)
        peer.send(b"\xff" * 160)
        session.rtcp_received(build_rtcp([ReceiverReport(peer.ssrc), Goodbye((peer.ssrc,))]), PEER)
        self.assertEqual(gone, ["bye"])


class RtcpTests(unittest.TestCase):
    def test_sender_reports_every_five_seconds_with_reception_report(self):
        rig = Rig()
        session = rig.session()
        peer = FakePeer(session)
        for n in range(500):  # 10 s of audio, every 10th packet lost
            if n % 10 != 5:
                peer.send(b"\xff" * 160)
            else:
                peer.sequence += 1
                peer.timestamp += 160
            rig.run(0.02)
        rtcp_port = rig.reactor.ports[session.local_port + 1]
        reports = rtcp_port.rtcp()
        self.assertTrue(1 <= len(reports) <= 4, len(reports))
        self.assertTrue(all(addr == (PEER[0], PEER[1] + 1) for _, addr in reports))
        packets = reports[-1][0]
        sr, sdes = packets[0], packets[1]
        self.assertIsInstance(sr, SenderReport)
        self.assertEqual(sr.ssrc, session.ssrc)
        self.assertEqual(sr.octet_count, 160 * sr.packet_count)
        self.assertLessEqual(sr.packet_count, 500)
        self.assertEqual(sdes.cname(session.ssrc), b"portaum")
        block = sr.reports[0]
        self.assertEqual(block.ssrc, peer.ssrc)
        self.assertTrue(20 <= block.fraction_lost <= 30, block)  # ~10 % of 256
        self.assertGreater(block.cumulative_lost, 0)
        self.assertTrue(1000 < block.highest_sequence < 1500, block)

    def test_peer_reports_are_used_for_lsr_dlsr_and_round_trip(self):
        rig = Rig()
        session = rig.session(rtcp_interval=5.0)
        peer = FakePeer(session)
        peer.send(b"\xff" * 160)
        peer.send(b"\xff" * 160)
        rig.run(1.0)
        peer_ntp = ntp_from_seconds(rig.clock.seconds())
        session.rtcp_received(build_rtcp([SenderReport(peer.ssrc, peer_ntp, 0, 2, 320)]), PEER)
        rig.run(0.5)
        # the peer reports about our stream: our SR sent "now - 0.25 s", held 0.05 s
        our_sr_mid = ntp_middle32(ntp_from_seconds(rig.clock.seconds() - 0.25))
        block = ReportBlock(session.ssrc, 64, 7, 1234, 80, our_sr_mid, int(0.05 * 65536))
        session.rtcp_received(build_rtcp([ReceiverReport(peer.ssrc, (block,)),
                                          SourceDescription(())]), PEER)
        report = session.remote_report
        self.assertEqual((report.fraction_lost, report.cumulative_lost, report.jitter_ms), (0.25, 7, 10.0))
        self.assertTrue(199 <= report.round_trip_ms <= 201, report)
        rig.run(10.0)
        ours = [packets[0] for packets, _ in rig.reactor.ports[session.local_port + 1].rtcp()]
        last = ours[-1].reports[0]
        self.assertEqual(last.last_sr, ntp_middle32(peer_ntp))
        self.assertGreater(last.delay_since_last_sr, 0)

    def test_receiver_report_when_not_sending(self):
        rig = Rig()
        session = rig.session()
        session.remote_address = None  # e.g. on hold: nothing sent
        rig.run(8.0)
        reports = rig.reactor.ports[session.local_port + 1].rtcp()
        self.assertTrue(reports)
        self.assertIsInstance(reports[0][0][0], ReceiverReport)

    def test_malformed_rtcp_is_dropped(self):
        rig = Rig()
        session = rig.session()
        session.rtcp_received(b"\x80\xc8\x00\x09", PEER)
        self.assertEqual(session.packets_dropped, 1)


class LifecycleTests(unittest.TestCase):
    def test_close_sends_bye_releases_ports_and_notifies(self):
        rig = Rig()
        session = rig.session()
        seen = []

        class Party:
            def next_frame(self, session):
                return None

            def inbound_frame(self, session, pcm, status):
                pass

            def session_closed(self, session, reason):
                seen.append(reason)

        party = Party()
        session.set_source(party)
        session.add_consumer(party)
        rig.run(0.1)
        session.close("hangup")
        self.assertEqual(seen, ["hangup", "hangup"])
        rtcp = rig.reactor.ports[session.local_port + 1]
        self.assertIsInstance(rtcp.rtcp()[-1][0][-1], Goodbye)
        self.assertFalse(rtcp.listening or rig.reactor.ports[session.local_port].listening)
        self.assertEqual(rig.media.sessions, ())
        sent = len(rig.reactor.ports[session.local_port].written)
        rig.run(0.1)
        self.assertEqual(len(rig.reactor.ports[session.local_port].written), sent)

    def test_misuse_is_reported_clearly(self):
        rig = Rig()
        with self.assertRaisesRegex(RtpSessionError, "payload type 3"):
            rig.session(MediaParams(PEER, payload_type=3))
        with self.assertRaisesRegex(RtpSessionError, "ptime 25"):
            rig.session(MediaParams(PEER, ptime=25))
        with self.assertRaisesRegex(RtpSessionError, "configure"):
            RtpSession(rig.media).start()
        unbound = RtpSession(rig.media, MediaParams(PEER))
        with self.assertRaisesRegex(RtpSessionError, "PortAllocator"):
            unbound.start()
        started = rig.session()
        with self.assertRaisesRegex(RtpSessionError, "already"):
            started.start()
        started.close()
        with self.assertRaisesRegex(RtpSessionError, "closed"):
            started.start()


class PortAllocatorTests(unittest.TestCase):
    def test_even_rtp_odd_rtcp_and_skips_busy_pairs(self):
        rig = Rig()
        reactor = FakeUdpReactor(busy={30000, 30003})
        allocator = PortAllocator(reactor, (30000, 30009), "127.0.0.1")
        ports = [allocator.bind(RtpSession(rig.media, MediaParams(PEER))) for _ in range(3)]
        self.assertEqual(ports, [30004, 30006, 30008])
        self.assertFalse(reactor.ports[30002].listening)  # released when 30003 was busy
        self.assertEqual(reactor.ports[30005].interface, "127.0.0.1")
        with self.assertRaisesRegex(PortRangeExhausted, "30000-30009"):
            allocator.bind(RtpSession(rig.media, MediaParams(PEER)))

    def test_freed_ports_are_reused_later(self):
        rig = Rig()
        reactor = FakeUdpReactor()
        allocator = PortAllocator(reactor, (30000, 30003))
        first = RtpSession(rig.media, MediaParams(PEER))
        self.assertEqual(allocator.bind(first), 30000)
        first.close()
        self.assertEqual(allocator.bind(RtpSession(rig.media, MediaParams(PEER))), 30002)
        self.assertEqual(allocator.bind(RtpSession(rig.media, MediaParams(PEER))), 30000)

    def test_bad_range(self):
        with self.assertRaisesRegex(RtpSessionError, "no even/odd pair"):
            PortAllocator(FakeUdpReactor(), (5000, 5000))


class HoldTests(unittest.TestCase):
    def test_hold_stops_sending_and_dead_peer_timer_then_resumes(self):
        rig = Rig()
        session = rig.session(dead_peer_timeout=5.0)
        gone = []
        session.dead_peer_listeners.append(lambda s, reason: gone.append(reason))
        rig.run(0.1)
        port = rig.reactor.ports[session.local_port]
        before = len(port.rtp())
        session.configure(MediaParams(PEER, direction="inactive"))
        rig.run(10.0)
        self.assertEqual((len(port.rtp()), gone), (before, []))
        session.configure(MediaParams(PEER, direction="sendrecv"))
        rig.run(0.04)
        resumed = [p for p, _ in port.rtp()][before:]
        self.assertEqual([p.marker for p in resumed], [True, False])
        last = port.rtp()[before - 1][0]
        # the timestamp kept running during the hold
        self.assertEqual((resumed[0].timestamp - last.timestamp) & 0xFFFFFFFF, 160 * 501)
        rig.run(5.1)
        self.assertEqual(gone, ["timeout"])

    def test_bad_direction(self):
        with self.assertRaisesRegex(RtpSessionError, "direction 'hold'"):
            MediaParams(PEER, direction="hold").validated()


class RobustnessTests(unittest.TestCase):
    def test_rtcp_multiplexed_on_the_rtp_port(self):
        rig = Rig()
        session = rig.session()
        peer = FakePeer(session)
        peer.send(b"\xff" * 160)
        session.rtp_received(build_rtcp([ReceiverReport(peer.ssrc), Goodbye((peer.ssrc,))]), PEER)
        self.assertEqual(session.rtcp_packets_received, 1)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.binary(min_size=0, max_size=60), max_size=8), st.booleans())
    def test_random_datagrams_never_raise(self, datagrams, as_rtcp):
        rig = Rig()
        session = rig.session()
        for data in datagrams:
            if as_rtcp:
                session.rtcp_received(data, PEER)
            else:
                session.rtp_received(data, PEER)
            session.rtp_received(b"\x80\x00" + data[:10].ljust(10, b"\x00") + data, PEER)
        rig.run(0.06)
        self.assertEqual(len(rig.reactor.ports[session.local_port].rtp()), 3)

    def test_blas_limited_to_one_thread(self):
        from portaum_tx.rtp.blas import limit_blas_threads

        # numpy here ships OpenBLAS; the call must find it
        self.assertTrue(limit_blas_threads(1))


class SocketSendTests(unittest.TestCase):
    def test_real_socket_is_used_directly_and_errors_counted(self):
        rig = Rig()
        session = rig.session()
        sent = []

        class Socket:
            def __init__(self):
                self.fail = False

            def sendto(self, data, addr):
                if self.fail:
                    raise ConnectionRefusedError("port unreachable")
                sent.append((data, addr))

        sock = Socket()
        port = rig.reactor.ports[session.local_port]
        port.socket = sock
        session.attach_transports(port, rig.reactor.ports[session.local_port + 1], session.local_port)
        rig.run(0.04)
        self.assertEqual([addr for _, addr in sent], [PEER, PEER])
        self.assertEqual(port.written, [])
        sock.fail = True
        rig.run(0.04)
        self.assertEqual(session.send_errors, 2)

    def test_host_names_are_refused(self):
        with self.assertRaisesRegex(RtpSessionError, "'pbx.example' is not an IP address"):
            MediaParams(("pbx.example", 4000)).validated()


class LaterDigitTests(unittest.TestCase):
    def test_a_later_press_is_sent_at_once(self):
        rig = Rig()
        session = rig.session()
        session.send_dtmf("1", duration_ms=40)
        rig.run(1.0)
        before = len(port_of(rig, session).rtp())
        session.send_dtmf("2", duration_ms=40)
        rig.run(0.02)
        packet = port_of(rig, session).rtp()[before][0]
        self.assertEqual((packet.payload_type, packet.marker), (101, True))
