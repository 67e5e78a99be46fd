"""SIP transactions (RFC 3261 sec. 17, with the RFC 6026 Accepted states).

The :class:`TransactionLayer` knows nothing of sockets.  It is given

* ``send(message, destination)``: puts a :class:`Message` on the wire toward
  ``destination`` (an opaque value of the transport layer); it may raise
  :class:`TransportError` (or ``OSError``) when that is impossible;
* inbound messages through :meth:`TransactionLayer.receive`, each with its
  source (used as the destination of responses) and whether the transport
  it came over is reliable;
* a clock (``IReactorTime``) on which every timer runs.

Client transactions report to their owner through ``on_response``: real
responses, and locally generated ones for a timeout (408) or a transport
error (503).  ``ClientTransaction.final`` is a Deferred firing with the final
response as well.  New server transactions go to the transaction user's
``on_request``; the TU answers with :meth:`ServerTransaction.respond`.

Retransmitting a 2xx to INVITE until the ACK arrives is the TU's job (RFC
6026); :class:`TwoXXRetransmitter` does it for the dialog layer.
"""

import os
from dataclasses import dataclass
from typing import Callable, Hashable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from portaum_tx.sip.headers import SipParseError
from portaum_tx.sip.message import Message, Request, Response, make_response

__all__ = [
    "TimerSettings", "TransportError", "TransactionLayer", "ClientTransaction",
    "ServerTransaction", "TwoXXRetransmitter", "new_branch", "make_ack_for_non2xx",
    "make_cancel", "MAGIC_COOKIE",
]

MAGIC_COOKIE = "z9hG4bK"

Destination = Hashable
SendFunction = Callable[[Message, Destination], None]


class TransportError(Exception):
    """Raised by the ``send`` callable when a message cannot be sent."""


@dataclass(frozen=True)
class TimerSettings:
    """RFC 3261 timer base values in seconds (Table 4), plus the 100 Trying delay."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying_delay: float = 0.2

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J, L, M."""
        return 64 * self.t1


def new_branch() -> str:
    """A fresh RFC 3261 branch parameter value."""
    return MAGIC_COOKIE + os.urandom(10).hex()


def make_ack_for_non2xx(invite: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 300-699 response (RFC 3261 17.1.1.3)."""
    ack = Request("ACK", invite.uri)
    ack.add("Via", invite.get_all("Via")[0])
    for name in ("Max-Forwards",):
        if invite.get(name) is not None:
            ack.add(name, invite.get(name))
    for value in invite.get_all("Route"):
        ack.add("Route", value)
    ack.add("From", invite.get("From"))
    ack.add("To", response.get("To"))
    ack.add("Call-ID", invite.get("Call-ID"))
    ack.add("CSeq", "%d ACK" % invite.cseq.number)
    return ack


def make_cancel(invite: Request) -> Request:
    """The CANCEL for a pending INVITE (RFC 3261 9.1): same Request-URI, top
    Via (so the same branch), Call-ID, From, To, CSeq number and Route."""
    cancel = Request("CANCEL", invite.uri)
    cancel.add("Via", invite.get_all("Via")[0])
    cancel.add("Max-Forwards", invite.get("Max-Forwards") or "70")
    for value in invite.get_all("Route"):
        cancel.add("Route", value)
    cancel.add("From", invite.get("From"))
    cancel.add("To", invite.get("To"))
    cancel.add("Call-ID", invite.get("Call-ID"))
    cancel.add("CSeq", "%d CANCEL" % invite.cseq.number)
    return cancel


def _local_response(request: Request, status: int) -> Response:
    """The 408/503 a client transaction reports when no real response can come."""
    response = Response(status)
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in request.get_all(name):
            response.add(name, value)
    response.local = True
    return response


class _Transaction:
    """Timers, state and termination shared by every transaction kind."""

    def __init__(self, layer: "TransactionLayer", request: Request, destination: Destination,
                 reliable: bool):
        self.layer = layer
        self.request = request
        self.destination = destination
        self.reliable = reliable
        self.state = "init"
        self._timers: dict[str, IDelayedCall] = {}
        self.keys: list = []

    @property
    def clock(self) -> IReactorTime:
        return self.layer.clock

    @property
    def timers(self) -> TimerSettings:
        return self.layer.timers

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def _start_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer(name)

        def fire():
            del self._timers[name]
            callback()
        self._timers[name] = self.clock.callLater(delay, fire)

    def _cancel_timer(self, name: str) -> None:
        call = self._timers.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    def timer_active(self, name: str) -> bool:
        """True while timer ``name`` ("A", "B", ...) is scheduled (for tests and metrics)."""
        return name in self._timers

    def _terminate(self) -> None:
        if self.state == "terminated":
            return
        self.state = "terminated"
        for name in list(self._timers):
            self._cancel_timer(name)
        self.layer._forget(self)

    def _send(self, message: Message) -> bool:
        try:
            self.layer.send(message, self.destination)
        except (TransportError, OSError) as exc:
            self._transport_failed(exc)
            return False
        return True

    def _transport_failed(self, exc: Exception) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class ClientTransaction(_Transaction):
    """An INVITE or non-INVITE client transaction (RFC 3261 17.1).

    ``on_response(transaction, response)`` receives every response the TU
    must see: provisional ones, the final one, further 2xx to an INVITE (RFC
    6026 Accepted state), and a local 408 on timeout or 503 on transport
    error (``response.local`` is True for those).  ``final`` fires with the
    first final response (real or local).
    """

    def __init__(self, layer, request, destination, reliable,
                 on_response: Callable[["ClientTransaction", Response], None] | None):
        super().__init__(layer, request, destination, reliable)
        self.on_response = on_response
        self.final: defer.Deferred = defer.Deferred()
        self.is_invite = request.method == "INVITE"
        self.branch = request.top_via.branch
        self.last_response: Response | None = None
        self._ack: Request | None = None
        self._interval = self.timers.t1
        self._cancel_pending: tuple | None = None
        self.cancel_transaction: ClientTransaction | None = None

    def _start(self) -> None:
        self.state = "calling" if self.is_invite else "trying"
        if not self._send(self.request):
            return
        if not self.reliable:
            self._start_timer("A" if self.is_invite else "E", self._interval, self._retransmit)
        self._start_timer("B" if self.is_invite else "F", self.timers.timeout, self._timeout)

    def _retransmit(self) -> None:
        if self.is_invite:
            if self.state != "calling":
                return
            self._interval *= 2
            name = "A"
        else:
            if self.state not in ("trying", "proceeding"):
                return
            self._interval = min(self._interval * 2, self.timers.t2) \
                if self.state == "trying" else self.timers.t2
            name = "E"
        if self._send(self.request):
            self._start_timer(name, self._interval, self._retransmit)

    def _timeout(self) -> None:
        if self.state in ("calling", "trying", "proceeding"):
            self.timed_out = True
            self._report_final(_local_response(self.request, 408))
            self._terminate()

    timed_out = False
    transport_error: Exception | None = None

    def _transport_failed(self, exc: Exception) -> None:
        if self.state in ("terminated",):
            return
        was_final = self.final.called
        self.transport_error = exc
        self._terminate()
        if not was_final:
            self._report_final(_local_response(self.request, 503))

    def _deliver(self, response: Response) -> None:
        if self.on_response is not None:
            self.on_response(self, response)

    def _report_final(self, response: Response) -> None:
        self._deliver(response)
        if not self.final.called:
            self.final.callback(response)

    def receive_response(self, response: Response) -> None:
        """A response matched to this transaction by the layer."""
        status = response.status
        if self.state in ("calling", "trying", "proceeding"):
            self.last_response = response
            if status < 200:
                if self.state != "proceeding":
                    self.state = "proceeding"
                    if self.is_invite:
                        self._cancel_timer("A")
                        self._cancel_timer("B")
                self._deliver(response)
                if self._cancel_pending is not None:
                    self._send_cancel(*self._cancel_pending)
                return
            self._cancel_timer("A")
            self._cancel_timer("B")
            self._cancel_timer("E")
            self._cancel_timer("F")
            if self.is_invite and status < 300:
                self.state = "accepted"
                self._start_timer("M", self.timers.timeout, self._terminate)
            elif self.is_invite:
                self.state = "completed"
                self._ack = make_ack_for_non2xx(self.request, response)
                self._start_timer("D", 0 if self.reliable else max(32.0, self.timers.timeout),
                                  self._terminate)
                # The TU learns the real final response before any ACK send error.
                self._report_final(response)
                self._send(self._ack)
                return
            else:
                self.state = "completed"
                self._start_timer("K", 0 if self.reliable else self.timers.t4, self._terminate)
            self._report_final(response)
        elif self.state == "accepted":
            if 200 <= status < 300:
                self._deliver(response)
        elif self.state == "completed":
            if self.is_invite and status >= 300 and self._ack is not None:
                self._send(self._ack)

    def cancel(self, on_response=None) -> "ClientTransaction | None":
        """Cancel this INVITE (RFC 3261 9.1).

        The CANCEL is sent at once if a provisional response was received,
        else as soon as one is (a CANCEL must not overtake the INVITE); it is
        not sent if a final response arrived first.  Returns the CANCEL's
        transaction when it was sent now, else None.
        """
        if not self.is_invite:
            raise ValueError("only INVITE transactions can be cancelled")
        if self.state == "proceeding":
            return self._send_cancel(on_response)
        if self.state == "calling":
            self._cancel_pending = (on_response,)
        return None

    def _send_cancel(self, on_response) -> "ClientTransaction | None":
        self._cancel_pending = None
        if self.cancel_transaction is None:
            self.cancel_transaction = self.layer.send_request(
                make_cancel(self.request), self.destination, self.reliable, on_response)
        return self.cancel_transaction


class ServerTransaction(_Transaction):
    """An INVITE or non-INVITE server transaction (RFC 3261 17.2, RFC 6026).

    The TU answers with :meth:`respond`.  Optional callbacks:
    ``on_timeout(transaction)`` when no ACK came for a 300-699 to INVITE
    (Timer H), ``on_transport_error(transaction, exc)`` when a response could
    not be sent.  For a CANCEL, ``cancels`` is the INVITE server transaction
    it matches (RFC 3261 9.2), or None (answer 481).  ``merged_with`` is set
    when the request is a copy, arrived over another path, of one already
    being served (RFC 3261 8.2.2.2): answer it 482 Loop Detected.
    """

    merged_with: "ServerTransaction | None" = None
    merge_key: tuple | None = None

    def __init__(self, layer, request, source, reliable):
        super().__init__(layer, request, source, reliable)
        self.is_invite = request.method == "INVITE"
        self.last_response: Response | None = None
        self.on_timeout: Callable[["ServerTransaction"], None] | None = None
        self.on_transport_error: Callable[["ServerTransaction", Exception], None] | None = None
        self.cancels: ServerTransaction | None = None
        self._interval = self.timers.t1

    @property
    def source(self) -> Destination:
        return self.destination

    def _start(self) -> None:
        if self.is_invite:
            self.state = "proceeding"
            self._start_timer("trying", self.timers.trying_delay, self._send_trying)
        else:
            self.state = "trying"

    def _send_trying(self) -> None:
        if self.state == "proceeding" and self.last_response is None:
            self.respond(make_response(self.request, 100))

    def respond(self, response: Response) -> None:
        """Send ``response`` (built with :func:`~portaum_tx.sip.message.make_response`)."""
        status = response.status
        if self.state == "terminated":
            raise ValueError("transaction already terminated")
        if self.is_invite:
            if self.state == "accepted":
                if 200 <= status < 300:
                    self._send(response)       # TU retransmitting its 2xx
                    return
                raise ValueError("INVITE transaction already accepted with 2xx")
            if self.state != "proceeding":
                raise ValueError("INVITE transaction already answered with %d"
                                 % self.last_response.status)
            self._cancel_timer("trying")
            self.last_response = response
            if status < 200:
                self._send(response)
            elif status < 300:
                self.state = "accepted"
                self._start_timer("L", self.timers.timeout, self._terminate)
                self._send(response)
            else:
                self.state = "completed"
                if not self.reliable:
                    self._start_timer("G", self._interval, self._retransmit)
                self._start_timer("H", self.timers.timeout, self._timeout)
                self._send(response)
            return
        if self.state not in ("trying", "proceeding"):
            raise ValueError("request already answered with %d" % self.last_response.status)
        self.last_response = response
        if status < 200:
            self.state = "proceeding"
            self._send(response)
        else:
            self.state = "completed"
            self._start_timer("J", 0 if self.reliable else self.timers.timeout, self._terminate)
            self._send(response)

    def _retransmit(self) -> None:
        if self.state != "completed":
            return
        self._interval = min(self._interval * 2, self.timers.t2)
        if self._send(self.last_response):
            self._start_timer("G", self._interval, self._retransmit)

    def _timeout(self) -> None:
        if self.state == "completed":
            self._terminate()
            if self.on_timeout is not None:
                self.on_timeout(self)

    def _transport_failed(self, exc: Exception) -> None:
        if self.state == "terminated":
            return
        self._terminate()
        if self.on_transport_error is not None:
            self.on_transport_error(self, exc)

    def receive_request(self, request: Request) -> bool:
        """A request matched to this transaction; True if absorbed here."""
        if request.method == "ACK":
            if not self.is_invite:
                return True
            if self.state == "completed":
                self.state = "confirmed"
                self._cancel_timer("G")
                self._cancel_timer("H")
                self._start_timer("I", 0 if self.reliable else self.timers.t4, self._terminate)
                return True
            if self.state == "accepted":
                return False            # an ACK for the 2xx: the TU's (RFC 6026)
            return True
        # A retransmission of the request itself.
        if self.state in ("proceeding", "completed") and self.last_response is not None:
            self._send(self.last_response)
        elif self.state == "proceeding" and self.is_invite:
            self.respond(make_response(self.request, 100))
        return True


class TransactionLayer:
    """Matches messages to transactions and creates them.

    ``on_request(transaction, request)`` is called for every request that
    starts a server transaction, and with ``transaction=None`` for requests
    that get none: ACKs for 2xx responses (RFC 6026 passes those to the TU).
    ``on_stray_response(response, source)`` gets responses matching no
    client transaction (e.g. 2xx retransmissions after it ended).
    """

    def __init__(self, clock: IReactorTime, send: SendFunction,
                 on_request: Callable[[ServerTransaction | None, Request], None],
                 on_stray_response: Callable[[Response, Destination], None] | None = None,
                 timers: TimerSettings = TimerSettings()):
        self.clock = clock
        self.send = send
        self.on_request = on_request
        self.on_stray_response = on_stray_response
        self.timers = timers
        self._client: dict = {}
        self._server: dict = {}
        self._merge_index: dict = {}

    # -- client side -------------------------------------------------------

    def send_request(self, request: Request, destination: Destination, reliable: bool,
                     on_response: Callable[[ClientTransaction, Response], None] | None = None
                     ) -> ClientTransaction:
        """Start a client transaction for ``request`` (ACK is not sent this way).

        The request's top Via must carry a unique branch (see :func:`new_branch`).
        """
        if request.method == "ACK":
            raise ValueError("ACK does not create a client transaction; send it directly")
        via = request.top_via
        if via is None or not via.has_magic_cookie:
            raise ValueError("request needs a top Via with an RFC 3261 branch")
        transaction = ClientTransaction(self, request, destination, reliable, on_response)
        key = (via.branch, request.method)
        if key in self._client:
            raise ValueError("a client transaction with branch %s exists" % via.branch)
        transaction.keys = [key]
        self._client[key] = transaction
        transaction._start()
        return transaction

    # -- inbound -----------------------------------------------------------

    def receive(self, message: Message, source: Destination, reliable: bool) -> None:
        """Hand an inbound message to its transaction, or to the TU.

        Messages whose Via or CSeq (and for requests From, To, Call-ID) are
        missing or cannot be parsed are dropped here: no transaction can be
        matched and no response routed (the transport or validator answers
        malformed requests before this point).
        """
        try:
            via = message.top_via
            cseq = message.cseq
            if isinstance(message, Request) and None in (message.to, message.from_,
                                                         message.call_id):
                return
        except SipParseError:
            return
        if via is None or cseq is None:
            return
        if isinstance(message, Response):
            self._receive_response(message, source, via, cseq)
        else:
            self._receive_request(message, source, reliable)

    def _receive_response(self, response, source, via, cseq) -> None:
        transaction = self._client.get((via.branch, cseq.method))
        if transaction is None:
            if self.on_stray_response is not None:
                self.on_stray_response(response, source)
            return
        transaction.receive_response(response)

    def _receive_request(self, request: Request, source, reliable: bool) -> None:
        try:
            key = self.server_key(request)
            if request.method == "ACK" and key[0] == "2543":
                transaction = self._match_2543_ack(request)
            else:
                transaction = self._server.get(key)
            merge_key = self._merge_key(request) if transaction is None else None
        except SipParseError:
            return
        if transaction is not None:
            if transaction.receive_request(request):
                return
            self.on_request(None, request)
            return
        if request.method == "ACK":
            self.on_request(None, request)
            return
        transaction = ServerTransaction(self, request, source, reliable)
        transaction.keys = [key]
        self._server[key] = transaction
        if merge_key is not None:
            earlier = self._merge_index.get(merge_key)
            if earlier is not None and not earlier.terminated:
                transaction.merged_with = earlier
            else:
                self._merge_index[merge_key] = transaction
                transaction.merge_key = merge_key
        if request.method == "CANCEL":
            transaction.cancels = self.find_cancelled(request)
        transaction._start()
        self.on_request(transaction, request)

    @staticmethod
    def _merge_key(request: Request) -> tuple | None:
        # RFC 3261 8.2.2.2: an out-of-dialog request whose From tag, Call-ID
        # and CSeq match a live transaction's arrived twice by different paths.
        if request.method in ("ACK", "CANCEL") or request.to.tag is not None:
            return None
        return (request.from_.tag, request.call_id, request.cseq.number, request.method)

    @staticmethod
    def server_key(request: Request) -> tuple:
        """The server transaction key of ``request`` (RFC 3261 17.2.3).

        ACK maps to its INVITE.  Branches without the magic cookie (RFC 2543
        peers, and RFC 4475's bare "z9hG4bK") use the 2543 rules: Request-URI,
        From tag, Call-ID, CSeq number, top Via, and To tag.
        """
        via = request.top_via
        method = "INVITE" if request.method == "ACK" else request.method
        if via.has_magic_cookie:
            return ("3261", via.branch, via.sent_by.lower(), method)
        to_tag = None if request.method == "ACK" else request.to.tag
        return ("2543", str(request.uri), request.from_.tag, request.call_id,
                request.cseq.number, method, str(via), to_tag)

    def _match_2543_ack(self, ack: Request) -> ServerTransaction | None:
        # The ACK's To tag is the one our response added, which the INVITE lacked.
        key = self.server_key(ack)
        to_tag = ack.to.tag
        for candidate_tag in (None, to_tag):
            transaction = self._server.get(key[:-1] + (candidate_tag,))
            if transaction is None or transaction.last_response is None:
                continue
            try:
                sent_tag = transaction.last_response.to.tag
            except SipParseError:
                continue
            if sent_tag == to_tag:
                return transaction
        return None

    def find_cancelled(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (RFC 3261 9.2)."""
        key = self.server_key(cancel)
        return self._server.get(key[:-1] + ("INVITE",) if key[0] == "3261"
                                else key[:5] + ("INVITE",) + key[6:])

    def transport_failed(self, destination: Destination, exc: Exception) -> None:
        """Report that ``destination`` became unreachable (e.g. its TCP connection
        closed): every live transaction toward it fails as if a send had raised."""
        for table in (self._client, self._server):
            for transaction in list(table.values()):
                if transaction.destination == destination and not transaction.terminated:
                    transaction._transport_failed(exc)

    def shutdown(self) -> None:
        """Terminate every transaction and cancel its timers (service stop)."""
        for table in (self._client, self._server):
            for transaction in list(table.values()):
                transaction._terminate()

    # -- bookkeeping -------------------------------------------------------

    def _forget(self, transaction: _Transaction) -> None:
        table = self._client if isinstance(transaction, ClientTransaction) else self._server
        for key in transaction.keys:
            if table.get(key) is transaction:
                del table[key]
        merge_key = getattr(transaction, "merge_key", None)
        if merge_key is not None and self._merge_index.get(merge_key) is transaction:
            del self._merge_index[merge_key]

    @property
    def client_transactions(self) -> int:
        return len(self._client)

    @property
    def server_transactions(self) -> int:
        return len(self._server)


class TwoXXRetransmitter:
    """Retransmits a 2xx to INVITE until the ACK comes (RFC 3261 13.3.1.4).

    Over unreliable transports the response is resent after T1, doubling up
    to T2; over reliable ones it is sent once.  Without an ACK after 64*T1,
    ``on_timeout()`` is called (the dialog should then send BYE).  Call
    :meth:`ack_received` when the ACK arrives and :meth:`stop` to abandon.
    Pass ``already_sent=True`` when the first copy went out through
    :meth:`ServerTransaction.respond` (otherwise the peer gets it twice).
    """

    def __init__(self, clock: IReactorTime, send: SendFunction, response: Response,
                 destination: Destination, reliable: bool,
                 on_timeout: Callable[[], None] | None = None,
                 timers: TimerSettings = TimerSettings(), already_sent: bool = False):
        self.clock = clock
        self.send = send
        self.response = response
        self.destination = destination
        self.reliable = reliable
        self.on_timeout = on_timeout
        self.timers = timers
        self.acked = False
        self.running = True
        self._interval = timers.t1
        self._retransmit_call: IDelayedCall | None = None
        if not already_sent:
            self._send()
        if not reliable:
            self._retransmit_call = clock.callLater(self._interval, self._retransmit)
        self._timeout_call = clock.callLater(timers.timeout, self._timeout)

    def _send(self) -> None:
        try:
            self.send(self.response, self.destination)
        except (TransportError, OSError):
            pass  # the next retransmission may get through; Timer covers the rest

    def _retransmit(self) -> None:
        self._retransmit_call = None
        if not self.running:
            return
        self._send()
        self._interval = min(self._interval * 2, self.timers.t2)
        self._retransmit_call = self.clock.callLater(self._interval, self._retransmit)

    def _timeout(self) -> None:
        self._timeout_call = None
        if self.running:
            self.stop()
            if self.on_timeout is not None:
                self.on_timeout()

    def ack_received(self) -> None:
        """The ACK for this 2xx arrived: stop retransmitting."""
        self.acked = True
        self.stop()

    def stop(self) -> None:
        self.running = False
        for call in (self._retransmit_call, self._timeout_call):
            if call is not None and call.active():
                call.cancel()
        self._retransmit_call = self._timeout_call = None
