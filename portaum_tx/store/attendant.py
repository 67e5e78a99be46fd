"""Auto-attendant menus and prompts, the dial-by-name directory, call queues.

Queue state lives here so that every node sees one queue and one order: callers are rows
ordered by their id, and the number of outgoing calls a queue holds (``connected``) only
changes through guarded UPDATEs on the queue's own row, which PostgreSQL serialises across
nodes, so a queue can never hold more than its maximum. A caller's row carries a heartbeat;
rows whose node stopped refreshing them are purged, and the slots they held given back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Optional

from .accounts import AlreadyExists, NotFound
from .engines import IntegrityError

WAITING, OFFERED, CONNECTED = "waiting", "offered", "connected"


@dataclasses.dataclass(frozen=True)
class StoredMenu:
    name: str
    period: str
    events: str  # the event table as JSON text
    updated: int


@dataclasses.dataclass(frozen=True)
class DirectoryEntry:
    id: int
    account_id: str
    extension: str
    first_name: str
    last_name: str
    excluded: bool
    has_name_audio: bool
    updated: int


@dataclasses.dataclass(frozen=True)
class CallQueue:
    id: int
    account_id: str
    name: str
    destination: str
    max_connected: int
    average_seconds: int
    connected: int
    updated: int


@dataclasses.dataclass(frozen=True)
class QueueCaller:
    id: int
    queue_id: int
    call_id: str
    node: str
    state: str
    entered: int
    heartbeat: int


@dataclasses.dataclass(frozen=True)
class QueueStanding:
    """Where a caller stands: ``ahead`` callers wait before them."""
    state: str
    ahead: int
    waiting: int
    connected: int
    max_connected: int
    average_seconds: int

    @property
    def position(self) -> int:
        return self.ahead + 1


_ENTRY_COLUMNS = ("id, account_id, extension, first_name, last_name, excluded, "
                  "name_audio IS NOT NULL, updated")
_QUEUE_COLUMNS = "id, account_id, name, destination, max_connected, average_seconds, connected, updated"
_CALLER_COLUMNS = "id, queue_id, call_id, node, state, entered, heartbeat"
QUEUE_FIELDS = ("destination", "max_connected", "average_seconds")
ENTRY_FIELDS = ("first_name", "last_name", "excluded")


def _entry(row) -> DirectoryEntry:
    return DirectoryEntry(row[0], row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]), row[7])


class AttendantStore:
    def __init__(self, db, clock):
        self._db = db
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.seconds())

    # --- menus ------------------------------------------------------------

    async def get_menus(self, account_id: str) -> list[StoredMenu]:
        rows = await self._db.execute(
            "get_menus", "SELECT name, period, events, updated FROM aa_menus WHERE account_id = ? "
            "ORDER BY CASE WHEN name = 'ROOT' THEN 0 ELSE 1 END, name", (account_id,))
        return [StoredMenu(*row) for row in rows]

    async def get_menu(self, account_id: str, name: str) -> StoredMenu:
        rows = await self._db.execute(
            "get_menu", "SELECT name, period, events, updated FROM aa_menus "
            "WHERE account_id = ? AND name = ?", (account_id, name))
        if not rows:
            raise NotFound(f"account {account_id} has no menu {name!r}")
        return StoredMenu(*rows[0])

    async def store_menus(self, account_id: str, menus: Iterable[tuple[str, str, str]],
                          renamed: Optional[tuple[str, str]] = None) -> None:
        """Replace the account's whole menu set with ``(name, period, events_json)`` rows in
        one transaction; menus left out are removed with their prompts. ``renamed``
        ``(old, new)`` carries the old menu's prompts over to the new name."""
        menus = list(menus)
        now = self._now()

        async def store(txn):
            if not await txn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)):
                raise NotFound(f"no account {account_id}")
            if renamed is not None:
                old, new = renamed
                await txn.execute("DELETE FROM aa_prompts WHERE account_id = ? AND scope = ?",
                                  (account_id, f"menu:{new}"))
                await txn.execute("UPDATE aa_prompts SET scope = ? WHERE account_id = ? AND scope = ?",
                                  (f"menu:{new}", account_id, f"menu:{old}"))
                await txn.execute("UPDATE aa_menus SET name = ? WHERE account_id = ? AND name = ?",
                                  (new, account_id, old))
            existing = {row[0] for row in await txn.execute(
                "SELECT name FROM aa_menus WHERE account_id = ?", (account_id,))}
            keep = {name for name, _, _ in menus}
            for name in existing - keep:
                await txn.execute("DELETE FROM aa_menus WHERE account_id = ? AND name = ?",
                                  (account_id, name))
                await txn.execute("DELETE FROM aa_prompts WHERE account_id = ? AND scope = ?",
                                  (account_id, f"menu:{name}"))
            for name, period, events in menus:
                if name in existing:
                    await txn.execute("UPDATE aa_menus SET period = ?, events = ?, updated = ? "
                                      "WHERE account_id = ? AND name = ?",
                                      (period, events, now, account_id, name))
                else:
                    await txn.execute("INSERT INTO aa_menus (account_id, name, period, events, updated) "
                                      "VALUES (?, ?, ?, ?, ?)", (account_id, name, period, events, now))
        await self._db.run_interaction("store_menus", store)

    # --- recorded prompts -------------------------------------------------

    async def store_attendant_prompt(self, account_id: str, scope: str, kind: str, audio: bytes) -> None:
        """A recording (.au bytes) for ``scope`` ("menu:<name>" or "queue:<name>") and
        ``kind`` (intro, menu, timeout, unavailable, before-<event>, music)."""
        now = self._now()

        async def store(txn):
            try:
                await txn.execute(
                    "INSERT INTO aa_prompts (account_id, scope, kind, audio, updated) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, scope, kind) DO UPDATE "
                    "SET audio = excluded.audio, updated = excluded.updated",
                    (account_id, scope, kind, audio, now))
            except IntegrityError:
                raise NotFound(f"no account {account_id}") from None
        await self._db.run_interaction("store_attendant_prompt", store)

    async def get_attendant_prompt(self, account_id: str, scope: str, kind: str) -> Optional[bytes]:
        rows = await self._db.execute(
            "get_attendant_prompt", "SELECT audio FROM aa_prompts WHERE account_id = ? AND scope = ? "
            "AND kind = ?", (account_id, scope, kind))
        return bytes(rows[0][0]) if rows else None

    async def get_attendant_prompts(self, account_id: str, scope: Optional[str] = None) -> list[tuple[str, str, int, int]]:
        """``(scope, kind, size, updated)`` of the account's recordings."""
        sql = "SELECT scope, kind, LENGTH(audio), updated FROM aa_prompts WHERE account_id = ?"
        args: tuple = (account_id,)
        if scope is not None:
            sql += " AND scope = ?"
            args += (scope,)
        rows = await self._db.execute("get_attendant_prompts", sql + " ORDER BY scope, kind", args)
        return [tuple(row) for row in rows]

    async def delete_attendant_prompt(self, account_id: str, scope: str, kind: str) -> bool:
        rows = await self._db.execute(
            "delete_attendant_prompt", "DELETE FROM aa_prompts WHERE account_id = ? AND scope = ? "
            "AND kind = ? RETURNING kind", (account_id, scope, kind))
        return bool(rows)

    # --- directory ----------------------------------------------------------

    async def get_hide_extensions(self, account_id: str) -> bool:
        rows = await self._db.execute(
            "get_hide_extensions", "SELECT hide_extensions FROM aa_settings WHERE account_id = ?",
            (account_id,))
        return bool(rows[0][0]) if rows else False

    async def set_hide_extensions(self, account_id: str, hide: bool) -> None:
        async def store(txn):
            try:
                await txn.execute(
                    "INSERT INTO aa_settings (account_id, hide_extensions) VALUES (?, ?) "
                    "ON CONFLICT (account_id) DO UPDATE SET hide_extensions = excluded.hide_extensions",
                    (account_id, int(bool(hide))))
            except IntegrityError:
                raise NotFound(f"no account {account_id}") from None
        await self._db.run_interaction("set_hide_extensions", store)

    async def add_directory_entry(self, account_id: str, extension: str, first_name: str,
                                  last_name: str, excluded: bool = False) -> DirectoryEntry:
        now = self._now()

        async def add(txn):
            if not await txn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)):
                raise NotFound(f"no account {account_id}")
            try:
                rows = await txn.execute(
                    "INSERT INTO directory_entries (account_id, extension, first_name, last_name, "
                    "excluded, updated) VALUES (?, ?, ?, ?, ?, ?) RETURNING " + _ENTRY_COLUMNS,
                    (account_id, extension, first_name, last_name, int(excluded), now))
            except IntegrityError:
                raise AlreadyExists(f"the directory of {account_id} already has extension "
                                    f"{extension}") from None
            return _entry(rows[0])
        return await self._db.run_interaction("add_directory_entry", add)

    async def get_directory_entries(self, account_id: str, include_excluded: bool = True) -> list[DirectoryEntry]:
        sql = f"SELECT {_ENTRY_COLUMNS} FROM directory_entries WHERE account_id = ?"
        if not include_excluded:
            sql += " AND excluded = 0"
        rows = await self._db.execute("get_directory_entries",
                                      sql + " ORDER BY last_name, first_name, extension", (account_id,))
        return [_entry(row) for row in rows]

    async def get_directory_entry(self, account_id: str, extension: str) -> DirectoryEntry:
        rows = await self._db.execute(
            "get_directory_entry", f"SELECT {_ENTRY_COLUMNS} FROM directory_entries "
            "WHERE account_id = ? AND extension = ?", (account_id, extension))
        if not rows:
            raise NotFound(f"the directory of {account_id} has no extension {extension}")
        return _entry(rows[0])

    async def set_directory_entry(self, account_id: str, extension: str, **fields: Any) -> DirectoryEntry:
        unknown = set(fields) - set(ENTRY_FIELDS)
        if unknown:
            raise ValueError(f"unknown directory entry fields: {sorted(unknown)}")
        if "excluded" in fields:
            fields["excluded"] = int(bool(fields["excluded"]))
        fields["updated"] = self._now()
        assignments = ", ".join(f"{name} = ?" for name in fields)
        rows = await self._db.execute(
            "set_directory_entry", f"UPDATE directory_entries SET {assignments} WHERE account_id = ? "
            f"AND extension = ? RETURNING {_ENTRY_COLUMNS}",
            list(fields.values()) + [account_id, extension])
        if not rows:
            raise NotFound(f"the directory of {account_id} has no extension {extension}")
        return _entry(rows[0])

    async def store_directory_name(self, account_id: str, extension: str, audio: Optional[bytes]) -> None:
        """The recorded name (.au bytes) of an entry; None removes it."""
        rows = await self._db.execute(
            "store_directory_name", "UPDATE directory_entries SET name_audio = ?, updated = ? "
            "WHERE account_id = ? AND extension = ? RETURNING id",
            (audio, self._now(), account_id, extension))
        if not rows:
            raise NotFound(f"the directory of {account_id} has no extension {extension}")

    async def get_directory_name(self, account_id: str, extension: str) -> Optional[bytes]:
        rows = await self._db.execute(
            "get_directory_name", "SELECT name_audio FROM directory_entries WHERE account_id = ? "
            "AND extension = ?", (account_id, extension))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    async def delete_directory_entry(self, account_id: str, extension: str) -> None:
        rows = await self._db.execute(
            "delete_directory_entry", "DELETE FROM directory_entries WHERE account_id = ? "
            "AND extension = ? RETURNING id", (account_id, extension))
        if not rows:
            raise NotFound(f"the directory of {account_id} has no extension {extension}")

    # --- queues -------------------------------------------------------------

    async def add_queue(self, account_id: str, name: str, destination: str, max_connected: int,
                        average_seconds: int) -> CallQueue:
        now = self._now()

        async def add(txn):
            if not await txn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)):
                raise NotFound(f"no account {account_id}")
            try:
                rows = await txn.execute(
                    "INSERT INTO call_queues (account_id, name, destination, max_connected, "
                    "average_seconds, updated) VALUES (?, ?, ?, ?, ?, ?) RETURNING " + _QUEUE_COLUMNS,
                    (account_id, name, destination, max_connected, average_seconds, now))
            except IntegrityError:
                raise AlreadyExists(f"account {account_id} already has a queue {name!r}") from None
            return CallQueue(*rows[0])
        return await self._db.run_interaction("add_queue", add)

    async def get_queues(self, account_id: str) -> list[CallQueue]:
        rows = await self._db.execute(
            "get_queues", f"SELECT {_QUEUE_COLUMNS} FROM call_queues WHERE account_id = ? ORDER BY name",
            (account_id,))
        return [CallQueue(*row) for row in rows]

    async def get_queue(self, account_id: str, name: str) -> CallQueue:
        rows = await self._db.execute(
            "get_queue", f"SELECT {_QUEUE_COLUMNS} FROM call_queues WHERE account_id = ? AND name = ?",
            (account_id, name))
        if not rows:
            raise NotFound(f"account {account_id} has no queue {name!r}")
        return CallQueue(*rows[0])

    async def set_queue(self, account_id: str, name: str, **fields: Any) -> CallQueue:
        unknown = set(fields) - set(QUEUE_FIELDS)
        if unknown:
            raise ValueError(f"unknown queue fields: {sorted(unknown)}")
        fields["updated"] = self._now()
        assignments = ", ".join(f"{field} = ?" for field in fields)
        rows = await self._db.execute(
            "set_queue", f"UPDATE call_queues SET {assignments} WHERE account_id = ? AND name = ? "
            f"RETURNING {_QUEUE_COLUMNS}", list(fields.values()) + [account_id, name])
        if not rows:
            raise NotFound(f"account {account_id} has no queue {name!r}")
        return CallQueue(*rows[0])

    async def delete_queue(self, account_id: str, name: str) -> None:
        async def delete(txn):
            rows = await txn.execute("DELETE FROM call_queues WHERE account_id = ? AND name = ? "
                                     "RETURNING id", (account_id, name))
            if not rows:
                raise NotFound(f"account {account_id} has no queue {name!r}")
            await txn.execute("DELETE FROM queue_callers WHERE queue_id = ?", (rows[0][0],))
            await txn.execute("DELETE FROM aa_prompts WHERE account_id = ? AND scope = ?",
                              (account_id, f"queue:{name}"))
        await self._db.run_interaction("delete_queue", delete)

    # --- queue state ----------------------------------------------------------

    async def add_queue_caller(self, queue_id: int, call_id: str, node: str = "") -> QueueCaller:
        """Put a caller at the end of the queue."""
        now = self._now()

        async def add(txn):
            if not await txn.execute("SELECT 1 FROM call_queues WHERE id = ?", (queue_id,)):
                raise NotFound(f"no queue with id {queue_id}")
            rows = await txn.execute(
                "INSERT INTO queue_callers (queue_id, call_id, node, state, entered, heartbeat) "
                f"VALUES (?, ?, ?, ?, ?, ?) RETURNING {_CALLER_COLUMNS}",
                (queue_id, call_id, node, WAITING, now, now))
            return QueueCaller(*rows[0])
        return await self._db.run_interaction("add_queue_caller", add)

    async def get_queue_callers(self, queue_id: int) -> list[QueueCaller]:
        rows = await self._db.execute(
            "get_queue_callers", f"SELECT {_CALLER_COLUMNS} FROM queue_callers WHERE queue_id = ? "
            "ORDER BY id", (queue_id,))
        return [QueueCaller(*row) for row in rows]

    async def get_queue_standing(self, caller_id: int) -> QueueStanding:
        async def read(txn):
            rows = await txn.execute(
                "SELECT c.state, q.id, q.connected, q.max_connected, q.average_seconds "
                "FROM queue_callers c JOIN call_queues q ON q.id = c.queue_id WHERE c.id = ?",
                (caller_id,))
            if not rows:
                raise NotFound(f"caller {caller_id} is not in a queue")
            state, queue_id, connected, max_connected, average = rows[0]
            counts = await txn.execute(
                "SELECT COUNT(*), SUM(CASE WHEN id < ? THEN 1 ELSE 0 END) FROM queue_callers "
                "WHERE queue_id = ? AND state = ?", (caller_id, queue_id, WAITING))
            waiting, ahead = counts[0][0], counts[0][1] or 0
            return QueueStanding(state, int(ahead), int(waiting), connected, max_connected, average)
        return await self._db.run_interaction("get_queue_standing", read)

    async def claim_queue_slot(self, caller_id: int) -> bool:
        """Take one of the queue's outgoing-call slots for this caller when it is the first
        one waiting and the queue holds fewer calls than its maximum; the caller's state
        becomes ``offered``. False when it is not this caller's turn. Either way the
        caller's heartbeat is refreshed (a waiting caller asks every few seconds)."""
        now = self._now()

        async def claim(txn):
            rows = await txn.execute("UPDATE queue_callers SET heartbeat = ? WHERE id = ? "
                                     "RETURNING queue_id, state", (now, caller_id))
            if not rows:
                raise NotFound(f"caller {caller_id} is not in a queue")
            queue_id, state = rows[0]
            if state != WAITING:
                return state in (OFFERED, CONNECTED)
            # The guarded increment locks the queue row: concurrent claims from any node
            # wait here, then see each other's changes.
            taken = await txn.execute(
                "UPDATE call_queues SET connected = connected + 1 WHERE id = ? "
                "AND connected < max_connected RETURNING connected", (queue_id,))
            if not taken:
                return False
            first = await txn.execute(
                "SELECT MIN(id) FROM queue_callers WHERE queue_id = ? AND state = ?",
                (queue_id, WAITING))
            if first[0][0] != caller_id:
                raise _NotYourTurn()
            await txn.execute("UPDATE queue_callers SET state = ?, heartbeat = ? WHERE id = ?",
                              (OFFERED, now, caller_id))
            return True
        try:
            return await self._db.run_interaction("claim_queue_slot", claim)
        except _NotYourTurn:
            await self.touch_queue_caller(caller_id)  # the refresh went with the rollback
            return False

    async def set_queue_caller_connected(self, caller_id: int) -> None:
        rows = await self._db.execute(
            "set_queue_caller_connected", "UPDATE queue_callers SET state = ?, heartbeat = ? "
            "WHERE id = ? AND state = ? RETURNING id", (CONNECTED, self._now(), caller_id, OFFERED))
        if not rows:
            raise NotFound(f"caller {caller_id} holds no queue slot")

    async def touch_queue_caller(self, caller_id: int) -> bool:
        """Refresh the caller's heartbeat; False when the row is gone (purged or the queue
        removed)."""
        rows = await self._db.execute(
            "touch_queue_caller", "UPDATE queue_callers SET heartbeat = ? WHERE id = ? RETURNING id",
            (self._now(), caller_id))
        return bool(rows)

    async def delete_queue_caller(self, caller_id: int) -> None:
        """The caller leaves (hung up, or done); a slot it held is given back."""
        async def leave(txn):
            rows = await txn.execute("DELETE FROM queue_callers WHERE id = ? RETURNING queue_id, state",
                                     (caller_id,))
            if rows and rows[0][1] != WAITING:
                await txn.execute("UPDATE call_queues SET connected = connected - 1 "
                                  "WHERE id = ? AND connected > 0", (rows[0][0],))
        await self._db.run_interaction("delete_queue_caller", leave)

    async def delete_stale_queue_callers(self, queue_id: int, max_age: int) -> int:
        """Remove callers whose heartbeat is older than ``max_age`` seconds (their node went
        away) and give back the slots they held; returns how many went."""
        cutoff = self._now() - max_age

        async def purge(txn):
            rows = await txn.execute(
                "DELETE FROM queue_callers WHERE queue_id = ? AND heartbeat < ? RETURNING state",
                (queue_id, cutoff))
            held = sum(1 for (state,) in rows if state != WAITING)
            if held:
                await txn.execute("UPDATE call_queues SET connected = CASE WHEN connected > ? "
                                  "THEN connected - ? ELSE 0 END WHERE id = ?", (held, held, queue_id))
            return len(rows)
        return await self._db.run_interaction("delete_stale_queue_callers", purge)


class _NotYourTurn(Exception):
    """Rolls back a claim whose slot increment must not stand."""
