"""Outgoing calls over real SIP and RTP on loopback: the ones the node places on its own
(callback legs; the SIP front end's ``originate`` behind the Router's AppContext), and the
caller's pre-ring music on hold stopping at the far end's early media. SIPp plays the far
end (its "uas" scenario, or tests/ivr/scenarios/uas-early-media.xml) and the caller ("uac")."""

from __future__ import annotations

import os

from twisted.internet import defer, reactor
from twisted.trial import unittest

from portaum_tx.ivr.apps import load_applications
from portaum_tx.ivr.call import CallHungUp, DialFailed
from portaum_tx.ivr.router import Route, Router
from tests.sip.live import LiveFrontend, free_port, sipp_binary, spawn
from tests.support import require_peer


SCENARIOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")


def sleep(seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


async def no_route(call):
    await call.reject(404, "Not Found")


class OriginateTests(unittest.TestCase):
    timeout = 60

    async def start(self, overrides=()):
        server = LiveFrontend(no_route, overrides=overrides)
        await server.start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        return server

    def context(self, server):
        router = Router(None, None, None, reactor, load_applications(),
                        originate=server.frontend.originate)
        return router.context(Route("callback", {}))

    @defer.inlineCallbacks
    def test_an_originated_call_reaches_the_far_end_plays_and_hangs_up(self):
        yield defer.ensureDeferred(self._originate())

    async def _originate(self):
        require_peer("SIPp (Debian package sip-tester)", sipp_binary() is not None)
        uas_port = free_port()
        far_end = spawn([sipp_binary(), "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port),
                         "-m", "1", "-nostdin", "-rtp_echo", "-timeout", "30s", "-timeout_error"])
        server = await self.start([f"sip.outbound_proxy=sip:127.0.0.1:{uas_port}"])
        await sleep(0.5)  # SIPp binds its socket
        leg = await self.context(server).originate("12125551234", "18005550100", 10)
        self.assertTrue(leg.answered)
        self.assertEqual((leg.calling, leg.called), ("18005550100", "12125551234"))
        self.assertIn(leg, server.frontend.calls)
        self.assertEqual(server.frontend.ua.active_calls, 1)
        result = await leg.play(["welcome"])
        self.assertEqual(result.reason, "finished")
        await leg.hangup()
        self.assertNotIn(leg, server.frontend.calls)
        self.assertEqual(await far_end.done, 0, far_end.output[-3000:].decode(errors="replace"))

    @defer.inlineCallbacks
    def test_without_a_trunk_the_originate_fails_as_a_dial(self):
        yield defer.ensureDeferred(self._no_trunk())

    async def _no_trunk(self):
        server = await self.start()
        with self.assertRaises(DialFailed) as raised:
            await self.context(server).originate("12125551234", None, 5)
        self.assertEqual(raised.exception.reason, "failed")
        self.assertEqual(server.frontend.calls, set())


class PreRingMusicTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_music_plays_while_the_leg_rings_and_stops_at_early_media(self):
        yield defer.ensureDeferred(self._pre_ring())

    async def _pre_ring(self):
        require_peer("SIPp (Debian package sip-tester)", sipp_binary() is not None)
        uas_port = free_port()
        far_end = spawn([sipp_binary(), "-sf", os.path.join(SCENARIOS, "uas-early-media.xml"),
                         "-i", "127.0.0.1", "-p", str(uas_port), "-m", "1", "-nostdin",
                         "-timeout", "30s", "-timeout_error"])
        seen = {}
        finished = defer.Deferred()

        async def app(call):
            try:
                await call.answer()
                original = call.early_media

                def early_media():
                    seen["music before"] = call.session.source is not None
                    original()
                    seen["early at"] = reactor.seconds() - seen["dialled"]
                    seen["music after"] = call.session.source is not None
                call.early_media = early_media
                seen["dialled"] = reactor.seconds()
                leg = await call.dial("12125551234", "18005550100", 10, ringback=["moh"])
                seen["answered at"] = reactor.seconds() - seen["dialled"]
                await call.bridge(leg)
            except CallHungUp:
                seen["caller hung up"] = True   # the uac's BYE after its 5 s
            finally:
                finished.callback(None)

        server = LiveFrontend(app, overrides=[f"sip.outbound_proxy=sip:127.0.0.1:{uas_port}"])
        await server.start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        await sleep(0.5)  # SIPp binds its socket
        caller = spawn([sipp_binary(), "-sn", "uac", "-i", "127.0.0.1", "-p", str(free_port()),
                        "-m", "1", "-d", "5000", "-nostdin", "-timeout", "30s", "-timeout_error",
                        "-s", "18005550100", f"127.0.0.1:{server.port}"])
        await finished
        self.assertEqual(await caller.done, 0, caller.output[-3000:].decode(errors="replace"))
        self.assertEqual(await far_end.done, 0, far_end.output[-3000:].decode(errors="replace"))
        self.assertEqual((seen["music before"], seen["music after"]), (True, False), seen)
        self.assertLess(seen["early at"], 1.5, seen)
        self.assertGreater(seen["answered at"], 1.8, seen)
        self.assertTrue(seen["caller hung up"])
