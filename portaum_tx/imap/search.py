"""SEARCH keys (RFC 3501 6.4.4): parsed once into a predicate.  Pure.

A predicate takes a :class:`Candidate`; keys that need the message text ask
the candidate for it, so searches on flags, sizes and dates never load bodies
(:attr:`Query.needs_text` tells the server whether to fetch them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import email.utils
from typing import Callable

from ..mailbox import flags as flagnames
from .mime import Part, decoded_header
from .wire import Atom, CommandSyntaxError, SequenceSet, is_sequence_set

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


class SearchError(CommandSyntaxError):
    """A SEARCH program is malformed; the text names the key."""


@dataclasses.dataclass
class Candidate:
    seq: int
    uid: int
    size: int
    internal_date: int
    flags: int
    keywords: tuple[str, ...]
    recent: bool
    raw: bytes | None = None
    _part: Part | None = None

    @property
    def part(self) -> Part:
        if self._part is None:
            self._part = Part(self.raw or b"")
        return self._part


Predicate = Callable[[Candidate], bool]


@dataclasses.dataclass
class Query:
    predicate: Predicate
    needs_text: bool


def parse_date(token) -> dt.date:
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else str(token)
    try:
        day, month, year = text.split("-")
        return dt.date(int(year), _MONTHS.index(month.lower()) + 1, int(day))
    except (ValueError, IndexError):
        raise SearchError(f"bad date {text!r}; expected e.g. 1-Feb-2026") from None


def _text(token, charset: str) -> str:
    if isinstance(token, list):
        raise SearchError("expected a string, got a list")
    if isinstance(token, bytes):
        try:
            return token.decode(charset).lower()
        except (UnicodeDecodeError, LookupError):
            raise SearchError(f"search string is not valid {charset}") from None
    return str(token).lower()


def _sent_date(candidate: Candidate) -> dt.date | None:
    value = candidate.part.headers.get("Date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(str(value)).date()
    except (TypeError, ValueError, IndexError):
        return None


def _internal(candidate: Candidate) -> dt.date:
    return dt.datetime.fromtimestamp(candidate.internal_date, dt.timezone.utc).date()


def body_text(candidate: Candidate) -> str:
    """The body as a reader sees it: text parts decoded, attachments skipped."""
    message = email.message_from_bytes(candidate.raw or b"", policy=email.policy.default)
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            try:
                texts.append(part.get_content())
            except Exception:
                payload = part.get_payload(decode=True) or b""
                texts.append(payload.decode("utf-8", "replace"))
    return "\n".join(texts).lower()


class _Parser:
    def __init__(self, tokens: list, charset: str, max_seq: int, max_uid: int, uid_of):
        self.tokens = list(tokens)
        self.charset = charset
        self.max_seq = max_seq
        self.max_uid = max_uid
        self.uid_of = uid_of
        self.needs_text = False

    def take(self, what: str):
        if not self.tokens:
            raise SearchError(f"{what} needs an argument")
        return self.tokens.pop(0)

    def all(self) -> Predicate:
        keys = []
        while self.tokens:
            keys.append(self.key())
        if not keys:
            raise SearchError("empty search program")
        return _and(keys)

    def key(self) -> Predicate:
        if not self.tokens:
            raise SearchError("a search key is missing")
        token = self.tokens.pop(0)
        if isinstance(token, list):
            inner = _Parser(token, self.charset, self.max_seq, self.max_uid, self.uid_of)
            predicate = inner.all()
            self.needs_text |= inner.needs_text
            return predicate
        if is_sequence_set(token):
            numbers = SequenceSet(token)
            star = self.max_seq
            return lambda c: numbers.contains(c.seq, star)
        if not isinstance(token, Atom):
            raise SearchError("expected a search key, got a string")
        name = token.upper()
        flag_keys = {"ANSWERED": flagnames.ANSWERED, "DELETED": flagnames.DELETED,
                     "DRAFT": flagnames.DRAFT, "FLAGGED": flagnames.FLAGGED,
                     "SEEN": flagnames.SEEN}
        if name == "ALL":
            return lambda c: True
        if name in flag_keys:
            bit = flag_keys[name]
            return lambda c: bool(c.flags & bit)
        if name.startswith("UN") and name[2:] in flag_keys:
            bit = flag_keys[name[2:]]
            return lambda c: not c.flags & bit
        if name == "NEW":
            return lambda c: c.recent and not c.flags & flagnames.SEEN
        if name == "OLD":
            return lambda c: not c.recent
        if name == "RECENT":
            return lambda c: c.recent
        if name in ("KEYWORD", "UNKEYWORD"):
            word = _text(self.take(name), "ascii")
            present = name == "KEYWORD"
            if word.startswith("\\"):
                bits, _ = _system_bits(word)
                return lambda c: bool(c.flags & bits) == present
            return lambda c: (word in (k.lower() for k in c.keywords)) == present
        if name in ("LARGER", "SMALLER"):
            try:
                size = int(self.take(name))
            except ValueError:
                raise SearchError(f"{name} needs a number") from None
            return (lambda c: c.size > size) if name == "LARGER" else (lambda c: c.size < size)
        if name in ("BEFORE", "ON", "SINCE"):
            day = parse_date(self.take(name))
            return _date_test(name, day, _internal)
        if name in ("SENTBEFORE", "SENTON", "SENTSINCE"):
            day = parse_date(self.take(name))
            self.needs_text = True
            return _date_test(name[4:], day, _sent_date)
        if name in ("FROM", "TO", "CC", "BCC", "SUBJECT"):
            needle = _text(self.take(name), self.charset)
            self.needs_text = True
            header = name.capitalize() if name != "BCC" else "Bcc"
            return lambda c: needle in decoded_header(c.part, header).lower()
        if name == "HEADER":
            field = _text(self.take(name), "ascii")
            needle = _text(self.take(name), self.charset)
            self.needs_text = True
            return lambda c: (field in (k.lower() for k in c.part.headers.keys())
                              and needle in decoded_header(c.part, field).lower())
        if name == "BODY":
            needle = _text(self.take(name), self.charset)
            self.needs_text = True
            return lambda c: needle in body_text(c)
        if name == "TEXT":
            needle = _text(self.take(name), self.charset)
            self.needs_text = True
            return lambda c: (needle in c.part.header_bytes.decode("utf-8", "replace").lower()
                              or needle in body_text(c))
        if name == "UID":
            token = self.take(name)
            if not is_sequence_set(token):
                raise SearchError("UID needs a sequence set")
            numbers = SequenceSet(token)
            star = self.max_uid
            return lambda c: numbers.contains(c.uid, star)
        if name == "NOT":
            inner = self.key()
            return lambda c: not inner(c)
        if name == "OR":
            if not self.tokens:
                raise SearchError("OR needs two keys")
            left = self.key()
            if not self.tokens:
                raise SearchError("OR needs two keys")
            right = self.key()
            return lambda c: left(c) or right(c)
        raise SearchError(f"unknown search key {token}")


def _system_bits(word: str) -> tuple[int, list]:
    try:
        return flagnames.to_bits([word])
    except ValueError as exc:
        raise SearchError(str(exc)) from None


def _date_test(kind: str, day: dt.date, date_of) -> Predicate:
    def test(candidate: Candidate) -> bool:
        value = date_of(candidate)
        if value is None:
            return False
        if kind == "BEFORE":
            return value < day
        if kind == "ON":
            return value == day
        return value >= day
    return test


def _and(keys: list[Predicate]) -> Predicate:
    if len(keys) == 1:
        return keys[0]
    return lambda c: all(key(c) for key in keys)


def parse_search(tokens: list, *, max_seq: int, max_uid: int) -> tuple[str, Query]:
    """Parse ``[CHARSET x] keys...``; returns the charset and the query."""
    tokens = list(tokens)
    charset = "utf-8"
    if tokens and isinstance(tokens[0], Atom) and tokens[0].upper() == "CHARSET":
        if len(tokens) < 2:
            raise SearchError("CHARSET needs a name")
        name = tokens[1].decode("ascii", "replace") if isinstance(tokens[1], bytes) else str(tokens[1])
        if name.upper() not in ("UTF-8", "US-ASCII"):
            raise UnsupportedCharset(name)
        charset = "utf-8"
        tokens = tokens[2:]
    parser = _Parser(tokens, charset, max_seq, max_uid, None)
    predicate = parser.all()
    return charset, Query(predicate, parser.needs_text)


class UnsupportedCharset(SearchError):
    def __init__(self, name: str):
        super().__init__(f"charset {name} is not supported")
        self.name = name
