"""One-stage calling, PINless calling with service password, and balance information."""

from twisted.trial import unittest

from portaum_tx.store.access_numbers import AccessNumber
from tests.ivr.calling_support import CallingCase

DEST = "12125551234"


class OneStageTests(CallingCase, unittest.TestCase):
    application = "one-stage"

    def setUp(self):
        super().setUp()
        self.account = self.ledger.add("ani4421234567", balance="3.49", rates=(("1", "0.60"),))
        self.access = AccessNumber(1, "1800%", "one-stage", {}, 0)

    async def one_stage(self, call, options=None):
        return await self.run_app(call, {"ani_translation_rule": "s/^0/ani44/", **(options or {})},
                                  context=self.context(access_number=self.access))

    async def test_authorized_by_ani_announced_and_connected(self):
        call = self.call(calling="021234567", called="1800" + DEST)
        self.destination(call, DEST, talk=42)
        await self.one_stage(call, {"announce_time": "yes"})
        self.assertEqual(call.played, ["welcome", "pp-you-can-talk", "5", "minutes", "and", "49",
                                       "seconds"])
        [leg_b, leg_a] = self.ledger.xdrs
        self.assertEqual((leg_b.destination, leg_b.seconds), (DEST, 42))
        self.assertEqual(leg_a.destination, "1800" + DEST)

    async def test_rounding_up_and_no_welcome(self):
        call = self.call(calling="021234567", called="1800" + DEST)
        self.destination(call, DEST, talk=1)
        await self.one_stage(call, {"announce_time": "yes", "seconds_rounding_mode": "up",
                                    "play_welcome_message": "no"})
        self.assertEqual(call.played, ["pp-you-can-talk", "6", "minutes"])

    async def test_unknown_caller(self):
        call = self.call(calling="029999999", called="1800" + DEST)
        await self.one_stage(call)
        self.assertEqual(call.played, ["welcome", "not-authorized", "goodbye"])
        self.assertNotIn("dial", call.event_names)

    async def test_cut_at_the_limit(self):
        call = self.call(calling="021234567", called="1800" + DEST)
        self.destination(call, DEST)
        await self.one_stage(call, {"disconnect_call_before": "49"})
        self.assertEqual(self.ledger.xdrs[0].seconds, 300)

    async def test_without_a_destination(self):
        call = self.call(calling="021234567", called="1800")
        await self.one_stage(call)
        self.assertEqual(call.events[0][1:], ("reject", 404))


class PinlessTests(CallingCase, unittest.TestCase):
    application = "pinless"

    def setUp(self):
        super().setUp()
        self.account = self.ledger.add("15550001111", balance="5", service_password="2468")

    async def test_ani_and_service_password(self):
        call = self.call()
        call.on_prompt("enter-password", press="2468")
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=10)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call)
        self.assertEqual(call.played, ["pp-welcome", "enter-password", "enter-destination",
                                       "pp-another-call"])
        self.assertEqual(self.ledger.xdrs[0].account_id, "15550001111")

    async def test_unknown_number_is_not_asked_for_a_card(self):
        call = self.call(calling="15559999999")
        await self.run_app(call)
        self.assertEqual(call.played, ["pp-welcome", "not-authorized"])

    async def test_wrong_password(self):
        call = self.call()
        for n in (1, 2, 3):
            call.on_prompt("enter-password", press="1357", occurrence=n)
        await self.run_app(call)
        self.assertEqual(call.played, ["pp-welcome"] + ["enter-password", "password-incorrect"] * 3
                         + ["too-many-attempts"])

    async def test_password_check_can_be_switched_off(self):
        call = self.call()
        call.hang_up_on_prompt("enter-destination")
        await self.run_app(call, {"check_service_password": "no"})
        self.assertEqual(call.played, ["pp-welcome", "enter-destination"])

    def test_declared_defaults(self):
        from portaum_tx.ivr.apps import load_applications
        options = {name: default for name, _, default, *_ in load_applications().get("pinless").OPTIONS}
        self.assertEqual((options["ani_authentication"], options["manual_authentication"],
                          options["check_service_password"]), (True, False, True))


class BalanceTests(CallingCase, unittest.TestCase):
    application = "balance"

    async def test_caller_hears_the_balance(self):
        self.ledger.add("15550001111", balance="12.34")
        call = self.call()
        await self.run_app(call, {"play_welcome_message": "no"})
        self.assertEqual(call.played, ["your-balance-is", "12", "dollars", "and", "34", "cents",
                                       "goodbye"])

    async def test_card_number_when_the_caller_is_unknown(self):
        self.ledger.add("12345678901", balance="1")
        call = self.call(calling="15559999999")
        call.on_prompt("enter-card-number", press="12345678901#")
        await self.run_app(call)
        self.assertEqual(call.played, ["welcome", "enter-card-number", "your-balance-is", "1",
                                       "dollar", "goodbye"])

    async def test_spanish_account(self):
        self.ledger.add("15550001111", balance="2", language="es")
        call = self.call()
        await self.run_app(call, {"play_welcome_message": "no"})
        self.assertEqual(call.languages[0], "es")
        self.assertEqual(call.played, ["your-balance-is", "2", "dollars", "goodbye"])
