"""Dial-by-name directory ("dial-by-name"), also reached from auto-attendant menus.

The caller keys the first three letters of the surname; * leaves. No match: "No match was
found", then another try (up to ``directory_attempts``). One match: the name is said and the
call transferred. Several: "Press 116 to reach John Brown, press 145 to reach Mary
Broslavsky" (or "press 1 ..., press 2 ..." when the account hides extensions), then the
caller's choice is transferred.

A name is said with the entry's recorded name, else the account's own recorded voicemail
name when the extension is an account or alias of the same customer, else spelled letter by
letter; an entry without a first or last name is said as "extension 116".

Options: account (whose directory; default the called number), directory_attempts (3),
languages, language_list_preferred, prompts_brand.
"""

from __future__ import annotations

from typing import Optional

from twisted.logger import Logger

from portaum_tx.convert.audio import AudioFormatError, au_to_pcm16, ulaw_to_pcm16
from portaum_tx.ivr import directory
from portaum_tx.ivr.apps import (
    AppContext, OptionError, application, apply_language_options, option_number,
)
from portaum_tx.ivr.call import Audio, Call, CallError, TransferFailed
from portaum_tx.store import NotFound

log = Logger()

SEARCH_TIMEOUT = 10.0
INTER_DIGIT_TIMEOUT = 5.0
SELECTION_TIMEOUT = 8.0
EXIT_KEY = "*"


async def resolve_account(context: AppContext, call: Call, options: dict):
    """The account an attendant application serves: option ``account``, else the number
    called (an account ID or alias)."""
    wanted = options.get("account") or call.called
    if not isinstance(wanted, str) or not wanted:
        raise OptionError(f"option account must be an account ID, got {wanted!r}")
    try:
        return await context.store.accounts.get_account_by_alias(wanted)
    except NotFound:
        raise OptionError(f"option account: no account or alias {wanted}") from None


async def name_items(call: Call, context: AppContext, owner, entry) -> list:
    """How an entry's name is said (see the module docstring)."""
    audio = await context.store.attendant.get_directory_name(owner.id, entry.extension)
    if audio:
        try:
            return [Audio(au_to_pcm16(audio), f"name-{entry.extension}")]
        except AudioFormatError:
            log.warn("recorded name of extension {extension} of {account} is not u-law .au",
                     extension=entry.extension, account=owner.id)
    try:
        account = await context.store.accounts.get_account_by_alias(entry.extension)
    except NotFound:
        account = None
    if account is not None and account.customer_id == owner.customer_id:
        recorded = await context.store.accounts.get_greeting(account.id, "name")
        if recorded:
            return [Audio(ulaw_to_pcm16(recorded), f"name-{entry.extension}")]
    name = directory.full_name(entry)
    if name:
        try:
            return call.sayings("spell", name)
        except CallError:
            pass
    return ["dir-extension"] + call.sayings("digits", entry.extension)


async def dial_by_name(call: Call, context: AppContext, owner, attempts: int = 3) -> Optional[str]:
    """Run the directory of account ``owner``; the extension the caller chose, or None when
    the caller pressed * or ran out of attempts."""
    entries = await context.store.attendant.get_directory_entries(owner.id, include_excluded=False)
    hide = await context.store.attendant.get_hide_extensions(owner.id)
    prompt = "dir-intro"
    for _ in range(attempts):
        keys = await call.collect_digits(directory.SEARCH_KEYS, first_timeout=SEARCH_TIMEOUT,
                                         inter_timeout=INTER_DIGIT_TIMEOUT, terminators=EXIT_KEY,
                                         prompts=[prompt], flush=True)
        if keys.terminator == EXIT_KEY:
            return None
        prompt = "dir-retry"
        if keys.timed_out:
            continue
        found = directory.search(entries, keys.digits)
        if not found:
            await call.play(["dir-no-match"])
            continue
        if len(found) == 1:
            await call.play(await name_items(call, context, owner, found[0]))
            return found[0].extension
        chosen = await choose(call, context, owner, directory.choices(found, hide))
        if chosen is not None:
            return chosen
    return None


async def choose(call: Call, context: AppContext, owner, options) -> Optional[str]:
    """Read the list of matches and take the caller's pick; None to search again."""
    listing = []
    for option in options:
        listing += ["press"] + call.sayings("digits", option.key) + ["to-reach"]
        listing += await name_items(call, context, owner, option.entry)
    listing.append("dir-make-selection")
    for attempt in range(2):
        entered = await call.collect_digits(directory.longest_key(options), first_timeout=SELECTION_TIMEOUT,
                                            inter_timeout=INTER_DIGIT_TIMEOUT, terminators="#" + EXIT_KEY,
                                            prompts=listing, flush=attempt == 0)
        if entered.terminator == EXIT_KEY:
            return None
        picked = directory.pick(options, entered.digits)
        if picked is not None:
            return picked.entry.extension
        if entered.digits:
            await call.play(["invalid-try-again"])
    return None


@application("dial-by-name")
async def dial_by_name_application(call: Call, context: AppContext, options: dict) -> None:
    attempts = int(option_number(options, "directory_attempts", 3, 1, 10, integer=True))
    await call.answer()
    owner = await resolve_account(context, call, options)
    apply_language_options(call, options, owner.language)
    extension = await dial_by_name(call, context, owner, attempts)
    if extension is None:
        await call.play(["goodbye"])
        await call.hangup()
        return
    await call.play(["aa-transferring"])
    try:
        await call.transfer(extension)
    except TransferFailed:
        await call.play(["aa-transfer-failed", "goodbye"])
        await call.hangup()
