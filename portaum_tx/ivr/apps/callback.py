"""Callback calling (Appendix A "Callback").

The caller rings the access number and the call is dropped unanswered (he pays nothing for
it); ``wait_time`` seconds later the system calls him back (leg A) and he enters the number
he wants (leg B), which is dialled, bridged, cut at the authorized time and charged. Leg A
is charged too, each leg by its access code: ``lega_cld_prefix`` / ``legb_cld_prefix``
followed by the access number, or ``CALLBACK_FAIL`` for leg A when leg B never connected
and ``special_charge_if_legb_fails`` is on.

``authenticate_by``:

* ``ani``: the caller's number, through the ANI translation rule, is the account; the
  callback goes to the caller's number through the dial translation rule;
* ``dnis``: the access number dialled is the account; the callback goes to that account's
  associated number;
* ``none``: the callback goes to the caller's number; he enters his card number once called
  back. Leg A is authorized on the fake account until then, and charged to it when no
  valid card is entered (``use_fake_account``; the fake account defaults to the access
  number).

With ``auto_registration`` an unknown caller is called back all the same and asked for a
voucher: a valid one creates his account as a copy of ``etalon_account`` and tops it up.

Placing a call that no incoming call carries needs the node's help: the context's
``originate(destination, caller_id, timeout)`` returns the answered leg (a Call) or raises
DialFailed. The callback runs after the application returns; the context's ``background``
(when it has one) is handed the Deferred of that work so that the node can follow it.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from twisted.internet import defer, task
from twisted.logger import Logger

from portaum_tx.ivr import charging
from portaum_tx.ivr.apps import OptionError, application, choice_option, option_bool
from portaum_tx.ivr.apps._calling import (
    ANI_RULE_OPTION, BALANCE_OPTIONS, CARD_OPTIONS, FIRST_DIGIT_TIMEOUT, INTER_DIGIT_TIMEOUT,
    LANGUAGE_OPTIONS, WELCOME_OPTION, access_code_of, announce_balance, ask_card, billing_of, destination_loop,
    login_options, low_balance_mode, set_languages, translated, translation_rule,
)
from portaum_tx.ivr.apps.voucher import voucher_lengths
from portaum_tx.ivr.call import CallHungUp, DialFailed
from portaum_tx.ivr.outgoing import (
    CALL_OPTIONS, LEG_A, RING_TIMEOUT, CallOptions, Dialer, call_options, option_choice, option_int,
    option_text,
)

log = Logger()

CALLBACK_FAIL = "CALLBACK_FAIL"
AUTHENTICATE_BY_CHOICES = ("ani", "dnis", "none")

OPTIONS = (
    choice_option("authenticate_by", "ani", AUTHENTICATE_BY_CHOICES,
                  "Authenticate by the caller's number (ani), the dialled access number (dnis), "
                  "or a card number after the callback (none)."),
    ANI_RULE_OPTION,
    ("send_authorization", "bool", False,
     "Authorize the callback leg at once (balance, forbidden destinations)."),
    ("minimum_sufficient_time", "int", 0,
     "Seconds of leg A the balance must allow (with Send Authorization)."),
    ("dial_translation_rule", "text", "",
     "Rule turning the caller's number into the number to call back, e.g. s/^0/44/."),
    ("wait_time", "int", 0, "Seconds to wait before calling back."),
    ("auto_registration", "bool", False,
     "Let unknown callers register with a voucher, creating an account like the etalon."),
    ("etalon_account", "text", "", "Account whose settings auto-registered accounts copy."),
    *CARD_OPTIONS,
    ("minimum_voucher_length", "int", 11, "Shortest voucher number accepted (auto registration)."),
    ("maximum_voucher_length", "int", 11, "Longest voucher number accepted (auto registration)."),
    ("use_fake_account", "bool", False,
     "Charge leg A to the fake account when card authentication fails."),
    ("fake_account", "text", "", "The fake account (default: the access number)."),
    *LANGUAGE_OPTIONS, WELCOME_OPTION, *BALANCE_OPTIONS,
    ("lega_cld_prefix", "text", "", "Access code prefix that bills leg A with its own tariff."),
    ("legb_cld_prefix", "text", "", "Access code prefix that bills leg B with its own tariff."),
    ("expected_connect_time", "int", 20, "Seconds of leg B set-up the balance must cover."),
    ("special_charge_if_legb_fails", "bool", False,
     "Charge leg A by the CALLBACK_FAIL access code when leg B never connected."),
    ("strict_authorization", "bool", False,
     "Drop leg A when the balance cannot pay for leg B."),
    *CALL_OPTIONS,
)


@dataclasses.dataclass
class CallbackPlan:
    """Everything decided while the caller's own call was up."""

    options: dict
    calls: CallOptions
    mode: str
    access_number: str
    callback_number: str
    payer: Optional[charging.Payer]
    login_options: object
    lega_code: str
    legb_code: str
    fake_account: Optional[str]
    auto_registration: bool
    etalon_account: str
    expected_connect_time: int
    special_charge: bool
    strict: bool
    session_id: str


def _access_code(prefix: str, access_code: str) -> str:
    """``LEG_A`` and 18005550100 give ``LEG_A18005550100``; without a prefix the legs
    present the access number itself."""
    return f"{prefix}{access_code}"


@application("callback")
async def callback(call, context, options: dict) -> None:
    billing = billing_of(context)
    mode = option_choice(options, "authenticate_by", "ani", AUTHENTICATE_BY_CHOICES)
    ani_rule = translation_rule(options, "ani_translation_rule")
    dial_rule = translation_rule(options, "dial_translation_rule")
    wait = option_int(options, "wait_time", 0, 0, 3600)
    auto_registration = option_bool(options, "auto_registration", False)
    etalon = option_text(options, "etalon_account")
    if auto_registration and not etalon:
        raise OptionError("option auto_registration needs etalon_account")
    voucher_lengths(options)
    plan = CallbackPlan(
        options=options, calls=call_options(options), mode=mode, access_number=call.called,
        callback_number=translated(dial_rule, call.calling) if call.calling else "",
        payer=None, login_options=login_options(options),
        lega_code=_access_code(option_text(options, "lega_cld_prefix"),
                               access_code_of(call, context)),
        legb_code=_access_code(option_text(options, "legb_cld_prefix"),
                               access_code_of(call, context)),
        fake_account=(option_text(options, "fake_account") or call.called)
        if option_bool(options, "use_fake_account", False) else None,
        auto_registration=auto_registration, etalon_account=etalon,
        expected_connect_time=option_int(options, "expected_connect_time", 20),
        special_charge=option_bool(options, "special_charge_if_legb_fails", False),
        strict=option_bool(options, "strict_authorization", False),
        session_id=call.call_id)
    low_balance_mode(options)
    if mode == "ani" and call.calling:
        plan.payer = await charging.find_account(billing, translated(ani_rule, call.calling))
    elif mode == "dnis":
        plan.payer = await charging.find_account(billing, call.called)
        if plan.payer is not None:
            plan.callback_number = translated(dial_rule, plan.payer.associated_number or "")
    if not plan.callback_number or (plan.payer is None and mode != "none"
                                    and not (mode == "ani" and auto_registration)):
        await call.reject(403, "Forbidden")
        return
    if plan.payer is not None and option_bool(options, "send_authorization", False):
        if not await _leg_a_affordable(billing, plan,
                                       option_int(options, "minimum_sufficient_time", 0)):
            await call.reject(403, "Forbidden")
            return
    # Dropped unanswered: the caller pays nothing for this call; he is called back.
    await call.reject(486, "Busy Here")
    work = task.deferLater(context.clock, wait, lambda: defer.ensureDeferred(
        run_callback(context, billing, plan)))
    work.addErrback(_log_callback_failure, plan.callback_number)
    background = getattr(context, "background", None)
    if background is not None:
        background(work)


def _log_callback_failure(failure, number: str) -> None:
    if failure.check(defer.CancelledError):
        log.info("callback to {number} cancelled: the node is stopping", number=number)
    else:
        log.failure("callback to {number} failed", failure, number=number)


async def _leg_a_affordable(billing, plan: CallbackPlan, minimum_time: int) -> bool:
    """Send Authorization: the callback leg must be allowed (not forbidden, some funds) and,
    with a Minimum Sufficient Time, last at least that long."""
    try:
        authorization = await charging.authorize(billing, plan.payer, plan.callback_number,
                                                 access_code=plan.lega_code,
                                                 session_id=plan.session_id)
    except charging.Refused:
        return False
    await charging.release(billing, authorization)
    maximum = charging.max_seconds(authorization)
    return not (minimum_time > 0 and maximum is not None and maximum < minimum_time)


class _LegA:
    """The callback leg's payer and charge.

    Leg A is checked when its payer becomes known (may the account be called back, and for
    how long) but authorized for good only at its end, and charged at once: an
    authorization held through the session would reserve the funds leg B needs."""

    def __init__(self, billing, plan: CallbackPlan):
        self.billing = billing
        self.plan = plan
        self.payer: Optional[charging.Payer] = None
        self.max_seconds: Optional[int] = None

    async def authorize(self, payer: Optional[charging.Payer]) -> bool:
        """Whether ``payer`` may pay for leg A; it becomes the payer if so."""
        self.payer = self.max_seconds = None
        if payer is None:
            return False
        try:
            authorization = await charging.authorize(
                self.billing, payer, self.plan.callback_number, access_code=self.plan.lega_code,
                session_id=self.plan.session_id)
        except charging.Refused:
            return False
        await charging.release(self.billing, authorization)
        self.payer = payer
        self.max_seconds = charging.max_seconds(authorization)
        return True

    async def drop(self) -> None:
        self.payer = self.max_seconds = None

    async def charge(self, seconds: int, legb_connected: bool):
        if self.payer is None:
            return None
        code = (CALLBACK_FAIL if self.plan.special_charge and not legb_connected
                else self.plan.lega_code)
        try:
            authorization = await charging.authorize(
                self.billing, self.payer, self.plan.callback_number, access_code=code,
                session_id=self.plan.session_id)
        except charging.Refused:
            return None
        return await charging.charge(self.billing, authorization, seconds,
                                     cli=self.plan.access_number, cld=self.plan.callback_number,
                                     access_number=self.plan.access_number, leg=LEG_A)


async def run_callback(context, billing, plan: CallbackPlan):
    """Call the caller back and run his calling session on that leg. Returns the leg's
    xDR (None when leg A was not charged)."""
    originate = getattr(context, "originate", None)
    if originate is None:
        log.error("callback to {number}: this node cannot originate calls",
                  number=plan.callback_number)
        return None
    leg_a = _LegA(billing, plan)
    payer = plan.payer
    if payer is not None:
        if not await leg_a.authorize(payer):
            return None
    elif plan.fake_account:
        fake = await charging.find_account(billing, plan.fake_account)
        await leg_a.authorize(fake)
    try:
        leg = await originate(plan.callback_number, plan.access_number, RING_TIMEOUT)
    except DialFailed as failed:
        log.info("callback to {number} not answered: {reason}", number=plan.callback_number,
                 reason=failed.reason)
        await leg_a.drop()
        return None
    started = leg.clock.seconds()
    outcome = _Outcome()
    try:
        await _session(leg, billing, plan, leg_a, outcome)
    except CallHungUp:
        pass
    finally:
        seconds = max(0, round(leg.clock.seconds() - started))
        xdr = await leg_a.charge(seconds, outcome.legb_connected)
        if not leg.is_hungup:
            await leg.hangup()
    return xdr


@dataclasses.dataclass
class _Outcome:
    legb_connected: bool = False


async def _session(leg, billing, plan: CallbackPlan, leg_a: _LegA, outcome: _Outcome) -> None:
    """The calling session on the callback leg."""
    options = plan.options
    set_languages(leg, options, plan.payer)
    if option_bool(options, "play_welcome_message", True):
        await leg.play(["welcome"])
    payer = plan.payer
    if payer is None and plan.mode == "none":
        payer = await ask_card(leg, billing, plan.login_options)
        if payer is not None:
            await leg_a.authorize(payer)
    if payer is None and plan.auto_registration:
        payer = await _register(leg, billing, plan)
        if payer is not None:
            await leg_a.authorize(payer)
    if payer is None:
        return
    set_languages(leg, options, payer)
    low_balance = low_balance_mode(options)
    if low_balance == "disconnect" and payer.low_balance:
        await leg.play(["pp-insufficient-funds", "goodbye"])
        return
    leg_a_time = leg_a.max_seconds
    if leg_a_time is not None and leg_a_time < plan.expected_connect_time:
        await leg.play(["pp-insufficient-funds", "goodbye"])
        return
    if option_bool(options, "announce_balance", False):
        await announce_balance(leg, payer)
    dialer = Dialer(leg, billing, plan.calls, session_id=plan.session_id,
                    caller_id=plan.callback_number, dnis=plan.access_number)
    try:
        await destination_loop(leg, dialer, payer, access_code=plan.legb_code,
                               no_calls=(low_balance == "no_calls" and payer.low_balance),
                               stop_when_insufficient=plan.strict)
    finally:
        outcome.legb_connected = any(r.outcome == "answered" for r in dialer.results)


async def _register(leg, billing, plan: CallbackPlan) -> Optional[charging.Payer]:
    """Auto registration: a voucher creates the caller's account after the etalon."""
    shortest, longest = voucher_lengths(plan.options)
    account_id = plan.callback_number
    for _ in range(plan.login_options.maximum_login_attempts):
        entry = await leg.collect_digits(longest + 1, first_timeout=FIRST_DIGIT_TIMEOUT,
                                         inter_timeout=INTER_DIGIT_TIMEOUT,
                                         prompts=["enter-voucher"], flush=True)
        if not shortest <= len(entry.digits) <= longest:
            await leg.play(["no-input" if entry.timed_out else "voucher-invalid"])
            continue
        try:
            payer = await charging.register_account(billing, account_id, plan.etalon_account,
                                                    entry.digits)
        except charging.VoucherRefused as refused:
            await leg.play([{"used": "voucher-used", "expired": "voucher-expired"}.get(
                refused.reason, "voucher-invalid")])
            continue
        await leg.play(["cb-number-registered"])
        return payer
    await leg.play(["too-many-attempts"])
    return None
