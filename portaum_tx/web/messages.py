"""What the web shows of a stored MIME message: a summary line, the text, the parts.

Voice and fax messages carry ``X-Portaum-*`` headers (see
:mod:`portaum_tx.mailbox.compose`), so the list needs only the headers.
Attachments are numbered in walk order so the browser can ask for one.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import email.utils
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser

from ..store import MessageInfo
from ..store.mailbox import ANSWERED, FLAGGED, SEEN

_POLICY = email.policy.default


@dataclasses.dataclass(frozen=True)
class Part:
    index: int
    content_type: str
    filename: str | None
    size: int


def _text(value) -> str:
    return "" if value is None else str(value)


def parse_headers(data: bytes) -> EmailMessage:
    return BytesHeaderParser(policy=_POLICY).parsebytes(data)


def parse(data: bytes) -> EmailMessage:
    return BytesParser(policy=_POLICY).parsebytes(data)


def _header(message, name: str) -> str:
    try:
        return _text(message.get(name, "")).strip()
    except Exception:  # a malformed header must not hide the message
        raw = message.get_all(name, failobj=[""])
        return _text(raw[0]).strip() if raw else ""


def _int_header(message, name: str) -> int | None:
    value = _header(message, name)
    return int(value) if value.isdigit() else None


def summary(folder: str, info: MessageInfo, message) -> dict:
    """The list row for a message (``message`` may hold only the headers)."""
    kind = info.kind if info.kind in ("voice", "fax") else "email"
    sender = _header(message, "From")
    name, address = email.utils.parseaddr(sender)
    caller = _header(message, "X-Portaum-Caller")
    return {
        "folder": folder,
        "uid": info.uid,
        "kind": kind,
        "from": caller or name or address or sender,
        "from_address": address,
        "to": _header(message, "To"),
        "subject": _header(message, "Subject"),
        "date": info.internal_date,
        "size": info.size,
        "duration": _int_header(message, "X-Portaum-Duration") if kind == "voice" else None,
        "pages": _int_header(message, "X-Portaum-Pages") if kind == "fax" else None,
        "seen": bool(info.flags & SEEN),
        "answered": bool(info.flags & ANSWERED),
        "flagged": bool(info.flags & FLAGGED),
        "urgent": info.urgent,
    }


def attachments(message: EmailMessage) -> list[tuple[Part, EmailMessage]]:
    """Leaf parts that are not the message text, numbered from 1."""
    found = []
    body_parts = set()
    for candidate in (message.get_body(("plain",)), message.get_body(("html",))):
        if candidate is not None:
            body_parts.add(id(candidate))
    index = 0
    for part in message.walk():
        if part.is_multipart() or id(part) in body_parts:
            continue
        index += 1
        payload = part.get_payload(decode=True) or b""
        found.append((Part(index, part.get_content_type(), part.get_filename(), len(payload)), part))
    return found


def attachment(message: EmailMessage, index: int) -> tuple[Part, bytes] | None:
    for part, leaf in attachments(message):
        if part.index == index:
            return part, leaf.get_payload(decode=True) or b""
    return None


def body_text(message: EmailMessage) -> tuple[str, str | None]:
    """``(plain text, html or None)`` of the message body."""
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    text = ""
    if plain is not None:
        try:
            text = plain.get_content()
        except (LookupError, ValueError, AssertionError):
            text = (plain.get_payload(decode=True) or b"").decode("utf-8", "replace")
    html_text = None
    if html is not None:
        try:
            html_text = html.get_content()
        except (LookupError, ValueError, AssertionError):
            html_text = (html.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return text, html_text


def detail(folder: str, info: MessageInfo, data: bytes) -> dict:
    message = parse(data)
    result = summary(folder, info, message)
    text, html = body_text(message)
    result.update(
        cc=_header(message, "Cc"),
        reply_to=_header(message, "Reply-To"),
        message_id=_header(message, "Message-ID"),
        text=text,
        has_html=html is not None,
        attachments=[dataclasses.asdict(part) for part, _ in attachments(message)],
    )
    return result


def first_attachment(message: EmailMessage, maintypes: tuple[str, ...]) -> tuple[Part, bytes] | None:
    for part, leaf in attachments(message):
        if part.content_type.split("/")[0] in maintypes or part.content_type in maintypes:
            return part, leaf.get_payload(decode=True) or b""
    return None
