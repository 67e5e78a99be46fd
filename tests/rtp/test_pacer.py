"""The send pacer (portaum_tx/rtp/csrc/pacer.c) and the media clock sending through
it: the same packets as the tick sending itself, each batch at its instant, nothing
on a socket whose session has gone.

The pacer's thread sends on real time. Batches here are due in the past (a
task.Clock starts at zero) and go out at once, and ``drain()`` waits until they
have; a batch due in the future is checked to be still queued. No sleeps."""

import random
import time

from twisted.trial import unittest

from portaum_tx.rtp._rtpcore import Pacer
from portaum_tx.rtp.clock import TICK_SECONDS
from portaum_tx.rtp.packet import parse_rtcp

from tests.rtp.loopback import LoopbackRig, Peer
from tests.rtp.test_rtpio import Tone


class PacerTests(unittest.TestCase):
    def setUp(self):
        self.pacer = Pacer()
        self.addCleanup(self.pacer.stop)
        self.sender = Peer(self)
        self.peer = Peer(self)

    def queue(self, due, *payloads, sender=None):
        sender = sender or self.sender
        self.pacer.begin(due)
        for payload in payloads:
            self.assertIs(self.pacer.send(sender.socket.fileno(), self.peer.address, payload), True)
        self.pacer.commit()

    def test_batches_go_out_in_order(self):
        self.pacer.start()
        for n in range(3):
            self.queue(time.time() - 1 + n * 0.001, b"%d-a" % n, b"%d-b" % n)
        self.pacer.drain()
        self.assertEqual(self.peer.received(), [b"0-a", b"0-b", b"1-a", b"1-b", b"2-a", b"2-b"])
        self.assertEqual((self.pacer.batches_sent, self.pacer.packets_sent, self.pacer.send_errors),
                         (3, 6, 0))
        self.assertEqual(self.pacer.queued, 0)

    def test_a_batch_waits_for_its_instant(self):
        self.pacer.start()
        self.queue(time.time() + 3600, b"later")
        self.assertEqual(self.pacer.queued, 1)
        self.assertEqual(self.peer.received(), [])
        self.pacer.stop()  # the sessions are going: what is queued is dropped
        self.assertEqual((self.pacer.queued, self.pacer.forgotten, self.pacer.running), (0, 1, False))
        self.assertEqual(self.peer.received(), [])

    def test_a_late_batch_is_sent_at_once_and_counted(self):
        self.pacer.start()
        self.queue(time.time() - 2.0, b"late")
        self.pacer.drain()
        self.assertEqual(self.peer.received(), [b"late"])
        self.assertEqual(self.pacer.late_batches, 1)
        self.assertGreaterEqual(self.pacer.max_late, 2.0)

    def test_what_is_committed_before_start_goes_out_on_start(self):
        self.queue(time.time() - 1, b"early")
        self.assertEqual(self.pacer.queued, 1)
        self.pacer.start()
        self.pacer.drain()
        self.assertEqual(self.peer.received(), [b"early"])

    def test_forget_drops_only_that_sockets_packets(self):
        other = Peer(self)
        self.pacer.begin(time.time() - 1)
        self.pacer.send(self.sender.socket.fileno(), self.peer.address, b"gone")
        self.pacer.send(other.socket.fileno(), self.peer.address, b"stays")
        self.assertEqual(self.pacer.forget(self.sender.socket.fileno()), 1)  # from the open batch
        self.pacer.commit()
        self.queue(time.time() - 1, b"gone too")
        self.assertEqual(self.pacer.forget(self.sender.socket.fileno()), 1)  # from the queue
        self.pacer.start()
        self.pacer.drain()
        self.assertEqual(self.peer.received(), [b"stays"])
        self.assertEqual(self.pacer.forgotten, 2)

    def test_without_an_open_batch_a_packet_goes_out_at_once(self):
        self.assertIs(self.pacer.send(self.sender.socket.fileno(), self.peer.address, b"now"), False)
        self.assertEqual(self.peer.received(), [b"now"])
        with self.assertRaises(OSError):
            self.pacer.send(self.sender.socket.fileno(), ("127.0.0.1", 0), b"port zero")
        with self.assertRaises(ValueError):
            self.pacer.send(self.sender.socket.fileno(), ("peer.example", 4000), b"not numeric")

    def test_misuse_is_refused(self):
        self.pacer.begin(1.0)
        with self.assertRaises(RuntimeError):
            self.pacer.begin(2.0)
        self.pacer.commit()
        with self.assertRaises(ValueError):
            self.pacer.begin(float("nan"))
        self.pacer.begin(1.0)
        with self.assertRaises(ValueError):
            self.pacer.send(self.sender.socket.fileno(), self.peer.address, b"x" * 5000)
        self.pacer.commit()

    def test_the_thread_reports_its_scheduling(self):
        self.assertEqual(self.pacer.scheduling, "not started")
        self.pacer.start()
        self.queue(time.time() - 1, b"x")
        self.pacer.drain()  # the thread has set itself up before sending anything
        self.assertRegex(self.pacer.scheduling, r"^(fifo|rr|nice) -?\d+$")


class PacedClockTests(unittest.TestCase):
    """A media clock sending through a pacer three ticks ahead against one sending
    itself: the same packets, the same session state."""

    def setUp(self):
        self.pacer = Pacer()
        self.paced = LoopbackRig(self, pacer=self.pacer, send_ahead=3)
        self.direct = LoopbackRig(self)
        self.peers = {}
        self.sessions = {}
        for name, rig in (("paced", self.paced), ("direct", self.direct)):
            peer = Peer(self)
            session = rig.session(peer.address, rng=random.Random(7))
            session.set_source(Tone())
            self.peers[name], self.sessions[name] = peer, session

    def run_both(self, ticks):
        self.paced.tick(ticks)
        self.direct.tick(ticks)
        self.pacer.drain()
        return self.peers["paced"].received(), self.peers["direct"].received()

    def test_audio_and_telephone_events_go_out_the_same(self):
        paced, direct = self.run_both(3)
        self.assertEqual(len(direct), 3)
        self.assertEqual(paced, direct)
        for session in self.sessions.values():
            session.send_dtmf("9")
        paced, direct = self.run_both(14)
        self.assertIn(101, [data[1] & 0x7F for data in direct])
        self.assertEqual(paced, direct)
        for name in ("_sequence", "_timestamp", "packets_sent", "octets_sent"):
            self.assertEqual(getattr(self.sessions["paced"], name), getattr(self.sessions["direct"], name))

    def test_each_tick_is_due_its_lead_after_the_tick(self):
        clock = self.paced.media
        self.paced.tick(4)
        self.pacer.drain()
        # ticks 1-4 of a clock started at 0 were due at 0.08-0.14 s
        self.assertEqual(self.pacer.batches_sent, 4)
        self.assertAlmostEqual(clock._epoch + (clock._due + clock.send_ahead) * TICK_SECONDS, 0.14)
        self.assertEqual(clock.send_ahead_samples, 480)

    def test_a_session_leaving_takes_its_queued_packets_with_it(self):
        self.pacer.stop()  # hold the batches back
        other_peer = Peer(self)
        other = self.paced.session(other_peer.address)
        self.paced.tick(3)
        self.sessions["paced"].close("hangup")
        self.pacer.start()
        self.pacer.drain()
        self.assertEqual(self.peers["paced"].received(), [])
        self.assertEqual(len(other_peer.received()), 3)
        self.assertEqual(self.pacer.forgotten, 3)
        other.close("hangup")

    def test_the_sender_report_gives_the_rtp_time_of_its_instant(self):
        session = self.sessions["paced"]
        self.paced.tick(5)
        rtcp_peer = Peer(self)
        session.remote_rtcp_address = rtcp_peer.address
        session._send_rtcp(self.paced.clock.seconds())
        report = parse_rtcp(rtcp_peer.received()[0])[0]
        self.assertEqual(report.rtp_timestamp, (session._timestamp - 3 * 160) & 0xFFFFFFFF)

