"""MIME for voice and fax messages.

A voice message is an e-mail whose attachment is the recording, a fax one
whose attachment is the document, so any mail client can read both.  The
RFC 3458 ``Message-Context`` header tells clients (and our MWI counting)
what the message is; ``X-Portaum-*`` headers carry the details the web and
phone interfaces show without parsing the body.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
from email.message import EmailMessage
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_POLICY = email.policy.SMTP.clone(max_line_length=78)

AUDIO_TYPES = {"wav": ("audio", "wav"), "mp3": ("audio", "mpeg")}
FAX_TYPES = {"pdf": ("application", "pdf"), "tiff": ("image", "tiff")}


def _zone(name: str):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def spoken_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    parts = []
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    if seconds or not minutes:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return " ".join(parts)


def _caller_label(caller: str | None, caller_name: str | None) -> str:
    if caller_name and caller:
        return f"{caller_name} ({caller})"
    return caller or caller_name or "an unknown caller"


def _base(kind: str, mailbox: str, domain: str, when: dt.datetime, timezone: str,
          subject: str, caller: str | None, caller_name: str | None) -> EmailMessage:
    local = when.astimezone(_zone(timezone))
    message = EmailMessage(policy=_POLICY)
    sender_user = caller if caller and caller.replace("+", "").isdigit() else "unknown"
    message["From"] = email.utils.formataddr((_caller_label(caller, caller_name),
                                              f"{sender_user}@{domain}"))
    message["To"] = f"{mailbox}@{domain}"
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(local)
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    message["Message-Context"] = f"{kind}-message"
    message["X-Portaum-Type"] = kind
    if caller:
        message["X-Portaum-Caller"] = caller
    return message


def build_voice_message(*, mailbox: str, domain: str, timezone: str, when: dt.datetime,
                        duration: float, audio: bytes, audio_format: str,
                        caller: str | None = None, caller_name: str | None = None,
                        urgent: bool = False) -> bytes:
    """A voice message as RFC 5322 bytes with the recording attached."""
    if audio_format not in AUDIO_TYPES:
        raise ValueError(f"unknown audio format {audio_format!r}")
    local = when.astimezone(_zone(timezone))
    label = _caller_label(caller, caller_name)
    length = spoken_duration(duration)
    message = _base("voice", mailbox, domain, when, timezone,
                    f"{'Urgent v' if urgent else 'V'}oice message from {label} ({length})",
                    caller, caller_name)
    message["X-Portaum-Duration"] = str(int(round(duration)))
    if urgent:
        message["Importance"] = "high"
        message["Priority"] = "urgent"
    message.set_content(
        f"You have a new {'urgent ' if urgent else ''}voice message in mailbox {mailbox}.\n\n"
        f"From:     {label}\n"
        f"Received: {local.strftime('%A, %d %B %Y at %H:%M')} ({timezone})\n"
        f"Length:   {length}\n\n"
        f"The recording is attached.\n")
    maintype, subtype = AUDIO_TYPES[audio_format]
    stamp = local.strftime("%Y%m%d-%H%M%S")
    message.add_attachment(audio, maintype=maintype, subtype=subtype,
                           filename=f"voicemail-{stamp}.{audio_format}")
    return message.as_bytes()


def build_fax_message(*, mailbox: str, domain: str, timezone: str, when: dt.datetime,
                      document: bytes, document_format: str, pages: int,
                      remote_ident: str | None = None, caller: str | None = None,
                      bit_rate: int | None = None, duration: float | None = None,
                      complete: bool = True) -> bytes:
    """A received fax as RFC 5322 bytes with the document attached."""
    if document_format not in FAX_TYPES:
        raise ValueError(f"unknown fax format {document_format!r}")
    local = when.astimezone(_zone(timezone))
    sender = remote_ident or caller or "an unknown sender"
    state = "" if complete else " (incomplete)"
    message = _base("fax", mailbox, domain, when, timezone,
                    f"Fax from {sender}, {pages} page{'s' if pages != 1 else ''}{state}",
                    caller, remote_ident)
    message["X-Portaum-Pages"] = str(pages)
    if remote_ident:
        message["X-Portaum-Station-ID"] = remote_ident
    if not complete:
        message["X-Portaum-Incomplete"] = "yes"
    lines = [f"You have received a fax in mailbox {mailbox}.", "",
             f"From station: {remote_ident or 'not given'}",
             f"Caller:       {caller or 'unknown'}",
             f"Received:     {local.strftime('%A, %d %B %Y at %H:%M')} ({timezone})",
             f"Pages:        {pages}"]
    if bit_rate:
        lines.append(f"Rate:         {bit_rate} bit/s")
    if duration is not None:
        lines.append(f"Duration:     {spoken_duration(duration)}")
    if not complete:
        lines += ["", "The transmission broke off; the pages received are attached."]
    message.set_content("\n".join(lines) + "\n")
    maintype, subtype = FAX_TYPES[document_format]
    message.add_attachment(document, maintype=maintype, subtype=subtype,
                           filename=f"fax-{local.strftime('%Y%m%d-%H%M%S')}.{document_format}")
    return message.as_bytes()
