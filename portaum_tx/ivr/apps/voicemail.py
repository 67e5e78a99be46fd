"""Voicemail deposit ("voicemail"): a caller leaves a message in a mailbox.

Flow (docs/voicemail.md lists every prompt):

1. The mailbox is the one routing chose (the diverted or called number); on an access number
   with none, the caller enters a mailbox number.
2. A full mailbox is refused politely before anything is recorded.
3. The greeting: the account's personal greeting for the reason (busy or unavailable), else
   its recorded name inside the system greeting, else the system greeting that says the
   number; the account's greeting choice (personal / name / system) decides where the chain
   starts. # skips the greeting.
4. The tone, then the recording: # ends it, so do silence, the maximum length and hanging up.
   Recordings under the minimum length are discarded. After #, the caller may listen,
   record again or send (no choice within the timeout sends).
5. The message is delivered as a voice message (WAV or MP3 per the account); delivery
   publishes the new-message event on which MWI and forwarding act.

A fax tone (CNG) heard during the greeting or the recording hands the call to the fax
application when one is registered ("fax", or the ``fax_application`` option); otherwise it is
logged and the deposit goes on.

Options (access number or defaults): languages, language_list_preferred, prompts_brand,
max_message_seconds (120), min_message_seconds (1), silence_seconds (5), review (yes),
max_login_attempts (3, mailbox number entry), fax_application ("fax").
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from twisted.logger import Logger

from portaum_tx.convert.audio import pcm16_to_mp3, pcm16_to_wav, ulaw_to_pcm16
from portaum_tx.ivr.apps import (
    AppContext, OptionError, application, apply_language_options, option_bool, option_number,
)
from portaum_tx.ivr.call import DIGIT, Audio, Call, CallHungUp, Recording
from portaum_tx.mailbox.service import MailboxFull
from portaum_tx.store import NotFound

log = Logger()

MENU_TIMEOUT = 5.0
MENU_REPEATS = 3
RECORD_ATTEMPTS = 3


@dataclasses.dataclass(frozen=True)
class DepositOptions:
    max_message_seconds: float = 120.0
    min_message_seconds: float = 1.0
    silence_seconds: float = 5.0
    review: bool = True
    max_login_attempts: int = 3
    fax_application: str = "fax"

    @classmethod
    def parse(cls, options: dict) -> "DepositOptions":
        fax = options.get("fax_application", cls.fax_application)
        if not isinstance(fax, str) or not fax:
            raise OptionError(f"option fax_application must be an application name, got {fax!r}")
        return cls(
            max_message_seconds=option_number(options, "max_message_seconds", cls.max_message_seconds, 5, 3600),
            min_message_seconds=option_number(options, "min_message_seconds", cls.min_message_seconds, 0, 60),
            silence_seconds=option_number(options, "silence_seconds", cls.silence_seconds, 1, 60),
            review=option_bool(options, "review", cls.review),
            max_login_attempts=int(option_number(options, "max_login_attempts", cls.max_login_attempts,
                                                 1, 10, integer=True)),
            fax_application=fax)


class FaxWatch:
    """Listens for fax tones while it is open; stops the media when a fax application is
    there to take the call over."""

    def __init__(self, call: Call, context: AppContext, application_name: str):
        self.call = call
        self.application = context.applications.find(application_name)
        self.application_name = application_name
        self.tone: Optional[str] = None
        self._remove = call.on_fax_tone(self._heard)

    def _heard(self, tone: str) -> None:
        log.info("{call_id}: fax tone {tone} during voicemail deposit{what}", call_id=self.call.call_id,
                 tone=tone, what="" if self.application else
                 f"; no {self.application_name!r} application, the deposit goes on")
        if self.tone is None:
            self.tone = tone
            if self.application is not None:
                self.call.stop_media()

    @property
    def hand_over(self) -> bool:
        return self.tone is not None and self.application is not None

    def close(self) -> None:
        self._remove()


@application("voicemail")
async def deposit(call: Call, context: AppContext, options: dict) -> None:
    settings = DepositOptions.parse(options)
    await call.answer()
    apply_language_options(call, options, None)
    dialled = call.original_called or call.called
    account_id = context.mailbox
    if account_id is None:
        found = await ask_mailbox(call, context, settings.max_login_attempts)
        if found is None:
            return
        account_id, dialled = found
    account = await context.store.accounts.get_account(account_id)
    apply_language_options(call, options, account.language)
    reason = context.reason or "unavailable"

    if await mailbox_is_full(context, account.id):
        await call.play(["vm-mailbox-full"])
        await call.hangup()
        return

    watch = FaxWatch(call, context, settings.fax_application)
    try:
        greeting = await greeting_items(call, context, account, reason, dialled)
        await call.play(greeting, barge_in="#")
        call.flush_digits()
        if watch.hand_over:
            watch.close()
            await watch.application(call, context, options)
            return
        recording = await record_message(call, settings, watch)
    finally:
        watch.close()
    if watch.hand_over:
        await watch.application(call, context, options)
        return
    if recording is None:
        return
    await deliver(call, context, account, recording)


async def ask_mailbox(call: Call, context: AppContext, attempts: int) -> Optional[tuple[str, str]]:
    """The mailbox the caller names: (account ID, the number entered), or None."""
    for _ in range(attempts):
        entry = await call.collect_digits(32, first_timeout=10, inter_timeout=5,
                                          prompts=["enter-mailbox"])
        if entry.digits:
            try:
                return await context.mailboxes.resolve(entry.digits), entry.digits
            except NotFound:
                await call.play(["vm-mailbox-unavailable"])
        else:
            await call.play(["no-input"])
    await call.play(["too-many-attempts"])
    await call.hangup()
    return None


async def mailbox_is_full(context: AppContext, account_id: str) -> bool:
    mailbox = await context.mailboxes.open(account_id)
    used, quota = await mailbox.quota()
    return quota > 0 and used >= quota


async def greeting_items(call: Call, context: AppContext, account, reason: str, dialled: str) -> list:
    greetings = context.store.accounts
    verb = "vm-is-busy" if reason == "busy" else "vm-is-unavailable"
    if account.greeting == "personal":
        kind = "busy" if reason == "busy" else "unavailable"
        audio = await greetings.get_greeting(account.id, kind)
        if audio:
            return [Audio(ulaw_to_pcm16(audio), f"greeting-{kind}")]
    if account.greeting in ("personal", "name"):
        name = await greetings.get_greeting(account.id, "name")
        if name:
            return [Audio(ulaw_to_pcm16(name), "name"), verb, "vm-leave-message"]
    return ["vm-the-person-at"] + call.sayings("digits", dialled) + [verb, "vm-leave-message"]


async def record_message(call: Call, settings: DepositOptions, watch: FaxWatch) -> Optional[Recording]:
    """The recording to deliver, or None (nothing usable, or the call went to fax)."""
    for _ in range(RECORD_ATTEMPTS):
        recording = await call.record(settings.max_message_seconds, settings.silence_seconds, "#")
        if watch.hand_over:
            return None
        if recording.duration < max(settings.min_message_seconds, 0.02):
            log.info("{call_id}: {seconds:.2f} s message discarded as too short",
                     call_id=call.call_id, seconds=recording.duration)
            if call.is_hungup:
                return None
            await call.play(["vm-message-too-short"])
            continue
        if recording.ended_by != DIGIT or not settings.review:
            return recording
        try:
            choice = await review(call, recording)
        except CallHungUp:
            return recording  # hanging up after # sends the message
        if choice == "send":
            return recording
    if not call.is_hungup:
        await call.play(["goodbye"])
        await call.hangup()
    return None


async def review(call: Call, recording: Recording) -> str:
    """After #: 1 send, 2 listen, 3 record again; no choice sends. Returns send or again."""
    silent = 0
    while silent < MENU_REPEATS:
        entry = await call.collect_digits(1, first_timeout=MENU_TIMEOUT, terminators="",
                                          prompts=["vm-deposit-options"])
        if entry.timed_out:
            silent += 1
            continue
        if entry.digits == "1":
            return "send"
        if entry.digits == "2":
            await call.play([Audio(recording.pcm, "message")], barge_in=True)
        elif entry.digits == "3":
            return "again"
        else:
            await call.play(["invalid"])
    return "send"


async def deliver(call: Call, context: AppContext, account, recording: Recording) -> None:
    """Store the message; then, if the caller is still there, say so and hang up."""
    audio_format = account.attachment_format if account.attachment_format in ("wav", "mp3") else "wav"
    encoder = pcm16_to_mp3 if audio_format == "mp3" else pcm16_to_wav
    audio = await context.blocking(encoder, recording.pcm)
    try:
        await context.mailboxes.deliver_voice(
            account.id, audio=audio, audio_format=audio_format, duration=recording.duration,
            caller=call.calling or None, caller_name=call.calling_name)
    except MailboxFull:
        log.info("{call_id}: mailbox {account} full, message refused", call_id=call.call_id,
                 account=account.id)
        if not call.is_hungup:
            await call.play(["vm-mailbox-full"])
            await call.hangup()
        return
    if not call.is_hungup:
        await call.play(["vm-message-sent", "goodbye"])
        await call.hangup()
