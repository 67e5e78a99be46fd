"""Outbound mail: the durable queue and the SMTP client that empties it.

Each recipient of a queued message is tried on its own: delivered (row
deleted), failed for good (row deleted, bounce to the sender), or failed for
now (tried again later with growing pauses, until ``retry_for`` has passed,
then bounced).  The queue is polled on a clock and woken at once by
:meth:`OutboundQueue.enqueue`; several cluster nodes may run it on the same
database, as rows are claimed with a lease.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Awaitable, Callable

from twisted.internet import defer, error as net_error, ssl, task
from twisted.logger import Logger
from twisted.mail import relaymanager, smtp as twisted_smtp

from . import dsn

log = Logger()


class DeliveryError(Exception):
    """A recipient could not be delivered; ``permanent`` says whether to retry."""

    def __init__(self, text: str, permanent: bool, code: int | None = None):
        super().__init__(text)
        self.permanent = permanent
        self.code = code


@dataclasses.dataclass(frozen=True)
class Smarthost:
    host: str
    port: int = 25
    username: str = ""
    password: str = ""
    require_tls: bool = False

    @classmethod
    def parse(cls, text: str, **kwargs) -> "Smarthost | None":
        if not text:
            return None
        host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
        if not port:
            host, port = text, "25"
        return cls(host.strip("[]"), int(port), **kwargs)


class SMTPRelay:
    """Sends one message to one recipient: through the smarthost, or to the
    recipient domain's MX hosts in preference order."""

    def __init__(self, reactor, hostname: str, smarthost: Smarthost | None = None,
                 mx_port: int = 25, resolver=None, timeout: float = 120):
        self.reactor = reactor
        self.hostname = hostname
        self.smarthost = smarthost
        self.mx_port = mx_port
        self.timeout = timeout
        self._mx = None if smarthost else relaymanager.MXCalculator(resolver, clock=reactor)

    async def _hosts(self, recipient: str) -> list[tuple[str, int]]:
        if self.smarthost is not None:
            return [(self.smarthost.host, self.smarthost.port)]
        domain = recipient.rpartition("@")[2]
        try:
            record = await self._mx.getMX(domain)
        except net_error.DNSLookupError as exc:
            raise DeliveryError(f"no mail host for {domain}: {exc}", permanent=False) from None
        return [(str(record.name), self.mx_port)]

    async def send(self, sender: str, recipient: str, data: bytes) -> None:
        last: DeliveryError | None = None
        for host, port in await self._hosts(recipient):
            try:
                await self._send_to(host, port, sender, recipient, data)
                return
            except DeliveryError as exc:
                if exc.permanent:
                    raise
                last = exc
        raise last or DeliveryError("no mail host to try", permanent=False)

    async def _send_to(self, host, port, sender, recipient, data):
        smarthost = self.smarthost
        username = smarthost.username if smarthost else ""
        d = defer.Deferred()
        factory = twisted_smtp.ESMTPSenderFactory(
            username.encode() if username else None,
            smarthost.password.encode() if username else None,
            # twisted's sender turns every LF into CRLF on the way out, so it
            # is given LF line ends.
            sender, [recipient], io.BytesIO(data.replace(b"\r\n", b"\n")), d, retries=0,
            timeout=self.timeout,
            contextFactory=ssl.CertificateOptions(verify=False), heloFallback=True,
            requireAuthentication=bool(username),
            requireTransportSecurity=bool(smarthost and smarthost.require_tls),
            hostname=self.hostname.encode())
        factory.domain = self.hostname.encode()
        self.reactor.connectTCP(host, port, factory, timeout=30)
        try:
            await d
        except twisted_smtp.SMTPClientError as exc:
            code = exc.code if isinstance(exc.code, int) else None
            text = exc.resp
            # The reply to our RCPT says more than the summary twisted makes.
            for address, address_code, address_text in getattr(exc, "addresses", None) or []:
                if address_code not in twisted_smtp.SUCCESS:
                    code, text = address_code, address_text
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            permanent = bool(code and 500 <= code < 600) and not isinstance(
                exc, twisted_smtp.SMTPConnectError)
            raise DeliveryError(f"{code or ''} {text}".strip() + f" (from {host})",
                                permanent=permanent, code=code) from None
        except Exception as exc:
            raise DeliveryError(f"{host}:{port}: {exc}", permanent=False) from None


class OutboundQueue:
    #: Pauses between attempts; the last one repeats.
    BACKOFF = (60, 300, 900, 1800, 3600)

    def __init__(self, store, relay, clock, *, node_name: str, hostname: str,
                 retry_for: float, from_address: str,
                 local_delivery: Callable[[str, bytes], Awaitable[bool]] | None = None,
                 poll_interval: float = 30, lease: int = 600, batch: int = 20):
        self.store = store
        self.relay = relay
        self.clock = clock
        self.node_name = node_name
        self.hostname = hostname
        self.retry_for = retry_for
        self.from_address = from_address
        self.local_delivery = local_delivery
        self.poll_interval = poll_interval
        self.lease = lease
        self.batch = batch
        self._loop: task.LoopingCall | None = None
        self._running: defer.Deferred | None = None
        self._again = False
        self.passes = 0

    # --- queueing -------------------------------------------------------------------

    async def enqueue(self, sender: str, recipients, data: bytes, kind: str = "mail") -> list[int]:
        """Queue ``data``; committed when this returns (before any SMTP 250)."""
        ids = await self.store.add_outbound(sender, list(recipients), data, kind)
        self.kick()
        return ids

    async def bounce(self, sender: str, recipients, original: bytes, diagnostic: str,
                     arrival: float | None = None) -> None:
        """Tell ``sender`` that ``recipients`` did not get ``original``."""
        if not sender:
            return  # never bounce a bounce
        now = self.clock.seconds()
        code = int(diagnostic[:3]) if diagnostic[:3].isdigit() else None
        status = dsn.status_of(code, diagnostic[4:] if code else diagnostic)
        report = dsn.build_bounce(
            reporting_mta=self.hostname, from_address=self.from_address, to_address=sender,
            failures=[(r, status, diagnostic) for r in recipients], original=original,
            arrival=now if arrival is None else arrival, now=now)
        await self.enqueue("", [sender], report, kind="bounce")

    # --- running --------------------------------------------------------------------

    def start(self) -> None:
        self._loop = task.LoopingCall(self.kick)
        self._loop.clock = self.clock
        self._loop.start(self.poll_interval, now=True)

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._running is not None:
            await self._running

    def kick(self) -> None:
        """Run a pass now (or right after the one that is running), once the
        queue is started; before that, passes run only through run_once()."""
        if self._loop is None:
            return
        if self._running is not None:
            self._again = True
            return
        self._running = defer.ensureDeferred(self._passes())
        self._running.addErrback(lambda f: log.failure("outbound queue pass failed", f))

        def finished(_):
            self._running = None
        self._running.addBoth(finished)

    async def _passes(self):
        while True:
            self._again = False
            handled = await self.run_once()
            if not handled and not self._again:
                return

    async def run_once(self) -> int:
        """Claim due recipients and try each once; returns how many were tried."""
        self.passes += 1
        items = await self.store.claim_outbound(self.node_name, self.lease, self.batch)
        if items:
            await defer.DeferredList([defer.ensureDeferred(self._attempt(item)) for item in items],
                                     consumeErrors=True)
        return len(items)

    async def _attempt(self, item) -> None:
        try:
            if self.local_delivery is not None and await self.local_delivery(item.recipient,
                                                                             item.data):
                await self.store.delete_outbound(item.id)
                return
            await self.relay.send(item.sender, item.recipient, item.data)
        except DeliveryError as exc:
            await self._failed(item, exc)
            return
        except Exception as exc:
            log.failure("delivery to {recipient} failed unexpectedly", recipient=item.recipient)
            await self._failed(item, DeliveryError(f"local error: {exc}", permanent=False))
            return
        await self.store.delete_outbound(item.id)
        log.info("delivered queued mail {id} to {recipient}", id=item.id, recipient=item.recipient)

    async def _failed(self, item, exc: DeliveryError) -> None:
        now = self.clock.seconds()
        expired = now - item.created >= self.retry_for
        if not exc.permanent and not expired:
            pause = self.BACKOFF[min(item.attempts, len(self.BACKOFF) - 1)]
            await self.store.set_outbound_retry(item.id, int(now + pause), str(exc))
            log.info("queued mail {id} to {recipient} deferred: {why}", id=item.id,
                     recipient=item.recipient, why=str(exc))
            return
        await self.store.delete_outbound(item.id)
        reason = str(exc) if exc.permanent else f"gave up after {int(now - item.created)} s: {exc}"
        log.warn("queued mail {id} to {recipient} failed: {why}", id=item.id,
                 recipient=item.recipient, why=reason)
        if item.kind == "mail":
            diagnostic = str(exc) if exc.permanent else f"451 4.4.7 {reason}"
            await self.bounce(item.sender, [item.recipient], item.data, diagnostic,
                              arrival=item.created)
