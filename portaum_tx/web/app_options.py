"""The IVR applications an access number can start, and every option of each.

Names, defaults and one-line help follow the guide's Appendix A (option keys
are the guide's names in snake case, as ``prompts_brand`` already is there).
The admin pages build their forms from this table and the API checks option
values against it.  Where an application module declares its own option
definitions (an ``OPTIONS`` sequence of ``(name, type, default, help[, choices])``,
a "choice" option carrying its choices as made by ``ivr.apps.choice_option``), that
declaration wins, so this table only fills the gaps.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    type: str                     # "bool", "int", "text", "choice", "languages"
    default: Any
    help: str
    choices: Sequence[str] = ()

    def as_json(self) -> dict:
        data = {"name": self.name, "type": self.type, "default": self.default, "help": self.help}
        if self.choices:
            data["choices"] = list(self.choices)
        return data


def _b(name, default, text):
    return Option(name, "bool", default, text)


def _i(name, default, text):
    return Option(name, "int", default, text)


def _t(name, default, text):
    return Option(name, "text", default, text)


def _c(name, default, choices, text):
    return Option(name, "choice", default, text, tuple(choices))


LANGUAGE_OPTIONS = (
    Option("languages", "languages", "", "Prompt languages in order of preference, e.g. \"en es\"."),
    _b("language_list_preferred", False,
       "The languages above win over the account's own language (Conf Language List is Preferred)."),
)
BRAND = _t("prompts_brand", "", "Prompt brand directory tried before the default prompts, e.g. my_company.")
WELCOME = _b("play_welcome_message", True, "Play the welcome message when the caller reaches the number.")
CARD_LENGTHS = (
    _i("minimum_card_length", 11, "Shortest card number accepted."),
    _i("maximum_card_length", 11, "Longest card number accepted."),
    _i("maximum_login_attempts", 3, "Attempts the caller has to enter a valid card number."),
)
ANNOUNCE = (
    _b("announce_time", False, "Announce the longest call allowed to the destination before connecting."),
    _b("use_announcement_tariff", False,
       "Announce the time by the ANNOUNCE+DNIS tariff while rating by the real one."),
    _c("seconds_rounding_mode", "none", ("none", "up"),
       "How seconds of the available time are spoken: none (5 min 49 s) or up (6 minutes)."),
)
CALL_END = (
    _b("play_pre_ring_moh", False, "Play music on hold instead of ringback until the far end rings."),
    _t("music_on_hold_class", "", "Music on hold class for pre-ring MOH: plays the prompt moh-<class> (moh when it is missing)."),
    _i("end_announce_time", 0, "Seconds before the forced end of the call at which to warn (0 = no warning)."),
    _c("end_announce_type", "beep", ("beep", "voice"), "The warning: a beep, or the seconds left spoken."),
    _i("disconnect_call_before", 0, "Seconds before the balance runs out at which the call is cut."),
    _i("maximum_dial_attempts", 3, "Destinations the caller may try in one session."),
)
LOW_BALANCE = _c("check_low_balance", "none", ("none", "disconnect", "no_calls"),
                 "Below the product's breakage: disconnect at once, refuse calls after dialling, or do nothing.")
ANNOUNCE_BALANCE = _b("announce_balance", False, "Announce the balance before asking for the number to call.")
ANI_RULE = _t("ani_translation_rule", "", "Rule turning the caller's number into an account ID, e.g. s/^0/ani44/.")
VOUCHER_LENGTHS = (
    _i("minimum_voucher_length", 11, "Shortest voucher number accepted."),
    _i("maximum_voucher_length", 11, "Longest voucher number accepted."),
)

APPLICATIONS: dict[str, tuple[str, tuple[Option, ...]]] = {
    "voicemail": ("Voicemail deposit: greeting, record after the tone, fax tone hands over to fax.", (
        _i("max_message_seconds", 120, "Longest recording a caller may leave, in seconds."),
        _i("min_message_seconds", 1, "Recordings shorter than this are discarded, in seconds."),
        _i("silence_seconds", 5, "Silence that ends the recording, in seconds."),
        _b("review", True, "Let the caller listen to and re-record the message before it is sent."),
        _i("max_login_attempts", 3, "Wrong PINs allowed before the call ends."),
        _t("fax_application", "fax", "Application that takes the call over when a fax tone is heard."),
        *LANGUAGE_OPTIONS, BRAND)),
    "voicemail-access": ("One's own voice mailbox access from the subscriber's own phone.", (
        *LANGUAGE_OPTIONS, BRAND)),
    "voicemail-pin": ("Voicemail access with PIN: mailbox number and PIN from any phone.", (
        _i("max_login_attempts", 3, "Wrong mailbox numbers or PINs allowed before the call ends."),
        *LANGUAGE_OPTIONS, BRAND)),
    "auto-attendant": ("Auto attendant: the account's menus, periods, directory and queues.", (
        *LANGUAGE_OPTIONS, BRAND)),
    "prepaid": ("Prepaid card calling.", (
        _b("ani_authentication", False, "Try the caller's number as the account before asking for a card."),
        ANI_RULE,
        _b("manual_authentication", True, "Ask for the card number when ANI authentication is off or fails."),
        *CARD_LENGTHS,
        _b("authorize_with_ivr_session_id", True,
           "Authorize every leg under the IVR session's ID (off: a new conference ID each time)."),
        _b("check_service_password", False, "After ANI authentication, ask for the service password too."),
        _i("minimum_password_length", 4, "Shortest service password accepted."),
        _i("maximum_password_length", 4, "Longest service password accepted."),
        *LANGUAGE_OPTIONS, BRAND, WELCOME,
        _b("toll_free", True, "Keep the caller in the application even with insufficient funds."),
        LOW_BALANCE, ANNOUNCE_BALANCE,
        _b("check_associated_number", False, "Redirect the call to the account's associated number if set."),
        *ANNOUNCE, *CALL_END)),
    "callback": ("Callback: the caller hangs up and is called back.", (
        _c("authenticate_by", "ani", ("ani", "dnis", "none"),
           "Authenticate by the caller's number, the dialled access number, or a card after callback."),
        ANI_RULE,
        _b("send_authorization", False, "Authorize the callback leg at once (balance, forbidden destinations)."),
        _i("minimum_sufficient_time", 0, "Seconds of leg A the balance must allow (with Send Authorization)."),
        _t("dial_translation_rule", "", "Rule turning the caller's number into the number to call back, e.g. s/^0/44/."),
        _i("wait_time", 0, "Seconds to wait before calling back."),
        _b("auto_registration", False, "Let new callers register with a voucher and create an account."),
        _t("etalon_account", "", "Account whose settings auto-registered accounts copy."),
        *CARD_LENGTHS,
        _b("use_fake_account", False, "Charge leg A to the fake account when card authorization fails."),
        _t("fake_account", "", "The fake account (default: the access number)."),
        *LANGUAGE_OPTIONS, BRAND, WELCOME, LOW_BALANCE, ANNOUNCE_BALANCE,
        _t("lega_cld_prefix", "", "Access code prefix that bills leg A with its own tariff."),
        _t("legb_cld_prefix", "", "Access code prefix that bills leg B with its own tariff."),
        _i("expected_connect_time", 20, "Seconds of leg B set-up the balance must cover."),
        _b("special_charge_if_legb_fails", False, "Rate calls whose leg B fails by the CALLBACK_FAIL tariff."),
        _b("strict_authorization", False, "Drop leg A when the balance cannot pay for leg B."),
        *ANNOUNCE, *CALL_END)),
    "topup-credit-card": ("Account top-up by credit card.", (
        *LANGUAGE_OPTIONS,
        _t("minimum_sum", "", "Smallest amount that may be charged to the card."),
        *CARD_LENGTHS, *VOUCHER_LENGTHS,
        _t("customer_center_number", "", "Number where the caller can reach an operator."))),
    "topup-voucher": ("Account top-up by voucher.", (
        _i("maximum_login_attempts", 3, "Attempts the caller has to enter a valid card number."),
        *VOUCHER_LENGTHS)),
    "one-stage": ("One-stage calling: authorized by the caller's number, straight to the destination.", (
        ANI_RULE, *LANGUAGE_OPTIONS, BRAND, WELCOME, *ANNOUNCE)),
}


#: One line for applications whose options come only from their own module.
DESCRIPTIONS = {
    "balance": "Balance information: the caller hears the account's balance.",
    "pinless": "PINless calling with service password: authorized by the caller's number.",
    "pass-through": "Pass-through IVR with authorization code: PIN, then the toll call is connected.",
    "call-queue": "Call queue: callers wait for the next free agent, hearing position and wait.",
    "dial-by-name": "Dial-by-name directory: the first letters of a surname on the keypad.",
    "conference": "Conferencing: rooms with host and guest codes.",
}


def applications() -> dict[str, tuple[str, tuple[Option, ...]]]:
    """The catalogue, with options declared by application modules taking precedence."""
    catalogue = dict(APPLICATIONS)
    try:
        from ..ivr import apps
        registry = apps.load_applications()
    except Exception:  # the IVR package is optional for the admin pages
        return catalogue
    for name in registry.names():
        app = registry.get(name)
        declared = getattr(app, "OPTIONS", None)
        description, known = catalogue.get(name, ("", ()))
        if not description:
            description = DESCRIPTIONS.get(name) or (
                (getattr(app, "__doc__", None) or "").strip().splitlines() or [""])[0]
        if declared:
            known_by_name = {o.name: o for o in known} | {o.name: o for _, (_, opts) in
                                                          APPLICATIONS.items() for o in opts}
            catalogue[name] = (description, tuple(_declared(entry, known_by_name)
                                                  for entry in declared))
        else:
            catalogue[name] = (description, known)
    return catalogue


def _declared(entry, known: dict) -> Option:
    """An application module's ``(name, type, default, help[, choices])``; a choice
    without its choices borrows them from this table, else is taken as text."""
    name, kind, default, text = entry[:4]
    choices = tuple(entry[4]) if len(entry) > 4 and entry[4] else ()
    if kind == "choice" and not choices:
        choices = known[name].choices if name in known else ()
        if not choices:
            kind = "text"
    return Option(name, kind, default, text, choices)


class OptionValueError(ValueError):
    pass


def check_options(application: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate option values for ``application``; returns them normalised to text."""
    catalogue = applications()
    if application not in catalogue:
        raise OptionValueError(f"unknown application {application!r}; known: "
                               f"{', '.join(sorted(catalogue))}")
    declared = {o.name: o for o in catalogue[application][1]}
    result: dict[str, Any] = {}
    for name, value in options.items():
        option = declared.get(name)
        if option is None:
            raise OptionValueError(f"application {application} has no option {name!r}")
        text = str(value).strip() if not isinstance(value, bool) else ("yes" if value else "no")
        if option.type == "bool" and text.lower() not in ("yes", "no", "true", "false", "1", "0", "on", "off"):
            raise OptionValueError(f"option {name} must be yes or no, got {value!r}")
        if option.type == "bool":
            text = "yes" if text.lower() in ("yes", "true", "1", "on") else "no"
        if option.type == "int" and not (text.isdigit() and len(text) < 10):
            raise OptionValueError(f"option {name} must be a whole number, got {value!r}")
        if option.type == "choice":
            # the applications read choices case-blind (ivr.apps.option_choice)
            text = text.lower()
            if text not in option.choices:
                raise OptionValueError(f"option {name} must be one of "
                                       f"{', '.join(option.choices)}, got {value!r}")
        result[name] = text
    return result
