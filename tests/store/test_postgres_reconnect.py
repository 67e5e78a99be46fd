"""The PostgreSQL engine survives its connections being cut (a database restart)."""

import psycopg2
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from portaum_tx.mailbox.events import EventBus, NewMessage
from portaum_tx.store import StoreUnavailable
from tests.support import POSTGRES_DSN, StoreTestCase, postgres_test_dsn


def cut_connections(dsn):
    """Terminate every server backend of the test database, as a restart would."""
    connection = psycopg2.connect(POSTGRES_DSN)
    connection.autocommit = True
    with connection.cursor() as cursor:
        name = [p.split("=", 1)[1] for p in dsn.split() if p.startswith("dbname=")][0]
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    connection.close()


async def eventually(action, attempts=100, delay=0.1):
    """Retry ``action`` while the store reports it is unavailable."""
    for _ in range(attempts):
        try:
            return await action()
        except StoreUnavailable:
            await task.deferLater(reactor, delay, lambda: None)
    return await action()


class PostgresReconnectTests(StoreTestCase):
    engine = "postgres"
    if not POSTGRES_DSN:
        skip = "PORTAUM_TEST_POSTGRES is not set"

    @defer.inlineCallbacks
    def test_store_and_listen_recover_after_connections_are_cut(self):
        store = self.store
        yield defer.ensureDeferred(store.accounts.add_customer("Before"))
        bus = EventBus(store)
        self.addCleanup(bus.close)
        heard = []
        bus.subscribe(NewMessage, heard.append)
        yield store.db.engine.listening()

        cut_connections(postgres_test_dsn())

        customer = yield defer.ensureDeferred(
            eventually(lambda: store.accounts.add_customer("After")))
        self.assertEqual(customer.name, "After")
        names = yield defer.ensureDeferred(eventually(store.accounts.get_customers))
        self.assertEqual([c.name for c in names], ["After", "Before"])

        # The listening connection came back and LISTENs again.
        for _ in range(100):
            if not store.db.engine._listener.detector.connectionIsDead:
                break
            yield task.deferLater(reactor, 0.1, lambda: None)
        yield store.db.engine.listening()
        yield defer.ensureDeferred(bus.publish(NewMessage("1", "INBOX", 1, 1, "email")))
        for _ in range(100):
            if heard:
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual([e.account_id for e in heard], ["1"])


class CloseGraceTests(unittest.TestCase):
    """No server needed: a LISTEN that never gets its answer holds close() only for
    LISTEN_GRACE."""

    def close_with_a_listen_on_the_way(self):
        """A closing engine on a Clock, and the LISTEN it waits for."""
        from portaum_tx.store.engines.postgres import PostgresEngine
        clock = task.Clock()
        engine = PostgresEngine("host=unused", clock)
        on_the_way = defer.Deferred()
        engine._listens_on_the_way.add(on_the_way)
        closed = defer.ensureDeferred(engine.close())
        self.assertNoResult(closed)
        return clock, on_the_way, closed

    def test_close_waits_no_longer_than_the_grace(self):
        from portaum_tx.store.engines.postgres import LISTEN_GRACE
        clock, _, closed = self.close_with_a_listen_on_the_way()
        clock.advance(LISTEN_GRACE - 0.1)
        self.assertNoResult(closed)
        clock.advance(0.1)
        self.successResultOf(closed)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_close_goes_on_when_the_listens_arrive(self):
        clock, on_the_way, closed = self.close_with_a_listen_on_the_way()
        on_the_way.callback(None)
        self.successResultOf(closed)
        self.assertEqual(clock.getDelayedCalls(), [])  # the grace timer is cancelled


class PostgresCloseTests(StoreTestCase):
    engine = "postgres"
    if not POSTGRES_DSN:
        skip = "PORTAUM_TEST_POSTGRES is not set"

    async def test_close_lets_the_listens_on_the_way_arrive(self):
        # A node stopped just after it started closes the listening connection with
        # its LISTENs still on the way; cut short, one fails inside txpostgres where
        # nothing handles it (trial reports it as an error).
        from portaum_tx.store.engines.postgres import PostgresEngine
        engine = PostgresEngine(postgres_test_dsn(), reactor, pool_size=1)
        await engine.open()
        on_the_way = engine._listen_on("cut_short")
        await engine.close()
        self.assertIsNone(await on_the_way)
