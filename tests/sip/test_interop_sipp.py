"""SIPp (Debian sip-tester) against the SIP front end over loopback: its built-in "uac"
scenario calls an answering application; its "uas" scenario behind a Digest challenge
is the far end of an outgoing leg."""

import os
import threading

from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from tests.sip.live import SCENARIOS, LiveFrontend, free_port, sipp_binary, spawn
from tests.support import has_ipv6_loopback, require_peer


async def quick_answer(call):
    await call.answer()
    await call.hungup


class SippCallsServer(unittest.TestCase):
    timeout = 90

    def setUp(self):
        self.sipp = sipp_binary()
        require_peer("SIPp (Debian package sip-tester)", self.sipp is not None)

    async def run_uac(self, transport, calls=3, rate=3):
        server = await LiveFrontend(quick_answer).start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        process = spawn([self.sipp, "-sn", "uac", "127.0.0.1:%d" % server.port, "-s", "800",
                         "-m", str(calls), "-r", str(rate), "-nostdin", "-i", "127.0.0.1",
                         "-p", str(free_port(both=True)), "-t", transport, "-timeout", "40s",
                         "-timeout_error", "-max_socket", "10"])
        exit_code = await process.done
        self.assertEqual(exit_code, 0, process.summary())
        self.assertEqual(server.frontend.ua.active_calls, 0)
        self.assertEqual(server.frontend.calls, set())
        return server

    @defer.inlineCallbacks
    def test_uac_over_udp(self):
        yield defer.ensureDeferred(self.run_uac("u1", calls=5, rate=5))

    @defer.inlineCallbacks
    def test_uac_over_tcp(self):
        yield defer.ensureDeferred(self.run_uac("t1", calls=3, rate=3))

    @defer.inlineCallbacks
    def test_uac_over_ipv6(self):
        if not has_ipv6_loopback():
            raise unittest.SkipTest("this machine has no IPv6 loopback")
        server = yield defer.ensureDeferred(LiveFrontend(quick_answer, address="::1").start())
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        process = spawn([self.sipp, "-sn", "uac", "[::1]:%d" % server.port, "-s", "800",
                         "-m", "2", "-r", "2", "-nostdin", "-i", "::1",
                         "-p", str(free_port(both=True)), "-t", "u1", "-timeout", "40s",
                         "-timeout_error"])
        exit_code = yield process.done
        self.assertEqual(exit_code, 0, process.summary())
        self.assertEqual(server.frontend.ua.active_calls, 0)


class UnderAttack(unittest.TestCase):
    """Garbage datagrams and half-open TCP connections while SIPp places calls."""

    timeout = 120

    def setUp(self):
        self.sipp = sipp_binary()
        require_peer("SIPp (Debian package sip-tester)", self.sipp is not None)

    @defer.inlineCallbacks
    def test_calls_succeed_during_a_flood(self):
        server = yield defer.ensureDeferred(LiveFrontend(quick_answer).start())
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        stop = threading.Event()
        flooding = threading.Event()
        half_open = []
        self.addCleanup(lambda: [s.close() for s in half_open])
        self.addCleanup(stop.set)

        def attack():
            import os as _os
            import socket
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                for i in range(300):        # connections that never send a full message
                    tcp = socket.create_connection(("127.0.0.1", server.port))
                    tcp.sendall(b"INVITE sip:x SIP/2.0\r\nVia: ")
                    half_open.append(tcp)
                while not stop.is_set():
                    # about 10 000 datagrams a second: past that the kernel drops what
                    # the socket buffer cannot hold, INVITEs included, and a call can
                    # lose all its retransmissions (a flood beyond capacity, not a bug)
                    for _ in range(50):
                        udp.sendto(_os.urandom(400), ("127.0.0.1", server.port))
                        udp.sendto(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n\r\n",
                                   ("127.0.0.1", server.port))
                    flooding.set()
                    stop.wait(0.01)
        attacker = threads.deferToThread(attack)
        self.assertTrue((yield threads.deferToThread(flooding.wait, 30)))
        before = server.frontend.transport.garbage_received
        process = spawn([self.sipp, "-sn", "uac", "127.0.0.1:%d" % server.port, "-s", "800",
                         "-m", "20", "-r", "5", "-nostdin", "-i", "127.0.0.1",
                         "-p", str(free_port(both=True)), "-t", "u1", "-timeout", "60s",
                         "-timeout_error"])
        exit_code = yield process.done
        during = server.frontend.transport.garbage_received - before
        stop.set()
        yield attacker
        self.assertEqual(exit_code, 0, process.summary())
        self.assertGreater(during, 100)   # the calls were placed while garbage kept coming
        self.assertLessEqual(len(server.frontend.transport.connections), 2048)


class ServerCallsSipp(unittest.TestCase):
    timeout = 90

    def setUp(self):
        self.sipp = sipp_binary()
        require_peer("SIPp (Debian package sip-tester)", self.sipp is not None)

    @defer.inlineCallbacks
    def test_outgoing_leg_with_digest_to_sipp_uas(self):
        yield defer.ensureDeferred(self._outgoing())

    async def _outgoing(self):
        sipp_port = free_port(both=True)
        process = spawn([self.sipp, "-sf", os.path.join(SCENARIOS, "uas-digest.xml"),
                         "-i", "127.0.0.1", "-p", str(sipp_port), "-m", "1", "-nostdin",
                         "-timeout", "40s", "-timeout_error"])
        legs = []

        async def caller(call):
            pass
        server = await LiveFrontend(caller, overrides=[
            "sip.outbound_proxy=sip:127.0.0.1:%d" % sipp_port,
            "sip.outbound_username=trunkuser", "sip.outbound_password=trunkpass"]).start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        await _sleep(0.5)   # let SIPp bind its socket
        ua = server.frontend.ua
        leg = await ua.dial("5551234", caller_id="800", timeout=20)
        legs.append(leg)
        self.assertEqual(leg.state, "confirmed")
        self.assertEqual(leg.negotiation.audio.codec, "PCMU")
        self.assertTrue(leg.rtp.started)
        self.assertEqual(leg.rtp.params.remote_address[0], "127.0.0.1")
        await _sleep(0.3)
        await leg.hangup()
        exit_code = await process.done
        self.assertEqual(exit_code, 0, process.summary())
        self.assertEqual(leg.end_reason, "local")
        self.assertEqual(ua.active_calls, 0)




def _sleep(seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class CallsLeaveNoCycle(unittest.TestCase):
    """A call's whole life through the SIP front end leaves nothing for the garbage
    collector: once the call and its transactions are over, reference counting alone
    has freed the call, its RTP session and its SIP session. The server freezes the
    survivors of each full collection ([rtp] gc_freeze), so a cycle among a call's
    objects would otherwise wait for the hourly thaw."""

    timeout = 60

    def setUp(self):
        self.sipp = sipp_binary()
        require_peer("SIPp (Debian package sip-tester)", self.sipp is not None)

    def test_a_call_over_tcp_is_freed_by_reference_counting(self):
        return defer.ensureDeferred(self.call_and_check("t1"))

    def test_a_call_over_udp_is_freed_by_reference_counting(self):
        return defer.ensureDeferred(self.call_and_check("u1"))

    async def call_and_check(self, transport):
        import dataclasses
        import gc
        import weakref

        import numpy as np

        from portaum_tx.ivr.call import Audio, CallHungUp

        watched = []
        tone = Audio((np.sin(np.arange(16000) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16),
                     "tone")

        async def play_until_hung_up(call):
            watched.extend(weakref.ref(o) for o in (call, call.session, call.sip, call.player))
            await call.answer()
            try:
                while True:
                    await call.play([tone], barge_in=True)
            except CallHungUp:
                pass

        server = await LiveFrontend(play_until_hung_up).start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        layer = server.frontend.ua.layer
        layer.timers = dataclasses.replace(layer.timers, t1=0.01)  # Timer L and the like: 0.64 s
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)
        process = spawn([self.sipp, "-sn", "uac", "127.0.0.1:%d" % server.port, "-s", "800",
                         "-m", "1", "-d", "1500", "-nostdin", "-i", "127.0.0.1",
                         "-p", str(free_port(both=True)), "-t", transport, "-timeout", "30s",
                         "-timeout_error"])
        self.assertEqual(await process.done, 0, process.summary())
        for _ in range(100):
            if not (server.frontend.calls or server.frontend.ua.active_calls or layer._server
                    or layer._client):
                break
            await _sleep(0.05)
        self.assertEqual(len(watched), 4)
        self.assertEqual([ref() for ref in watched], [None] * 4)
        self.assertEqual(gc.collect(), 0)  # nor anything else of the call
