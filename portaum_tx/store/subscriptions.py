"""SIP event subscriptions (MWI): the dialog state needed to send a NOTIFY from any node."""

from __future__ import annotations

import dataclasses
import json

from .accounts import NotFound


@dataclasses.dataclass(frozen=True)
class Subscription:
    """``dialog`` is what the SIP layer needs to build an in-dialog request (call ID,
    tags, addresses, route set, where to send); the store does not look inside."""

    id: str
    account_id: str
    event: str
    dialog: dict
    local_cseq: int
    remote_cseq: int
    expires: int      # epoch seconds
    last_body: str
    created: int


_COLUMNS = "id, account_id, event, dialog, local_cseq, remote_cseq, expires, last_body, created"


def _row(row) -> Subscription:
    return Subscription(row[0], row[1], row[2], json.loads(row[3]), int(row[4]), int(row[5]),
                        int(row[6]), row[7], int(row[8]))


class SubscriptionStore:
    def __init__(self, db, clock):
        self._db = db
        self._clock = clock

    async def store_subscription(self, subscription_id: str, account_id: str, event: str,
                                 dialog: dict, local_cseq: int, remote_cseq: int,
                                 expires: int) -> Subscription:
        """Create or refresh a subscription (the dialog and expiry are replaced; the
        last announced body is kept so that a refresh does not count as a change)."""
        now = int(self._clock.seconds())
        rows = await self._db.execute(
            "store_subscription",
            f"INSERT INTO sip_subscriptions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?) "
            "ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id, "
            "event = excluded.event, dialog = excluded.dialog, "
            "local_cseq = CASE WHEN sip_subscriptions.local_cseq > excluded.local_cseq "
            "THEN sip_subscriptions.local_cseq ELSE excluded.local_cseq END, "
            "remote_cseq = excluded.remote_cseq, expires = excluded.expires "
            f"RETURNING {_COLUMNS}",
            (subscription_id, account_id, event, json.dumps(dialog, sort_keys=True), local_cseq,
             remote_cseq, expires, now))
        return _row(rows[0])

    async def get_subscription(self, subscription_id: str) -> Subscription:
        rows = await self._db.execute(
            "get_subscription", f"SELECT {_COLUMNS} FROM sip_subscriptions WHERE id = ?",
            (subscription_id,))
        if not rows:
            raise NotFound(f"no subscription {subscription_id}")
        return _row(rows[0])

    async def get_subscriptions(self, account_id: str, event: str) -> list[Subscription]:
        rows = await self._db.execute(
            "get_subscriptions",
            f"SELECT {_COLUMNS} FROM sip_subscriptions WHERE account_id = ? AND event = ? "
            "ORDER BY created, id", (account_id, event))
        return [_row(row) for row in rows]

    async def set_subscription_notified(self, subscription_id: str, body: str,
                                        only_if_changed: bool) -> int | None:
        """Take the next CSeq for a NOTIFY carrying ``body``.  With ``only_if_changed``,
        None when ``body`` was already announced (by this or another node)."""
        condition = " AND last_body <> ?" if only_if_changed else ""
        args = (body, subscription_id) + ((body,) if only_if_changed else ())
        rows = await self._db.execute(
            "set_subscription_notified",
            "UPDATE sip_subscriptions SET local_cseq = local_cseq + 1, last_body = ? "
            f"WHERE id = ?{condition} RETURNING local_cseq", args)
        return int(rows[0][0]) if rows else None

    async def delete_subscription(self, subscription_id: str) -> Subscription | None:
        rows = await self._db.execute(
            "delete_subscription",
            f"DELETE FROM sip_subscriptions WHERE id = ? RETURNING {_COLUMNS}", (subscription_id,))
        return _row(rows[0]) if rows else None

    async def delete_expired_subscriptions(self, now: int) -> list[Subscription]:
        """Remove and return the subscriptions that expired by ``now`` (each is returned
        to one node only, which sends its final NOTIFY)."""
        rows = await self._db.execute(
            "delete_expired_subscriptions",
            f"DELETE FROM sip_subscriptions WHERE expires <= ? RETURNING {_COLUMNS}", (now,))
        return [_row(row) for row in rows]
