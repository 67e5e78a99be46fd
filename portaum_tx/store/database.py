"""The database handle the domain stores share: transactions and migrations."""

from __future__ import annotations

from typing import Any, Sequence

from twisted.logger import Logger

from . import schema
from .engines import SchemaTooNew, StoreError

log = Logger()


class Database:
    """An engine plus the schema version bookkeeping."""

    def __init__(self, engine):
        self.engine = engine

    @property
    def engine_name(self) -> str:
        return self.engine.name

    @property
    def for_update(self) -> str:
        """Suffix of a SELECT that locks its rows until the transaction ends."""
        return self.engine.row_lock_suffix

    async def open(self) -> int:
        """Connect and bring the schema up to date; returns the schema version."""
        await self.engine.open()
        try:
            return await self.run_interaction("migrate", self._migrate)
        except BaseException:
            await self.engine.close()
            raise

    async def close(self) -> None:
        await self.engine.close()

    async def run_interaction(self, description: str, func, *args: Any) -> Any:
        return await self.engine.run_interaction(description, func, *args)

    async def execute(self, description: str, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """One statement in its own transaction."""
        async def one(txn):
            return await txn.execute(sql, args)
        return await self.run_interaction(description, one)

    async def _migrate(self, txn) -> int:
        await self.engine.lock_for_migrations(txn)
        await txn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = await txn.execute("SELECT version FROM schema_version")
        if not rows:
            await txn.execute("INSERT INTO schema_version (version) VALUES (0)")
            current = 0
        else:
            current = rows[0][0]
        if current > schema.LATEST:
            raise SchemaTooNew(
                f"the database schema is version {current} but this release knows only up to "
                f"{schema.LATEST}; run a newer release of portaum_tx against this database")
        for version, name, sql in schema.migrations():
            if version <= current:
                continue
            log.info("applying schema migration {version} ({name})", version=version, name=name)
            for statement in schema.statements(sql, self.engine.schema_types):
                try:
                    await txn.execute(statement)
                except StoreError:
                    raise
                except Exception as exc:
                    raise StoreError(f"schema migration {version} ({name}) failed: {exc}") from None
            await txn.execute("UPDATE schema_version SET version = ?", (version,))
            current = version
        return current
