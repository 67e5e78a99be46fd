"""Routing an account's own calls (numbers that are no access number or mailbox of ours)
over the real billing engine and store: toll calls of an account that calls via IVR reach
the IVR, toll-free and internal calls go straight through the trunk as the account's call,
and nobody else's calls go anywhere."""

from __future__ import annotations

from decimal import Decimal

from twisted.internet import reactor, task
from twisted.trial import unittest

from portaum_tx.accounts import AccountService
from portaum_tx.billing.engine import BillingEngine
from portaum_tx.ivr.apps import load_applications
from portaum_tx.ivr.direct import rejection_for
from portaum_tx.ivr.outgoing import LegResult
from portaum_tx.ivr.router import DIRECT_CALL, Router
from portaum_tx.sip.frontend import vouched_caller
from portaum_tx.sip.transport import Peer
from portaum_tx.store import NotFound, Store
from portaum_tx.store.billing import RateRecord
from tests.ivr.calling_support import CallingFakeCall, far_end
from tests.support import StoreTestCase, on_both_engines

START = 1_795_000_000
CUSTOMER = "Smart Calls, Ltd."
RACHEL = "12065557777"
MARK = "12065558888"
ASSOCIATED = "1206555"
TOLL = "12125551234"
TOLL_FREE = "18005551212"
STRANGER = "15550001111"


class NoMailboxes:
    """Mailboxes of nobody: every number falls through to the account's-call rule."""

    async def resolve(self, number):
        raise NotFound(number)


@on_both_engines
class AccountCallRoutingTests(StoreTestCase):
    async def _open(self):
        await super()._open()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.ivr_store = Store(self.store.db, self.clock)
        self.billing = BillingEngine(self.ivr_store, self.clock)
        accounts = AccountService(self.ivr_store, self.clock)
        billing = self.ivr_store.billing
        await billing.add_tariff("centrex")
        await billing.store_rate("centrex", RateRecord("1", Decimal("0.06"), first_interval=1,
                                                       next_interval=1))
        await billing.store_rate("centrex", RateRecord("1800", Decimal("0")))
        await billing.store_rate("centrex", RateRecord("AD", Decimal("0.012"), first_interval=1,
                                                       next_interval=1))
        await billing.add_product("centrex", "centrex")
        await self.ivr_store.accounts.add_customer(CUSTOMER)
        for account, pin in ((RACHEL, "4545"), (MARK, "8989")):
            await accounts.create_account(account, CUSTOMER, associated_number=ASSOCIATED)
            await accounts.add_alias(f"{ASSOCIATED}#{pin}", account)
            await billing.set_account_billing(account, billing_model="debit", product="centrex",
                                              calls_via_ivr="AD%")
            await billing.set_account_balance(account, Decimal("10"))
        await self.ivr_store.access_numbers.add_access_number("AD%", "pass-through", {})
        self.router = Router(self.ivr_store, NoMailboxes(), accounts, self.clock,
                             load_applications(), billing=self.billing)

    def marks_phone(self, called):
        return CallingFakeCall(self.clock, calling=MARK, called=called, call_id="c1")

    async def handle(self, call, caller):
        return await call.run(self.router.handle(call, caller=caller), reactor)

    async def calls(self, account):
        return [x for x in await self.billing.history(account=account)
                if x.service != "adjustment"]

    async def test_toll_call_reaches_the_ivr_with_the_ivr_number(self):
        call = self.marks_phone(TOLL)
        call.on_prompt("pt-enter-code", press="4545#")
        call.dial_outcomes[TOLL] = far_end(self.clock, TOLL, talk=30)
        route = await self.handle(call, MARK)
        self.assertEqual((route.application, route.access_number.pattern),
                         ("pass-through", "AD%"))
        self.assertEqual(call.called, "AD" + TOLL)
        self.assertEqual(call.played, ["pt-enter-code"])
        [toll] = await self.calls(RACHEL)
        self.assertEqual((toll.cli, toll.cld, toll.leg, toll.duration), (MARK, TOLL, "B", 30))
        [ivr] = await self.calls(MARK)
        self.assertEqual((ivr.cld, ivr.leg), ("AD" + TOLL, "A"))

    async def test_toll_free_call_goes_straight_to_the_trunk(self):
        call = self.marks_phone(TOLL_FREE)
        far = far_end(self.clock, TOLL_FREE, talk=42)
        call.dial_outcomes[TOLL_FREE] = far
        route = await self.handle(call, MARK)
        self.assertEqual(route.application, DIRECT_CALL)
        self.assertEqual(call.called, TOLL_FREE)
        # Dialled first, answered once the far end answered, then bridged; nothing played.
        self.assertEqual([name for name in call.event_names
                          if name in ("dial", "answer", "bridge", "reject")],
                         ["dial", "answer", "bridge"])
        self.assertEqual(call.played, [])
        self.assertEqual([d for _, what, d in call.events if what == "caller-id"], [MARK])
        self.assertTrue(call.is_hungup and far.is_hungup)
        [xdr] = await self.calls(MARK)
        self.assertEqual((xdr.cli, xdr.cld, xdr.leg, xdr.duration, xdr.charge),
                         (MARK, TOLL_FREE, "B", 42, Decimal(0)))
        self.assertEqual(await self.calls(RACHEL), [])

    async def test_internal_call_goes_straight_and_is_free(self):
        call = self.marks_phone(RACHEL)
        call.dial_outcomes[RACHEL] = far_end(self.clock, RACHEL, talk=15)
        route = await self.handle(call, MARK)
        self.assertEqual(route.application, DIRECT_CALL)
        self.assertEqual([d for _, what, d in call.events if what == "dial"], [RACHEL])
        [xdr] = await self.calls(MARK)
        self.assertEqual((xdr.cld, xdr.duration, xdr.charge), (RACHEL, 15, Decimal(0)))

    async def test_direct_call_of_an_account_without_ivr_is_charged_to_it(self):
        await self.ivr_store.billing.set_account_billing(MARK, calls_via_ivr=None)
        call = self.marks_phone(TOLL)
        call.dial_outcomes[TOLL] = far_end(self.clock, TOLL, talk=60)
        route = await self.handle(call, MARK)
        self.assertEqual(route.application, DIRECT_CALL)
        self.assertNotIn("play", call.event_names)
        [xdr] = await self.calls(MARK)
        self.assertEqual((xdr.cld, xdr.duration, xdr.charge), (TOLL, 60, Decimal("0.06")))

    async def test_busy_far_end_is_a_486_to_the_caller(self):
        from portaum_tx.ivr.call import DialFailed
        call = self.marks_phone(TOLL_FREE)
        call.dial_outcomes[TOLL_FREE] = DialFailed(TOLL_FREE, "busy", 486)
        await self.handle(call, MARK)
        self.assertEqual([d for _, what, d in call.events if what == "reject"], [486])
        self.assertEqual(await self.calls(MARK), [])
        self.assertEqual(await self.ivr_store.billing.get_reservations(MARK), [])

    async def test_stranger_is_refused_without_dialling(self):
        for caller in (None, STRANGER, ""):
            call = CallingFakeCall(self.clock, calling=STRANGER, called=TOLL, call_id="s")
            self.assertIsNone(await self.handle(call, caller))
            self.assertEqual([d for _, what, d in call.events if what == "reject"], [404])
            self.assertNotIn("dial", call.event_names)

    async def test_unvouched_account_number_is_refused(self):
        # Mark's number in From is not enough: the SIP layer did not vouch for it.
        call = self.marks_phone(TOLL_FREE)
        self.assertIsNone(await self.handle(call, None))
        self.assertEqual([d for _, what, d in call.events if what == "reject"], [404])
        self.assertNotIn("dial", call.event_names)


class FakeInvite:
    def __init__(self, host):
        self.transaction = type("Transaction", (), {"source": Peer("udp", host, 5060)})()


class FakeSipCall:
    def __init__(self, host, calling=MARK):
        self.sip = FakeInvite(host)
        self.calling = calling


class VouchedCallerTests(unittest.TestCase):
    def test_trusted_proxy_vouches_for_the_caller(self):
        self.assertEqual(vouched_caller(FakeSipCall("10.0.0.5"), {"10.0.0.5"}), MARK)
        self.assertEqual(vouched_caller(FakeSipCall("[2001:db8::5]"), {"2001:db8::5"}), MARK)

    def test_anybody_else_is_not_vouched_for(self):
        self.assertIsNone(vouched_caller(FakeSipCall("192.0.2.7"), {"10.0.0.5"}))
        self.assertIsNone(vouched_caller(FakeSipCall("10.0.0.5"), frozenset()))

    def test_anonymous_caller_is_nobody(self):
        self.assertIsNone(vouched_caller(FakeSipCall("10.0.0.5", calling=""), {"10.0.0.5"}))


class RejectionTests(unittest.TestCase):
    def test_statuses(self):
        cases = {("refused", "insufficient-funds"): 402, ("refused", "forbidden"): 403,
                 ("refused", "no-rate"): 404, ("busy", None): 486, ("no-answer", None): 480,
                 ("failed", None): 502}
        for (outcome, refusal), status in cases.items():
            self.assertEqual(rejection_for(LegResult(TOLL, outcome, refusal=refusal))[0], status)
