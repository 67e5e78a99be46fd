"""The calling applications over the real billing engine and store (SQLite; PostgreSQL too
when configured): the pass-through seed scenario with its xDR histories, routing of calls
via the IVR, and prepaid, PINless and voucher flows charging real balances."""

from __future__ import annotations

from decimal import Decimal

from twisted.internet import reactor, task

from portaum_tx.accounts import AccountService
from portaum_tx.billing.engine import BillingEngine
from portaum_tx.ivr.apps import load_applications
from portaum_tx.ivr.apps.passthrough import DIRECT, VIA_IVR, outgoing_route
from portaum_tx.ivr.call import CallHungUp
from portaum_tx.ivr.router import Router
from portaum_tx.store import Store
from portaum_tx.store.billing import RateRecord
from tests.ivr.calling_support import CallingFakeCall, far_end
from tests.support import StoreTestCase, on_both_engines

START = 1_795_000_000
CUSTOMER = "Smart Calls, Ltd."
RACHEL = "12065557777"
MARK = "12065558888"
JAKE = "12065559999"
ASSOCIATED = "1206555"
TOLL = "12125551234"
TOLL_FREE = "18005550000"
PASS_THROUGH = {"authorize_paid_calls": "yes", "use_associated_number": "yes",
                "auth_code_as_account_id": "yes"}


@on_both_engines
class CallingEngineTests(StoreTestCase):
    async def _open(self):
        await super()._open()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.ivr_store = Store(self.store.db, self.clock)
        self.billing = BillingEngine(self.ivr_store, self.clock)
        self.accounts = AccountService(self.ivr_store, self.clock)
        billing = self.ivr_store.billing
        await billing.add_tariff("centrex")
        await billing.store_rate("centrex", RateRecord("1", Decimal("0.06"), first_interval=1, next_interval=1))
        await billing.store_rate("centrex", RateRecord("1800", Decimal("0")))
        await billing.store_rate("centrex", RateRecord("AD", Decimal("0.012"), first_interval=1, next_interval=1))
        await billing.add_product("centrex", "centrex")
        await self.ivr_store.accounts.add_customer(CUSTOMER)
        for account, pin, name in ((RACHEL, "4545", "rachel"), (MARK, "8989", "mark"),
                                   (JAKE, "1212", "jake")):
            await self.accounts.create_account(account, CUSTOMER, associated_number=ASSOCIATED)
            await self.accounts.add_alias(f"{ASSOCIATED}#{pin}", account)
            await billing.set_account_billing(account, billing_model="debit", product="centrex",
                                              calls_via_ivr="AD%")
            await billing.set_account_balance(account, Decimal("10"))
        await self.ivr_store.access_numbers.add_access_number("AD%", "pass-through", PASS_THROUGH)
        self.router = Router(self.ivr_store, None, self.accounts, self.clock,
                             load_applications())

    async def route_and_run(self, call, engine_in_context=True):
        """What the SIP front end does with an INVITE: route it and run the application."""
        route = await self.router.route(call.called)
        context = self.router.context(route)
        if engine_in_context:
            context.billing = self.billing
        app = self.router.applications.get(route.application)
        try:
            await call.run(app(call, context, route.options), reactor)
        except CallHungUp:
            pass
        return route

    async def calls(self, account):
        return [x for x in await self.billing.history(account=account)
                if x.service != "adjustment"]

    async def balance(self, account):
        return (await self.billing.get_account(account)).balance

    async def test_seed_scenario(self):
        # Mark's phone dials a toll number: it goes through the IVR.
        route = await outgoing_route(self.billing, MARK, TOLL)
        self.assertEqual((route.kind, route.number, route.call_class), (VIA_IVR, "AD" + TOLL, "toll"))
        call = CallingFakeCall(self.clock, calling=MARK, called=route.number)
        call.on_prompt("pt-enter-code", press="4545#")
        far = far_end(self.clock, TOLL, talk=125)
        call.dial_outcomes[TOLL] = far
        await self.route_and_run(call)
        self.assertEqual(call.played, ["pt-enter-code"])
        self.assertTrue(far.is_hungup)
        [toll] = await self.calls(RACHEL)
        self.assertEqual((toll.cld, toll.cli, toll.leg, toll.duration, toll.charge),
                         (TOLL, MARK, "B", 125, Decimal("0.125")))
        self.assertEqual(toll.access_number, "AD" + TOLL)
        [ivr] = await self.calls(MARK)
        self.assertEqual((ivr.cld, ivr.cli, ivr.leg), ("AD" + TOLL, MARK, "A"))
        self.assertGreaterEqual(ivr.duration, 125)
        self.assertEqual(ivr.charge, Decimal("0.012") * ivr.duration / 60)
        self.assertEqual(await self.balance(RACHEL), Decimal("9.875"))
        self.assertEqual(await self.balance(MARK), Decimal(10) - ivr.charge)
        history = await self.billing.history(customer=CUSTOMER)
        self.assertEqual(sorted((x.account_id, x.cld) for x in history if x.service != "adjustment"),
                         [(RACHEL, TOLL), (MARK, "AD" + TOLL)])
        self.assertEqual(await self.ivr_store.billing.get_reservations(RACHEL), [])

    async def test_wrong_pin_refused_after_the_attempts(self):
        call = CallingFakeCall(self.clock, calling=MARK, called="AD" + TOLL)
        for n, code in enumerate(("1111", "2222", "3333"), 1):
            call.on_prompt("pt-enter-code", press=code + "#", occurrence=n)
        await self.route_and_run(call)
        self.assertEqual(call.played, ["pt-enter-code", "pt-code-incorrect"] * 3
                         + ["too-many-attempts"])
        self.assertNotIn("dial", call.event_names)
        self.assertEqual([x for x in await self.billing.history(account=RACHEL)
                          if x.service != "adjustment"], [])
        self.assertEqual(await self.balance(RACHEL), Decimal(10))

    async def test_toll_free_and_internal_calls_skip_the_ivr(self):
        for destination, call_class in ((TOLL_FREE, "toll-free"), (RACHEL, "internal"),
                                        (f"{ASSOCIATED}#4545", "internal")):
            route = await outgoing_route(self.billing, MARK, destination)
            self.assertEqual((route.kind, route.number, route.call_class),
                             (DIRECT, destination, call_class))

    async def test_accounts_that_do_not_call_via_ivr_go_straight(self):
        await self.ivr_store.billing.set_account_billing(JAKE, calls_via_ivr=None)
        route = await outgoing_route(self.billing, JAKE, TOLL)
        self.assertEqual((route.kind, route.number), (DIRECT, TOLL))

    async def test_prepaid_card_charges_the_balance(self):
        await self.ivr_store.access_numbers.add_access_number(
            "18885550000", "prepaid", {"announce_time": "yes", "minimum_card_length": "11"})
        call = CallingFakeCall(self.clock, calling="15550001111", called="18885550000")
        call.on_prompt("enter-card-number", press=RACHEL + "#")
        call.on_prompt("enter-destination", press=TOLL + "#")
        call.hang_up_on_prompt("pp-another-call")
        call.dial_outcomes[TOLL] = far_end(self.clock, TOLL, talk=60)
        await self.route_and_run(call)
        # 10.00 at 0.06 a minute: 10000 s, two hours, forty-six minutes and forty seconds.
        self.assertEqual(call.played[:6], ["pp-welcome", "enter-card-number", "enter-destination",
                                           "pp-you-can-talk", "2", "hours"])
        calls = [x for x in await self.billing.history(account=RACHEL) if x.service != "adjustment"]
        self.assertEqual([(x.cld, x.duration, x.charge) for x in calls if x.leg == "B"],
                         [(TOLL, 60, Decimal("0.06"))])

    async def test_pinless_with_service_password(self):
        await self.billing.set_service_password(RACHEL, "2468")
        await self.ivr_store.access_numbers.add_access_number("18885550001", "pinless", {})
        call = CallingFakeCall(self.clock, calling=RACHEL, called="18885550001")
        call.on_prompt("enter-password", press="1357")
        call.on_prompt("enter-password", press="2468", occurrence=2)
        call.hang_up_on_prompt("enter-destination")
        await self.route_and_run(call)
        self.assertEqual(call.played, ["pp-welcome", "enter-password", "password-incorrect",
                                       "enter-password", "enter-destination"])

    async def test_voucher_top_up(self):
        await self.ivr_store.billing.add_voucher("11122233344", Decimal("25"))
        await self.ivr_store.access_numbers.add_access_number("18885550002", "topup-voucher", {})
        call = CallingFakeCall(self.clock, calling=MARK, called="18885550002")
        call.on_prompt("enter-voucher", press="11122233344#")
        await self.route_and_run(call)
        self.assertEqual(call.played, ["enter-voucher", "account-credited", "25", "dollars",
                                       "your-new-balance-is", "35", "dollars", "goodbye"])
        self.assertEqual(await self.balance(MARK), Decimal(35))
        again = CallingFakeCall(self.clock, calling=MARK, called="18885550002")
        again.on_prompt("enter-voucher", press="11122233344#")
        await self.route_and_run(again)
        self.assertEqual(again.played[:2], ["enter-voucher", "voucher-used"])

    async def test_the_engine_over_the_routers_store_when_the_context_has_none(self):
        await self.ivr_store.access_numbers.add_access_number("18885550003", "balance", {})
        call = CallingFakeCall(self.clock, calling=MARK, called="18885550003")
        await self.route_and_run(call, engine_in_context=False)
        self.assertEqual(call.played, ["welcome", "your-balance-is", "10", "dollars", "goodbye"])

    async def test_callback_legs_rated_by_their_access_codes(self):
        billing = self.ivr_store.billing
        await billing.add_tariff("leg a")
        await billing.store_rate("leg a", RateRecord("44", Decimal("0.60"), first_interval=1,
                                                     next_interval=1))
        await billing.store_access_entry("centrex", "LEG_A18885550004", "leg a")
        await self.accounts.add_alias("cb44201234567", RACHEL)
        await self.ivr_store.access_numbers.add_access_number(
            "18885550004", "callback", {"ani_translation_rule": "s/^0/cb44/",
                                        "dial_translation_rule": "s/^0/44/",
                                        "lega_cld_prefix": "LEG_A"})
        leg = CallingFakeCall(self.clock, calling="18885550004", called="44201234567")
        leg.on_prompt("enter-destination", press=TOLL + "#")
        leg.hang_up_on_prompt("pp-another-call")
        leg.dial_outcomes[TOLL] = far_end(self.clock, TOLL, talk=60)
        background = []

        async def originate(destination, caller_id, timeout):
            self.assertEqual((destination, caller_id), ("44201234567", "18885550004"))
            leg.answered = True
            return leg

        call = CallingFakeCall(self.clock, calling="0201234567", called="18885550004")
        route = await self.router.route(call.called)
        context = self.router.context(route)
        context.originate = originate
        context.background = background.append
        app = self.router.applications.get(route.application)
        await call.run(app(call, context, route.options), reactor)
        self.assertEqual(call.events[0][1:], ("reject", 486))
        [work] = background
        self.clock.advance(0)  # the wait time
        await leg.run(work, reactor)
        calls = await self.calls(RACHEL)
        by_leg = {x.leg: x for x in calls}
        self.assertEqual((by_leg["B"].cld, by_leg["B"].duration, by_leg["B"].charge),
                         (TOLL, 60, Decimal("0.06")))
        self.assertEqual((by_leg["A"].cld, by_leg["A"].tariff), ("44201234567", "leg a"))
        self.assertEqual(by_leg["A"].charge, Decimal("0.01") * by_leg["A"].duration)

    async def test_credit_card_top_up(self):
        from tests.ivr.test_topup import ScriptedGateway
        await self.ivr_store.access_numbers.add_access_number("18885550005", "topup-credit-card",
                                                              {"minimum_sum": "5"})
        call = CallingFakeCall(self.clock, calling=MARK, called="18885550005")
        call.on_prompt("cc-enter-card", press="4111111111111112#")
        call.on_prompt("cc-enter-expiry", press="0929")
        call.on_prompt("cc-enter-amount", press="15#")
        route = await self.router.route(call.called)
        context = self.router.context(route)
        context.payment_gateway = ScriptedGateway()
        app = self.router.applications.get(route.application)
        await call.run(app(call, context, route.options), reactor)
        self.assertEqual(await self.balance(MARK), Decimal(25))
        [payment] = [x for x in await self.billing.history(account=MARK) if x.service == "payment"]
        self.assertEqual(payment.description, "credit card payment T-1")
