"""FETCH attributes: parsing the request and cutting the data.  Pure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from .mime import Part, header_fields, render_body_structure, render_envelope
from .wire import Atom, CommandSyntaxError, literal, render, tokenize

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_MACROS = {"ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
           "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
           "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"]}
_SIMPLE = {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "UID",
           "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
_SECTION = re.compile(r"(BODY(?:\.PEEK)?|BINARY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?",
                      re.IGNORECASE)
_PATH = re.compile(r"(\d+(?:\.\d+)*)?(?:\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME))?"
                   r"(?:\s*(\(.*\)))?\s*$", re.IGNORECASE)


class FetchError(CommandSyntaxError):
    """A FETCH attribute list is malformed; the text names the attribute."""


@dataclasses.dataclass(frozen=True)
class BodySection:
    peek: bool
    path: tuple[int, ...]
    specifier: str          # "", HEADER, TEXT, MIME, HEADER.FIELDS, HEADER.FIELDS.NOT
    fields: tuple[str, ...]
    origin: int | None
    count: int | None
    label: str              # the section as echoed in the response

    def extract(self, root: Part) -> bytes | None:
        part = root.part(self.path) if self.path else root
        if part is None:
            return None
        target = part
        if self.path and self.specifier in ("HEADER", "TEXT", "HEADER.FIELDS",
                                            "HEADER.FIELDS.NOT"):
            target = part.message if part.message is not None else part
        if self.specifier == "":
            data = part.body if self.path else root.raw
        elif self.specifier == "HEADER":
            data = target.header_bytes
        elif self.specifier == "TEXT":
            data = target.body
        elif self.specifier == "MIME":
            data = part.header_bytes
        else:
            data = header_fields(target.header_bytes, list(self.fields),
                                 exclude=self.specifier.endswith(".NOT"))
        if self.origin is not None:
            data = data[self.origin:self.origin + self.count] if self.count is not None \
                else data[self.origin:]
        return data

    def response_name(self) -> bytes:
        name = "BODY[" + self.label + "]"
        if self.origin is not None:
            name += f"<{self.origin}>"
        return name.encode("ascii")


@dataclasses.dataclass
class FetchRequest:
    items: list  # str names and BodySection objects
    needs_data: bool
    sets_seen: bool


def parse_section(text: str) -> BodySection:
    match = _SECTION.fullmatch(text)
    if not match:
        raise FetchError(f"bad fetch attribute {text}")
    peek = ".PEEK" in match.group(1).upper()
    if match.group(1).upper().startswith("BINARY"):
        raise FetchError("BINARY is not supported")
    inside = match.group(2)
    spec = _PATH.match(inside)
    if not spec:
        raise FetchError(f"bad section [{inside}]")
    path = tuple(int(n) for n in spec.group(1).split(".")) if spec.group(1) else ()
    if any(n == 0 for n in path):
        raise FetchError(f"part numbers start at 1: [{inside}]")
    specifier = (spec.group(2) or "").upper()
    fields: tuple[str, ...] = ()
    if specifier.startswith("HEADER.FIELDS"):
        if not spec.group(3):
            raise FetchError(f"{specifier} needs a list of header names")
        names = tokenize(spec.group(3).encode("ascii", "replace"))
        if len(names) != 1 or not isinstance(names[0], list) or not names[0]:
            raise FetchError(f"{specifier} needs a list of header names")
        fields = tuple(n.decode("ascii", "replace") if isinstance(n, bytes) else str(n)
                       for n in names[0])
        label_tail = f"{specifier} ({' '.join(f.upper() for f in fields)})"
    elif spec.group(3):
        raise FetchError(f"unexpected list in section [{inside}]")
    else:
        label_tail = specifier
    if specifier == "MIME" and not path:
        raise FetchError("MIME needs a part number")
    label = ".".join(str(n) for n in path)
    if label and label_tail:
        label += "."
    label += label_tail
    origin = int(match.group(3)) if match.group(3) is not None else None
    count = int(match.group(4)) if match.group(4) is not None else None
    return BodySection(peek, path, specifier, fields, origin, count, label)


def parse_fetch(tokens: list) -> FetchRequest:
    """The attribute list of FETCH (everything after the sequence set)."""
    if len(tokens) == 1 and isinstance(tokens[0], list):
        tokens = tokens[0]
    if not tokens:
        raise FetchError("FETCH needs attributes")
    if len(tokens) == 1 and isinstance(tokens[0], Atom) and tokens[0].upper() in _MACROS:
        tokens = [Atom(name) for name in _MACROS[tokens[0].upper()]]
    items: list = []
    for token in tokens:
        if not isinstance(token, Atom):
            raise FetchError("fetch attributes are atoms")
        upper = token.upper()
        if upper in _SIMPLE:
            items.append(upper)
        elif "[" in upper:
            items.append(parse_section(str(token)))
        else:
            raise FetchError(f"unknown fetch attribute {token}")
    needs_data = any(isinstance(i, BodySection) or i in ("ENVELOPE", "BODYSTRUCTURE", "BODY",
                                                          "RFC822", "RFC822.HEADER",
                                                          "RFC822.TEXT") for i in items)
    sets_seen = any((isinstance(i, BodySection) and not i.peek) or i in ("RFC822", "RFC822.TEXT")
                    for i in items)
    return FetchRequest(items, needs_data, sets_seen)


def internal_date(timestamp: int) -> bytes:
    when = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return (f'"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d} '
            f'{when:%H:%M:%S} +0000"').encode("ascii")


def render_item(item, *, uid: int, flags: list[str], size: int, date: int,
                part: Part | None) -> bytes:
    if isinstance(item, BodySection):
        data = item.extract(part)
        return item.response_name() + b" " + (b"NIL" if data is None else literal(data))
    if item == "UID":
        return b"UID %d" % uid
    if item == "FLAGS":
        return b"FLAGS (" + " ".join(flags).encode("utf-8") + b")"
    if item == "INTERNALDATE":
        return b"INTERNALDATE " + internal_date(date)
    if item == "RFC822.SIZE":
        return b"RFC822.SIZE %d" % size
    if item == "ENVELOPE":
        return b"ENVELOPE " + render_envelope(part)
    if item == "BODYSTRUCTURE":
        return b"BODYSTRUCTURE " + render_body_structure(part, True)
    if item == "BODY":
        return b"BODY " + render_body_structure(part, False)
    if item == "RFC822":
        return b"RFC822 " + literal(part.raw)
    if item == "RFC822.HEADER":
        return b"RFC822.HEADER " + literal(part.header_bytes)
    if item == "RFC822.TEXT":
        return b"RFC822.TEXT " + literal(part.body)
    raise FetchError(f"unknown fetch attribute {item}")


__all__ = ["BodySection", "FetchRequest", "FetchError", "parse_fetch", "parse_section",
           "render_item", "internal_date", "render"]
