"""The SIP user agent: UAS for incoming calls, UAC for outgoing legs, one dialog layer.

:class:`UserAgent` sits on a :class:`~portaum_tx.sip.transport.SipTransport` and a
:class:`~portaum_tx.sip.transaction.TransactionLayer`.  It validates requests (RFC 3261
8.2: 400/405/416/420/482/483/501 ...), answers OPTIONS, routes in-dialog requests to
their :class:`~portaum_tx.sip.session.InviteSession` (481 when there is none), and turns
each acceptable INVITE into an :class:`~portaum_tx.sip.session.IncomingSession` handed to
``on_incoming``.  Beyond ``max_calls`` live sessions a new INVITE gets 503 with
Retry-After.  :meth:`UserAgent.dial` places outgoing legs.  Nothing above this layer sees
a SIP message.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.logger import Logger

from portaum_tx.sip.dialog import Dialog, DialogError, new_tag
from portaum_tx.sip.headers import NameAddr, SipParseError
from portaum_tx.sip.message import Request, Response, make_response
from portaum_tx.sip.sdp import NotAcceptable, SdpError
from portaum_tx.sip.session import (
    ACCEPT, ALLOWED_METHODS, SUPPORTED, USER_AGENT, Credentials, DialError, IncomingSession,
    InviteSession, OutgoingSession,
)
from portaum_tx.sip.transaction import ServerTransaction, TimerSettings, TransactionLayer
from portaum_tx.sip.transport import Peer, SipTransport, is_ip_literal
from portaum_tx.sip.uri import SipURI, SipURIError, URI, parse_uri
from portaum_tx.sip.validate import (
    ErrorResponse, check_request, check_session_timer, method_not_allowed,
)

log = Logger()

__all__ = ["UserAgent", "InviteSession", "IncomingSession", "OutgoingSession", "DialError",
           "Credentials", "ALLOWED_METHODS", "SUPPORTED"]


def _transaction_headers_usable(request: Request) -> bool:
    try:
        return None not in (request.top_via, request.cseq, request.to, request.from_,
                            request.call_id)
    except SipParseError:
        return False

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
                   credentials: Credentials | None = None, headers=(),
                   on_early: Callable[[OutgoingSession], None] | None = None) -> OutgoingSession:
        """Place an outgoing leg and return it answered; raises :class:`DialError`.
        ``on_early(session)`` is called when the leg starts early media (a 1xx with SDP):
        ``session.rtp`` then carries the far end's announcements or ringback."""
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
        if on_early is not None:
            session.early.append(lambda: on_early(session))
        return await session.start(timeout)
