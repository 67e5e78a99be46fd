"""One call leg's signalling: :class:`InviteSession` and its UAS and UAC forms.

An :class:`InviteSession` is a call leg's dialog and RTP session: offer/answer (488 when
nothing is acceptable), BYE both ways, CANCEL, re-INVITE and UPDATE (hold, codec change,
T.38) with 491 glare handling, SIP INFO DTMF, and RFC 4028 session timers.
:class:`IncomingSession` is built from an INVITE (answer, reject, REFER);
:class:`OutgoingSession` is an outgoing leg through the outbound proxy, answering 401/407
with Digest (MD5 or SHA-256) and cancelling when nobody answers in time.  The
:class:`~portaum_tx.sip.ua.UserAgent` creates them and routes their requests.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, Iterable

from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.sip.dialog import Dialog, DialogError, new_call_id, new_tag
from portaum_tx.sip.digest import DigestError, build_authorization, select_challenge
from portaum_tx.sip.headers import NameAddr, SipParseError
from portaum_tx.sip.identity import diversion_of, user_of
from portaum_tx.sip.message import Request, Response, make_response
from portaum_tx.sip.sdp import (
    LocalCapabilities, Negotiation, NotAcceptable, Origin, SdpError, SessionDescription,
    answer_offer, make_offer, parse_sdp, read_answer,
)
from portaum_tx.sip.transaction import ServerTransaction, TwoXXRetransmitter, new_branch
from portaum_tx.sip.transport import Peer
from portaum_tx.sip.uri import URI
from portaum_tx.sip.validate import check_session_timer, method_not_allowed

if TYPE_CHECKING:  # the user agent owns its sessions; named here for annotations only
    from portaum_tx.sip.ua import UserAgent

log = Logger()

__all__ = ["InviteSession", "IncomingSession", "OutgoingSession", "DialError", "Credentials",
           "ALLOWED_METHODS", "SUPPORTED"]

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
        # Told once; the listeners are mostly methods of the call holding this session,
        # which kept would be reference cycles.
        self.on_ended = []
        self.on_dtmf = []
        self.on_media = []
        self.on_refer_progress = []
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

async def _sleep(clock, seconds: float) -> None:
    d = defer.Deferred()
    clock.callLater(seconds, d.callback, None)
    await d

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
        self.called = user_of(request.uri)
        self.calling_name = None
        caller = None
        try:
            identities = request.parsed("P-Asserted-Identity")
            caller = identities[0] if identities else request.from_
        except SipParseError:
            caller = request.from_
        self.calling = user_of(caller.uri)
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


    def _end(self, reason: str, send_bye: bool = False) -> None:
        super()._end(reason, send_bye)
        # the UA sends the INVITE transaction's transport failures here
        self.transaction.on_transport_error = None


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
        for position, (name, _) in enumerate(invite.headers):
            if name.lower() in ("via", "v"):
                invite.headers[position] = (name, "SIP/2.0/%s %s;branch=%s;rport" % (
                    self.peer.via_transport, self.ua.via_host(self.peer), new_branch()))
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
