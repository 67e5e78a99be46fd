"""The send pacer (portaum_tx/rtp/csrc/pacer.c) and the media clock sending through
it: the same packets as the tick sending itself, each batch at its instant, nothing
on a socket whose session has gone.

The pacer's thread sends on real time. Batches here are due in the past (a
task.Clock starts at zero) and go out at once, and ``drain()`` waits until they
have; a batch due in the future is checked to be still queued. No sleeps."""

import random
import time

from twisted.trial import unittest

from portaum_tx.rtp import tones
from portaum_tx.rtp._rtpcore import Pacer
from portaum_tx.rtp.clock import TICK_SECONDS
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.dtmf import DtmfDigit
from portaum_tx.rtp.packet import parse_rtcp, parse_rtp
from portaum_tx.rtp.player import Player, Prompt

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



class PacerOrderAndWithdrawTests(unittest.TestCase):
    def setUp(self):
        self.pacer = Pacer()
        self.addCleanup(self.pacer.stop)
        self.sender = Peer(self)
        self.other = Peer(self)
        self.peer = Peer(self)

    def queue(self, due, sender, *payloads):
        self.pacer.begin(due)
        for payload in payloads:
            self.pacer.send(sender.socket.fileno(), self.peer.address, payload)
        self.pacer.commit()

    def test_batches_committed_out_of_order_go_out_in_order_of_their_instant(self):
        base = time.time() - 10
        self.queue(base + 0.06, self.sender, b"third")
        self.queue(base + 0.02, self.sender, b"first")
        self.queue(base + 0.06, self.other, b"fourth")  # same instant: after the one before
        self.queue(base + 0.04, self.sender, b"second")
        self.pacer.start()
        self.pacer.drain()
        self.assertEqual(self.peer.received(), [b"first", b"second", b"third", b"fourth"])

    def test_withdraw_takes_one_sockets_packets_from_an_instant_on(self):
        base = time.time() - 10
        for n in range(5):
            self.queue(base + n * 0.02, self.sender, b"s%d" % n)
            self.queue(base + n * 0.02, self.other, b"o%d" % n)
        self.pacer.begin(base + 0.10)
        self.pacer.send(self.sender.socket.fileno(), self.peer.address, b"s5")
        self.assertEqual(self.pacer.withdraw(self.sender.socket.fileno(), base + 0.05), 3)  # s3, s4, s5
        self.pacer.commit()
        self.assertEqual(self.pacer.withdraw(self.sender.socket.fileno(), base + 0.05), 0)
        self.pacer.start()
        self.pacer.drain()
        self.assertEqual(self.peer.received(), [b"s0", b"o0", b"s1", b"o1", b"s2", b"o2", b"o3", b"o4"])
        self.assertEqual((self.pacer.withdrawn, self.pacer.forgotten, self.pacer.packets_sent), (3, 0, 8))
        with self.assertRaises(ValueError):
            self.pacer.withdraw(self.sender.socket.fileno(), float("nan"))


class PromptAheadTests(unittest.TestCase):
    """Prompt audio prepared prompt_ahead (10 ticks) ahead while live audio keeps the
    send_ahead lead (3 ticks), against the same playback on a clock without it."""

    AHEAD, LIVE = 10, 3

    def setUp(self):
        self.pacer = Pacer()
        self.rig = LoopbackRig(self, pacer=self.pacer, send_ahead=self.LIVE, prompt_ahead=self.AHEAD)
        self.media = self.rig.media
        self.peer = Peer(self)
        self.session = self.rig.session(self.peer.address, rng=random.Random(3))
        self.prompt = Prompt.from_pcm(tones.dtmf("5", 2000), "two seconds")  # 100 frames

    def wire(self):
        self.pacer.drain()
        return [(parse_rtp(data), data) for data in self.peer.received()]

    def frames(self, start, count):
        encoded = self.prompt.encoded(PCMU)
        return [encoded[(start + n) * 160:(start + n + 1) * 160] for n in range(count)]

    def test_a_prompt_is_prepared_ahead_in_order_and_refilled_a_few_frames_a_tick(self):
        Player(self.session).play([self.prompt])
        self.rig.tick(1)
        # the live lead (tick 4), then four more of the refill
        self.assertEqual(self.media.queued_ahead(self.session), 4)
        self.rig.tick(1)
        # ticks 4..12: as far as prompt_ahead from tick 2
        self.assertEqual(self.media.queued_ahead(self.session), self.AHEAD - self.LIVE)
        self.rig.tick(20)
        sent = self.wire()
        self.assertEqual(len(sent), 22 + self.AHEAD - self.LIVE)
        self.assertEqual([packet.payload for packet, _ in sent], self.frames(0, len(sent)))
        first = sent[0][0]
        for n, (packet, _) in enumerate(sent):
            self.assertEqual(packet.sequence, (first.sequence + n) & 0xFFFF)
            self.assertEqual(packet.timestamp, (first.timestamp + 160 * n) & 0xFFFFFFFF)
            self.assertEqual(packet.marker, n == 0)
        self.assertEqual(self.session.packets_sent, len(sent))

    def test_a_key_takes_back_what_was_not_yet_due_and_the_next_prompt_follows_on(self):
        self.pacer.stop()  # hold the batches back to see what is withdrawn
        player = Player(self.session)
        played = player.play([self.prompt], barge_in=True)
        self.rig.tick(10)
        self.session.emit_dtmf(DtmfDigit("1", "rfc4733"))
        result = self.successResultOf(played)
        self.assertEqual((result.reason, result.digit), ("digit", "1"))
        # ticks 4..13 (the live lead of tick 10) stay; 14..20 are taken back
        self.assertEqual(result.played_ms, 10 * 20)
        self.assertEqual(self.pacer.withdrawn, self.AHEAD - self.LIVE)
        self.assertEqual(self.media.queued_ahead(self.session), 0)
        other = Prompt.from_pcm(tones.dtmf("9", 200), "next")
        player.play([other])
        self.rig.tick(3)
        self.pacer.start()
        sent = self.wire()
        self.assertEqual([packet.payload for packet, _ in sent[:10]], self.frames(0, 10))
        self.assertEqual([packet.payload for packet, _ in sent[10:]],
                         [other.encoded(PCMU)[n * 160:(n + 1) * 160] for n in range(10)])
        first = sent[0][0]
        for n, (packet, _) in enumerate(sent):
            self.assertEqual(packet.sequence, (first.sequence + n) & 0xFFFF)
            self.assertEqual(packet.timestamp, (first.timestamp + 160 * n) & 0xFFFFFFFF)
        # the prompt after the interruption starts a talk spurt
        self.assertEqual([n for n, (packet, _) in enumerate(sent) if packet.marker], [0, 10])
        self.assertEqual(self.session.packets_sent, len(sent))

    def test_the_end_of_a_playback_is_seen_when_it_would_be_without_the_deeper_lead(self):
        short = Prompt.from_pcm(tones.dtmf("3", 300), "fifteen frames")
        direct_pacer = Pacer()
        direct = LoopbackRig(self, pacer=direct_pacer, send_ahead=self.LIVE)
        direct_peer = Peer(self)
        direct_session = direct.session(direct_peer.address, rng=random.Random(3))
        ended = {}
        for name, rig, session in (("ahead", self.rig, self.session), ("live", direct, direct_session)):
            Player(session).play([short]).addCallback(
                lambda result, name=name, rig=rig: ended.setdefault(name, (rig.media.ticks, result)))
        for _ in range(30):
            self.rig.tick(1)
            direct.tick(1)
            self.assertEqual(ended.get("ahead", (None,))[0], ended.get("live", (None,))[0])
        self.assertEqual(ended["ahead"][0], 15)
        self.assertEqual(ended["ahead"][1].reason, "finished")
        self.assertEqual(ended["ahead"][1].played_ms, 300)
        direct_pacer.drain()
        self.assertEqual([parse_rtp(d).payload for d in direct_peer.received()],
                         [packet.payload for packet, _ in self.wire()])

    def test_a_live_source_taking_over_is_heard_from_the_live_lead(self):
        self.pacer.stop()
        Player(self.session).play([self.prompt])
        self.rig.tick(5)
        live = Tone()
        self.session.set_source(live)
        self.rig.tick(5)
        self.pacer.start()
        sent = self.wire()
        # prompt for ticks 4..8 (the live lead of tick 5), then the live source
        self.assertEqual([packet.payload for packet, _ in sent[:5]], self.frames(0, 5))
        self.assertEqual(len(sent), 10)
        self.assertEqual(live.index, 5)
        self.assertEqual(self.media.queued_ahead(self.session), 0)

    def test_a_pause_shorter_than_the_prompt_lead_costs_the_prompt_no_frame(self):
        live_peer = Peer(self)
        live_session = self.rig.session(live_peer.address)
        live_session.set_source(Tone())
        Player(self.session).play([self.prompt])
        self.rig.tick(5)
        self.rig.clock.advance(0.020 * 6)  # six ticks due at once: one burst of 5 can follow
        self.assertEqual(self.media.skipped_ticks, 1)
        self.rig.tick(5)
        sent = self.wire()
        self.pacer.drain()
        live_sent = live_peer.received()
        # every instant from tick 4 on has its prompt frame: the dropped tick cost the
        # prompt one tick of its lead, not a frame; the live stream lost the tick
        self.assertEqual(self.media.queued_ahead(self.session), self.AHEAD - self.LIVE - 1)
        self.assertEqual(len(sent), self.media._due + self.AHEAD - 4)
        self.assertEqual([packet.payload for packet, _ in sent], self.frames(0, len(sent)))
        self.assertEqual(len(live_sent), self.media.ticks)

    def test_refilling_is_shared_out_and_waits_after_the_clock_dropped_ticks(self):
        others = [self.rig.session(Peer(self).address) for _ in range(19)]
        for session in [self.session, *others]:
            Player(session).play([self.prompt])
        self.rig.tick(1)
        # 20 sessions: a quarter of their frames, 5, as refill on top of one each
        queued = [self.media.queued_ahead(s) for s in [self.session, *others]]
        self.assertEqual(sum(queued), 5)
        self.rig.tick(30)  # 20 x 7 frames short, 5 a tick
        self.assertEqual({self.media.queued_ahead(s) for s in [self.session, *others]},
                         {self.AHEAD - self.LIVE})
        before = sum(s.packets_sent for s in [self.session, *others])
        self.rig.clock.advance(0.020 * 8)  # a stall: three ticks dropped, five back to back
        self.assertEqual(self.media.skipped_ticks, 3)
        after = sum(s.packets_sent for s in [self.session, *others])
        # the burst: one frame a session a tick, no refill
        self.assertEqual(after - before, 20 * 5)
        everyone = [self.session, *others]
        self.assertEqual(sum(self.media.queued_ahead(s) for s in everyone), 20 * (self.AHEAD - self.LIVE - 3))
        # nor for refill_calm (50) ticks after the drop, then a quarter again
        self.rig.tick(44)
        self.assertEqual(sum(self.media.queued_ahead(s) for s in everyone), 20 * (self.AHEAD - self.LIVE - 3))
        self.rig.tick(1)
        self.assertEqual(sum(self.media.queued_ahead(s) for s in everyone), 20 * (self.AHEAD - self.LIVE - 3) + 5)

    def test_a_hang_up_ends_a_playback_that_is_still_going_out(self):
        short = Prompt.from_pcm(tones.dtmf("3", 100), "five frames")
        played = Player(self.session).play([short])
        self.rig.tick(2)
        self.assertNoResult(played)
        self.session.close("hangup")
        self.assertEqual(self.successResultOf(played).reason, "hangup")

    def test_the_sender_report_counts_back_the_whole_lead(self):
        Player(self.session).play([self.prompt])
        self.rig.tick(5)
        rtcp_peer = Peer(self)
        self.session.remote_rtcp_address = rtcp_peer.address
        self.session._send_rtcp(self.rig.clock.seconds())
        report = parse_rtcp(rtcp_peer.received()[0])[0]
        self.assertEqual(report.rtp_timestamp, (self.session._timestamp - self.AHEAD * 160) & 0xFFFFFFFF)
