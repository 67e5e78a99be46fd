"""The durable outbound mail queue.

Delivery is at least once: a row is deleted only after the remote server
accepted it, and a node that dies mid-delivery leaves a lease that runs out,
after which another node (or the restarted one) tries again.  Rows are
claimed with a conditional UPDATE, so two nodes never hold the same row.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence


@dataclasses.dataclass(frozen=True)
class OutboundItem:
    id: int
    sender: str
    recipient: str
    kind: str
    created: int
    attempts: int
    last_error: str
    data: bytes | None = None
    next_attempt: int = 0


def _marks(values: Sequence) -> str:
    return ", ".join("?" for _ in values)


class OutboundStore:
    def __init__(self, db, clock):
        self._db = db
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.seconds())

    async def add_outbound(self, sender: str, recipients: Sequence[str], data: bytes,
                           kind: str = "mail") -> list[int]:
        """Queue ``data`` for each recipient; committed when this returns."""
        now = self._now()

        async def add(txn):
            body = await txn.execute(
                "INSERT INTO outbound_bodies (data, created) VALUES (?, ?) RETURNING id",
                (data, now))
            ids = []
            for recipient in recipients:
                rows = await txn.execute(
                    "INSERT INTO outbound (body_id, sender, recipient, kind, created, "
                    "next_attempt) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (body[0][0], sender, recipient, kind, now, now))
                ids.append(rows[0][0])
            return ids
        return await self._db.run_interaction("add_outbound", add)

    async def claim_outbound(self, owner: str, lease: int, limit: int = 20) -> list[OutboundItem]:
        """Claim up to ``limit`` due rows for ``owner`` for ``lease`` seconds."""
        now = self._now()

        async def claim(txn):
            due = await txn.execute(
                "SELECT id FROM outbound WHERE next_attempt <= ? AND claimed_until <= ? "
                "ORDER BY next_attempt, id LIMIT ?", (now, now, limit))
            if not due:
                return []
            ids = [row[0] for row in due]
            # The claimed_until test again: under concurrency only one node's
            # UPDATE finds the row still unclaimed.
            rows = await txn.execute(
                f"UPDATE outbound SET claimed_by = ?, claimed_until = ? WHERE id IN ({_marks(ids)}) "
                "AND claimed_until <= ? RETURNING id, body_id, sender, recipient, kind, created, "
                "attempts, last_error", [owner, now + lease] + ids + [now])
            items = []
            for row in sorted(rows):
                body = await txn.execute("SELECT data FROM outbound_bodies WHERE id = ?", (row[1],))
                items.append(OutboundItem(row[0], row[2], row[3], row[4], row[5], row[6], row[7],
                                          bytes(body[0][0])))
            return items
        return await self._db.run_interaction("claim_outbound", claim)

    async def delete_outbound(self, item_id: int) -> None:
        """The recipient is done with (delivered, or bounced)."""
        async def delete(txn):
            rows = await txn.execute("DELETE FROM outbound WHERE id = ? RETURNING body_id",
                                     (item_id,))
            if rows:
                left = await txn.execute("SELECT COUNT(*) FROM outbound WHERE body_id = ?",
                                         (rows[0][0],))
                if not left[0][0]:
                    await txn.execute("DELETE FROM outbound_bodies WHERE id = ?", (rows[0][0],))
        await self._db.run_interaction("delete_outbound", delete)

    async def set_outbound_retry(self, item_id: int, next_attempt: int, error: str) -> None:
        await self._db.execute(
            "set_outbound_retry", "UPDATE outbound SET next_attempt = ?, attempts = attempts + 1, "
            "last_error = ?, claimed_by = '', claimed_until = 0 WHERE id = ?",
            (next_attempt, error[:1000], item_id))

    async def get_outbound(self) -> list[OutboundItem]:
        """Everything queued, without bodies (for operators and tests)."""
        rows = await self._db.execute(
            "get_outbound", "SELECT id, sender, recipient, kind, created, attempts, last_error, "
            "next_attempt FROM outbound ORDER BY id")
        return [OutboundItem(r[0], r[1], r[2], r[3], r[4], r[5], r[6], None, r[7]) for r in rows]
