"""The only place that speaks SQL.

:func:`open_store` connects the configured engine, applies migrations, and
returns a :class:`Store` whose attributes are the domain stores.  Callers use
their async ``get_*``, ``add_*``, ``set_*``, ``delete_*`` and ``store_*``
methods and never see SQL or the engine.
"""

from __future__ import annotations

from .access_numbers import AccessNumber, AccessNumberStore
from .attendant import AttendantStore
from .billing import BillingStore
from .accounts import Account, AccountStore, AlreadyExists, Customer, NotFound
from .database import Database
from .engines import (IntegrityError, SchemaTooNew, StoreError, StoreUnavailable,
                      create_engine)
from .mailbox import Folder, Mailbox, MailboxFull, MailboxStore, MessageInfo
from .outbound import OutboundStore
from .prompts import PromptStore
from .settings import SettingsStore
from .subscriptions import SubscriptionStore


class Store:
    """The domain stores over one database."""

    def __init__(self, db: Database, clock):
        self.db = db
        self.clock = clock
        self.accounts = AccountStore(db, clock)
        self.mailboxes = MailboxStore(db, clock)
        self.outbound = OutboundStore(db, clock)
        self.access_numbers = AccessNumberStore(db, clock)
        self.prompts = PromptStore(db, clock)
        self.settings = SettingsStore(db)
        self.billing = BillingStore(db, clock)
        self.subscriptions = SubscriptionStore(db, clock)
        self.attendant = AttendantStore(db, clock)
        self.schema_version = 0

    @property
    def engine_name(self) -> str:
        return self.db.engine_name

    async def notify(self, channel: str, payload: str) -> None:
        await self.db.engine.notify(channel, payload)

    def listen(self, channel: str, callback):
        return self.db.engine.listen(channel, callback)

    async def close(self) -> None:
        await self.db.close()


async def open_store(config, reactor) -> Store:
    """Connect the engine named in ``config`` and migrate its schema."""
    db = Database(create_engine(config, reactor))
    store = Store(db, reactor)
    store.schema_version = await db.open()
    return store


__all__ = [
    "AccessNumber", "Account", "AlreadyExists", "Customer", "Folder", "IntegrityError",
    "Mailbox", "MailboxFull", "MessageInfo", "NotFound", "SchemaTooNew", "Store", "StoreError",
    "StoreUnavailable", "open_store",
]
