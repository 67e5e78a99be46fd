"""Customers, accounts, aliases, greetings and login throttling."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from .engines import IntegrityError, StoreError


class NotFound(StoreError):
    """The named customer, account, alias or other object does not exist."""


class AlreadyExists(StoreError):
    """An object with that name or number exists already."""


@dataclasses.dataclass(frozen=True)
class Customer:
    id: int
    name: str
    created: int


#: Account columns a caller may set (besides the hashes, which have their own setters).
ACCOUNT_PREFERENCES = (
    "language", "timezone", "email", "attachment_format", "fax_format", "forward_mode",
    "forward_address", "greeting", "um_enabled", "associated_number", "mwi_contact",
)

_ACCOUNT_COLUMNS = ("id", "customer_id", "pin_hash", "password_hash", "digest_realm", "ha1_md5",
                    "ha1_sha256") + ACCOUNT_PREFERENCES + ("created",)


@dataclasses.dataclass(frozen=True)
class Account:
    id: str
    customer_id: int
    pin_hash: str | None
    password_hash: str | None
    digest_realm: str | None
    ha1_md5: str | None
    ha1_sha256: str | None
    language: str
    timezone: str
    email: str | None
    attachment_format: str
    fax_format: str
    forward_mode: str
    forward_address: str | None
    greeting: str
    um_enabled: bool
    associated_number: str | None
    mwi_contact: str | None
    created: int

    @classmethod
    def from_row(cls, row) -> "Account":
        values = dict(zip(_ACCOUNT_COLUMNS, row))
        values["um_enabled"] = bool(values["um_enabled"])
        return cls(**values)


_SELECT_ACCOUNT = "SELECT " + ", ".join("a." + c for c in _ACCOUNT_COLUMNS) + " FROM accounts a"


class AccountStore:
    def __init__(self, db, clock):
        self._db = db
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.seconds())

    # --- customers --------------------------------------------------------

    async def add_customer(self, name: str) -> Customer:
        now = self._now()

        async def add(txn):
            try:
                rows = await txn.execute(
                    "INSERT INTO customers (name, created) VALUES (?, ?) RETURNING id", (name, now))
            except IntegrityError:
                raise AlreadyExists(f"customer {name!r} already exists") from None
            return Customer(rows[0][0], name, now)
        return await self._db.run_interaction("add_customer", add)

    async def get_customer(self, name: str) -> Customer:
        rows = await self._db.execute(
            "get_customer", "SELECT id, name, created FROM customers WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no customer named {name!r}")
        return Customer(*rows[0])

    async def get_customer_by_id(self, customer_id: int) -> Customer:
        rows = await self._db.execute(
            "get_customer_by_id", "SELECT id, name, created FROM customers WHERE id = ?",
            (customer_id,))
        if not rows:
            raise NotFound(f"no customer with id {customer_id}")
        return Customer(*rows[0])

    async def get_customers(self) -> list[Customer]:
        rows = await self._db.execute(
            "get_customers", "SELECT id, name, created FROM customers ORDER BY name")
        return [Customer(*row) for row in rows]

    async def delete_customer(self, name: str) -> None:
        async def delete(txn):
            rows = await txn.execute("SELECT id FROM customers WHERE name = ?", (name,))
            if not rows:
                raise NotFound(f"no customer named {name!r}")
            used = await txn.execute("SELECT COUNT(*) FROM accounts WHERE customer_id = ?",
                                     (rows[0][0],))
            if used[0][0]:
                raise StoreError(f"customer {name!r} still has {used[0][0]} account(s); "
                                 "remove them first")
            await txn.execute("DELETE FROM customers WHERE id = ?", (rows[0][0],))
        await self._db.run_interaction("delete_customer", delete)

    # --- accounts ---------------------------------------------------------

    async def add_account(self, account_id: str, customer_id: int, *, quota_bytes: int,
                          mailbox_folders: Iterable[tuple[str, str | None]],
                          **fields: Any) -> Account:
        """Create an account and, when unified messaging is on, its mailbox
        with ``mailbox_folders`` (``(name, special_use)`` pairs), atomically."""
        unknown = set(fields) - set(_ACCOUNT_COLUMNS)
        if unknown:
            raise ValueError(f"unknown account fields: {sorted(unknown)}")
        now = self._now()
        columns = ["id", "customer_id", "created"] + list(fields)
        values = [account_id, customer_id, now] + list(fields.values())

        async def add(txn):
            if await txn.execute("SELECT 1 FROM aliases WHERE alias = ?", (account_id,)):
                raise AlreadyExists(f"{account_id} is already an alias")
            try:
                await txn.execute(
                    f"INSERT INTO accounts ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})", values)
            except IntegrityError as exc:
                if "email" in str(exc):
                    raise AlreadyExists(f"e-mail address {fields.get('email')} is already "
                                        "used by another account") from None
                raise AlreadyExists(f"account {account_id} already exists") from None
            if fields.get("um_enabled", 1):
                await _create_mailbox(txn, account_id, quota_bytes, now, mailbox_folders)
            rows = await txn.execute(_SELECT_ACCOUNT + " WHERE a.id = ?", (account_id,))
            return Account.from_row(rows[0])
        return await self._db.run_interaction("add_account", add)

    async def get_account(self, account_id: str) -> Account:
        rows = await self._db.execute("get_account", _SELECT_ACCOUNT + " WHERE a.id = ?",
                                      (account_id,))
        if not rows:
            raise NotFound(f"no account {account_id}")
        return Account.from_row(rows[0])

    async def get_account_by_email(self, email: str) -> Account:
        rows = await self._db.execute("get_account_by_email",
                                      _SELECT_ACCOUNT + " WHERE a.email = ?", (email.lower(),))
        if not rows:
            raise NotFound(f"no account with e-mail address {email}")
        return Account.from_row(rows[0])

    async def get_account_by_alias(self, alias: str) -> Account:
        """The account with this ID, or that this alias belongs to."""
        rows = await self._db.execute(
            "get_account_by_alias",
            _SELECT_ACCOUNT + " WHERE a.id = ? UNION ALL " + _SELECT_ACCOUNT +
            " JOIN aliases al ON al.account_id = a.id WHERE al.alias = ?", (alias, alias))
        if not rows:
            raise NotFound(f"no account or alias {alias}")
        return Account.from_row(rows[0])

    async def get_accounts(self, customer_id: int | None = None) -> list[Account]:
        if customer_id is None:
            rows = await self._db.execute("get_accounts", _SELECT_ACCOUNT + " ORDER BY a.id")
        else:
            rows = await self._db.execute(
                "get_accounts", _SELECT_ACCOUNT + " WHERE a.customer_id = ? ORDER BY a.id",
                (customer_id,))
        return [Account.from_row(row) for row in rows]

    async def set_account_fields(self, account_id: str, **fields: Any) -> Account:
        allowed = set(ACCOUNT_PREFERENCES) | {"pin_hash", "password_hash", "digest_realm",
                                             "ha1_md5", "ha1_sha256"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown account fields: {sorted(unknown)}")

        async def update(txn):
            if fields:
                assignments = ", ".join(f"{name} = ?" for name in fields)
                try:
                    await txn.execute(f"UPDATE accounts SET {assignments} WHERE id = ?",
                                      list(fields.values()) + [account_id])
                except IntegrityError:
                    raise AlreadyExists(f"e-mail address {fields.get('email')} is already "
                                        "used by another account") from None
            rows = await txn.execute(_SELECT_ACCOUNT + " WHERE a.id = ?", (account_id,))
            if not rows:
                raise NotFound(f"no account {account_id}")
            return Account.from_row(rows[0])
        return await self._db.run_interaction("set_account_fields", update)

    async def delete_account(self, account_id: str) -> None:
        async def delete(txn):
            if not await txn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)):
                raise NotFound(f"no account {account_id}")
            mailbox = await txn.execute("SELECT id FROM mailboxes WHERE account_id = ?",
                                        (account_id,))
            if mailbox:
                await _delete_mailbox_contents(txn, mailbox[0][0])
            await txn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
        await self._db.run_interaction("delete_account", delete)

    # --- aliases ----------------------------------------------------------

    async def add_alias(self, alias: str, account_id: str) -> None:
        now = self._now()

        async def add(txn):
            if not await txn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)):
                raise NotFound(f"no account {account_id}")
            if await txn.execute("SELECT 1 FROM accounts WHERE id = ?", (alias,)):
                raise AlreadyExists(f"{alias} is already an account ID")
            try:
                await txn.execute("INSERT INTO aliases (alias, account_id, created) VALUES (?, ?, ?)",
                                  (alias, account_id, now))
            except IntegrityError:
                raise AlreadyExists(f"alias {alias} already exists") from None
        await self._db.run_interaction("add_alias", add)

    async def get_aliases(self, account_id: str | None = None) -> list[tuple[str, str, int]]:
        """``(alias, account_id, created)`` rows."""
        if account_id is None:
            rows = await self._db.execute(
                "get_aliases", "SELECT alias, account_id, created FROM aliases ORDER BY alias")
        else:
            rows = await self._db.execute(
                "get_aliases", "SELECT alias, account_id, created FROM aliases "
                "WHERE account_id = ? ORDER BY alias", (account_id,))
        return [tuple(row) for row in rows]

    async def delete_alias(self, alias: str) -> None:
        async def delete(txn):
            if not await txn.execute("DELETE FROM aliases WHERE alias = ? RETURNING alias", (alias,)):
                raise NotFound(f"no alias {alias}")
        await self._db.run_interaction("delete_alias", delete)

    # --- greetings --------------------------------------------------------

    async def store_greeting(self, account_id: str, kind: str, audio: bytes) -> None:
        now = self._now()

        async def store(txn):
            await txn.execute(
                "INSERT INTO greetings (account_id, kind, audio, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account_id, kind) DO UPDATE SET audio = excluded.audio, "
                "updated = excluded.updated", (account_id, kind, audio, now))
        await self._db.run_interaction("store_greeting", store)

    async def get_greeting(self, account_id: str, kind: str) -> bytes | None:
        rows = await self._db.execute(
            "get_greeting", "SELECT audio FROM greetings WHERE account_id = ? AND kind = ?",
            (account_id, kind))
        return rows[0][0] if rows else None

    async def delete_greeting(self, account_id: str, kind: str) -> None:
        await self._db.execute("delete_greeting",
                               "DELETE FROM greetings WHERE account_id = ? AND kind = ?",
                               (account_id, kind))

    # --- login throttling -------------------------------------------------

    async def add_auth_failure(self, subject: str, window: int, limit: int,
                               lock_for: int) -> tuple[int, int]:
        """Count a failed login for ``subject`` (an account or an address).
        Failures older than ``window`` seconds start a new count; reaching
        ``limit`` locks the subject for ``lock_for`` seconds.  Returns
        ``(failures, locked_until)``."""
        now = self._now()

        async def add(txn):
            rows = await txn.execute(
                "SELECT failures, first_failure, locked_until FROM auth_failures WHERE subject = ?",
                (subject,))
            if not rows or rows[0][1] < now - window:
                failures, first = 1, now
            else:
                failures, first = rows[0][0] + 1, rows[0][1]
            locked_until = rows[0][2] if rows else 0
            if failures >= limit:
                locked_until, failures, first = now + lock_for, 0, now
            await txn.execute(
                "INSERT INTO auth_failures (subject, failures, first_failure, locked_until) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (subject) DO UPDATE SET "
                "failures = excluded.failures, first_failure = excluded.first_failure, "
                "locked_until = excluded.locked_until", (subject, failures, first, locked_until))
            return failures, locked_until
        return await self._db.run_interaction("add_auth_failure", add)

    async def get_locked_until(self, subject: str) -> int:
        rows = await self._db.execute(
            "get_locked_until", "SELECT locked_until FROM auth_failures WHERE subject = ?",
            (subject,))
        return rows[0][0] if rows else 0

    async def delete_auth_failures(self, subject: str) -> None:
        await self._db.execute("delete_auth_failures",
                               "DELETE FROM auth_failures WHERE subject = ?", (subject,))


async def _create_mailbox(txn, account_id, quota_bytes, now, folders) -> int:
    rows = await txn.execute(
        "INSERT INTO mailboxes (account_id, quota_bytes, created) VALUES (?, ?, ?) RETURNING id",
        (account_id, quota_bytes, now))
    mailbox_id = rows[0][0]
    for name, special_use in folders:
        await insert_folder(txn, mailbox_id, name, special_use)
    return mailbox_id


async def insert_folder(txn, mailbox_id: int, name: str, special_use: str | None) -> tuple:
    """Insert a folder; its UIDVALIDITY is its never-reused row id, so a folder
    deleted and created again under the same name gets a new one."""
    rows = await txn.execute(
        "INSERT INTO folders (mailbox_id, name, special_use) VALUES (?, ?, ?) RETURNING id",
        (mailbox_id, name, special_use))
    folder_id = rows[0][0]
    await txn.execute("UPDATE folders SET uidvalidity = id WHERE id = ?", (folder_id,))
    return folder_id


async def delete_folder_messages(txn, folder_id: int) -> int:
    """Delete every message of a folder, releasing bodies and quota; returns bytes freed."""
    rows = await txn.execute(
        "SELECT body_id, size FROM messages WHERE folder_id = ?", (folder_id,))
    await txn.execute("DELETE FROM messages WHERE folder_id = ?", (folder_id,))
    await release_bodies(txn, [row[0] for row in rows])
    return sum(row[1] for row in rows)


async def release_bodies(txn, body_ids) -> None:
    """Drop one reference from each body; delete bodies nobody refers to."""
    for body_id in body_ids:
        await txn.execute("UPDATE message_bodies SET refs = refs - 1 WHERE id = ?", (body_id,))
    if body_ids:
        marks = ", ".join("?" for _ in body_ids)
        await txn.execute(f"DELETE FROM message_bodies WHERE refs <= 0 AND id IN ({marks})",
                          list(body_ids))


async def _delete_mailbox_contents(txn, mailbox_id: int) -> None:
    for (folder_id,) in await txn.execute("SELECT id FROM folders WHERE mailbox_id = ?",
                                          (mailbox_id,)):
        await delete_folder_messages(txn, folder_id)
