"""SIP over UDP, TCP and TLS (RFC 3261 sec. 18, RFC 3581).

The transport turns bytes into :class:`~portaum_tx.sip.message.Message` objects and
back.  Every inbound message is handed to ``deliver(message, peer, reliable)`` where
``peer`` is a :class:`Peer`: for a request, the place its responses go (RFC 3261
18.2.2: the connection it came over, or for UDP the Via ``received``/``rport``
address, which is the packet's source when the client asked for ``rport`` -- the
symmetric routing NATed phones need).  The transaction layer treats ``Peer`` as an
opaque, hashable destination and passes it back to :meth:`SipTransport.send`.

Abuse resistance: a datagram that does not parse costs one parse attempt and at most
one small error response; a TCP/TLS connection that sends no complete message within
``idle_timeout`` is closed, and beyond ``max_connections`` the longest idle one is
closed to make room, so half-open connections cannot exhaust the server.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Callable

from twisted.internet import protocol
from twisted.logger import Logger

from portaum_tx.sip.headers import SipParseError
from portaum_tx.sip.message import (
    MAX_DATAGRAM_SIZE, Message, Request, Response, SipFramingError, StreamFramer,
    error_response_for, is_keepalive, parse_message,
)
from portaum_tx.sip.transaction import TransportError

log = Logger()

__all__ = ["Peer", "SipTransport", "UdpEndpoint", "StreamConnection", "StreamFactory",
           "TransportError", "is_ip_literal"]


@dataclasses.dataclass(frozen=True)
class Peer:
    """Where a message comes from or goes to: ``transport`` is udp, tcp or tls."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    def __str__(self) -> str:
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%s:%d" % (self.transport, host, self.port)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _normalise_host(host: str) -> str:
    host = host.strip("[]")
    if host.startswith("::ffff:") and "." in host:
        return host[7:]  # an IPv4 peer on a dual-stack socket
    return host


class SipTransport:
    """Owns the listening endpoints and the connections of one SIP node.

    ``deliver(message, peer, reliable)`` receives every parsed message.
    ``connect(peer, factory)`` opens an outbound TCP/TLS connection (the front end
    passes a function over ``reactor.connectTCP``/``connectSSL``); without it,
    sending to a peer with no open connection raises :class:`TransportError`.
    """

    def __init__(self, clock, deliver: Callable[[Message, Peer, bool], None] | None = None,
                 connect: Callable[[Peer, protocol.ClientFactory], None] | None = None,
                 max_connections: int = 2048, idle_timeout: float = 64.0,
                 on_connection_lost: Callable[[Peer], None] | None = None):
        self.clock = clock
        self.deliver = deliver
        self.connect = connect
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.on_connection_lost = on_connection_lost
        self.udp: UdpEndpoint | None = None
        self.connections: dict[Peer, StreamConnection] = {}
        self.garbage_received = 0

    # --- sending ---------------------------------------------------------------------

    def send(self, message: Message, peer: Peer) -> None:
        data = message.serialize()
        if peer.transport == "udp":
            if self.udp is None or self.udp.transport is None:
                raise TransportError("no UDP endpoint to send from")
            if len(data) > MAX_DATAGRAM_SIZE:
                raise TransportError("message of %d octets is too large for UDP" % len(data))
            self.udp.transport.write(data, (peer.host, peer.port))
            return
        connection = self.connections.get(peer)
        if connection is None and isinstance(message, Response):
            # RFC 3261 18.2.2: the request's connection is gone; open one to the
            # address in its Via (received, then sent-by port) instead.
            try:
                host, port = message.top_via.response_address()
            except (SipParseError, AttributeError):
                raise TransportError("no connection to %s for a response" % peer) from None
            peer = Peer(peer.transport, _normalise_host(host), port)
            connection = self.connections.get(peer)
        if connection is None:
            connection = self._open(peer)
        connection.send(data)

    def _open(self, peer: Peer) -> "StreamConnection":
        if self.connect is None:
            raise TransportError("no connection to %s" % peer)
        factory = StreamFactory(self, peer.transport)
        connection = factory.pending = StreamConnection(self, peer.transport, outbound_peer=peer)
        self.connections[peer] = connection
        try:
            self.connect(peer, factory)
        except Exception as exc:
            del self.connections[peer]
            raise TransportError("cannot connect to %s: %s" % (peer, exc)) from None
        return connection

    # --- receiving -------------------------------------------------------------------

    def received(self, message: Message, peer: Peer, source: tuple[str, int]) -> None:
        """A parsed message from ``source``; requests are stamped (received/rport)."""
        if isinstance(message, Request):
            if not message.get_all("Via"):
                return  # no response could be routed
            try:
                vias = list(message.via)
                vias[0].stamp_source(source[0], source[1])
                message.set_values("Via", [str(v) for v in vias])
            except (SipParseError, ValueError, IndexError):
                # A malformed Via: the user agent answers 400 to where it came from.
                if self.deliver is not None:
                    self.deliver(message, Peer(peer.transport, *source) if peer.transport == "udp"
                                 else peer, peer.reliable)
                return
            if peer.transport == "udp":
                host, port = message.top_via.response_address()
                if not is_ip_literal(host):
                    host, port = source  # a name in Via: answer where it came from
                peer = Peer("udp", _normalise_host(host), port)
        if self.deliver is not None:
            self.deliver(message, peer, peer.reliable)

    def reject_garbage(self, data: bytes, error: SipParseError, reply: Callable[[bytes], None]):
        self.garbage_received += 1
        response = error_response_for(data, error)
        if response is not None:
            try:
                reply(response.serialize())
            except Exception:
                pass

    def connection_made(self, connection: "StreamConnection") -> None:
        peer = connection.peer
        existing = self.connections.get(peer)
        if existing is not None and existing is not connection and existing.transport is not None:
            existing.close()
        self.connections[peer] = connection
        if len(self.connections) > self.max_connections:
            idle = min((c for c in self.connections.values() if c is not connection),
                       key=lambda c: c.last_activity, default=None)
            if idle is not None:
                idle.close()

    def connection_lost(self, connection: "StreamConnection") -> None:
        peer = connection.peer
        if peer is not None and self.connections.get(peer) is connection:
            del self.connections[peer]
            if self.on_connection_lost is not None:
                self.on_connection_lost(peer)

    def close(self) -> None:
        for connection in list(self.connections.values()):
            connection.close()


class UdpEndpoint(protocol.DatagramProtocol):
    """The SIP UDP socket (the server's gate calls ``makeConnection`` with it)."""

    def __init__(self, sip_transport: SipTransport):
        self.sip = sip_transport
        sip_transport.udp = self

    def datagramReceived(self, data, addr):
        if is_keepalive(data):
            return
        host, port = _normalise_host(addr[0]), addr[1]
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.sip.reject_garbage(data, exc, lambda out: self.transport.write(out, addr))
            return
        self.sip.received(message, Peer("udp", host, port), (host, port))


class StreamConnection(protocol.Protocol):
    """One TCP or TLS connection, inbound or outbound."""

    def __init__(self, sip_transport: SipTransport, kind: str, outbound_peer: Peer | None = None):
        self.sip = sip_transport
        self.kind = kind
        self.peer: Peer | None = outbound_peer
        self.framer = StreamFramer(on_keepalive=self._keepalive)
        self.last_activity = sip_transport.clock.seconds()
        self._queue: list[bytes] = []
        self._idle_timer = None
        self.closed = False

    def connectionMade(self):
        address = self.transport.getPeer()
        host = _normalise_host(getattr(address, "host", "unknown"))
        port = getattr(address, "port", 0)
        if self.peer is None:
            self.peer = Peer(self.kind, host, port)
            self.sip.connection_made(self)
        self._source = (host, port)
        for data in self._queue:
            self.transport.write(data)
        self._queue = []
        self._touch()

    def _touch(self) -> None:
        self.last_activity = self.sip.clock.seconds()
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.reset(self.sip.idle_timeout)
        elif not self.closed:
            self._idle_timer = self.sip.clock.callLater(self.sip.idle_timeout, self._idle)

    def _idle(self) -> None:
        self._idle_timer = None
        self.close()

    def _keepalive(self) -> None:
        # RFC 5626: answer a double-CRLF ping with a single CRLF pong.
        if self.transport is not None:
            self.transport.write(b"\r\n")

    def dataReceived(self, data):
        try:
            items = self.framer.feed(data)
        except SipFramingError as exc:
            log.info("closing SIP connection from {peer}: {why}", peer=self.peer, why=exc)
            self.close()
            return
        for item in items:
            if isinstance(item, Exception):
                raw = getattr(item, "raw", b"")
                self.sip.reject_garbage(raw, item, self.transport.write)
                continue
            self._touch()
            self.sip.received(item, self.peer, self._source)

    def send(self, data: bytes) -> None:
        if self.closed:
            raise TransportError("connection to %s is closed" % self.peer)
        if self.transport is None or not self.transport.connected:
            self._queue.append(data)
        else:
            self.transport.write(data)
        self._touch()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.cancel()
        if self.transport is not None:
            self.transport.loseConnection()
        else:
            self.sip.connection_lost(self)

    def connectionLost(self, reason=protocol.connectionDone):
        self.closed = True
        self.framer.on_keepalive = None  # a method of this connection: a reference cycle
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.cancel()
        self.sip.connection_lost(self)


class StreamFactory(protocol.ServerFactory, protocol.ClientFactory):
    """Builds :class:`StreamConnection` for a listening port (or one outbound dial)."""

    def __init__(self, sip_transport: SipTransport, kind: str = "tcp"):
        self.sip = sip_transport
        self.kind = kind
        self.pending: StreamConnection | None = None

    def buildProtocol(self, addr):
        if self.pending is not None:
            connection, self.pending = self.pending, None
        else:
            connection = StreamConnection(self.sip, self.kind)
        connection.factory = self
        return connection

    def clientConnectionFailed(self, connector, reason):
        connection, self.pending = self.pending, None
        if connection is not None:
            connection.closed = True
            self.sip.connection_lost(connection)
