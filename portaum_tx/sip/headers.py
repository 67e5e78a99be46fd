"""SIP header field values: names, splitting, and one typed class per grammar.

A :class:`~portaum_tx.sip.message.Message` keeps every header as the raw text
received; the classes here turn that text into objects on first use (and back
into text with ``str()``).  Each class has a ``parse(text)`` classmethod that
raises :class:`SipParseError` (status 400) naming the header and what was
wrong.

The grammar follows RFC 3261 sec. 25 with the leniency real peers need:
linear white space is accepted around every separator, and header names are
matched case-insensitively with compact forms mapped to full names.
"""

import re

from portaum_tx.sip.uri import (
    SipURI, SipURIError, URI, format_host, parse_hostport, parse_uri,
)

__all__ = [
    "SipParseError", "canonical_name", "is_multi_value", "split_values",
    "unfold", "quote", "unquote", "parse_params", "format_params",
    "Via", "NameAddr", "CSeq", "MediaType", "TokenWithParams", "AuthHeader",
    "RetryAfter", "SessionExpires", "Replaces", "RAck", "parse_int", "parse_token_list",
    "parse_header_value", "check_date", "MAX_CSEQ", "MAX_DELTA_SECONDS",
]


class SipParseError(ValueError):
    """A message or header field that cannot be understood.

    ``reason`` is a short phrase fit for a response's reason phrase and
    ``status`` the response code a UAS should answer with (400 unless the
    error is of a kind RFC 3261 gives its own code, e.g. 505 or 416).
    """

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


MAX_CSEQ = 2 ** 32 - 1
MAX_DELTA_SECONDS = 2 ** 32 - 1

# Compact forms (RFC 3261 7.3.3 and the IANA SIP parameters registry).
COMPACT_FORMS = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type",
    "d": "Request-Disposition", "e": "Content-Encoding", "f": "From",
    "i": "Call-ID", "j": "Reject-Contact", "k": "Supported", "l": "Content-Length",
    "m": "Contact", "n": "Identity-Info", "o": "Event", "r": "Refer-To",
    "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via",
    "x": "Session-Expires", "y": "Identity",
}

_KNOWN_NAMES = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info",
    "Allow", "Allow-Events", "Authentication-Info", "Authorization", "Call-ID",
    "Call-Info", "Contact", "Content-Disposition", "Content-Encoding",
    "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date",
    "Diversion", "Error-Info", "Event", "Expires", "From", "History-Info",
    "Identity", "Identity-Info", "In-Reply-To", "Max-Forwards", "MIME-Version",
    "Min-Expires", "Min-SE", "Organization", "P-Asserted-Identity",
    "P-Preferred-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route",
    "Refer-To", "Referred-By", "Reject-Contact", "Replaces", "Reply-To",
    "Request-Disposition", "Require", "Retry-After", "Route", "RSeq",
    "Server", "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match",
    "Subject", "Subscription-State", "Supported", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]
_CANONICAL = {name.lower(): name for name in _KNOWN_NAMES}
_CANONICAL.update({short: full for short, full in COMPACT_FORMS.items()})

# Headers whose grammar is a comma-separated list (RFC 3261 7.3.1).
_MULTI_VALUE = {name.lower() for name in [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info",
    "Allow", "Allow-Events", "Call-Info", "Contact", "Content-Encoding",
    "Content-Language", "Diversion", "Error-Info", "History-Info", "In-Reply-To",
    "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Privacy", "Proxy-Require",
    "Reason", "Record-Route", "Reject-Contact", "Request-Disposition", "Require",
    "Route", "Service-Route", "Supported", "Unsupported", "Via", "Warning",
]}

_TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN_RE = re.compile(r"[%s]+\Z" % _TOKEN_CHARS)
# Via received= carries an IPv6 address without brackets (RFC 3261 20.42).
_BARE_IPV6_RE = re.compile(r"[0-9A-Fa-f]*:[0-9A-Fa-f:.]+\Z")
_LWS_RE = re.compile(r"\r?\n[ \t]+")
_WS = " \t"


def canonical_name(name: str) -> str:
    """The conventional spelling of a header name ('v' and 'VIA' give 'Via')."""
    return _CANONICAL.get(name.lower(), name)


def is_multi_value(name: str) -> bool:
    """True if the header's values may be combined in one line with commas."""
    return canonical_name(name).lower() in _MULTI_VALUE


def unfold(value: str) -> str:
    """Replace each CRLF+whitespace continuation by one space (RFC 3261 7.3.1)."""
    return _LWS_RE.sub(" ", value)


def is_token(text: str) -> bool:
    return bool(TOKEN_RE.match(text))


def _is_display_word(word: str) -> bool:
    """A word of an unquoted display name: a token, leniently also admitting
    UTF-8 letters (phones send ``Jürgen <sip:...>``), but never the ASCII
    separators that would make the value ambiguous (RFC 4475 baddn)."""
    return is_token("".join(c for c in word if ord(c) < 128) or "x") and \
        all(ord(c) > 32 for c in word) and \
        not any(0xD800 <= ord(c) <= 0xDFFF for c in word)


def _scan_quoted(text: str, start: int) -> int:
    """Index just past the quoted-string starting at ``text[start] == '"'``."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n":
                break
            i += 2
            continue
        if ch == '"':
            return i + 1
        if ch in "\r\n":
            break
        i += 1
    raise SipParseError("unterminated quoted string")


def unquote(text: str) -> str:
    """The content of a quoted-string (``"a\\"b"`` -> ``a"b``)."""
    if not (len(text) >= 2 and text[0] == '"' and _scan_quoted(text, 0) == len(text)):
        raise SipParseError("malformed quoted string")
    return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.S)


def quote(text: str) -> str:
    """Make a quoted-string of ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_outside(text: str, separator: str) -> list[str]:
    """Split at ``separator`` where it is outside quotes and <...>."""
    if '"' not in text and "<" not in text:
        return text.split(separator)
    parts = []
    depth = 0
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i = _scan_quoted(text, i)
            continue
        if ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == separator and not depth:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def split_values(text: str) -> list[str]:
    """Split a list header value at commas outside quotes and angle brackets.

    Items are stripped; empty items are kept so that callers can reject them.
    """
    return [part.strip(_WS) for part in _split_outside(text, ",")]


def parse_params(text: str, what: str) -> list[tuple[str, str | None]]:
    """Parse ``;name=value;flag...`` (text starts after the first ';').

    Values are tokens, quoted strings (kept quoted) or [IPv6] references.
    """
    params: list[tuple[str, str | None]] = []
    for item in _split_outside(text, ";"):
        name, eq, value = item.partition("=")
        name = name.strip(_WS)
        if not is_token(name):
            raise SipParseError("malformed parameter %r in %s" % (item.strip()[:40], what))
        if not eq:
            params.append((name, None))
            continue
        value = value.strip(_WS)
        if value.startswith('"'):
            if _scan_quoted(value, 0) != len(value):
                raise SipParseError("garbage after quoted parameter %s in %s" % (name, what))
        elif value.startswith("["):
            if not re.match(r"\[[0-9A-Fa-f:.]+\]\Z", value):
                raise SipParseError("malformed IPv6 parameter %s in %s" % (name, what))
        elif not is_token(value) and not _BARE_IPV6_RE.match(value):
            raise SipParseError("malformed value of parameter %s in %s" % (name, what))
        params.append((name, value))
    return params


def format_params(params: list[tuple[str, str | None]]) -> str:
    return "".join(";" + k if v is None else ";%s=%s" % (k, v) for k, v in params)


def _param_lookup(params, name: str, default=None):
    lname = name.lower()
    for key, value in params:
        if key.lower() == lname:
            if value is None:
                return ""
            return unquote(value) if value.startswith('"') else value
    return default


def _param_set(params, name: str, value: str | None) -> tuple:
    """``params`` with ``name`` replaced in place or appended."""
    lname = name.lower()
    for i, (key, _) in enumerate(params):
        if key.lower() == lname:
            return (*params[:i], (key, value), *params[i + 1:])
    return (*params, (name, value))


class _WithParams:
    """Mixin for values carrying an ordered ``params`` tuple.

    A tuple, not a list: parsed headers live as long as their dialog, and a tuple
    of strings drops out of the garbage collector's traversal where a list stays."""

    params: tuple[tuple[str, str | None], ...]

    def param(self, name: str, default: str | None = None) -> str | None:
        """Parameter value (quotes removed; '' for a flag), or ``default``."""
        return _param_lookup(self.params, name, default)

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None

    def set_param(self, name: str, value: str | None = None) -> None:
        """Set or append a parameter; ``value`` is written as given (quote it yourself)."""
        self.params = _param_set(self.params, name, value)

    def remove_param(self, name: str) -> None:
        lname = name.lower()
        self.params = tuple((k, v) for k, v in self.params if k.lower() != lname)


def parse_int(text: str, what: str, maximum: int) -> int:
    """A non-negative decimal integer no larger than ``maximum``."""
    text = text.strip(_WS)
    if not text.isdigit() or not text.isascii():
        raise SipParseError("malformed %s %r" % (what, text[:40]))
    if len(text) > 12 or int(text) > maximum:
        raise SipParseError("%s value too large" % what)
    return int(text)


def parse_token_list(text: str, what: str) -> list[str]:
    """An option-tag / method list (Require, Supported, Allow, ...)."""
    if not text.strip(_WS):
        return []
    items = split_values(text)
    for item in items:
        if not is_token(item):
            raise SipParseError("malformed %s item %r" % (what, item[:40]))
    return items


class Via(_WithParams):
    """One Via value: sent-protocol, sent-by and parameters (RFC 3261 20.42, RFC 3581)."""

    def __init__(self, transport: str, host: str, port: int | None = None,
                 params: list[tuple[str, str | None]] | None = None,
                 protocol: str = "SIP/2.0"):
        self.protocol = protocol
        self.transport = transport.upper()
        self.host = host
        self.port = port
        self.params = tuple(params or ())

    @property
    def sent_by(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else "%s:%d" % (host, self.port)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> int | bool | None:
        """None when absent, True when present without value, else the port."""
        value = self.param("rport")
        if value is None:
            return None
        if value == "":
            return True
        return int(value)

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    @property
    def has_magic_cookie(self) -> bool:
        """True if the branch is an RFC 3261 one: z9hG4bK followed by a unique part.

        A bare "z9hG4bK" carries no transaction identifier (RFC 4475 3.2.1).
        """
        branch = self.branch
        return bool(branch) and branch.startswith("z9hG4bK") and len(branch) > 7

    @property
    def reliable(self) -> bool:
        return self.transport not in ("UDP", "DTLS")

    def response_address(self) -> tuple[str, int]:
        """Where an unreliable-transport response goes (RFC 3261 18.2.2, RFC 3581).

        maddr first, then received (with rport if filled in), then sent-by;
        the default port is 5061 for TLS, 5060 otherwise.  Over a connection
        the response goes back over that connection instead.
        """
        default = 5061 if self.transport in ("TLS", "WSS") else 5060
        rport = self.rport
        if self.maddr:
            return self.maddr.strip("[]"), self.port or default
        if self.received:
            port = rport if isinstance(rport, int) and rport is not True else \
                (self.port or default)
            return self.received.strip("[]"), port
        return self.host, (rport if isinstance(rport, int) and rport is not True
                           else self.port or default)

    def stamp_source(self, host: str, port: int) -> None:
        """Record where the request really came from (RFC 3261 18.2.1, RFC 3581).

        Adds ``received`` when the source address differs from the sent-by
        host, and fills an empty ``rport`` with the source port.
        """
        if host != self.host or self.rport is not None:
            self.set_param("received", host)
        if self.rport is not None:
            self.set_param("rport", str(port))

    def __str__(self) -> str:
        return "%s/%s %s%s" % (self.protocol, self.transport, self.sent_by,
                               format_params(self.params))

    def __repr__(self) -> str:
        return "<Via %s>" % self

    @classmethod
    def parse(cls, text: str) -> "Via":
        head, semi, rest = text.strip(_WS).partition(";")
        head = re.sub(r"[ \t]*/[ \t]*", "/", head.strip(_WS))
        proto, _, sent_by = head.partition(" ")
        parts = proto.split("/")
        if len(parts) != 3 or not all(is_token(p) for p in parts):
            raise SipParseError("malformed Via sent-protocol %r" % proto[:40])
        name, version, transport = parts
        if name.upper() != "SIP" or version != "2.0":
            raise SipParseError("unsupported protocol %s/%s in Via" % (name, version[:10]))
        sent_by = re.sub(r"[ \t]*:[ \t]*", ":", sent_by.strip(_WS)) if "[" not in sent_by \
            else sent_by.strip(_WS)
        if not sent_by or any(c in sent_by for c in _WS):
            raise SipParseError("malformed Via sent-by %r" % sent_by[:60])
        try:
            host, port = parse_hostport(sent_by)
        except SipURIError as exc:
            raise SipParseError("malformed Via sent-by: %s" % exc) from None
        params = parse_params(rest, "Via") if semi else []
        via = cls(transport, host, port, params, "SIP/2.0")
        rport = via.param("rport")
        if rport:
            parse_int(rport, "Via rport", 65535)
        ttl = via.param("ttl")
        if ttl is not None:
            parse_int(ttl, "Via ttl", 255)
        if via.branch == "":
            raise SipParseError("empty Via branch")
        return via


class NameAddr(_WithParams):
    """name-addr / addr-spec with header parameters.

    Used for From, To, Contact, Route, Record-Route, Refer-To, Referred-By,
    Reply-To, Diversion (RFC 5806), History-Info (RFC 7044),
    P-Asserted-Identity and Path.  ``display`` is the display name unquoted
    (None if absent); ``uri`` a :mod:`portaum_tx.sip.uri` object.  A Contact
    of ``*`` parses as ``wildcard=True`` with no URI.
    """

    def __init__(self, uri: URI | None, display: str | None = None,
                 params: list[tuple[str, str | None]] | None = None,
                 wildcard: bool = False):
        self.uri = uri
        self.display = display
        self.params = tuple(params or ())
        self.wildcard = wildcard
        self._display_raw: str | None = None

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    @tag.setter
    def tag(self, value: str) -> None:
        self.set_param("tag", value)

    @property
    def expires(self) -> int | None:
        """Contact ;expires= in seconds (overlarge values clamped), or None."""
        value = self.param("expires")
        if value is None:
            return None
        if not value.isdigit() or not value.isascii():
            return None
        return min(int(value[:12]), MAX_DELTA_SECONDS)

    @property
    def q(self) -> float | None:
        value = self.param("q")
        try:
            return None if value is None else float(value)
        except ValueError:
            return None

    def copy(self) -> "NameAddr":
        other = NameAddr(self.uri.copy() if isinstance(self.uri, SipURI) else self.uri,
                         self.display, self.params, self.wildcard)
        other._display_raw = self._display_raw
        return other

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        if self._display_raw is not None:
            display = self._display_raw + " "
        elif self.display:
            display = (self.display if all(is_token(w) for w in self.display.split(" "))
                       else quote(self.display)) + " "
        else:
            display = ""
        return "%s<%s>%s" % (display, self.uri, format_params(self.params))

    def __repr__(self) -> str:
        return "<NameAddr %s>" % self

    @classmethod
    def parse(cls, text: str, what: str = "address") -> "NameAddr":
        s = text.strip(_WS)
        if not s:
            raise SipParseError("empty %s header" % what)
        if s == "*":
            return cls(None, wildcard=True)
        display = display_raw = None
        if s.startswith('"'):
            try:
                end = _scan_quoted(s, 0)
            except SipParseError:
                raise SipParseError("unterminated quoted display name in %s" % what) from None
            display_raw = s[:end]
            display = unquote(display_raw)
            rest = s[end:].lstrip(_WS)
            if not rest.startswith("<"):
                raise SipParseError("quoted display name without <URI> in %s" % what)
            s = rest
            lt = 0
        else:
            lt = s.find("<")
            if lt > 0:
                display_raw = s[:lt].strip(_WS)
                words = display_raw.split()
                if not all(_is_display_word(w) for w in words):
                    raise SipParseError("display name in %s is neither token nor quoted" % what)
                display = " ".join(words) or None
                display_raw = display
        if lt >= 0:
            gt = s.find(">", lt)
            if gt < 0:
                raise SipParseError("missing '>' in %s" % what)
            uri_text = s[lt + 1:gt]
            rest = s[gt + 1:].strip(_WS)
            if uri_text != uri_text.strip(" \t\r\n"):
                raise SipParseError("white space inside <> in %s" % what)
            if rest and not rest.startswith(";"):
                raise SipParseError("garbage after URI in %s" % what)
            params_text = rest[1:] if rest else None
        else:
            uri_text, semi, params_text = s.partition(";")
            uri_text = uri_text.strip(_WS)
            if not semi:
                params_text = None
            if "?" in uri_text or "," in uri_text:
                raise SipParseError("URI with '?' or ',' must be enclosed in <> in %s" % what)
        try:
            uri = parse_uri(uri_text)
        except SipURIError as exc:
            raise SipParseError("bad URI in %s: %s" % (what, exc)) from None
        params = parse_params(params_text, what) if params_text is not None else []
        value = cls(uri, display, params)
        value._display_raw = display_raw
        return value


class CSeq:
    """CSeq: sequence number and method (RFC 3261 20.16)."""

    def __init__(self, number: int, method: str):
        self.number = number
        self.method = method

    def __str__(self) -> str:
        return "%d %s" % (self.number, self.method)

    def __repr__(self) -> str:
        return "<CSeq %s>" % self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CSeq):
            return NotImplemented
        return (self.number, self.method) == (other.number, other.method)

    def __hash__(self) -> int:
        return hash((self.number, self.method))

    @classmethod
    def parse(cls, text: str) -> "CSeq":
        parts = text.split()
        if len(parts) != 2:
            raise SipParseError("malformed CSeq %r" % text[:40])
        number = parse_int(parts[0], "CSeq number", MAX_CSEQ)
        if not is_token(parts[1]):
            raise SipParseError("malformed CSeq method")
        return cls(number, parts[1])


class MediaType(_WithParams):
    """A media type or media range: Content-Type and each Accept item."""

    def __init__(self, type_: str, subtype: str,
                 params: list[tuple[str, str | None]] | None = None):
        self.type = type_
        self.subtype = subtype
        self.params = tuple(params or ())

    @property
    def mimetype(self) -> str:
        """``type/subtype`` lower-cased, without parameters."""
        return "%s/%s" % (self.type.lower(), self.subtype.lower())

    def matches(self, mimetype: str) -> bool:
        """True if this range (possibly with wildcards) covers ``mimetype``."""
        main, _, sub = mimetype.lower().partition("/")
        mine, mysub = self.type.lower(), self.subtype.lower()
        if self.param("q") is not None:
            try:
                if float(self.param("q")) <= 0:
                    return False        # q=0 means "not acceptable" (RFC 3261 20.1)
            except ValueError:
                pass
        return mine in ("*", main) and mysub in ("*", sub)

    def __str__(self) -> str:
        return "%s/%s%s" % (self.type, self.subtype, format_params(self.params))

    @classmethod
    def parse(cls, text: str) -> "MediaType":
        head, semi, rest = text.strip(_WS).partition(";")
        main, slash, sub = head.partition("/")
        main, sub = main.strip(_WS), sub.strip(_WS)
        if not slash or not is_token(main) or not is_token(sub):
            raise SipParseError("malformed media type %r" % head[:40])
        return cls(main, sub, parse_params(rest, "media type") if semi else [])


class TokenWithParams(_WithParams):
    """``token *(;param)``: Event, Subscription-State, Content-Disposition, Reason, ..."""

    def __init__(self, value: str, params: list[tuple[str, str | None]] | None = None):
        self.value = value
        self.params = tuple(params or ())

    def __str__(self) -> str:
        return self.value + format_params(self.params)

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self)

    @classmethod
    def parse(cls, text: str, what: str = "header") -> "TokenWithParams":
        head, semi, rest = text.strip(_WS).partition(";")
        head = head.strip(_WS)
        if not is_token(head):
            raise SipParseError("malformed %s value %r" % (what, head[:40]))
        return cls(head, parse_params(rest, what) if semi else [])


class SessionExpires(_WithParams):
    """Session-Expires / Min-SE (RFC 4028): seconds and optional refresher."""

    def __init__(self, seconds: int, refresher: str | None = None,
                 params: list[tuple[str, str | None]] | None = None):
        self.seconds = seconds
        self.params = tuple(params or ())
        if refresher is not None:
            self.set_param("refresher", refresher)

    @property
    def refresher(self) -> str | None:
        value = self.param("refresher")
        return value.lower() if value else None

    def __str__(self) -> str:
        return "%d%s" % (self.seconds, format_params(self.params))

    @classmethod
    def parse(cls, text: str) -> "SessionExpires":
        head, semi, rest = text.strip(_WS).partition(";")
        seconds = parse_int(head, "Session-Expires", MAX_DELTA_SECONDS)
        value = cls(seconds, None, parse_params(rest, "Session-Expires") if semi else [])
        if value.refresher not in (None, "uac", "uas"):
            raise SipParseError("Session-Expires refresher must be uac or uas")
        return value


class RetryAfter(_WithParams):
    """Retry-After (RFC 3261 20.33): seconds, optional comment, parameters."""

    def __init__(self, seconds: int, comment: str | None = None,
                 params: list[tuple[str, str | None]] | None = None):
        self.seconds = seconds
        self.comment = comment
        self.params = tuple(params or ())

    def __str__(self) -> str:
        comment = " (%s)" % self.comment if self.comment is not None else ""
        return "%d%s%s" % (self.seconds, comment, format_params(self.params))

    @classmethod
    def parse(cls, text: str) -> "RetryAfter":
        match = re.match(r"[ \t]*(\d+)[ \t]*(?:\(([^()]*)\))?[ \t]*(?:;(.*))?\Z", text, re.S)
        if not match:
            raise SipParseError("malformed Retry-After %r" % text[:40])
        seconds = parse_int(match.group(1), "Retry-After", MAX_DELTA_SECONDS)
        params = parse_params(match.group(3), "Retry-After") if match.group(3) is not None else []
        return cls(seconds, match.group(2), params)


class AuthHeader:
    """WWW-Authenticate, Proxy-Authenticate, Authorization, Proxy-Authorization.

    ``scheme`` is the auth scheme as written, ``params`` maps lower-cased
    names to unquoted values.  A scheme this stack does not know still parses
    (its parameters may be a token68, kept in ``token68``), so that the UAS
    can answer 401/403 instead of failing.
    """

    def __init__(self, scheme: str, params: dict[str, str] | None = None,
                 token68: str | None = None):
        self.scheme = scheme
        self.params = dict(params or {})
        self.token68 = token68

    _UNQUOTED = {"algorithm", "qop", "nc", "stale"}

    def __str__(self) -> str:
        if self.token68 is not None:
            return "%s %s" % (self.scheme, self.token68)
        items = []
        for name, value in self.params.items():
            if name in self._UNQUOTED and is_token(value):
                items.append("%s=%s" % (name, value))
            else:
                items.append("%s=%s" % (name, quote(value)))
        return "%s %s" % (self.scheme, ", ".join(items))

    def __repr__(self) -> str:
        return "<AuthHeader %s>" % self.scheme

    @classmethod
    def parse(cls, text: str) -> "AuthHeader":
        text = text.strip(_WS + "\r\n")
        scheme, _, rest = text.partition(" ")
        if not is_token(scheme):
            raise SipParseError("malformed authentication scheme %r" % scheme[:40])
        rest = rest.strip(_WS)
        params: dict[str, str] = {}
        if not rest:
            return cls(scheme, params)
        if re.match(r"[A-Za-z0-9\-._~+/]+=*\Z", rest) and scheme.lower() != "digest":
            return cls(scheme, params, token68=rest)
        for item in split_values(rest):
            if not item:
                continue
            name, eq, value = item.partition("=")
            name, value = name.strip(_WS), value.strip(_WS)
            if not eq or not is_token(name):
                raise SipParseError("malformed %s auth parameter %r" % (scheme, item[:40]))
            if value.startswith('"'):
                value = unquote(value)
            elif not is_token(value):
                raise SipParseError("malformed value of auth parameter %s" % name)
            params[name.lower()] = value
        return cls(scheme, params)


_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" (\d{4}) (\d\d):(\d\d):(\d\d) GMT\Z")


def check_date(text: str) -> str:
    """Validate an RFC 1123 Date value; SIP allows only the GMT zone (RFC 3261 20.17)."""
    value = text.strip(_WS)
    match = _DATE_RE.match(value)
    if not match or int(match.group(2)) > 31 or int(match.group(5)) > 23 \
            or int(match.group(6)) > 59 or int(match.group(7)) > 60:
        raise SipParseError("malformed Date (must be RFC 1123 in GMT)")
    return value


class Replaces(_WithParams):
    """Replaces (RFC 3891): the dialog to replace, by Call-ID and tags."""

    def __init__(self, call_id: str, params: list[tuple[str, str | None]] | None = None):
        self.call_id = call_id
        self.params = tuple(params or ())

    @property
    def to_tag(self) -> str | None:
        return self.param("to-tag")

    @property
    def from_tag(self) -> str | None:
        return self.param("from-tag")

    @property
    def early_only(self) -> bool:
        return self.has_param("early-only")

    def __str__(self) -> str:
        return self.call_id + format_params(self.params)

    @classmethod
    def parse(cls, text: str) -> "Replaces":
        head, semi, rest = text.strip(_WS).partition(";")
        value = cls(_call_id(head), parse_params(rest, "Replaces") if semi else [])
        if value.to_tag is None or value.from_tag is None:
            raise SipParseError("Replaces without to-tag or from-tag")
        return value


class RAck:
    """RAck (RFC 3262): the RSeq and CSeq of the reliable provisional acknowledged."""

    def __init__(self, rseq: int, cseq: int, method: str):
        self.rseq = rseq
        self.cseq = cseq
        self.method = method

    def __str__(self) -> str:
        return "%d %d %s" % (self.rseq, self.cseq, self.method)

    @classmethod
    def parse(cls, text: str) -> "RAck":
        parts = text.split()
        if len(parts) != 3 or not is_token(parts[2]):
            raise SipParseError("malformed RAck %r" % text[:40])
        return cls(parse_int(parts[0], "RAck RSeq", MAX_CSEQ),
                   parse_int(parts[1], "RAck CSeq", MAX_CSEQ), parts[2])


def _call_id(text: str) -> str:
    value = text.strip(_WS)
    if not value or any(ord(c) <= 32 or ord(c) == 127 for c in value):
        raise SipParseError("malformed Call-ID")
    return value


def _int_parser(what: str, maximum: int):
    return lambda text: parse_int(text, what, maximum)


def _name_addr_parser(what: str):
    return lambda text: NameAddr.parse(text, what)


def _token_params_parser(what: str):
    return lambda text: TokenWithParams.parse(text, what)


def _token_parser(what: str):
    def parse(text: str) -> str:
        value = text.strip(_WS)
        if not is_token(value):
            raise SipParseError("malformed %s item %r" % (what, value[:40]))
        return value
    return parse


# Parser of ONE value for each header with a typed form (lower-case full name).
VALUE_PARSERS = {
    "via": Via.parse,
    "from": _name_addr_parser("From"),
    "to": _name_addr_parser("To"),
    "contact": _name_addr_parser("Contact"),
    "route": _name_addr_parser("Route"),
    "record-route": _name_addr_parser("Record-Route"),
    "path": _name_addr_parser("Path"),
    "service-route": _name_addr_parser("Service-Route"),
    "refer-to": _name_addr_parser("Refer-To"),
    "referred-by": _name_addr_parser("Referred-By"),
    "reply-to": _name_addr_parser("Reply-To"),
    "diversion": _name_addr_parser("Diversion"),
    "history-info": _name_addr_parser("History-Info"),
    "p-asserted-identity": _name_addr_parser("P-Asserted-Identity"),
    "p-preferred-identity": _name_addr_parser("P-Preferred-Identity"),
    "cseq": CSeq.parse,
    "call-id": _call_id,
    "max-forwards": _int_parser("Max-Forwards", 255),
    "content-length": _int_parser("Content-Length", 2 ** 31 - 1),
    "expires": _int_parser("Expires", MAX_DELTA_SECONDS),
    "min-expires": _int_parser("Min-Expires", MAX_DELTA_SECONDS),
    "rseq": _int_parser("RSeq", MAX_CSEQ),
    "content-type": MediaType.parse,
    "accept": MediaType.parse,
    "event": _token_params_parser("Event"),
    "allow-events": _token_parser("Allow-Events"),
    "subscription-state": _token_params_parser("Subscription-State"),
    "content-disposition": _token_params_parser("Content-Disposition"),
    "reason": _token_params_parser("Reason"),
    "require": _token_parser("Require"),
    "proxy-require": _token_parser("Proxy-Require"),
    "supported": _token_parser("Supported"),
    "unsupported": _token_parser("Unsupported"),
    "allow": _token_parser("Allow"),
    "content-encoding": _token_parser("Content-Encoding"),
    "session-expires": SessionExpires.parse,
    "min-se": SessionExpires.parse,
    "retry-after": RetryAfter.parse,
    "www-authenticate": AuthHeader.parse,
    "proxy-authenticate": AuthHeader.parse,
    "authorization": AuthHeader.parse,
    "proxy-authorization": AuthHeader.parse,
    "date": check_date,
    "replaces": Replaces.parse,
    "rack": RAck.parse,
}

# Headers whose list grammar allows an empty value ("Supported:" = none).
_EMPTY_LIST_OK = {"accept", "allow", "supported", "unsupported", "require",
                  "proxy-require", "allow-events", "accept-encoding", "accept-language",
                  "content-encoding"}


def parse_header_value(name: str, raw: str) -> list:
    """Parse one header line's value into a list of typed values.

    List headers give one item per comma-separated value; others give a
    one-element list.  Headers without a typed form give the stripped text.
    """
    lname = canonical_name(name).lower()
    parser = VALUE_PARSERS.get(lname)
    text = unfold(raw)
    if lname in _MULTI_VALUE:
        if not text.strip(_WS) and lname in _EMPTY_LIST_OK:
            return []
        items = split_values(text)
        if any(not item for item in items):
            raise SipParseError("empty value in %s header" % canonical_name(name))
        return [parser(item) if parser else item for item in items]
    return [parser(text) if parser else text.strip(_WS)]
