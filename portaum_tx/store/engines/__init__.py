"""Storage engines: PostgreSQL for a cluster, SQLite for one node.

Dialect differences live in these modules and nowhere else.
"""

from .base import IntegrityError, SchemaTooNew, StoreError, StoreUnavailable


def create_engine(config, reactor):
    """The engine named by the ``[storage]`` section of ``config``."""
    storage = config.storage
    if storage.engine == "postgres":
        from .postgres import PostgresEngine
        return PostgresEngine(storage.postgres_dsn, reactor, storage.pool_size)
    from .sqlite import SqliteEngine
    return SqliteEngine(config.sqlite_path, reactor, storage.sqlite_synchronous)


__all__ = ["create_engine", "IntegrityError", "SchemaTooNew", "StoreError", "StoreUnavailable"]
