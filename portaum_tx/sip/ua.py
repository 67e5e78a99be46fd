"""The SIP user agent: UAS for incoming calls, UAC for outgoing legs, one dialog layer.

:class:`UserAgent` sits on a :class:`~portaum_tx.sip.transport.SipTransport` and a
:class:`~portaum_tx.sip.transaction.TransactionLayer`.  It validates requests (RFC 3261
8.2: 400/405/416/420/482/483/501 ...), answers OPTIONS, routes in-dialog requests to
their :class:`InviteSession` (481 when there is none), and turns each acceptable
INVITE into an :class:`IncomingSession` handed to ``on_incoming``.  Beyond
``max_calls`` live sessions a new INVITE gets 503 with Retry-After.

An :class:`InviteSession` is one call leg's signalling and its RTP session: offer/answer
(488 when nothing is acceptable), BYE both ways, CANCEL, re-INVITE and UPDATE (hold,
codec change, T.38) with 491 glare handling, SIP INFO DTMF, and RFC 4028 session
timers.  :meth:`UserAgent.dial` places an :class:`OutgoingSession` through the
outbound proxy, answering 401/407 with Digest (MD5 or SHA-256) and cancelling when
nobody answers in time.  Nothing above this module sees a SIP message.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.sip.dialog import Dialog, DialogError, new_call_id, new_tag
from portaum_tx.sip.digest import DigestError, build_authorization, select_challenge
from portaum_tx.sip.headers import NameAddr, SipParseError
from portaum_tx.sip.message import Request, Response, make_response
from portaum_tx.sip.sdp import (
    LocalCapabilities, Negotiation, NotAcceptable, Origin, SdpError, SessionDescription,
    answer_offer, make_offer, parse_sdp, read_answer,
)
from portaum_tx.sip.transaction import (
    ServerTransaction, TimerSettings, TransactionLayer, TwoXXRetransmitter, new_branch,
)
from portaum_tx.sip.transport import Peer, SipTransport, is_ip_literal
from portaum_tx.sip.uri import SipURI, SipURIError, TelURI, URI, parse_uri
from portaum_tx.sip.validate import (
    ErrorResponse, check_request, check_session_timer, method_not_allowed,
)

log = Logger()

__all__ = ["UserAgent", "InviteSession", "IncomingSession", "OutgoingSession", "DialError",
           "Credentials", "ALLOWED_METHODS", "SUPPORTED"]

ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE", "NOTIFY",
                   "SUBSCRIBE", "REFER")
SUPPORTED = ("timer",)
ACCEPT = "application/sdp"
USER_AGENT = "portaum"


class DialError(Exception):
    """An outgoing leg ended without being answered.

    ``reason`` is busy, no-answer, rejected or failed; ``code`` the final status."""

    def __init__(self, target: str, reason: str, code: int | None = None):
        super().__init__("call to %s failed: %s%s" % (target, reason,
                                                        " (%d)" % code if code else ""))
        self.target = target
        self.reason = reason
        self.code = code


@dataclasses.dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def _reason_for_status(status: int) -> str:
    if status in (486, 600):
        return "busy"
    if status in (408, 480, 487):
        return "no-answer"
    if status in (403, 404, 603, 604, 484, 410, 485):
        return "rejected"
    return "failed"


class InviteSession:
    """One call leg: dialog, offer/answer and the leg's RTP session.

    Upper layers register ``on_ended(reason)``, ``on_dtmf(content_type, body)`` (SIP INFO)
    and ``on_media(negotiation)`` (every new offer/answer, e.g. hold or T.38) callbacks.
    ``ended`` fires with the reason (bye, cancel, timeout, local, rejected ...) once.
    """

    direction = "incoming"

    def __init__(self, ua: "UserAgent", rtp):
        self.ua = ua
        self.rtp = rtp
        self.dialog: Dialog | None = None
        self.peer: Peer | None = None          # where our in-dialog requests go
        self.state = "init"
        self.ended: defer.Deferred = defer.Deferred()
        self.end_reason: str | None = None
        self.negotiation: Negotiation | None = None
        self.local_sdp: SessionDescription | None = None
        self.origin = Origin(username="portaum", session_id=ua.new_session_id(),
                             session_version=1, addrtype="IP6" if ":" in ua.host else "IP4",
                             address=ua.host)
        self.t38_port: int | None = None       # set by the fax layer to accept T.38
        # T38FaxRateManagement values accepted in a T.38 offer (the fax layer widens it).
        self.t38_rate_management: tuple[str, ...] = ("transferredTCF",)
        self.on_ended: list[Callable[[str], None]] = []
        self.on_dtmf: list[Callable[[str, bytes], None]] = []
        self.on_media: list[Callable[[Negotiation], None]] = []
        self.on_refer_progress: list[Callable[[int], None]] = []
        self._retransmitters: dict[int, TwoXXRetransmitter] = {}
        self._reoffer_pending = False
        self._remote_reoffer_pending = False
        self._session_timer = None
        self.session_interval: int | None = None
        self.refresher: str | None = None      # "uac" or "uas" of the initial INVITE
        self._we_refresh = False
        self.hold = False                      # the peer put us on hold
        self.local_hold = False                # we put the peer on hold

    # --- identity for upper layers -----------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.dialog.call_id if self.dialog else ""

    @property
    def is_ended(self) -> bool:
        return self.end_reason is not None

    # --- media --------------------------------------------------------------------------

    def capabilities(self, direction: str = "sendrecv") -> LocalCapabilities:
        return LocalCapabilities(self.ua.host, self.rtp.local_port if self.rtp else 9,
                                 ptime=self.ua.ptime, t38_port=self.t38_port,
                                 t38_rate_management=self.t38_rate_management,
                                 direction=direction)

    def _apply(self, negotiation: Negotiation) -> None:
        self.negotiation = negotiation
        audio = negotiation.audio
        if audio is not None and self.rtp is not None:
            self.ua.configure_media(self.rtp, audio)
        self.hold = negotiation.on_hold
        for listener in list(self.on_media):
            try:
                listener(negotiation)
            except Exception:
                log.failure("media listener failed")

    def _answer_offer(self, body: bytes) -> Negotiation:
        """Our answer to ``body`` (raises NotAcceptable or SdpError)."""
        offer = parse_sdp(body)
        self.origin = self.origin.bumped() if self.local_sdp is not None else self.origin
        negotiation = answer_offer(offer, self.capabilities(), self.origin)
        return negotiation

    # --- sending in the dialog ----------------------------------------------------------

    def _request(self, method: str, headers=(), body: bytes = b"", cseq: int | None = None) -> Request:
        return self.dialog.make_request(method, self.ua.via_host(self.peer), self.peer.via_transport,
                                        contact=self.ua.contact(self.peer), cseq=cseq,
                                        headers=list(headers) + self.ua.common_headers(),
                                        body=body)

    def send_request(self, method: str, headers=(), body: bytes = b"") -> defer.Deferred:
        """Send an in-dialog request; the Deferred fires with the final Response."""
        request = self._request(method, headers, body)
        transaction = self.ua.layer.send_request(request, self.peer, self.peer.reliable)
        return transaction.final

    def send_info_dtmf(self, digit: str, duration_ms: int = 160) -> defer.Deferred:
        body = ("Signal=%s\r\nDuration=%d\r\n" % (digit, duration_ms)).encode()
        return self.send_request("INFO", [("Content-Type", "application/dtmf-relay")], body)

    async def reoffer(self, hold: bool = False, t38: bool = False, audio: bool = True,
                      method: str = "INVITE") -> Negotiation:
        """Send a new offer (re-INVITE or UPDATE): hold/unhold, codec refresh, switch to
        T.38 (``t38=True, audio=False`` with :attr:`t38_port` set).  Raises DialError
        with the status when the peer refuses (491 glare is retried once after a pause)."""
        if self.state != "confirmed":
            raise DialError(self.call_id, "failed", None)
        for attempt in range(2):
            if self._reoffer_pending or self._remote_reoffer_pending:
                response_status = 491
            else:
                self._reoffer_pending = True
                try:
                    self.origin = self.origin.bumped()
                    offer = make_offer(self.capabilities("sendonly" if hold else "sendrecv"),
                                       self.origin, t38=t38, audio=audio)
                    request = self._request(method, self._timer_headers("uac")
                                            + [("Content-Type", ACCEPT)], offer.serialize())
                    transaction = self.ua.layer.send_request(request, self.peer, self.peer.reliable)
                    response = await transaction.final
                    response_status = response.status
                    if 200 <= response.status < 300:
                        if method == "INVITE":
                            self._send_ack(request, response)
                        self.dialog.update_target(response)
                        self.local_sdp = offer
                        try:
                            negotiation = read_answer(offer, parse_sdp(response.body))
                        except (SdpError, NotAcceptable) as exc:
                            log.warn("bad answer to our re-offer: {why}", why=exc)
                            raise DialError(self.call_id, "failed", response.status) from None
                        self._apply(negotiation)
                        self.local_hold = hold
                        self._restart_session_timer()
                        return negotiation
                    if response.status in (408, 481):
                        self._end("timeout" if response.status == 408 else "gone", send_bye=False)
                finally:
                    self._reoffer_pending = False
            if response_status != 491 or attempt:
                raise DialError(self.call_id, _reason_for_status(response_status), response_status)
            # RFC 3261 14.1: wait 2.1-4 s (we own the Call-ID: 2.1 s; else up to 2 s).
            await _sleep(self.ua.clock, 2.1 if self.direction == "outgoing" else 1.0)
        raise DialError(self.call_id, "failed", 491)

    def _send_ack(self, invite: Request, response: Response, body: bytes = b"") -> Request:
        ack = self.dialog.make_request("ACK", self.ua.via_host(self.peer), self.peer.via_transport,
                                       cseq=invite.cseq.number, body=body)
        if body:
            ack.add("Content-Type", ACCEPT)
        self.ua.send_direct(ack, self.peer)
        return ack

    # --- ending ---------------------------------------------------------------------------

    def hangup(self) -> defer.Deferred:
        """End the leg from our side (BYE, CANCEL or an error response as the state needs)."""
        return defer.ensureDeferred(self._hangup())

    async def _hangup(self) -> None:
        if self.is_ended:
            return
        self._end("local", send_bye=True)

    def _end(self, reason: str, send_bye: bool = False) -> None:
        if self.end_reason is not None:
            return
        self.end_reason = reason
        previous, self.state = self.state, "ended"
        if send_bye and previous in ("confirmed", "answering") and self.dialog is not None:
            try:
                request = self._request("BYE", [("Reason", 'SIP;cause=200;text="Call completed"')]
                                        if reason == "local" else [])
                self.ua.layer.send_request(request, self.peer, self.peer.reliable)
            except Exception:
                log.failure("could not send BYE")
        self._stop_timers()
        self.ua.forget(self)
        # Listeners first: the call learns why it ended before its media closes.
        for listener in list(self.on_ended):
            try:
                listener(reason)
            except Exception:
                log.failure("hang-up listener failed")
        if self.rtp is not None:
            try:
                self.rtp.close("hangup")
            except Exception:
                log.failure("closing the RTP session failed")
        self.ended.callback(reason)

    def _stop_timers(self) -> None:
        for retransmitter in self._retransmitters.values():
            retransmitter.stop()
        self._retransmitters.clear()
        if self._session_timer is not None and self._session_timer.active():
            self._session_timer.cancel()
        self._session_timer = None

    # --- session timers (RFC 4028) -------------------------------------------------------

    def _timer_headers(self, role: str) -> list[tuple[str, str]]:
        """Session-Expires for a request we send (``role`` uac) or a response (uas)."""
        if not self.session_interval:
            return []
        other = "uas" if role == "uac" else "uac"
        refresher = role if self._we_refresh else other
        return [("Session-Expires", "%d;refresher=%s" % (self.session_interval, refresher)),
                ("Supported", "timer")]

    def _restart_session_timer(self) -> None:
        if not self.session_interval or self.is_ended:
            return
        if self._session_timer is not None and self._session_timer.active():
            self._session_timer.cancel()
        if self._we_refresh:
            self._session_timer = self.ua.clock.callLater(self.session_interval / 2.0,
                                                          self._refresh)
        else:
            # RFC 4028 10: BYE at expiry minus max(32 s, interval / 3) if no refresh came.
            delay = self.session_interval - min(32, self.session_interval / 3.0)
            self._session_timer = self.ua.clock.callLater(delay, self._expired)

    def _refresh(self) -> None:
        self._session_timer = None

        def failed(failure):
            failure.trap(DialError)
            if not self.is_ended:
                log.info("session refresh failed: {why}", why=failure.getErrorMessage())
                self._end("session-expired", send_bye=True)
        d = defer.ensureDeferred(self.reoffer(hold=self.local_hold))
        d.addErrback(failed)
        d.addErrback(lambda f: log.failure("session refresh", f))

    def _expired(self) -> None:
        self._session_timer = None
        self._end("session-expired", send_bye=True)

    # --- requests inside the dialog ---------------------------------------------------------

    def handle_request(self, transaction: ServerTransaction | None, request: Request) -> None:
        method = request.method
        if method == "ACK":
            self._ack_received(request)
            return
        if not self.dialog.accept_remote_cseq(request):
            transaction.respond(make_response(request, 500, "CSeq out of order",
                                              headers=[("Retry-After", "1")]))
            return
        if method == "BYE":
            transaction.respond(self.ua.response(request, 200))
            self._end("bye")
        elif method in ("INVITE", "UPDATE"):
            self._reoffer_received(transaction, request)
        elif method == "INFO":
            self._info(transaction, request)
        elif method == "OPTIONS":
            transaction.respond(self.ua.options_response(request))
        elif method == "NOTIFY":
            self._notify(transaction, request)
        else:
            transaction.respond(method_not_allowed(method, ALLOWED_METHODS).build(request))

    def _ack_received(self, request: Request) -> None:
        retransmitter = self._retransmitters.pop(request.cseq.number, None)
        if retransmitter is not None:
            retransmitter.ack_received()
            self._remote_reoffer_pending = False

    def _info(self, transaction, request: Request) -> None:
        content_type = request.content_type
        mimetype = content_type.mimetype if content_type else ""
        if mimetype in ("application/dtmf-relay", "application/dtmf"):
            transaction.respond(self.ua.response(request, 200))
            for listener in list(self.on_dtmf):
                try:
                    listener(mimetype, request.body)
                except Exception as exc:
                    log.info("ignoring SIP INFO DTMF: {why}", why=exc)
            return
        if not request.body:
            transaction.respond(self.ua.response(request, 200))  # RFC 6086 keep-alive INFO
            return
        transaction.respond(self.ua.response(request, 415, headers=[
            ("Accept", "application/dtmf-relay, application/dtmf")]))

    def _notify(self, transaction, request: Request) -> None:
        # The implicit subscription of a REFER we sent (RFC 3515): report the sipfrag status.
        event = (request.get("Event") or "").split(";")[0].strip().lower()
        if event != "refer":
            transaction.respond(self.ua.response(request, 489))
            return
        transaction.respond(self.ua.response(request, 200))
        text = request.body.decode("utf-8", "replace").strip()
        parts = text.split(" ")
        if len(parts) >= 2 and parts[0].upper().startswith("SIP/") and parts[1].isdigit():
            status = int(parts[1])
            for listener in list(self.on_refer_progress):
                listener(status)

    def _reoffer_received(self, transaction, request: Request) -> None:
        is_invite = request.method == "INVITE"
        if self.state != "confirmed" and not (request.method == "UPDATE" and self.state in (
                "early", "answering")):
            transaction.respond(self.ua.response(request, 491 if self.state == "answering" else 500,
                                                 headers=[("Retry-After", "1")]))
            return
        if self._reoffer_pending or self._remote_reoffer_pending:
            transaction.respond(self.ua.response(request, 491))
            return
        error = check_session_timer(request, self.ua.min_se)
        if error is not None:
            transaction.respond(error.build(request))
            return
        body = request.body_part(ACCEPT)
        try:
            if body:
                negotiation = self._answer_offer(body)
            else:
                # An offerless re-INVITE: we offer what we have, the answer comes in ACK.
                negotiation = None
        except NotAcceptable:
            transaction.respond(self.ua.response(request, 488))
            return
        except SdpError as exc:
            transaction.respond(self.ua.response(request, 400, "Bad SDP: %s" % str(exc)[:80]))
            return
        self.dialog.update_target(request)
        self._accept_session_timer(request)
        if negotiation is not None:
            sdp = negotiation.sdp
            self.local_sdp = sdp
            self._apply(negotiation)
        else:
            self.origin = self.origin.bumped()
            sdp = make_offer(self.capabilities(), self.origin)
            self.local_sdp = sdp
        ok = self.ua.response(request, 200, headers=[("Contact", self.ua.contact(self.peer)),
                                                     ("Content-Type", ACCEPT)]
                              + self._timer_headers("uas"), body=sdp.serialize())
        transaction.respond(ok)
        if is_invite:
            self._remote_reoffer_pending = True   # until its ACK: no offer of ours meanwhile
            self._retransmitters[request.cseq.number] = TwoXXRetransmitter(
                self.ua.clock, self.ua.send_direct, ok, transaction.source,
                transaction.reliable, timers=self.ua.timers, already_sent=True,
                on_timeout=lambda: self._end("no-ack", send_bye=True))
        self._restart_session_timer()

    def _accept_session_timer(self, request: Request) -> None:
        try:
            expires = request.first("Session-Expires")
            supported = [t.lower() for t in request.parsed("Supported")]
        except SipParseError:
            return
        if expires is None:
            if self.session_interval is None and self.ua.session_expires:
                # The peer does not use timers: we refresh ourselves (RFC 4028 9).
                self.session_interval = self.ua.session_expires
                self.refresher = "uas" if self.direction == "incoming" else "uac"
                self._we_refresh = True
            return
        self.session_interval = max(expires.seconds, self.ua.min_se)
        refresher = expires.refresher
        if refresher is None:
            refresher = "uac" if "timer" in supported else "uas"
        self._we_refresh = refresher == "uas"  # we are the UAS of this request


def _transaction_headers_usable(request: Request) -> bool:
    try:
        return None not in (request.top_via, request.cseq, request.to, request.from_,
                            request.call_id)
    except SipParseError:
        return False


async def _sleep(clock, seconds: float) -> None:
    d = defer.Deferred()
    clock.callLater(seconds, d.callback, None)
    await d


def _user_of(uri: URI | None) -> str:
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
        return _user_of(first.uri) or None, _DIVERSION_REASONS.get(reason, "unknown")
    try:
        history = request.parsed("History-Info")
    except SipParseError:
        history = []
    if len(history) < 2:
        return None, None
    original = _user_of(history[0].uri) or None
    reason = None
    for entry in history:
        uri = entry.uri
        cause = None
        if isinstance(uri, SipURI):
            cause = uri.param("cause")
            target = uri.param("target")
            if target:
                try:
                    original = _user_of(parse_uri(_unescape(target))) or original
                except SipURIError:
                    pass
            for name, value in uri.header_fields():
                if name.lower() == "reason" and "cause=" in _unescape(value):
                    cause = _unescape(value).split("cause=")[1].split(";")[0]
        if cause and cause.isdigit():
            reason = _CAUSE_REASONS.get(int(cause), "unknown")
            break
    if original == _user_of(request.uri):
        return None, None
    return original, reason or "unknown"


def _unescape(text: str) -> str:
    from portaum_tx.sip.uri import unescape
    return unescape(text)


class IncomingSession(InviteSession):
    """The UAS side of a call: built from an INVITE, answered or rejected above."""

    direction = "incoming"

    def __init__(self, ua: "UserAgent", rtp, transaction: ServerTransaction, request: Request):
        super().__init__(ua, rtp)
        self.transaction = transaction
        self.invite = request
        self.dialog = Dialog.for_uas(request, new_tag())
        self.peer = ua.flow_peer(transaction.source, self.dialog)
        self.state = "incoming"
        self.acked: defer.Deferred = defer.Deferred()
        self.offer_body = request.body_part(ACCEPT)
        self.pending: Negotiation | None = None
        self._bye_after_ack = False
        self.called = _user_of(request.uri)
        self.calling_name = None
        caller = None
        try:
            identities = request.parsed("P-Asserted-Identity")
            caller = identities[0] if identities else request.from_
        except SipParseError:
            caller = request.from_
        self.calling = _user_of(caller.uri)
        if self.calling.lower() in ("anonymous", "unknown", "restricted"):
            self.calling = ""
        self.calling_name = caller.display or None
        self.original_called, self.diversion_reason = diversion_of(request)

    def header(self, name: str) -> str | None:
        """A header of the INVITE (for logging and xDRs, not for applications' logic)."""
        return self.invite.get(name)

    def prepare(self) -> None:
        """Work out our answer now, so a hopeless offer is refused (488) before routing."""
        if self.offer_body:
            self.pending = self._answer_offer(self.offer_body)

    def _respond(self, response: Response) -> None:
        if self.transaction.state in ("proceeding",):
            self.transaction.respond(response)

    def ring(self, early_media: bool = False) -> None:
        """180 Ringing (or 183 with our SDP, for announcements before answer)."""
        if self.state != "incoming":
            return
        if early_media and self.pending is not None:
            self._respond(self.ua.response(self.invite, 183, to_tag=self.dialog.local_tag, headers=[
                ("Contact", self.ua.contact(self.peer)), ("Content-Type", ACCEPT)],
                body=self.pending.sdp.serialize()))
            self._apply(self.pending)
        else:
            self._respond(self.ua.response(self.invite, 180, to_tag=self.dialog.local_tag,
                                           headers=[("Contact", self.ua.contact(self.peer))]))

    async def answer(self) -> None:
        """200 OK with our SDP; returns once the ACK came (media flows from then on)."""
        if self.state != "incoming":
            if self.state == "ended":
                raise DialError(self.call_id, "failed")
            return
        if self.pending is not None:
            sdp = self.pending.sdp
        else:  # delayed offer: ours goes in the 200, theirs comes in the ACK
            sdp = make_offer(self.capabilities(), self.origin)
        self.local_sdp = sdp
        self._accept_session_timer(self.invite)
        ok = self.ua.response(self.invite, 200, to_tag=self.dialog.local_tag, headers=[
            ("Contact", self.ua.contact(self.peer)), ("Content-Type", ACCEPT)]
            + self._timer_headers("uas"), body=sdp.serialize())
        self.state = "answering"
        self.dialog.state = "confirmed"
        self.transaction.respond(ok)
        self._retransmitters[self.invite.cseq.number] = TwoXXRetransmitter(
            self.ua.clock, self.ua.send_direct, ok, self.transaction.source,
            self.transaction.reliable, timers=self.ua.timers, already_sent=True,
            on_timeout=self._no_ack)
        if self.pending is not None:
            self._apply(self.pending)
        await self.acked
        if self.is_ended:
            raise DialError(self.call_id, "failed")

    def _no_ack(self) -> None:
        self._retransmitters.pop(self.invite.cseq.number, None)
        self.state = "confirmed"
        self._end("no-ack", send_bye=True)
        if not self.acked.called:
            self.acked.callback(None)

    def _ack_received(self, request: Request) -> None:
        super()._ack_received(request)
        if self.state != "answering" or request.cseq.number != self.invite.cseq.number:
            return
        self.state = "confirmed"
        body = request.body_part(ACCEPT)
        if self.pending is None and body and self.local_sdp is not None:
            try:
                self._apply(read_answer(self.local_sdp, parse_sdp(body)))
            except (SdpError, NotAcceptable) as exc:
                log.info("unusable SDP answer in ACK ({why}); hanging up", why=exc)
                self._end("bad-sdp", send_bye=True)
        self._restart_session_timer()
        if self._bye_after_ack:
            self._end("local", send_bye=True)
        if not self.acked.called:
            self.acked.callback(None)

    def reject(self, status: int, reason: str | None = None, headers=()) -> None:
        if self.state != "incoming":
            return
        self._respond(self.ua.response(self.invite, status, reason, to_tag=self.dialog.local_tag,
                                       headers=list(headers)))
        self._end("rejected")

    def cancelled(self) -> None:
        """The caller sent CANCEL (the CANCEL itself is already answered)."""
        if self.state != "incoming":
            return
        self._respond(self.ua.response(self.invite, 487, to_tag=self.dialog.local_tag))
        self._end("cancel")

    async def _hangup(self) -> None:
        if self.is_ended:
            return
        if self.state == "incoming":
            self.reject(480)
            self.end_reason = "local"
            return
        if self.state == "answering":
            self._bye_after_ack = True   # RFC 3261 15: no BYE before the ACK
            await self.acked
            return
        self._end("local", send_bye=True)

    def transfer(self, target: str) -> defer.Deferred:
        """Blind transfer by REFER (RFC 3515); fires with the final NOTIFY status
        (2xx: the transfer worked) or errbacks with DialError when refused."""
        result: defer.Deferred = defer.Deferred()

        def progress(status: int) -> None:
            if status >= 200 and not result.called:
                result.callback(status)
        self.on_refer_progress.append(progress)

        def refer_answered(response: Response):
            if response.status >= 300 and not result.called:
                result.errback(DialError(target, _reason_for_status(response.status),
                                         response.status))
        d = self.send_request("REFER", [("Refer-To", "<%s>" % target),
                                        ("Referred-By", "<%s>" % self.dialog.local.uri)])
        d.addCallback(refer_answered)
        return result


class OutgoingSession(InviteSession):
    """The UAC side: an outgoing leg (transfer, queue agent, callback, toll call)."""

    direction = "outgoing"

    def __init__(self, ua: "UserAgent", rtp, target: URI, from_addr: NameAddr,
                 destination: Peer, credentials: Credentials | None,
                 route: list[str] = (), headers: Iterable[tuple[str, str]] = ()):
        super().__init__(ua, rtp)
        self.target = target
        self.from_addr = from_addr
        self.peer = destination
        self.credentials = credentials
        self.route = list(route)
        self.extra_headers = list(headers)
        self.state = "calling"
        self.answered: defer.Deferred = defer.Deferred(self._abandon)
        self.early: list[Callable[[], None]] = []   # early media started
        self.call_id_value = new_call_id(ua.host)
        self.invite: Request | None = None
        self.transaction = None
        self._auth_attempts = 0
        self._timeout_call = None
        self._cancelled = False
        self._ack: Request | None = None
        self.last_status: int | None = None

    @property
    def call_id(self) -> str:
        return self.call_id_value

    def start(self, timeout: float) -> defer.Deferred:
        """Send the INVITE; the Deferred fires with this session once answered, or
        errbacks with :class:`DialError`."""
        self.origin = self.origin
        self.local_sdp = make_offer(self.capabilities(), self.origin)
        cseq = 1
        invite = Request("INVITE", self.target)
        invite.add("Via", "SIP/2.0/%s %s;branch=%s;rport" % (
            self.peer.via_transport, self.ua.via_host(self.peer), new_branch()))
        invite.add("Max-Forwards", "70")
        for route in self.route:
            invite.add("Route", route)
        invite.add("From", str(self.from_addr))
        invite.add("To", "<%s>" % self.target)
        invite.add("Call-ID", self.call_id_value)
        invite.add("CSeq", "%d INVITE" % cseq)
        invite.add("Contact", self.ua.contact(self.peer))
        invite.add("Allow", ", ".join(ALLOWED_METHODS))
        invite.add("Supported", ", ".join(SUPPORTED))
        if self.ua.session_expires:
            invite.add("Session-Expires", str(self.ua.session_expires))
        for name, value in self.extra_headers + self.ua.common_headers():
            invite.add(name, value)
        invite.add("Content-Type", ACCEPT)
        invite.body = self.local_sdp.serialize()
        self._send_invite(invite)
        if timeout:
            self._timeout_call = self.ua.clock.callLater(timeout, self._timed_out)
        self.ua.register_outgoing(self)
        return self.answered

    def _send_invite(self, invite: Request) -> None:
        if self._cancelled or self.is_ended:
            return
        self.invite = invite
        self.transaction = self.ua.layer.send_request(invite, self.peer, self.peer.reliable,
                                                      self._on_response)

    def _abandon(self, answered: defer.Deferred) -> None:
        """The caller cancelled the wait: CANCEL the INVITE (or BYE a late answer)."""
        if self.state in ("calling", "early"):
            self._cancel("local")
            if self._timeout_call is not None and self._timeout_call.active():
                self._timeout_call.cancel()
            self._end("local")
        elif self.state == "confirmed":
            self._end("local", send_bye=True)

    def _timed_out(self) -> None:
        self._timeout_call = None
        self._cancel("no-answer")

    def _cancel(self, why: str) -> None:
        if self.state not in ("calling", "early") or self._cancelled:
            return
        self._cancelled = why
        if self.transaction is not None:
            self.transaction.cancel()

    async def _hangup(self) -> None:
        if self.is_ended:
            return
        if self.state in ("calling", "early"):
            self._cancel("local")
            self._fail(DialError(str(self.target), "cancelled"), "local")
            return
        self._end("local", send_bye=True)

    def _fail(self, error: DialError, reason: str) -> None:
        if self._timeout_call is not None and self._timeout_call.active():
            self._timeout_call.cancel()
        self._end(reason)
        if not self.answered.called:
            self.answered.errback(error)

    def _on_response(self, transaction, response: Response) -> None:
        if transaction is not self.transaction:
            return
        status = response.status
        self.last_status = status
        if status < 200:
            if status > 100 and response.to.tag and self.state == "calling":
                self.state = "early"
            body = response.body_part(ACCEPT)
            if body and self.negotiation is None and self.state in ("calling", "early"):
                try:
                    self._apply(read_answer(self.local_sdp, parse_sdp(body)))
                    for listener in list(self.early):
                        listener()
                except (SdpError, NotAcceptable) as exc:
                    log.info("ignoring early SDP: {why}", why=exc)
            return
        if status < 300:
            self._accepted(response)
            return
        if status in (401, 407) and self.credentials is not None and self._auth_attempts < 2 \
                and not self._cancelled:
            if self._authenticate(response):
                return
        if self.state in ("calling", "early"):
            reason = self._cancelled if self._cancelled in ("no-answer",) else \
                _reason_for_status(status)
            self._fail(DialError(str(self.target), reason, status), reason)

    def _authenticate(self, response: Response) -> bool:
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        try:
            challenge = select_challenge(response.get_all(header))
        except DigestError as exc:
            log.info("cannot answer the challenge of {target}: {why}", target=self.target, why=exc)
            return False
        self._auth_attempts += 1
        invite = self.invite.copy()
        for entry in invite.headers:
            if entry[0].lower() in ("via", "v"):
                entry[1] = "SIP/2.0/%s %s;branch=%s;rport" % (
                    self.peer.via_transport, self.ua.via_host(self.peer), new_branch())
                break
        invite.headers = list(invite.headers)  # typed values are re-parsed
        invite.set("CSeq", "%d INVITE" % (self.invite.cseq.number + 1))
        authorization = build_authorization(challenge, self.credentials.username,
                                            self.credentials.password, "INVITE",
                                            str(self.invite.uri))
        invite.remove("Authorization")
        invite.remove("Proxy-Authorization")
        invite.add("Authorization" if response.status == 401 else "Proxy-Authorization",
                   str(authorization))
        # The transaction sends its ACK for the challenge right after telling us of it;
        # the new INVITE must follow that ACK, not overtake it.
        self.ua.clock.callLater(0, self._send_invite, invite)
        self.transaction = None
        return True

    def _accepted(self, response: Response) -> None:
        tag = response.to.tag
        if self.is_ended and self.dialog is None:
            self._drop_fork(response)   # answered after we gave up: ACK, then BYE
            return
        if self.dialog is not None and self.state in ("confirmed", "ended"):
            if tag == self.dialog.remote_tag and self._ack is not None:
                self.ua.send_direct(self._ack, self.peer)   # our ACK was lost
            else:
                self._drop_fork(response)
            return
        try:
            self.dialog = Dialog.for_uac(self.invite, response)
        except DialogError as exc:
            log.info("unusable 2xx to our INVITE: {why}", why=exc)
            self._fail(DialError(str(self.target), "failed", response.status), "failed")
            return
        self.peer = self.ua.flow_peer(self.peer, self.dialog, outgoing=True)
        self.dialog.state = "confirmed"
        self.ua.register_dialog(self.dialog.key, self)
        self._ack = self._send_ack(self.invite, response)
        if self._cancelled or self.state not in ("calling", "early"):
            # Answered as we gave up: RFC 3261 9.1, ACK then BYE.
            self.state = "confirmed"
            self._end(self._cancelled or "local", send_bye=True)
            if not self.answered.called:
                self.answered.errback(DialError(str(self.target), self._cancelled or "cancelled"))
            return
        if self._timeout_call is not None and self._timeout_call.active():
            self._timeout_call.cancel()
        self.state = "confirmed"
        body = response.body_part(ACCEPT)
        try:
            if body:
                self._apply(read_answer(self.local_sdp, parse_sdp(body)))
            elif self.negotiation is None:
                raise NotAcceptable("2xx without SDP answer")
        except (SdpError, NotAcceptable) as exc:
            log.info("unusable SDP answer from {target}: {why}", target=self.target, why=exc)
            self._end("bad-sdp", send_bye=True)
            self.answered.errback(DialError(str(self.target), "failed", response.status))
            return
        try:
            expires = response.first("Session-Expires")
        except SipParseError:
            expires = None
        if expires is not None:
            self.session_interval = max(expires.seconds, self.ua.min_se)
            self._we_refresh = (expires.refresher or "uac") == "uac"
        self._restart_session_timer()
        self.answered.callback(self)

    def _drop_fork(self, response: Response) -> None:
        try:
            dialog = Dialog.for_uac(self.invite, response)
        except DialogError:
            return
        ack = dialog.make_request("ACK", self.ua.via_host(self.peer), self.peer.via_transport,
                                  cseq=self.invite.cseq.number)
        self.ua.send_direct(ack, self.peer)
        bye = dialog.make_request("BYE", self.ua.via_host(self.peer), self.peer.via_transport)
        self.ua.layer.send_request(bye, self.peer, self.peer.reliable)


class UserAgent:
    """One node's SIP user agent over a transport.

    ``media`` creates RTP sessions (``create_session()``, a
    :class:`~portaum_tx.rtp.engine.MediaEngine`); ``on_incoming(session)`` receives every
    acceptable INVITE as an :class:`IncomingSession`; ``host`` is the address written
    in Via, Contact and SDP; ``ports`` maps transport names to our listening ports.
    ``resolve(host)`` returns a Deferred IP address for names in URIs.
    ``extensions`` maps out-of-dialog methods (SUBSCRIBE) to ``handler(transaction,
    request)``; such handlers register their dialogs with :meth:`register_dialog`.
    """

    def __init__(self, clock, transport: SipTransport, *, host: str, media,
                 on_incoming: Callable[[IncomingSession], None] | None = None,
                 ports: dict[str, int] | None = None, domain: str = "",
                 max_calls: int = 1000, session_expires: int = 1800, min_se: int = 90,
                 ptime: int = 20, outbound_proxy: str = "", credentials: Credentials | None = None,
                 resolve: Callable[[str], Any] | None = None,
                 timers: TimerSettings = TimerSettings(), retry_after: int = 30,
                 user: str = "portaum"):
        self.clock = clock
        self.transport = transport
        self.host = host
        self.media = media
        self.on_incoming = on_incoming
        self.ports = dict(ports or {"udp": 5060})
        self.domain = domain or host
        self.max_calls = max_calls
        self.session_expires = session_expires
        self.min_se = min_se
        self.ptime = ptime
        self.outbound_proxy = parse_uri(outbound_proxy) if outbound_proxy else None
        self.credentials = credentials
        self.resolve = resolve
        self.timers = timers
        self.retry_after = retry_after
        self.user = user
        self.layer = TransactionLayer(clock, self._send, self._on_request, self._on_stray_response,
                                      timers)
        transport.deliver = self.receive
        transport.on_connection_lost = lambda peer: self.layer.transport_failed(
            peer, ConnectionError("connection to %s lost" % peer))
        self.dialogs: dict[tuple, Any] = {}
        self.sessions: set[InviteSession] = set()
        self.incoming_by_transaction: dict[ServerTransaction, IncomingSession] = {}
        self.extensions: dict[str, Callable[[ServerTransaction, Request], None]] = {}
        #: Handlers for in-dialog requests of dialogs not held in memory (SUBSCRIBE
        #: refreshes of subscriptions kept in the store).
        self.dialog_fallbacks: dict[str, Callable[[ServerTransaction, Request], None]] = {}
        self._session_ids = 0
        self.rejected_busy = 0

    # --- plumbing ---------------------------------------------------------------------------

    def receive(self, message, peer: Peer, reliable: bool) -> None:
        if isinstance(message, Request) and message.method != "ACK" and \
                not _transaction_headers_usable(message):
            # The transaction layer cannot match it: answer statelessly (RFC 3261 8.2).
            error = check_request(message, SUPPORTED) or ErrorResponse(400, "Bad Request")
            self.send_direct(error.build(message, new_tag()), peer)
            return
        self.layer.receive(message, peer, reliable)

    def _send(self, message, peer: Peer) -> None:
        self.transport.send(message, peer)

    def send_direct(self, message, peer: Peer) -> None:
        try:
            self.transport.send(message, peer)
        except Exception as exc:
            log.info("could not send {what} to {peer}: {why}", what=message.start_line(),
                     peer=peer, why=exc)

    def new_session_id(self) -> int:
        self._session_ids += 1
        return int(self.clock.seconds()) * 1000 + self._session_ids % 1000

    def via_host(self, peer: Peer | None) -> str:
        transport = peer.transport if peer is not None else "udp"
        port = self.ports.get(transport) or self.ports.get("udp") or 5060
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (host, port)

    def contact(self, peer: Peer | None = None) -> str:
        transport = peer.transport if peer is not None else "udp"
        suffix = "" if transport == "udp" else ";transport=%s" % transport
        return "<sip:%s@%s%s>" % (self.user, self.via_host(peer), suffix)

    def common_headers(self) -> list[tuple[str, str]]:
        return [("User-Agent", USER_AGENT)]

    def response(self, request: Request, status: int, reason: str | None = None,
                 to_tag: str | None = None, headers=(), body: bytes = b"") -> Response:
        extra = list(headers) + [("Server", USER_AGENT)]
        return make_response(request, status, reason, to_tag or new_tag(), extra, body)

    def options_response(self, request: Request) -> Response:
        return self.response(request, 200, headers=[
            ("Allow", ", ".join(ALLOWED_METHODS)), ("Accept", ACCEPT),
            ("Accept-Encoding", "identity"), ("Accept-Language", "en"),
            ("Supported", ", ".join(SUPPORTED))])

    def flow_peer(self, source: Peer, dialog: Dialog, outgoing: bool = False) -> Peer:
        """Where our requests in ``dialog`` go: the first route when it names an address,
        else back along the flow the dialog arrived on (symmetric: it works through NAT)."""
        if dialog.route_set:
            try:
                uri = dialog.first_hop()
            except SipParseError:
                uri = None
            if isinstance(uri, SipURI) and is_ip_literal(uri.host):
                transport = (uri.transport or ("tls" if uri.secure else "udp")).lower()
                if transport == source.transport or not source.reliable:
                    return Peer(transport, uri.host.strip("[]"),
                                uri.port or (5061 if transport == "tls" else 5060))
        if outgoing and not dialog.route_set and self.outbound_proxy is None:
            uri = dialog.remote_target
            if isinstance(uri, SipURI) and is_ip_literal(uri.host) and not source.reliable:
                return Peer("udp", uri.host.strip("[]"), uri.port or 5060)
        return source

    def register_dialog(self, key: tuple, handler) -> None:
        self.dialogs[key] = handler

    def unregister_dialog(self, key: tuple) -> None:
        self.dialogs.pop(key, None)

    def register_outgoing(self, session: OutgoingSession) -> None:
        self.sessions.add(session)

    def forget(self, session: InviteSession) -> None:
        self.sessions.discard(session)
        if session.dialog is not None:
            if self.dialogs.get(session.dialog.key) is session:
                del self.dialogs[session.dialog.key]
        if isinstance(session, IncomingSession):
            self.incoming_by_transaction.pop(session.transaction, None)

    @property
    def active_calls(self) -> int:
        return len(self.sessions)

    def configure_media(self, rtp, stream) -> None:
        from portaum_tx.rtp.session import MediaParams, RtpSessionError
        address = stream.remote_address or "0.0.0.0"
        if not is_ip_literal(address):
            log.info("SDP connection address {address} is not an IP address; media not sent",
                     address=address)
            return
        ptime = stream.ptime if stream.ptime in (10, 20, 30, 40, 60) else self.ptime
        direction = stream.direction
        if stream.on_hold_null:
            direction = "inactive" if direction in ("inactive", "sendonly") else "recvonly"
        try:
            rtp.configure(MediaParams(remote_address=(address, stream.remote_port),
                                      payload_type=stream.payload_type or 0,
                                      telephone_event_pt=stream.telephone_event_pt
                                      if stream.telephone_event_pt and
                                      96 <= stream.telephone_event_pt <= 127 else None,
                                      ptime=ptime, direction=direction))
            if not rtp.started:
                rtp.start()
        except RtpSessionError as exc:
            log.info("cannot use the negotiated media: {why}", why=exc)

    def shutdown(self) -> None:
        for session in list(self.sessions):
            session._end("shutdown", send_bye=True)
        self.layer.shutdown()

    # --- inbound requests -----------------------------------------------------------------

    def _on_stray_response(self, response: Response, source) -> None:
        try:
            if response.cseq.method != "INVITE" or not 200 <= response.status < 300:
                return
            key = (response.call_id, response.from_.tag, response.to.tag)
        except (SipParseError, AttributeError):
            return
        session = self.dialogs.get(key)
        if isinstance(session, OutgoingSession):
            session._accepted(response)

    def _on_request(self, transaction: ServerTransaction | None, request: Request) -> None:
        try:
            self._dispatch(transaction, request)
        except Exception:
            log.failure("handling {method} failed", method=request.method)
            if transaction is not None and transaction.state in ("trying", "proceeding"):
                transaction.respond(self.response(request, 500))

    def _dialog_key(self, request: Request) -> tuple:
        return (request.call_id, request.to.tag, request.from_.tag)

    def _dispatch(self, transaction: ServerTransaction | None, request: Request) -> None:
        if transaction is None:  # an ACK for a 2xx
            try:
                handler = self.dialogs.get(self._dialog_key(request))
            except SipParseError:
                return
            if handler is not None:
                handler.handle_request(None, request)
            return
        if transaction.merged_with is not None:
            transaction.respond(self.response(request, 482))
            return
        error = check_request(request, SUPPORTED)
        if error is not None:
            transaction.respond(error.build(request, new_tag()))
            return
        if request.method == "CANCEL":
            self._cancel(transaction, request)
            return
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            if request.method == "OPTIONS":
                transaction.respond(self.options_response(request))
            else:
                transaction.respond(self.response(request, 483))
            return
        if request.to.tag is not None:
            handler = self.dialogs.get(self._dialog_key(request))
            if handler is None and request.method in self.dialog_fallbacks:
                self.dialog_fallbacks[request.method](transaction, request)
            elif handler is None:
                transaction.respond(self.response(request, 481))
            else:
                handler.handle_request(transaction, request)
            return
        method = request.method
        if method == "INVITE":
            self._incoming_invite(transaction, request)
        elif method == "OPTIONS":
            transaction.respond(self.options_response(request))
        elif method in ("BYE", "UPDATE", "INFO", "PRACK", "NOTIFY", "REFER"):
            transaction.respond(self.response(request, 481))
        elif method in self.extensions:
            self.extensions[method](transaction, request)
        else:
            allowed = [m for m in ALLOWED_METHODS if m != "SUBSCRIBE" or m in self.extensions]
            transaction.respond(method_not_allowed(method, allowed).build(request, new_tag()))

    def _cancel(self, transaction: ServerTransaction, request: Request) -> None:
        invite_transaction = transaction.cancels
        session = self.incoming_by_transaction.get(invite_transaction) \
            if invite_transaction is not None else None
        if invite_transaction is None:
            transaction.respond(self.response(request, 481))
            return
        transaction.respond(self.response(request, 200, to_tag=session.dialog.local_tag
                                          if session else None))
        if session is not None:
            session.cancelled()
        elif invite_transaction.state == "proceeding":
            invite_transaction.respond(self.response(invite_transaction.request, 487))

    def _incoming_invite(self, transaction: ServerTransaction, request: Request) -> None:
        error = check_session_timer(request, self.min_se)
        if error is not None:
            transaction.respond(error.build(request, new_tag()))
            return
        if self.active_calls >= self.max_calls or self.on_incoming is None:
            self.rejected_busy += 1
            transaction.respond(self.response(request, 503, headers=[
                ("Retry-After", str(self.retry_after))]))
            return
        try:
            rtp = self.media.create_session()
        except Exception as exc:
            log.warn("no RTP port for a new call: {why}", why=exc)
            transaction.respond(self.response(request, 503, headers=[
                ("Retry-After", str(self.retry_after))]))
            return
        try:
            session = IncomingSession(self, rtp, transaction, request)
            session.prepare()
        except (DialogError, SdpError) as exc:
            rtp.close("rejected")
            transaction.respond(self.response(request, 400, str(exc)[:100]))
            return
        except NotAcceptable:
            rtp.close("rejected")
            transaction.respond(self.response(request, 488, headers=[
                ("Warning", '304 portaum "no acceptable media (G.711 audio or T.38)"')]))
            return
        self.sessions.add(session)
        self.dialogs[session.dialog.key] = session
        self.incoming_by_transaction[transaction] = session
        transaction.on_transport_error = lambda t, exc: session._end("transport-error")
        try:
            self.on_incoming(session)
        except Exception:
            log.failure("the call handler failed")
            session.reject(500)

    # --- outgoing legs ----------------------------------------------------------------------

    async def destination(self, uri: URI) -> Peer:
        """The transport address a request to ``uri`` goes to (RFC 3263, A/AAAA only)."""
        if not isinstance(uri, SipURI):
            raise DialError(str(uri), "failed")
        transport = (uri.transport or ("tls" if uri.secure else "udp")).lower()
        host = (uri.maddr or uri.host).strip("[]")
        if not is_ip_literal(host):
            if self.resolve is None:
                raise DialError(str(uri), "failed")
            try:
                host = await self.resolve(host)
            except Exception:
                raise DialError(str(uri), "failed") from None
        return Peer(transport, host, uri.port or (5061 if transport == "tls" else 5060))

    def target_uri(self, destination: str) -> URI:
        """A number becomes ``sip:number@<outbound proxy host>``; URIs are used as given."""
        if ":" in destination and destination.split(":", 1)[0].lower() in ("sip", "sips", "tel"):
            return parse_uri(destination)
        if self.outbound_proxy is None:
            raise DialError(destination, "failed")
        proxy = self.outbound_proxy
        return SipURI(proxy.host, user=destination, port=proxy.port)

    async def dial(self, destination: str, caller_id: str | None = None, timeout: float = 30.0,
                   credentials: Credentials | None = None, headers=()) -> OutgoingSession:
        """Place an outgoing leg and return it answered; raises :class:`DialError`."""
        try:
            target = self.target_uri(destination)
        except SipURIError as exc:
            raise DialError(destination, "failed") from exc
        route: list[str] = []
        if self.outbound_proxy is not None:
            next_hop = await self.destination(self.outbound_proxy)
            if isinstance(target, SipURI) and target.host != self.outbound_proxy.host:
                route = ["<%s;lr>" % self.outbound_proxy]
        else:
            next_hop = await self.destination(target)
        if self.active_calls >= self.max_calls:
            raise DialError(destination, "failed", 503)
        rtp = self.media.create_session()
        user = caller_id or self.user
        from_addr = NameAddr(SipURI(self.domain, user=user))
        from_addr.tag = new_tag()
        session = OutgoingSession(self, rtp, target, from_addr, next_hop,
                                  credentials or self.credentials, route, headers)
        return await session.start(timeout)
