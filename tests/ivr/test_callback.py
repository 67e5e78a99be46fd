"""Callback calling: authentication by ani / dnis / none, the wait, leg prefixes, fake
account, special charge, strict authorization, auto registration; FakeCalls on a Clock."""

from decimal import Decimal

from twisted.internet import reactor
from twisted.trial import unittest

from portaum_tx.ivr.apps import OptionError
from portaum_tx.ivr.call import DialFailed
from tests.ivr.calling_support import CallingCase, CallingFakeCall

ACCESS = "18005550000"
DEST = "12125551234"


class CallbackTests(CallingCase, unittest.TestCase):
    application = "callback"

    def setUp(self):
        super().setUp()
        self.account = self.ledger.add("cb44201234567", balance="6", rates=(("1", "0.60"), ("44", "0.60")))
        self.leg = CallingFakeCall(self.clock, calling=ACCESS, called="44201234567")
        self.originated = []
        self.background = []

    async def originate(self, destination, caller_id, timeout):
        self.originated.append((self.clock.seconds(), destination, caller_id))
        if isinstance(self.leg, DialFailed):
            raise self.leg
        self.leg.answered = True
        return self.leg

    def callback_context(self):
        return self.context(originate=self.originate, background=self.background.append)

    async def ring(self, options=None, calling="0201234567", called=ACCESS):
        """The caller rings the access number; returns his (dropped) call."""
        call = self.call(calling=calling, called=called)
        await self.run_app(call, {"ani_translation_rule": "s/^0/cb44/",
                                  "dial_translation_rule": "s/^0/44/", **(options or {})},
                           context=self.callback_context())
        return call

    async def called_back(self, wait=0):
        """Move on to the callback and run the session on leg A to its end."""
        self.clock.advance(wait)
        [work] = self.background
        await self.leg.run(work, reactor)

    async def test_ani_callback_with_wait_time_and_leg_prefixes(self):
        self.leg.on_prompt("enter-destination", press=DEST + "#")
        self.leg.hang_up_on_prompt("pp-another-call")
        self.destination(self.leg, DEST, talk=60)
        call = await self.ring({"wait_time": "30", "lega_cld_prefix": "LEG_A",
                                "legb_cld_prefix": "LEG_B"})
        self.assertEqual(call.event_names, ["reject"])
        self.assertEqual(call.events[0][2], 486)
        self.assertEqual(self.originated, [])
        self.clock.advance(29)
        self.assertEqual(self.originated, [])
        await self.called_back(1)
        self.assertEqual(self.originated, [(30.0, "44201234567", ACCESS)])
        self.assertEqual(self.leg.played, ["welcome", "enter-destination", "pp-another-call"])
        leg_b, leg_a = self.ledger.xdrs
        self.assertEqual((leg_b.destination, leg_b.access_code, leg_b.seconds),
                         (DEST, "LEG_B" + ACCESS, 60))
        self.assertEqual((leg_a.account_id, leg_a.destination, leg_a.access_code),
                         ("cb44201234567", "44201234567", "LEG_A" + ACCESS))
        self.assertGreater(leg_a.seconds, 60)
        self.assertTrue(self.leg.is_hungup)

    async def test_unknown_caller_is_not_called_back(self):
        call = await self.ring(calling="0209999999")
        self.assertEqual(call.events[0][1:], ("reject", 403))
        self.assertEqual(self.background, [])

    async def test_dnis_calls_back_the_associated_number(self):
        self.ledger.add(ACCESS, balance="6", rates=(("1", "0.60"), ("44", "0.60")),
                        associated_number="0201112222")
        self.leg.hang_up_on_prompt("enter-destination")
        call = await self.ring({"authenticate_by": "dnis"}, calling="")
        self.assertEqual(call.events[0][2], 486)
        await self.called_back()
        self.assertEqual(self.originated[0][1], "44201112222")
        [leg_a] = self.ledger.xdrs
        self.assertEqual(leg_a.account_id, ACCESS)

    async def test_none_asks_for_the_card_after_the_callback(self):
        self.ledger.add("12345678901", balance="6", rates=(("1", "0.60"), ("44", "0.60")))
        self.leg.on_prompt("enter-card-number", press="12345678901#")
        self.leg.hang_up_on_prompt("enter-destination")
        await self.ring({"authenticate_by": "none"}, calling="0207654321")
        await self.called_back()
        self.assertEqual(self.originated[0][1], "44207654321")
        self.assertEqual(self.leg.played, ["welcome", "enter-card-number", "enter-destination"])
        [leg_a] = self.ledger.xdrs
        self.assertEqual(leg_a.account_id, "12345678901")

    async def test_fake_account_pays_leg_a_when_no_card_is_valid(self):
        self.ledger.add(ACCESS, balance="100", rates=(("44", "0.60"),))
        self.leg.on_prompt("enter-card-number", press="99999999999#")
        await self.ring({"authenticate_by": "none", "use_fake_account": "yes",
                         "maximum_login_attempts": "1"}, calling="0207654321")
        await self.called_back()
        self.assertEqual(self.leg.played, ["welcome", "enter-card-number", "pp-invalid-card",
                                           "too-many-attempts"])
        [leg_a] = self.ledger.xdrs
        self.assertEqual(leg_a.account_id, ACCESS)

    async def test_node_shutdown_before_the_callback_cancels_it_quietly(self):
        context = self.context(originate=self.originate)   # the context's own background
        call = self.call(calling="0201234567", called=ACCESS)
        await self.run_app(call, {"ani_translation_rule": "s/^0/cb44/",
                                  "dial_translation_rule": "s/^0/44/", "wait_time": "30"},
                           context=context)
        self.assertEqual(context.background_work.pending, ["background work"])
        await context.background_work.stop()
        self.clock.advance(60)
        self.assertEqual((self.originated, context.background_work.pending), ([], []))
        self.assertEqual(self.flushLoggedErrors(), [])

    async def test_named_fake_account(self):
        self.ledger.add("fake1", balance="100", rates=(("44", "0.60"),))
        await self.ring({"authenticate_by": "none", "use_fake_account": "yes",
                         "fake_account": "fake1", "maximum_login_attempts": "1"},
                        calling="0207654321")
        await self.called_back()
        self.assertEqual([x.account_id for x in self.ledger.xdrs], ["fake1"])

    async def test_no_fake_account_leaves_leg_a_uncharged(self):
        await self.ring({"authenticate_by": "none", "maximum_login_attempts": "1"},
                        calling="0207654321")
        await self.called_back()
        self.assertEqual(self.ledger.xdrs, [])

    async def test_send_authorization_refuses_forbidden_callback_numbers(self):
        from portaum_tx.billing.rating import Rate, Tariff
        self.account.tariff = Tariff([Rate("1", Decimal("0.60")), Rate("44", Decimal(1), forbidden=True)])
        call = await self.ring({"send_authorization": "yes"})
        self.assertEqual(call.events[0][1:], ("reject", 403))
        self.assertEqual(self.background, [])
        call = await self.ring({"send_authorization": "no"})
        self.assertEqual(call.events[0][1:], ("reject", 486))

    async def test_minimum_sufficient_time(self):
        self.account.balance = Decimal("0.50")  # 50 s of leg A
        call = await self.ring({"send_authorization": "yes", "minimum_sufficient_time": "60"})
        self.assertEqual(call.events[0][1:], ("reject", 403))
        self.assertEqual(self.ledger.open, {})
        call = await self.ring({"send_authorization": "yes", "minimum_sufficient_time": "40"})
        self.assertEqual(call.events[0][1:], ("reject", 486))

    async def test_expected_connect_time(self):
        self.account.balance = Decimal("0.15")  # 15 s of leg A, 20 expected
        await self.ring()
        await self.called_back()
        self.assertEqual(self.leg.played, ["welcome", "pp-insufficient-funds", "goodbye"])

    async def test_special_charge_if_leg_b_fails(self):
        from portaum_tx.billing.rating import Rate, Tariff
        self.ledger.access_tariffs["CALLBACK_FAIL"] = Tariff([Rate("44", Decimal(0))])
        self.leg.on_prompt("enter-destination", press=DEST + "#")
        self.destination(self.leg, DEST, outcome="busy")
        self.leg.hang_up_on_prompt("pp-number-busy")
        await self.ring({"special_charge_if_legb_fails": "yes"})
        await self.called_back()
        [leg_a] = self.ledger.xdrs
        self.assertEqual((leg_a.access_code, leg_a.charge), ("CALLBACK_FAIL", Decimal(0)))

    def expensive_leg_b(self):
        from portaum_tx.billing.rating import Rate, Tariff
        self.account.tariff = Tariff([Rate("44", Decimal("0.60"), 1, 1),
                                      Rate("1", Decimal("1000"), 60, 60)])
        self.account.balance = Decimal("0.30")  # leg A's 30 s; nothing for leg B

    async def test_strict_authorization_drops_leg_a(self):
        self.expensive_leg_b()
        self.leg.on_prompt("enter-destination", press=DEST + "#")
        await self.ring({"strict_authorization": "yes"})
        await self.called_back()
        self.assertEqual(self.leg.played, ["welcome", "enter-destination",
                                           "pp-insufficient-funds", "goodbye"])

    async def test_without_strict_authorization_the_caller_may_try_again(self):
        self.expensive_leg_b()
        self.leg.on_prompt("enter-destination", press=DEST + "#")
        self.leg.hang_up_on_prompt("enter-destination", occurrence=2)
        await self.ring()
        await self.called_back()
        self.assertEqual(self.leg.played, ["welcome", "enter-destination",
                                           "pp-insufficient-funds", "enter-destination"])

    async def test_callback_not_answered(self):
        self.leg = DialFailed("44201234567", "no-answer")
        await self.ring()
        self.clock.advance(0)
        [work] = self.background
        result = await work
        self.assertIsNone(result)
        self.assertEqual(self.ledger.xdrs, [])
        self.assertEqual(self.ledger.open, {})

    async def test_auto_registration_from_the_etalon(self):
        self.ledger.add("etalon", balance="0", rates=(("1", "0.60"), ("44", "0.60")), language="es")
        self.ledger.vouchers["55555555555"] = (Decimal("20"), "new")
        self.leg.on_prompt("enter-voucher", press="55555555555#")
        self.leg.hang_up_on_prompt("enter-destination")
        call = await self.ring({"auto_registration": "yes", "etalon_account": "etalon",
                                "ani_translation_rule": ""}, calling="0209999999")
        self.assertEqual(call.events[0][1:], ("reject", 486))
        await self.called_back()
        self.assertEqual(self.leg.played, ["welcome", "enter-voucher", "cb-number-registered",
                                           "enter-destination"])
        new = self.ledger.accounts["44209999999"]
        self.assertEqual(new.language, "es")
        self.assertEqual(self.leg.languages[0], "es")

    async def test_auto_registration_needs_an_etalon(self):
        with self.assertRaises(OptionError):
            await self.ring({"auto_registration": "yes"})

    async def test_announce_balance_on_the_callback(self):
        self.leg.hang_up_on_prompt("enter-destination")
        await self.ring({"announce_balance": "yes", "play_welcome_message": "no"})
        await self.called_back()
        self.assertEqual(self.leg.played, ["your-balance-is", "6", "dollars", "enter-destination"])
