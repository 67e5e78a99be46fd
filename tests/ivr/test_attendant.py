"""The menu model: events, actions as typed, the stored form, validation on save."""

import datetime as dt
import json

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.ivr import attendant as aa
from portaum_tx.ivr.attendant import EventAction, Menu, MenuError


class ParseTests(unittest.TestCase):
    def test_events_by_key_and_by_word(self):
        self.assertEqual([aa.parse_event(t) for t in ("1", "*", "star", "pound", "#", "Timeout",
                                                      "FAX", "not-active", "notactive")],
                         ["1", "*", "*", "#", "#", "timeout", "fax", "not_active", "not_active"])
        with self.assertRaisesRegex(MenuError, "unknown event 'A'"):
            aa.parse_event("A")

    def test_every_action_as_typed(self):
        cases = {
            "default": EventAction(),
            "transfer:123": EventAction("transfer", "123"),
            "e164:16045551234": EventAction("transfer_e164", "16045551234"),
            "transfer-e164:+16045551234": EventAction("transfer_e164", "+16045551234"),
            "extension": EventAction("transfer_extension"),
            "extension:3": EventAction("transfer_extension", max_digits=3),
            "voicemail": EventAction("transfer_voicemail"),
            "voicemail:18005551234": EventAction("transfer_voicemail", "18005551234"),
            "menu:Sales": EventAction("menu", "Sales"),
            "directory": EventAction("directory"),
            "queue:support": EventAction("queue", "support"),
            "disconnect": EventAction("disconnect"),
        }
        for text, expected in cases.items():
            self.assertEqual(aa.parse_action(text), expected, text)
        self.assertTrue(aa.parse_action("transfer:123", play_before=True).play_before)
        self.assertEqual(aa.parse_action("extension").extension_digits, aa.DEFAULT_EXTENSION_DIGITS)

    def test_bad_actions_name_the_problem(self):
        for text, message in [("jump:1", "unknown action 'jump'"),
                              ("transfer", "needs a number"),
                              ("transfer:12a", "transfer number must be"),
                              ("e164:0123", "E.164 number must be"),
                              ("menu", "needs a menu name"),
                              ("menu:!bad", "menu name must be"),
                              ("queue", "needs a queue name"),
                              ("disconnect:5", "takes no target"),
                              ("extension:x", "maximum number of digits"),
                              ("extension:0", "must be 1-15"),
                              ("extension:16", "must be 1-15")]:
            with self.assertRaisesRegex(MenuError, message):
                aa.parse_action(text)

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=40))
    def test_fuzzed_actions_parse_or_raise_menu_error(self, text):
        try:
            action = aa.parse_action(text)
        except MenuError:
            return
        self.assertIn(action.action, aa.ACTIONS)
        self.assertEqual(EventAction.from_dict(action.to_dict()), action)


class MenuTests(unittest.TestCase):
    def test_stored_form_round_trips(self):
        menu = Menu("Sales", "hr{9am-5pm} wd{mo-fr}", {
            "1": EventAction("transfer", "116", play_before=True),
            "0": EventAction("transfer_extension", max_digits=3),
            "fax": EventAction("transfer_voicemail"),
        })
        stored = menu.events_json()
        self.assertEqual(list(json.loads(stored)), ["0", "1", "fax"])
        self.assertEqual(Menu.from_stored("Sales", menu.period, stored), menu)
        self.assertEqual(menu.action_for("5"), aa.NO_ACTION)

    def test_bad_stored_tables(self):
        for text, message in [("[", "not JSON"), ("[]", "not an object"),
                              ('{"1": {"action": "menu"}}', "needs a menu name"),
                              ('{"1": {"action": "transfer", "target": 5}}', "target must be text"),
                              ('{"1": {"action": "default", "colour": 1}}', "unknown field"),
                              ('{"1": {"play_before": "yes"}}', "play_before must be")]:
            with self.assertRaisesRegex(MenuError, message):
                Menu.from_stored("ROOT", "", text)

    def test_active_period_in_the_account_zone(self):
        menu = Menu("Night", "hr{6pm-5am}, wd{sa su}")
        # 23:30 UTC on a Wednesday is 18:30 in New York: night there, not yet in Honolulu.
        when = dt.datetime(2026, 11, 18, 23, 30, tzinfo=dt.timezone.utc)
        self.assertTrue(menu.is_active(when, "America/New_York"))
        self.assertFalse(menu.is_active(when, "Pacific/Honolulu"))
        self.assertTrue(Menu("ROOT").is_active(when, None))

    def test_with_events_sets_and_clears(self):
        menu = Menu("ROOT", "", {"1": EventAction("menu", "Sales")})
        menu = menu.with_events({"1": aa.NO_ACTION, "2": EventAction("directory")})
        self.assertEqual(dict(menu.events), {"2": EventAction("directory")})

    def test_describe_period(self):
        self.assertEqual(aa.describe_period(""), "Always")
        self.assertIn("invalid", aa.describe_period("hr{25}"))
        with self.assertRaisesRegex(MenuError, "position"):
            aa.check_period("wd{xx}")


class ValidateTests(unittest.TestCase):
    def menus(self, **root_events):
        return [Menu("ROOT", "", root_events), Menu("Sales")]

    def test_good_set(self):
        aa.validate(self.menus(**{"1": EventAction("menu", "Sales"), "2": EventAction("queue", "support"),
                                  "9": EventAction("directory", "18005550000")}),
                    ["support"], ["18005550000"])

    def test_dangling_references(self):
        for event, message in [(EventAction("menu", "Support"), "there is no menu 'Support'"),
                               (EventAction("queue", "support"), "there is no queue 'support'"),
                               (EventAction("transfer_voicemail", "1800"), "there is no account '1800'"),
                               (EventAction("directory", "1800"), "there is no account '1800'")]:
            with self.assertRaisesRegex(MenuError, "menu ROOT, event 1: " + message):
                aa.validate(self.menus(**{"1": event}), [], [])

    def test_root_and_names(self):
        with self.assertRaisesRegex(MenuError, "ROOT menu is missing"):
            aa.validate([Menu("Sales")], [], [])
        with self.assertRaisesRegex(MenuError, "two menus named sales"):
            aa.validate([Menu("ROOT"), Menu("Sales"), Menu("sales")], [], [])
        with self.assertRaisesRegex(MenuError, "unknown event 'A'"):
            aa.validate([Menu("ROOT", "", {"A": EventAction()})], [], [])
        with self.assertRaisesRegex(MenuError, "menu ROOT: .*position"):
            aa.validate([Menu("ROOT", "hr{")], [], [])

    def test_references_and_renames(self):
        menus = [Menu("ROOT", "", {"1": EventAction("menu", "Sales"), "not_active": EventAction("menu", "Sales")}),
                 Menu("Sales", "", {"*": EventAction("menu", "ROOT")})]
        self.assertEqual(aa.references_to(menus, "menu", "Sales"),
                         ["menu ROOT, event 1", "menu ROOT, event not_active"])
        renamed = aa.rename_references(menus, "menu", "Sales", "Sellers")
        self.assertEqual(renamed[0].action_for("1").target, "Sellers")
        self.assertEqual(renamed[1], menus[1])
