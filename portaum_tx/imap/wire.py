"""IMAP wire syntax: command tokens in, response values out.  Pure.

A command reaches :func:`tokenize` complete, literals included inline as
``{n}\\r\\n<n bytes>`` (the framer has already checked their sizes), so the
tokenizer never waits for data.
"""

from __future__ import annotations

import base64
import re
from typing import Iterable


class CommandSyntaxError(ValueError):
    """A command does not follow the IMAP grammar; the text says where."""


class Atom(str):
    """An unquoted word (command names, flags, fetch attributes, NIL)."""


class Raw(bytes):
    """Bytes written to a response as they are."""


_ATOM_END = b' ()"{\r\n'
_LITERAL = re.compile(rb"\{(\d{1,12})(\+?)\}\r?\n")


def tokenize(data: bytes) -> list:
    """Split a command into atoms (:class:`Atom`), strings (``bytes``) and
    parenthesised lists (``list``)."""
    stack: list[list] = [[]]
    i, n = 0, len(data)
    while i < n:
        c = data[i:i + 1]
        if c in (b" ", b"\r", b"\n"):
            i += 1
        elif c == b"(":
            stack.append([])
            i += 1
        elif c == b")":
            if len(stack) == 1:
                raise CommandSyntaxError(f"unbalanced ')' at offset {i}")
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif c == b'"':
            i, value = _quoted(data, i)
            stack[-1].append(value)
        elif c == b"{":
            match = _LITERAL.match(data, i)
            if not match:
                raise CommandSyntaxError(f"malformed literal at offset {i}")
            size = int(match.group(1))
            start = match.end()
            if start + size > n:
                raise CommandSyntaxError("literal shorter than announced")
            stack[-1].append(data[start:start + size])
            i = start + size
        else:
            i, word = _atom(data, i)
            stack[-1].append(Atom(word))
    if len(stack) != 1:
        raise CommandSyntaxError("unbalanced '(': missing ')'")
    return stack[0]


def _quoted(data: bytes, i: int) -> tuple[int, bytes]:
    out = bytearray()
    i += 1
    while i < len(data):
        c = data[i]
        if c == 0x5C:  # backslash
            if i + 1 >= len(data):
                break
            out.append(data[i + 1])
            i += 2
        elif c == 0x22:
            return i + 1, bytes(out)
        elif c in (0x0D, 0x0A):
            raise CommandSyntaxError("line break inside a quoted string")
        else:
            out.append(c)
            i += 1
    raise CommandSyntaxError("unterminated quoted string")


def _atom(data: bytes, i: int) -> tuple[int, str]:
    start = i
    depth = 0
    while i < len(data):
        c = data[i:i + 1]
        if c == b"[":
            depth += 1
        elif c == b"]":
            depth = max(0, depth - 1)
        elif depth == 0 and c in _ATOM_END:
            break
        elif depth and c in b"\r\n":
            raise CommandSyntaxError("unterminated '[' in an atom")
        i += 1
    if depth:
        raise CommandSyntaxError("unterminated '[' in an atom")
    word = data[start:i]
    try:
        # Strictly atoms are ASCII, but common clients send UTF-8 search
        # strings unquoted; taking them is kinder than refusing.
        return i, word.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandSyntaxError("non-UTF-8 characters in an atom") from None


def astring(token) -> str:
    """An astring argument as text (UTF-8, as LITERAL+ clients send it)."""
    if isinstance(token, Atom):
        return str(token)
    if isinstance(token, bytes):
        try:
            return token.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandSyntaxError("string is not UTF-8") from None
    raise CommandSyntaxError("expected a string, got a list")


# --- sequence sets ------------------------------------------------------------

_SEQ_RANGE = re.compile(r"(\d+|\*)(?::(\d+|\*))?")


class SequenceSet:
    """``1:4,7,9:*``; ``*`` is resolved against the largest number in use."""

    def __init__(self, text: str):
        self.ranges: list[tuple[int | None, int | None]] = []
        if not text:
            raise CommandSyntaxError("empty sequence set")
        for item in text.split(","):
            match = _SEQ_RANGE.fullmatch(item)
            if not match:
                raise CommandSyntaxError(f"bad sequence set {text!r}")
            low = None if match.group(1) == "*" else int(match.group(1))
            high = low if match.group(2) is None else (
                None if match.group(2) == "*" else int(match.group(2)))
            if low == 0 or high == 0:
                raise CommandSyntaxError(f"message numbers start at 1: {text!r}")
            self.ranges.append((low, high))

    def contains(self, number: int, star: int) -> bool:
        for low, high in self.ranges:
            lo = star if low is None else low
            hi = star if high is None else high
            if lo > hi:
                lo, hi = hi, lo
            if lo <= number <= hi:
                return True
        return False

    def select(self, numbers: Iterable[int], star: int) -> list[int]:
        return [n for n in numbers if self.contains(n, star)]

    def max_explicit(self) -> int:
        return max((x for r in self.ranges for x in r if x is not None), default=0)


def is_sequence_set(token) -> bool:
    return isinstance(token, Atom) and bool(re.fullmatch(r"[\d*:,]+", token))


# --- rendering ------------------------------------------------------------------

def quoted(text: str | bytes) -> bytes:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def nstring(value: str | bytes | None) -> bytes:
    if value is None:
        return b"NIL"
    data = value.encode("utf-8") if isinstance(value, str) else value
    if len(data) > 200 or re.search(rb"[\x00\r\n\x80-\xff]", data):
        return literal(data)
    return quoted(data)


def render(value) -> bytes:
    """A Python value as an IMAP response value."""
    if value is None:
        return b"NIL"
    if isinstance(value, Raw):
        return bytes(value)
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, (str, bytes)):
        return nstring(value)
    if isinstance(value, (list, tuple)):
        return b"(" + b" ".join(render(item) for item in value) + b")"
    raise TypeError(f"cannot render {type(value).__name__} in an IMAP response")


# --- mailbox names: modified UTF-7 (RFC 3501 5.1.3) on the wire, text in the store ---

def encode_mailbox(name: str) -> str:
    out, pending = [], []

    def flush():
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()
    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def decode_mailbox(text: str) -> str:
    if "&" not in text:
        return text
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "&":
            out.append(char)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise CommandSyntaxError(f"bad modified UTF-7 in mailbox name {text[:60]!r}")
        chunk = text[i + 1:end]
        if not chunk:
            out.append("&")
        else:
            try:
                padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
                out.append(base64.b64decode(padded, validate=True).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError):
                raise CommandSyntaxError(
                    f"bad modified UTF-7 in mailbox name {text[:60]!r}") from None
        i = end + 1
    return "".join(out)


def mailbox_arg(token) -> str:
    """A mailbox name argument as text.  Names in modified UTF-7 are decoded;
    raw UTF-8 (sent by some clients) is taken as it is."""
    text = astring(token)
    return decode_mailbox(text) if text.isascii() else text


def mailbox_name(name: str) -> bytes:
    """A mailbox name in a LIST/STATUS response, in modified UTF-7."""
    return nstring(encode_mailbox(name))
