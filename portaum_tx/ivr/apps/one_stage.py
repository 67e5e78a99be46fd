"""One-stage calling (Appendix A "One-stage Calling").

The caller dials the destination behind the access number (access number ``1800%``, called
``180012125551234`` reaches 12125551234); the call is authorized by his number through the
ANI translation rule, the longest call allowed is announced when asked for, and the
destination is connected, cut at the authorized time and charged.
"""

from __future__ import annotations

from portaum_tx.ivr import charging
from portaum_tx.ivr.apps import application, option_bool
from portaum_tx.ivr.apps._calling import (
    ANI_RULE_OPTION, LANGUAGE_OPTIONS, WELCOME_OPTION, IncomingLeg, access_code_of, billing_of,
    set_languages, translated, translation_rule,
)
from portaum_tx.ivr.apps.passthrough import destination_of
from portaum_tx.ivr.outgoing import CALL_OPTIONS, Dialer, call_options, play_leg_outcome

OPTIONS = (ANI_RULE_OPTION, *LANGUAGE_OPTIONS, WELCOME_OPTION, *CALL_OPTIONS)


@application("one-stage")
async def one_stage(call, context, options: dict) -> None:
    billing = billing_of(context)
    rule = translation_rule(options, "ani_translation_rule")
    calls = call_options(options)
    payer = None
    if call.calling:
        payer = await charging.find_account(billing, translated(rule, call.calling))
    set_languages(call, options, payer)
    destination = destination_of(call, context.access_number)
    if destination is None:
        await call.reject(404)
        return
    await call.answer()
    if option_bool(options, "play_welcome_message", True):
        await call.play(["welcome"])
    if payer is None:
        await call.play(["not-authorized", "goodbye"])
        return
    code = access_code_of(call, context)
    incoming = IncomingLeg(call, billing, access_code=code, session_id=call.call_id)
    await incoming.start(payer)
    try:
        dialer = Dialer(call, billing, calls, session_id=call.call_id, access_code=code)
        result = await dialer.call_out(payer, destination)
        await play_leg_outcome(call, result)
    finally:
        await incoming.finish()


one_stage.OPTIONS = OPTIONS
