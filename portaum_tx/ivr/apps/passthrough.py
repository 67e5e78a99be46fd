"""Pass-through IVR with authorization code ("Personalized IP Centrex Calling").

An account set to call via this IVR reaches it for toll calls: the toll number arrives
behind the access number's prefix (access number ``AD%``, called ``AD12125551234``). The
caller enters an authorization code; the IVR forms the auth ID ``<associated number>#<code>``
(``1206555#4545``), which is an alias of the colleague's own account, authorizes the toll
call on that account and connects it. The phone's owner is charged for the call into the
IVR, the owner of the code for the toll call.

Options (the seed's IVR Settings):

``authorize_paid_calls`` (yes)
    Ask for the code before a paid call; off, the call is put through on the phone owner's
    account without a code. Internal and toll-free calls never need one (they do not reach
    the IVR, see :func:`outgoing_route`; should one come all the same, it is put through).
``use_associated_number`` (yes)
    The auth ID is the calling account's associated number, ``#`` and the code; off, the
    code alone names the account (an alias equal to the code).
``auth_code_as_account_id`` (yes)
    Bill the toll call to the account the auth ID names; off, the code only authorizes and
    the phone's owner pays.
``maximum_login_attempts`` (3), ``maximum_code_length`` (10)

:func:`outgoing_route` is the other half of the scenario: it tells the SIP front end whether
a call an account places must go through the IVR (toll calls) or not (calls to other
accounts of the system and toll-free numbers).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from portaum_tx.ivr import charging
from portaum_tx.ivr.apps import application, option_bool
from portaum_tx.ivr.apps._calling import (
    FIRST_DIGIT_TIMEOUT, INTER_DIGIT_TIMEOUT, LANGUAGE_OPTIONS, IncomingLeg, access_code_of,
    billing_of, set_languages,
)
from portaum_tx.ivr.outgoing import (
    CALL_OPTIONS, Dialer, call_options, option_int, play_leg_outcome,
)

OPTIONS = (
    ("name", "text", "", "What the provider calls this IVR (e.g. Roaming PIN); not used by calls."),
    ("authorize_paid_calls", "bool", True, "Ask for an authorization code before a paid call."),
    ("use_associated_number", "bool", True,
     "Form the auth ID from the account's associated number, # and the code (1206555#4545)."),
    ("auth_code_as_account_id", "bool", True,
     "Bill the call to the account the auth ID names (Treat Auth Code as Part of Account ID)."),
    ("maximum_login_attempts", "int", 3, "Codes the caller may try before the call ends."),
    ("maximum_code_length", "int", 10, "Longest authorization code."),
    *LANGUAGE_OPTIONS,
    *CALL_OPTIONS,
)


def destination_of(call, access_number) -> Optional[str]:
    """The number the caller dialled, behind the access number's prefix."""
    pattern = getattr(access_number, "pattern", None)
    if pattern and pattern.endswith("%"):
        prefix = pattern[:-1]
        if call.called.startswith(prefix) and len(call.called) > len(prefix):
            return call.called[len(prefix):]
    return call.original_called or None


def auth_id(code: str, associated_number: Optional[str], use_associated_number: bool) -> str:
    if use_associated_number and associated_number:
        return f"{associated_number}#{code}"
    return code


async def ask_code(call, billing, caller: charging.Payer, *, attempts: int, max_length: int,
                   use_associated_number: bool) -> Optional[charging.Payer]:
    """The account the entered code names; it must belong to the caller's customer."""
    for _ in range(attempts):
        entry = await call.collect_digits(
            max_length + 1, first_timeout=FIRST_DIGIT_TIMEOUT, inter_timeout=INTER_DIGIT_TIMEOUT,
            prompts=["pt-enter-code"], flush=True)
        if entry.timed_out:
            await call.play(["no-input"])
            continue
        owner = None
        if entry.digits:
            owner = await charging.log_in(
                billing, entry.digits,
                associated_number=caller.associated_number if use_associated_number else None)
        if owner is not None and owner.customer == caller.customer:
            return owner
        await call.play(["pt-code-incorrect"])
    await call.play(["too-many-attempts"])
    return None


@application("pass-through")
async def pass_through(call, context, options: dict) -> None:
    billing = billing_of(context)
    authorize_paid = option_bool(options, "authorize_paid_calls", True)
    use_associated = option_bool(options, "use_associated_number", True)
    bill_code_owner = option_bool(options, "auth_code_as_account_id", True)
    attempts = option_int(options, "maximum_login_attempts", 3, 1, 20)
    max_length = option_int(options, "maximum_code_length", 10, 1, 32)
    calls = dataclasses.replace(call_options(options), maximum_dial_attempts=1)
    caller = await charging.find_account(billing, call.calling) if call.calling else None
    set_languages(call, options, caller)
    destination = destination_of(call, context.access_number)
    if caller is None or destination is None:
        await call.reject(403 if caller is None else 404)
        return
    await call.answer()
    code = access_code_of(call, context)
    incoming = IncomingLeg(call, billing, access_code=code, session_id=call.call_id)
    await incoming.start(caller)
    try:
        payer = caller
        if authorize_paid and await charging.is_paid_call(billing, caller, destination):
            owner = await ask_code(call, billing, caller, attempts=attempts, max_length=max_length,
                                   use_associated_number=use_associated)
            if owner is None:
                return
            if bill_code_owner:
                payer = owner
                set_languages(call, options, owner)
        dialer = Dialer(call, billing, calls, session_id=call.call_id, access_code=code)
        result = await dialer.call_out(payer, destination)
        if result.outcome == "refused":
            await call.play(["pt-call-not-authorized"])
        else:
            await play_leg_outcome(call, result)
    finally:
        await incoming.finish()


pass_through.OPTIONS = OPTIONS


# --- routing the calls of accounts that call via IVR ---------------------------------------

DIRECT = "direct"
VIA_IVR = "ivr"


@dataclasses.dataclass(frozen=True)
class OutgoingRoute:
    kind: str          # direct or ivr
    number: str        # where the call goes: the destination, or the IVR's number for it
    call_class: str    # internal, toll-free, toll or refused (the billing engine's classes)


async def outgoing_route(billing, caller_id: str, destination: str) -> OutgoingRoute:
    """Where a call placed by account ``caller_id`` goes.

    An account set to call via a pass-through IVR (its ``calls_via_ivr`` names the IVR's
    access number, e.g. ``AD%``) reaches the IVR for toll calls: the access number's prefix
    followed by the destination (``AD12125551234``), which the router sends to this
    application. Calls to other accounts of its customer (internal) and toll-free calls go
    straight to the destination, as do all calls of other accounts."""
    caller = await billing.find_account(caller_id)
    call_class = (await billing.classify(caller, destination)).value if caller else "refused"
    access = await billing.ivr_for(caller, destination) if caller is not None else None
    if access is None:
        return OutgoingRoute(DIRECT, destination, call_class)
    prefix = access[:-1] if access.endswith("%") else access
    return OutgoingRoute(VIA_IVR, prefix + destination, call_class)
