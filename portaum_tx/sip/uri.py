"""SIP, SIPS and tel URIs (RFC 3261 sec. 19.1, RFC 5118, RFC 3966).

A parsed URI keeps every component exactly as it was written (escaped), so
that re-serialising a URI received from a peer gives back the same octets; the
``*_unescaped`` accessors and comparison work on the unescaped forms.

Schemes other than sip, sips and tel parse into :class:`OpaqueURI`, so a UAS
can still read such a request and answer it with 416.
"""

import re
from urllib.parse import unquote_to_bytes

__all__ = [
    "SipURIError", "URI", "SipURI", "TelURI", "OpaqueURI",
    "parse_uri", "escape_user", "unescape",
]


class SipURIError(ValueError):
    """The text is not a well-formed URI; the message says which part is wrong."""


_ALNUM = "A-Za-z0-9"
_MARK = r"\-_.!~*'()"
_ESCAPED = "%[0-9A-Fa-f]{2}"
_UNRESERVED = _ALNUM + _MARK

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_USER_RE = re.compile(r"(?:[%s&=+$,;?/]|%s)+\Z" % (_UNRESERVED, _ESCAPED))
_PASSWORD_RE = re.compile(r"(?:[%s&=+$,]|%s)*\Z" % (_UNRESERVED, _ESCAPED))
_PARAMCHAR_RE = re.compile(r"(?:[%s\[\]/:&+$]|%s)+\Z" % (_UNRESERVED, _ESCAPED))
_HCHAR_RE = re.compile(r"(?:[%s\[\]/?:+$]|%s)*\Z" % (_UNRESERVED, _ESCAPED))
# Hostnames: RFC 3261 allows letters, digits, '-' and '.'; '_' is tolerated
# because real SRV-style names and some phones use it.
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?"
                          r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_\-]*[A-Za-z0-9_])?)*\.?\Z")
_IPV4_RE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\Z")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+\Z")
_TEL_NUMBER_RE = re.compile(r"[0-9A-Fa-f*#+\-.()pPwW]+\Z")
_OPAQUE_RE = re.compile(r"[\x21-\x7e]+\Z")

# URI parameters that, when present in only one of two URIs, make them
# unequal (RFC 3261 19.1.4).
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def unescape(text: str) -> str:
    """Decode %HH escapes (as UTF-8, undecodable octets kept as U+FFFD)."""
    if "%" not in text:
        return text
    return unquote_to_bytes(text).decode("utf-8", "replace")


def escape_user(user: str) -> str:
    """Escape a user part so that it can be placed in a SIP URI."""
    out = []
    for ch in user:
        if re.match(r"[%s&=+$,;?/]" % _UNRESERVED, ch):
            out.append(ch)
        else:
            out.extend("%%%02X" % b for b in ch.encode("utf-8"))
    return "".join(out)


def _check_ipv6(text: str) -> None:
    if not _IPV6_RE.match(text) or text.count("::") > 1 or ":" not in text:
        raise SipURIError("malformed IPv6 reference [%s]" % text)
    groups = text.split(":")
    if "." in groups[-1]:
        _check_ipv4(groups[-1])
        groups = groups[:-1] + ["0", "0"]
    if len(groups) > 8 or ("::" not in text and len(groups) != 8):
        raise SipURIError("malformed IPv6 reference [%s]" % text)
    for group in groups:
        if len(group) > 4 or (group and "." in group):
            raise SipURIError("malformed IPv6 reference [%s]" % text)


def _check_ipv4(text: str) -> None:
    match = _IPV4_RE.match(text)
    if not match or any(int(part) > 255 for part in match.groups()):
        raise SipURIError("malformed IPv4 address %r" % text)


def parse_host(text: str) -> str:
    """Validate a host (hostname, IPv4, or [IPv6]) and return it without brackets."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise SipURIError("unterminated IPv6 reference %r" % text)
        inner = text[1:-1]
        _check_ipv6(inner)
        return inner
    if not text:
        raise SipURIError("empty host")
    if _IPV4_RE.match(text):
        _check_ipv4(text)
        return text
    if not _HOSTNAME_RE.match(text):
        raise SipURIError("malformed host %r" % text)
    return text


def format_host(host: str) -> str:
    """The host as it appears in a URI or Via: IPv6 addresses get brackets."""
    return "[%s]" % host if ":" in host else host


def parse_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (host may be an [IPv6] reference)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipURIError("unterminated IPv6 reference %r" % text)
        host_text, rest = text[:end + 1], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise SipURIError("garbage after IPv6 reference %r" % text)
        port_text = rest[1:] if rest else None
    elif ":" in text:
        host_text, port_text = text.split(":", 1)
    else:
        host_text, port_text = text, None
    host = parse_host(host_text)
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
            raise SipURIError("malformed port %r" % port_text)
        port = int(port_text)
        if port > 65535:
            raise SipURIError("port %d out of range" % port)
    return host, port


def _parse_params(text: str, what: str) -> list[tuple[str, str | None]]:
    params: list[tuple[str, str | None]] = []
    if not text:
        return params
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not name or not _PARAMCHAR_RE.match(name):
            raise SipURIError("malformed %s parameter %r" % (what, item))
        if eq:
            if not value or not _PARAMCHAR_RE.match(value):
                raise SipURIError("malformed value of %s parameter %r" % (what, name))
            params.append((name, value))
        else:
            params.append((name, None))
    return params


class URI:
    """Base of every URI kind; ``scheme`` is lower-cased, ``str()`` re-serialises."""

    scheme: str

    def __str__(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self)

    @property
    def is_sip(self) -> bool:
        """True for sip: and sips: URIs."""
        return False


class SipURI(URI):
    """A sip: or sips: URI.

    ``user``, ``password``, ``params`` and ``headers`` hold the escaped text as
    received; ``params`` is an ordered tuple of ``(name, value_or_None)``, ``headers``
    one of ``(name, value)`` (tuples: a URI lives as long as its dialog, and tuples of
    strings leave the garbage collector's traversal).
    Use :meth:`param` for the unescaped, case-insensitive lookup.
    """

    def __init__(self, host: str, user: str | None = None, port: int | None = None,
                 params: list[tuple[str, str | None]] | None = None,
                 headers: list[tuple[str, str]] | None = None,
                 scheme: str = "sip", password: str | None = None):
        self.scheme = scheme.lower()
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = tuple(params or ())
        self.headers = tuple(headers or ())

    @property
    def is_sip(self) -> bool:
        return True

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else unescape(self.user)

    @property
    def hostport(self) -> str:
        host = format_host(self.host)
        return host if self.port is None else "%s:%d" % (host, self.port)

    def param(self, name: str, default: str | None = None) -> str | None:
        """Unescaped value of a parameter ('' for a flag), or ``default``."""
        lname = name.lower()
        for key, value in self.params:
            if unescape(key).lower() == lname:
                return "" if value is None else unescape(value)
        return default

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None

    def set_param(self, name: str, value: str | None = None) -> None:
        """Set (replace or append) a parameter; ``value`` is taken as already escaped."""
        lname = name.lower()
        for i, (key, _) in enumerate(self.params):
            if unescape(key).lower() == lname:
                self.params = (*self.params[:i], (name, value), *self.params[i + 1:])
                return
        self.params = (*self.params, (name, value))

    def remove_param(self, name: str) -> None:
        lname = name.lower()
        self.params = tuple((k, v) for k, v in self.params if unescape(k).lower() != lname)

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        return self.param("maddr")

    def header_fields(self) -> list[tuple[str, str]]:
        """The ``?headers`` component unescaped, as (name, value) pairs."""
        return [(unescape(k), unescape(v)) for k, v in self.headers]

    def copy(self) -> "SipURI":
        return SipURI(self.host, self.user, self.port, self.params, self.headers,
                      self.scheme, self.password)

    def without_headers(self) -> "SipURI":
        """A copy without ``?headers`` (what may go into a Request-URI)."""
        uri = self.copy()
        uri.headers = ()
        return uri

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.hostport)
        for key, value in self.params:
            out.append(";" + key if value is None else ";%s=%s" % (key, value))
        if self.headers:
            out.append("?" + "&".join("%s=%s" % kv for kv in self.headers))
        return "".join(out)

    def _compare_key(self):
        return (self.scheme, self.user_unescaped,
                None if self.password is None else unescape(self.password),
                self.host.lower(), self.port)

    def __eq__(self, other: object) -> bool:
        """URI equality per RFC 3261 19.1.4."""
        if not isinstance(other, SipURI):
            return NotImplemented
        if self._compare_key() != other._compare_key():
            return False
        mine = {unescape(k).lower(): unescape(v or "").lower() for k, v in self.params}
        theirs = {unescape(k).lower(): unescape(v or "").lower() for k, v in other.params}
        for name in set(mine) | set(theirs):
            if name in mine and name in theirs:
                if mine[name] != theirs[name]:
                    return False
            elif name in _SIGNIFICANT_PARAMS:
                return False
        return sorted((k.lower(), v) for k, v in self.header_fields()) == \
            sorted((k.lower(), v) for k, v in other.header_fields())

    def __hash__(self) -> int:
        return hash((self.scheme, self.user_unescaped, self.host.lower(), self.port))

    @classmethod
    def parse(cls, text: str, scheme: str) -> "SipURI":
        """Parse the part after ``scheme:``; use :func:`parse_uri` instead."""
        rest = text
        at = rest.rfind("@")
        user = password = None
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1:]
            user, colon, pw = userinfo.partition(":")
            if not user or not _USER_RE.match(user):
                raise SipURIError("malformed user part %r" % user)
            if colon:
                if not _PASSWORD_RE.match(pw):
                    raise SipURIError("malformed password in URI")
                password = pw
        rest, qmark, headers_text = rest.partition("?")
        hostport, _, params_text = rest.partition(";")
        if rest.endswith(";"):
            raise SipURIError("empty URI parameter")
        host, port = parse_hostport(hostport)
        params = _parse_params(params_text, "URI")
        headers: list[tuple[str, str]] = []
        if qmark:
            if not headers_text:
                raise SipURIError("empty URI headers component")
            for item in headers_text.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq or not _HCHAR_RE.match(name) or not _HCHAR_RE.match(value):
                    raise SipURIError("malformed URI header %r" % item)
                headers.append((name, value))
        return cls(host, user, port, params, headers, scheme, password)


class TelURI(URI):
    """A tel: URI (RFC 3966): ``number`` as written plus ``;params``."""

    def __init__(self, number: str, params: list[tuple[str, str | None]] | None = None):
        self.scheme = "tel"
        self.number = number
        self.params = tuple(params or ())

    @property
    def digits(self) -> str:
        """The number without visual separators ('-', '.', '(', ')')."""
        return re.sub(r"[\-.()]", "", self.number)

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    def param(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self.params:
            if unescape(key).lower() == lname:
                return "" if value is None else unescape(value)
        return default

    def __str__(self) -> str:
        return "tel:" + self.number + "".join(
            ";" + k if v is None else ";%s=%s" % (k, v) for k, v in self.params)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelURI):
            return NotImplemented
        return self.digits.lower() == other.digits.lower() and \
            sorted((k.lower(), (v or "").lower()) for k, v in self.params) == \
            sorted((k.lower(), (v or "").lower()) for k, v in other.params)

    def __hash__(self) -> int:
        return hash(("tel", self.digits.lower()))

    @classmethod
    def parse(cls, text: str) -> "TelURI":
        number, _, params_text = text.partition(";")
        if not _TEL_NUMBER_RE.match(number):
            raise SipURIError("malformed telephone number %r" % number)
        if text.endswith(";"):
            raise SipURIError("empty tel URI parameter")
        return cls(number, _parse_params(params_text, "tel URI"))


class OpaqueURI(URI):
    """A URI of a scheme this stack does not interpret (http:, isbn:, ...)."""

    def __init__(self, scheme: str, rest: str):
        self.scheme = scheme.lower()
        self.written_scheme = scheme
        self.rest = rest

    def __str__(self) -> str:
        return "%s:%s" % (self.written_scheme, self.rest)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OpaqueURI):
            return NotImplemented
        return (self.scheme, self.rest) == (other.scheme, other.rest)

    def __hash__(self) -> int:
        return hash((self.scheme, self.rest))


def parse_uri(text: str) -> URI:
    """Parse an absolute URI.

    Returns a :class:`SipURI`, :class:`TelURI` or :class:`OpaqueURI`;
    raises :class:`SipURIError` naming the malformed component.
    """
    if not isinstance(text, str):
        raise SipURIError("URI must be text, not %s" % type(text).__name__)
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.match(scheme):
        raise SipURIError("URI %r has no valid scheme" % text[:80])
    if not rest:
        raise SipURIError("URI %r is empty after the scheme" % text[:80])
    if not _OPAQUE_RE.match(rest):
        raise SipURIError("URI %r contains whitespace or control characters" % text[:80])
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return SipURI.parse(rest, lscheme)
    if lscheme == "tel":
        return TelURI.parse(rest)
    return OpaqueURI(scheme, rest)
