"""Submission of a message composed on the web.

Local recipients (an account ID, alias or e-mail address of a mailbox here)
get the message in their INBOX directly; others go to the SMTP outbound
queue; the sender keeps a read copy in Sent.  When this node has no
outbound queue, a message with a remote recipient is refused before anything
is delivered, so nobody gets half a send.
"""

from __future__ import annotations

import email.utils
import functools
import socket
from typing import Any

from ..mailbox.service import MailboxFull
from ..smtp.local import local_account


@functools.lru_cache(maxsize=1)
def _host_name() -> str:
    return socket.getfqdn()


def local_domains(node) -> set[str]:
    """The domains whose addresses are ours, as the SMTP front end counts them."""
    hostname = node.config.smtp.hostname or _host_name()
    return {node.mailboxes.domain.lower(), hostname.lower()}


class OutboundUnavailable(Exception):
    """Remote recipients but no outbound mail queue on this node."""


def find_queue(node) -> Any:
    """The SMTP front end's :class:`~portaum_tx.smtp.queue.OutboundQueue`, if it runs here."""
    queue = getattr(node.services.get("smtp"), "queue", None)
    return queue if callable(getattr(queue, "enqueue", None)) else None


async def submit(node, account_id: str, sender: str, recipients: list[str], data: bytes) -> dict:
    local: list[tuple[str, str]] = []
    remote: list[str] = []
    domains = local_domains(node)
    for recipient in recipients:
        _, address = email.utils.parseaddr(recipient)
        target = await local_account(node.mailboxes, node.accounts, domains, address)
        if target is None:
            remote.append(address)
        else:
            local.append((address, target))
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
        await queue.enqueue(sender, remote, data)
    sent = await node.mailboxes.deliver(account_id, data, folder="Sent", kind="email",
                                        flags=["\\Seen"], enforce_quota=False)
    return {"delivered": delivered, "queued": remote, "refused": refused,
            "sent_copy": {"folder": sent.folder, "uid": sent.uid}}

