"""Voicemail retrieval: "voicemail-access" (from one's own phone) and "voicemail-pin"
(mailbox number and PIN, from any phone).

Own phone: the calling number names the mailbox (an account ID or alias with unified
messaging); with the ``ask_pin`` option the PIN is still asked. A calling number that names
no mailbox falls back to mailbox number and PIN.

Sign-in: at most ``max_login_attempts`` tries per call; failures also count in the account
service, which locks the mailbox (and the calling number) for a while after repeated
failures, across calls and cluster nodes.

Menus (key layouts are fixed in the recordings; docs/voicemail.md has every prompt):

- main menu: 1 new messages, 2 saved messages, 9 settings, * exit;
- message menu: 1 replay, 2 save, 3 delete, 4 previous, 5 envelope, 6 next, * main menu;
- settings: 1 unavailable greeting, 2 busy greeting, 3 name, 4 PIN, 5 language,
  6 greeting choice, * main menu.

New messages are the INBOX voice and fax messages without \\Seen; saved ones are those seen
in INBOX and everything in Saved. Urgent messages come first, then oldest first. Hearing a
message sets \\Seen, the flag IMAP shows; save moves it to Saved, delete to Trash.

Options: languages, language_list_preferred, prompts_brand, max_login_attempts (3),
min_pin_length (4), max_pin_length (10), ask_pin (no; own phone only),
max_greeting_seconds (60), max_name_seconds (10).
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
from typing import Optional

from twisted.logger import Logger

from portaum_tx.accounts import InvalidValue, LoginRefused, check_pin
from portaum_tx.convert.audio import AudioFormatError, decode_upload, pcm16_to_ulaw
from portaum_tx.ivr.apps import (
    AppContext, OptionError, application, apply_language_options, option_bool, option_number,
)
from portaum_tx.ivr.call import DIGIT, Audio, Call
from portaum_tx.ivr.say import available_languages
from portaum_tx.mailbox.flags import SEEN
from portaum_tx.store import NotFound

log = Logger()

MENU_TIMEOUT = 5.0
MENU_REPEATS = 3
ENTRY_FIRST_TIMEOUT = 10.0
ENTRY_INTER_TIMEOUT = 5.0
LISTED_KINDS = ("voice", "fax")
MIN_GREETING_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class AccessOptions:
    max_login_attempts: int = 3
    min_pin_length: int = 4
    max_pin_length: int = 10
    ask_pin: bool = False
    max_greeting_seconds: float = 60.0
    max_name_seconds: float = 10.0

    @classmethod
    def parse(cls, options: dict) -> "AccessOptions":
        parsed = cls(
            max_login_attempts=int(option_number(options, "max_login_attempts", cls.max_login_attempts,
                                                 1, 10, integer=True)),
            min_pin_length=int(option_number(options, "min_pin_length", cls.min_pin_length, 4, 10, integer=True)),
            max_pin_length=int(option_number(options, "max_pin_length", cls.max_pin_length, 4, 10, integer=True)),
            ask_pin=option_bool(options, "ask_pin", cls.ask_pin),
            max_greeting_seconds=option_number(options, "max_greeting_seconds", cls.max_greeting_seconds, 5, 600),
            max_name_seconds=option_number(options, "max_name_seconds", cls.max_name_seconds, 2, 60))
        if parsed.min_pin_length > parsed.max_pin_length:
            raise OptionError(f"option min_pin_length ({parsed.min_pin_length}) is greater than "
                              f"max_pin_length ({parsed.max_pin_length})")
        return parsed


@application("voicemail-access")
async def own_phone_access(call: Call, context: AppContext, options: dict) -> None:
    settings = AccessOptions.parse(options)
    await call.answer()
    apply_language_options(call, options, None)
    account_id = None
    if call.calling:
        try:
            account_id = await context.mailboxes.resolve(call.calling)
        except NotFound:
            account_id = None
    if account_id is not None and not settings.ask_pin:
        account = await context.store.accounts.get_account(account_id)
    else:
        account = await sign_in(call, context, settings, mailbox=account_id)
    if account is not None:
        await VoicemailSession(call, context, account, settings, options).run()


@application("voicemail-pin")
async def pin_access(call: Call, context: AppContext, options: dict) -> None:
    settings = AccessOptions.parse(options)
    await call.answer()
    apply_language_options(call, options, None)
    account = await sign_in(call, context, settings)
    if account is not None:
        await VoicemailSession(call, context, account, settings, options).run()


async def sign_in(call: Call, context: AppContext, settings: AccessOptions,
                  mailbox: Optional[str] = None):
    """Mailbox number (unless known) and PIN; the account, or None after hanging up."""
    source = f"phone:{call.calling}" if call.calling else None
    for _ in range(settings.max_login_attempts):
        login = mailbox
        if login is None:
            entry = await call.collect_digits(32, ENTRY_FIRST_TIMEOUT, ENTRY_INTER_TIMEOUT,
                                              prompts=["enter-mailbox"], flush=True)
            if not entry.digits:
                await call.play(["no-input"])
                continue
            login = entry.digits
        pin = await call.collect_digits(settings.max_pin_length, ENTRY_FIRST_TIMEOUT, ENTRY_INTER_TIMEOUT,
                                        prompts=["enter-pin"], flush=True)
        if not pin.digits:
            await call.play(["no-input"])
            continue
        try:
            account = await context.accounts.authenticate(login, pin.digits, kind="pin", source=source)
        except LoginRefused as refused:
            if refused.locked_until > context.clock.seconds():
                log.info("{call_id}: voicemail sign-in for {login} refused: locked",
                         call_id=call.call_id, login=login)
                await call.play(["vm-mailbox-locked"])
                await call.hangup()
                return None
            await call.play(["login-incorrect" if mailbox is None else "pin-incorrect"])
            continue
        if not account.um_enabled:
            await call.play(["vm-mailbox-unavailable"])
            await call.hangup()
            return None
        return account
    await call.play(["too-many-attempts"])
    await call.hangup()
    return None


@dataclasses.dataclass
class Entry:
    """A message as listed for the phone: where it is now and what it is."""

    folder: object
    info: object
    caller: Optional[str] = None
    audio: Optional[Audio] = None
    loaded: bool = False


class VoicemailSession:
    """One signed-in caller's visit to the mailbox."""

    def __init__(self, call: Call, context: AppContext, account, settings: AccessOptions, options: dict):
        self.call = call
        self.context = context
        self.account = account
        self.settings = settings
        self.options = options

    async def run(self) -> None:
        apply_language_options(self.call, self.options, self.account.language)
        self.mailbox = await self.context.mailboxes.open(self.account.id)
        self.inbox = await self.mailbox.folder("INBOX")
        self.saved = await self.mailbox.folder("Saved")
        new, saved = await self.listing()
        await self.announce_counts(len(new), len(saved))
        await self.main_menu()

    # --- listing ---------------------------------------------------------------------

    async def listing(self) -> tuple[list[Entry], list[Entry]]:
        inbox = [i for i in await self.mailbox.message_infos(self.inbox) if i.kind in LISTED_KINDS]
        saved_folder = [i for i in await self.mailbox.message_infos(self.saved) if i.kind in LISTED_KINDS]

        def order(entries):
            return sorted(entries, key=lambda e: (not e.info.urgent, e.info.internal_date, e.info.uid))
        new = order([Entry(self.inbox, i) for i in inbox if not i.flags & SEEN])
        saved = order([Entry(self.inbox, i) for i in inbox if i.flags & SEEN]
                      + [Entry(self.saved, i) for i in saved_folder])
        return new, saved

    async def announce_counts(self, new: int, saved: int) -> None:
        call = self.call
        if not new and not saved:
            await call.play(["vm-no-messages"], barge_in=True)
            return
        items = ["you-have"] + call.sayings("count", new, singular="vm-new-message", plural="vm-new-messages")
        items += ["and"] + call.sayings("count", saved, singular="vm-saved-message", plural="vm-saved-messages")
        await call.play(items, barge_in=True)

    # --- menus -----------------------------------------------------------------------

    async def menu_key(self, prompts: list) -> Optional[str]:
        """One key for a menu, asking up to MENU_REPEATS times; None when none came."""
        for _ in range(MENU_REPEATS):
            entry = await self.call.collect_digits(1, MENU_TIMEOUT, terminators="", prompts=prompts)
            if entry.digits:
                return entry.digits
        return None

    async def goodbye(self) -> None:
        await self.call.play(["goodbye"])
        await self.call.hangup()

    async def main_menu(self) -> None:
        call = self.call
        while True:
            key = await self.menu_key(["vm-main-menu"])
            if key is None or key == "*":
                await self.goodbye()
                return
            if key == "1":
                new, _ = await self.listing()
                if new:
                    await self.browse(new)
                else:
                    await call.play(["vm-no-new-messages"])
            elif key == "2":
                _, saved = await self.listing()
                if saved:
                    await self.browse(saved)
                else:
                    await call.play(["vm-no-saved-messages"])
            elif key == "9":
                await self.settings_menu()
            else:
                await call.play(["invalid"])

    async def browse(self, entries: list[Entry]) -> None:
        call = self.call
        index = 0
        show = "full"
        while True:
            if index >= len(entries):
                await call.play(["vm-no-more-messages"])
                return
            entry = entries[index]
            if show:
                await self.present(entries, index, show)
            show = None
            key = await self.menu_key(["vm-message-menu"])
            if key is None or key == "*":
                return
            if key == "1":
                show = "message"
            elif key == "2":
                await self.save(entry)
                await call.play(["vm-message-saved"])
                index, show = index + 1, "full"
            elif key == "3":
                await self.delete(entry)
                await call.play(["vm-message-deleted"])
                entries.pop(index)
                show = "full"
            elif key == "4":
                if index == 0:
                    await call.play(["vm-first-message"])
                else:
                    index, show = index - 1, "full"
            elif key == "5":
                show = "envelope"
            elif key == "6":
                index, show = index + 1, "full"
            else:
                await call.play(["invalid"])

    async def present(self, entries: list[Entry], index: int, show: str) -> None:
        """full: number, urgency, envelope, then the message; envelope; or message only."""
        call = self.call
        entry = entries[index]
        await self.load(entry)
        if show in ("full", "envelope"):
            items = []
            if show == "full":
                items += ["vm-message"] + call.sayings("number", index + 1)
                if entry.info.urgent:
                    items.append("vm-urgent-message")
            items += ["vm-received"] + call.sayings("datetime", entry.info.internal_date,
                                                    timezone=self.account.timezone)
            items += ["vm-from"] + (call.sayings("digits", entry.caller) if entry.caller else ["vm-unknown-caller"])
            result = await call.play(items, barge_in=True)
            if show == "envelope" or result.reason == DIGIT:
                return
        if not entry.info.flags & SEEN:
            infos = await self.mailbox.set_flags(entry.folder, [entry.info.uid], ["\\Seen"])
            if infos:
                entry.info = infos[0]
        if entry.info.kind == "fax":
            await call.play(["vm-fax-message"], barge_in=True)
        elif entry.audio is not None:
            await call.play([entry.audio], barge_in=True)
        else:
            await call.play(["system-error"], barge_in=True)

    async def load(self, entry: Entry) -> None:
        """Caller and audio of a message, read once per call."""
        if entry.loaded:
            return
        data = (await self.mailbox.message_data(entry.folder, [entry.info.uid])).get(entry.info.uid)
        entry.loaded = True
        if data is None:
            return
        message = email.message_from_bytes(data, policy=email.policy.default)
        caller = message.get("X-Portaum-Caller")
        entry.caller = str(caller) if caller and str(caller).strip("+").isdigit() else None
        if entry.info.kind != "voice":
            return
        for part in message.iter_attachments():
            if part.get_content_maintype() == "audio":
                try:
                    pcm = await self.context.blocking(_decode_attachment, part.get_content())
                except AudioFormatError as e:
                    log.warn("{account} message {uid}: unplayable attachment: {error}",
                             account=self.account.id, uid=entry.info.uid, error=str(e))
                    return
                entry.audio = Audio(pcm, f"message-{entry.info.uid}")
                return

    async def save(self, entry: Entry) -> None:
        if entry.folder is self.saved:
            return
        _, pairs = await self.mailbox.copy(entry.folder, [entry.info.uid], "Saved", move=True)
        if pairs:
            infos = await self.mailbox.message_infos(self.saved, pairs[0][1] - 1)
            moved = [i for i in infos if i.uid == pairs[0][1]]
            entry.folder = self.saved
            if moved:
                entry.info = moved[0]

    async def delete(self, entry: Entry) -> None:
        await self.mailbox.copy(entry.folder, [entry.info.uid], "Trash", move=True)

    # --- settings --------------------------------------------------------------------

    async def settings_menu(self) -> None:
        call = self.call
        while True:
            key = await self.menu_key(["vm-settings-menu", "vm-settings-more"])
            if key is None or key == "*":
                return
            if key == "1":
                await self.record_greeting("unavailable")
            elif key == "2":
                await self.record_greeting("busy")
            elif key == "3":
                await self.record_greeting("name")
            elif key == "4":
                await self.change_pin()
            elif key == "5":
                await self.choose_language()
            elif key == "6":
                await self.choose_greeting()
            else:
                await call.play(["invalid"])

    async def record_greeting(self, kind: str) -> None:
        call = self.call
        greetings = self.context.store.accounts
        prompt = {"unavailable": "vm-record-unavailable-greeting", "busy": "vm-record-busy-greeting",
                  "name": "vm-record-name"}[kind]
        limit = self.settings.max_name_seconds if kind == "name" else self.settings.max_greeting_seconds
        for _ in range(MENU_REPEATS):
            await call.play([prompt])
            recording = await call.record(limit, 3.0, "#")
            call.check()  # hanging up while recording a greeting keeps the old one
            if recording.duration < MIN_GREETING_SECONDS:
                await call.play(["vm-message-too-short"])
                continue
            while True:
                key = await self.menu_key(["vm-greeting-options"])
                if key is None:
                    return
                if key == "1":
                    await greetings.store_greeting(self.account.id, kind, pcm16_to_ulaw(recording.pcm))
                    if kind != "name" and self.account.greeting != "personal":
                        self.account = await self.context.accounts.set_preferences(
                            self.account.id, greeting="personal")
                    await call.play(["vm-name-saved" if kind == "name" else "vm-greeting-saved"])
                    return
                if key == "2":
                    await call.play([Audio(recording.pcm, f"new-{kind}")], barge_in=True)
                elif key == "3":
                    break
                elif key == "4":
                    await greetings.delete_greeting(self.account.id, kind)
                    await call.play(["vm-name-removed" if kind == "name" else "vm-greeting-removed"])
                    return
                else:
                    await call.play(["invalid"])

    async def change_pin(self) -> None:
        call = self.call
        low, high = self.settings.min_pin_length, self.settings.max_pin_length
        for _ in range(MENU_REPEATS):
            first = await call.collect_digits(high + 1, ENTRY_FIRST_TIMEOUT, ENTRY_INTER_TIMEOUT,
                                              prompts=["vm-enter-new-pin"], flush=True)
            if first.timed_out:
                await call.play(["no-input"])
                continue
            try:
                check_pin(first.digits, low, high)
            except InvalidValue:
                await call.play(["vm-pin-invalid"])
                continue
            second = await call.collect_digits(high + 1, ENTRY_FIRST_TIMEOUT, ENTRY_INTER_TIMEOUT,
                                               prompts=["vm-reenter-new-pin"], flush=True)
            if second.digits != first.digits:
                await call.play(["vm-pins-do-not-match"])
                continue
            self.account = await self.context.accounts.set_secrets(self.account.id, pin=first.digits)
            await call.play(["vm-pin-changed"])
            return

    async def choose_language(self) -> None:
        call = self.call
        languages = available_languages()
        items = []
        for number, language in enumerate(languages, 1):
            items += ["for", f"lang-{language}", "press", str(number)]
        key = await self.menu_key(items)
        if key is None:
            return
        if not key.isdigit() or not 1 <= int(key) <= len(languages):
            await call.play(["invalid"])
            return
        language = languages[int(key) - 1]
        self.account = await self.context.accounts.set_preferences(self.account.id, language=language)
        apply_language_options(call, self.options, language)
        await call.play(["language-changed"])

    async def choose_greeting(self) -> None:
        call = self.call
        key = await self.menu_key(["vm-choose-greeting"])
        choice = {"1": "personal", "2": "name", "3": "system"}.get(key or "")
        if key is None:
            return
        if choice is None:
            await call.play(["invalid"])
            return
        self.account = await self.context.accounts.set_preferences(self.account.id, greeting=choice)
        await call.play(["settings-saved"])


def _decode_attachment(data: bytes):
    return decode_upload(data, normalise=False, max_seconds=3600)
