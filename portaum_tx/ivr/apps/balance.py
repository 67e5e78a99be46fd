"""Balance information: the caller, recognised by his number (or his card number), hears
what his account may still spend."""

from __future__ import annotations

from portaum_tx.ivr.apps import application, option_bool
from portaum_tx.ivr.apps._calling import (
    ANI_RULE_OPTION, CARD_OPTIONS, LANGUAGE_OPTIONS, WELCOME_OPTION, announce_balance,
    authenticate_caller, billing_of, login_options, set_languages,
)

OPTIONS = (
    ("ani_authentication", "bool", True, "Recognise the caller by his number."),
    ANI_RULE_OPTION,
    ("manual_authentication", "bool", True, "Ask for the card number when the number is unknown."),
    *CARD_OPTIONS, *LANGUAGE_OPTIONS, WELCOME_OPTION,
)


@application("balance")
async def balance(call, context, options: dict) -> None:
    billing = billing_of(context)
    login = login_options(options, ani_default=True)
    set_languages(call, options, None)
    await call.answer()
    if option_bool(options, "play_welcome_message", True):
        await call.play(["welcome"])
    payer = await authenticate_caller(call, billing, login)
    if payer is None:
        return
    set_languages(call, options, payer)
    await announce_balance(call, payer)
    await call.play(["goodbye"])


balance.OPTIONS = OPTIONS
