"""What the calling applications share: the billing engine from the context, caller
authentication (ANI with its translation rule, card number, service password), the charge
of the incoming leg, and the "enter the number you wish to call" loop."""

from __future__ import annotations

import dataclasses
from typing import Optional

from portaum_tx.billing.engine import BillingEngine
from portaum_tx.billing.translate import TranslationError, TranslationRules, parse_rules
from portaum_tx.ivr import charging
from portaum_tx.ivr.apps import OptionError, apply_language_options, choice_option, option_bool
from portaum_tx.ivr.call import Audio
from portaum_tx.ivr.charging import Payer
from portaum_tx.ivr.outgoing import (
    LEG_A, Dialer, option_choice, option_int, option_text, play_leg_outcome,
)
from portaum_tx.rtp import tones

#: Seconds of busy tone (one cycle a second) before a call refused for low balance drops.
BUSY_TONE_CYCLES = 4
#: Longest destination number a caller may enter.
MAX_DESTINATION_DIGITS = 32
#: Entries are collected one key beyond their longest valid length, so that the pound key
#: after a full-length number is taken as its end rather than left over for the next
#: question; a longer entry is refused by its length.

#: Empty entries in a row after which the session ends.
MAX_EMPTY_ENTRIES = 3
FIRST_DIGIT_TIMEOUT = 10.0
INTER_DIGIT_TIMEOUT = 5.0

LANGUAGE_OPTIONS = (
    ("languages", "languages", "", "Prompt languages in order of preference, e.g. \"en es\"."),
    ("language_list_preferred", "bool", False,
     "The languages above win over the account's own language (Conf Language List is Preferred)."),
    ("prompts_brand", "text", "", "Prompt brand directory tried before the default prompts."),
)
WELCOME_OPTION = ("play_welcome_message", "bool", True,
                  "Play the welcome message when the caller reaches the number.")
ANI_RULE_OPTION = ("ani_translation_rule", "text", "",
                   "Rule turning the caller's number into an account ID, e.g. s/^0/ani44/.")
CARD_OPTIONS = (
    ("minimum_card_length", "int", 11, "Shortest card number accepted."),
    ("maximum_card_length", "int", 11, "Longest card number accepted."),
    ("maximum_login_attempts", "int", 3, "Attempts the caller has to enter a valid card number."),
)
PASSWORD_OPTIONS = (
    ("check_service_password", "bool", False,
     "After ANI authentication, ask for the service password too."),
    ("minimum_password_length", "int", 4, "Shortest service password accepted."),
    ("maximum_password_length", "int", 4, "Longest service password accepted."),
)
LOW_BALANCE_CHOICES = ("none", "disconnect", "no_calls")
BALANCE_OPTIONS = (
    choice_option("check_low_balance", "none", LOW_BALANCE_CHOICES,
                  "Below the product's breakage: disconnect at once, refuse calls after dialling "
                  "(no_calls), or do nothing (none)."),
    ("announce_balance", "bool", False,
     "Announce the balance before asking for the number to call."),
)


def busy_tone() -> Audio:
    return Audio(tones.busy(BUSY_TONE_CYCLES), label="busy-tone")


def billing_of(context):
    """The context's billing engine; without one, the engine over the context's store (it
    keeps no state of its own, so one per call costs nothing)."""
    billing = getattr(context, "billing", None)
    if billing is None:
        store = getattr(context, "store", None)
        if store is None or getattr(store, "billing", None) is None:
            raise OptionError("calling applications need the billing engine, and this node's "
                              "store has no billing tables")
        billing = BillingEngine(store, context.clock)
    return billing


def access_code_of(call, context) -> str:
    """The access code a session's legs present to billing: the access number (its pattern,
    such as ``AD%``, for a prefix number), so that the product's accessibility list can give
    calls through it their own tariff."""
    pattern = getattr(getattr(context, "access_number", None), "pattern", None)
    return pattern or call.called


def translation_rule(options: dict, name: str) -> Optional[TranslationRules]:
    text = option_text(options, name)
    if not text:
        return None
    try:
        return parse_rules(text)
    except TranslationError as e:
        raise OptionError(f"option {name}: {e}") from None


def translated(rules: Optional[TranslationRules], number: str) -> str:
    if rules is None:
        return number
    try:
        return rules.apply(number)
    except TranslationError:
        return number


@dataclasses.dataclass(frozen=True)
class LoginOptions:
    ani_authentication: bool = False
    ani_rule: Optional[TranslationRules] = None
    manual_authentication: bool = True
    minimum_card_length: int = 11
    maximum_card_length: int = 11
    maximum_login_attempts: int = 3
    check_service_password: bool = False
    minimum_password_length: int = 4
    maximum_password_length: int = 4


def login_options(options: dict, *, ani_default: bool = False, manual_default: bool = True) -> LoginOptions:
    parsed = LoginOptions(
        ani_authentication=option_bool(options, "ani_authentication", ani_default),
        ani_rule=translation_rule(options, "ani_translation_rule"),
        manual_authentication=option_bool(options, "manual_authentication", manual_default),
        minimum_card_length=option_int(options, "minimum_card_length", 11, 1, 64),
        maximum_card_length=option_int(options, "maximum_card_length", 11, 1, 64),
        maximum_login_attempts=option_int(options, "maximum_login_attempts", 3, 1, 20),
        check_service_password=option_bool(options, "check_service_password", False),
        minimum_password_length=option_int(options, "minimum_password_length", 4, 0, 64),
        maximum_password_length=option_int(options, "maximum_password_length", 4, 1, 64),
    )
    if parsed.minimum_card_length > parsed.maximum_card_length:
        raise OptionError(f"option minimum_card_length ({parsed.minimum_card_length}) is above "
                          f"maximum_card_length ({parsed.maximum_card_length})")
    if parsed.minimum_password_length > parsed.maximum_password_length:
        raise OptionError(f"option minimum_password_length ({parsed.minimum_password_length}) is "
                          f"above maximum_password_length ({parsed.maximum_password_length})")
    return parsed


async def ask_card(call, billing, login: LoginOptions, *, prompt: str = "enter-card-number",
                   invalid: str = "pp-invalid-card") -> Optional[Payer]:
    """Ask for a card number (an account ID or alias) until a valid one or the attempts run
    out; then "too many attempts" and None."""
    for _ in range(login.maximum_login_attempts):
        entry = await call.collect_digits(
            login.maximum_card_length + 1, first_timeout=FIRST_DIGIT_TIMEOUT,
            inter_timeout=INTER_DIGIT_TIMEOUT, prompts=[prompt], flush=True)
        if entry.timed_out:
            await call.play(["no-input"])
            continue
        payer = None
        if login.minimum_card_length <= len(entry.digits) <= login.maximum_card_length:
            payer = await charging.log_in(billing, entry.digits)
        if payer is not None:
            return payer
        await call.play([invalid])
    await call.play(["too-many-attempts"])
    return None


async def ask_password(call, billing, payer: Payer, login: LoginOptions) -> bool:
    """The service password check after ANI authentication."""
    for _ in range(login.maximum_login_attempts):
        entry = await call.collect_digits(
            login.maximum_password_length + 1, first_timeout=FIRST_DIGIT_TIMEOUT,
            inter_timeout=INTER_DIGIT_TIMEOUT, prompts=["enter-password"], flush=True)
        if (login.minimum_password_length <= len(entry.digits) <= login.maximum_password_length
                and await charging.check_password(billing, payer, entry.digits)):
            return True
        await call.play(["no-input"] if entry.timed_out else ["password-incorrect"])
    await call.play(["too-many-attempts"])
    return False


async def authenticate_caller(call, billing, login: LoginOptions) -> Optional[Payer]:
    """ANI authentication (with the translation rule and the optional service password),
    falling back to the card number when allowed. None: the caller was told why and the
    application should end."""
    if login.ani_authentication and call.calling:
        payer = await charging.find_account(billing, translated(login.ani_rule, call.calling))
        if payer is not None:
            if login.check_service_password and not await ask_password(call, billing, payer, login):
                return None
            return payer
    if login.manual_authentication:
        return await ask_card(call, billing, login)
    await call.play(["not-authorized"])
    return None


def set_languages(call, options: dict, payer: Optional[Payer]) -> None:
    apply_language_options(call, options, payer.language if payer is not None else None)


class IncomingLeg:
    """The caller's leg into the application, charged on the paying account by the access
    number it dialled, when it ends (an access number without a rate in the tariff is free
    and leaves no record).

    It is authorized only then, and charged at once: an authorization held for the whole
    session would reserve the account's funds and leave nothing for the calls the session
    places. What the funds no longer cover by then is not charged."""

    def __init__(self, call, billing, *, access_code: Optional[str] = None,
                 session_id: Optional[str] = None):
        self.call = call
        self.billing = billing
        self.access_code = access_code
        self.session_id = session_id
        self.payer: Optional[Payer] = None
        self.started: Optional[float] = None
        self.xdr = None

    async def start(self, payer: Payer) -> None:
        self.payer = payer
        self.started = self.call.clock.seconds()

    async def finish(self):
        payer, self.payer = self.payer, None
        if payer is None:
            return None
        call = self.call
        seconds = max(0, round(call.clock.seconds() - self.started))
        try:
            authorization = await charging.authorize(
                self.billing, payer, call.called, access_code=self.access_code,
                session_id=self.session_id)
        except charging.Refused:
            return None
        self.xdr = await charging.charge(self.billing, authorization, seconds, cli=call.calling,
                                         cld=call.called, access_number=call.called, leg=LEG_A)
        return self.xdr


def low_balance_mode(options: dict) -> str:
    return option_choice(options, "check_low_balance", "none", LOW_BALANCE_CHOICES)


async def announce_balance(call, payer: Payer) -> None:
    await call.play(["your-balance-is"] + call.sayings("money", payer.balance,
                                                       currency=payer.currency))


async def destination_loop(call, dialer: Dialer, payer: Payer, *, access_code: Optional[str] = None,
                           no_calls: bool = False, prompt: str = "enter-destination",
                           stop_when_insufficient: bool = False) -> None:
    """Ask for destinations and call them until the caller hangs up, stops entering numbers
    or uses up the session's dial attempts (``stop_when_insufficient``: or a destination is
    refused for want of funds)."""
    empty = 0
    while dialer.attempts_left:
        entry = await call.collect_digits(
            MAX_DESTINATION_DIGITS, first_timeout=FIRST_DIGIT_TIMEOUT,
            inter_timeout=INTER_DIGIT_TIMEOUT, prompts=[prompt], flush=True)
        if not entry.digits:
            empty += 1
            if empty >= MAX_EMPTY_ENTRIES:
                await call.play(["goodbye"])
                return
            await call.play(["no-input"])
            continue
        empty = 0
        if no_calls:
            # Check Low Balance = no calls: the number is taken, then a busy tone, and the
            # call is dropped.
            dialer.attempts += 1
            await call.play([busy_tone()])
            return
        result = await dialer.call_out(payer, entry.digits, access_code=access_code)
        if result.outcome != "answered":
            await play_leg_outcome(call, result)
            if stop_when_insufficient and result.refusal == charging.INSUFFICIENT_FUNDS:
                await call.play(["goodbye"])
                return
        elif dialer.attempts_left:
            await call.play(["pp-another-call"])
    await call.play(["pp-max-dial-attempts"])
