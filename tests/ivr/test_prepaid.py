"""Prepaid card calling: every Appendix A option on a FakeCall and a task.Clock."""

from decimal import Decimal

from twisted.trial import unittest

from portaum_tx.ivr.apps import OptionError
from tests.ivr.calling_support import CallingCase

CARD = "12345678901"
DEST = "12125551234"


class PrepaidTests(CallingCase, unittest.TestCase):
    def setUp(self):
        super().setUp()
        # 0.60 a minute, billed by the second: one cent a second.
        self.card = self.ledger.add(CARD, balance="3.49", rates=(("1", "0.60"),))

    def card_caller(self, **kwargs):
        call = self.call(**kwargs)
        call.on_prompt("enter-card-number", press=CARD + "#")
        return call

    async def test_card_call_announced_connected_cut_and_charged(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=60)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"announce_time": "yes", "announce_balance": "yes"})
        self.assertEqual(call.played, [
            "pp-welcome", "enter-card-number", "your-balance-is", "3", "dollars", "and", "49",
            "cents", "enter-destination", "pp-you-can-talk", "5", "minutes", "and", "49",
            "seconds", "pp-another-call"])
        [leg_b, leg_a] = self.ledger.xdrs
        self.assertEqual((leg_b.account_id, leg_b.destination, leg_b.seconds, leg_b.charge),
                         (CARD, DEST, 60, Decimal("0.60000")))
        self.assertEqual((leg_a.account_id, leg_a.destination), (CARD, "18005550000"))
        self.assertEqual(leg_b.session_id, call.call_id)
        self.assertEqual(self.ledger.open, {})
        self.assertEqual(call.unused_hooks, [])

    async def test_seconds_rounding_up(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=5)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"announce_time": "yes", "seconds_rounding_mode": "up",
                                  "play_welcome_message": "no"})
        self.assertEqual(call.played[:5], ["enter-card-number", "enter-destination",
                                           "pp-you-can-talk", "6", "minutes"])
        self.assertEqual(call.played[5], "pp-another-call")

    async def test_bad_rounding_mode_is_an_option_error(self):
        with self.assertRaises(OptionError) as caught:
            await self.run_app(self.call(), {"seconds_rounding_mode": "down"})
        self.assertIn("seconds_rounding_mode", str(caught.exception))

    async def test_cut_at_the_authorized_time_with_beep_warning_and_margin(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        far = self.destination(call, DEST)  # would talk for ever
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"end_announce_time": "30", "disconnect_call_before": "9"})
        [(bridged_at, _)] = [(t, d) for t, what, d in call.events if what == "bridge"]
        [(warned_at, items)] = call.announced
        self.assertEqual(items, ["beep"])
        self.assertEqual(warned_at - bridged_at, 349 - 9 - 30)
        self.assertTrue(far.is_hungup)
        self.assertEqual(far.hangup_reason, "local")
        [leg_b, _] = self.ledger.xdrs
        self.assertEqual(leg_b.seconds, 340)
        self.assertEqual(leg_b.charge, Decimal("3.40000"))

    async def test_voice_warning_speaks_the_seconds_left(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"end_announce_time": "30", "end_announce_type": "voice"})
        [(_, items)] = call.announced
        self.assertEqual(items, ["pp-disconnect-in", "30", "seconds"])
        self.assertEqual(self.ledger.xdrs[0].seconds, 349)

    async def test_no_warning_when_the_call_is_shorter_than_the_warning(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=20)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"end_announce_time": "30"})
        self.assertEqual(call.announced, [])
        self.assertEqual(self.ledger.xdrs[0].seconds, 20)

    async def test_caller_hangs_up_while_talking(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        far = self.destination(call, DEST)
        call.on_prompt("enter-destination", action=lambda: call.hang_up(at=self.clock.seconds() + 100))
        await self.run_app(call)
        self.assertTrue(far.is_hungup)
        [leg_b, leg_a] = self.ledger.xdrs
        self.assertEqual(leg_b.destination, DEST)
        self.assertGreater(leg_b.seconds, 0)
        self.assertEqual(leg_a.seconds, 100)

    async def test_ani_authentication_with_translation_rule(self):
        self.ledger.add("ani4421234567", balance="5")
        call = self.call(calling="021234567")
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=10)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"ani_authentication": "yes",
                                  "ani_translation_rule": "s/^0/ani44/"})
        self.assertNotIn("enter-card-number", call.played)
        self.assertEqual(self.ledger.xdrs[0].account_id, "ani4421234567")

    async def test_unknown_ani_falls_back_to_the_card(self):
        call = self.card_caller(calling="029999999")
        call.hang_up_on_prompt("enter-destination")
        await self.run_app(call, {"ani_authentication": "yes",
                                  "ani_translation_rule": "s/^0/ani44/"})
        self.assertEqual(call.played, ["pp-welcome", "enter-card-number", "enter-destination"])

    async def test_unknown_ani_without_manual_authentication(self):
        call = self.call(calling="029999999")
        await self.run_app(call, {"ani_authentication": "yes", "manual_authentication": "no"})
        self.assertEqual(call.played, ["pp-welcome", "not-authorized"])

    async def test_service_password_after_ani(self):
        self.ledger.add("15550001111", balance="5", service_password="2468")
        call = self.call()
        call.on_prompt("enter-password", press="1111")
        call.on_prompt("enter-password", press="2468", occurrence=2)
        call.hang_up_on_prompt("enter-destination")
        await self.run_app(call, {"ani_authentication": "yes", "check_service_password": "yes"})
        self.assertEqual(call.played, ["pp-welcome", "enter-password", "password-incorrect",
                                       "enter-password", "enter-destination"])

    async def test_service_password_attempts_and_length(self):
        self.ledger.add("15550001111", balance="5", service_password="246810")
        call = self.call()
        call.on_prompt("enter-password", press="246810#")
        call.on_prompt("enter-password", press="246810#", occurrence=2)
        await self.run_app(call, {"ani_authentication": "yes", "check_service_password": "yes",
                                  "maximum_login_attempts": "2"})
        # The default maximum length is 4: six digits never match.
        self.assertEqual(call.played, ["pp-welcome", "enter-password", "password-incorrect",
                                       "enter-password", "password-incorrect", "too-many-attempts"])
        await_more = self.call()
        await_more.on_prompt("enter-password", press="246810#")
        await_more.hang_up_on_prompt("enter-destination")
        await self.run_app(await_more, {"ani_authentication": "yes",
                                        "check_service_password": "yes",
                                        "maximum_password_length": "6"})
        self.assertEqual(await_more.played[-1], "enter-destination")

    async def test_empty_service_password_accepts_anything(self):
        self.ledger.add("15550001111", balance="5")
        call = self.call()
        call.on_prompt("enter-password", press="0000")
        call.hang_up_on_prompt("enter-destination")
        await self.run_app(call, {"ani_authentication": "yes", "check_service_password": "yes"})
        self.assertEqual(call.played[-1], "enter-destination")

    async def test_card_length_limits_and_login_attempts(self):
        call = self.call()
        call.on_prompt("enter-card-number", press="1234#")
        call.on_prompt("enter-card-number", press="99999999999#", occurrence=2)
        await self.run_app(call, {"maximum_login_attempts": "2"})
        self.assertEqual(call.played, ["pp-welcome", "enter-card-number", "pp-invalid-card",
                                       "enter-card-number", "pp-invalid-card",
                                       "too-many-attempts"])

    async def test_shorter_cards_when_allowed(self):
        self.ledger.add("4321", balance="1")
        call = self.call()
        call.on_prompt("enter-card-number", press="4321#")
        call.hang_up_on_prompt("enter-destination")
        await self.run_app(call, {"minimum_card_length": "4", "play_welcome_message": "no"})
        self.assertEqual(call.played, ["enter-card-number", "enter-destination"])

    async def test_card_lengths_must_make_sense(self):
        with self.assertRaises(OptionError):
            await self.run_app(self.call(), {"minimum_card_length": "12"})

    async def test_no_card_entered_three_times(self):
        call = self.call()
        await self.run_app(call)
        self.assertEqual(call.played, ["pp-welcome"] + ["enter-card-number", "no-input"] * 3
                         + ["too-many-attempts"])

    async def test_toll_free_off_exits_at_once_without_funds(self):
        self.card.balance = Decimal(0)
        call = self.card_caller()
        await self.run_app(call, {"toll_free": "no"})
        self.assertEqual(call.played[-2:], ["pp-insufficient-funds", "goodbye"])
        self.assertNotIn("enter-destination", call.played)

    async def test_toll_free_on_lets_the_caller_in_without_funds(self):
        self.card.balance = Decimal(0)
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        call.hang_up_on_prompt("pp-insufficient-funds")
        await self.run_app(call)
        self.assertEqual(call.played[-2:], ["enter-destination", "pp-insufficient-funds"])
        self.assertNotIn("dial", call.event_names)

    async def test_check_low_balance_disconnect(self):
        self.card.low_balance = True
        call = self.card_caller()
        await self.run_app(call, {"check_low_balance": "disconnect"})
        self.assertEqual(call.played[-2:], ["pp-insufficient-funds", "goodbye"])

    async def test_check_low_balance_no_calls(self):
        self.card.low_balance = True
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        await self.run_app(call, {"check_low_balance": "no_calls"})
        self.assertEqual(call.played[-2:], ["enter-destination", "audio:busy-tone"])
        self.assertEqual(call.played_audio[-1].duration, 4.0)
        self.assertNotIn("dial", call.event_names)

    async def test_check_low_balance_none_ignores_it(self):
        self.card.low_balance = True
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=5)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call)
        self.assertIn("dial", call.event_names)

    async def test_check_associated_number_redirects(self):
        self.card.associated_number = "14155550000"
        call = self.card_caller()
        self.destination(call, "14155550000", talk=12)
        await self.run_app(call, {"check_associated_number": "yes"})
        self.assertNotIn("enter-destination", call.played)
        self.assertEqual([d for _, what, d in call.events if what == "dial"], ["14155550000"])
        self.assertEqual(self.ledger.xdrs[0].seconds, 12)

    async def test_maximum_dial_attempts(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        call.on_prompt("enter-destination", press="13105550000#", occurrence=2)
        self.destination(call, DEST, outcome="busy")
        self.destination(call, "13105550000", outcome="no-answer")
        await self.run_app(call, {"maximum_dial_attempts": "2", "play_welcome_message": "no"})
        self.assertEqual(call.played, ["enter-card-number", "enter-destination", "pp-number-busy",
                                       "enter-destination", "pp-no-answer",
                                       "pp-max-dial-attempts"])
        self.assertEqual(len(self.ledger.released), 2)
        self.assertEqual([x.destination for x in self.ledger.xdrs], ["18005550000"])

    async def test_forbidden_and_unknown_destinations(self):
        self.card.tariff = type(self.card.tariff)(list(self.card.tariff.rates) + [
            __import__("portaum_tx.billing.rating", fromlist=["Rate"]).Rate("1900", Decimal(1), forbidden=True)])
        call = self.card_caller()
        call.on_prompt("enter-destination", press="19005550000#")
        call.on_prompt("enter-destination", press="44207000000#", occurrence=2)
        call.hang_up_on_prompt("pp-destination-invalid")
        await self.run_app(call)
        self.assertEqual(call.played[-4:], ["enter-destination", "pp-destination-forbidden",
                                            "enter-destination", "pp-destination-invalid"])

    async def test_pre_ring_music_on_hold(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=5)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"play_pre_ring_moh": "yes", "music_on_hold_class": "my-ringtone"})
        self.assertEqual(call.ringbacks, [["moh-my-ringtone"]])

    async def test_no_pre_ring_music_by_default(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=5)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call)
        self.assertEqual(call.ringbacks, [])

    async def test_authorize_with_ivr_session_id_off(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=5)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"authorize_with_ivr_session_id": "no"})
        self.assertEqual({a.session_id for a in self.ledger.authorizations}, {None})

    async def test_use_announcement_tariff(self):
        from portaum_tx.billing.rating import Rate, Tariff
        self.ledger.announce_tariff = Tariff([Rate("1", Decimal("1.20"), 1, 1)])
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=5)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call, {"announce_time": "yes", "use_announcement_tariff": "yes",
                                  "play_welcome_message": "no"})
        # Announced by the 1.20 tariff (174 s), authorized by the 0.60 one (349 s).
        self.assertEqual(call.played[2:8], ["pp-you-can-talk", "2", "minutes", "and", "54",
                                            "seconds"])
        [toll] = [a for a in self.ledger.authorizations if a.destination == DEST]
        self.assertEqual(toll.max_seconds, 349)
        self.assertEqual(self.ledger.announce_codes, ["ANNOUNCE18005550000"])

    async def test_languages_and_brand(self):
        self.card.language = "es"
        call = self.card_caller()
        call.hang_up_on_prompt("enter-destination")
        await self.run_app(call, {"languages": "en", "prompts_brand": "my_company"})
        self.assertEqual(call.languages, ["es", "en"])
        self.assertEqual(call.brand, "my_company")
        call = self.card_caller()
        call.hang_up_on_prompt("enter-destination")
        await self.run_app(call, {"languages": "en", "language_list_preferred": "yes"})
        self.assertEqual(call.languages, ["en", "es"])

    async def test_another_call_after_the_first(self):
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        call.on_prompt("enter-destination", press="13105550000#", occurrence=2)
        self.destination(call, DEST, talk=10)
        self.destination(call, "13105550000", talk=20)
        call.hang_up_on_prompt("pp-another-call", occurrence=2)
        await self.run_app(call)
        self.assertEqual([(x.destination, x.seconds) for x in self.ledger.xdrs[:2]],
                         [(DEST, 10), ("13105550000", 20)])

    async def test_access_number_selects_its_tariff(self):
        from portaum_tx.billing.rating import Rate, Tariff
        self.ledger.access_tariffs["18005550000"] = Tariff([Rate("1", Decimal("0.30"), 1, 1)])
        call = self.card_caller()
        call.on_prompt("enter-destination", press=DEST + "#")
        self.destination(call, DEST, talk=60)
        call.hang_up_on_prompt("pp-another-call")
        await self.run_app(call)
        leg_b, leg_a = self.ledger.xdrs
        self.assertEqual((leg_b.access_code, leg_b.charge), ("18005550000", Decimal("0.30000")))
        self.assertEqual(leg_a.access_code, "18005550000")
