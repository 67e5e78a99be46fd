"""portaum-admin billing nouns, run as a provider would: one process per command.

Each command runs ``main()`` in a child process (it runs and stops the global
reactor, which trial owns here) against this test's database; the test then
reads what the commands left through its own store and billing engine.
"""

import os
from decimal import Decimal

from hypothesis import given, settings, strategies as st
from twisted.internet import reactor
from twisted.trial import unittest

from portaum_tx.admin import CommandError
from portaum_tx.admin.billing import _money, _optional_money, _show_money

from portaum_tx.billing.engine import BillingEngine
from tests.admin_worker import AdminCommands
from tests.support import StoreTestCase, on_both_engines

D = Decimal
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUSTOMER = "Smart Calls, Ltd."
RACHEL, MARK = "12065557777", "12065558888"


class AdminTestCase(AdminCommands, StoreTestCase):
    def provision_seed(self) -> None:
        """The seed chapter's set-up, step by step, from the command line."""
        a = self.admin
        a("customer", "add", CUSTOMER)
        a("billing", "customer", CUSTOMER, "--credit-limit", "100")
        a("tariff", "add", "Centrex calls")
        a("rate", "set", "Centrex calls", "1", "--price", "0.02", "--first", "1", "--next", "1")
        a("rate", "set", "Centrex calls", "1800", "--price", "0")          # toll free
        a("rate", "set", "Centrex calls", "1206555", "--price", "0")       # the office
        a("rate", "set", "Centrex calls", "AD", "--price", "0")            # the PIN IVR
        a("rate", "set", "Centrex calls", "44", "--price", "0.12", "--first", "30", "--next", "6",
          "--fee", "0.05")
        a("rate", "set", "Centrex calls", "882", "--price", "0", "--forbidden")
        a("product", "add", "IP Centrex", "--tariff", "Centrex calls")
        a("access-number", "add", "AD%", "pass-through", "-o", "authorize_paid_calls=yes",
          "-o", "use_associated_number=yes", "-o", "auth_code_is_account_id=yes")
        for account_id, pin in ((RACHEL, "4545"), (MARK, "8989")):
            a("account", "add", account_id, "--customer", CUSTOMER, "--pin", pin,
              "--associated-number", "1206555")
            a("billing", "set", account_id, "--product", "IP Centrex", "--calls-via-ivr", "AD%")
            a("alias", "add", f"1206555#{pin}", "--account", account_id)


@on_both_engines
class SeedFromTheCommandLineTests(AdminTestCase):
    async def test_seed_scenario_is_configured_and_billed(self):
        self.provision_seed()
        toll = self.admin_json("billing", "check", MARK, "14155551234")
        self.assertEqual((toll["allowed"], toll["call_class"], toll["via_ivr"]), (True, "toll", "AD%"))
        self.assertEqual(toll["max_seconds"], 300000)    # $100 at $0.02 a minute
        toll_free = self.admin_json("billing", "check", MARK, "18005551212")
        self.assertEqual((toll_free["call_class"], toll_free["via_ivr"]), ("toll-free", None))
        internal = self.admin_json("billing", "check", MARK, RACHEL)
        self.assertEqual((internal["call_class"], internal["via_ivr"]), ("internal", None))
        forbidden = self.admin_json("billing", "check", MARK, "88212345")
        self.assertEqual((forbidden["allowed"], forbidden["reason"]), (False, "forbidden"))
        self.assertEqual(self.admin_json("billing", "show", RACHEL)["customer_credit_limit"], "100.00")

        # The calls themselves, as the pass-through IVR bills them.
        engine = BillingEngine(self.store, reactor)
        mark = await engine.get_account(MARK)
        ivr_leg = await engine.authorize(mark, "AD14155551234")
        rachel = await engine.authenticate(associated_number="1206555", pin="4545")
        toll_leg = await engine.authorize(rachel, "14155551234")
        await engine.charge(toll_leg, 300, cli=MARK, access_number="AD14155551234", leg="B")
        await engine.charge(ivr_leg, 310, cli=MARK, leg="A")

        rachel_xdrs = self.admin_json("xdr", "list", "--account", RACHEL)
        self.assertEqual([(x["cli"], x["cld"], x["duration"], x["charge"]) for x in rachel_xdrs],
                         [(MARK, "14155551234", 300, "0.10")])
        mark_xdrs = self.admin_json("xdr", "list", "--account", "1206555#8989")
        self.assertEqual([(x["cld"], x["charge"]) for x in mark_xdrs], [("AD14155551234", "0.00")])
        office = self.admin_json("xdr", "list", "--customer", CUSTOMER)
        self.assertEqual(sorted(x["account"] for x in office), [RACHEL, MARK])
        balance = self.admin_json("balance", "show", RACHEL)
        self.assertEqual((balance["balance"], balance["customer_balance"]), ("0.10", "0.10"))
        table = self.admin("xdr", "list", "--customer", CUSTOMER)
        self.assertIn("14155551234", table)
        self.assertIn("AD14155551234", table)


class BillingCommandTests(AdminTestCase):
    # SQLite only: each command is a process of its own, and the store
    # underneath is tested on both engines in test_store_billing.
    async def test_tariffs_rates_products_and_access_codes(self):
        self.admin("tariff", "add", "Retail", "--description", "walk-in rates")
        self.admin("tariff", "add", "Announce")
        self.admin("rate", "add", "Retail", "44", "--price", "0.12", "--first", "30", "--next", "6",
                   "--fee", "0.05", "--next-price", "0.10")
        rates = self.admin_json("rate", "list", "Retail")
        self.assertEqual(rates, [{"prefix": "44", "price": "0.12", "next_price": "0.10",
                                  "first": 30, "next": 6, "fee": "0.05", "free_seconds": 0,
                                  "grace": 0, "forbidden": "no"}])
        quote = self.admin_json("rate", "quote", "Retail", "442071234567", "--duration", "61",
                                "--funds", "1")
        # 30 s at 0.12 + 36 s at 0.10 + 0.05 fee.
        self.assertEqual((quote["billed_seconds"], quote["charge"]), (66, "0.17000"))
        self.admin("product", "add", "Card", "--tariff", "Retail", "--breakage", "0.25")
        self.admin("access-code", "set", "Card", "ANNOUNCE12125551234", "--tariff", "Announce")
        product = self.admin_json("product", "show", "Card")
        self.assertEqual((product["tariff"], product["breakage"], product["access_codes"]),
                         ("Retail", "0.25", {"ANNOUNCE12125551234": "Announce"}))
        self.admin("product", "set", "Card", "--tariff", "Announce")
        self.assertEqual(self.admin_json("product", "show", "Card")["tariff"], "Announce")
        self.assertIn("used by product Card", self.admin("tariff", "remove", "Announce", expect=1))
        self.admin("access-code", "remove", "Card", "ANNOUNCE12125551234")
        self.admin("product", "remove", "Card")
        self.admin("rate", "remove", "Retail", "44")
        self.assertEqual(self.admin_json("rate", "list", "Retail"), [])
        self.admin("tariff", "remove", "Announce")
        self.assertEqual([t["name"] for t in self.admin_json("tariff", "list")], ["Retail"])

    async def test_prepaid_account_balance_vouchers_and_history(self):
        self.admin("customer", "add", "Cards Inc")
        self.admin("tariff", "add", "Retail")
        self.admin("rate", "set", "Retail", "1", "--price", "0.06", "--first", "1", "--next", "1")
        self.admin("product", "add", "Card", "--tariff", "Retail")
        self.admin("account", "add", "4420000001", "--customer", "Cards Inc",
                   "--no-unified-messaging")
        self.admin("alias", "add", "ani4420000001", "--account", "4420000001")
        shown = self.admin_json("billing", "set", "4420000001", "--product", "Card", "--model",
                                "debit", "--balance", "1.50", "--service-password", "2468")
        self.assertEqual((shown["model"], shown["balance"], shown["service_password_set"]),
                         ("debit", "1.50", True))
        self.admin("balance", "topup", "4420000001", "0.5")
        self.assertEqual(self.admin_json("balance", "show", "ani4420000001")["balance"], "2.00")
        check = self.admin_json("billing", "check", "4420000001", "14155551234")
        self.assertEqual(check["max_seconds"], 2000)
        self.admin("voucher", "add", "12345678901", "--amount", "10", "--expires", "2999-12-31")
        self.admin("voucher", "redeem", "12345678901", "--account", "4420000001")
        self.assertIn("was used already",
                      self.admin("voucher", "redeem", "12345678901", "--account", "4420000001",
                                 expect=1))
        made = self.admin_json("voucher", "generate", "--count", "3", "--amount", "5")
        self.assertEqual(len({v["number"] for v in made}), 3)
        self.assertTrue(all(len(v["number"]) == 11 and v["number"].isdigit() for v in made))
        self.assertEqual(len(self.admin_json("voucher", "list", "--unused")), 3)
        self.assertEqual(self.admin_json("voucher", "show", "12345678901")["used_by"], "4420000001")
        self.admin("balance", "set", "4420000001", "3")
        history = self.admin_json("xdr", "list", "--account", "4420000001")
        self.assertEqual([(x["service"], x["charge"], x["balance"]) for x in history],
                         [("adjustment", "-1.50", "1.50"), ("payment", "-0.50", "2.00"),
                          ("voucher", "-10.00", "12.00"), ("adjustment", "9.00", "3.00")])
        self.assertEqual(len(self.admin_json("xdr", "list", "--customer", "Cards Inc",
                                             "--limit", "2")), 2)
        engine = BillingEngine(self.store, reactor)
        account = await engine.authenticate(ani="020000001", ani_rule="s/^0/ani44/",
                                            service_password="2468", check_service_password=True)
        self.assertEqual((account.account_id, account.balance), ("4420000001", D(3)))

    async def test_user_errors_are_one_line(self):
        self.admin("customer", "add", "C")
        self.admin("tariff", "add", "Retail")
        self.admin("account", "add", "12065550000", "--customer", "C", "--no-unified-messaging")
        cases = [
            (("rate", "set", "Retail", "1", "--price", "0.1x"), "is not a number"),
            (("rate", "set", "Retail", "1", "--price", "-1"), "must not be negative"),
            (("rate", "set", "Retail", "1 2", "--price", "1"), "rate prefix"),
            (("rate", "set", "Nope", "1", "--price", "1"), "no tariff named 'Nope'"),
            (("rate", "set", "Retail", "1", "--price", "1", "--next", "0"), "next interval"),
            (("product", "add", "P", "--tariff", "Nope"), "no tariff named 'Nope'"),
            (("billing", "set", "12065550000"), "nothing to change"),
            (("billing", "set", "12065550000", "--product", "Nope"), "no product named 'Nope'"),
            (("billing", "set", "12065550000", "--calls-via-ivr", "XX%"), "no access number XX%"),
            (("billing", "set", "12065550000", "--credit-limit", "lots"), "is not a number"),
            (("billing", "set", "12065550000", "--service-password", "abcd"), "digits only"),
            (("billing", "show", "999"), "no account or alias 999"),
            (("billing", "check", "12065550000", "14155551234"), None),
            (("balance", "topup", "12065550000", "0"), "more than zero"),
            (("balance", "topup", "999", "1"), "no account"),
            (("voucher", "add", "12ab", "--amount", "1"), "4 to 32 digits"),
            (("voucher", "add", "123456", "--amount", "1", "--expires", "soon"), "date"),
            (("voucher", "redeem", "000000", "--account", "12065550000"), "no voucher 000000"),
            (("xdr", "list", "--customer", "Nobody"), "no customer named 'Nobody'"),
            (("billing", "customer", "C", "--credit-limit", "1.0.0"), "is not a number"),
        ]
        for argv, message in cases:
            if message is None:
                refused = self.admin_json(*argv)
                self.assertEqual((refused["allowed"], refused["reason"]), (False, "no-rate"))
                continue
            line = self.admin(*argv, expect=1)
            self.assertIn(message, line, argv)


class AmountParsingTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=20))
    def test_any_text_is_an_amount_or_a_one_line_error(self, text):
        try:
            amount = _money(text, "--price")
        except CommandError as exc:
            self.assertIn("--price", str(exc))
            self.assertNotIn("\n", str(exc))
        else:
            self.assertIsInstance(amount, Decimal)
            self.assertGreaterEqual(amount, 0)
            self.assertTrue(amount.is_finite())

    def test_amounts_are_exact_and_shown_with_cents(self):
        self.assertEqual(_money("0.1", "x") + _money("0.2", "x"), D("0.3"))
        self.assertIsNone(_optional_money("none", "x"))
        self.assertEqual(_money("-1.5", "x", negative=True), D("-1.5"))
        self.assertEqual([_show_money(D(v)) for v in ("5", "0.1", "0.04167", "-10.00", "1E+2")],
                         ["5.00", "0.10", "0.04167", "-10.00", "100.00"])
