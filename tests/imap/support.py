"""A running mail node for the protocol tests: store, mailbox service, accounts,
and the IMAP/POP3/SMTP factories listening on loopback port 0 in the test's
reactor, driven by Python's own blocking clients on threads."""

from __future__ import annotations

import ssl
import tempfile
import shutil

from twisted.internet import defer, reactor, threads
from twisted.protocols.tls import TLSMemoryBIOFactory

from portaum_tx import tls
from portaum_tx.accounts import AccountService
from portaum_tx.mailbox.events import EventBus
from portaum_tx.mailbox.service import MailboxService
from tests.support import StoreTestCase

USER = "12065557777"
PASSWORD = "secret-1"
ADDRESS = "rachel@example.net"


def client_tls() -> ssl.SSLContext:
    """The self-signed test certificate is not verifiable; the channel still is TLS."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def in_thread(function, *args, **kwargs) -> defer.Deferred:
    return threads.deferToThread(function, *args, **kwargs)


def wait_until(predicate, timeout: float = 10.0) -> defer.Deferred:
    d = defer.Deferred()
    deadline = reactor.seconds() + timeout

    def check():
        try:
            done = predicate()
        except Exception as exc:  # surfaces in the test
            d.errback(exc)
            return
        if done:
            d.callback(done)
        elif reactor.seconds() > deadline:
            d.errback(AssertionError("condition not reached in time"))
        else:
            reactor.callLater(0.02, check)
    check()
    return d


class MailNodeTestCase(StoreTestCase):
    """Store on the class's engine plus one account with a password."""

    quota = 10_000_000

    async def _open(self):
        await super()._open()
        directory = tempfile.mkdtemp(prefix="portaum-tls-")
        self.addCleanup(shutil.rmtree, directory, True)
        self.config = self.make_config(f"storage.data_dir={directory}")
        self.tls_context = tls.context_factory(self.config)
        self.events = EventBus(self.store)
        self.addCleanup(self.events.close)
        self.mailboxes = MailboxService(self.store, self.events, reactor, domain="example.net")
        self.accounts = AccountService(self.store, reactor)
        await self.store.accounts.add_customer("Smart Calls, Ltd.")
        await self.accounts.create_account(USER, "Smart Calls, Ltd.", quota=self.quota,
                                           email=ADDRESS, password=PASSWORD)
        await self.accounts.add_alias("rachel", USER)

    def listen(self, factory, implicit_tls: bool = False) -> int:
        if implicit_tls:
            factory = TLSMemoryBIOFactory(self.tls_context, False, factory)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self._close_sessions, factory)
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def _close_sessions(self, factory):
        """Drop connections a failed test left open, and wait until they are gone."""
        inner = getattr(factory, "wrappedFactory", factory)
        sessions = getattr(inner, "sessions", set())
        for session in list(sessions):
            session.transport.abortConnection()
        return wait_until(lambda: not sessions, 5)


def raw_command(client, command: str | bytes) -> tuple[bytes, list[bytes]]:
    """Send one tagged command on an imaplib connection and read to its end.

    Returns ``(status line without the tag, untagged and continuation lines)``,
    literals joined into their lines; avoids imaplib's accumulation of
    untagged responses across commands so tests see exactly what one command
    produced."""
    import re
    tag = client._new_tag()
    data = command.encode() if isinstance(command, str) else command
    client.send(tag + b" " + data + b"\r\n")
    lines = []
    while True:
        line = client.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        while True:
            match = re.search(rb"\{(\d+)\}\r\n$", line)
            if not match:
                break
            line += client.read(int(match.group(1)))
            line += client.readline()
        if line.startswith(tag + b" "):
            return line[len(tag) + 1:].rstrip(b"\r\n"), lines
        lines.append(line.rstrip(b"\r\n"))
