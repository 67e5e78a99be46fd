from decimal import Decimal

from twisted.internet import defer, task

from portaum_tx.accounts import AccountService
from portaum_tx.billing.engine import (
    ANNOUNCE, AccountBlocked, AccountExists, AuthenticationFailed, AuthorizationClosed, BillingEngine,
    CallClass, ForbiddenDestination, InsufficientFunds, InvalidAmount, InvalidNumber, NoRate,
    UnknownAccount, UnknownVoucher, VoucherUsed, access_code,
)
from portaum_tx.store import Store
from portaum_tx.store.billing import RateRecord
from tests.support import StoreTestCase, on_both_engines

D = Decimal
NOW = 1_700_000_000
CUSTOMER = "Smart Calls, Ltd."
RACHEL, MARK, JAKE = "12065557777", "12065558888", "12065559999"
IVR_ACCESS = "AD14155551234"


class BillingFixture(StoreTestCase):
    """The seed's office: Smart Calls, Ltd. with Rachel, Mark and Jake."""

    async def _open(self):
        await super()._open()
        self.clock = task.Clock()
        self.clock.advance(NOW)
        # The same database seen through a store on a fake clock, so that
        # reservation lifetimes and xDR times are deterministic.
        self.timed = Store(self.store.db, self.clock)
        self.engine = BillingEngine(self.timed, self.clock)
        self.accounts = AccountService(self.timed, self.clock)
        billing = self.timed.billing
        await billing.add_tariff("Retail")
        for rate in (
            RateRecord("1", D("0.02"), first_interval=1, next_interval=1),
            RateRecord("1800", D("0")),                          # toll free
            RateRecord("1206555", D("0")),                       # the office's own numbers
            RateRecord("44", D("0.12"), first_interval=30, next_interval=6,
                       connection_fee=D("0.05")),
            RateRecord("882", D("1.00"), forbidden=True),
            RateRecord("AD", D("0")),                            # the pass-through IVR
        ):
            await billing.store_rate("Retail", rate)
        await billing.add_tariff("Announce")
        await billing.store_rate("Announce", RateRecord("44", D("0.24"), first_interval=1,
                                                        next_interval=1))
        await billing.add_tariff("Card")
        await billing.store_rate("Card", RateRecord("44", D("0.06"), first_interval=1,
                                                    next_interval=1))
        await billing.add_product("Centrex", "Retail", breakage=D("0.10"))
        await billing.store_access_entry("Centrex", access_code(ANNOUNCE, "12125551234"), "Announce")
        await billing.store_access_entry("Centrex", "12125551234", "Card")
        await self.timed.accounts.add_customer(CUSTOMER)
        await billing.set_customer_credit_limit(CUSTOMER, D("50"))
        for account_id, pin in ((RACHEL, "4545"), (MARK, "8989"), (JAKE, "1212")):
            await self.accounts.create_account(account_id, CUSTOMER, pin=pin,
                                               associated_number="1206555")
            await billing.set_account_billing(account_id, product="Centrex",
                                              calls_via_ivr="AD%")
            await self.accounts.add_alias(f"1206555#{pin}", account_id)

    async def debit_account(self, account_id="ani4421234567", balance="1.00"):
        await self.accounts.create_account(account_id.removeprefix("ani"), CUSTOMER,
                                           um_enabled=False)
        if account_id.startswith("ani"):
            await self.accounts.add_alias(account_id, account_id.removeprefix("ani"))
        account_id = account_id.removeprefix("ani")
        await self.timed.billing.set_account_billing(account_id, product="Centrex",
                                                     billing_model="debit")
        await self.timed.billing.set_account_balance(account_id, D(balance), "opening balance")
        return await self.engine.get_account(account_id)


@on_both_engines
class SeedScenarioTests(BillingFixture):
    async def test_toll_calls_pass_the_ivr_toll_free_and_internal_do_not(self):
        mark = await self.engine.get_account(MARK)
        self.assertEqual(await self.engine.ivr_for(mark, "14155551234"), "AD%")
        self.assertIsNone(await self.engine.ivr_for(mark, "18005551212"))
        self.assertIsNone(await self.engine.ivr_for(mark, RACHEL))
        self.assertIsNone(await self.engine.ivr_for(mark, "1206555#4545"))
        self.assertEqual(await self.engine.classify(mark, JAKE), CallClass.INTERNAL)
        self.assertEqual(await self.engine.classify(mark, "18005551212"), CallClass.TOLL_FREE)
        self.assertEqual(await self.engine.classify(mark, "88212345"), CallClass.REFUSED)

    async def test_rachel_pays_the_toll_call_mark_has_the_ivr_leg(self):
        engine = self.engine
        mark = await engine.get_account(MARK)
        ivr_leg = await engine.authorize(mark, IVR_ACCESS)
        self.assertEqual(ivr_leg.reserved, D(0))
        rachel = await engine.authenticate(associated_number="1206555", pin="4545")
        self.assertEqual(rachel.account_id, RACHEL)
        self.assertEqual(rachel.associated_number, "1206555")
        toll = await engine.authorize(rachel, "14155551234")
        self.assertEqual(toll.call_class, CallClass.TOLL)
        self.clock.advance(125)
        rachel_xdr = await engine.charge(toll, 125, cli=MARK, access_number=IVR_ACCESS, leg="B",
                                         description="toll call via Roaming PIN")
        mark_xdr = await engine.charge(ivr_leg, 131, cli=MARK, access_number=IVR_ACCESS, leg="A",
                                       description="call to Roaming PIN")
        # 125 s at $0.02 a minute, per second: 0.041666... rounded up to 5 places.
        self.assertEqual(rachel_xdr.charge, D("0.04167"))
        self.assertEqual((rachel_xdr.account_id, rachel_xdr.cli, rachel_xdr.cld, rachel_xdr.duration),
                         (RACHEL, MARK, "14155551234", 125))
        self.assertEqual(rachel_xdr.start_time, NOW)
        self.assertEqual(mark_xdr.charge, D(0))
        self.assertEqual((mark_xdr.account_id, mark_xdr.cld), (MARK, IVR_ACCESS))
        self.assertEqual([x.id for x in await engine.history(account=RACHEL)], [rachel_xdr.id])
        self.assertEqual([x.id for x in await engine.history(account=MARK)], [mark_xdr.id])
        customer_history = await engine.history(customer=CUSTOMER)
        self.assertEqual({x.id for x in customer_history}, {rachel_xdr.id, mark_xdr.id})
        rachel = await engine.get_account(RACHEL)
        mark = await engine.get_account(MARK)
        self.assertEqual((rachel.balance, mark.balance), (D("0.04167"), D(0)))
        self.assertEqual(rachel.customer_balance, D("0.04167"))

    async def test_wrong_pin_is_refused_and_pins_are_checked_by_account_id_too(self):
        with self.assertRaises(AuthenticationFailed):
            await self.engine.authenticate(associated_number="1206555", pin="0000")
        account = await self.engine.authenticate(RACHEL, pin="4545")
        self.assertEqual(account.account_id, RACHEL)
        with self.assertRaises(AuthenticationFailed):
            await self.engine.authenticate(RACHEL, pin="8989")

    async def test_customer_credit_limit_bounds_all_its_accounts(self):
        await self.timed.billing.set_customer_credit_limit(CUSTOMER, D("0.12"))
        rachel = await self.engine.get_account(RACHEL)
        mark = await self.engine.get_account(MARK)
        first = await self.engine.authorize(rachel, "14155551234")
        self.assertEqual(first.max_seconds, 360)          # $0.12 at $0.02 a minute
        with self.assertRaises(InsufficientFunds) as caught:
            await self.engine.authorize(mark, "14155551234")
        self.assertEqual(caught.exception.reason, "insufficient-funds")
        await self.engine.charge(first, 180)
        second = await self.engine.authorize(mark, "14155551234")
        self.assertEqual(second.max_seconds, 180)

    async def test_account_credit_limit(self):
        await self.timed.billing.set_account_billing(RACHEL, credit_limit=D("0.05"))
        rachel = await self.engine.get_account(RACHEL)
        grant = await self.engine.authorize(rachel, "14155551234")
        self.assertEqual((grant.max_seconds, grant.reserved), (150, D("0.05")))


@on_both_engines
class RatingThroughEngineTests(BillingFixture):
    async def test_intervals_rounding_and_connection_fee(self):
        rachel = await self.engine.get_account(RACHEL)
        grant = await self.engine.authorize(rachel, "442071234567")
        self.assertEqual(grant.rate.prefix, "44")
        xdr = await self.engine.charge(grant, 61)
        # 30 s first interval + 6 x 6 s = 66 s at $0.12 a minute, plus the $0.05 fee.
        self.assertEqual(xdr.charged_seconds, 66)
        self.assertEqual(xdr.charge, D("0.18200"))
        unanswered = await self.engine.authorize(rachel, "442071234567")
        xdr = await self.engine.charge(unanswered, 0)
        self.assertEqual(xdr.charge, D(0))
        short = await self.engine.authorize(rachel, "442071234567")
        xdr = await self.engine.charge(short, 1)
        self.assertEqual((xdr.charged_seconds, xdr.charge), (30, D("0.11000")))

    async def test_longest_prefix_wins(self):
        rachel = await self.engine.get_account(RACHEL)
        free = await self.engine.authorize(rachel, "12065551000")
        self.assertEqual((free.rate.prefix, free.call_class), ("1206555", CallClass.TOLL_FREE))
        self.assertIsNone(free.max_seconds)          # nothing limits a free call
        self.assertEqual(free.reserved, D(0))
        await self.engine.charge(free, 7200)
        capped = BillingEngine(self.timed, self.clock, max_call_seconds=3600)
        grant = await capped.authorize(rachel, "12065551000")
        self.assertEqual(grant.max_seconds, 3600)

    async def test_credit_account_without_any_limit_is_not_limited(self):
        await self.timed.billing.set_customer_credit_limit(CUSTOMER, None)
        grant = await self.engine.authorize(RACHEL, "14155551234")
        self.assertIsNone(grant.max_seconds)
        self.assertEqual(grant.reserved, D(0))
        xdr = await self.engine.charge(grant, 6000)
        self.assertEqual(xdr.charge, D("2.00000"))
        self.assertIsNone((await self.engine.get_account(RACHEL)).available)

    async def test_refusals_say_why(self):
        rachel = await self.engine.get_account(RACHEL)
        with self.assertRaises(ForbiddenDestination) as caught:
            await self.engine.authorize(rachel, "88212345")
        self.assertEqual(caught.exception.reason, "forbidden")
        self.assertIn("882", str(caught.exception))
        with self.assertRaises(NoRate) as caught:
            await self.engine.authorize(rachel, "3312345")
        self.assertEqual(caught.exception.reason, "no-rate")
        with self.assertRaises(InvalidNumber):
            await self.engine.authorize(rachel, "")
        await self.timed.billing.set_account_billing(RACHEL, blocked=True)
        rachel = await self.engine.get_account(RACHEL)
        with self.assertRaises(AccountBlocked) as caught:
            await self.engine.authorize(rachel, "14155551234")
        self.assertEqual(caught.exception.reason, "blocked")
        with self.assertRaises(UnknownAccount):
            await self.engine.get_account("999")

    async def test_access_codes_select_tariffs(self):
        account = await self.debit_account(balance="0.60")
        plain = await self.engine.authorize(account, "442071234567")
        self.assertEqual(plain.tariff, "Retail")
        await self.engine.release(plain)
        card = await self.engine.authorize(
            account, "442071234567", "12125551234",
            announce_code=access_code(ANNOUNCE, "12125551234"))
        self.assertEqual(card.tariff, "Card")
        self.assertEqual(card.max_seconds, 600)            # $0.60 at $0.06 a minute
        self.assertEqual(card.announced_seconds, 150)      # ... announced at $0.24 a minute
        await self.engine.release(card)
        unknown_code = await self.engine.authorize(account, "442071234567", "LEG_A12125551234")
        self.assertEqual(unknown_code.tariff, "Retail")    # no such entry: the default tariff


@on_both_engines
class FundsTests(BillingFixture):
    async def test_prepaid_balance_is_spent_and_topped_up(self):
        account = await self.debit_account(balance="0.50")
        self.assertTrue(account.prepaid)
        self.assertFalse(account.low_balance)
        grant = await self.engine.authorize(account, "14155551234")
        self.assertEqual((grant.max_seconds, grant.reserved), (1500, D("0.50000")))
        xdr = await self.engine.charge(grant, 1200)
        self.assertEqual((xdr.charge, xdr.balance_after), (D("0.40000"), D("0.10000")))
        account = await self.engine.get_account(account.account_id)
        self.assertEqual(account.balance, D("0.1"))
        await self.timed.billing.set_account_balance(account.account_id, D("0.05"))
        self.assertTrue((await self.engine.get_account(account.account_id)).low_balance)
        payment = await self.engine.top_up(account, "5", source="credit card")
        self.assertEqual((payment.charge, payment.balance_after), (D(-5), D("5.05")))
        with self.assertRaises(InvalidAmount):
            await self.engine.top_up(account, 1.5)
        with self.assertRaises(InvalidAmount):
            await self.engine.top_up(account, "-1")

    async def test_empty_prepaid_account_is_refused(self):
        account = await self.debit_account(balance="0")
        with self.assertRaises(InsufficientFunds):
            await self.engine.authorize(account, "14155551234")
        # A connection fee larger than the funds leaves no call at all.
        await self.timed.billing.set_account_balance(account.account_id, D("0.04"))
        with self.assertRaises(InsufficientFunds):
            await self.engine.authorize(account, "442071234567")

    async def test_postpaid_top_up_lowers_what_is_owed(self):
        rachel = await self.engine.get_account(RACHEL)
        grant = await self.engine.authorize(rachel, "14155551234")
        await self.engine.charge(grant, 600)
        payment = await self.engine.top_up(RACHEL, "0.25")
        self.assertEqual(payment.balance_after, D("-0.05"))
        self.assertEqual((await self.engine.get_account(RACHEL)).customer_balance, D("-0.05"))

    async def test_release_gives_funds_back_and_closed_authorizations_stay_closed(self):
        account = await self.debit_account(balance="0.10")
        grant = await self.engine.authorize(account, "14155551234")
        with self.assertRaises(InsufficientFunds):
            await self.engine.authorize(account, "14155551234")
        self.assertTrue(await self.engine.release(grant))
        self.assertFalse(await self.engine.release(grant))
        again = await self.engine.authorize(account, "14155551234")
        restored = await self.engine.authorization(again.id)
        self.assertEqual((restored.max_seconds, restored.rate, restored.call_class),
                         (again.max_seconds, again.rate, again.call_class))
        await self.engine.charge(restored, 60)
        with self.assertRaises(AuthorizationClosed):
            await self.engine.charge(again, 60)
        self.assertEqual(len(await self.engine.history(account=account)), 2)  # opening + call

    async def test_seconds_past_the_authorized_end_are_not_billed(self):
        account = await self.debit_account(balance="0.10")
        grant = await self.engine.authorize(account, "14155551234")
        xdr = await self.engine.charge(grant, grant.max_seconds + 30)
        self.assertEqual(xdr.duration, grant.max_seconds + 30)
        self.assertEqual(xdr.charge, D("0.10000"))
        self.assertEqual(xdr.balance_after, D(0))

    async def test_expired_reservations_stop_holding_funds(self):
        account = await self.debit_account(balance="0.10")
        grant = await self.engine.authorize(account, "14155551234")
        self.clock.advance(grant.max_seconds + self.engine.reservation_margin)
        second = await self.engine.authorize(account, "14155551234")
        self.assertEqual(second.reserved, D("0.10000"))
        with self.assertRaises(AuthorizationClosed):
            await self.engine.charge(grant, 10)

    async def test_concurrent_calls_never_overspend_a_prepaid_balance(self):
        account = await self.debit_account(balance="1.00")
        results = await defer.DeferredList(
            [defer.ensureDeferred(self.engine.authorize(account, "14155551234", minimum_seconds=60))
             for _ in range(25)], consumeErrors=True)
        grants = [value for ok, value in results if ok]
        refusals = [value for ok, value in results if not ok]
        self.assertTrue(grants)
        self.assertTrue(refusals)
        for failure in refusals:
            failure.trap(InsufficientFunds)
        self.assertLessEqual(sum(g.reserved for g in grants), D("1.00"))
        # Every call runs to its very end, concurrently settled.
        await defer.gatherResults([defer.ensureDeferred(self.engine.charge(g, g.max_seconds))
                                   for g in grants])
        balance = (await self.engine.get_account(account.account_id)).balance
        self.assertGreaterEqual(balance, D(0))
        self.assertEqual(balance, D("1.00") - sum(g.reserved for g in grants))

    async def test_concurrent_calls_never_exceed_the_customer_credit_limit(self):
        await self.timed.billing.set_customer_credit_limit(CUSTOMER, D("0.30"))
        accounts = [await self.engine.get_account(a) for a in (RACHEL, MARK, JAKE)]
        results = await defer.DeferredList(
            [defer.ensureDeferred(self.engine.authorize(accounts[i % 3], "14155551234",
                                                        minimum_seconds=120))
             for i in range(12)], consumeErrors=True)
        grants = [value for ok, value in results if ok]
        self.assertTrue(grants)
        self.assertLess(len(grants), 12)
        self.assertLessEqual(sum(g.reserved for g in grants), D("0.30"))
        await defer.gatherResults([defer.ensureDeferred(self.engine.charge(g, 10 ** 6))
                                   for g in grants])
        customer = await self.timed.billing.get_customer_billing(CUSTOMER)
        self.assertLessEqual(customer.balance, D("0.30"))


@on_both_engines
class AuthenticationTests(BillingFixture):
    async def test_ani_with_translation_rule_and_service_password(self):
        account = await self.debit_account("ani4421234567")
        found = await self.engine.authenticate(ani="021234567", ani_rule="s/^0/ani44/")
        self.assertEqual(found.account_id, account.account_id)
        # An account without a service password accepts any input.
        found = await self.engine.authenticate(ani="021234567", ani_rule="s/^0/ani44/",
                                               service_password="0000",
                                               check_service_password=True)
        self.assertEqual(found.account_id, account.account_id)
        await self.engine.set_service_password(account.account_id, "2468")
        with self.assertRaises(AuthenticationFailed):
            await self.engine.authenticate(ani="021234567", ani_rule="s/^0/ani44/",
                                           service_password="0000", check_service_password=True)
        found = await self.engine.authenticate(ani="021234567", ani_rule="s/^0/ani44/",
                                               service_password="2468", check_service_password=True)
        self.assertEqual(found.account_id, account.account_id)
        with self.assertRaises(AuthenticationFailed):
            await self.engine.authenticate(ani="021234567", ani_rule="s/^0/(?{code})/")

    async def test_repeated_failures_lock_the_login(self):
        for _ in range(self.engine.FAILURE_LIMIT - 1):
            with self.assertRaises(AuthenticationFailed) as caught:
                await self.engine.authenticate(RACHEL, pin="0000")
            self.assertEqual(caught.exception.locked_until, 0)
        with self.assertRaises(AuthenticationFailed) as caught:
            await self.engine.authenticate(RACHEL, pin="0000")
        self.assertEqual(caught.exception.locked_until, NOW + self.engine.LOCK_FOR)
        with self.assertRaises(AuthenticationFailed):
            await self.engine.authenticate(RACHEL, pin="4545")
        self.clock.advance(self.engine.LOCK_FOR + 1)
        self.assertEqual((await self.engine.authenticate(RACHEL, pin="4545")).account_id, RACHEL)

    async def test_unknown_logins_fail_like_wrong_pins(self):
        with self.assertRaises(AuthenticationFailed) as caught:
            await self.engine.authenticate("19999999999", pin="4545")
        self.assertEqual(str(caught.exception), "authentication failed")


@on_both_engines
class VoucherTests(BillingFixture):
    async def test_a_voucher_tops_up_once(self):
        account = await self.debit_account(balance="0")
        await self.timed.billing.add_voucher("12345678901", D("10.00"))
        xdr = await self.engine.redeem_voucher(account, "12345678901")
        self.assertEqual((xdr.service, xdr.charge, xdr.balance_after),
                         ("voucher", D("-10.00"), D("10.00")))
        with self.assertRaises(VoucherUsed):
            await self.engine.redeem_voucher(account, "12345678901")
        with self.assertRaises(UnknownVoucher):
            await self.engine.redeem_voucher(account, "00000000000")
        voucher = await self.timed.billing.get_voucher("12345678901")
        self.assertEqual((voucher.used_by, voucher.used_at), (account.account_id, NOW))

    async def test_expired_voucher_is_refused(self):
        account = await self.debit_account(balance="0")
        await self.timed.billing.add_voucher("111", D("1"), expires=NOW + 10)
        self.clock.advance(10)
        with self.assertRaises(VoucherUsed) as caught:
            await self.engine.redeem_voucher(account, "111")
        self.assertIn("expired", str(caught.exception))

    async def test_concurrent_redemptions_credit_once(self):
        account = await self.debit_account(balance="0")
        await self.timed.billing.add_voucher("22222222222", D("7.50"))
        results = await defer.DeferredList(
            [defer.ensureDeferred(self.engine.redeem_voucher(
                RACHEL if i % 2 else account.account_id, "22222222222")) for i in range(10)],
            consumeErrors=True)
        successes = [value for ok, value in results if ok]
        self.assertEqual(len(successes), 1)
        for ok, failure in results:
            if not ok:
                failure.trap(VoucherUsed)
        vouchers = [x for a in (RACHEL, account.account_id)
                    for x in await self.engine.history(account=a) if x.service == "voucher"]
        self.assertEqual(len(vouchers), 1)


@on_both_engines
class CallingApplicationInterfaceTests(BillingFixture):
    """What the calling applications ask: by account ID, with None for unknown logins."""

    async def test_find_account_and_available_funds(self):
        self.assertIsNone(await self.engine.find_account("19999999999"))
        await self.timed.billing.set_customer_credit_limit(CUSTOMER, D("1.00"))
        rachel = await self.engine.find_account("1206555#4545")
        self.assertEqual((rachel.id, rachel.available, rachel.language), (RACHEL, D("1.00"), "en"))
        grant = await self.engine.authorize(RACHEL, "14155551234", session_id="call-1")
        self.assertEqual(grant.reserved, D("1.00000"))
        self.assertEqual((await self.engine.find_account(MARK)).available, D(0))
        await self.engine.charge(grant, 1200)
        self.assertEqual((await self.engine.find_account(MARK)).available, D("0.6"))
        prepaid = await self.debit_account(balance="2.50")
        self.assertEqual(prepaid.available, D("2.50"))

    async def test_service_password_check(self):
        account = await self.debit_account()
        self.assertTrue(await self.engine.check_service_password(account.id, "anything"))
        await self.engine.set_service_password(account.id, "2468")
        self.assertFalse(await self.engine.check_service_password(account.id, "1111"))
        self.assertTrue(await self.engine.check_service_password(account, "2468"))
        self.assertFalse(await self.engine.check_service_password("19999999999", "2468"))

    async def test_auto_registration_copies_the_etalon_and_uses_the_voucher(self):
        etalon = await self.debit_account("4420000000", balance="0")
        await self.timed.billing.add_voucher("55555555555", D("3.00"))
        account = await self.engine.register_account("4420000077", etalon.id, "55555555555")
        self.assertEqual((account.product, account.billing_model, account.balance, account.customer),
                         ("Centrex", "debit", D("3.00"), CUSTOMER))
        with self.assertRaises(VoucherUsed) as caught:
            await self.engine.register_account("4420000078", etalon.id, "55555555555")
        self.assertEqual(caught.exception.reason, "used")
        self.assertIsNone(await self.engine.find_account("4420000078"))
        with self.assertRaises(UnknownVoucher) as caught:
            await self.engine.register_account("4420000078", etalon.id, "0")
        self.assertEqual(caught.exception.reason, "invalid")
        await self.timed.billing.add_voucher("66666666666", D("1"))
        with self.assertRaises(AccountExists):
            await self.engine.register_account("4420000077", etalon.id, "66666666666")
        with self.assertRaises(UnknownAccount):
            await self.engine.register_account("4420000079", "4400000000", "66666666666")
        self.assertIsNone((await self.timed.billing.get_voucher("66666666666")).used_by)


@on_both_engines
class RandomWorkloadTests(BillingFixture):
    async def test_mixed_concurrent_traffic_keeps_every_limit_and_the_books_balanced(self):
        import random
        generator = random.Random(20261122)
        await self.timed.billing.set_customer_credit_limit(CUSTOMER, D("2.00"))
        prepaid = await self.debit_account(balance="1.00")
        payers = [prepaid.account_id, RACHEL, MARK, JAKE]
        destinations = ["14155551234", "442071234567", "18005551212", "12065551000"]

        async def one_call(payer, destination, outcome, seconds):
            try:
                grant = await self.engine.authorize(payer, destination, minimum_seconds=5)
            except InsufficientFunds:
                return
            if outcome == "release":
                await self.engine.release(grant)
            else:
                limit = grant.max_seconds if grant.max_seconds is not None else 600
                await self.engine.charge(grant, min(seconds, limit + 20))

        async def top_up():
            await self.engine.top_up(prepaid.account_id, "0.25")

        for _ in range(4):
            work = []
            for _ in range(12):
                if generator.random() < 0.1:
                    work.append(top_up())
                else:
                    work.append(one_call(generator.choice(payers), generator.choice(destinations),
                                         generator.choice(["charge", "charge", "release"]),
                                         generator.randrange(0, 900)))
            await defer.gatherResults([defer.ensureDeferred(w) for w in work])
            account = await self.engine.get_account(prepaid.account_id)
            self.assertGreaterEqual(account.balance, D(0))
            customer = await self.timed.billing.get_customer_billing(CUSTOMER)
            self.assertLessEqual(customer.balance, D("2.00"))
        # The books: every balance is its opening plus what its xDRs say.
        for payer in payers:
            account = await self.engine.get_account(payer)
            history = await self.engine.history(account=payer)
            moved = sum((x.charge for x in history), D(0))
            expected = -moved if account.prepaid else moved
            self.assertEqual(account.balance, expected, payer)
            self.assertEqual(await self.timed.billing.get_reservations(payer), [])
        office = await self.engine.history(customer=CUSTOMER)
        customer = await self.timed.billing.get_customer_billing(CUSTOMER)
        credit = {RACHEL, MARK, JAKE}
        self.assertEqual(customer.balance,
                         sum((x.charge for x in office if x.account_id in credit), D(0)))
