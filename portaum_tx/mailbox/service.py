"""The unified mailbox as the protocol front ends and IVR applications see it.

:class:`MailboxService` is the one delivery entry point (SMTP, voicemail and
fax all come through :meth:`MailboxService.deliver`) and hands out
:class:`UserMailbox` views for IMAP, POP3, the web and the phone.  Every
change is committed before the call returns, then announced on the
:class:`~portaum_tx.mailbox.events.EventBus` so that other sessions and other
cluster nodes see it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Callable, Iterable, Sequence

from twisted.logger import Logger

from ..store import AlreadyExists, Folder, MailboxFull, MessageInfo, NotFound
from . import compose, flags as flagnames
from .events import MailboxChanged, NewMessage

log = Logger()

__all__ = ["MailboxService", "UserMailbox", "Delivered", "MailboxFull", "UnknownMailbox",
           "FolderError", "DEFAULT_FOLDERS"]

#: Every mailbox is created with these folders (name, RFC 6154 special use).
DEFAULT_FOLDERS = (("INBOX", None), ("Saved", None), ("Sent", "\\Sent"), ("Trash", "\\Trash"))


class UnknownMailbox(NotFound):
    """No account, alias or address with unified messaging by that name."""


class FolderError(Exception):
    """A folder operation the user asked for cannot be done; the text says why."""


@dataclasses.dataclass(frozen=True)
class Delivered:
    account_id: str
    folder: str
    uidvalidity: int
    uid: int
    kind: str
    size: int
    urgent: bool = False


def canonical_folder(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 5.1); other names are kept as given."""
    return "INBOX" if name.upper() == "INBOX" else name


class MailboxService:
    def __init__(self, store, events, clock, domain: str = "localhost"):
        self.store = store
        self.events = events
        self.clock = clock
        self.domain = domain
        #: Called with each :class:`Delivered` after commit, on the delivering
        #: node only (forwarding and notifications hang here).
        self.delivery_hooks: list[Callable[[Delivered], object]] = []

    # --- addressing --------------------------------------------------------

    async def resolve(self, name: str) -> str:
        """The account ID for an account ID, an alias or an e-mail address
        (``local@domain`` where local is an ID or alias also works)."""
        accounts = self.store.accounts
        candidates = [name]
        if "@" in name:
            candidates = [name.lower(), name.rsplit("@", 1)[0]]
        for candidate in candidates:
            try:
                if "@" in candidate:
                    account = await accounts.get_account_by_email(candidate)
                else:
                    account = await accounts.get_account_by_alias(candidate)
            except NotFound:
                continue
            if account.um_enabled:
                return account.id
        raise UnknownMailbox(f"no mailbox for {name}")

    # --- delivery ------------------------------------------------------------

    async def deliver(self, account_id: str, data: bytes, *, folder: str = "INBOX",
                      kind: str = "email", urgent: bool = False, flags: Iterable[str] = (),
                      internal_date: int | None = None, enforce_quota: bool = True) -> Delivered:
        """Store a message; returns once it is committed.  Raises
        :class:`MailboxFull` over quota and :class:`UnknownMailbox`."""
        bits, keywords = flagnames.to_bits(flags)
        folder = canonical_folder(folder)
        try:
            uidvalidity, uid = await self.store.mailboxes.store_message(
                account_id, folder, data, internal_date=internal_date, flags=bits,
                keywords=keywords, kind=kind, urgent=urgent, enforce_quota=enforce_quota)
        except MailboxFull:
            raise
        except NotFound:
            raise UnknownMailbox(f"no mailbox folder {folder!r} for {account_id}") from None
        delivered = Delivered(account_id, folder, uidvalidity, uid, kind, len(data), urgent)
        await self.events.publish(NewMessage(account_id, folder, uidvalidity, uid, kind, urgent))
        for hook in list(self.delivery_hooks):
            try:
                hook(delivered)
            except Exception:
                log.failure("delivery hook failed for {delivered}", delivered=delivered)
        return delivered

    async def deliver_voice(self, account_id: str, *, audio: bytes, audio_format: str,
                            duration: float, caller: str | None = None,
                            caller_name: str | None = None, when: dt.datetime | None = None,
                            urgent: bool = False) -> Delivered:
        """A voice message: ``audio`` is the encoded attachment (WAV or MP3)."""
        account = await self.store.accounts.get_account(account_id)
        when = when or dt.datetime.fromtimestamp(self.clock.seconds(), dt.timezone.utc)
        data = compose.build_voice_message(
            mailbox=account.id, domain=self.domain, timezone=account.timezone, when=when,
            duration=duration, audio=audio, audio_format=audio_format, caller=caller,
            caller_name=caller_name, urgent=urgent)
        return await self.deliver(account.id, data, kind="voice", urgent=urgent,
                                  internal_date=int(when.timestamp()))

    async def deliver_fax(self, account_id: str, *, document: bytes, document_format: str,
                          pages: int, remote_ident: str | None = None, caller: str | None = None,
                          bit_rate: int | None = None, duration: float | None = None,
                          complete: bool = True, when: dt.datetime | None = None) -> Delivered:
        account = await self.store.accounts.get_account(account_id)
        when = when or dt.datetime.fromtimestamp(self.clock.seconds(), dt.timezone.utc)
        data = compose.build_fax_message(
            mailbox=account.id, domain=self.domain, timezone=account.timezone, when=when,
            document=document, document_format=document_format, pages=pages,
            remote_ident=remote_ident, caller=caller, bit_rate=bit_rate, duration=duration,
            complete=complete)
        # A partial fax may exceed a nearly full mailbox; it is still the
        # caller's only copy, so it is kept rather than refused.
        return await self.deliver(account.id, data, kind="fax", internal_date=int(when.timestamp()),
                                  enforce_quota=complete)

    # --- reading -------------------------------------------------------------

    async def open(self, account_id: str) -> "UserMailbox":
        try:
            mailbox = await self.store.mailboxes.get_mailbox(account_id)
        except NotFound:
            raise UnknownMailbox(f"account {account_id} has no mailbox") from None
        return UserMailbox(self, account_id, mailbox.id)

    async def message_counts(self, account_id: str) -> dict[str, dict[str, int]]:
        """New/old (and urgent) voice and fax counts for MWI."""
        return await self.store.mailboxes.get_message_counts(account_id)


class UserMailbox:
    """One account's folders and messages, addressed by folder name and UID."""

    def __init__(self, service: MailboxService, account_id: str, mailbox_id: int):
        self._service = service
        self._mailboxes = service.store.mailboxes
        self.account_id = account_id
        self.mailbox_id = mailbox_id

    async def _announce(self, folder: str, change: str, uids: Sequence[int] = ()) -> None:
        await self._service.events.publish(
            MailboxChanged(self.account_id, folder, change, tuple(uids)))

    # folders
    async def folders(self) -> list[Folder]:
        return await self._mailboxes.get_folders(self.mailbox_id)

    async def folder(self, name: str) -> Folder:
        return await self._mailboxes.get_folder(self.mailbox_id, canonical_folder(name))

    async def create_folder(self, name: str, special_use: str | None = None) -> Folder:
        name = canonical_folder(name)
        try:
            folder = await self._mailboxes.add_folder(self.mailbox_id, name, special_use)
        except AlreadyExists:
            raise FolderError(f"folder {name} already exists") from None
        await self._announce(name, "folders")
        return folder

    async def delete_folder(self, name: str) -> None:
        name = canonical_folder(name)
        if name == "INBOX":
            raise FolderError("INBOX cannot be deleted")
        folder = await self.folder(name)
        await self._mailboxes.delete_folder(folder.id)
        await self._announce(name, "folders")

    async def rename_folder(self, old: str, new: str) -> None:
        old, new = canonical_folder(old), canonical_folder(new)
        if new == "INBOX":
            raise FolderError("cannot rename a folder to INBOX")
        source = await self.folder(old)
        if old == "INBOX":
            # RFC 3501 6.3.5: renaming INBOX moves its messages to the new
            # folder and leaves INBOX empty.
            target = await self.create_folder(new)
            infos = await self._mailboxes.get_message_infos(source.id)
            await self._mailboxes.copy_messages(source.id, [i.uid for i in infos], target.id,
                                                move=True)
            await self._announce("INBOX", "expunge", [i.uid for i in infos])
            return
        try:
            await self._mailboxes.set_folder_name(source.id, new)
        except AlreadyExists:
            raise FolderError(f"folder {new} already exists") from None
        await self._announce(old, "folders")

    async def set_subscribed(self, name: str, subscribed: bool) -> None:
        folder = await self.folder(name)
        await self._mailboxes.set_subscribed(folder.id, subscribed)

    async def status(self, name: str) -> dict[str, int]:
        folder = await self.folder(name)
        return await self._mailboxes.get_folder_counts(folder.id)

    async def folder_status(self, folder: Folder) -> dict[str, int]:
        """Counts of a folder the caller already holds (saves the name lookup)."""
        return await self._mailboxes.get_folder_counts(folder.id)

    async def quota(self) -> tuple[int, int]:
        """``(used_bytes, quota_bytes)``."""
        mailbox = await self._mailboxes.get_mailbox(self.account_id)
        return mailbox.used_bytes, mailbox.quota_bytes

    # messages
    async def message_infos(self, folder: Folder, since_uid: int = 0) -> list[MessageInfo]:
        return await self._mailboxes.get_message_infos(folder.id, since_uid)

    async def message_data(self, folder: Folder, uids: Sequence[int]) -> dict[int, bytes]:
        return await self._mailboxes.get_message_data(folder.id, uids)

    async def claim_recent(self, folder: Folder) -> tuple[int, int]:
        return await self._mailboxes.claim_recent(folder.id)

    async def set_flags(self, folder: Folder, uids: Sequence[int], names: Iterable[str],
                        mode: str = "add") -> list[MessageInfo]:
        bits, keywords = flagnames.to_bits(names)
        infos = await self._mailboxes.set_flags(folder.id, uids, bits, keywords, mode)
        if infos:
            await self._announce(folder.name, "flags", [i.uid for i in infos])
        return infos

    async def append(self, folder_name: str, data: bytes, names: Iterable[str] = (),
                     internal_date: int | None = None) -> Delivered:
        return await self._service.deliver(self.account_id, data, folder=folder_name, flags=names,
                                           internal_date=internal_date)

    async def copy(self, folder: Folder, uids: Sequence[int], target_name: str,
                   move: bool = False) -> tuple[int, list[tuple[int, int]]]:
        """Copy or move; returns the target's UIDVALIDITY and ``(old, new)`` UID pairs."""
        target = await self.folder(target_name)
        pairs = await self._mailboxes.copy_messages(folder.id, uids, target.id, move=move)
        if pairs:
            if move:
                await self._announce(folder.name, "expunge", [old for old, _ in pairs])
            infos = await self._mailboxes.get_message_infos(target.id, pairs[0][1] - 1)
            kinds = {info.uid: info for info in infos}
            for _, new in pairs:
                info = kinds.get(new)
                await self._service.events.publish(NewMessage(
                    self.account_id, target.name, target.uidvalidity, new,
                    info.kind if info else "email", bool(info and info.urgent)))
        return target.uidvalidity, pairs

    async def expunge(self, folder: Folder, uids: Sequence[int]) -> list[int]:
        removed = await self._mailboxes.delete_messages(folder.id, uids)
        if removed:
            await self._announce(folder.name, "expunge", removed)
        return removed
