"""Auto attendant ("auto-attendant"): the account's menus answer its callers.

The call starts in ROOT. Entering a menu outside its active period performs the menu's
Not Active action (Default there: the Unavailable prompt, then goodbye). Otherwise the Intro
prompt plays on the first entry of the call into that menu, then the Menu prompt, and the
caller's key (or the timeout, or a fax tone) selects the event whose action runs:

- Default: the Timeout/Default prompt, then the Menu prompt again;
- Transfer / Transfer to E.164: a blind transfer to the number;
- Transfer to Extension: the pressed key starts the extension, the caller keys the rest
  (# ends it); more digits than the maximum are refused;
- Transfer to Voicemail: voicemail deposit for the target mailbox (the attendant's own by
  default); on the Fax event, fax reception for it;
- Menu: the named menu; Directory: dial-by-name, then a transfer (* comes back here);
- Queue: the named call queue; Disconnect: hang up.

With "play before action" the event's own recording (``before-<event>``) plays first, or,
for a transfer without one, "Please hold while your call is transferred". A failed
transfer says so and returns to the menu. After ``max_timeouts`` timeouts in a row whose
action is Default the caller hears goodbye.

Options: account (default the called number), menu_timeout (5 s), max_timeouts (3),
extension_timeout (3 s), timezone (default the account's), fax_application ("fax"),
voicemail_application ("voicemail"), languages, language_list_preferred, prompts_brand.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Optional, Union

from twisted.logger import Logger

from portaum_tx.convert.audio import AudioFormatError, au_to_pcm16
from portaum_tx.ivr import attendant as model
from portaum_tx.ivr.apps import (
    AppContext, OptionError, application, apply_language_options, option_number,
)
from portaum_tx.ivr.apps.directory import dial_by_name, resolve_account
from portaum_tx.ivr.apps.queue import enter_queue
from portaum_tx.ivr.call import DIGIT, Audio, Call, Silence, TransferFailed
from portaum_tx.store import NotFound

log = Logger()

#: Menus entered one after another without the caller pressing anything (Not Active
#: chains); beyond this the menus loop and the caller is let go.
MAX_HOPS = 8


class _Repeat:
    """Back to the current menu's Menu prompt."""


REPEAT = _Repeat()
Next = Union[_Repeat, str, None]  # REPEAT, a menu to enter, or None: the call is done


@dataclasses.dataclass(frozen=True)
class AttendantOptions:
    menu_timeout: float = 5.0
    max_timeouts: int = 3
    extension_timeout: float = 3.0
    timezone: Optional[str] = None
    fax_application: str = "fax"
    voicemail_application: str = "voicemail"

    @classmethod
    def parse(cls, options: dict) -> "AttendantOptions":
        names = {}
        for key in ("fax_application", "voicemail_application"):
            value = options.get(key, getattr(cls, key))
            if not isinstance(value, str) or not value:
                raise OptionError(f"option {key} must be an application name, got {value!r}")
            names[key] = value
        timezone = options.get("timezone") or None
        if timezone is not None and not isinstance(timezone, str):
            raise OptionError(f"option timezone must be a time zone name, got {timezone!r}")
        return cls(menu_timeout=option_number(options, "menu_timeout", cls.menu_timeout, 1, 60),
                   max_timeouts=int(option_number(options, "max_timeouts", cls.max_timeouts, 1, 20,
                                                  integer=True)),
                   extension_timeout=option_number(options, "extension_timeout",
                                                   cls.extension_timeout, 1, 30),
                   timezone=timezone, **names)


async def load_menus(store, account_id: str) -> dict[str, model.Menu]:
    """The account's menus by name; an account that has none gets a bare ROOT."""
    menus = {}
    for stored in await store.attendant.get_menus(account_id):
        menus[stored.name] = model.Menu.from_stored(stored.name, stored.period, stored.events)
    menus.setdefault(model.ROOT, model.root_menu())
    return menus


class AttendantRun:
    """One caller's way through the menus."""

    def __init__(self, call: Call, context: AppContext, account, menus: dict[str, model.Menu],
                 settings: AttendantOptions, options: dict):
        self.call = call
        self.context = context
        self.account = account
        self.menus = menus
        self.settings = settings
        self.options = options
        self.visited: set[str] = set()
        self.hops = 0
        self.fax_heard = False
        self._recordings: dict[tuple[str, str], Optional[Audio]] = {}
        #: (menu, event, action) for each action taken, in order.
        self.trail: list[tuple[str, str, str]] = []

    async def run(self) -> None:
        remove = self.call.on_fax_tone(self._fax)
        try:
            following: Optional[str] = model.ROOT
            while following is not None:
                following = await self.enter(following)
        finally:
            remove()

    def _fax(self, tone: str) -> None:
        if not self.fax_heard:
            self.fax_heard = True
            self.call.stop_media()

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.call.clock.seconds(), dt.timezone.utc)

    async def enter(self, name: str) -> Optional[str]:
        menu = self.menus.get(name)
        if menu is None:  # saved menus are validated; this is a menu removed mid-call
            log.warn("{account}: menu {menu} does not exist", account=self.account.id, menu=name)
            await self.finish("unavailable", menu=None)
            return None
        self.hops += 1
        if self.hops > MAX_HOPS:
            log.warn("{account}: menus {menu} ... lead into each other without input",
                     account=self.account.id, menu=name)
            await self.finish("unavailable", menu)
            return None
        timezone = self.settings.timezone or self.account.timezone
        if not menu.is_active(self._now(), timezone):
            following = await self.perform(menu, "not_active")
            if following is REPEAT:
                await self.finish("unavailable", menu)
                return None
            return following
        if name not in self.visited:
            self.visited.add(name)
            await self.call.play([await self.prompt(menu, "intro")], barge_in=True)
        timeouts = 0
        while True:
            event = await self.ask(menu)
            if event != "timeout":
                self.hops = 0
                timeouts = 0
            elif menu.action_for("timeout").action == model.DEFAULT:
                timeouts += 1
                if timeouts >= self.settings.max_timeouts:
                    self.trail.append((menu.name, event, "goodbye"))
                    await self.call.play([await self.prompt(menu, "timeout"), "goodbye"])
                    await self.call.hangup()
                    return None
            following = await self.perform(menu, event)
            if following is not REPEAT:
                return following

    async def ask(self, menu: model.Menu) -> str:
        """Play the Menu prompt and wait for a key: the event that came."""
        if not self.fax_heard:
            wait = Silence(int(self.settings.menu_timeout * 1000))
            result = await self.call.play([await self.prompt(menu, "menu"), wait], barge_in=True)
        else:
            result = None
        if self.fax_heard:
            return "fax"
        if result is not None and result.reason == DIGIT:
            key = await self.call.collect_digits(1, first_timeout=0, terminators="")
            if key.digits:
                return key.digits
        return "timeout"

    async def perform(self, menu: model.Menu, event: str) -> Next:
        action = menu.action_for(event)
        self.trail.append((menu.name, event, action.action))
        call = self.call
        if event == "fax":
            self.fax_heard = False  # handled now; the next menu listens afresh
        if action.play_before:
            before = await self.recording(menu.name, f"before-{event}")
            if before is None and action.action in (model.TRANSFER, model.TRANSFER_E164,
                                                     model.TRANSFER_EXTENSION):
                before = model.DEFAULT_BEFORE_TRANSFER
            if before is not None:
                await call.play([before])
        if action.action == model.DEFAULT:
            if event == "not_active":
                return REPEAT
            await call.play([await self.prompt(menu, "timeout")], barge_in=True)
            return REPEAT
        if action.action in (model.TRANSFER, model.TRANSFER_E164):
            return None if await self.transfer(action.target) else REPEAT
        if action.action == model.TRANSFER_EXTENSION:
            return await self.transfer_extension(event, action.extension_digits)
        if action.action == model.TRANSFER_VOICEMAIL:
            await self.voicemail(action.target or self.account.id, fax=event == "fax")
            return None
        if action.action == model.MENU:
            return action.target
        if action.action == model.DIRECTORY:
            return await self.directory(action.target)
        if action.action == model.QUEUE:
            return await self.queue(action.target)
        if action.action == model.DISCONNECT:
            await call.hangup()
            return None
        raise AssertionError(f"unhandled action {action.action}")

    async def transfer(self, destination: str) -> bool:
        try:
            await self.call.transfer(destination)
            return True
        except TransferFailed as e:
            log.info("{call_id}: transfer to {destination} failed: {error}",
                     call_id=self.call.call_id, destination=destination, error=str(e))
            self.call.flush_digits()
            await self.call.play(["aa-transfer-failed"])
            return False

    async def transfer_extension(self, event: str, max_digits: int) -> Next:
        first = event if event.isdigit() else ""
        prompts = [] if first else ["aa-enter-extension"]
        rest = await self.call.collect_digits(max_digits + 1 - len(first),
                                              first_timeout=self.settings.extension_timeout,
                                              inter_timeout=self.settings.extension_timeout,
                                              terminators="#", prompts=prompts)
        extension = first + rest.digits
        if not extension or len(extension) > max_digits:
            self.call.flush_digits()
            await self.call.play(["aa-invalid-extension"])
            return REPEAT
        return None if await self.transfer(extension) else REPEAT

    async def voicemail(self, mailbox: str, fax: bool) -> None:
        applications = self.context.applications
        name = self.settings.fax_application if fax else self.settings.voicemail_application
        app = applications.find(name)
        if app is None and fax:
            log.info("{call_id}: no {name!r} application; voicemail deposit takes the fax call",
                     call_id=self.call.call_id, name=name)
            app = applications.get(self.settings.voicemail_application)
        elif app is None:
            app = applications.get(name)
        handover = dataclasses.replace(self.context, mailbox=mailbox, reason="unavailable")
        await app(self.call, handover, self.options)

    async def directory(self, target: Optional[str]) -> Next:
        owner = self.account
        if target is not None:
            try:
                owner = await self.context.store.accounts.get_account(target)
            except NotFound:
                await self.call.play(["service-unavailable"])
                return REPEAT
        extension = await dial_by_name(self.call, self.context, owner)
        if extension is None:
            return REPEAT
        await self.call.play([model.DEFAULT_BEFORE_TRANSFER])
        return None if await self.transfer(extension) else REPEAT

    async def queue(self, name: str) -> Next:
        try:
            queue = await self.context.store.attendant.get_queue(self.account.id, name)
        except NotFound:
            await self.call.play(["service-unavailable"])
            return REPEAT
        await enter_queue(self.call, self.context, queue)
        return None

    async def finish(self, kind: str, menu: Optional[model.Menu]) -> None:
        item = await self.prompt(menu, kind) if menu is not None else model.DEFAULT_PROMPTS[kind]
        await self.call.play([item, "goodbye"])
        await self.call.hangup()

    async def recording(self, menu: str, kind: str) -> Optional[Audio]:
        key = (menu, kind)
        if key not in self._recordings:
            data = await self.context.store.attendant.get_attendant_prompt(
                self.account.id, f"menu:{menu}", kind)
            audio = None
            if data:
                try:
                    audio = Audio(au_to_pcm16(data), f"{menu}-{kind}")
                except AudioFormatError:
                    log.warn("{account}: {kind} prompt of menu {menu} is not u-law .au",
                             account=self.account.id, kind=kind, menu=menu)
            self._recordings[key] = audio
        return self._recordings[key]

    async def prompt(self, menu: model.Menu, kind: str):
        """The menu's recording of ``kind``, else the shipped default."""
        recorded = await self.recording(menu.name, kind)
        return recorded if recorded is not None else model.DEFAULT_PROMPTS[kind]


@application("auto-attendant")
async def auto_attendant(call: Call, context: AppContext, options: dict) -> None:
    settings = AttendantOptions.parse(options)
    await call.answer()
    account = await resolve_account(context, call, options)
    apply_language_options(call, options, account.language)
    menus = await load_menus(context.store, account.id)
    await AttendantRun(call, context, account, menus, settings, options).run()
