"""What a UAS checks before handing a request upward (RFC 3261 8.2), and what a
UAC checks before accepting a response (8.1.3.3).

:func:`check_request` returns None when the request may be processed, or an
:class:`ErrorResponse` naming the status, reason and extra headers to answer
with (build it with :meth:`ErrorResponse.build`).  Deciding which methods are
implemented is the caller's business; :func:`method_not_allowed` gives the
matching 405/501.
"""

import ipaddress
from typing import Collection, Iterable, Mapping, NamedTuple

from portaum_tx.sip.headers import SipParseError, Via
from portaum_tx.sip.message import Request, Response, make_response

__all__ = [
    "ErrorResponse", "check_request", "check_response", "check_session_timer",
    "method_not_allowed",
    "is_unsafe_destination", "via_is_unsafe", "RFC3261_METHODS",
    "MANDATORY_REQUEST_HEADERS", "SINGLE_VALUE_HEADERS", "DEFAULT_BODY_TYPES",
]

RFC3261_METHODS = frozenset(["INVITE", "ACK", "OPTIONS", "BYE", "CANCEL", "REGISTER"])
# Methods defined by extensions this stack knows of; an unknown method is 501.
KNOWN_METHODS = RFC3261_METHODS | {"PRACK", "SUBSCRIBE", "NOTIFY", "PUBLISH", "INFO",
                                   "REFER", "MESSAGE", "UPDATE"}

# Max-Forwards is not in the list: RFC 2543 peers omit it (RFC 4475 3.4.1).
MANDATORY_REQUEST_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
SINGLE_VALUE_HEADERS = ("To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length",
                        "Content-Type", "Expires", "Min-Expires", "Session-Expires",
                        "Min-SE", "Event", "Subscription-State", "Refer-To", "Date",
                        "RSeq", "RAck", "Retry-After")
# Parsed eagerly so that a malformed value is answered with 400 here rather
# than discovered deep inside a dialog.
_PARSED_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Contact",
                   "Content-Length", "Content-Type", "Expires", "Date", "Require",
                   "Proxy-Require", "Supported", "Accept", "Route", "Record-Route",
                   "Session-Expires", "Min-SE", "Event", "Subscription-State", "Refer-To")

# Body types a UAS of this stack understands, per method; a method absent
# from the map accepts any body (its handler decides).
DEFAULT_BODY_TYPES: Mapping[str, Collection[str]] = {
    "INVITE": ("application/sdp", "multipart/mixed"),
    "ACK": ("application/sdp", "multipart/mixed"),
    "UPDATE": ("application/sdp",),
    "PRACK": ("application/sdp",),
    "OPTIONS": ("application/sdp",),
    "BYE": ("application/sdp",),
    "CANCEL": (),
    "REGISTER": (),
}

# Methods whose answer carries an SDP body, so Accept must allow it.
_ANSWER_NEEDS_SDP = ("INVITE", "UPDATE")


class ErrorResponse(NamedTuple):
    """A rejection: status, reason phrase and extra header (name, value) pairs."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()

    def build(self, request: Request, to_tag: str | None = None) -> Response:
        """The response to send for ``request``."""
        return make_response(request, self.status, self.reason, to_tag, self.headers)


def _bad(reason: str) -> ErrorResponse:
    return ErrorResponse(400, reason)


def check_request(request: Request, supported: Iterable[str] = (),
                  body_types: Mapping[str, Collection[str]] = DEFAULT_BODY_TYPES,
                  uri_schemes: Collection[str] = ("sip", "sips", "tel"),
                  answer_type: str = "application/sdp") -> ErrorResponse | None:
    """Validate an incoming request as a UAS; None means "go ahead".

    ``supported``: option tags this UAS implements (Require beyond them is
    420 with Unsupported).  ``body_types``: acceptable Content-Types per
    method (415 with Accept otherwise).  ``uri_schemes``: Request-URI schemes
    served (416 otherwise).  ``answer_type``: the body type of an answer
    to INVITE/UPDATE, which the request's Accept must allow (406).
    """
    for name in MANDATORY_REQUEST_HEADERS:
        if request.get(name) is None:
            return _bad("Missing %s header" % name)
    for name in SINGLE_VALUE_HEADERS:
        if request.count(name) > 1:
            return _bad("Multiple %s headers" % name)
    try:
        for name in _PARSED_HEADERS:
            request.parsed(name)
        for name in SINGLE_VALUE_HEADERS:
            if len(request.parsed(name)) > 1:
                return _bad("Multiple %s values" % name)
    except SipParseError as exc:
        return ErrorResponse(exc.status, _reason(exc))
    cseq = request.cseq
    if cseq.method != request.method:
        return _bad("CSeq method does not match the request method")
    if request.uri.scheme not in uri_schemes:
        return ErrorResponse(416, "Unsupported URI Scheme")
    if getattr(request.uri, "headers", None):
        return _bad("Request-URI must not contain headers")
    for target in (request.to, request.from_):
        if target.wildcard:
            return _bad("wildcard address in From or To")
    contacts = request.contact
    if any(c.wildcard for c in contacts) and (request.method != "REGISTER" or len(contacts) > 1):
        return _bad("Contact '*' is only allowed alone in REGISTER")
    if request.method not in ("ACK", "CANCEL"):
        supported_tags = {tag.lower() for tag in supported}
        unsupported = [tag for tag in request.parsed("Require")
                       if tag.lower() not in supported_tags]
        if unsupported:
            return ErrorResponse(420, "Bad Extension",
                                 (("Unsupported", ", ".join(unsupported)),))
    error = _check_body(request, body_types)
    if error is not None:
        return error
    if request.method in _ANSWER_NEEDS_SDP and request.get("Accept") is not None:
        if not any(item.matches(answer_type) for item in request.parsed("Accept")):
            return ErrorResponse(406, "Not Acceptable", (("Accept", answer_type),))
    return None


def _reason(exc: SipParseError) -> str:
    # A reason phrase is one line of UTF-8 text; keep it short and printable.
    text = "".join(c if c.isprintable() else "?" for c in exc.reason)
    return ("Bad Request - " + text)[:120] if exc.status == 400 else text[:120]


def _check_body(request: Request, body_types: Mapping[str, Collection[str]]):
    if not request.body:
        return None
    allowed = body_types.get(request.method)
    try:
        encodings = [e.lower() for e in request.parsed("Content-Encoding")]
    except SipParseError as exc:
        return ErrorResponse(400, _reason(exc))
    if any(e != "identity" for e in encodings):
        return ErrorResponse(415, "Unsupported Media Type", (("Accept-Encoding", "identity"),))
    content_type = request.content_type
    if content_type is None:
        return _bad("Body without Content-Type")
    if allowed is None:
        return None
    if content_type.mimetype not in {t.lower() for t in allowed}:
        accept = ", ".join(allowed)
        return ErrorResponse(415, "Unsupported Media Type", (("Accept", accept),))
    return None


def check_session_timer(request: Request, min_se: int = 90) -> ErrorResponse | None:
    """422 with Min-SE if the request's Session-Expires is below ``min_se`` (RFC 4028 8.1)."""
    try:
        session_expires = request.first("Session-Expires")
    except SipParseError as exc:
        return ErrorResponse(400, _reason(exc))
    if session_expires is not None and session_expires.seconds < min_se:
        return ErrorResponse(422, "Session Interval Too Small", (("Min-SE", str(min_se)),))
    return None


def method_not_allowed(method: str, allowed: Iterable[str]) -> ErrorResponse:
    """405 (with Allow) for a method this stack knows, 501 for one it does not."""
    allow = (("Allow", ", ".join(allowed)),)
    if method in KNOWN_METHODS:
        return ErrorResponse(405, "Method Not Allowed", allow)
    return ErrorResponse(501, "Not Implemented", allow)


def check_response(response: Response, max_via: int = 1) -> str | None:
    """Why a UAC must discard ``response`` (None if it may be processed).

    A response with more Via values than ``max_via`` was not meant for this
    element (RFC 3261 8.1.3.3); one with malformed mandatory headers cannot
    be matched to a transaction.
    """
    try:
        vias = response.via
        if not vias:
            return "response without Via"
        if len(vias) > max_via:
            return "response with %d Via values" % len(vias)
        for name in ("From", "To", "Call-ID", "CSeq"):
            if response.get(name) is None:
                return "response without %s" % name
            if response.count(name) > 1:
                return "response with multiple %s" % name
            response.parsed(name)
        for name in ("Contact", "Content-Length", "Content-Type", "Retry-After",
                     "Record-Route", "Require", "Expires", "Min-Expires"):
            response.parsed(name)
    except SipParseError as exc:
        return exc.reason
    return None


def is_unsafe_destination(host: str) -> bool:
    """True for addresses no response may be sent to.

    Broadcast, unspecified and multicast addresses would make this server
    an amplifier (RFC 4475 3.3.10).  Host names are not unsafe by
    themselves (they are checked again after resolution).
    """
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if address.is_unspecified or address.is_multicast:
        return True
    if isinstance(address, ipaddress.IPv4Address):
        return address == ipaddress.IPv4Address("255.255.255.255") or \
            address.is_reserved
    return False


def via_is_unsafe(via: Via) -> bool:
    """True if answering toward this Via could reach a broadcast/multicast address."""
    for host in (via.received, via.maddr, via.host):
        if host and is_unsafe_destination(host):
            return True
    return False
