"""Which addresses are ours: local domains and the accounts' own e-mail addresses."""

from __future__ import annotations

from ..mailbox.service import UnknownMailbox
from ..store import NotFound


async def local_account(mailboxes, accounts, local_domains, address: str) -> str | None:
    """The account ID that receives mail for ``address``, or None.

    In a local domain the local part may be an account ID or alias; in any
    other domain only an account's exact e-mail address is ours, so that
    ``12065557777@elsewhere.example`` is never taken for a local mailbox."""
    domain = address.rpartition("@")[2].lower()
    try:
        if domain in local_domains:
            return await mailboxes.resolve(address)
        account = await accounts.find_login(address.lower())
    except (UnknownMailbox, NotFound):
        return None
    return account.id if account.um_enabled else None
