"""Who a call is from and for: caller identity and diversion (RFC 5806 Diversion,
RFC 7044 History-Info with RFC 4458 causes), read from an INVITE."""

from __future__ import annotations

from portaum_tx.sip.headers import SipParseError
from portaum_tx.sip.message import Request
from portaum_tx.sip.uri import SipURI, SipURIError, TelURI, URI, parse_uri, unescape

__all__ = ["user_of", "diversion_of"]


def user_of(uri: URI | None) -> str:
    if isinstance(uri, SipURI):
        return uri.user_unescaped or ""
    if isinstance(uri, TelURI):
        return uri.number
    return ""


#: RFC 5806 Diversion reasons and RFC 4458 causes -> the Call API's diversion reasons.
_DIVERSION_REASONS = {"user-busy": "busy", "no-answer": "no-answer", "unavailable": "unavailable",
                      "deflection": "unavailable", "out-of-service": "unavailable",
                      "unconditional": "unconditional", "time-of-day": "unconditional",
                      "do-not-disturb": "unavailable", "follow-me": "unconditional",
                      "away": "unavailable"}
_CAUSE_REASONS = {486: "busy", 600: "busy", 408: "no-answer", 480: "unavailable",
                  404: "unavailable", 410: "unavailable", 503: "unavailable",
                  487: "unavailable", 302: "unconditional"}


def diversion_of(request: Request) -> tuple[str | None, str | None]:
    """(original called number, reason) from Diversion (RFC 5806) or History-Info
    (RFC 7044 / RFC 4458); (None, None) when the call was not diverted."""
    try:
        diversions = request.parsed("Diversion")
    except SipParseError:
        diversions = []
    if diversions:
        first = diversions[0]
        reason = (first.param("reason") or "").strip('"').lower()
        return user_of(first.uri) or None, _DIVERSION_REASONS.get(reason, "unknown")
    try:
        history = request.parsed("History-Info")
    except SipParseError:
        history = []
    if len(history) < 2:
        return None, None
    original = user_of(history[0].uri) or None
    reason = None
    for entry in history:
        uri = entry.uri
        cause = None
        if isinstance(uri, SipURI):
            cause = uri.param("cause")
            target = uri.param("target")
            if target:
                try:
                    original = user_of(parse_uri(unescape(target))) or original
                except SipURIError:
                    pass
            for name, value in uri.header_fields():
                if name.lower() == "reason" and "cause=" in unescape(value):
                    cause = unescape(value).split("cause=")[1].split(";")[0]
        if cause and cause.isdigit():
            reason = _CAUSE_REASONS.get(int(cause), "unknown")
            break
    if original == user_of(request.uri):
        return None, None
    return original, reason or "unknown"
