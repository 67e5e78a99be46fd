"""Account top-up by voucher (Appendix A "Account Top-up via Voucher").

The account is the caller's (by his number), or the card number he enters; he enters the
voucher number, the voucher's value is added to the balance and both are announced.
"""

from __future__ import annotations

from portaum_tx.ivr import charging
from portaum_tx.ivr.apps import OptionError, application
from portaum_tx.ivr.apps._calling import (
    ANI_RULE_OPTION, FIRST_DIGIT_TIMEOUT, INTER_DIGIT_TIMEOUT, LANGUAGE_OPTIONS,
    authenticate_caller, billing_of, login_options, set_languages,
)
from portaum_tx.ivr.outgoing import option_int

OPTIONS = (
    ("maximum_login_attempts", "int", 3, "Attempts the caller has to enter a valid voucher number."),
    ("minimum_voucher_length", "int", 11, "Shortest voucher number accepted."),
    ("maximum_voucher_length", "int", 11, "Longest voucher number accepted."),
    ("ani_authentication", "bool", True, "The account is the caller's own, by his number."),
    ANI_RULE_OPTION,
    ("minimum_card_length", "int", 11, "Shortest card number accepted."),
    ("maximum_card_length", "int", 11, "Longest card number accepted."),
    *LANGUAGE_OPTIONS,
)

VOUCHER_PROMPTS = {"used": "voucher-used", "expired": "voucher-expired"}


def voucher_lengths(options: dict) -> tuple[int, int]:
    shortest = option_int(options, "minimum_voucher_length", 11, 1, 64)
    longest = option_int(options, "maximum_voucher_length", 11, 1, 64)
    if shortest > longest:
        raise OptionError(f"option minimum_voucher_length ({shortest}) is above "
                          f"maximum_voucher_length ({longest})")
    return shortest, longest


@application("topup-voucher")
async def topup_voucher(call, context, options: dict) -> None:
    billing = billing_of(context)
    login = login_options(options, ani_default=True)
    shortest, longest = voucher_lengths(options)
    set_languages(call, options, None)
    await call.answer()
    payer = await authenticate_caller(call, billing, login)
    if payer is None:
        return
    set_languages(call, options, payer)
    for _ in range(login.maximum_login_attempts):
        entry = await call.collect_digits(longest + 1, first_timeout=FIRST_DIGIT_TIMEOUT,
                                          inter_timeout=INTER_DIGIT_TIMEOUT,
                                          prompts=["enter-voucher"], flush=True)
        if entry.timed_out:
            await call.play(["no-input"])
            continue
        if not shortest <= len(entry.digits) <= longest:
            await call.play(["voucher-invalid"])
            continue
        try:
            amount = await charging.redeem_voucher(billing, payer, entry.digits)
        except charging.VoucherRefused as refused:
            await call.play([VOUCHER_PROMPTS.get(refused.reason, "voucher-invalid")])
            continue
        payer = await charging.refresh(billing, payer)
        await call.play(["account-credited"]
                        + call.sayings("money", amount, currency=payer.currency)
                        + ["your-new-balance-is"]
                        + call.sayings("money", payer.balance, currency=payer.currency)
                        + ["goodbye"])
        return
    await call.play(["too-many-attempts"])


topup_voucher.OPTIONS = OPTIONS
