"""MIME structure over the raw bytes of a message, for FETCH.

IMAP clients fetch single parts (``BODY[2]``) and decode them themselves, so
every part must be cut out of the stored bytes exactly, not re-serialised:
this module splits a message into a tree of byte ranges and renders ENVELOPE
and BODYSTRUCTURE from it.  Pure: no I/O.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import re
from email.header import Header, decode_header, make_header
from typing import Iterable

from .wire import Raw, nstring, quoted, render

_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)
_MAX_DEPTH = 20


class Part:
    """One MIME entity: its header and body bytes, parsed header, children."""

    def __init__(self, raw: bytes, default_type: str = "text/plain", depth: int = 0):
        self.raw = raw
        split = _header_end(raw)
        self.header_bytes = raw[:split[0]]
        self.body = raw[split[1]:]
        self.headers = _HEADER_PARSER.parsebytes(self.header_bytes)
        content_type = self.headers.get("Content-Type")
        if content_type:
            self.content_type = self.headers.get_content_type()
        else:
            self.content_type = default_type
        self.maintype, _, self.subtype = self.content_type.partition("/")
        self.parts: list[Part] = []
        self.message: Part | None = None  # the inner message of message/rfc822
        if depth >= _MAX_DEPTH:
            return
        if self.maintype == "multipart":
            boundary = self.headers.get_param("boundary")
            if boundary:
                child_type = "message/rfc822" if self.subtype == "digest" else "text/plain"
                self.parts = [Part(chunk, child_type, depth + 1)
                              for chunk in split_multipart(self.body, str(boundary).encode(
                                  "utf-8", "replace"))]
        elif self.content_type == "message/rfc822":
            self.message = Part(self.body, depth=depth + 1)

    def param(self, name: str) -> str | None:
        value = self.headers.get_param(name)
        if value is None:
            return None
        return email.utils.collapse_rfc2231_value(value)

    def part(self, path: Iterable[int]) -> "Part | None":
        """The part numbered ``path`` (1-based, as in ``BODY[1.2]``)."""
        current: Part | None = self
        for number in path:
            if current is None:
                return None
            if current.message is not None and current.maintype != "multipart":
                current = current.message
            if current.maintype != "multipart":
                # A non-multipart entity has exactly one part: its body.
                if number != 1:
                    return None
                continue
            if not 1 <= number <= len(current.parts):
                return None
            current = current.parts[number - 1]
        return current

    def text(self) -> bytes:
        return self.body


def _header_end(raw: bytes) -> tuple[int, int]:
    """``(end of header incl. the blank line's first newline, start of body)``."""
    if raw.startswith(b"\r\n"):
        return 0, 2
    if raw.startswith(b"\n"):
        return 0, 1
    match = re.search(rb"\r?\n\r?\n", raw)
    if not match:
        return len(raw), len(raw)
    return match.end(), match.end()


def split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    """The raw bodies between ``--boundary`` lines (RFC 2046 5.1.1)."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary) + rb"(--)?[ \t]*(?=\r?\n|$)")
    parts = []
    start = None
    for match in delimiter.finditer(body):
        if start is not None:
            parts.append(body[start:match.start()])
        if match.group(1):
            start = None
            break
        end = match.end()
        if body[end:end + 2] == b"\r\n":
            end += 2
        elif body[end:end + 1] == b"\n":
            end += 1
        start = end
    if start is not None:
        parts.append(body[start:])
    return parts


def header_fields(header_bytes: bytes, names: list[str], exclude: bool = False) -> bytes:
    """The header lines named (or, with ``exclude``, not named) plus the blank line."""
    wanted = {name.lower() for name in names}
    out = []
    keep = False
    for line in re.split(rb"(?<=\n)", header_bytes):
        if not line:
            continue
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()
        keep = (name in wanted) != exclude
        if keep:
            out.append(line)
    return b"".join(out) + b"\r\n"


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


# --- ENVELOPE ---------------------------------------------------------------

def _header(part: Part, name: str) -> str | None:
    value = part.headers.get(name)
    return None if value is None else str(value)


def _addresses(part: Part, name: str, fallback: str | None = None):
    values = part.headers.get_all(name) or (part.headers.get_all(fallback) if fallback else None)
    if not values:
        return None
    result = []
    for display, address in email.utils.getaddresses([str(v) for v in values]):
        if not address and not display:
            continue
        local, _, domain = address.rpartition("@") if "@" in address else (address, "", None)
        result.append([display or None, None, local or None, domain])
    return result or None


def envelope(part: Part) -> list:
    sender = _addresses(part, "From")
    return [_header(part, "Date"), _header(part, "Subject"), sender,
            _addresses(part, "Sender") or sender, _addresses(part, "Reply-To") or sender,
            _addresses(part, "To"), _addresses(part, "Cc"), _addresses(part, "Bcc"),
            _header(part, "In-Reply-To"), _header(part, "Message-ID")]


# --- BODYSTRUCTURE ------------------------------------------------------------

def _params(part: Part) -> list | None:
    params = part.headers.get_params()
    if not params:
        return None
    flat = []
    for key, value in params[1:]:
        flat += [key.upper(), email.utils.collapse_rfc2231_value(value)]
    return flat or None


def _disposition(part: Part):
    value = part.headers.get("Content-Disposition")
    if not value:
        return None
    kind = str(value).split(";", 1)[0].strip().upper()
    params = part.headers.get_params(header="Content-Disposition") or []
    flat = []
    for key, val in params[1:]:
        flat += [key.upper(), email.utils.collapse_rfc2231_value(val)]
    return [kind, flat or None]


def _language(part: Part):
    value = part.headers.get("Content-Language")
    if not value:
        return None
    return [item.strip() for item in str(value).split(",") if item.strip()] or None


def body_structure(part: Part, extended: bool = True) -> list:
    if part.maintype == "multipart" and part.parts:
        result: list = [body_structure(child, extended) for child in part.parts]
        result.append(part.subtype.upper())
        if extended:
            result += [_params(part), _disposition(part), _language(part),
                       _header(part, "Content-Location")]
        return result
    maintype = part.maintype.upper() if part.maintype != "multipart" else "TEXT"
    subtype = part.subtype.upper() if part.maintype != "multipart" else "PLAIN"
    encoding = (_header(part, "Content-Transfer-Encoding") or "7BIT").strip().upper()
    result = [maintype, subtype, _params(part) or (["CHARSET", "US-ASCII"] if maintype == "TEXT"
                                                    else None),
              _header(part, "Content-ID"), _header(part, "Content-Description"), encoding,
              len(part.body)]
    if part.content_type == "message/rfc822" and part.message is not None:
        result += [envelope(part.message), body_structure(part.message, extended),
                   count_lines(part.body)]
    elif maintype == "TEXT":
        result.append(count_lines(part.body))
    if extended:
        result += [_header(part, "Content-MD5"), _disposition(part), _language(part),
                   _header(part, "Content-Location")]
    return result


def decoded_header(part: Part, name: str) -> str:
    """A header's text with RFC 2047 words decoded (for SEARCH); raw 8-bit
    header text, common in practice, is taken as UTF-8."""
    texts = []
    for value in part.headers.get_all(name) or []:
        if isinstance(value, Header):
            # compat32 wraps undecodable 8-bit text in a Header; its
            # chunks still hold the original bytes.
            texts.append("".join(
                chunk.encode("ascii", "surrogateescape").decode("utf-8", "replace")
                if isinstance(chunk, str) and not chunk.isascii() else str(chunk)
                for chunk, _ in value._chunks))
            continue
        text = str(value)
        try:
            texts.append(str(make_header(decode_header(text))))
        except Exception:
            texts.append(text)
    return "\n".join(texts)


def render_envelope(part: Part) -> bytes:
    return render(envelope(part))


def render_body_structure(part: Part, extended: bool = True) -> bytes:
    return render(body_structure(part, extended))


__all__ = ["Part", "split_multipart", "header_fields", "envelope", "body_structure",
           "render_envelope", "render_body_structure", "decoded_header", "count_lines",
           "Raw", "nstring", "quoted"]
