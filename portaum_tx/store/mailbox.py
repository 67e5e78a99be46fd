"""Mailboxes, folders and messages.

Every change that touches quota or UIDs happens in one transaction: the
mailbox row's ``used_bytes`` is updated with a guarded UPDATE (so concurrent
deliveries can never overshoot the quota) and a folder's ``uidnext`` with an
increment whose row lock orders concurrent deliveries, so UIDs are strictly
increasing and never reused.  Message bodies are shared by copies and freed
when the last copy is expunged.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Sequence

from .accounts import (AlreadyExists, NotFound, delete_folder_messages, insert_folder,
                       release_bodies)
from .engines import IntegrityError, StoreError

# System flags as bits; keywords are kept as a space-separated string.
SEEN, ANSWERED, FLAGGED, DELETED, DRAFT = 1, 2, 4, 8, 16


class MailboxFull(StoreError):
    """Storing the message would exceed the mailbox quota."""

    def __init__(self, account_id: str, needed: int, used: int, quota: int):
        self.account_id, self.needed, self.used, self.quota = account_id, needed, used, quota
        super().__init__(f"mailbox {account_id} is full: {used} of {quota} bytes used, "
                         f"{needed} more needed")


@dataclasses.dataclass(frozen=True)
class Mailbox:
    id: int
    account_id: str
    quota_bytes: int
    used_bytes: int


@dataclasses.dataclass(frozen=True)
class Folder:
    id: int
    mailbox_id: int
    name: str
    special_use: str | None
    subscribed: bool
    uidvalidity: int
    uidnext: int


@dataclasses.dataclass(frozen=True)
class MessageInfo:
    """Everything about a stored message except its bytes."""
    uid: int
    size: int
    internal_date: int
    flags: int
    keywords: tuple[str, ...]
    kind: str
    urgent: bool


_FOLDER_COLUMNS = "id, mailbox_id, name, special_use, subscribed, uidvalidity, uidnext"
_INFO_COLUMNS = "uid, size, internal_date, flags, keywords, kind, urgent"


def _folder(row) -> Folder:
    return Folder(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6])


def _info(row) -> MessageInfo:
    return MessageInfo(row[0], row[1], row[2], row[3], tuple(row[4].split()), row[5], bool(row[6]))


def _marks(values: Sequence) -> str:
    return ", ".join("?" for _ in values)


def _chunks(values: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class MailboxStore:
    def __init__(self, db, clock):
        self._db = db
        self._clock = clock

    # --- mailboxes and folders ---------------------------------------------

    async def get_mailbox(self, account_id: str) -> Mailbox:
        rows = await self._db.execute(
            "get_mailbox", "SELECT id, account_id, quota_bytes, used_bytes FROM mailboxes "
            "WHERE account_id = ?", (account_id,))
        if not rows:
            raise NotFound(f"account {account_id} has no mailbox")
        return Mailbox(*rows[0])

    async def set_quota(self, account_id: str, quota_bytes: int) -> None:
        async def update(txn):
            if not await txn.execute("UPDATE mailboxes SET quota_bytes = ? WHERE account_id = ? "
                                     "RETURNING id", (quota_bytes, account_id)):
                raise NotFound(f"account {account_id} has no mailbox")
        await self._db.run_interaction("set_quota", update)

    async def get_folders(self, mailbox_id: int) -> list[Folder]:
        rows = await self._db.execute(
            "get_folders", f"SELECT {_FOLDER_COLUMNS} FROM folders WHERE mailbox_id = ? "
            "ORDER BY name", (mailbox_id,))
        return [_folder(row) for row in rows]

    async def get_folder(self, mailbox_id: int, name: str) -> Folder:
        rows = await self._db.execute(
            "get_folder", f"SELECT {_FOLDER_COLUMNS} FROM folders WHERE mailbox_id = ? AND name = ?",
            (mailbox_id, name))
        if not rows:
            raise NotFound(f"no folder {name!r}")
        return _folder(rows[0])

    async def add_folder(self, mailbox_id: int, name: str,
                         special_use: str | None = None) -> Folder:
        async def add(txn):
            try:
                folder_id = await insert_folder(txn, mailbox_id, name, special_use)
            except IntegrityError:
                raise AlreadyExists(f"folder {name!r} already exists") from None
            rows = await txn.execute(f"SELECT {_FOLDER_COLUMNS} FROM folders WHERE id = ?",
                                     (folder_id,))
            return _folder(rows[0])
        return await self._db.run_interaction("add_folder", add)

    async def delete_folder(self, folder_id: int) -> None:
        async def delete(txn):
            rows = await txn.execute("SELECT mailbox_id FROM folders WHERE id = ?", (folder_id,))
            if not rows:
                raise NotFound(f"no folder with id {folder_id}")
            freed = await delete_folder_messages(txn, folder_id)
            await txn.execute("UPDATE mailboxes SET used_bytes = used_bytes - ? WHERE id = ?",
                              (freed, rows[0][0]))
            await txn.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
        await self._db.run_interaction("delete_folder", delete)

    async def set_folder_name(self, folder_id: int, new_name: str) -> None:
        async def rename(txn):
            try:
                if not await txn.execute("UPDATE folders SET name = ? WHERE id = ? RETURNING id",
                                         (new_name, folder_id)):
                    raise NotFound(f"no folder with id {folder_id}")
            except IntegrityError:
                raise AlreadyExists(f"folder {new_name!r} already exists") from None
        await self._db.run_interaction("set_folder_name", rename)

    async def set_subscribed(self, folder_id: int, subscribed: bool) -> None:
        await self._db.execute("set_subscribed", "UPDATE folders SET subscribed = ? WHERE id = ?",
                               (int(subscribed), folder_id))

    # --- messages ----------------------------------------------------------

    async def store_message(self, account_id: str, folder_name: str, data: bytes, *,
                            internal_date: int | None = None, flags: int = 0,
                            keywords: Iterable[str] = (), kind: str = "email",
                            urgent: bool = False, enforce_quota: bool = True) -> tuple[int, int]:
        """Store ``data`` in a folder; returns ``(uidvalidity, uid)`` once committed.

        Raises :class:`MailboxFull` when the quota does not allow it."""
        size = len(data)
        when = int(self._clock.seconds()) if internal_date is None else int(internal_date)
        keyword_text = " ".join(dict.fromkeys(keywords))

        async def store(txn):
            mailbox = await txn.execute(
                "SELECT m.id, f.id FROM mailboxes m JOIN folders f ON f.mailbox_id = m.id "
                "WHERE m.account_id = ? AND f.name = ?", (account_id, folder_name))
            if not mailbox:
                raise NotFound(f"account {account_id} has no folder {folder_name!r}")
            mailbox_id, folder_id = mailbox[0]
            await _charge_quota(txn, account_id, mailbox_id, size, enforce_quota)
            uidvalidity, uid = await _next_uid(txn, folder_id)
            body = await txn.execute(
                "INSERT INTO message_bodies (data, size) VALUES (?, ?) RETURNING id", (data, size))
            await txn.execute(
                "INSERT INTO messages (folder_id, uid, body_id, size, internal_date, flags, "
                "keywords, kind, urgent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (folder_id, uid, body[0][0], size, when, flags, keyword_text, kind, int(urgent)))
            return uidvalidity, uid
        return await self._db.run_interaction("store_message", store)

    async def get_message_infos(self, folder_id: int, since_uid: int = 0) -> list[MessageInfo]:
        """All messages of a folder with UID above ``since_uid``, in UID order."""
        rows = await self._db.execute(
            "get_message_infos", f"SELECT {_INFO_COLUMNS} FROM messages WHERE folder_id = ? "
            "AND uid > ? ORDER BY uid", (folder_id, since_uid))
        return [_info(row) for row in rows]

    async def get_message_data(self, folder_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        """The raw bytes of the given messages (missing UIDs are left out)."""
        result: dict[int, bytes] = {}
        for chunk in _chunks(list(uids)):
            rows = await self._db.execute(
                "get_message_data", "SELECT m.uid, b.data FROM messages m JOIN message_bodies b "
                f"ON b.id = m.body_id WHERE m.folder_id = ? AND m.uid IN ({_marks(chunk)})",
                [folder_id] + list(chunk))
            result.update((uid, bytes(data)) for uid, data in rows)
        return result

    async def set_flags(self, folder_id: int, uids: Sequence[int], flags: int,
                        keywords: Iterable[str] = (), mode: str = "add") -> list[MessageInfo]:
        """Add, remove or replace flags atomically; returns the changed messages' state.

        System flags change with one bitwise UPDATE so that concurrent sessions
        never lose each other's changes; keywords are read and written under
        the rows' locks."""
        if mode not in ("add", "remove", "replace"):
            raise ValueError(f"bad flag mode {mode!r}")
        keyword_set = list(dict.fromkeys(keywords))

        async def update(txn):
            for chunk in _chunks(list(uids)):
                where = f"folder_id = ? AND uid IN ({_marks(chunk)})"
                args = [folder_id] + list(chunk)
                if mode == "add":
                    await txn.execute(f"UPDATE messages SET flags = flags | ? WHERE {where}",
                                      [flags] + args)
                elif mode == "remove":
                    await txn.execute(f"UPDATE messages SET flags = flags & ? WHERE {where}",
                                      [~flags & 0x7FFFFFFF] + args)
                else:
                    await txn.execute(f"UPDATE messages SET flags = ? WHERE {where}",
                                      [flags] + args)
                if keyword_set or mode == "replace":
                    rows = await txn.execute(f"SELECT uid, keywords FROM messages WHERE {where}",
                                             args)
                    for uid, current in rows:
                        words = current.split()
                        if mode == "add":
                            words += [k for k in keyword_set if k not in words]
                        elif mode == "remove":
                            words = [k for k in words if k not in keyword_set]
                        else:
                            words = keyword_set
                        await txn.execute(
                            "UPDATE messages SET keywords = ? WHERE folder_id = ? AND uid = ?",
                            (" ".join(words), folder_id, uid))
            result = []
            for chunk in _chunks(list(uids)):
                rows = await txn.execute(
                    f"SELECT {_INFO_COLUMNS} FROM messages WHERE folder_id = ? "
                    f"AND uid IN ({_marks(chunk)}) ORDER BY uid", [folder_id] + list(chunk))
                result.extend(_info(row) for row in rows)
            return result
        return await self._db.run_interaction("set_flags", update)

    async def delete_messages(self, folder_id: int, uids: Sequence[int]) -> list[int]:
        """Expunge: remove messages for good; returns the UIDs that were removed."""
        async def delete(txn):
            return await _delete_messages(txn, folder_id, list(uids))
        return await self._db.run_interaction("delete_messages", delete)

    async def copy_messages(self, source_id: int, uids: Sequence[int], target_id: int,
                            move: bool = False) -> list[tuple[int, int]]:
        """Copy (or move) messages to another folder of the same mailbox.
        Returns ``(source_uid, target_uid)`` pairs; the quota is charged for
        copies, not for moves."""
        async def copy(txn):
            folders = await txn.execute(
                "SELECT f.id, f.mailbox_id, m.account_id FROM folders f JOIN mailboxes m "
                "ON m.id = f.mailbox_id WHERE f.id IN (?, ?)", (source_id, target_id))
            if len({row[1] for row in folders}) != 1 or len(folders) != (1 if source_id == target_id else 2):
                raise NotFound("source and target folders must exist in the same mailbox")
            mailbox_id, account_id = folders[0][1], folders[0][2]
            rows = []
            for chunk in _chunks(sorted(set(uids))):
                rows += await txn.execute(
                    "SELECT uid, body_id, size, internal_date, flags, keywords, kind, urgent "
                    f"FROM messages WHERE folder_id = ? AND uid IN ({_marks(chunk)}) ORDER BY uid",
                    [source_id] + list(chunk))
            if not move:
                await _charge_quota(txn, account_id, mailbox_id, sum(r[2] for r in rows), True)
            pairs = []
            for uid, body_id, size, internal_date, flags, keywords, kind, urgent in rows:
                _, new_uid = await _next_uid(txn, target_id)
                await txn.execute(
                    "INSERT INTO messages (folder_id, uid, body_id, size, internal_date, flags, "
                    "keywords, kind, urgent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (target_id, new_uid, body_id, size, internal_date, flags, keywords, kind, urgent))
                await txn.execute("UPDATE message_bodies SET refs = refs + 1 WHERE id = ?",
                                  (body_id,))
                pairs.append((uid, new_uid))
            if move:
                await _delete_messages(txn, source_id, [uid for uid, _ in pairs],
                                       release_quota=False)
            return pairs
        return await self._db.run_interaction("copy_messages", copy)

    async def claim_recent(self, folder_id: int) -> tuple[int, int]:
        """Claim the \\Recent messages of a folder for one session.

        Returns ``(low, high)``: messages with ``low < uid <= high`` are recent
        for the caller and for nobody else."""
        async def claim(txn):
            # RETURNING yields the new value only, so the old floor is read
            # first, under the row lock that the UPDATE then keeps.
            before = await txn.execute(
                "SELECT recent_floor FROM folders WHERE id = ?" + self._db.for_update,
                (folder_id,))
            if not before:
                raise NotFound(f"no folder with id {folder_id}")
            rows = await txn.execute(
                "UPDATE folders SET recent_floor = uidnext - 1 WHERE id = ? "
                "RETURNING recent_floor", (folder_id,))
            return before[0][0], rows[0][0]
        return await self._db.run_interaction("claim_recent", claim)

    async def get_folder_counts(self, folder_id: int) -> dict[str, int]:
        # One statement: STATUS is frequent and each statement is a round trip.
        rows = await self._db.execute(
            "get_folder_counts",
            "SELECT f.uidnext, f.uidvalidity, COUNT(m.id), "
            "COALESCE(SUM(CASE WHEN m.flags & 1 = 0 THEN 1 ELSE 0 END), 0), "
            "COALESCE(SUM(m.size), 0), "
            "COALESCE(SUM(CASE WHEN m.uid > f.recent_floor THEN 1 ELSE 0 END), 0) "
            "FROM folders f LEFT JOIN messages m ON m.folder_id = f.id WHERE f.id = ? "
            "GROUP BY f.id, f.uidnext, f.uidvalidity", (folder_id,))
        if not rows:
            raise NotFound(f"no folder with id {folder_id}")
        uidnext, uidvalidity, count, unseen, size, recent = rows[0]
        return {"messages": count, "unseen": unseen, "size": size, "uidnext": uidnext,
                "uidvalidity": uidvalidity, "recent": recent}

    async def get_message_counts(self, account_id: str) -> dict[str, dict[str, int]]:
        """Voice and fax counts for message-waiting indication.

        ``{"voice": {"new": n, "old": n, "urgent_new": n, "urgent_old": n}, "fax": {...}}``:
        new means not \\Seen; messages in Trash or marked \\Deleted do not count."""
        rows = await self._db.execute(
            "get_message_counts",
            "SELECT msg.kind, msg.flags & 1, msg.urgent, COUNT(*) FROM messages msg "
            "JOIN folders f ON f.id = msg.folder_id JOIN mailboxes m ON m.id = f.mailbox_id "
            "WHERE m.account_id = ? AND msg.kind IN ('voice', 'fax') AND msg.flags & 8 = 0 "
            "AND (f.special_use IS NULL OR f.special_use NOT IN ('\\Trash', '\\Sent')) "
            "GROUP BY msg.kind, msg.flags & 1, msg.urgent", (account_id,))
        counts = {kind: {"new": 0, "old": 0, "urgent_new": 0, "urgent_old": 0}
                  for kind in ("voice", "fax")}
        for kind, seen, urgent, count in rows:
            state = "old" if seen else "new"
            counts[kind][state] += count
            if urgent:
                counts[kind]["urgent_" + state] += count
        return counts


async def _charge_quota(txn, account_id, mailbox_id, size, enforce) -> None:
    if enforce:
        rows = await txn.execute(
            "UPDATE mailboxes SET used_bytes = used_bytes + ? WHERE id = ? "
            "AND used_bytes + ? <= quota_bytes RETURNING used_bytes", (size, mailbox_id, size))
        if not rows:
            state = await txn.execute("SELECT used_bytes, quota_bytes FROM mailboxes WHERE id = ?",
                                      (mailbox_id,))
            raise MailboxFull(account_id, size, state[0][0], state[0][1])
    else:
        await txn.execute("UPDATE mailboxes SET used_bytes = used_bytes + ? WHERE id = ?",
                          (size, mailbox_id))


async def _next_uid(txn, folder_id) -> tuple[int, int]:
    rows = await txn.execute(
        "UPDATE folders SET uidnext = uidnext + 1 WHERE id = ? RETURNING uidvalidity, uidnext",
        (folder_id,))
    return rows[0][0], rows[0][1] - 1


async def _delete_messages(txn, folder_id, uids, release_quota=True) -> list[int]:
    removed = []
    body_ids = []
    freed = 0
    for chunk in _chunks(sorted(set(uids))):
        rows = await txn.execute(
            f"DELETE FROM messages WHERE folder_id = ? AND uid IN ({_marks(chunk)}) "
            "RETURNING uid, body_id, size", [folder_id] + list(chunk))
        for uid, body_id, size in rows:
            removed.append(uid)
            body_ids.append(body_id)
            freed += size
    await release_bodies(txn, body_ids)
    if release_quota and freed:
        await txn.execute(
            "UPDATE mailboxes SET used_bytes = used_bytes - ? WHERE id = "
            "(SELECT mailbox_id FROM folders WHERE id = ?)", (freed, folder_id))
    return sorted(removed)
