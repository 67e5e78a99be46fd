"""Fax reception: the "fax" application.

Reached from a fax access number, from voicemail deposit when a CNG tone is heard, or from
the auto attendant's Fax event. It answers, receives over G.711 on the call's RTP session
and switches to T.38 when the far end accepts our re-INVITE (or re-INVITEs itself), hangs
up when the fax is over, and delivers the pages to the mailbox as the account prefers (PDF
or TIFF-F): a fax message with the sender's station ID, pages, rate and duration, which
raises MWI and is forwarded like a voice message. A fax that breaks off delivers the pages
received, marked incomplete.

The mailbox: the one routing decided (deposit, attendant), else the ``mailbox`` option,
else the original called number or the called number. Options (access number):
``mailbox``, ``local_ident``, ``ecm`` (yes/no), ``t38`` (yes/no: accept T.38 at all),
``t38_request`` (yes/no: re-INVITE to T.38 ourselves, else only accept the far end's),
``max_pages`` (1-500).
Defaults come from ``[fax]`` through :func:`configure`.

Without libspandsp (or with ``[fax] enabled = no``) the application answers, says
"fax-not-available" and hangs up; the reason is logged once at start-up.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from typing import Any, Optional

from twisted.logger import Logger

from portaum_tx.fax import spandsp
from portaum_tx.fax.call import FaxCallSession, FaxSettings, FaxUnavailableOnCall, fax_channel_for
from portaum_tx.fax.document import FaxDocumentError, convert_received_fax
from portaum_tx.fax.receiver import FaxResult
from portaum_tx.ivr.apps import AppContext, OptionError, application, option_bool, option_number
from portaum_tx.ivr.call import Call, CallError
from portaum_tx.store import NotFound

log = Logger()

DOCUMENT_FORMATS = ("pdf", "tiff")

_defaults = FaxSettings()
_spool: Optional[str] = None


def configure(settings: FaxSettings, spool_directory: Optional[str] = None) -> Optional[str]:
    """Set the node's defaults (from ``[fax]``: ``FaxSettings.from_config(config.fax)``)
    and where received pages are written while a fax runs; returns why fax reception is
    off, or None when it is on, after logging it."""
    global _defaults, _spool
    _defaults = settings
    _spool = spool_directory
    reason = unavailable_reason(settings)
    if reason is not None:
        log.warn("fax reception is off: {reason}", reason=reason)
    return reason


def unavailable_reason(settings: FaxSettings) -> Optional[str]:
    if not settings.enabled:
        return "[fax] enabled = no"
    try:
        spandsp.load_library()
    except spandsp.FaxUnavailable as e:
        return str(e)
    return None


def parse_options(options: dict, defaults: Optional[FaxSettings] = None) -> FaxSettings:
    settings = defaults or _defaults
    ident = options.get("local_ident", settings.local_ident)
    if not isinstance(ident, str) or len(ident) > 20 or not ident.isprintable():
        raise OptionError(f"option local_ident must be up to 20 printable characters, got {ident!r}")
    return dataclasses.replace(
        settings, local_ident=ident,
        ecm=option_bool(options, "ecm", settings.ecm),
        t38=option_bool(options, "t38", settings.t38),
        t38_request=option_bool(options, "t38_request", settings.t38_request),
        max_pages=int(option_number(options, "max_pages", settings.max_pages, 1, 500, integer=True)))


async def fax_account(call: Call, context: AppContext, options: dict) -> Optional[str]:
    if context.mailbox:
        return context.mailbox
    named = options.get("mailbox")
    candidates = [named] if named else [call.original_called, call.called]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return await context.mailboxes.resolve(str(candidate))
        except NotFound:
            continue
    return None


async def _say_unavailable(call: Call) -> None:
    try:
        await call.answer()
        await call.play(["fax-not-available"])
    except CallError as e:   # a call without an audio path: nothing can be said
        log.info("{call_id}: cannot say fax-not-available: {error}", call_id=call.call_id, error=e)
    await call.hangup()


def _announce_availability() -> None:
    """Applications load when the SIP front end starts: say then, once, if fax is off."""
    try:
        spandsp.load_library()
    except spandsp.FaxUnavailable as e:
        log.warn("fax reception is off: {reason}; calls to the fax application hear "
                 "fax-not-available", reason=str(e))


_announce_availability()


@application("fax")
async def receive(call: Call, context: AppContext, options: dict) -> None:
    settings = parse_options(options)
    account_id = await fax_account(call, context, options)
    if account_id is None:
        log.info("{call_id}: fax for {called}: no such mailbox", call_id=call.call_id,
                 called=call.original_called or call.called)
        if call.answered:
            await call.hangup()
        else:
            await call.reject(404, "Not Found")
        return
    reason = unavailable_reason(settings)
    if reason is None:
        try:
            channel = fax_channel_for(call)
        except FaxUnavailableOnCall as e:
            reason = str(e)
    if reason is not None:
        log.warn("{call_id}: fax for {mailbox} not received: {reason}", call_id=call.call_id,
                 mailbox=account_id, reason=reason)
        await _say_unavailable(call)
        return

    await call.answer()
    rtp, allocator, signalling = channel
    spool = _spool or os.path.join(tempfile.gettempdir(), "portaum-fax")
    os.makedirs(spool, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="rx-", dir=spool)
    try:
        session = FaxCallSession(context.clock, rtp, settings, directory,
                                 allocator=allocator, signalling=signalling)
        done = session.start()

        def hung_up(why):
            session.stop()
            return why

        call.hungup.addCallback(hung_up)
        result: FaxResult = await done
        if not call.is_hungup:
            await call.hangup()
        await deliver(call, context, account_id, result)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _off_reactor(context: AppContext, function, *args, **kwargs) -> Any:
    """PDF and TIFF-F conversion is CPU work: a thread (the node's run_blocking, else the
    reactor's thread pool), never the reactor thread when one is there."""
    if context.run_blocking is not None:
        return await context.run_blocking(lambda: function(*args, **kwargs))
    pool = getattr(context.clock, "getThreadPool", None)
    if pool is not None:
        from twisted.internet.threads import deferToThreadPool
        return await deferToThreadPool(context.clock, pool(), function, *args, **kwargs)
    return function(*args, **kwargs)


async def deliver(call: Call, context: AppContext, account_id: str, result: FaxResult):
    """The fax message in the mailbox (None when no page arrived)."""
    if result.pages == 0 or result.tiff_path is None:
        log.info("{call_id}: fax for {mailbox}: no page received ({why})", call_id=call.call_id,
                 mailbox=account_id, why=result.completion_text)
        return None
    account = await context.store.accounts.get_account(account_id)
    document_format = account.fax_format if account.fax_format in DOCUMENT_FORMATS else "pdf"
    sender = result.remote_ident or call.calling or "unknown sender"
    complete = result.complete
    try:
        converted = await _off_reactor(context, convert_received_fax, result.tiff_path,
                                       title=f"Fax from {sender}")
        pages = converted.pages
        document = converted.pdf if document_format == "pdf" else converted.tiff
    except FaxDocumentError as e:
        # The pages are the caller's only copy: keep spandsp's own TIFF rather than nothing.
        log.warn("{call_id}: received fax pages do not convert ({error}); delivering the TIFF "
                 "as received", call_id=call.call_id, error=str(e))
        with open(result.tiff_path, "rb") as tiff:
            document = tiff.read()
        document_format, pages, complete = "tiff", result.pages, False
    delivered = await context.mailboxes.deliver_fax(
        account.id, document=document, document_format=document_format, pages=pages,
        remote_ident=result.remote_ident or None, caller=call.calling or None,
        bit_rate=result.bit_rate or None, duration=round(result.duration, 1), complete=complete)
    log.info("{call_id}: fax of {pages} page(s) from {sender!r} delivered to {mailbox} as "
             "{document_format}{state}", call_id=call.call_id, pages=pages, sender=sender,
             mailbox=account.id, document_format=document_format, state="" if complete else " (incomplete)")
    return delivered


__all__ = ["receive", "configure", "parse_options", "deliver", "fax_account"]
