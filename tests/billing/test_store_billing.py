from decimal import Decimal

from twisted.internet import task

from portaum_tx.store import AlreadyExists, NotFound, Store, StoreError
from portaum_tx.store.billing import RateRecord, ReservationPlan, VoucherUnavailable
from tests.support import StoreTestCase, on_both_engines

D = Decimal
NOW = 1_800_000_000
FOLDERS = (("INBOX", None),)


def plan(amount, seconds=60, lifetime=100, on_customer=True):
    return lambda funds: ReservationPlan(D(amount), on_customer, seconds, "14155551234", "Retail",
                                         {"prefix": "1"}, lifetime)


@on_both_engines
class BillingStoreTests(StoreTestCase):
    async def _open(self):
        await super()._open()
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.timed = Store(self.store.db, self.clock)
        self.billing = self.timed.billing
        customer = await self.timed.accounts.add_customer("Smart Calls, Ltd.")
        self.customer_id = customer.id
        for account_id in ("12065557777", "12065558888"):
            await self.timed.accounts.add_account(account_id, customer.id, quota_bytes=1000,
                                                  mailbox_folders=FOLDERS)

    async def test_money_round_trips_exactly(self):
        await self.billing.add_tariff("Retail")
        stored = await self.billing.store_rate(
            "Retail", RateRecord("44", D("0.123456789"), next_price_per_minute=D("0.1"),
                                 connection_fee=D("0.00001")))
        self.assertEqual((stored.price_per_minute, stored.next_price_per_minute,
                          stored.connection_fee), (D("0.123456789"), D("0.1"), D("0.00001")))
        for amount in ("0.1", "0.2", "-0.30", "12345678901234.56789"):
            xdr = await self.billing.add_account_transaction("12065557777", D(amount), "adjustment")
            self.assertIsInstance(xdr.charge, Decimal)
            self.assertEqual(xdr.charge, D(amount))
        account = await self.billing.get_account_billing("12065557777")
        self.assertEqual(account.balance, D("12345678901234.56789"))
        customer = await self.billing.get_customer_billing("Smart Calls, Ltd.")
        self.assertEqual(customer.balance, D("12345678901234.56789"))

    async def test_rates_longest_prefix_and_replacement(self):
        await self.billing.add_tariff("Retail")
        with self.assertRaises(AlreadyExists):
            await self.billing.add_tariff("Retail")
        for prefix, price in (("1", "0.02"), ("1206", "0.01"), ("1206555", "0")):
            await self.billing.store_rate("Retail", RateRecord(prefix, D(price)))
        self.assertEqual((await self.billing.get_rate_for("Retail", "12065551234")).prefix, "1206555")
        self.assertEqual((await self.billing.get_rate_for("Retail", "12064441234")).prefix, "1206")
        self.assertEqual((await self.billing.get_rate_for("Retail", "14155551234")).prefix, "1")
        self.assertIsNone(await self.billing.get_rate_for("Retail", "4420"))
        await self.billing.store_rate("Retail", RateRecord("1", D("0.03"), forbidden=True))
        rate = await self.billing.get_rate_for("Retail", "14155551234")
        self.assertEqual((rate.price_per_minute, rate.forbidden), (D("0.03"), True))
        self.assertEqual([r.prefix for r in await self.billing.get_rates("Retail")],
                         ["1", "1206", "1206555"])
        await self.billing.delete_rate("Retail", "1206")
        with self.assertRaises(NotFound):
            await self.billing.delete_rate("Retail", "1206")
        with self.assertRaises(NotFound):
            await self.billing.store_rate("Nope", RateRecord("1", D(1)))
        with self.assertRaises(NotFound):
            await self.billing.get_rates("Nope")

    async def test_products_access_codes_and_what_may_be_removed(self):
        await self.billing.add_tariff("Retail")
        await self.billing.add_tariff("Card")
        product = await self.billing.add_product("Centrex", "Retail", D("0.5"))
        self.assertEqual(product.breakage, D("0.5"))
        await self.billing.store_access_entry("Centrex", "ANNOUNCE12125551234", "Card")
        self.assertEqual(
            await self.billing.get_tariff_for_access(product.id, ["ANNOUNCE12125551234", ""]), "Card")
        self.assertEqual(await self.billing.get_tariff_for_access(product.id, ["LEG_A1", ""]), "Retail")
        self.assertIsNone(await self.billing.get_tariff_for_access(product.id, ["LEG_A1"]))
        with self.assertRaises(StoreError) as caught:
            await self.billing.delete_tariff("Card")
        self.assertIn("Centrex", str(caught.exception))
        with self.assertRaises(StoreError):
            await self.billing.delete_access_entry("Centrex", "")
        await self.billing.set_account_billing("12065557777", product="Centrex")
        with self.assertRaises(StoreError) as caught:
            await self.billing.delete_product("Centrex")
        self.assertIn("12065557777", str(caught.exception))
        await self.billing.set_account_billing("12065557777", product=None)
        await self.billing.delete_access_entry("Centrex", "ANNOUNCE12125551234")
        await self.billing.delete_tariff("Card")
        await self.billing.delete_product("Centrex")
        with self.assertRaises(NotFound):
            await self.billing.get_product("Centrex")

    async def test_account_billing_settings(self):
        with self.assertRaises(NotFound):
            await self.billing.set_account_billing("12065557777", product="Nope")
        with self.assertRaises(ValueError):
            await self.billing.set_account_billing("12065557777", billing_model="barter")
        with self.assertRaises(ValueError):
            await self.billing.set_account_billing("12065557777", balance=D(1))
        with self.assertRaises(NotFound):
            await self.billing.set_account_billing("999", blocked=True)
        account = await self.billing.set_account_billing(
            "12065557777", billing_model="debit", credit_limit=D("20"), calls_via_ivr="AD%",
            blocked=True)
        self.assertEqual((account.billing_model, account.credit_limit, account.calls_via_ivr,
                          account.blocked), ("debit", D(20), "AD%", True))
        await self.timed.accounts.add_alias("1206555#4545", "12065557777")
        found = await self.billing.get_account_billing_by_alias("1206555#4545")
        self.assertEqual(found.account_id, "12065557777")

    async def test_reservations_expire_and_settle_once(self):
        first = await self.billing.add_reservation("12065557777", plan("0.50"))
        seen = []

        def look(funds):
            seen.append((funds.account_reserved, funds.customer_reserved))
            return plan("0.25", on_customer=False)(funds)
        await self.billing.add_reservation("12065558888", look)
        self.assertEqual(seen, [(D(0), D("0.50"))])
        xdr = await self.billing.settle_reservation(first.id, D("0.20"), {"cld": "14155551234",
                                                                          "duration": 30})
        self.assertEqual((xdr.charge, xdr.balance_after, xdr.service), (D("0.20"), D("0.20"), "call"))
        with self.assertRaises(NotFound):
            await self.billing.settle_reservation(first.id, D("0.20"), {})
        big = await self.billing.add_reservation("12065557777", plan("1"))
        with self.assertRaises(StoreError):
            await self.billing.settle_reservation(big.id, D("1.01"), {})
        self.clock.advance(100)
        seen.clear()
        await self.billing.add_reservation("12065558888", look)
        self.assertEqual(seen, [(D(0), D(0))])
        with self.assertRaises(NotFound):
            await self.billing.get_reservation(big.id)

    async def test_a_failed_decision_reserves_nothing(self):
        def refuse(funds):
            raise ValueError("no")
        with self.assertRaises(ValueError):
            await self.billing.add_reservation("12065557777", refuse)
        self.assertEqual(await self.billing.get_reservations("12065557777"), [])

    async def test_vouchers(self):
        await self.billing.add_voucher("123456", D("5.00"))
        with self.assertRaises(AlreadyExists):
            await self.billing.add_voucher("123456", D("1"))
        voucher, xdr = await self.billing.redeem_voucher("123456", "12065557777")
        self.assertEqual((voucher.used_by, xdr.charge), ("12065557777", D("-5.00")))
        with self.assertRaises(VoucherUnavailable):
            await self.billing.redeem_voucher("123456", "12065558888")
        with self.assertRaises(NotFound):
            await self.billing.redeem_voucher("654321", "12065558888")
        await self.billing.add_voucher("777777", D("1"))
        self.assertEqual([v.number for v in await self.billing.get_vouchers(used=False)], ["777777"])
        self.assertEqual([v.number for v in await self.billing.get_vouchers(used=True)], ["123456"])
        await self.billing.delete_voucher("777777")
        with self.assertRaises(NotFound):
            await self.billing.delete_voucher("777777")

    async def test_history_filters_and_outlives_the_account(self):
        for offset, account_id in ((0, "12065557777"), (60, "12065558888"), (120, "12065557777")):
            await self.billing.add_account_transaction(
                account_id, D("0.10"), "call", start_time=NOW + offset, cld="14155551234")
        mine = await self.billing.get_xdrs(account_id="12065557777")
        self.assertEqual([x.start_time for x in mine], [NOW, NOW + 120])
        everyone = await self.billing.get_xdrs(customer_id=self.customer_id)
        self.assertEqual([x.start_time for x in everyone], [NOW, NOW + 60, NOW + 120])
        window = await self.billing.get_xdrs(customer_id=self.customer_id, since=NOW + 60,
                                             until=NOW + 120)
        self.assertEqual([x.account_id for x in window], ["12065558888"])
        newest = await self.billing.get_xdrs(customer_id=self.customer_id, limit=2)
        self.assertEqual([x.start_time for x in newest], [NOW + 60, NOW + 120])
        with self.assertRaises(ValueError):
            await self.billing.get_xdrs()
        await self.billing.add_reservation("12065557777", plan("1"))
        await self.timed.accounts.delete_account("12065557777")
        self.assertEqual(len(await self.billing.get_xdrs(account_id="12065557777")), 2)

    async def test_customer_credit_limit_and_payment(self):
        customer = await self.billing.set_customer_credit_limit("Smart Calls, Ltd.", D("100"))
        self.assertEqual(customer.credit_limit, D(100))
        await self.billing.add_account_transaction("12065557777", D("30"), "call")
        customer = await self.billing.add_customer_payment("Smart Calls, Ltd.", D("12.5"))
        self.assertEqual(customer.balance, D("17.5"))
        customer = await self.billing.set_customer_credit_limit("Smart Calls, Ltd.", None)
        self.assertIsNone(customer.credit_limit)
        with self.assertRaises(NotFound):
            await self.billing.set_customer_credit_limit("Nobody", D(1))
