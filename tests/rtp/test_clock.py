import numpy as np
from twisted.internet.task import Clock
from twisted.trial import unittest

from portaum_tx.rtp import tones
from portaum_tx.rtp.clock import MediaClock
from portaum_tx.rtp.codecs import PCMA, PCMU
from portaum_tx.rtp.session import MediaParams
from tests.rtp.fakes import PEER, FakePeer, Rig


class DriftTests(unittest.TestCase):
    def test_tick_count_follows_the_clock_not_the_timer(self):
        clock = Clock()
        media = MediaClock(clock)
        media.start()
        rng = np.random.default_rng(1)
        # the reactor wakes up irregularly late: 20..35 ms between wake-ups
        elapsed = 0.0
        while elapsed < 60.0:
            step = float(rng.uniform(0.020, 0.035))
            clock.advance(step)
            elapsed += step
        self.assertLessEqual(abs(media.ticks - int(elapsed / 0.020)), 1)

    def test_packets_sent_match_real_time(self):
        rig = Rig()
        session = rig.session()
        for step in [0.019, 0.027, 0.013, 0.041] * 250:  # 25 s of jittery wake-ups
            rig.clock.advance(step)
        sent = len(rig.reactor.ports[session.local_port].rtp())
        self.assertLessEqual(abs(sent - 1250), 1)

    def test_a_stall_is_caught_up_only_a_little(self):
        clock = Clock()
        media = MediaClock(clock, max_catch_up=5)
        media.start()
        clock.advance(0.020)
        self.assertEqual(media.ticks, 1)
        clock.advance(1.0)  # the process was blocked for a second
        self.assertEqual(media.ticks, 6)
        self.assertEqual(media.skipped_ticks, 45)
        clock.advance(0.020)
        self.assertEqual(media.ticks, 7)  # back on the beat, no burst

    def test_stop(self):
        clock = Clock()
        media = MediaClock(clock)
        media.start()
        clock.advance(0.1)
        media.stop()
        clock.advance(1.0)
        self.assertEqual(media.ticks, 5)
        self.assertFalse(media.running)


class TickTests(unittest.TestCase):
    def test_slots_are_reused_and_no_timer_per_session(self):
        rig = Rig()
        sessions = [rig.session() for _ in range(50)]
        self.assertEqual(len(rig.clock.getDelayedCalls()), 1)
        self.assertEqual(sorted(s.slot for s in sessions), list(range(50)))
        freed = sessions[10].slot
        sessions[10].close()
        # not within the tick that may still hold it in its index arrays
        self.assertEqual(rig.session().slot, 50)
        rig.run(0.020)
        self.assertEqual(rig.session().slot, freed)

    def test_phases_run_in_order(self):
        rig = Rig()
        session = rig.session()
        order = []

        class Party:
            def inbound_frame(self, s, pcm, status):
                order.append("inbound")

            def next_frame(self, s):
                order.append("source")

        session.add_consumer(Party())
        session.set_source(Party())
        rig.media.add_tick_hook(lambda tick: order.append("hook"))
        rig.run(0.02)
        self.assertEqual(order, ["inbound", "hook", "source"])

    def test_mixed_codecs_are_decoded_and_encoded_per_session(self):
        rig = Rig()
        ulaw = rig.session()
        alaw = rig.session(MediaParams(PEER, payload_type=8))
        received = {}

        class Echo:
            def __init__(self):
                self.frame = None

            def inbound_frame(self, s, pcm, status):
                received[s.codec.name] = pcm.copy()
                self.frame = pcm.copy()

            def next_frame(self, s):
                return self.frame

        for session in (ulaw, alaw):
            echo = Echo()
            session.add_consumer(echo)
            session.set_source(echo)
        beep = tones.beep(20)
        ulaw_peer, alaw_peer = FakePeer(ulaw), FakePeer(alaw, payload_type=8)
        for _ in range(4):
            ulaw_peer.send(PCMU.encode(beep))
            alaw_peer.send(PCMA.encode(beep))
            rig.run(0.02)
        np.testing.assert_array_equal(received["PCMU"], PCMU.decode(PCMU.encode(beep)))
        np.testing.assert_array_equal(received["PCMA"], PCMA.decode(PCMA.encode(beep)))
        echoed = rig.reactor.ports[alaw.local_port].rtp()[-1][0].payload
        self.assertEqual(echoed, PCMA.encode(PCMA.decode(PCMA.encode(beep))))

    def test_fax_tones_detected_for_sessions_that_ask(self):
        rig = Rig()
        watching = rig.session(fax_detection=True)
        ignoring = rig.session()
        heard = {watching: [], ignoring: []}
        for s in heard:
            s.fax_listeners.append(heard[s].append)
        cng = tones.fax_cng(2)
        peers = [FakePeer(watching), FakePeer(ignoring)]
        for start in range(0, len(cng), 160):
            for peer in peers:
                peer.send(PCMU.encode(cng[start:start + 160]))
            rig.run(0.02)
        self.assertEqual(heard, {watching: ["CNG", "CNG"], ignoring: []})
        # switched on later (a fax application taking the call), the other one hears it too
        ignoring.set_fax_detection(True)
        watching.set_fax_detection(False)
        for start in range(0, len(cng), 160):
            for peer in peers:
                peer.send(PCMU.encode(cng[start:start + 160]))
            rig.run(0.02)
        self.assertEqual(heard, {watching: ["CNG", "CNG"], ignoring: ["CNG", "CNG"]})

    def test_listener_closing_a_session_mid_tick(self):
        rig = Rig()
        first = rig.session(MediaParams(PEER, telephone_event_pt=None))
        second = rig.session()
        first.dtmf_listeners.append(lambda digit: first.close())
        tone = tones.dtmf("1", 100)
        peer = FakePeer(first)
        for start in range(0, len(tone), 160):
            peer.send(PCMU.encode(tone[start:start + 160]))
            rig.run(0.02)
        rig.run(0.1)
        self.assertTrue(first.closed)
        self.assertEqual(rig.media.sessions, (second,))
        self.assertEqual(len(rig.reactor.ports[second.local_port].rtp()), rig.media.ticks)


class IsolationTests(unittest.TestCase):
    def test_a_failing_source_or_consumer_does_not_stop_other_calls(self):
        rig = Rig()
        broken, healthy = rig.session(), rig.session()

        class Broken:
            def next_frame(self, session):
                raise RuntimeError("source bug")

            def inbound_frame(self, session, pcm, status):
                raise RuntimeError("consumer bug")

        party = Broken()
        broken.set_source(party)
        broken.add_consumer(party)
        broken.dtmf_listeners.append(lambda digit: 1 / 0)
        rig.run(0.1)
        broken.receive_info_dtmf("application/dtmf", "5")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertIsNone(broken.source)
        self.assertEqual(broken.consumers, [])
        for session in (broken, healthy):
            self.assertEqual(len(rig.reactor.ports[session.local_port].rtp()), 5)


class CatchUpTests(unittest.TestCase):
    def test_a_stall_is_caught_up_back_to_back_not_carried_along(self):
        # ticks that take 11 ms: two in a row overrun a 20 ms period, so catching up
        # only at the timer's firings would keep the clock two ticks behind for good
        clock = Clock()
        media = MediaClock(clock)
        lateness = []

        def slow_tick(tick):
            lateness.append(clock.seconds() - (media._epoch + media._due * 0.020))
            clock.rightNow += 0.011
        media.add_tick_hook(slow_tick)
        media.start()
        clock.advance(0.020)
        clock.rightNow += 0.045  # a stall (a full garbage collection, say)
        for _ in range(10):
            clock.advance(0.020)
        self.assertGreater(max(lateness), 0.040)
        self.assertLess(max(lateness[-5:]), 0.020)  # within a period again, not two behind
        self.assertLessEqual(media.skipped_ticks, 1)  # what five ticks in a row cannot catch up
