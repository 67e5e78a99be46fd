"""Pass-through IVR with authorization code: the seed scenario and every option, on a
FakeCall and a task.Clock."""

from decimal import Decimal

from twisted.trial import unittest

from portaum_tx.ivr.apps.passthrough import auth_id
from portaum_tx.store.access_numbers import AccessNumber
from tests.ivr.calling_support import CallingCase

RACHEL = "12065557777"
MARK = "12065558888"
TOLL = "12125551234"
ASSOCIATED = "1206555"
RATES = (("1", "0.10"), ("1800", "0"), ("AD", "0.01"))


class PassThroughTests(CallingCase, unittest.TestCase):
    application = "pass-through"

    def setUp(self):
        super().setUp()
        self.rachel = self.ledger.add(RACHEL, balance="5", rates=RATES, associated_number=ASSOCIATED)
        self.mark = self.ledger.add(MARK, balance="5", rates=RATES, associated_number=ASSOCIATED)
        self.ledger.aliases[f"{ASSOCIATED}#4545"] = RACHEL
        self.ledger.aliases[f"{ASSOCIATED}#8989"] = MARK
        self.access = AccessNumber(1, "AD%", "pass-through", {}, 0)

    def marks_call(self, destination=TOLL):
        return self.call(calling=MARK, called="AD" + destination)

    async def run_passthrough(self, call, options=None):
        return await self.run_app(call, options, context=self.context(access_number=self.access))

    async def test_seed_scenario(self):
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="4545#")
        far = self.destination(call, TOLL, talk=120)
        await self.run_passthrough(call)
        self.assertEqual(call.played, ["pt-enter-code"])
        self.assertEqual([d for _, what, d in call.events if what == "dial"], [TOLL])
        self.assertTrue(far.is_hungup)
        [toll] = self.ledger.xdrs_of(RACHEL)
        self.assertEqual((toll.destination, toll.seconds, toll.charge), (TOLL, 120, Decimal("0.20000")))
        [ivr] = self.ledger.xdrs_of(MARK)
        self.assertEqual(ivr.destination, "AD" + TOLL)
        self.assertEqual(ivr.charge, Decimal("0.01") * ivr.seconds / 60)
        self.assertGreaterEqual(ivr.seconds, 120)
        self.assertEqual(self.rachel.balance, Decimal("4.80000"))
        self.assertEqual(self.mark.balance, Decimal(5) - ivr.charge)
        self.assertEqual(call.unused_hooks, [])

    async def test_wrong_code_refused_after_the_attempts(self):
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="1111#")
        call.on_prompt("pt-enter-code", press="2222#", occurrence=2)
        call.on_prompt("pt-enter-code", press="3333#", occurrence=3)
        await self.run_passthrough(call)
        self.assertEqual(call.played, ["pt-enter-code", "pt-code-incorrect"] * 3 + ["too-many-attempts"])
        self.assertNotIn("dial", call.event_names)
        self.assertEqual(self.ledger.xdrs_of(RACHEL), [])
        self.assertEqual([x.destination for x in self.ledger.xdrs_of(MARK)], ["AD" + TOLL])

    async def test_wrong_code_then_right(self):
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="4546#")
        call.on_prompt("pt-enter-code", press="4545#", occurrence=2)
        self.destination(call, TOLL, talk=10)
        await self.run_passthrough(call, {"maximum_login_attempts": "2"})
        self.assertEqual(call.played, ["pt-enter-code", "pt-code-incorrect", "pt-enter-code"])
        self.assertEqual([x.seconds for x in self.ledger.xdrs_of(RACHEL)], [10])

    async def test_fewer_attempts(self):
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="1111#")
        await self.run_passthrough(call, {"maximum_login_attempts": "1"})
        self.assertEqual(call.played, ["pt-enter-code", "pt-code-incorrect", "too-many-attempts"])

    async def test_code_of_another_customer_is_refused(self):
        self.ledger.add("13105550000", balance="5", rates=RATES, customer="Other, Inc.")
        self.ledger.aliases[f"{ASSOCIATED}#7777"] = "13105550000"
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="7777#")
        await self.run_passthrough(call, {"maximum_login_attempts": "1"})
        self.assertEqual(call.played, ["pt-enter-code", "pt-code-incorrect", "too-many-attempts"])

    async def test_without_authorize_paid_calls_the_phone_owner_pays(self):
        call = self.marks_call()
        self.destination(call, TOLL, talk=30)
        await self.run_passthrough(call, {"authorize_paid_calls": "no"})
        self.assertEqual(call.played, [])
        self.assertEqual([x.destination for x in self.ledger.xdrs_of(MARK)], [TOLL, "AD" + TOLL])
        self.assertEqual(self.ledger.xdrs_of(RACHEL), [])

    async def test_code_only_authorizes_when_not_part_of_account_id(self):
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="4545#")
        self.destination(call, TOLL, talk=30)
        await self.run_passthrough(call, {"auth_code_as_account_id": "no"})
        self.assertEqual([x.destination for x in self.ledger.xdrs_of(MARK)], [TOLL, "AD" + TOLL])
        self.assertEqual(self.ledger.xdrs_of(RACHEL), [])

    async def test_code_alone_names_the_account_without_associated_number(self):
        self.ledger.aliases["4545"] = RACHEL
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="4545#")
        self.destination(call, TOLL, talk=30)
        await self.run_passthrough(call, {"use_associated_number": "no"})
        self.assertEqual([x.destination for x in self.ledger.xdrs_of(RACHEL)], [TOLL])

    async def test_code_owner_without_funds(self):
        self.rachel.balance = Decimal(0)
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="4545#")
        await self.run_passthrough(call)
        self.assertEqual(call.played, ["pt-enter-code", "pt-call-not-authorized"])
        self.assertNotIn("dial", call.event_names)

    async def test_far_end_busy(self):
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="4545#")
        self.destination(call, TOLL, outcome="busy")
        await self.run_passthrough(call)
        self.assertEqual(call.played, ["pt-enter-code", "pp-number-busy"])
        self.assertEqual(self.ledger.xdrs_of(RACHEL), [])
        self.assertEqual(len(self.ledger.released), 1)

    async def test_unknown_caller_is_refused(self):
        call = self.call(calling="15559990000", called="AD" + TOLL)
        await self.run_passthrough(call)
        self.assertEqual(call.events[0][1:], ("reject", 403))
        self.assertEqual(self.ledger.xdrs, [])

    async def test_call_cut_at_the_code_owners_limit(self):
        self.rachel.balance = Decimal("0.05")  # 30 s at 0.10 a minute
        call = self.marks_call()
        call.on_prompt("pt-enter-code", press="4545#")
        self.destination(call, TOLL)
        await self.run_passthrough(call, {"end_announce_time": "10"})
        [toll] = self.ledger.xdrs_of(RACHEL)
        self.assertEqual(toll.seconds, 30)
        self.assertEqual([items for _, items in call.announced], [["beep"]])

    async def test_toll_free_and_internal_calls_need_no_code(self):
        for number in ("18005550000", RACHEL):
            call = self.marks_call(number)
            self.destination(call, number, talk=10)
            await self.run_passthrough(call)
            self.assertEqual(call.played, [])
            self.assertEqual([d for _, what, d in call.events if what == "dial"], [number])
        self.assertEqual({x.account_id for x in self.ledger.xdrs}, {MARK})

    def test_auth_id(self):
        self.assertEqual(auth_id("4545", ASSOCIATED, True), "1206555#4545")
        self.assertEqual(auth_id("4545", ASSOCIATED, False), "4545")
        self.assertEqual(auth_id("4545", None, True), "4545")
