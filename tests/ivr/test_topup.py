"""Top-up by voucher and by credit card (the card test at the end charges through a real
twisted.web server on loopback playing the payment gateway)."""

from decimal import Decimal

from twisted.internet import reactor
from twisted.trial import unittest
from twisted.web import server

from portaum_tx.billing.gateway import GatewayUnavailable, Payment, PaymentGateway
from portaum_tx.ivr.apps import OptionError
from tests.billing.test_gateway import GatewayPlayer
from tests.ivr.calling_support import CallingCase

VOUCHER = "11122233344"
VISA = "4111111111111112"      # the scripted gateways approve even last digits
DECLINED = "4111111111111111"


class VoucherTests(CallingCase, unittest.TestCase):
    application = "topup-voucher"

    def setUp(self):
        super().setUp()
        self.account = self.ledger.add("15550001111", balance="1.50")
        self.ledger.vouchers[VOUCHER] = (Decimal("10"), "new")
        self.ledger.vouchers["99988877766"] = (Decimal("5"), "used")
        self.ledger.vouchers["55566677788"] = (Decimal("5"), "expired")

    async def test_voucher_credits_the_callers_account(self):
        call = self.call()
        call.on_prompt("enter-voucher", press=VOUCHER + "#")
        await self.run_app(call)
        self.assertEqual(call.played, ["enter-voucher", "account-credited", "10", "dollars",
                                       "your-new-balance-is", "11", "dollars", "and", "50",
                                       "cents", "goodbye"])
        self.assertEqual(self.account.balance, Decimal("11.50"))

    async def test_used_expired_and_unknown_vouchers(self):
        call = self.call()
        call.on_prompt("enter-voucher", press="99988877766#")
        call.on_prompt("enter-voucher", press="55566677788#", occurrence=2)
        call.on_prompt("enter-voucher", press="12312312312#", occurrence=3)
        await self.run_app(call)
        self.assertEqual(call.played, ["enter-voucher", "voucher-used", "enter-voucher",
                                       "voucher-expired", "enter-voucher", "voucher-invalid",
                                       "too-many-attempts"])
        self.assertEqual(self.account.balance, Decimal("1.50"))

    async def test_voucher_length_limits(self):
        self.ledger.vouchers["1234"] = (Decimal("1"), "new")
        call = self.call()
        call.on_prompt("enter-voucher", press="1234#")
        await self.run_app(call, {"maximum_login_attempts": "1"})
        self.assertEqual(call.played, ["enter-voucher", "voucher-invalid", "too-many-attempts"])
        call = self.call()
        call.on_prompt("enter-voucher", press="1234#")
        await self.run_app(call, {"minimum_voucher_length": "4"})
        self.assertEqual(self.account.balance, Decimal("2.50"))

    async def test_bad_voucher_lengths(self):
        with self.assertRaises(OptionError):
            await self.run_app(self.call(), {"minimum_voucher_length": "12"})

    async def test_unknown_caller_enters_the_card_number(self):
        self.ledger.add("12345678901", balance="0")
        call = self.call(calling="15559999999")
        call.on_prompt("enter-card-number", press="12345678901#")
        call.on_prompt("enter-voucher", press=VOUCHER + "#")
        await self.run_app(call)
        self.assertEqual(self.ledger.accounts["12345678901"].balance, Decimal("10"))


class ScriptedGateway:
    def __init__(self, unavailable=False):
        self.charges = []
        self.unavailable = unavailable

    async def charge(self, *, reference, account, card_number, expiry, amount, currency):
        self.charges.append((account, card_number, expiry, amount, currency))
        if self.unavailable:
            raise GatewayUnavailable("payment gateway https://pay.example/ answered HTTP 503")
        if int(card_number[-1]) % 2:
            return Payment(False, reference, amount, reason="do not honour")
        return Payment(True, reference, amount, transaction_id=f"T-{len(self.charges)}")


class CreditCardTests(CallingCase, unittest.TestCase):
    application = "topup-credit-card"

    def setUp(self):
        super().setUp()
        self.account = self.ledger.add("15550001111", balance="1")
        self.gateway = ScriptedGateway()

    def card_call(self, card=VISA, expiry="0929", amount="20", **kwargs):
        call = self.call(**kwargs)
        call.on_prompt("cc-enter-card", press=card + "#")
        call.on_prompt("cc-enter-expiry", press=expiry)
        call.on_prompt("cc-enter-amount", press=amount + "#")
        return call

    async def top_up(self, call, options=None, gateway="scripted"):
        gateway = self.gateway if gateway == "scripted" else gateway
        return await self.run_app(call, options, context=self.context(payment_gateway=gateway))

    async def test_approved_payment_tops_up(self):
        call = self.card_call()
        await self.top_up(call)
        self.assertEqual(call.played, ["cc-enter-card", "cc-enter-expiry", "cc-enter-amount",
                                       "please-wait", "cc-payment-accepted", "account-credited",
                                       "20", "dollars", "your-new-balance-is", "21", "dollars",
                                       "goodbye"])
        self.assertEqual(self.gateway.charges,
                         [("15550001111", VISA, "0929", Decimal(20), "USD")])
        self.assertEqual(self.ledger.top_ups, [("15550001111", Decimal(20), "credit card payment T-1")])

    async def test_minimum_sum(self):
        call = self.card_call(amount="5")
        await self.top_up(call, {"minimum_sum": "10", "maximum_login_attempts": "1"})
        self.assertEqual(call.played[3:], ["cc-amount-too-small", "10", "dollars",
                                           "too-many-attempts"])
        self.assertEqual(self.gateway.charges, [])

    async def test_declined_then_approved(self):
        call = self.card_call(card=DECLINED)
        call.on_prompt("cc-enter-card", press=VISA + "#", occurrence=2)
        call.on_prompt("cc-enter-expiry", press="0929", occurrence=2)
        call.on_prompt("cc-enter-amount", press="20#", occurrence=2)
        await self.top_up(call)
        self.assertIn("cc-declined", call.played)
        self.assertEqual(self.account.balance, Decimal(21))
        self.assertEqual(len(self.gateway.charges), 2)

    async def test_declined_offers_the_customer_center(self):
        call = self.card_call(card=DECLINED)
        call.on_prompt("customer-center", press="0")
        await self.top_up(call, {"customer_center_number": "18005551000"})
        self.assertEqual(call.played[-2:], ["cc-declined", "customer-center"])
        self.assertEqual([d for _, what, d in call.events if what == "transfer"], ["18005551000"])

    async def test_bad_card_number_and_expiry(self):
        call = self.card_call(card="1234")
        call.on_prompt("cc-enter-card", press=VISA + "#", occurrence=2)
        call.on_prompt("cc-enter-expiry", press="1399", occurrence=1)
        await self.top_up(call, {"maximum_login_attempts": "2"})
        self.assertEqual(call.played, ["cc-enter-card", "invalid-try-again", "cc-enter-card",
                                       "cc-enter-expiry", "invalid-try-again",
                                       "too-many-attempts"])
        self.assertEqual(self.gateway.charges, [])

    async def test_gateway_unavailable(self):
        self.gateway.unavailable = True
        call = self.card_call()
        await self.top_up(call)
        self.assertEqual(call.played[-2:], ["system-error", "goodbye"])
        self.assertEqual(self.ledger.top_ups, [])

    async def test_no_gateway_configured(self):
        call = self.call()
        await self.top_up(call, gateway=None)
        self.assertEqual(call.played, ["service-unavailable", "goodbye"])

    async def test_bad_minimum_sum(self):
        with self.assertRaises(OptionError):
            await self.top_up(self.call(), {"minimum_sum": "lots"})

    async def test_through_a_gateway_on_loopback(self):
        player = GatewayPlayer()
        port = reactor.listenTCP(0, server.Site(player), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        gateway = PaymentGateway(reactor, f"http://127.0.0.1:{port.getHost().port}/charge",
                                 "portaum", "s3cret", timeout=5)
        call = self.card_call(amount="15")
        await self.top_up(call, gateway=gateway)
        self.assertEqual(player.requests[0]["amount"], "15.00")
        self.assertEqual(player.requests[0]["account"], "15550001111")
        self.assertEqual(self.account.balance, Decimal(16))
        self.assertIn("cc-payment-accepted", call.played)
