"""Mailbox events, published to every node of the cluster.

A delivery on node A must wake an IMAP IDLE or send an MWI NOTIFY on node B,
so events travel through the database (PostgreSQL LISTEN/NOTIFY; in-process
on SQLite).  Each node, the publisher included, hears every event once, from
the database, so there is one path for local and remote events.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable

from twisted.logger import Logger

log = Logger()

CHANNEL = "portaum_mailbox"


@dataclasses.dataclass(frozen=True)
class NewMessage:
    """A message was stored in a folder."""
    account_id: str
    folder: str
    uidvalidity: int
    uid: int
    kind: str
    urgent: bool = False


@dataclasses.dataclass(frozen=True)
class MailboxChanged:
    """Flags changed or messages were removed or moved; ``uids`` may be empty
    when the change is not about particular messages (folder renamed)."""
    account_id: str
    folder: str
    change: str  # "flags", "expunge", "folders"
    uids: tuple[int, ...] = ()


_KINDS = {cls.__name__: cls for cls in (NewMessage, MailboxChanged)}


def encode(event) -> str:
    fields = dataclasses.asdict(event)
    return json.dumps({"type": type(event).__name__, **fields}, separators=(",", ":"))


def decode(payload: str):
    data = json.loads(payload)
    cls = _KINDS[data.pop("type")]
    if "uids" in data:
        data["uids"] = tuple(data["uids"])
    return cls(**data)


class EventBus:
    """Publish mailbox events; subscribe to them by type."""

    #: NOTIFY payloads are limited to 8000 bytes; long UID lists are cut and
    #: listeners then resynchronise the whole folder.
    MAX_UIDS = 500

    def __init__(self, store):
        self._store = store
        self._subscribers: list[tuple[type, Callable]] = []
        self._unlisten = store.listen(CHANNEL, self._on_payload)

    async def publish(self, event) -> None:
        if isinstance(event, MailboxChanged) and len(event.uids) > self.MAX_UIDS:
            event = dataclasses.replace(event, uids=())
        try:
            await self._store.notify(CHANNEL, encode(event))
        except Exception:
            # The change itself is committed; a lost event only delays
            # listeners until their next poll or command.
            log.failure("could not publish {event}", event=event)

    def subscribe(self, event_type: type, callback: Callable) -> Callable[[], None]:
        entry = (event_type, callback)
        self._subscribers.append(entry)

        def unsubscribe():
            if entry in self._subscribers:
                self._subscribers.remove(entry)
        return unsubscribe

    def close(self) -> None:
        self._unlisten()

    def _on_payload(self, payload: str) -> None:
        try:
            event = decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warn("ignoring malformed mailbox event {payload!r}", payload=payload[:200])
            return
        for event_type, callback in list(self._subscribers):
            if isinstance(event, event_type):
                try:
                    callback(event)
                except Exception:
                    log.failure("mailbox event subscriber failed on {event}", event=event)
