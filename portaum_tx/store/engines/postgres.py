"""The cluster engine: PostgreSQL through txpostgres.

A small pool of asynchronous connections, each with its own dead-connection
detector so that a PostgreSQL restart is survived: statements on a dead
connection fail at once (the caller sees :class:`StoreUnavailable`) and the
connection reconnects in the background with backoff.  One more connection is
kept for LISTEN; it re-issues its LISTENs whenever it recovers, so nodes keep
hearing each other after a database restart.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import psycopg2
import psycopg2.errorcodes
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import failure
from txpostgres import reconnection, txpostgres

from .base import IntegrityError, StoreError, StoreUnavailable

log = Logger()

#: Serialization failures and deadlocks are retried this many times.
_RETRIES = 5
_RETRY_CODES = {psycopg2.errorcodes.SERIALIZATION_FAILURE, psycopg2.errorcodes.DEADLOCK_DETECTED}
_INTEGRITY_CLASS = "23"


def convert_placeholders(sql: str) -> str:
    """Portable ``?`` placeholders to psycopg2's ``%s`` (``%`` doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


LISTEN_GRACE = 2.0  # seconds close() waits for LISTENs still on the way


def _reconnect_delays():
    from txpostgres import retrying
    return retrying.simpleBackoffIterator(initialDelay=0.5, maxDelay=5.0, factor=1.7,
                                          maxRetries=0, now=True)


class _Connection(txpostgres.Connection):
    """A connection that notices, while idle, that the server went away.

    txpostgres lets the error of an idle connection's read escape into the
    reactor (logged as unhandled); here it starts the reconnection instead."""

    def doRead(self):
        try:
            super().doRead()
        except psycopg2.Error as exc:
            self.reactor.removeReader(self)
            self.detector.checkForDeadConnection(failure.Failure(exc))


def _connection_lost(exc: BaseException) -> bool:
    if isinstance(exc, (StoreUnavailable, reconnection.ConnectionDead, psycopg2.InterfaceError)):
        return True
    return isinstance(exc, psycopg2.OperationalError) and exc.pgcode not in _RETRY_CODES


class _PostgresTransaction:
    def __init__(self, cursor):
        self._cursor = cursor

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        await _checked(self._cursor.execute(convert_placeholders(sql), tuple(args)))
        if self._cursor.description is None:
            return []
        return [tuple(_plain(v) for v in row) for row in self._cursor.fetchall()]

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            await self.execute(sql, row)


async def _checked(deferred):
    try:
        return await deferred
    except psycopg2.IntegrityError as exc:
        raise IntegrityError(str(exc).strip()) from None
    except (reconnection.ConnectionDead, psycopg2.InterfaceError,
            psycopg2.OperationalError) as exc:
        if getattr(exc, "pgcode", None) in _RETRY_CODES:
            raise
        raise StoreUnavailable(f"PostgreSQL is unavailable: {str(exc).strip() or type(exc).__name__}") from None


class PostgresEngine:
    name = "postgres"
    row_lock_suffix = " FOR UPDATE"
    schema_types = {
        "ID": "BIGSERIAL PRIMARY KEY",
        "BLOB": "BYTEA",
        "BIGINT": "BIGINT",
        "TEXT": "TEXT",
        "NUMERIC": "NUMERIC",
    }

    def __init__(self, dsn: str, reactor, pool_size: int = 4):
        self.dsn = dsn
        self._reactor = reactor
        self._pool_size = pool_size
        self._idle: list[txpostgres.Connection] = []
        self._waiting: list[defer.Deferred] = []
        self._all: list[txpostgres.Connection] = []
        self._listener: txpostgres.Connection | None = None
        self._channels: dict[str, list[Callable[[str], None]]] = {}
        self._listens_on_the_way: set[defer.Deferred] = set()

    def _new_connection(self) -> txpostgres.Connection:
        detector = reconnection.DeadConnectionDetector(
            reconnectionIterator=_reconnect_delays, reactor=self._reactor)
        return _Connection(reactor=self._reactor, detector=detector)

    async def open(self) -> None:
        try:
            for _ in range(self._pool_size):
                connection = self._new_connection()
                await connection.connect(self.dsn)
                self._all.append(connection)
                self._idle.append(connection)
            self._listener = self._new_connection()
            await self._listener.connect(self.dsn)
        except psycopg2.Error as exc:
            await self.close()
            raise StoreError(f"cannot connect to PostgreSQL ({self.dsn}): "
                             f"{str(exc).strip().splitlines()[0]}") from None
        self._listener.addNotifyObserver(self._on_notify)
        self._listener.detector.addRecoveryHandler(self._relisten)

    async def close(self) -> None:
        # A LISTEN cut short by closing its connection fails inside txpostgres where
        # nothing can handle it; they take one round trip, so let them arrive, but
        # never hold shutdown for longer than LISTEN_GRACE on a server that is silent.
        if self._listens_on_the_way:
            waited = defer.Deferred()

            def done(_=None):
                if not waited.called:
                    waited.callback(None)
            defer.DeferredList(list(self._listens_on_the_way), consumeErrors=True).addBoth(done)
            grace = self._reactor.callLater(LISTEN_GRACE, done)
            await waited
            if grace.active():
                grace.cancel()
        for connection in self._all + ([self._listener] if self._listener else []):
            try:
                connection.close()
            except Exception:  # already closed or never opened
                pass
        self._all = []
        self._idle = []
        self._listener = None

    # --- the pool ---------------------------------------------------------

    async def _checkout(self) -> txpostgres.Connection:
        while True:
            if self._idle:
                connection = self._idle.pop()
            else:
                waiter = defer.Deferred()
                self._waiting.append(waiter)
                connection = await waiter
            if connection.detector.connectionIsDead:
                # Keep it for when it has reconnected; try another.
                self._checkin(connection, later=True)
                if all(c.detector.connectionIsDead for c in self._all):
                    raise StoreUnavailable("PostgreSQL is unavailable (reconnecting)")
                continue
            return connection

    def _checkin(self, connection, later: bool = False) -> None:
        if self._waiting and not later:
            self._waiting.pop(0).callback(connection)
        else:
            self._idle.insert(0, connection)

    async def run_interaction(self, description: str, func, *args: Any) -> Any:
        # A connection found dead before COMMIT was sent is retried on
        # another one (the server rolled the transaction back); one lost
        # during COMMIT is reported, since its outcome is unknown.
        attempts = _RETRIES + self._pool_size
        for attempt in range(attempts):
            connection = await self._checkout()
            committing = False
            try:
                cursor = connection.cursor()
                await _checked(cursor.execute("BEGIN"))
                try:
                    result = await func(_PostgresTransaction(cursor), *args)
                    committing = True
                    await _checked(cursor.execute("COMMIT"))
                    return result
                except BaseException as exc:
                    if not _connection_lost(exc):
                        try:
                            await cursor.execute("ROLLBACK")
                        except Exception:
                            pass
                    raise
            except psycopg2.Error as exc:
                if _connection_lost(exc):
                    self._mark_dead(connection, exc)
                    if committing:
                        raise StoreUnavailable(f"{description}: connection lost during commit")
                    if attempt < attempts - 1:
                        continue
                    raise StoreUnavailable(f"PostgreSQL is unavailable: {exc}") from None
                if exc.pgcode in _RETRY_CODES and attempt < attempts - 1:
                    log.debug("retrying {description} after {code}",
                              description=description, code=exc.pgcode)
                    continue
                raise StoreError(f"{description}: {str(exc).strip()}") from None
            except (StoreUnavailable, reconnection.ConnectionDead) as exc:
                self._mark_dead(connection, exc)
                if committing or attempt == attempts - 1:
                    raise StoreUnavailable(f"{description}: {exc}") from None
                continue
            finally:
                self._checkin(connection)
        raise StoreError(f"{description}: gave up after {attempts} attempts")

    def _mark_dead(self, connection, exc) -> None:
        if not connection.detector.connectionIsDead:
            connection.detector.checkForDeadConnection(
                failure.Failure(psycopg2.InterfaceError(str(exc))))

    async def lock_for_migrations(self, txn) -> None:
        # A transaction-level advisory lock: nodes starting together migrate
        # one after the other, and the later ones find nothing left to do.
        await txn.execute("SELECT pg_advisory_xact_lock(7263)")

    # --- LISTEN / NOTIFY --------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        async def send(txn):
            await txn.execute("SELECT pg_notify(?, ?)", (channel, payload))
        await self.run_interaction("notify", send)

    def listen(self, channel: str, callback: Callable[[str], None]) -> Callable[[], None]:
        first = channel not in self._channels
        self._channels.setdefault(channel, []).append(callback)
        if first and self._listener is not None:
            self._listen_on(channel)

        def unlisten():
            callbacks = self._channels.get(channel, [])
            if callback in callbacks:
                callbacks.remove(callback)
        return unlisten

    def listening(self) -> defer.Deferred:
        """Fires once every LISTEN issued so far has reached the server."""
        return self._listener.runOperation("SELECT 1")

    def _listen_on(self, channel: str) -> defer.Deferred:
        quoted = '"' + channel.replace('"', '""') + '"'
        d = self._listener.runOperation(f"LISTEN {quoted}")
        d.addErrback(lambda f: log.failure("LISTEN {channel} failed", f, channel=channel))
        self._listens_on_the_way.add(d)
        d.addBoth(lambda result: (self._listens_on_the_way.discard(d), result)[1])
        return d

    def _relisten(self):
        return defer.gatherResults([self._listen_on(c) for c in self._channels])

    def _on_notify(self, notify) -> None:
        for callback in list(self._channels.get(notify.channel, ())):
            try:
                callback(notify.payload)
            except Exception:
                log.failure("notification handler for {channel} failed", channel=notify.channel)
