"""Routing incoming calls: access numbers, mailboxes, 404."""

import types

from twisted.internet import reactor

from portaum_tx.billing.engine import BillingEngine

from portaum_tx.ivr.router import NoRoute, Route, Router, greeting_reason
from tests.ivr.test_voicemail_support import MAILBOX, VoicemailCase, run
from tests.support import on_both_engines


@on_both_engines
class RouterTests(VoicemailCase):
    async def _open(self):
        await super()._open()
        self.started = []

        async def recorder(call, context, options):
            self.started.append((context.access_number.pattern if context.access_number else None,
                                 context.mailbox, context.reason, options))
            await call.answer()
            await call.play(["welcome"])
        self.registry.register("test-app", recorder)
        self.router = Router(self.ivr_store, self.mailboxes, self.accounts, self.clock, self.registry)
        add = self.ivr_store.access_numbers.add_access_number
        await add("18005550100", "voicemail-pin", {"max_login_attempts": 2})
        await add("AD%", "test-app", {"prefix": True})
        await add("ADX%", "test-app", {"longer": True})
        await add("*99", "no-such-app", {})

    async def test_exact_access_number(self):
        route = await self.router.route("18005550100")
        self.assertEqual((route.application, route.options, route.access_number.pattern),
                         ("voicemail-pin", {"max_login_attempts": 2}, "18005550100"))
        self.assertIsNone(route.mailbox)

    async def test_longest_prefix_wins(self):
        self.assertEqual((await self.router.route("AD1234")).options, {"prefix": True})
        self.assertEqual((await self.router.route("ADX1")).options, {"longer": True})

    async def test_access_number_before_mailbox(self):
        await self.ivr_store.access_numbers.add_access_number(MAILBOX, "test-app", {})
        self.assertEqual((await self.router.route(MAILBOX)).application, "test-app")

    async def test_own_number_starts_deposit(self):
        route = await self.router.route(MAILBOX)
        self.assertEqual(route, Route("voicemail", {}, mailbox=MAILBOX, reason="unavailable"))

    async def test_alias_and_diversion_reason(self):
        await self.accounts.add_alias("2000", MAILBOX)
        route = await self.router.route("18005550999", original_called="2000", diversion_reason="busy")
        self.assertEqual((route.mailbox, route.reason), (MAILBOX, "busy"))
        route = await self.router.route("2000", diversion_reason="no-answer")
        self.assertEqual((route.mailbox, route.reason), (MAILBOX, "unavailable"))

    async def test_unknown_diverting_number_falls_back_to_the_called_number(self):
        route = await self.router.route(MAILBOX, original_called="5555", diversion_reason="busy")
        self.assertEqual(route.mailbox, MAILBOX)

    async def test_no_unified_messaging_is_404(self):
        await self.accounts.set_preferences(MAILBOX, um_enabled=False)
        with self.assertRaisesRegex(NoRoute, f"no access number or mailbox for {MAILBOX}"):
            await self.router.route(MAILBOX)

    def test_greeting_reasons(self):
        self.assertEqual([greeting_reason(r) for r in ("busy", "no-answer", "unavailable", "unconditional",
                                                       "unknown", None)],
                         ["busy"] + ["unavailable"] * 5)

    async def handle(self, call):
        return await call.run(self.router.handle(call), reactor)

    async def test_handle_runs_the_application_and_ends_the_call(self):
        call = self.make_call(called="AD77")
        route = await run(self.handle(call))
        self.assertEqual(route.application, "test-app")
        self.assertEqual(self.started, [("AD%", None, None, {"prefix": True})])
        self.assertEqual(call.played, ["welcome"])
        self.assertEqual(call.event_names, ["answer", "hangup"])

    async def test_handle_unknown_number_is_rejected_with_404(self):
        call = self.make_call(called="999")
        self.assertIsNone(await run(self.handle(call)))
        self.assertEqual(call.events, [(call.clock.seconds(), "reject", 404)])

    async def test_handle_unknown_application_is_500(self):
        call = self.make_call(called="*99")
        await run(self.handle(call))
        self.assertEqual(call.events[-1][1:], ("reject", 500))

    async def test_handle_failing_application_is_logged_and_the_call_ended(self):
        async def broken(call, context, options):
            await call.answer()
            raise RuntimeError("application bug")
        self.registry.register("test-app", broken, replace=True)
        call = self.make_call(called="AD1")
        await run(self.handle(call))
        self.assertEqual(call.event_names, ["answer", "hangup"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    async def test_handle_unanswered_application_end_rejects(self):
        async def silent(call, context, options):
            return None
        self.registry.register("test-app", silent, replace=True)
        call = self.make_call(called="AD1")
        await run(self.handle(call))
        self.assertEqual(call.events[-1][1:], ("reject", 480))

    async def test_handle_deposit_for_a_diverted_call(self):
        call = self.make_call(called=MAILBOX, diversion_reason="busy")
        call.speak(2.0, end="hangup")
        route = await run(self.handle(call))
        self.assertEqual((route.application, route.reason), ("voicemail", "busy"))
        self.assertIn("vm-is-busy", call.played)
        self.assertEqual(len(await self.messages()), 1)

    async def test_caller_hang_up_is_not_an_error(self):
        call = self.make_call(called="AD1")
        call.hang_up_on_prompt("welcome", after=0.2)
        await run(self.handle(call))
        self.assertEqual(call.hangup_reason, "caller")
        self.assertEqual(call.event_names, ["answer"])

    async def test_every_call_gets_the_node_services_and_one_billing_engine(self):
        contexts = []

        async def keep(call, context, options):
            contexts.append(context)
        self.registry.register("test-app", keep, replace=True)
        gateway, placed = object(), []

        async def originate(destination, caller_id, timeout):
            placed.append(destination)
            return "leg"

        node = types.SimpleNamespace(store=self.ivr_store, mailboxes=self.mailboxes,
                                     accounts=self.accounts, reactor=self.clock,
                                     payment_gateway=gateway)
        router = Router.for_node(node, self.registry, originate=originate)
        for number in ("AD1", "AD2"):
            await self._handle_with(router, number)
        first, second = contexts
        self.assertIsInstance(first.billing, BillingEngine)
        self.assertIs(first.billing, second.billing)
        self.assertIs(first.payment_gateway, gateway)
        self.assertIs(first.background_work, router.background)
        self.assertEqual(await first.originate("4420", "800", 30), "leg")
        self.assertEqual(placed, ["4420"])
        no_gateway = Router(self.ivr_store, self.mailboxes, self.accounts, self.clock, self.registry)
        self.assertIsNone(no_gateway.context(Route("test-app", {})).payment_gateway)

    async def _handle_with(self, router, number):
        call = self.make_call(called=number)
        await call.run(router.handle(call), reactor)

    async def test_background_work_outlives_the_call_until_the_router_stops(self):
        from twisted.internet import defer
        works = []

        async def leave_work(call, context, options):
            await call.reject(486)
            works.append(defer.Deferred())
            context.background(works[-1], "callback")
        self.registry.register("test-app", leave_work, replace=True)
        await self._handle_with(self.router, "AD1")
        self.assertEqual(self.router.background.pending, ["callback"])
        await self.router.stop()
        self.assertTrue(works[0].called)
        self.assertEqual(self.router.background.pending, [])

    def test_registry_names(self):
        self.assertTrue({"voicemail", "voicemail-access", "voicemail-pin"} <= set(self.registry.names()))
        with self.assertRaisesRegex(ValueError, "already registered"):
            self.registry.register("voicemail", lambda *a: None)
