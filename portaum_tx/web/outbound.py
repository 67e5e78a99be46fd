"""Submission of a message composed on the web.

Local recipients (an account ID, alias or e-mail address of a mailbox here)
get the message in their INBOX directly; others go to the SMTP outbound
queue; the sender keeps a read copy in Sent.  When this node has no
outbound queue, a message with a remote recipient is refused before anything
is delivered, so nobody gets half a send.
"""

from __future__ import annotations

import email.utils
from typing import Any

from ..mailbox.service import MailboxFull, UnknownMailbox


class OutboundUnavailable(Exception):
    """Remote recipients but no outbound mail queue on this node."""


def find_queue(node) -> Any:
    """The SMTP front end's outbound queue if it offers one: an object with
    ``enqueue(sender, recipients, data)`` (returning an awaitable or a value)."""
    smtp = node.services.get("smtp")
    for candidate in (getattr(smtp, "outbound", None), getattr(smtp, "queue", None), smtp):
        if candidate is not None and callable(getattr(candidate, "enqueue", None)):
            return candidate
    return None


async def submit(node, account_id: str, sender: str, recipients: list[str], data: bytes) -> dict:
    local: list[tuple[str, str]] = []
    remote: list[str] = []
    for recipient in recipients:
        _, address = email.utils.parseaddr(recipient)
        try:
            local.append((address, await node.mailboxes.resolve(address)))
        except UnknownMailbox:
            remote.append(address)
    queue = find_queue(node) if remote else None
    if remote and queue is None:
        raise OutboundUnavailable(
            f"this server cannot send mail outside ({', '.join(remote)}): no outbound mail queue "
            "is running")
    delivered, refused = [], {}
    for address, target in local:
        try:
            await node.mailboxes.deliver(target, data, folder="INBOX", kind="email")
            delivered.append(address)
        except MailboxFull:
            refused[address] = "mailbox full"
    if remote:
        result = queue.enqueue(sender, remote, data)
        if hasattr(result, "__await__") or hasattr(result, "addCallback"):
            from twisted.internet import defer
            await defer.ensureDeferred(_await(result))
    sent = await node.mailboxes.deliver(account_id, data, folder="Sent", kind="email",
                                        flags=["\\Seen"], enforce_quota=False)
    return {"delivered": delivered, "queued": remote, "refused": refused,
            "sent_copy": {"folder": sent.folder, "uid": sent.uid}}


async def _await(result):
    return await result
