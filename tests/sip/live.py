"""A SIP front end on loopback in the trial reactor, for tests with real peers."""

from __future__ import annotations

import os
import shutil
import socket
import types

from twisted.internet import defer, protocol, reactor

from portaum_tx.config import load_config
from portaum_tx.sip.frontend import SipFrontend
from tests.support import free_port

SCENARIOS = os.path.join(os.path.dirname(__file__), "scenarios")


def free_port_for_phone() -> int:
    """A port P free for UDP and TCP with P+1 free for TCP (baresip puts SIP over TLS there)."""
    while True:
        port = free_port(both=True)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


class LiveFrontend:
    """Runs :class:`SipFrontend` on 127.0.0.1 (UDP and TCP on one free port)."""

    def __init__(self, route, overrides=(), store=None, events=None, mailboxes=None,
                 accounts=None, address="127.0.0.1"):
        self.address = address
        self.port = free_port(both=True)
        rtp_base = 20000 + (os.getpid() * 16) % 20000 // 2 * 2
        self.config = load_config(None, [
            "sip.listen_address=%s" % address, "sip.udp_port=%d" % self.port,
            "sip.tcp_port=%d" % self.port, "sip.domain=%s" % address,
            "rtp.port_min=%d" % rtp_base, "rtp.port_max=%d" % (rtp_base + 2000),
            *overrides])
        self.node = types.SimpleNamespace(config=self.config, reactor=reactor, store=store,
                                          events=events, mailboxes=mailboxes, accounts=accounts,
                                          name="test", secret="test-secret")
        self.frontend = SipFrontend(route=route)
        self.ports = []

    async def start(self):
        targets = await self.frontend.start(self.node)
        self.ports.append(reactor.listenUDP(self.port, targets["sip-udp"], interface=self.address))
        self.ports.append(reactor.listenTCP(self.port, targets["sip-tcp"], interface=self.address))
        if "sip-tls" in targets:
            self.ports.append(reactor.listenTCP(self.config.sip.tls_port, targets["sip-tls"],
                                                interface=self.address))
        return self

    async def stop(self):
        await self.frontend.stop()
        for port in self.ports:
            await port.stopListening()


class PeerProcess(protocol.ProcessProtocol):
    """A peer program; ``done`` fires with its exit code, ``output`` collects both streams."""

    def __init__(self):
        self.done = defer.Deferred()
        self.output = b""
        self.watchers = []

    def outReceived(self, data):
        self.output += data
        for watcher in list(self.watchers):
            watcher(self.output)

    errReceived = outReceived

    def processEnded(self, reason):
        self.done.callback(reason.value.exitCode)

    def summary(self) -> str:
        """The start (where errors are) and the end (the statistics) of the output."""
        text = self.output.decode(errors="replace")
        return text if len(text) < 4000 else text[:1500] + "\n[...]\n" + text[-2500:]

    def send(self, text: str):
        self.transport.write(text.encode())

    def wait_for(self, needle: bytes, timeout: float) -> defer.Deferred:
        """Fires True once ``needle`` appears in the output, False after ``timeout``."""
        d = defer.Deferred()

        def check(output):
            if needle in output and not d.called:
                self.watchers.remove(check)
                d.callback(True)
        self.watchers.append(check)
        check(self.output)

        def expire():
            if not d.called:
                if check in self.watchers:
                    self.watchers.remove(check)
                d.callback(False)
        call = reactor.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d


def spawn(args, path=None, env=None) -> PeerProcess:
    process = PeerProcess()
    reactor.spawnProcess(process, args[0], args, env=env or {"PATH": "/usr/bin:/bin",
                                                              "HOME": path or os.getcwd()},
                         path=path or os.getcwd())
    return process


def sipp_binary():
    return shutil.which("sipp")


def baresip_binary():
    return shutil.which("baresip")
