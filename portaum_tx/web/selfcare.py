"""Subscriber endpoints: sign-in, mailbox, compose, settings, greetings.

Every mailbox operation opens the signed-in account's own mailbox through
:class:`~portaum_tx.mailbox.service.MailboxService`; no endpoint takes an
account ID from the client, so one subscriber cannot name another's messages.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from email.message import EmailMessage
import email.policy

from twisted.internet import threads

from ..accounts import CHOICES, InvalidValue, LoginRefused, check_preference
from ..convert.audio import (AudioFormatError, RAW_FORMATS, au_to_pcm16, pcm16_to_wav, read_au,
                             ulaw_to_wav, upload_to_au)
from ..mailbox.service import MailboxFull, UnknownMailbox
from ..store import AlreadyExists, NotFound
from . import faxview, messages as mime
from .api import (PUBLIC, USER, ApiError, Field, Param, Response, Route, invalid, not_found)
from .outbound import OutboundUnavailable, submit
from .sanitize import sanitize_html
from .sessions import LIFETIME, USER_COOKIE

GREETING_KINDS = ("unavailable", "busy", "name")
PAGE_SIZE = 50
_FOLDER = Param("folder", "folder name, e.g. INBOX, Saved, Sent, Trash")
_UID = Param("uid", "message UID within the folder", "integer")


# --- sign-in -----------------------------------------------------------------

def _session_body(ctx, session, account) -> dict:
    return {"account_id": account.id, "email": account.email, "role": "user",
            "timezone": account.timezone, "language": account.language,
            "expires": session.expires, "csrf_token": ctx.signer.csrf_token(session)}


async def sign_in(ctx):
    login, password = ctx.body["login"].strip(), ctx.body["password"]
    try:
        account = await ctx.node.accounts.authenticate(login, password, source=ctx.client)
    except LoginRefused as exc:
        if exc.locked_until > ctx.now:
            raise ApiError(429, "locked", "too many failed sign-ins; try again later",
                           headers={"Retry-After": str(exc.locked_until - ctx.now)}) from None
        raise ApiError(401, "unauthenticated", "wrong account, e-mail address or password") from None
    token, session = ctx.signer.issue("user", account.id, ctx.now, account.password_hash)
    ctx.set_cookie(USER_COOKIE, token, LIFETIME)
    return _session_body(ctx, session, account)


async def current_session(ctx):
    account = await ctx.node.store.accounts.get_account(ctx.account_id)
    return _session_body(ctx, ctx.session, account)


async def sign_out(ctx):
    ctx.set_cookie(USER_COOKIE, "", 0)
    return {"signed_out": True}


# --- mailbox -----------------------------------------------------------------

async def _mailbox(ctx):
    try:
        return await ctx.node.mailboxes.open(ctx.account_id)
    except UnknownMailbox:
        raise ApiError(404, "no_mailbox", "this account has no mailbox") from None


async def _folder(ctx, mailbox, name: str):
    try:
        return await mailbox.folder(name)
    except NotFound:
        raise not_found(f"no folder {name!r}") from None


async def _message(ctx, folder_name: str, uid: int):
    """(mailbox, folder, info, bytes) of one of the signed-in user's messages."""
    mailbox = await _mailbox(ctx)
    folder = await _folder(ctx, mailbox, folder_name)
    infos = [i for i in await mailbox.message_infos(folder, uid - 1) if i.uid == uid]
    if not infos:
        raise not_found(f"no message {uid} in {folder.name}")
    data = (await mailbox.message_data(folder, [uid])).get(uid)
    if data is None:
        raise not_found(f"no message {uid} in {folder.name}")
    return mailbox, folder, infos[0], data


async def list_folders(ctx):
    mailbox = await _mailbox(ctx)
    result = []
    for folder in await mailbox.folders():
        counts = await mailbox.status(folder.name)
        result.append({"name": folder.name, "special_use": folder.special_use,
                       "messages": counts["messages"], "unseen": counts["unseen"]})
    used, quota = await mailbox.quota()
    return {"folders": result, "used_bytes": used, "quota_bytes": quota}


async def list_messages(ctx, folder):
    mailbox = await _mailbox(ctx)
    box = await _folder(ctx, mailbox, folder)
    limit = min(int(ctx.query.get("limit", PAGE_SIZE) or PAGE_SIZE), 200) or PAGE_SIZE
    before = ctx.query.get("before")
    infos = await mailbox.message_infos(box)
    if before:
        infos = [i for i in infos if i.uid < before]
    infos = sorted(infos, key=lambda i: i.uid, reverse=True)
    page, rest = infos[:limit], infos[limit:]
    data = await mailbox.message_data(box, [i.uid for i in page]) if page else {}
    rows = [mime.summary(box.name, info, mime.parse_headers(data.get(info.uid, b"")))
            for info in page]
    return {"folder": box.name, "messages": rows, "more": bool(rest),
            "next_before": page[-1].uid if rest else None}


async def get_message(ctx, folder, uid):
    _, box, info, data = await _message(ctx, folder, uid)
    result = mime.detail(box.name, info, data)
    if result["kind"] == "fax":
        result["pages"] = len(await faxview.previews(ctx.node.reactor, ctx.account_id, box, uid, data))
    return result


async def change_message(ctx, folder, uid):
    mailbox, box, info, _ = await _message(ctx, folder, uid)
    for key, flag in (("seen", "\\Seen"), ("flagged", "\\Flagged")):
        if key in ctx.body:
            await mailbox.set_flags(box, [uid], [flag], "add" if ctx.body[key] else "remove")
    _, _, info, data = await _message(ctx, folder, uid)
    return mime.summary(box.name, info, mime.parse_headers(data))


async def move_message(ctx, folder, uid):
    mailbox, box, _, _ = await _message(ctx, folder, uid)
    target = ctx.body["to"]
    await _folder(ctx, mailbox, target)
    if target == box.name:
        raise invalid("the message is already in that folder", "to")
    _, pairs = await mailbox.copy(box, [uid], target, move=True)
    return {"folder": target, "uid": pairs[0][1] if pairs else None}


async def delete_message(ctx, folder, uid):
    """Into Trash; from Trash (or with ?purge=1), gone for good."""
    mailbox, box, _, _ = await _message(ctx, folder, uid)
    if box.name == "Trash" or ctx.query.get("purge") == "1":
        await mailbox.expunge(box, [uid])
        return {"deleted": True}
    try:
        await mailbox.folder("Trash")
    except NotFound:
        await mailbox.expunge(box, [uid])
        return {"deleted": True}
    _, pairs = await mailbox.copy(box, [uid], "Trash", move=True)
    return {"deleted": False, "folder": "Trash", "uid": pairs[0][1] if pairs else None}


def _download_name(name: str | None, fallback: str) -> str:
    name = (name or fallback).replace('"', "").replace("\\", "").replace("\r", "").replace("\n", "")
    return "".join(c if 32 <= ord(c) < 127 else "_" for c in name) or fallback


async def raw_message(ctx, folder, uid):
    _, _, _, data = await _message(ctx, folder, uid)
    return Response(data, "message/rfc822", headers={
        "Content-Disposition": f'attachment; filename="message-{uid}.eml"'})


async def message_part(ctx, folder, uid, index):
    _, _, _, data = await _message(ctx, folder, uid)
    found = mime.attachment(mime.parse(data), index)
    if found is None:
        raise not_found(f"message {uid} has no attachment {index}")
    part, payload = found
    disposition = "attachment" if ctx.query.get("download") == "1" else "inline"
    content_type = part.content_type
    if content_type.startswith("text/") or content_type.endswith("xml") or "html" in content_type:
        # never let a mail attachment run as a page of this site
        disposition = "attachment"
    return Response(payload, content_type, ranged=True, headers={
        "Content-Disposition": f'{disposition}; filename="{_download_name(part.filename, f"part-{index}")}"'})


async def message_audio(ctx, folder, uid):
    _, _, _, data = await _message(ctx, folder, uid)
    found = mime.first_attachment(mime.parse(data), ("audio",))
    if found is None:
        raise not_found(f"message {uid} has no recording")
    part, payload = found
    return Response(payload, part.content_type, ranged=True, headers={
        "Content-Disposition": f'inline; filename="{_download_name(part.filename, "voicemail")}"'})


async def message_html(ctx, folder, uid):
    _, _, _, data = await _message(ctx, folder, uid)
    _, html = mime.body_text(mime.parse(data))
    if html is None:
        raise not_found(f"message {uid} has no HTML body")
    images = ctx.query.get("images") == "1"
    safe, blocked = sanitize_html(html, remote_images=images)
    page = ("<!doctype html><meta charset=utf-8><base target=_blank>"
            "<style>body{font-family:sans-serif;margin:8px;overflow-wrap:anywhere}"
            "img{max-width:100%;height:auto}</style>" + safe)
    img = "img-src data: cid: https: http:" if images else "img-src data:"
    return Response(page.encode(), "text/html; charset=utf-8", headers={
        "Content-Security-Policy": f"sandbox allow-popups allow-popups-to-escape-sandbox; "
                                   f"default-src 'none'; style-src 'unsafe-inline'; {img}; "
                                   f"frame-ancestors 'self'",
        "X-Blocked-Images": str(blocked)})


async def fax_page(ctx, folder, uid, page):
    _, box, info, data = await _message(ctx, folder, uid)
    pages = await faxview.previews(ctx.node.reactor, ctx.account_id, box, uid, data)
    if not 1 <= page <= len(pages):
        raise not_found(f"fax {uid} has no page {page}")
    return Response(pages[page - 1], "image/png", headers={"Cache-Control": "private, max-age=3600"})


async def fax_document(ctx, folder, uid):
    _, box, _, data = await _message(ctx, folder, uid)
    pdf = await faxview.as_pdf(data)
    if pdf is None:
        raise not_found(f"message {uid} has no fax document")
    disposition = "attachment" if ctx.query.get("download") == "1" else "inline"
    return Response(pdf, "application/pdf", headers={
        "Content-Disposition": f'{disposition}; filename="fax-{uid}.pdf"'})


# --- compose -------------------------------------------------------------

async def send_message(ctx):
    body = ctx.body
    account = await ctx.node.store.accounts.get_account(ctx.account_id)
    recipients = [r.strip() for r in body.get("to", []) + body.get("cc", []) if r.strip()]
    if not recipients:
        raise invalid("give at least one recipient", "to")
    for address in recipients:
        _, parsed = email.utils.parseaddr(address)
        if not parsed or "@" not in parsed or any(c in parsed for c in "\r\n<>,"):
            raise invalid(f"{address!r} is not an e-mail address", "to")
    domain = ctx.node.mailboxes.domain
    sender = account.email or f"{account.id}@{domain}"
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = ", ".join(r.strip() for r in body.get("to", []) if r.strip())
    if body.get("cc"):
        message["Cc"] = ", ".join(r.strip() for r in body["cc"] if r.strip())
    subject = body.get("subject", "")
    message["Date"] = email.utils.format_datetime(
        dt.datetime.fromtimestamp(ctx.now, dt.timezone.utc))
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    original = None
    if body.get("reply_uid") is not None or body.get("forward_uid") is not None:
        mode = "reply" if body.get("reply_uid") is not None else "forward"
        folder_name = body.get(f"{mode}_folder") or "INBOX"
        mailbox, box, info, data = await _message(ctx, folder_name, body[f"{mode}_uid"])
        original = mime.parse(data)
        if mode == "reply":
            reference = str(original.get("Message-ID", "")).strip()
            if reference:
                message["In-Reply-To"] = reference
                message["References"] = (str(original.get("References", "")) + " " + reference).strip()
    message["Subject"] = subject
    message.set_content(body.get("text", ""))
    if original is not None and body.get("forward_uid") is not None:
        for part, leaf in mime.attachments(original):
            maintype, _, subtype = part.content_type.partition("/")
            message.add_attachment(leaf.get_payload(decode=True) or b"", maintype=maintype,
                                   subtype=subtype, filename=part.filename or f"part-{part.index}")
    data = message.as_bytes()
    try:
        result = await submit(ctx.node, account.id, sender, recipients, data)
    except OutboundUnavailable as exc:
        raise ApiError(503, "outbound_unavailable", str(exc)) from None
    except MailboxFull as exc:
        raise ApiError(507, "mailbox_full", str(exc)) from None
    if body.get("reply_uid") is not None:
        await mailbox.set_flags(box, [body["reply_uid"]], ["\\Answered"], "add")
    return result


# --- settings ------------------------------------------------------------

_SETTINGS = ("email", "language", "timezone", "attachment_format", "fax_format", "forward_mode",
             "forward_address", "greeting")


def _settings(account) -> dict:
    return {name: getattr(account, name) for name in _SETTINGS} | {
        "account_id": account.id, "pin_set": account.pin_hash is not None}


async def get_settings(ctx):
    account = await ctx.node.store.accounts.get_account(ctx.account_id)
    data = _settings(account)
    data["choices"] = {name: list(values) for name, values in CHOICES.items()}
    data["choices"]["language"] = list(ctx.node.config.prompts.languages)
    return data


async def change_settings(ctx):
    values = dict(ctx.body)
    if "language" in values and values["language"] not in ctx.node.config.prompts.languages:
        raise invalid(f"language must be one of {', '.join(ctx.node.config.prompts.languages)}",
                      "language")
    if not values:
        raise invalid("nothing to change")
    for name, value in values.items():
        try:
            check_preference(name, value)
        except InvalidValue as exc:
            raise invalid(str(exc), name) from None
    try:
        account = await ctx.node.accounts.set_preferences(ctx.account_id, **values)
    except InvalidValue as exc:
        raise invalid(str(exc)) from None
    except AlreadyExists as exc:
        raise ApiError(409, "conflict", str(exc), "email") from None
    return _settings(account)


async def change_secrets(ctx):
    body = ctx.body
    if body.get("pin") is None and body.get("password") is None:
        raise invalid("give a new pin or a new password")
    try:
        await ctx.node.accounts.authenticate(ctx.account_id, body["current_password"],
                                             source=ctx.client)
    except LoginRefused as exc:
        if exc.locked_until > ctx.now:
            raise ApiError(429, "locked", "too many failed attempts; try again later") from None
        raise ApiError(403, "wrong_password", "the current password is wrong",
                       "current_password") from None
    try:
        account = await ctx.node.accounts.set_secrets(ctx.account_id, pin=body.get("pin"),
                                                      password=body.get("password"))
    except InvalidValue as exc:
        raise invalid(str(exc), "pin" if str(exc).startswith("PIN") else "password") from None
    result = {"pin_changed": body.get("pin") is not None,
              "password_changed": body.get("password") is not None}
    if result["password_changed"]:
        # other sessions end with the old password; this one goes on
        token, session = ctx.signer.issue("user", account.id, ctx.now, account.password_hash)
        ctx.set_cookie(USER_COOKIE, token, LIFETIME)
        result["csrf_token"] = ctx.signer.csrf_token(session)
    return result


# --- greetings -----------------------------------------------------------

def _kind(kind: str) -> str:
    if kind not in GREETING_KINDS:
        raise not_found(f"no greeting kind {kind!r}; kinds are {', '.join(GREETING_KINDS)}")
    return kind


async def list_greetings(ctx):
    account = await ctx.node.store.accounts.get_account(ctx.account_id)
    result = []
    for kind in GREETING_KINDS:
        audio = await ctx.node.store.accounts.get_greeting(account.id, kind)
        seconds = greeting_seconds(audio) if audio else None
        result.append({"kind": kind, "present": bool(audio), "seconds": seconds})
    return {"greetings": result, "greeting": account.greeting}


def upload_format(ctx) -> str | None:
    declared = ctx.query.get("format") or None
    if declared is not None and declared not in RAW_FORMATS:
        raise invalid(f"format is only for headerless audio: one of {', '.join(sorted(RAW_FORMATS))}",
                      "format")
    return declared


async def convert_upload(ctx) -> bytes:
    if not ctx.raw:
        raise invalid("send the audio file as the request body")
    declared = upload_format(ctx)
    try:
        return await threads.deferToThread(upload_to_au, ctx.raw, declared)
    except AudioFormatError as exc:
        raise ApiError(415, "unsupported_audio", str(exc)) from None


async def put_greeting(ctx, kind):
    """Greetings are kept as headerless 8 kHz u-law, as the phone menus record them and the
    voicemail deposit plays them (prompts, unlike greetings, are .au files)."""
    kind = _kind(kind)
    _, ulaw = read_au(await convert_upload(ctx))
    await ctx.node.store.accounts.store_greeting(ctx.account_id, kind, ulaw)
    return {"kind": kind, "present": True, "seconds": greeting_seconds(ulaw)}


def greeting_seconds(audio: bytes) -> float:
    header = 24 if audio[:4] == b".snd" else 0
    return round(max(0, len(audio) - header) / 8000, 1)


def au_as_wav(audio: bytes) -> bytes:
    """A prompt (.au) or a greeting (headerless u-law) as WAV for the browser."""
    if audio[:4] == b".snd":
        return pcm16_to_wav(au_to_pcm16(audio))
    return ulaw_to_wav(audio)


async def get_greeting(ctx, kind):
    kind = _kind(kind)
    audio = await ctx.node.store.accounts.get_greeting(ctx.account_id, kind)
    if not audio:
        raise not_found(f"no {kind} greeting recorded")
    return Response(au_as_wav(audio), "audio/wav", ranged=True)


async def delete_greeting(ctx, kind):
    kind = _kind(kind)
    await ctx.node.store.accounts.delete_greeting(ctx.account_id, kind)
    return {"kind": kind, "present": False}


_MESSAGE = "/api/v1/folders/{folder}/messages/{uid}"
_LIMIT = Param("limit", f"messages per page (default {PAGE_SIZE}, at most 200)", "integer", "query", False)
_BEFORE = Param("before", "only messages with a smaller UID (paging)", "integer", "query", False)
_DOWNLOAD = Param("download", "1: as an attachment rather than inline", "string", "query", False)

ROUTES = [
    Route("POST", "/api/v1/session", sign_in, PUBLIC, "Sign in with account ID or e-mail and password",
          "session", body=[Field("login", "string", "account ID, alias or e-mail address", True, max_length=200),
                           Field("password", "string", "password", True, max_length=200)]),
    Route("GET", "/api/v1/session", current_session, USER, "The signed-in subscriber and CSRF token", "session"),
    Route("DELETE", "/api/v1/session", sign_out, USER, "Sign out", "session"),
    Route("GET", "/api/v1/folders", list_folders, USER, "Folders with message counts, and quota", "mailbox"),
    Route("GET", "/api/v1/folders/{folder}/messages", list_messages, USER,
          "Messages of a folder, newest first", "mailbox", params=[_FOLDER, _LIMIT, _BEFORE]),
    Route("GET", _MESSAGE, get_message, USER, "One message: headers, text, attachments", "mailbox",
          params=[_FOLDER, _UID]),
    Route("PATCH", _MESSAGE, change_message, USER, "Mark read/unread or flagged", "mailbox",
          params=[_FOLDER, _UID], body=[Field("seen", "boolean", "read (true) or new (false)"),
                                        Field("flagged", "boolean", "flagged for follow-up")]),
    Route("DELETE", _MESSAGE, delete_message, USER, "Move to Trash, or delete for good from Trash",
          "mailbox", params=[_FOLDER, _UID, Param("purge", "1: delete for good", "string", "query", False)]),
    Route("POST", _MESSAGE + "/move", move_message, USER, "Move to another folder", "mailbox",
          params=[_FOLDER, _UID], body=[Field("to", "string", "target folder", True, max_length=200)]),
    Route("GET", _MESSAGE + "/raw", raw_message, USER, "Download the message (RFC 5322)", "mailbox",
          params=[_FOLDER, _UID], produces="message/rfc822"),
    Route("GET", _MESSAGE + "/parts/{index}", message_part, USER,
          "One attachment (byte ranges supported)", "mailbox",
          params=[_FOLDER, _UID, Param("index", "attachment number from 1", "integer"), _DOWNLOAD],
          produces="application/octet-stream"),
    Route("GET", _MESSAGE + "/audio", message_audio, USER,
          "The recording of a voice message (WAV or MP3; byte ranges supported)", "mailbox",
          params=[_FOLDER, _UID], produces="audio/*"),
    Route("GET", _MESSAGE + "/html", message_html, USER,
          "The HTML body, sanitized, for a sandboxed frame", "mailbox",
          params=[_FOLDER, _UID, Param("images", "1: load remote images", "string", "query", False)],
          produces="text/html"),
    Route("GET", _MESSAGE + "/pages/{page}", fax_page, USER, "A fax page as a PNG image", "mailbox",
          params=[_FOLDER, _UID, Param("page", "page number from 1", "integer")], produces="image/png"),
    Route("GET", _MESSAGE + "/document", fax_document, USER, "The fax as PDF", "mailbox",
          params=[_FOLDER, _UID, _DOWNLOAD], produces="application/pdf"),
    Route("POST", "/api/v1/messages", send_message, USER,
          "Send an e-mail (a copy goes to Sent); reply or forward", "compose", status=201, body=[
              Field("to", "array", "recipients", True, max_length=300),
              Field("cc", "array", "copy recipients", max_length=300),
              Field("subject", "string", "subject", max_length=500),
              Field("text", "string", "message text", max_length=200_000),
              Field("reply_folder", "string", "folder of the message replied to", max_length=200),
              Field("reply_uid", "integer", "UID of the message replied to"),
              Field("forward_folder", "string", "folder of the message forwarded", max_length=200),
              Field("forward_uid", "integer", "UID of the message forwarded with its attachments")]),
    Route("GET", "/api/v1/settings", get_settings, USER, "Preferences and their choices", "settings"),
    Route("PATCH", "/api/v1/settings", change_settings, USER, "Change preferences", "settings", body=[
        Field("email", "string", "e-mail address (also a login name)", nullable=True, max_length=200),
        Field("language", "string", "prompt language", max_length=10),
        Field("timezone", "string", "time zone, e.g. America/New_York", max_length=64),
        Field("attachment_format", "string", "voice attachments", enum=CHOICES["attachment_format"]),
        Field("fax_format", "string", "fax documents", enum=CHOICES["fax_format"]),
        Field("forward_mode", "string", "forward new messages", enum=CHOICES["forward_mode"]),
        Field("forward_address", "string", "where forwarded messages go", nullable=True, max_length=200),
        Field("greeting", "string", "which greeting callers hear", enum=CHOICES["greeting"])]),
    Route("POST", "/api/v1/settings/secrets", change_secrets, USER,
          "Change the PIN and/or the password (needs the current password)", "settings", body=[
              Field("current_password", "string", "the current password", True, max_length=200),
              Field("pin", "string", "new voicemail PIN (digits)", max_length=20),
              Field("password", "string", "new password (at least 6 characters)", max_length=200)]),
    Route("GET", "/api/v1/greetings", list_greetings, USER, "Which greetings are recorded", "greetings"),
    Route("GET", "/api/v1/greetings/{kind}", get_greeting, USER, "A greeting as WAV", "greetings",
          params=[Param("kind", "unavailable, busy or name")], produces="audio/wav"),
    Route("PUT", "/api/v1/greetings/{kind}", put_greeting, USER,
          "Upload a greeting in any common audio format (converted to 8 kHz u-law)", "greetings",
          params=[Param("kind", "unavailable, busy or name"),
                  Param("format", "for headerless audio only: s16le, ulaw, alaw or gsm", "string",
                        "query", False)], upload=True),
    Route("DELETE", "/api/v1/greetings/{kind}", delete_greeting, USER, "Remove a greeting", "greetings",
          params=[Param("kind", "unavailable, busy or name")]),
]
