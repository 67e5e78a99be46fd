"""Forwarding of new messages (voice, fax, e-mail) to an account's external address.

Per account: ``forward_mode`` none, ``copy`` (the whole message, resent) or
``notify`` (a short note naming the message).  Runs as a delivery hook on
the delivering node, so each message is forwarded once however many nodes
run, and goes out through the durable outbound queue.
"""

from __future__ import annotations

import email.utils
import uuid
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, default

from twisted.internet import defer
from twisted.logger import Logger

log = Logger()

_KIND_NAMES = {"voice": "voice message", "fax": "fax", "email": "e-mail"}


def resent_copy(data: bytes, *, account_id: str, from_address: str, to_address: str,
                hostname: str, now: float) -> bytes:
    """The message with Resent-* fields on top (RFC 5322 3.6.6)."""
    fields = (f"Resent-From: <{from_address}>\r\nResent-To: <{to_address}>\r\n"
              f"Resent-Date: {email.utils.formatdate(now)}\r\n"
              f"Resent-Message-ID: <{uuid.uuid4().hex}@{hostname}>\r\n"
              f"X-Portaum-Forwarded-For: {account_id}\r\n")
    return fields.encode("ascii", "replace") + data


def notification(data: bytes, *, kind: str, account_id: str, from_address: str,
                 to_address: str, hostname: str, now: float) -> bytes:
    """A short plain-text note about a new message."""
    headers = BytesHeaderParser(policy=default).parsebytes(data)
    subject = str(headers.get("Subject", "") or "(no subject)")
    sender = str(headers.get("From", "") or "unknown sender")
    what = _KIND_NAMES.get(kind, "message")
    note = EmailMessage(policy=SMTP)
    note["From"] = from_address
    note["To"] = to_address
    note["Subject"] = f"New {what} for {account_id}: {subject}"[:200]
    note["Date"] = email.utils.formatdate(now)
    note["Message-ID"] = f"<{uuid.uuid4().hex}@{hostname}>"
    note["Auto-Submitted"] = "auto-generated"
    note.set_content(f"A new {what} arrived in mailbox {account_id}.\n\n"
                     f"From: {sender}\nSubject: {subject}\n\n"
                     "Read it on the web, by phone, or in your mail program.\n")
    return note.as_bytes()


def should_forward(data: bytes, mode: str, account_id: str) -> bool:
    """False for mail that would start a loop: a copy this account already
    forwarded once, or a notification about an automatic message (RFC 3834)."""
    headers = BytesHeaderParser(policy=default).parsebytes(data)
    forwarded_for = [str(v).strip() for v in headers.get_all("X-Portaum-Forwarded-For") or []]
    if account_id in forwarded_for or len(forwarded_for) >= 5:
        return False
    automatic = str(headers.get("Auto-Submitted", "no")).strip().lower()
    return not (mode == "notify" and automatic != "no")


class Forwarder:
    #: Forwarding settings are looked up at most this often per account, so
    #: that a burst of deliveries does not cost a query each; a change made
    #: on the web applies within this time.
    SETTINGS_TTL = 5.0

    def __init__(self, *, accounts, mailboxes, queue, clock, from_address: str, hostname: str):
        self.accounts = accounts
        self.mailboxes = mailboxes
        self.queue = queue
        self.clock = clock
        self.from_address = from_address
        self.hostname = hostname
        self.pending: set[defer.Deferred] = set()
        self._settings: dict[str, tuple[float, str, str | None]] = {}

    def __call__(self, delivered) -> None:
        """The delivery hook: forwards in the background, never delays delivery."""
        if delivered.folder != "INBOX":
            return
        d = defer.ensureDeferred(self.forward(delivered))
        d.addErrback(lambda f: log.failure("forwarding {d} failed", f, d=delivered))
        self.pending.add(d)
        d.addBoth(lambda _: self.pending.discard(d))

    async def drain(self) -> None:
        """Wait for forwards under way (at shutdown)."""
        while self.pending:
            await defer.DeferredList(list(self.pending), consumeErrors=True)

    async def _forwarding(self, account_id: str) -> tuple[str, str | None]:
        now = self.clock.seconds()
        cached = self._settings.get(account_id)
        if cached is not None and now - cached[0] < self.SETTINGS_TTL:
            return cached[1], cached[2]
        account = await self.accounts.get_account(account_id)
        if len(self._settings) > 10000:
            self._settings.clear()
        self._settings[account_id] = (now, account.forward_mode, account.forward_address)
        return account.forward_mode, account.forward_address

    async def forward(self, delivered) -> bool:
        mode, target = await self._forwarding(delivered.account_id)
        if mode not in ("copy", "notify") or not target:
            return False
        mailbox = await self.mailboxes.open(delivered.account_id)
        folder = await mailbox.folder(delivered.folder)
        data = (await mailbox.message_data(folder, [delivered.uid])).get(delivered.uid)
        if data is None:
            return False  # already expunged
        account_id = delivered.account_id
        if not should_forward(data, mode, account_id):
            log.info("not forwarding {uid} of {account}: it would loop", uid=delivered.uid,
                     account=account_id)
            return False
        now = self.clock.seconds()
        if mode == "copy":
            message = resent_copy(data, account_id=account_id, from_address=self.from_address,
                                  to_address=target, hostname=self.hostname, now=now)
        else:
            message = notification(data, kind=delivered.kind, account_id=account_id,
                                   from_address=self.from_address, to_address=target,
                                   hostname=self.hostname, now=now)
        await self.queue.enqueue(self.from_address, [target], message, kind="forward")
        return True
