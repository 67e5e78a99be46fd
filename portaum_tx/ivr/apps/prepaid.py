"""Prepaid card calling (Appendix A "Prepaid Card Calling").

The caller is recognised by the number he calls from (ANI authentication, through the ANI
translation rule, optionally confirmed by the service password) or by the card number he
enters; he hears his balance when asked for, then enters destinations one after another,
each authorized, announced, dialled, cut at the authorized time and charged. The call into
the access number is charged to the card as well, by the access number's rate.
"""

from __future__ import annotations

from portaum_tx.ivr.apps import application, option_bool
from portaum_tx.ivr.apps._calling import (
    ANI_RULE_OPTION, BALANCE_OPTIONS, CARD_OPTIONS, LANGUAGE_OPTIONS, PASSWORD_OPTIONS,
    WELCOME_OPTION, IncomingLeg, access_code_of, announce_balance, authenticate_caller, billing_of,
    destination_loop, login_options, low_balance_mode, set_languages,
)
from portaum_tx.ivr.outgoing import CALL_OPTIONS, Dialer, call_options, play_leg_outcome

OPTIONS = (
    ("ani_authentication", "bool", False,
     "Try the caller's number as the account before asking for a card."),
    ANI_RULE_OPTION,
    ("manual_authentication", "bool", True,
     "Ask for the card number when ANI authentication is off or fails."),
    *CARD_OPTIONS,
    ("authorize_with_ivr_session_id", "bool", True,
     "Authorize every leg under the IVR session's ID (off: a new ID each time)."),
    *PASSWORD_OPTIONS,
    *LANGUAGE_OPTIONS,
    WELCOME_OPTION,
    ("toll_free", "bool", True, "Keep the caller in the application even with insufficient funds."),
    *BALANCE_OPTIONS,
    ("check_associated_number", "bool", False,
     "Redirect the call to the account's associated number if it has one."),
    *CALL_OPTIONS,
)


def session_id_for(call, options: dict):
    return call.call_id if option_bool(options, "authorize_with_ivr_session_id", True) else None


@application("prepaid")
async def prepaid(call, context, options: dict) -> None:
    billing = billing_of(context)
    login = login_options(options)
    calls = call_options(options)
    low_balance = low_balance_mode(options)
    toll_free = option_bool(options, "toll_free", True)
    redirect = option_bool(options, "check_associated_number", False)
    session_id = session_id_for(call, options)
    set_languages(call, options, None)
    await call.answer()
    if option_bool(options, "play_welcome_message", True):
        await call.play(["pp-welcome"])
    payer = await authenticate_caller(call, billing, login)
    if payer is None:
        return
    set_languages(call, options, payer)
    code = access_code_of(call, context)
    incoming = IncomingLeg(call, billing, access_code=code, session_id=session_id)
    await incoming.start(payer)
    try:
        if low_balance == "disconnect" and payer.low_balance:
            await call.play(["pp-insufficient-funds", "goodbye"])
            return
        if not toll_free and not payer.unlimited and payer.balance <= 0:
            await call.play(["pp-insufficient-funds", "goodbye"])
            return
        if option_bool(options, "announce_balance", False):
            await announce_balance(call, payer)
        dialer = Dialer(call, billing, calls, session_id=session_id, access_code=code)
        if redirect and payer.associated_number:
            result = await dialer.call_out(payer, payer.associated_number)
            await play_leg_outcome(call, result)
            return
        await destination_loop(call, dialer, payer,
                               no_calls=(low_balance == "no_calls" and payer.low_balance))
    finally:
        await incoming.finish()


prepaid.OPTIONS = OPTIONS
