"""What every storage engine offers the rest of ``store/``.

Store code is written once, with ``?`` placeholders and portable SQL; an
engine converts placeholders, spells the few types that differ (auto
increment keys, blobs), runs interactions as transactions, and carries the
cross-node event channel.  Nothing outside ``store/`` sees an engine.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol, Sequence


class StoreError(Exception):
    """Base of the errors the store raises for callers to handle."""


class StoreUnavailable(StoreError):
    """The database cannot be reached right now (a PostgreSQL restart, say)."""


class IntegrityError(StoreError):
    """A uniqueness or reference constraint refused the change."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer release than this one."""


class Transaction(Protocol):
    async def execute(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement; return its rows (empty for statements without)."""

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        ...


Interaction = Callable[..., Awaitable[Any]]


class Engine(Protocol):
    name: str
    #: Type names substituted into schema files: {ID}, {BLOB}, {BIGINT}, {TEXT}.
    schema_types: dict[str, str]

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def run_interaction(self, description: str, func: Interaction,
                              *args: Any) -> Any:
        """Run ``await func(txn, *args)`` in one transaction, committed before
        this returns; retried on serialization conflicts."""

    async def lock_for_migrations(self, txn: Transaction) -> None:
        """Hold off other nodes migrating the same database at the same time."""

    async def notify(self, channel: str, payload: str) -> None:
        """Send ``payload`` to every node listening on ``channel``."""

    def listen(self, channel: str, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(payload)`` for each notification; returns an unsubscriber."""
