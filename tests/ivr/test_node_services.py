"""The server node carries what IVR applications use: one billing engine, the payment
gateway (or None), the prompt library with operator uploads, background work stopped at
shutdown; the router takes them from the node."""

from __future__ import annotations

from twisted.internet import defer, reactor

from portaum_tx.billing.engine import BillingEngine
from portaum_tx.billing.gateway import PaymentGateway
from portaum_tx.convert.audio import make_au
from portaum_tx.ivr.apps import BackgroundWork, registry
from portaum_tx.ivr.router import Route, Router
from portaum_tx.server import PortaumService
from tests.support import StoreTestCase, on_both_engines


@on_both_engines
class NodeServicesTests(StoreTestCase):
    async def _open(self):
        pass

    async def start(self, *overrides):
        service = PortaumService(self.make_config(*overrides), reactor, frontends=[],
                                 exit_on_failure=False)
        service.background_grace = 0
        service.startService()
        node = await service.ready
        stopped = []

        async def stop():
            if not stopped:
                stopped.append(True)
                await service.stopService()
        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        return service, node, stop

    async def test_node_services_and_the_router_over_them(self):
        service, node, stop = await self.start()
        self.assertIsInstance(node.billing, BillingEngine)
        self.assertIsNone(node.payment_gateway)     # [payment] url empty
        self.assertIsInstance(node.background, BackgroundWork)
        await node.store.prompts.store_prompt("", "en", "welcome", make_au(b"\x11" * 800))
        prompt = await node.prompts.resolve("welcome", ["en"])
        self.assertEqual((prompt.source, prompt.ulaw[:1]), ("store", b"\x11"))
        router = Router.for_node(node, registry)
        context = router.context(Route("voicemail", {}))
        self.assertIs(context.billing, node.billing)
        self.assertIs(context.background_work, node.background)
        running = defer.Deferred()
        context.background(running, "callback")
        await stop()
        self.assertTrue(running.called)              # cancelled at shutdown
        self.assertEqual(node.background.pending, [])

    async def test_payment_gateway_from_the_configuration(self):
        _, node, _ = await self.start("payment.url=https://pay.example.com/charge")
        self.assertIsInstance(node.payment_gateway, PaymentGateway)
        self.assertEqual(node.payment_gateway.url, "https://pay.example.com/charge")
