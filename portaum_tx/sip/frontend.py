"""The SIP front end of the server: listeners, the user agent, calls to applications, MWI.

Every incoming INVITE becomes a :class:`~portaum_tx.sip.call.SipCall` handed to
``route(call)`` (by default the IVR router, which picks the access number's
application or voicemail deposit and runs it to the end).  The front end makes sure
each call is over when ``route`` returns.

The default route also tells the router who the caller is when the front end can vouch
for it (:func:`vouched_caller`): only then may the call be placed as that account's own
call (through its IVR or the trunk).  A caller's From or P-Asserted-Identity is taken on
trust only from ``[sip] trusted_proxies``: anybody can write any number there.
"""

from __future__ import annotations

import socket
from typing import Awaitable, Callable

from twisted.internet import defer, protocol
from twisted.logger import Logger

from portaum_tx.sip.call import SipCall
from portaum_tx.sip.transport import Peer, SipTransport, StreamFactory, UdpEndpoint
from portaum_tx.sip.ua import Credentials, IncomingSession, UserAgent

log = Logger()

__all__ = ["SipFrontend", "advertised_host", "vouched_caller"]


def vouched_caller(call: SipCall, trusted_proxies) -> str | None:
    """The caller's number (P-Asserted-Identity, else From) when the INVITE came from a
    trusted proxy, which has authenticated the phone; None from anybody else."""
    source = getattr(getattr(call.sip, "transaction", None), "source", None)
    host = getattr(source, "host", None)
    if host is None and isinstance(source, tuple):
        host = source[0]
    if host is None or host.strip("[]") not in trusted_proxies or not call.calling:
        return None
    return call.calling


def advertised_host(listen_address: str, public_address: str = "") -> str:
    """The address we write into Via, Contact and SDP."""
    if public_address:
        return public_address
    if listen_address and listen_address not in ("0.0.0.0", "::"):
        return listen_address
    family = socket.AF_INET6 if listen_address == "::" else socket.AF_INET
    probe = "2001:db8::1" if family == socket.AF_INET6 else "192.0.2.1"
    try:
        # A connected UDP socket reveals the outgoing interface; nothing is sent.
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1" if family == socket.AF_INET else "::1"


def media_engine_for(config, reactor):
    """The node's media engine as ``[rtp]`` and ``[sip] listen_address`` describe it."""
    from portaum_tx.rtp.engine import MediaEngine
    engine_class = MediaEngine
    if config.rtp.batched_reads:
        from portaum_tx.rtp.batch_io import BatchedMediaEngine
        engine_class = BatchedMediaEngine
    listen = config.sip.listen_address
    interface = "" if listen in ("0.0.0.0", "::") else listen
    return engine_class(reactor, (config.rtp.port_min, config.rtp.port_max), interface=interface,
                        send_ahead_ms=config.rtp.send_ahead,
                        prompt_ahead_ms=config.rtp.prompt_ahead,
                        dead_peer_timeout=config.rtp.dead_peer_timeout or None,
                        symmetric=config.rtp.symmetric)


class SipFrontend:
    """``route(call)`` is an async callable running the application for a
    :class:`SipCall`; without one the IVR router is used.  ``media`` is the RTP engine
    (one is made from ``[rtp]`` when not given); ``prompts`` the prompt library."""

    name = "sip"

    def __init__(self, route: Callable[[SipCall], Awaitable] | None = None,
                 media=None, prompts=None):
        self.route = route
        self.media = media
        self.prompts = prompts
        self.prompt_cache: dict = {}
        self.ua: UserAgent | None = None
        self.transport: SipTransport | None = None
        self.mwi = None
        self.calls: set[SipCall] = set()
        self._own_media = False

    def ports(self, config) -> list:
        from portaum_tx.server import PortSpec
        sip = config.sip
        specs = [PortSpec("sip-udp", "udp", sip.listen_address, sip.udp_port, "[sip] udp_port"),
                 PortSpec("sip-tcp", "tcp", sip.listen_address, sip.tcp_port, "[sip] tcp_port")]
        if sip.tls_port:
            specs.append(PortSpec("sip-tls", "tcp", sip.listen_address, sip.tls_port,
                                  "[sip] tls_port"))
        return specs

    async def start(self, node) -> dict:
        config = node.config
        reactor = node.reactor
        sip = config.sip
        host = advertised_host(sip.listen_address, sip.public_address)
        if self.media is None:
            self.media = media_engine_for(config, reactor)
            self.media.start()
            self._own_media = True

        def connect(peer: Peer, factory: protocol.ClientFactory) -> None:
            if peer.transport == "tls":
                from twisted.internet import ssl
                reactor.connectSSL(peer.host, peer.port, factory, ssl.CertificateOptions())
            else:
                reactor.connectTCP(peer.host, peer.port, factory, timeout=10)

        self.transport = SipTransport(reactor, connect=connect)
        credentials = Credentials(sip.outbound_username, sip.outbound_password) \
            if sip.outbound_username else None
        ports = {"udp": sip.udp_port, "tcp": sip.tcp_port}
        if sip.tls_port:
            ports["tls"] = sip.tls_port
        self.ua = UserAgent(reactor, self.transport, host=host, media=self.media,
                            on_incoming=self._incoming, ports=ports,
                            domain=sip.domain or host, max_calls=sip.max_calls,
                            session_expires=int(sip.session_expires), ptime=config.rtp.ptime,
                            outbound_proxy=sip.outbound_proxy, credentials=credentials,
                            resolve=reactor.resolve)
        if self.prompts is None:
            self.prompts = getattr(node, "prompts", None)   # the node's, with uploads
        if self.prompts is None:
            from portaum_tx.ivr.prompts import PromptLibrary
            self.prompts = PromptLibrary(config.prompts.directory or None)
        if self.route is None:
            self.route = self._default_route(node)
        try:
            from portaum_tx.sip.subscribe import MwiService
        except ImportError:
            MwiService = None
        if MwiService is not None and getattr(node, "store", None) is not None \
                and hasattr(node.store, "subscriptions"):
            self.mwi = MwiService.for_node(node, self.ua)
            await self.mwi.start()
        targets = {"sip-udp": UdpEndpoint(self.transport),
                   "sip-tcp": StreamFactory(self.transport, "tcp")}
        if sip.tls_port:
            from twisted.protocols.tls import TLSMemoryBIOFactory
            from portaum_tx.tls import context_factory
            targets["sip-tls"] = TLSMemoryBIOFactory(context_factory(config), False,
                                                     StreamFactory(self.transport, "tls"))
        return targets

    def _default_route(self, node):
        try:
            from portaum_tx.ivr.apps import load_applications
            from portaum_tx.ivr.router import Router
        except ImportError:
            async def no_route(call):
                await call.reject(404, "Not Found")
            return no_route
        router = Router.for_node(node, load_applications(), originate=self.originate)
        trusted = frozenset(node.config.sip.trusted_proxies)

        async def route(call: SipCall):
            return await router.handle(call, caller=vouched_caller(call, trusted))
        return route

    async def originate(self, destination: str, caller_id: str | None = None,
                        timeout: float = 60.0) -> SipCall:
        """An outgoing call not tied to an incoming one (callback), answered; the caller
        hangs it up. Raises portaum_tx.ivr.call.DialFailed."""
        if self.ua is None:
            from portaum_tx.ivr.call import DialFailed
            raise DialFailed(destination, "failed")
        call = await SipCall.originate(self.ua, self.prompts, destination, caller_id, timeout,
                                       prompt_cache=self.prompt_cache)
        self.calls.add(call)
        call.hungup.addBoth(lambda reason: (self.calls.discard(call), reason)[1])
        return call

    def _incoming(self, session: IncomingSession) -> None:
        call = SipCall.for_incoming(session, self.ua, self.prompts, prompt_cache=self.prompt_cache)
        self.calls.add(call)
        session.ring()
        d = defer.ensureDeferred(self._run(call))
        d.addErrback(lambda f: log.failure("call {call_id} failed", f, call_id=call.call_id))

    async def _run(self, call: SipCall) -> None:
        try:
            await self.route(call)
        except Exception:
            log.failure("{call_id}: the application failed", call_id=call.call_id)
        finally:
            self.calls.discard(call)
            if not call.is_hungup:
                if call.answered:
                    await call.hangup()
                else:
                    await call.reject(480, "Temporarily Unavailable")

    async def stop(self) -> None:
        if self.mwi is not None:
            await self.mwi.stop()
        if self.ua is not None:
            self.ua.shutdown()
        if self.transport is not None:
            self.transport.close()
        if self._own_media and self.media is not None:
            self.media.stop()
