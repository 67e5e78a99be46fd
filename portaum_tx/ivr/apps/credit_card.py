"""Account top-up by credit card (Appendix A "Account Top-up via Credit Card").

The account is the caller's (by his number) or the card number he enters. He enters his
credit card number, its expiry date (MMYY) and the amount in whole currency units; the
payment gateway configured in tap.conf's ``[payment]`` section charges the card, and an
approved payment is added to the balance. Below ``minimum_sum`` the amount is refused with
the minimum spoken; a declined card may be tried again within ``maximum_login_attempts``;
with a ``customer_center_number`` the caller may press 0 after a failure to reach an
operator.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Optional

from twisted.logger import Logger

from portaum_tx.billing.gateway import GatewayUnavailable, mask_card
from portaum_tx.ivr import charging
from portaum_tx.ivr.apps import OptionError, application
from portaum_tx.ivr.apps._calling import (
    ANI_RULE_OPTION, CARD_OPTIONS, FIRST_DIGIT_TIMEOUT, INTER_DIGIT_TIMEOUT, LANGUAGE_OPTIONS,
    authenticate_caller, billing_of, login_options, set_languages,
)
from portaum_tx.ivr.apps.voucher import voucher_lengths
from portaum_tx.ivr.call import TransferFailed
from portaum_tx.ivr.outgoing import option_text

log = Logger()

OPTIONS = (
    *LANGUAGE_OPTIONS,
    ("minimum_sum", "text", "", "Smallest amount that may be charged to the card."),
    *CARD_OPTIONS,
    ("minimum_voucher_length", "int", 11, "Shortest voucher number accepted."),
    ("maximum_voucher_length", "int", 11, "Longest voucher number accepted."),
    ("customer_center_number", "text", "", "Number where a caller can reach an operator."),
    ("ani_authentication", "bool", True, "The account is the caller's own, by his number."),
    ANI_RULE_OPTION,
)

#: Payment card numbers are 12 to 19 digits (ISO/IEC 7812).
CREDIT_CARD_LENGTHS = (12, 19)
MAX_AMOUNT_DIGITS = 6


def minimum_sum(options: dict) -> Decimal:
    text = option_text(options, "minimum_sum")
    if not text:
        return Decimal(0)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise OptionError(f"option minimum_sum must be an amount, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise OptionError(f"option minimum_sum must be an amount of 0 or more, got {text!r}")
    return value


def valid_expiry(digits: str) -> bool:
    return len(digits) == 4 and digits.isdigit() and 1 <= int(digits[:2]) <= 12


async def _collect(call, prompt: str, max_digits: int) -> str:
    entry = await call.collect_digits(max_digits + 1, first_timeout=FIRST_DIGIT_TIMEOUT,
                                      inter_timeout=INTER_DIGIT_TIMEOUT, prompts=[prompt],
                                      flush=True)
    return entry.digits


async def _offer_customer_center(call, number: str) -> bool:
    """After a failure: "to speak to a representative, press 0". True when transferred."""
    if not number:
        return False
    entry = await call.collect_digits(1, first_timeout=5.0, prompts=["customer-center"])
    if entry.digits != "0":
        return False
    try:
        await call.transfer(number)
    except TransferFailed:
        await call.play(["pp-call-failed"])
        return False
    return True


@application("topup-credit-card")
async def topup_credit_card(call, context, options: dict) -> None:
    billing = billing_of(context)
    login = login_options(options, ani_default=True)
    voucher_lengths(options)  # checked for the operator's sake; vouchers are not used here
    least = minimum_sum(options)
    center = option_text(options, "customer_center_number")
    gateway = getattr(context, "payment_gateway", None)
    set_languages(call, options, None)
    await call.answer()
    if gateway is None:
        await call.play(["service-unavailable", "goodbye"])
        return
    payer = await authenticate_caller(call, billing, login)
    if payer is None:
        return
    set_languages(call, options, payer)
    for _ in range(login.maximum_login_attempts):
        outcome = await _one_payment(call, billing, gateway, payer, least)
        if outcome == "paid":
            return
        if outcome == "unavailable" or await _offer_customer_center(call, center):
            return
    await call.play(["too-many-attempts"])


async def _one_payment(call, billing, gateway, payer, least: Decimal) -> str:
    card = await _collect(call, "cc-enter-card", CREDIT_CARD_LENGTHS[1])
    if not CREDIT_CARD_LENGTHS[0] <= len(card) <= CREDIT_CARD_LENGTHS[1]:
        await call.play(["invalid-try-again"])
        return "invalid"
    expiry = await _collect(call, "cc-enter-expiry", 4)
    if not valid_expiry(expiry):
        await call.play(["invalid-try-again"])
        return "invalid"
    digits = await _collect(call, "cc-enter-amount", MAX_AMOUNT_DIGITS)
    amount: Optional[Decimal] = Decimal(digits) if digits else None
    if amount is None or amount <= 0 or amount < least:
        await call.play(["cc-amount-too-small"]
                        + call.sayings("money", max(least, Decimal(1)), currency=payer.currency))
        return "invalid"
    await call.play(["please-wait"])
    reference = uuid.uuid4().hex
    try:
        payment = await gateway.charge(reference=reference, account=payer.id, card_number=card,
                                       expiry=expiry, amount=amount, currency=payer.currency)
    except GatewayUnavailable as e:
        log.error("{call_id}: card {card} for {account}: {error}", call_id=call.call_id,
                  card=mask_card(card), account=payer.id, error=str(e))
        await call.play(["system-error", "goodbye"])
        return "unavailable"
    if not payment.approved:
        log.info("{call_id}: card {card} declined for {account}: {reason}", call_id=call.call_id,
                 card=mask_card(card), account=payer.id, reason=payment.reason)
        await call.play(["cc-declined"])
        return "declined"
    await charging.top_up(billing, payer, amount, payment.transaction_id)
    payer = await charging.refresh(billing, payer)
    await call.play(["cc-payment-accepted", "account-credited"]
                    + call.sayings("money", amount, currency=payer.currency)
                    + ["your-new-balance-is"]
                    + call.sayings("money", payer.balance, currency=payer.currency)
                    + ["goodbye"])
    return "paid"


topup_credit_card.OPTIONS = OPTIONS
