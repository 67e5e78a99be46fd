"""Auto-attendant menus: the model, its text forms, and validation on save.

An account's attendant is a set of menus. ROOT is always there, cannot be removed or
renamed, and is where every call starts. Each menu has an active period (the guide's
period syntax, :mod:`portaum_tx.ivr.period`), four prompts (Intro, played on the first
entry only; Menu; Timeout, which is also the Default prompt; Unavailable) and an event
table: for each of 0-9, ``*``, ``#``, ``timeout``, ``fax`` and ``not_active`` an action and
whether the event's own "before action" prompt is played first.

Every reference a menu makes (another menu, a queue, a mailbox, a directory) must exist
when the menus are saved: :func:`validate` finds dangling ones, and removing a menu or a
queue that a menu still uses is refused (:func:`references_to`).

This module is pure: it never touches the store, the network or the clock.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime
from typing import Iterable, Mapping, Optional

from portaum_tx.ivr import period as periods

ROOT = "ROOT"

KEY_EVENTS = tuple("0123456789") + ("*", "#")
EVENTS = KEY_EVENTS + ("timeout", "fax", "not_active")

DEFAULT = "default"
TRANSFER = "transfer"
TRANSFER_E164 = "transfer_e164"
TRANSFER_EXTENSION = "transfer_extension"
TRANSFER_VOICEMAIL = "transfer_voicemail"
MENU = "menu"
DIRECTORY = "directory"
QUEUE = "queue"
DISCONNECT = "disconnect"
ACTIONS = (DEFAULT, TRANSFER, TRANSFER_E164, TRANSFER_EXTENSION, TRANSFER_VOICEMAIL, MENU,
           DIRECTORY, QUEUE, DISCONNECT)
#: Actions whose target is required, and what it names.
TARGET_REQUIRED = {TRANSFER: "a number", TRANSFER_E164: "an E.164 number", MENU: "a menu name",
                   QUEUE: "a queue name"}
#: Actions that take an optional target (an account: whose mailbox / whose directory).
TARGET_OPTIONAL = (TRANSFER_VOICEMAIL, DIRECTORY)

PROMPT_KINDS = ("intro", "menu", "timeout", "unavailable")
#: The shipped prompts used while a menu has no recording of its own.
DEFAULT_PROMPTS = {"intro": "aa-welcome", "menu": "aa-enter-extension", "timeout": "no-input",
                   "unavailable": "aa-closed"}
#: "Play before action" with no recording of its own plays this for transfers.
DEFAULT_BEFORE_TRANSFER = "aa-transferring"

DEFAULT_EXTENSION_DIGITS = 4
MAX_EXTENSION_DIGITS = 15

_MENU_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}")
_DIALLED = re.compile(r"[0-9*#+]{1,32}")
_E164 = re.compile(r"\+?[1-9][0-9]{5,14}")
_ACCOUNT = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")

_EVENT_WORDS = {"star": "*", "asterisk": "*", "pound": "#", "hash": "#", "notactive": "not_active",
                "not-active": "not_active", "not_active": "not_active", "timeout": "timeout",
                "fax": "fax"}
_ACTION_WORDS = {
    "default": DEFAULT, "transfer": TRANSFER, "transfer-e164": TRANSFER_E164, "e164": TRANSFER_E164,
    "transfer_e164": TRANSFER_E164, "transfer-extension": TRANSFER_EXTENSION,
    "transfer_extension": TRANSFER_EXTENSION, "extension": TRANSFER_EXTENSION,
    "transfer-voicemail": TRANSFER_VOICEMAIL, "transfer_voicemail": TRANSFER_VOICEMAIL,
    "voicemail": TRANSFER_VOICEMAIL, "menu": MENU, "directory": DIRECTORY, "queue": QUEUE,
    "disconnect": DISCONNECT, "hangup": DISCONNECT,
}


class MenuError(ValueError):
    """A menu, event or action that cannot be saved; the message names what is wrong."""


@dataclasses.dataclass(frozen=True)
class EventAction:
    """What one event of a menu does."""

    action: str = DEFAULT
    target: Optional[str] = None
    max_digits: Optional[int] = None  # Transfer to Extension only
    play_before: bool = False

    def check(self, where: str = "event") -> "EventAction":
        if self.action not in ACTIONS:
            raise MenuError(f"{where}: unknown action {self.action!r} (one of {', '.join(ACTIONS)})")
        if self.action in TARGET_REQUIRED and not self.target:
            raise MenuError(f"{where}: action {self.action} needs {TARGET_REQUIRED[self.action]}")
        if self.target is not None and self.action not in TARGET_REQUIRED \
                and self.action not in TARGET_OPTIONAL:
            raise MenuError(f"{where}: action {self.action} takes no target, got {self.target!r}")
        if self.action == TRANSFER and not _DIALLED.fullmatch(self.target):
            raise MenuError(f"{where}: transfer number must be 1-32 of 0-9 * # +, got {self.target!r}")
        if self.action == TRANSFER_E164 and not _E164.fullmatch(self.target):
            raise MenuError(f"{where}: E.164 number must be 6-15 digits with the country code, "
                            f"got {self.target!r}")
        if self.action == MENU:
            check_menu_name(self.target)
        if self.action == QUEUE:
            check_queue_name(self.target)
        if self.action in TARGET_OPTIONAL and self.target is not None \
                and not _ACCOUNT.fullmatch(self.target):
            raise MenuError(f"{where}: {self.target!r} is not an account ID")
        if self.action == TRANSFER_EXTENSION:
            digits = self.max_digits if self.max_digits is not None else DEFAULT_EXTENSION_DIGITS
            if not isinstance(digits, int) or not 1 <= digits <= MAX_EXTENSION_DIGITS:
                raise MenuError(f"{where}: maximum extension digits must be 1-{MAX_EXTENSION_DIGITS}, "
                                f"got {self.max_digits!r}")
        elif self.max_digits is not None:
            raise MenuError(f"{where}: only transfer_extension takes a maximum number of digits")
        return self

    @property
    def extension_digits(self) -> int:
        return self.max_digits if self.max_digits is not None else DEFAULT_EXTENSION_DIGITS

    def to_dict(self) -> dict:
        data: dict = {"action": self.action}
        if self.target is not None:
            data["target"] = self.target
        if self.max_digits is not None:
            data["max_digits"] = self.max_digits
        if self.play_before:
            data["play_before"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "event") -> "EventAction":
        if not isinstance(data, Mapping):
            raise MenuError(f"{where}: expected an object with an action, got {data!r}")
        unknown = set(data) - {"action", "target", "max_digits", "play_before"}
        if unknown:
            raise MenuError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        target = data.get("target")
        if target is not None and not isinstance(target, str):
            raise MenuError(f"{where}: target must be text, got {target!r}")
        play_before = data.get("play_before", False)
        if not isinstance(play_before, bool):
            raise MenuError(f"{where}: play_before must be true or false, got {play_before!r}")
        action = data.get("action", DEFAULT)
        return cls(_ACTION_WORDS.get(str(action).lower(), str(action)), target or None,
                   data.get("max_digits"), play_before).check(where)

    def __str__(self) -> str:
        text = self.action
        if self.target is not None:
            text += f":{self.target}"
        if self.action == TRANSFER_EXTENSION:
            text += f":{self.extension_digits}"
        if self.play_before:
            text += " +before"
        return text


NO_ACTION = EventAction()


@dataclasses.dataclass(frozen=True)
class Menu:
    name: str
    period: str = ""
    events: Mapping[str, EventAction] = dataclasses.field(default_factory=dict)

    def action_for(self, event: str) -> EventAction:
        return self.events.get(event, NO_ACTION)

    @property
    def active_period(self) -> periods.Period:
        return periods.parse(self.period)

    def is_active(self, when: datetime, timezone: str | None) -> bool:
        return self.active_period.contains(when, timezone)

    def with_events(self, changes: Mapping[str, EventAction]) -> "Menu":
        events = dict(self.events)
        for event, action in changes.items():
            if action == NO_ACTION:
                events.pop(event, None)
            else:
                events[event] = action
        return dataclasses.replace(self, events=events)

    def check(self) -> "Menu":
        check_menu_name(self.name)
        try:
            periods.parse(self.period)
        except periods.PeriodSyntaxError as e:
            raise MenuError(f"menu {self.name}: {e}") from None
        for event, action in self.events.items():
            if event not in EVENTS:
                raise MenuError(f"menu {self.name}: unknown event {event!r}")
            action.check(f"menu {self.name}, event {event}")
        return self

    def events_json(self) -> str:
        return json.dumps({e: a.to_dict() for e, a in sorted(self.events.items(), key=_event_order)},
                          sort_keys=False)

    @classmethod
    def from_stored(cls, name: str, period: str, events_json: str) -> "Menu":
        try:
            raw = json.loads(events_json or "{}")
        except ValueError:
            raise MenuError(f"menu {name}: stored event table is not JSON") from None
        if not isinstance(raw, dict):
            raise MenuError(f"menu {name}: stored event table is not an object")
        events = {event: EventAction.from_dict(data, f"menu {name}, event {event}")
                  for event, data in raw.items()}
        return cls(name, period, events)

    def to_dict(self) -> dict:
        return {"name": self.name, "period": self.period,
                "period_description": describe_period(self.period),
                "events": {e: a.to_dict() for e, a in sorted(self.events.items(), key=_event_order)}}


def _event_order(item) -> int:
    return EVENTS.index(item[0]) if item[0] in EVENTS else len(EVENTS)


def check_menu_name(name) -> str:
    if not isinstance(name, str) or not _MENU_NAME.fullmatch(name):
        raise MenuError(f"menu name must be 1-40 letters, digits, space, _ . or -, starting with a "
                        f"letter or digit, got {name!r}")
    return name


def check_queue_name(name) -> str:
    if not isinstance(name, str) or not _MENU_NAME.fullmatch(name):
        raise MenuError(f"queue name must be 1-40 letters, digits, space, _ . or -, starting with a "
                        f"letter or digit, got {name!r}")
    return name


def check_period(text: str) -> str:
    try:
        return str(periods.parse(text))
    except periods.PeriodSyntaxError as e:
        raise MenuError(str(e)) from None


def describe_period(text: str) -> str:
    try:
        return periods.parse(text).describe()
    except periods.PeriodSyntaxError as e:
        return f"(invalid: {e})"


def parse_event(text: str) -> str:
    """An event as typed: 0-9, *, #, star, pound, timeout, fax, not-active."""
    word = text.strip().lower()
    if word in EVENTS:
        return word
    if word in _EVENT_WORDS:
        return _EVENT_WORDS[word]
    raise MenuError(f"unknown event {text!r}: use 0-9, *, #, timeout, fax or not-active")


def parse_action(text: str, play_before: bool = False) -> EventAction:
    """An action as typed: ``default``, ``transfer:123``, ``e164:16045551234``,
    ``extension`` or ``extension:4`` (max digits), ``voicemail`` or ``voicemail:<account>``,
    ``menu:Sales``, ``directory``, ``queue:support``, ``disconnect``."""
    word, _, argument = text.strip().partition(":")
    action = _ACTION_WORDS.get(word.strip().lower())
    if action is None:
        raise MenuError(f"unknown action {word!r}: use default, transfer:NUMBER, e164:NUMBER, "
                        "extension[:MAXDIGITS], voicemail[:ACCOUNT], menu:NAME, directory, "
                        "queue:NAME or disconnect")
    argument = argument.strip()
    if action == TRANSFER_EXTENSION:
        digits = None
        if argument:
            if not argument.isdigit():
                raise MenuError(f"extension takes a maximum number of digits, got {argument!r}")
            digits = int(argument)
        return EventAction(action, None, digits, play_before).check(f"action {text!r}")
    return EventAction(action, argument or None, None, play_before).check(f"action {text!r}")


def root_menu() -> Menu:
    return Menu(ROOT)


def validate(menus: Iterable[Menu], queues: Iterable[str], accounts: Iterable[str]) -> None:
    """Raise MenuError naming the first problem: a bad menu, a missing ROOT, a duplicate
    name, or an event that names a menu, queue or account that does not exist."""
    menus = list(menus)
    names: set[str] = set()
    for menu in menus:
        menu.check()
        if menu.name.lower() in {n.lower() for n in names}:
            raise MenuError(f"there are two menus named {menu.name}")
        names.add(menu.name)
    if ROOT not in names:
        raise MenuError("the ROOT menu is missing")
    queues = set(queues)
    accounts = set(accounts)
    for menu in menus:
        for event, action in sorted(menu.events.items(), key=_event_order):
            where = f"menu {menu.name}, event {event}"
            if action.action == MENU and action.target not in names:
                raise MenuError(f"{where}: there is no menu {action.target!r}")
            if action.action == QUEUE and action.target not in queues:
                raise MenuError(f"{where}: there is no queue {action.target!r}")
            if action.action in TARGET_OPTIONAL and action.target is not None \
                    and action.target not in accounts:
                raise MenuError(f"{where}: there is no account {action.target!r}")


def references_to(menus: Iterable[Menu], kind: str, name: str) -> list[str]:
    """Where menus use the menu or queue ``name`` (kind is ``menu`` or ``queue``), as
    "menu X, event Y" strings."""
    return [f"menu {menu.name}, event {event}" for menu in menus
            for event, action in sorted(menu.events.items(), key=_event_order)
            if action.action == kind and action.target == name]


def rename_references(menus: Iterable[Menu], kind: str, old: str, new: str) -> list[Menu]:
    renamed = []
    for menu in menus:
        changes = {event: dataclasses.replace(action, target=new)
                   for event, action in menu.events.items()
                   if action.action == kind and action.target == old}
        renamed.append(menu.with_events(changes) if changes else menu)
    return renamed


class AttendantBook:
    """An account's attendant configuration over the store's domain API: menus validated
    as a whole on every save, queues that cannot be removed while a menu uses them, and
    the dial-by-name directory. The CLI and the web both edit through this."""

    def __init__(self, store):
        self.store = store

    # --- menus ---------------------------------------------------------------

    async def menus(self, account_id: str) -> list[Menu]:
        await self.store.accounts.get_account(account_id)
        menus = [Menu.from_stored(m.name, m.period, m.events)
                 for m in await self.store.attendant.get_menus(account_id)]
        if not any(m.name == ROOT for m in menus):
            menus.insert(0, root_menu())
        return menus

    async def menu(self, account_id: str, name: str) -> Menu:
        for menu in await self.menus(account_id):
            if menu.name == name:
                return menu
        raise MenuError(f"account {account_id} has no menu {name!r}")

    async def add_menu(self, account_id: str, name: str, period: str = "",
                       events: Optional[Mapping[str, EventAction]] = None) -> Menu:
        menus = await self.menus(account_id)
        check_menu_name(name)
        if any(m.name.lower() == name.lower() for m in menus):
            raise MenuError(f"account {account_id} already has a menu {name!r}")
        menu = Menu(name, check_period(period), dict(events or {}))
        await self._save(account_id, menus + [menu])
        return menu

    async def set_menu(self, account_id: str, name: str, *, new_name: Optional[str] = None,
                       period: Optional[str] = None,
                       events: Optional[Mapping[str, EventAction]] = None) -> Menu:
        """Change a menu: rename it (not ROOT; references follow), set its period, and
        set events (an event set to the Default action with nothing else is cleared)."""
        menus = await self.menus(account_id)
        current = next((m for m in menus if m.name == name), None)
        if current is None:
            raise MenuError(f"account {account_id} has no menu {name!r}")
        changed = current
        if period is not None:
            changed = dataclasses.replace(changed, period=check_period(period))
        if events:
            changed = changed.with_events(events)
        renamed = None
        if new_name is not None and new_name != name:
            if name == ROOT:
                raise MenuError("the ROOT menu cannot be renamed")
            check_menu_name(new_name)
            if any(m.name.lower() == new_name.lower() and m.name != name for m in menus):
                raise MenuError(f"account {account_id} already has a menu {new_name!r}")
            changed = dataclasses.replace(changed, name=new_name)
            renamed = (name, new_name)
        menus = [changed if m.name == name else m for m in menus]
        if renamed:
            menus = rename_references(menus, MENU, *renamed)
            changed = next(m for m in menus if m.name == new_name)
        await self._save(account_id, menus, renamed)
        return changed

    async def remove_menu(self, account_id: str, name: str) -> None:
        if name == ROOT:
            raise MenuError("the ROOT menu cannot be removed")
        menus = await self.menus(account_id)
        if not any(m.name == name for m in menus):
            raise MenuError(f"account {account_id} has no menu {name!r}")
        rest = [m for m in menus if m.name != name]
        users = references_to(rest, MENU, name)
        if users:
            raise MenuError(f"menu {name} is still used by {'; '.join(users)}")
        await self._save(account_id, rest)

    async def _save(self, account_id: str, menus: list[Menu],
                    renamed: Optional[tuple[str, str]] = None) -> None:
        account = await self.store.accounts.get_account(account_id)
        queues = [q.name for q in await self.store.attendant.get_queues(account_id)]
        accounts = [a.id for a in await self.store.accounts.get_accounts(account.customer_id)]
        validate(menus, queues, accounts)
        await self.store.attendant.store_menus(
            account_id, [(m.name, m.period, m.events_json()) for m in menus], renamed)

    # --- queues ----------------------------------------------------------------

    async def add_queue(self, account_id: str, name: str, destination: str, max_connected: int = 1,
                        average_seconds: int = 180):
        from portaum_tx.ivr.queues import QueueSettings
        check_queue_name(name)
        QueueSettings(destination, max_connected, average_seconds).check()
        return await self.store.attendant.add_queue(account_id, name, destination, max_connected,
                                                    average_seconds)

    async def set_queue(self, account_id: str, name: str, **fields):
        from portaum_tx.ivr.queues import QueueSettings
        queue = await self.store.attendant.get_queue(account_id, name)
        merged = {"destination": queue.destination, "max_connected": queue.max_connected,
                  "average_seconds": queue.average_seconds}
        merged.update({k: v for k, v in fields.items() if v is not None})
        QueueSettings(**merged).check()
        return await self.store.attendant.set_queue(account_id, name, **merged)

    async def remove_queue(self, account_id: str, name: str) -> None:
        await self.store.attendant.get_queue(account_id, name)
        users = references_to(await self.menus(account_id), QUEUE, name)
        if users:
            raise MenuError(f"queue {name} is still used by {'; '.join(users)}")
        await self.store.attendant.delete_queue(account_id, name)

    # --- directory ----------------------------------------------------------------

    async def add_entry(self, account_id: str, extension: str, first_name: str, last_name: str,
                        excluded: bool = False):
        from portaum_tx.ivr import directory
        directory.check_extension(extension)
        first_name, last_name = directory.check_names(first_name, last_name)
        return await self.store.attendant.add_directory_entry(account_id, extension, first_name,
                                                              last_name, excluded)

    async def set_entry(self, account_id: str, extension: str, *, first_name: Optional[str] = None,
                        last_name: Optional[str] = None, excluded: Optional[bool] = None):
        from portaum_tx.ivr import directory
        entry = await self.store.attendant.get_directory_entry(account_id, extension)
        first, last = directory.check_names(
            entry.first_name if first_name is None else first_name,
            entry.last_name if last_name is None else last_name)
        fields: dict = {"first_name": first, "last_name": last}
        if excluded is not None:
            fields["excluded"] = excluded
        return await self.store.attendant.set_directory_entry(account_id, extension, **fields)

    async def import_directory(self, account_id: str) -> list:
        """Entries for the other accounts of the account's customer that the directory does
        not list yet. The extension is the account's shortest all-digit alias, else its ID;
        names come from a first.last e-mail address when there is one (entries left without
        a last name cannot be found until one is set, and are excluded meanwhile)."""
        from portaum_tx.ivr import directory
        owner = await self.store.accounts.get_account(account_id)
        listed = {e.extension for e in await self.store.attendant.get_directory_entries(account_id)}
        aliases: dict[str, list[str]] = {}
        for alias, owner_id, _ in await self.store.accounts.get_aliases():
            if alias.isdigit():
                aliases.setdefault(owner_id, []).append(alias)
        added = []
        for account in await self.store.accounts.get_accounts(owner.customer_id):
            if account.id == account_id:
                continue
            candidates = sorted(aliases.get(account.id, []) + ([account.id] if account.id.isdigit() else []),
                                key=lambda n: (len(n), n))
            if not candidates or candidates[0] in listed or len(candidates[0]) > 15:
                continue
            first, last = directory.names_from_email(account.email)
            added.append(await self.store.attendant.add_directory_entry(
                account_id, candidates[0], first, last, excluded=not last))
            listed.add(candidates[0])
        return added
