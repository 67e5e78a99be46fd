"""Calls the node places on its own (callback legs) over real SIP and RTP on loopback: the
SIP front end's ``originate`` behind the Router's AppContext, SIPp's "uas" as the far end."""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.trial import unittest

from portaum_tx.ivr.apps import load_applications
from portaum_tx.ivr.call import DialFailed
from portaum_tx.ivr.router import Route, Router
from tests.sip.live import LiveFrontend, free_port, sipp_binary, spawn
from tests.support import require_peer


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
