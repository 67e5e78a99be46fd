"""The embedded engine: one SQLite file, one writer, zero setup.

SQLite calls block, so every statement runs on one dedicated thread that owns
the connection; the reactor only waits on Deferreds.  Interactions are
serialised by a lock (SQLite has one writer anyway), which also gives the
same isolation PostgreSQL's row locks give the store code.  WAL mode lets the
file be read by other processes (the CLI) while the server runs.

Notifications stay inside the process: a single node has nobody else to tell,
and the CLI's changes are picked up by the server on its next read.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any, Callable, Sequence

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from .base import IntegrityError, StoreError


class _SqliteTransaction:
    def __init__(self, engine: "SqliteEngine"):
        self._engine = engine

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return await self._engine._in_thread(self._engine._execute, sql, tuple(args))

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._engine._in_thread(self._engine._executemany, sql, [tuple(r) for r in rows])


class SqliteEngine:
    name = "sqlite"
    # SQLite has one writer, so reads inside a transaction are already stable.
    row_lock_suffix = ""
    schema_types = {
        "ID": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BLOB": "BLOB",
        "BIGINT": "INTEGER",
        "TEXT": "TEXT",
        "NUMERIC": "TEXT",
    }

    def __init__(self, path: str, reactor, synchronous: str = "full"):
        self.path = path
        self._reactor = reactor
        self._synchronous = synchronous.upper()
        self._pool = ThreadPool(minthreads=1, maxthreads=1, name="portaum-sqlite")
        self._lock = defer.DeferredLock()
        self._connection: sqlite3.Connection | None = None
        self._listeners: dict[str, list[Callable[[str], None]]] = {}

    # --- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create database directory {directory}: {exc}") from None
        self._pool.start()
        try:
            await self._in_thread(self._connect)
        except Exception:
            self._pool.stop()
            raise

    def _connect(self) -> None:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None,
                                         check_same_thread=False, timeout=30.0)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from None
        self._connection = connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._lock.acquire()
            try:
                await self._in_thread(self._connection.close)
            finally:
                self._connection = None
                self._lock.release()
        if self._pool.started:
            self._pool.stop()

    # --- statements --------------------------------------------------------

    def _in_thread(self, func, *args):
        return threads.deferToThreadPool(self._reactor, self._pool, func, *args)

    def _execute(self, sql: str, args: tuple) -> list[tuple]:
        try:
            cursor = self._connection.execute(sql, args)
            return cursor.fetchall()
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from None

    def _executemany(self, sql: str, rows: list[tuple]) -> None:
        try:
            self._connection.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from None

    async def run_interaction(self, description: str, func, *args: Any) -> Any:
        if self._connection is None:
            raise StoreError("the SQLite store is not open")
        await self._lock.acquire()
        try:
            # IMMEDIATE takes the write lock up front, so another process
            # (the CLI) cannot make us fail half-way with SQLITE_BUSY.
            await self._in_thread(self._connection.execute, "BEGIN IMMEDIATE")
            try:
                result = await func(_SqliteTransaction(self), *args)
            except BaseException:
                await self._in_thread(self._connection.execute, "ROLLBACK")
                raise
            await self._in_thread(self._connection.execute, "COMMIT")
            return result
        finally:
            self._lock.release()

    async def lock_for_migrations(self, txn) -> None:
        # BEGIN IMMEDIATE already excludes every other writer of the file.
        return None

    # --- in-process notifications -----------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        for callback in list(self._listeners.get(channel, ())):
            # Deliver on a later turn of the reactor, as a database
            # notification would arrive, so publishers never re-enter.
            self._reactor.callLater(0, callback, payload)

    def listen(self, channel: str, callback: Callable[[str], None]) -> Callable[[], None]:
        self._listeners.setdefault(channel, []).append(callback)

        def unlisten():
            callbacks = self._listeners.get(channel, [])
            if callback in callbacks:
                callbacks.remove(callback)
        return unlisten
