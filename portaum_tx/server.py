"""The running node: start-up order, listeners, and what front ends share.

Start-up happens in two steps so that every mistake a user can make is
reported in one line before the process goes into the background:

1. :meth:`PortaumService.privilegedStartService` (before the reactor runs)
   checks the database is reachable and not newer than this release, and
   binds every listening port.  A port in use stops start-up with a message
   naming the option that configured it.
2. :meth:`PortaumService.startService` opens the store and starts each front
   end; until a front end is ready its ports turn connections away.

Front ends are small objects with ``name``, ``ports(config)`` and
``async start(node) -> {label: factory_or_protocol}`` (and optional
``async stop()``); they find everything shared on the :class:`Node`.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import socket
import sys
from typing import Any

from twisted.application import service
from twisted.internet import defer, error, protocol
from twisted.logger import Logger

from .config import Config
from .gcstats import CollectorPauses, SurvivorFreezer

log = Logger()


class StartupError(Exception):
    """Start-up cannot go on; ``str()`` is the one line to show."""


@dataclasses.dataclass(frozen=True)
class PortSpec:
    label: str           # what the front end calls it, e.g. "imap"
    transport: str       # "tcp" or "udp"
    address: str
    port: int
    option: str          # the config option, named in errors: "[imap] port"


class _Gate:
    target: Any = None


class GateFactory(protocol.ServerFactory, _Gate):
    """Listens from the start; hands connections to the real factory once ready."""

    def buildProtocol(self, addr):
        if self.target is None:
            return None  # not started yet: the connection is closed at once
        return self.target.buildProtocol(addr)


class GateDatagram(protocol.DatagramProtocol, _Gate):
    def set_target(self, target) -> None:
        self.target = target
        target.makeConnection(self.transport)

    def datagramReceived(self, data, addr):
        if self.target is not None:
            self.target.datagramReceived(data, addr)


@dataclasses.dataclass
class Node:
    """What every front end of this node shares."""
    config: Config
    reactor: Any
    store: Any
    events: Any
    mailboxes: Any
    accounts: Any
    name: str
    secret: str
    listening: dict = dataclasses.field(default_factory=dict)  # label -> IListeningPort
    services: dict = dataclasses.field(default_factory=dict)   # front end name -> front end
    # What IVR applications use, one of each per node (None where a test leaves it out):
    billing: Any = None          # billing.engine.BillingEngine
    payment_gateway: Any = None  # billing.gateway.PaymentGateway; None: [payment] url empty
    prompts: Any = None          # ivr.prompts.PromptLibrary, uploaded prompts included
    background: Any = None       # ivr.apps.BackgroundWork: work outliving its call
    fax_unavailable: str | None = None  # why fax reception is off, None when it is on
    collector: Any = None        # gcstats.CollectorPauses: the garbage collector's pauses
    freezer: Any = None          # gcstats.SurvivorFreezer, with [rtp] gc_freeze


def default_frontends() -> list:
    """The front ends of a node, in start order."""
    from .imap.frontend import IMAPFrontend, POP3Frontend
    from .sip.frontend import SipFrontend
    from .smtp.frontend import SMTPFrontend
    from .web.frontend import WebFrontend
    return [WebFrontend(), SipFrontend(), IMAPFrontend(), POP3Frontend(), SMTPFrontend()]


def preflight_storage(config: Config) -> None:
    """Synchronous checks that the database can be opened and is not too new."""
    from .store import schema
    if config.storage.engine == "sqlite":
        import sqlite3
        path = config.sqlite_path
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            connection = sqlite3.connect(path, timeout=30)
            try:
                rows = connection.execute(
                    "SELECT version FROM schema_version").fetchall() if connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchall() else []
            finally:
                connection.close()
        except (OSError, sqlite3.Error) as exc:
            raise StartupError(f"[storage] sqlite_path: cannot open {path}: {exc}") from None
    else:
        import psycopg2
        try:
            connection = psycopg2.connect(config.storage.postgres_dsn, connect_timeout=10)
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT to_regclass('schema_version') IS NOT NULL")
                    rows = []
                    if cursor.fetchone()[0]:
                        cursor.execute("SELECT version FROM schema_version")
                        rows = cursor.fetchall()
            finally:
                connection.close()
        except psycopg2.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StartupError(f"[storage] postgres_dsn: cannot connect to PostgreSQL: {first}") from None
    if rows and rows[0][0] > schema.LATEST:
        raise StartupError(f"the database schema is version {rows[0][0]} but this release knows "
                           f"only up to {schema.LATEST}; run a newer release against it")


class PortaumService(service.MultiService):
    #: Seconds the work calls left running (callbacks) get at shutdown before it is cancelled.
    background_grace = 5.0

    def __init__(self, config: Config, reactor, frontends: list | None = None,
                 exit_on_failure: bool = True):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.frontends = default_frontends() if frontends is None else frontends
        self.exit_on_failure = exit_on_failure
        self.node: Node | None = None
        self._gates: dict[str, tuple[_Gate, PortSpec, Any]] = {}
        self._ports: list = []
        self.ready = defer.Deferred()

    # --- step 1 --------------------------------------------------------------

    def privilegedStartService(self):
        try:
            preflight_storage(self.config)
            self.bind_ports()
        except StartupError as exc:
            self._fail_early(str(exc))
        super().privilegedStartService()

    def _fail_early(self, message: str):
        for port in self._ports:
            port.stopListening()
        if not self.exit_on_failure:
            raise StartupError(message)
        print(f"portaum: {message}", file=sys.stderr)
        raise SystemExit(1)

    def bind_ports(self) -> None:
        for frontend in self.frontends:
            for spec in frontend.ports(self.config):
                if spec.port == 0:
                    continue
                gate: _Gate = GateDatagram() if spec.transport == "udp" else GateFactory()
                try:
                    if spec.transport == "udp":
                        port = self.reactor.listenUDP(spec.port, gate, interface=spec.address)
                    else:
                        port = self.reactor.listenTCP(spec.port, gate, interface=spec.address)
                except error.CannotListenError as exc:
                    reason = exc.socketError
                    text = getattr(reason, "strerror", None) or str(reason)
                    raise StartupError(f"{self._source()}{spec.option}: cannot listen on "
                                       f"{spec.transport.upper()} {spec.address}:{spec.port}: "
                                       f"{text}") from None
                self._ports.append(port)
                self._gates[spec.label] = (gate, spec, port)

    def _source(self) -> str:
        return f"{self.config.source}: " if self.config.source else ""

    # --- step 2 --------------------------------------------------------------

    def startService(self):
        super().startService()
        d = defer.ensureDeferred(self._start())
        d.addCallbacks(self.ready.callback, self._start_failed)

    async def _start(self) -> Node:
        from .accounts import AccountService
        from .mailbox.events import EventBus
        from .mailbox.service import MailboxService
        from .store import open_store

        store = await open_store(self.config, self.reactor)
        events = EventBus(store)
        hostname = socket.getfqdn()
        domain = self.config.sip.domain or hostname
        secret = self.config.cluster.secret or await store.settings.get_or_create_secret()
        node = Node(config=self.config, reactor=self.reactor, store=store, events=events,
                    mailboxes=MailboxService(store, events, self.reactor, domain=domain),
                    accounts=AccountService(store, self.reactor, realm=self.config.sip.realm),
                    name=self.config.cluster.node_name or hostname, secret=secret)
        self._add_ivr_services(node)
        self.node = node
        for frontend in self.frontends:
            targets = await frontend.start(node)
            node.services[frontend.name] = frontend
            for label, target in (targets or {}).items():
                if label not in self._gates:
                    continue  # that port is switched off in the configuration
                gate, spec, port = self._gates[label]
                node.listening[label] = port
                if isinstance(gate, GateDatagram):
                    gate.set_target(target)
                else:
                    gate.target = target
        # Everything built so far lives as long as the node; keeping it out of the
        # collector's generations shortens the full collections that pause media.
        gc.freeze()
        node.collector = CollectorPauses()
        node.collector.install()
        if self.config.rtp.gc_freeze:
            node.freezer = SurvivorFreezer(self.reactor, self.config.rtp.gc_thaw_interval)
            node.freezer.start()
        log.info("portaum node {name} ready on {engine} (schema {version}); listening: {ports}",
                 name=node.name, engine=store.engine_name, version=store.schema_version,
                 ports=", ".join(f"{s.label} {s.transport}/{s.port}" for _, s, _ in self._gates.values()))
        return node

    def _add_ivr_services(self, node: Node) -> None:
        from .billing.engine import BillingEngine
        from .billing.gateway import PaymentGateway
        from .ivr.apps import BackgroundWork
        from .ivr.prompts import PromptLibrary, store_lookup

        if getattr(node.store, "billing", None) is not None:
            node.billing = BillingEngine(node.store, self.reactor)
        node.payment_gateway = PaymentGateway.from_config(self.config, self.reactor)
        node.prompts = PromptLibrary(self.config.prompts.directory or None,
                                     store_lookup=store_lookup(node.store.prompts, self.reactor))
        node.background = BackgroundWork(self.reactor)
        self._configure_fax(node)

    def _configure_fax(self, node: Node) -> None:
        """Apply [fax] and say once, at start, whether fax reception is on."""
        from .fax.call import FaxSettings
        from .ivr.apps import fax as fax_application
        spool = os.path.join(self.config.data_dir, "fax")
        os.makedirs(spool, exist_ok=True)
        node.fax_unavailable = fax_application.configure(
            FaxSettings.from_config(self.config.fax), spool_directory=spool)

    def _start_failed(self, failure):
        message = failure.getErrorMessage() or failure.type.__name__
        from .store import StoreError
        if not failure.check(StoreError, StartupError):
            log.failure("start-up failed", failure)
        self.ready.errback(failure)
        if self.exit_on_failure:
            print(f"portaum: start-up failed: {message}", file=sys.stderr)
            # twistd has no exit status of its own; leave with 1 once the
            # reactor has shut down cleanly.
            self.reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
            self.reactor.stop()

    def stopService(self):
        super().stopService()
        return defer.ensureDeferred(self._stop())

    async def _stop(self):
        for port in self._ports:
            await port.stopListening()
        self._ports = []
        if self.node is not None:
            if self.node.background is not None:
                # callbacks still to place or in progress: a few seconds to end, then hung up
                await self.node.background.stop(grace=self.background_grace)
            for frontend in reversed(list(self.node.services.values())):
                stop = getattr(frontend, "stop", None)
                if stop is not None:
                    try:
                        await stop()
                    except Exception:
                        log.failure("stopping {name} failed", name=frontend.name)
            self.node.events.close()
            await self.node.store.close()
            if self.node.collector is not None:
                self.node.collector.uninstall()
            if self.node.freezer is not None:
                self.node.freezer.stop()
