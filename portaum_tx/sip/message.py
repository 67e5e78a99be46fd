"""SIP requests and responses: parsing, framing, serialising, building responses.

``parse_message(datagram)`` reads one message from a UDP datagram;
:class:`StreamFramer` cuts messages out of a TCP/TLS byte stream.  Both raise
:class:`SipParseError` (with the status a UAS should answer) on bad input and
never grow buffers beyond their configured limits.

Header fields are kept as ``(name, raw_value)`` pairs in arrival order, with
the name as written (so a message re-serialises almost byte for byte); typed
access (``msg.via``, ``msg.cseq``, ``msg.parsed("Contact")``) parses on
first use and caches the result until the header is changed.
"""

import functools
import re
from typing import Callable, Iterable

from portaum_tx.sip.headers import (
    CSeq, MediaType, NameAddr, SipParseError, Via, canonical_name, parse_header_value,
    parse_int, unfold,
)
from portaum_tx.sip.uri import SipURIError, URI, parse_uri

__all__ = [
    "SipParseError", "SipFramingError", "Message", "Request", "Response",
    "parse_message", "StreamFramer", "make_response", "error_response_for",
    "reason_phrase", "is_keepalive", "MAX_DATAGRAM_SIZE",
]

MAX_DATAGRAM_SIZE = 65535
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_BODY_BYTES = 256 * 1024
MAX_HEADER_LINES = 256

SIP_VERSION = "SIP/2.0"

_REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    437: "Unsupported Certificate", 439: "First Hop Lacks Outbound Support",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete",
    485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_VERSION_RE = re.compile(r"SIP/(\d+)\.(\d+)\Z", re.I)
_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


@functools.lru_cache(maxsize=1024)
def _header_key(name: str) -> str:
    # Bounded, so a peer sending endless distinct header names cannot grow it.
    return canonical_name(name).lower()


def reason_phrase(status: int) -> str:
    """The usual reason phrase for ``status`` (a generic one for unknown codes)."""
    return _REASONS.get(status) or _REASONS.get(status // 100 * 100, "Unknown")


def is_keepalive(data: bytes) -> bool:
    """True for a datagram that is only CRLFs (RFC 5626 keep-alive), to be ignored."""
    return not data.strip(b"\r\n")


def _decode(data: bytes) -> str:
    # surrogateescape keeps any octet, so re-encoding gives the input back.
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class SipFramingError(SipParseError):
    """The byte stream can no longer be split into messages; close the connection."""


class Message:
    """Common part of :class:`Request` and :class:`Response`.

    ``headers`` is the ordered list of ``(name, raw_value)``; ``body`` bytes.
    Header names are matched case-insensitively and compact forms are
    equivalent to full names everywhere in this API.  Change headers through
    :meth:`set`, :meth:`add`, :meth:`remove` (or assign a new list): the
    typed values are cached.

    Entries and the per-name index are tuples and an absent header's parsed
    value is the shared ``()``: a message lives as long as its transaction or
    dialog, and tuples of strings drop out of the garbage collector's traversal
    where lists stay in it, so the full collections that pause the media clock
    have fewer objects to walk.
    """

    def __init__(self, headers: Iterable[tuple[str, object]] | None = None, body: bytes = b""):
        self.headers: list[tuple[str, str]] = []
        self.body = body
        self._parsed: dict[str, list | tuple] = {}
        self._index: dict[str, tuple[tuple[str, str], ...]] = {}
        self._index_guard: tuple[int, int] | None = None
        for name, value in headers or ():
            self.add(name, value)

    # -- raw access --------------------------------------------------------

    @staticmethod
    def _key(name: str) -> str:
        return _header_key(name)

    def _entries(self, name: str) -> tuple[tuple[str, str], ...]:
        # The index maps each header key to its (name, value) entries; it is
        # rebuilt whenever the header list was replaced or changed length.
        guard = (id(self.headers), len(self.headers))
        if guard != self._index_guard:
            index: dict[str, tuple[tuple[str, str], ...]] = {}
            for entry in self.headers:
                key = _header_key(entry[0])
                index[key] = index.get(key, ()) + (entry,)
            self._index, self._index_guard = index, guard
            self._parsed = {}
        return self._index.get(_header_key(name), ())

    def get_all(self, name: str) -> list[str]:
        """Raw values of every ``name`` line, in order (lines are not split at commas)."""
        return [entry[1] for entry in self._entries(name)]

    def get(self, name: str, default: str | None = None) -> str | None:
        """Raw value of the first ``name`` line, or ``default``."""
        entries = self._entries(name)
        return entries[0][1] if entries else default

    def count(self, name: str) -> int:
        """How many lines of ``name`` the message has."""
        return len(self.get_all(name))

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def set(self, name: str, value: object) -> None:
        """Replace every ``name`` line by one line holding ``str(value)``.

        Keeps the position of the first existing line; appends otherwise.
        """
        key = self._key(name)
        text = str(value)
        out: list[tuple[str, str]] = []
        placed = False
        for entry in self.headers:
            if self._key(entry[0]) == key:
                if not placed:
                    out.append((canonical_name(name), text))
                    placed = True
            else:
                out.append(entry)
        if not placed:
            out.append((canonical_name(name), text))
        self.headers = out
        self._index_guard = None
        self._parsed.pop(key, None)

    def add(self, name: str, value: object, first: bool = False) -> None:
        """Add a ``name`` line (at the top of that header's lines if ``first``)."""
        entry = (canonical_name(name), str(value))
        key = self._key(name)
        if first:
            for i, (hname, _) in enumerate(self.headers):
                if self._key(hname) == key:
                    self.headers.insert(i, entry)
                    break
            else:
                self.headers.append(entry)
        else:
            self.headers.append(entry)
        self._index_guard = None
        self._parsed.pop(key, None)

    def remove(self, name: str) -> None:
        """Remove every ``name`` line."""
        key = self._key(name)
        self.headers = [e for e in self.headers if self._key(e[0]) != key]
        self._index_guard = None
        self._parsed.pop(key, None)

    def set_values(self, name: str, values: Iterable[object]) -> None:
        """Replace ``name`` by one line per value (Via, Route, Record-Route ...)."""
        self.remove(name)
        for value in values:
            self.add(name, value)

    # -- typed access ------------------------------------------------------

    def parsed(self, name: str) -> list | tuple:
        """Every value of ``name`` parsed (comma lists split), cached until changed;
        ``()`` when the message has no such header. Treat it as read-only.

        Raises :class:`SipParseError` if a value is malformed.
        """
        entries = self._entries(name)      # first: it drops caches gone stale
        key = self._key(name)
        cached = self._parsed.get(key)
        if cached is None:
            if entries:
                cached = []
                for entry in entries:
                    cached.extend(parse_header_value(name, entry[1]))
            else:
                cached = ()
            self._parsed[key] = cached
        return cached

    def first(self, name: str):
        """The first parsed value of ``name``, or None if absent."""
        values = self.parsed(name)
        return values[0] if values else None

    @property
    def via(self) -> list[Via]:
        return self.parsed("Via")

    @property
    def top_via(self) -> Via | None:
        return self.first("Via")

    @property
    def from_(self) -> NameAddr | None:
        return self.first("From")

    @property
    def to(self) -> NameAddr | None:
        return self.first("To")

    @property
    def call_id(self) -> str | None:
        return self.first("Call-ID")

    @property
    def cseq(self) -> CSeq | None:
        return self.first("CSeq")

    @property
    def contact(self) -> list[NameAddr]:
        return self.parsed("Contact")

    @property
    def route(self) -> list[NameAddr]:
        return self.parsed("Route")

    @property
    def record_route(self) -> list[NameAddr]:
        return self.parsed("Record-Route")

    @property
    def max_forwards(self) -> int | None:
        return self.first("Max-Forwards")

    @property
    def content_type(self) -> MediaType | None:
        return self.first("Content-Type")

    # -- output ------------------------------------------------------------

    def start_line(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def copy(self):
        """An independent copy (headers and body; parsed values are re-parsed)."""
        other = self.__class__.__new__(self.__class__)
        other.__dict__.update(self.__dict__)
        other.headers = list(self.headers)
        other._parsed = {}
        other._index_guard = None
        if isinstance(self, Request) and hasattr(self.uri, "copy"):
            other.uri = self.uri.copy()
        return other

    def body_part(self, mimetype: str) -> bytes | None:
        """The body, or the first part of a multipart/mixed body, of ``mimetype``.

        SIP-I/SIP-T gateways send SDP inside multipart/mixed with ISUP; this
        finds it.  Returns None if there is no such part (or the
        Content-Type is malformed).
        """
        try:
            content_type = self.content_type
        except SipParseError:
            return None
        if content_type is None or not self.body:
            return None
        if content_type.mimetype == mimetype.lower():
            return self.body
        if content_type.type.lower() != "multipart":
            return None
        boundary = content_type.param("boundary")
        if not boundary:
            return None
        delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
        for part in self.body.split(delimiter)[1:]:
            if part.startswith(b"--"):
                break
            part = part[2:] if part.startswith(b"\r\n") else part.lstrip(b"\n")
            head, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                head, sep, content = part.partition(b"\n\n")
            part_type = b"text/plain"
            for line in re.split(rb"\r?\n", head):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-type":
                    part_type = value.split(b";")[0].strip().lower()
            if part_type.decode("latin-1") == mimetype.lower():
                return content[:-2] if content.endswith(b"\r\n") else content.rstrip(b"\n")
        return None

    def serialize(self) -> bytes:
        """The message as wire bytes, with a Content-Length matching ``body``."""
        lines = [self.start_line()]
        length_written = False
        for name, value in self.headers:
            if self._key(name) == "content-length":
                if length_written:
                    continue
                value = str(len(self.body))
                length_written = True
            lines.append("%s: %s" % (name, value))
        if not length_written:
            lines.append("Content-Length: %d" % len(self.body))
        return _encode("\r\n".join(lines) + "\r\n\r\n") + self.body

    def __bytes__(self) -> bytes:
        return self.serialize()

    @property
    def is_request(self) -> bool:
        return isinstance(self, Request)


class Request(Message):
    """A SIP request.  ``uri`` is a parsed URI object (``uri_text`` as written)."""

    def __init__(self, method: str, uri: URI | str,
                 headers: Iterable[tuple[str, object]] | None = None, body: bytes = b""):
        super().__init__(headers, body)
        self.method = method
        if isinstance(uri, str):
            try:
                uri = parse_uri(uri)
            except SipURIError as exc:
                raise SipParseError("bad Request-URI: %s" % exc) from None
        self.uri = uri

    def start_line(self) -> str:
        return "%s %s %s" % (self.method, self.uri, SIP_VERSION)

    def __repr__(self) -> str:
        return "<Request %s %s>" % (self.method, self.uri)


class Response(Message):
    """A SIP response: ``status`` (100-699) and ``reason``.

    ``local`` is True for the 408/503 a client transaction makes up on
    timeout or transport error (RFC 3261 8.1.3.1), False for received ones.
    """

    local = False

    def __init__(self, status: int, reason: str | None = None,
                 headers: Iterable[tuple[str, object]] | None = None, body: bytes = b""):
        super().__init__(headers, body)
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason

    def start_line(self) -> str:
        # A reason phrase built from peer input must not be able to inject lines.
        reason = self.reason.replace("\r", " ").replace("\n", " ")
        return "%s %d %s" % (SIP_VERSION, self.status, reason)

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    @property
    def is_final(self) -> bool:
        return self.status >= 200

    def __repr__(self) -> str:
        return "<Response %d %s>" % (self.status, self.reason)


def _check_version(text: str) -> None:
    if text.upper() == SIP_VERSION:
        return
    if _VERSION_RE.match(text):
        raise SipParseError("SIP version %s not supported" % text[:20], 505)
    raise SipParseError("malformed SIP version %r" % text[:20])


def _parse_start_line(line: str) -> Message:
    # Trailing white space is tolerated (RFC 4475 3.1.2.9 allows leniency);
    # anything else must be single-SP separated.
    line = line.rstrip(" \t")
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        _check_version(version)
        code, _, reason = rest.partition(" ")
        if not (len(code) == 3 and code.isdigit() and code.isascii()) or not 100 <= int(code) <= 699:
            raise SipParseError("malformed status code %r" % code[:20])
        if any(c in reason for c in "\r\n"):
            raise SipParseError("malformed reason phrase")
        return Response(int(code), reason)
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError("malformed Request-Line")
    method, uri_text, version = parts
    if not _TOKEN_RE.match(method):
        raise SipParseError("malformed method %r" % method[:40])
    _check_version(version)
    try:
        uri = parse_uri(uri_text)
    except SipURIError as exc:
        raise SipParseError("bad Request-URI: %s" % exc) from None
    return Request(method, uri)


def _parse_header_block(text: str) -> tuple[Message, list[tuple[str, str]]]:
    """Parse start line + header lines (without the blank line)."""
    lines = re.split(r"\r?\n", text)
    message = _parse_start_line(lines[0])
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            if not headers:
                raise SipParseError("continuation line before any header")
            previous_name, previous = headers[-1]
            continuation = line.strip(" \t")
            headers[-1] = (previous_name, previous + " " + continuation if previous else continuation)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _TOKEN_RE.match(name):
            raise SipParseError("malformed header line %r" % line[:40])
        headers.append((name, value.strip(" \t")))
        if len(headers) > MAX_HEADER_LINES:
            raise SipParseError("too many header lines", 513)
    message.headers = headers
    return message, headers


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    values = [value for name, value in headers if canonical_name(name) == "Content-Length"]
    if not values:
        return None
    lengths = {parse_int(unfold(v), "Content-Length", 2 ** 31 - 1) for v in values}
    if len(lengths) > 1 or len(values) > 1:
        raise SipParseError("multiple Content-Length values")
    return lengths.pop()


def _split_head(data: bytes) -> tuple[bytes, bytes | None]:
    match = _HEADER_END_RE.search(data)
    if not match:
        return data, None
    return data[:match.start()], data[match.end():]


def parse_message(data: bytes, max_size: int = MAX_DATAGRAM_SIZE) -> Message:
    """Parse one message from a datagram.

    Leading CRLFs are skipped; octets after Content-Length are ignored (RFC
    4475 dblreq); without Content-Length the body is the rest of the
    datagram.  Raises :class:`SipParseError` (``.status`` is what to answer).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SipParseError("message must be bytes, not %s" % type(data).__name__)
    data = bytes(data)
    if len(data) > max_size:
        raise SipParseError("message larger than %d octets" % max_size, 513)
    data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    head, rest = _split_head(data)
    message, headers = _parse_header_block(_decode(head))
    length = _content_length(headers)
    if rest is None:
        rest = b""
    if length is None:
        message.body = rest
    else:
        if length > len(rest):
            raise SipParseError("Content-Length %d larger than the body received" % length)
        message.body = rest[:length]
    return message


class StreamFramer:
    """Cuts SIP messages out of a TCP/TLS byte stream.

    :meth:`feed` returns what became complete: :class:`Message` objects, and
    :class:`SipParseError` instances for messages that were framed correctly
    but could not be parsed (the stream stays usable; the error's ``raw``
    holds the octets so the transport may answer 400).  When the framing
    itself is lost (header block too large, body too large, bad or missing
    Content-Length), :class:`SipFramingError` is raised and the connection
    should be closed.  RFC 5626 keep-alive pings (CRLFCRLF between messages)
    call ``on_keepalive`` once each.
    """

    def __init__(self, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 on_keepalive: Callable[[], None] | None = None):
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.on_keepalive = on_keepalive
        # A bytearray grows in amortised constant time, so a peer trickling
        # one octet per segment costs linear, not quadratic, work.
        self._buffer = bytearray()
        self._scanned = 0
        self._pending_head: bytes | None = None
        self._pending_length = 0

    @property
    def buffered(self) -> int:
        """Octets held while waiting for the rest of a message."""
        return len(self._buffer)

    def _skip_crlf(self) -> None:
        """Drop CRLFs between messages; each CRLFCRLF is a keep-alive ping."""
        buf = self._buffer
        while buf:
            if buf.startswith(b"\r\n\r\n"):
                del buf[:4]
                if self.on_keepalive is not None:
                    self.on_keepalive()
            elif buf.startswith(b"\r\n") and len(buf) > 2 and buf[2:3] != b"\r":
                del buf[:2]
            elif buf[:1] == b"\n" or (buf[:1] == b"\r" and len(buf) > 1 and buf[1:2] != b"\n"):
                del buf[:1]
            else:
                break

    def _reset(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0
        self._pending_head = None

    def feed(self, data: bytes) -> list:
        """Add received octets; return completed messages (and parse errors)."""
        self._buffer += data
        out: list = []
        while True:
            if self._pending_head is None:
                if self._scanned == 0:
                    self._skip_crlf()
                    if not self._buffer or bytes(self._buffer) in (b"\r", b"\r\n", b"\r\n\r"):
                        break
                # Resume the search for the blank line where the last one stopped.
                start = max(0, self._scanned - 3)
                match = _HEADER_END_RE.search(self._buffer, start, self.max_header_bytes + 4)
                if not match:
                    if len(self._buffer) > self.max_header_bytes:
                        self._reset()
                        raise SipFramingError("header block exceeds %d octets"
                                              % self.max_header_bytes, 513)
                    self._scanned = len(self._buffer)
                    break
                head = bytes(self._buffer[:match.start()])
                del self._buffer[:match.end()]
                self._scanned = 0
                length = self._frame_length(head)
                self._pending_head, self._pending_length = head, length
            if len(self._buffer) < self._pending_length:
                break
            body = bytes(self._buffer[:self._pending_length])
            del self._buffer[:self._pending_length]
            head, self._pending_head = self._pending_head, None
            out.append(self._parse(head, body))
        return out

    def _frame_length(self, head: bytes) -> int:
        values = re.findall(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", head)
        if not values:
            return 0
        stripped = {v.strip() for v in values}
        if len(stripped) != 1:
            self._reset()
            raise SipFramingError("conflicting Content-Length values")
        text = stripped.pop()
        if not text.isdigit() or len(text) > 10:
            self._reset()
            raise SipFramingError("malformed Content-Length")
        length = int(text)
        if length > self.max_body_bytes:
            self._reset()
            raise SipFramingError("body of %d octets exceeds the limit of %d"
                                  % (length, self.max_body_bytes), 413)
        return length

    @staticmethod
    def _parse(head: bytes, body: bytes):
        raw = head + b"\r\n\r\n" + body
        try:
            message, headers = _parse_header_block(_decode(head))
            _content_length(headers)
        except SipParseError as exc:
            exc.raw = raw
            return exc
        message.body = body
        return message


_RESPONSE_COPIED = ("Via", "From", "To", "Call-ID", "CSeq")


def make_response(request: Request, status: int, reason: str | None = None,
                  to_tag: str | None = None,
                  headers: Iterable[tuple[str, object]] = (), body: bytes = b"") -> Response:
    """Build a response to ``request`` per RFC 3261 8.2.6.

    Copies Via (all, in order), From, To, Call-ID and CSeq as raw text (so it
    works even when those values are malformed), adds ``;tag=to_tag`` to To
    if it has none and ``status`` > 100, copies Timestamp into 100 Trying and
    Record-Route into 101-299 responses (RFC 3261 12.1.1).
    """
    response = Response(status, reason)
    for name in _RESPONSE_COPIED:
        for value in request.get_all(name):
            if name == "To" and to_tag and status > 100 and not _has_tag(value):
                value = "%s;tag=%s" % (value, to_tag)
            response.add(name, value)
    if status == 100:
        for value in request.get_all("Timestamp"):
            response.add("Timestamp", value)
    if 100 < status < 300:
        for value in request.get_all("Record-Route"):
            response.add("Record-Route", value)
    for name, value in headers:
        response.add(name, value)
    response.body = body
    return response


def _has_tag(to_value: str) -> bool:
    try:
        return NameAddr.parse(unfold(to_value), "To").tag is not None
    except SipParseError:
        return bool(re.search(r";[ \t]*tag[ \t]*=", to_value, re.I))


def error_response_for(data: bytes, error: SipParseError) -> Response | None:
    """Best-effort error response to a datagram that failed to parse.

    Returns None when no response may be formed: the message is a response,
    or a request lacking a parseable start line, Via, From, To, Call-ID or
    CSeq to copy (RFC 3261 8.2.6 needs them).
    """
    try:
        head, _ = _split_head(bytes(data).lstrip(b"\r\n"))
        lines = re.split(r"\r?\n", _decode(head))
        first = lines[0].split(" ")
        if not first or first[0][:4].upper() == "SIP/" or len(first) < 2:
            return None
        fake = Request.__new__(Request)
        Message.__init__(fake)
        fake.method = first[0]
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:
                headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
                continue
            name, colon, value = line.partition(":")
            if colon:
                headers.append((name.strip(), value.strip()))
        fake.headers = headers
        for name in _RESPONSE_COPIED:
            if fake.count(name) < 1:
                return None
        return make_response(fake, error.status, error.reason)
    except (SipParseError, ValueError):
        return None
