"""Shared test support: stores on both engines, peers that must be present in CI.

Store tests are written once against :class:`StoreTestCase` and decorated with
:func:`on_both_engines`, which adds a PostgreSQL twin of the class when
``PORTAUM_TEST_POSTGRES`` holds a libpq DSN.  Each test run creates its own
PostgreSQL database and drops it at exit; each test starts from empty tables.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import socket
import sys
import tempfile

from twisted.internet import defer, reactor
from twisted.trial import unittest

from portaum_tx.config import load_config
from portaum_tx.store import Store, open_store

POSTGRES_DSN = os.environ.get("PORTAUM_TEST_POSTGRES", "").strip()
REQUIRE_PEERS = os.environ.get("PORTAUM_REQUIRE_PEERS") == "1"

_test_database: str | None = None


#: Ports the tests hand to servers and peers: below the kernel's ephemeral range
#: (32768-60999 by default), so that no socket bound to port 0 and no outgoing
#: connection, in this process or in another test worker (``trial -j``), is given one
#: between the probe and the bind. Above the media engine's default RTP range start.
TEST_PORTS = (14000, 20000)
_ports = random.Random()


def free_port(kind=socket.SOCK_DGRAM, both: bool = False, count: int = 1) -> int:
    """A port free on 127.0.0.1 for ``kind`` (and, with ``both``, for TCP and UDP); with
    ``count`` above 1, the first (even) of that many consecutive free ports."""
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if both else (kind,)
    low, high = TEST_PORTS
    for _ in range(1000):
        first = _ports.randrange(low, high - count) & ~(1 if count > 1 else 0)
        held = []
        try:
            for port in range(first, first + count):
                for each in kinds:
                    probe = socket.socket(socket.AF_INET, each)
                    held.append(probe)
                    probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for probe in held:
                probe.close()
    raise RuntimeError(f"no {count} free port(s) in {low}-{high}")


def require_peer(name: str, available: bool, why: str = "") -> None:
    """Skip a test whose real peer is missing, except in CI where that fails."""
    if available:
        return
    message = f"{name} is not available{': ' + why if why else ''}"
    if REQUIRE_PEERS:
        raise AssertionError(message + " (PORTAUM_REQUIRE_PEERS=1)")
    raise unittest.SkipTest(message)


def program(name: str) -> str | None:
    return shutil.which(name)


def has_ipv6_loopback() -> bool:
    """Whether this host can bind ::1 (some containers have no IPv6 at all)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def _admin_dsn(dbname: str) -> str:
    parts = [p for p in POSTGRES_DSN.split() if not p.startswith("dbname=")]
    return " ".join(parts + [f"dbname={dbname}"])


def postgres_test_dsn() -> str:
    """A fresh database for this test run (created once, dropped at exit)."""
    global _test_database
    import psycopg2
    if _test_database is None:
        name = f"portaum_test_{os.getpid()}"
        admin = psycopg2.connect(POSTGRES_DSN)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            cursor.execute(f"CREATE DATABASE {name}")
        admin.close()
        _test_database = name
        atexit.register(_drop_test_database, name)
    return _admin_dsn(_test_database)


def _drop_test_database(name: str) -> None:
    import psycopg2
    try:
        admin = psycopg2.connect(POSTGRES_DSN)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
    except Exception as exc:  # the run is over; say so and go on
        print(f"could not drop test database {name}: {exc}", file=sys.stderr)


def _truncate_all(dsn: str) -> None:
    import psycopg2
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                       "AND tablename <> 'schema_version'")
        tables = [row[0] for row in cursor.fetchall()]
        if tables:
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    connection.close()


class StoreTestCase(unittest.TestCase):
    """A test with a fresh, migrated store on :attr:`engine`."""

    engine = "sqlite"

    def config_overrides(self) -> list[str]:
        if self.engine == "postgres":
            return ["storage.engine=postgres", f"storage.postgres_dsn={postgres_test_dsn()}",
                    "storage.pool_size=3"]
        directory = tempfile.mkdtemp(prefix="portaum-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        return [f"storage.data_dir={directory}", "storage.sqlite_synchronous=normal"]

    def make_config(self, *extra: str):
        if not hasattr(self, "_overrides"):
            self._overrides = self.config_overrides()
            if self.engine == "postgres":
                # Empty tables, and let schema migrations run once per database.
                _truncate_all(postgres_test_dsn())
        return load_config(None, self._overrides + list(extra))

    async def open_store(self, *extra: str) -> Store:
        """Another handle on the test database (a second cluster node, say)."""
        store = await open_store(self.make_config(*extra), reactor)
        self.addCleanup(lambda: defer.ensureDeferred(store.close()))
        return store

    def setUp(self):
        return defer.ensureDeferred(self._open())

    async def _open(self):
        self.store = await self.open_store()


def on_both_engines(cls):
    """Class decorator: also run ``cls`` on PostgreSQL when configured."""
    module = sys.modules[cls.__module__]
    twin = type(cls.__name__ + "Postgres", (cls,), {"engine": "postgres"})
    twin.__module__ = cls.__module__
    if not POSTGRES_DSN:
        twin.skip = "PORTAUM_TEST_POSTGRES is not set"
    setattr(module, twin.__name__, twin)
    return cls
