"""IMAP4rev1 server (RFC 3501) over the unified mailbox.

Extensions: IDLE, UIDPLUS, MOVE, NAMESPACE, QUOTA, ID, CHILDREN, LITERAL+,
SPECIAL-USE, UNSELECT, SASL-IR.

Commands run one at a time per connection, in order; input that arrives
while one runs waits (and the transport is paused when too much waits).
Literals are checked against their limits from the ``{n}`` announcement,
before any of their bytes are read.  Changes made by other sessions and
other cluster nodes arrive as mailbox events; they mark the session dirty and
are reported as untagged EXISTS/RECENT/FETCH/EXPUNGE at the end of the next
command (EXPUNGE never during FETCH, STORE or SEARCH, RFC 3501 7.4.1), or at
once while the client IDLEs.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import dataclasses
import datetime as dt
import re
from typing import Any

from twisted.internet import defer, protocol
from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.logger import Logger

from ..accounts import LoginRefused
from ..mailbox import flags as flagnames
from ..mailbox.events import MailboxChanged, NewMessage
from ..mailbox.service import FolderError, MailboxFull, UnknownMailbox, canonical_folder
from ..store import NotFound, StoreUnavailable
from . import fetch as fetching
from .mime import Part
from .search import Candidate, SearchError, UnsupportedCharset, parse_search
from .wire import (Atom, CommandSyntaxError, SequenceSet, astring, is_sequence_set,
                   mailbox_arg, mailbox_name, tokenize)

log = Logger()

DELIMITER = "/"
SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
_LITERAL_AT_END = re.compile(rb"\{(\d{1,20})(\+?)\}\r?\n$")
_TAG = re.compile(r"[!#$&',-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


class Refused(Exception):
    """The command is valid but cannot be done: tagged NO with this text."""


@dataclasses.dataclass
class Limits:
    max_line: int = 64 * 1024
    max_string_literal: int = 64 * 1024
    max_message_size: int = 25 * 1024 * 1024
    #: Input held while a command runs before the transport is paused.
    max_pending: int = 1024 * 1024
    idle_timeout: float = 30 * 60
    unauth_timeout: float = 60
    failed_login_delay: float = 2.0


@dataclasses.dataclass
class Selected:
    folder: Any
    writable: bool
    uids: list[int]
    infos: dict[int, Any]      # uid -> MessageInfo as this session last reported it
    recent: set[int]
    dirty: bool = False

    def seq_of(self, uid: int) -> int:
        # uids are sorted, so a bisection finds the sequence number.
        index = bisect.bisect_left(self.uids, uid)
        if index < len(self.uids) and self.uids[index] == uid:
            return index + 1
        return 0


class IMAPServerFactory(protocol.ServerFactory):
    def __init__(self, *, accounts, mailboxes, events, clock, tls_context=None,
                 implicit_tls: bool = False, allow_plaintext_auth: bool = False,
                 limits: Limits | None = None, hostname: str = "localhost"):
        self.accounts = accounts
        self.mailboxes = mailboxes
        self.events = events
        self.clock = clock
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.allow_plaintext_auth = allow_plaintext_auth
        self.limits = limits or Limits()
        self.hostname = hostname
        self.sessions: set[IMAPServer] = set()

    def buildProtocol(self, addr):
        session = IMAPServer(self)
        session.factory = self
        return session


class IMAPServer(protocol.Protocol):
    def __init__(self, factory: IMAPServerFactory):
        self.factory = factory
        self.limits = factory.limits
        self.clock = factory.clock
        self.state = "unauth"
        self.tls = factory.implicit_tls
        self.account_id: str | None = None
        self.mailbox = None
        self.selected: Selected | None = None
        self._buffer = bytearray()
        self._command = bytearray()
        self._literal_left = 0
        self._busy = False
        self._paused = False
        self._closed = False
        self._continuation: defer.Deferred | None = None
        self._idle_tag: str | None = None
        self._sync_lock = defer.DeferredLock()
        self._timer = None
        self._unsubscribe: list = []
        #: Events this session caused and has already reported to its client.
        self._own_events: list[tuple] = []

    # --- connection -------------------------------------------------------------

    def connectionMade(self):
        self.factory.sessions.add(self)
        if ISSLTransport(self.transport, None) is not None:
            self.tls = True
        self._reset_timer()
        self._send(b"* OK [CAPABILITY " + self._capabilities() + b"] portaum_tx IMAP4rev1 ready")

    def connectionLost(self, reason=None):
        self._closed = True
        self.factory.sessions.discard(self)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._continuation is not None:
            continuation, self._continuation = self._continuation, None
            continuation.errback(ConnectionError("connection closed"))

    def _reset_timer(self):
        timeout = self.limits.idle_timeout if self.state != "unauth" else min(
            self.limits.unauth_timeout, self.limits.idle_timeout)
        if self._timer is not None and self._timer.active():
            self._timer.reset(timeout)
        else:
            self._timer = self.clock.callLater(timeout, self._timed_out)

    def shut_down(self):
        """The node is stopping: say so and close."""
        self._send(b"* BYE server shutting down")
        self.transport.loseConnection()
        self._closed = True

    def _timed_out(self):
        self._timer = None
        self._send(b"* BYE idle for too long; closing")
        self.transport.loseConnection()

    def _send(self, line: bytes):
        if not self._closed:
            self.transport.write(line + b"\r\n")

    def _send_lines(self, lines: list[bytes]):
        if lines and not self._closed:
            self.transport.writeSequence([line + b"\r\n" for line in lines])

    # --- framing ------------------------------------------------------------------

    def dataReceived(self, data: bytes):
        self._reset_timer()
        self._buffer += data
        if self._busy and len(self._buffer) > self.limits.max_pending and not self._paused:
            self._paused = True
            self.transport.pauseProducing()
        self._process()

    def _process(self):
        while not self._closed:
            if self._busy and self._continuation is None:
                return
            if self._literal_left:
                take = min(self._literal_left, len(self._buffer))
                if not take:
                    return
                self._command += self._buffer[:take]
                del self._buffer[:take]
                self._literal_left -= take
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self.limits.max_line:
                    self._send(b"* BYE line too long")
                    self.transport.loseConnection()
                    self._closed = True
                return
            line = bytes(self._buffer[:end + 1])
            del self._buffer[:end + 1]
            if len(line) > self.limits.max_line:
                first = bytes(self._command or line).split(b" ", 1)[0][:64]
                tag = first if _TAG.fullmatch(first.decode("ascii", "replace")) else b"*"
                self._command.clear()
                self._send(tag + b" BAD line too long (limit %d octets)" % self.limits.max_line)
                continue
            if self._continuation is not None:
                continuation, self._continuation = self._continuation, None
                continuation.callback(line.rstrip(b"\r\n"))
                continue
            if self._idle_tag is not None:
                self._end_idle(line)
                continue
            self._command += line
            match = _LITERAL_AT_END.search(line)
            if match:
                size, nonsync = int(match.group(1)), bool(match.group(2))
                limit = self._literal_limit()
                if size > limit or len(self._command) + size > limit + self.limits.max_line:
                    tag = bytes(self._command.split(b" ", 1)[0])[:64]
                    self._command.clear()
                    if nonsync:
                        # The client sends the data anyway; there is no way
                        # to skip it without reading it.
                        self._send(b"* BYE literal of %d octets is over the limit" % size)
                        self.transport.loseConnection()
                        self._closed = True
                        return
                    self._send(tag + b" NO [TOOBIG] literal of %d octets is over the limit of %d"
                               % (size, limit))
                    continue
                if not nonsync:
                    self._send(b"+ go ahead")
                self._literal_left = size
                continue
            data = bytes(self._command)
            self._command.clear()
            self._start(self._run(data))

    def _start(self, coroutine) -> bool:
        """Run one command; True when it finished at once.  Otherwise input
        waits (the loop stops at its top) until it finishes, except the
        continuation lines AUTHENTICATE asks for."""
        self._busy = True
        d = defer.ensureDeferred(coroutine)
        d.addErrback(lambda f: log.failure("IMAP command failed", f))
        if d.called:
            self._command_done(False)
            return True
        d.addBoth(lambda _: self._command_done(True))
        return False

    def _command_done(self, asynchronous: bool):
        self._busy = False
        if self._paused:
            self._paused = False
            self.transport.resumeProducing()
        if asynchronous:
            self._process()

    def _literal_limit(self) -> int:
        words = bytes(self._command[:200]).split(None, 3)
        name = words[1].upper() if len(words) > 1 else b""
        if name == b"APPEND" and self.state in ("auth", "selected"):
            return self.limits.max_message_size
        return self.limits.max_string_literal

    # --- dispatch -----------------------------------------------------------------

    _COMMANDS = {
        "any": {"CAPABILITY", "NOOP", "LOGOUT", "ID"},
        "unauth": {"STARTTLS", "LOGIN", "AUTHENTICATE"},
        "auth": {"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
                 "LIST", "LSUB", "STATUS", "APPEND", "IDLE", "NAMESPACE", "GETQUOTA",
                 "GETQUOTAROOT", "SETQUOTA", "CHECK"},
        "selected": {"CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY",
                     "MOVE", "UID"},
    }

    def _allowed(self, name: str) -> bool:
        if name in self._COMMANDS["any"]:
            return True
        if self.state == "unauth":
            return name in self._COMMANDS["unauth"]
        if self.state == "auth":
            return name in self._COMMANDS["auth"]
        if self.state == "selected":
            return name in self._COMMANDS["auth"] or name in self._COMMANDS["selected"]
        return False

    async def _run(self, data: bytes):
        first = data.split(None, 1)[0].decode("ascii", "replace") if data.strip() else ""
        tag = first if _TAG.fullmatch(first) else "*"
        try:
            tokens = tokenize(data)
            if not tokens or not isinstance(tokens[0], Atom) or not _TAG.fullmatch(tokens[0]):
                self._send(b"* BAD missing or malformed tag")
                return
            tag = str(tokens[0])
            if len(tokens) < 2 or not isinstance(tokens[1], Atom):
                raise CommandSyntaxError("missing command")
            name = tokens[1].upper()
            handler = getattr(self, "do_" + name, None)
            if handler is None:
                raise CommandSyntaxError(f"unknown command {tokens[1][:40]}")
            if not self._allowed(name):
                raise CommandSyntaxError(f"{name} is not allowed in the {self.state} state")
            await handler(tag, tokens[2:])
        except CommandSyntaxError as exc:
            self._tagged(tag, "BAD", str(exc))
        except Refused as exc:
            self._tagged(tag, "NO", str(exc))
        except MailboxFull:
            self._tagged(tag, "NO", "[OVERQUOTA] mailbox is full")
        except StoreUnavailable:
            self._tagged(tag, "NO", "[UNAVAILABLE] the message store is unavailable; try again")
        except Exception:
            if self._closed:
                return  # the client went away mid-command (an AUTHENTICATE exchange, say)
            log.failure("IMAP command {tag} failed", tag=tag)
            self._tagged(tag, "NO", "[SERVERBUG] internal error")

    def _tagged(self, tag: str, status: str, text: str):
        self._send(f"{tag} {status} {text}".encode("utf-8", "replace"))

    async def _ok(self, tag: str, text: str, allow_expunge: bool = True):
        await self._sync(allow_expunge)
        self._tagged(tag, "OK", text)

    # --- any state ----------------------------------------------------------------

    def _capabilities(self) -> bytes:
        caps = ["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "IDLE", "NAMESPACE", "UIDPLUS",
                "MOVE", "QUOTA", "CHILDREN", "SPECIAL-USE", "UNSELECT"]
        if self.state == "unauth":
            if not self.tls and self.factory.tls_context is not None and self._can_start_tls():
                caps.append("STARTTLS")
            if self.tls or self.factory.allow_plaintext_auth:
                caps.append("AUTH=PLAIN")
            else:
                caps.append("LOGINDISABLED")
        return " ".join(caps).encode("ascii")

    def _can_start_tls(self) -> bool:
        return ITLSTransport(self.transport, None) is not None

    async def do_CAPABILITY(self, tag, args):
        self._send(b"* CAPABILITY " + self._capabilities())
        await self._ok(tag, "CAPABILITY completed")

    async def do_NOOP(self, tag, args):
        await self._ok(tag, "NOOP completed")

    async def do_LOGOUT(self, tag, args):
        self._send(b"* BYE logging out")
        self._tagged(tag, "OK", "LOGOUT completed")
        self.state = "logout"
        self.transport.loseConnection()
        self._closed = True  # whatever was pipelined after LOGOUT is not answered

    async def do_ID(self, tag, args):
        self._send(b'* ID ("name" "portaum_tx" "vendor" "portaum_tx")')
        await self._ok(tag, "ID completed")

    # --- not authenticated ----------------------------------------------------------

    async def do_STARTTLS(self, tag, args):
        if self.tls:
            raise Refused("TLS is already active")
        if self.factory.tls_context is None or not self._can_start_tls():
            raise Refused("TLS is not available")
        # Anything pipelined after STARTTLS was sent in the clear and must
        # not be taken as if it came over TLS.
        self._buffer.clear()
        self._tagged(tag, "OK", "begin TLS negotiation now")
        self.transport.startTLS(self.factory.tls_context)
        self.tls = True

    def _check_privacy(self):
        if not self.tls and not self.factory.allow_plaintext_auth:
            raise Refused("[PRIVACYREQUIRED] use STARTTLS before logging in")

    async def do_LOGIN(self, tag, args):
        if len(args) != 2:
            raise CommandSyntaxError("LOGIN needs a user name and a password")
        self._check_privacy()
        await self._login(tag, astring(args[0]), astring(args[1]))

    async def do_AUTHENTICATE(self, tag, args):
        if not args or not isinstance(args[0], Atom):
            raise CommandSyntaxError("AUTHENTICATE needs a mechanism")
        if args[0].upper() != "PLAIN":
            raise Refused("only AUTHENTICATE PLAIN is supported")
        self._check_privacy()
        if len(args) > 1:
            response = astring(args[1]).encode("ascii", "replace")
        else:
            self._send(b"+ ")
            self._continuation = defer.Deferred()
            response = await self._continuation
        if response.strip() == b"*":
            raise CommandSyntaxError("authentication cancelled")
        try:
            decoded = base64.b64decode(response.strip() or b"", validate=True)
            _, user, password = decoded.split(b"\0")
            user_text, password_text = user.decode("utf-8"), password.decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise CommandSyntaxError("malformed PLAIN response") from None
        await self._login(tag, user_text, password_text)

    async def _login(self, tag, user: str, password: str):
        peer = getattr(self.transport.getPeer(), "host", None)
        try:
            account = await self.factory.accounts.authenticate(user, password, source=peer)
            mailbox = await self.factory.mailboxes.open(account.id)
        except (LoginRefused, UnknownMailbox) as exc:
            # Slow down guessing: the answer comes only after a pause.
            await _sleep(self.clock, self.limits.failed_login_delay)
            text = "too many failed attempts; try again later" if getattr(
                exc, "locked_until", 0) else "invalid credentials"
            raise Refused(f"[AUTHENTICATIONFAILED] {text}") from None
        self.account_id = account.id
        self.mailbox = mailbox
        self.state = "auth"
        self._reset_timer()
        events = self.factory.events
        self._unsubscribe = [events.subscribe(NewMessage, self._on_event),
                             events.subscribe(MailboxChanged, self._on_event)]
        self._tagged(tag, "OK", "[CAPABILITY " + self._capabilities().decode() + "] logged in")

    # --- events ---------------------------------------------------------------------

    def _expect(self, change: str, uids) -> None:
        """Our own change will come back as an event; it needs no resync."""
        if self.selected is not None and uids:
            self._own_events.append((self.selected.folder.name, change, tuple(uids)))
            del self._own_events[:-100]

    def _on_event(self, event):
        selected = self.selected
        if (selected is None or event.account_id != self.account_id
                or event.folder != selected.folder.name):
            return
        if isinstance(event, MailboxChanged):
            key = (event.folder, event.change, event.uids)
            if key in self._own_events:
                # Should another session's identical change be taken for ours,
                # ours then arrives unmatched and triggers the resync.
                self._own_events.remove(key)
                return
        selected.dirty = True
        if self._idle_tag is not None and not self._busy:
            defer.ensureDeferred(self._sync(True)).addErrback(
                lambda f: log.failure("IDLE update failed", f))

    async def _sync(self, allow_expunge: bool = True):
        selected = self.selected
        if selected is None or not selected.dirty:
            return
        await self._sync_lock.acquire()
        try:
            if self.selected is selected and selected.dirty:
                await self._sync_selected(selected, allow_expunge)
        finally:
            self._sync_lock.release()

    async def _sync_selected(self, selected: Selected, allow_expunge: bool):
        selected.dirty = False
        infos = await self.mailbox.message_infos(selected.folder)
        current = {info.uid: info for info in infos}
        lines = []
        if allow_expunge:
            for index in range(len(selected.uids) - 1, -1, -1):
                uid = selected.uids[index]
                if uid not in current:
                    lines.append(b"* %d EXPUNGE" % (index + 1))
                    del selected.uids[index]
                    selected.infos.pop(uid, None)
                    selected.recent.discard(uid)
        elif any(uid not in current for uid in selected.uids):
            selected.dirty = True  # report the expunges at the next chance
        last = selected.uids[-1] if selected.uids else 0
        new = [uid for uid in current if uid > last]
        for uid in selected.uids:
            info = current.get(uid)
            if info is None:
                continue
            known = selected.infos.get(uid)
            selected.infos[uid] = info
            if known is None or (known.flags, known.keywords) != (info.flags, info.keywords):
                lines.append(b"* %d FETCH (UID %d FLAGS (%s))" % (
                    selected.seq_of(uid), uid, self._flags(selected, uid).encode()))
        if new:
            if selected.writable:
                low, high = await self.mailbox.claim_recent(selected.folder)
                selected.recent.update(uid for uid in new if low < uid <= high)
            selected.uids.extend(new)
            for uid in new:
                selected.infos[uid] = current[uid]
            lines.append(b"* %d EXISTS" % len(selected.uids))
            lines.append(b"* %d RECENT" % len(selected.recent))
        self._send_lines(lines)

    def _flags(self, selected: Selected, uid: int) -> str:
        info = selected.infos.get(uid)
        names = flagnames.to_names(info.flags, info.keywords) if info is not None else []
        if uid in selected.recent:
            names.append("\\Recent")
        return " ".join(names)

    # --- authenticated: folders -------------------------------------------------------

    async def _folder(self, name: str, missing: str = "NONEXISTENT"):
        try:
            return await self.mailbox.folder(name)
        except NotFound:
            raise Refused(f"[{missing}] no folder {name}") from None

    async def do_SELECT(self, tag, args, writable=True):
        if len(args) != 1:
            raise CommandSyntaxError("SELECT needs one folder name")
        name = mailbox_arg(args[0])
        self.selected = None
        self.state = "auth"
        folder = await self._folder(name)
        infos = await self.mailbox.message_infos(folder)
        recent: set[int] = set()
        recent_count = 0
        if writable:
            low, high = await self.mailbox.claim_recent(folder)
            recent = {info.uid for info in infos if low < info.uid <= high}
            recent_count = len(recent)
        else:
            recent_count = (await self.mailbox.status(folder.name))["recent"]
        selected = Selected(folder, writable, [info.uid for info in infos],
                            {info.uid: info for info in infos}, recent)
        lines = [b"* FLAGS (" + SYSTEM_FLAGS.encode() + b")",
                 b"* OK [PERMANENTFLAGS (" + SYSTEM_FLAGS.encode() + (b" \\*)]" if writable
                                                                        else b")]") + b" flags",
                 b"* %d EXISTS" % len(infos), b"* %d RECENT" % recent_count]
        first_unseen = next((i + 1 for i, info in enumerate(infos)
                             if not info.flags & flagnames.SEEN), None)
        if first_unseen:
            lines.append(b"* OK [UNSEEN %d] first unseen" % first_unseen)
        uidnext = max(folder.uidnext, (infos[-1].uid + 1) if infos else 1)
        lines += [b"* OK [UIDVALIDITY %d] UIDs valid" % folder.uidvalidity,
                  b"* OK [UIDNEXT %d] predicted next UID" % uidnext]
        self._send_lines(lines)
        self.selected = selected
        self.state = "selected"
        access = "READ-WRITE" if writable else "READ-ONLY"
        self._tagged(tag, "OK", f"[{access}] {'SELECT' if writable else 'EXAMINE'} completed")

    async def do_EXAMINE(self, tag, args):
        await self.do_SELECT(tag, args, writable=False)

    async def do_CREATE(self, tag, args):
        if len(args) != 1:
            raise CommandSyntaxError("CREATE needs one folder name")
        name = mailbox_arg(args[0]).rstrip(DELIMITER)
        if not name or name.upper() == "INBOX":
            raise Refused("[ALREADYEXISTS] cannot create that folder")
        try:
            await self.mailbox.create_folder(name)
        except FolderError as exc:
            raise Refused(f"[ALREADYEXISTS] {exc}") from None
        await self._ok(tag, "CREATE completed")

    async def do_DELETE(self, tag, args):
        if len(args) != 1:
            raise CommandSyntaxError("DELETE needs one folder name")
        name = mailbox_arg(args[0])
        try:
            await self.mailbox.delete_folder(name)
        except FolderError as exc:
            raise Refused(str(exc)) from None
        except NotFound:
            raise Refused(f"[NONEXISTENT] no folder {name}") from None
        if self.selected is not None and self.selected.folder.name == name:
            self.selected = None
            self.state = "auth"
        await self._ok(tag, "DELETE completed")

    async def do_RENAME(self, tag, args):
        if len(args) != 2:
            raise CommandSyntaxError("RENAME needs two folder names")
        old, new = mailbox_arg(args[0]), mailbox_arg(args[1]).rstrip(DELIMITER)
        folders = await self.mailbox.folders()
        children = [f.name for f in folders if f.name.startswith(old + DELIMITER)]
        try:
            if any(f.name == old for f in folders) or not children:
                await self.mailbox.rename_folder(old, new)
            for child in children:
                await self.mailbox.rename_folder(child, new + child[len(old):])
        except FolderError as exc:
            raise Refused(f"[ALREADYEXISTS] {exc}") from None
        except NotFound:
            raise Refused(f"[NONEXISTENT] no folder {old}") from None
        await self._ok(tag, "RENAME completed")

    async def do_SUBSCRIBE(self, tag, args, subscribed=True):
        if len(args) != 1:
            raise CommandSyntaxError("SUBSCRIBE needs one folder name")
        name = mailbox_arg(args[0])
        try:
            await self.mailbox.set_subscribed(name, subscribed)
        except NotFound:
            raise Refused(f"[NONEXISTENT] no folder {name}") from None
        await self._ok(tag, "SUBSCRIBE completed" if subscribed else "UNSUBSCRIBE completed")

    async def do_UNSUBSCRIBE(self, tag, args):
        await self.do_SUBSCRIBE(tag, args, subscribed=False)

    async def do_LIST(self, tag, args, command="LIST"):
        if len(args) < 2:
            raise CommandSyntaxError(f"{command} needs a reference and a pattern")
        reference, pattern = mailbox_arg(args[0]), mailbox_arg(args[1])
        if pattern == "" and command == "LIST":
            self._send(b'* LIST (\\Noselect) "/" ""')
            await self._ok(tag, "LIST completed")
            return
        folders = await self.mailbox.folders()
        names = {f.name: f for f in folders}
        everything = set(names)
        for name in names:
            parts = name.split(DELIMITER)
            for i in range(1, len(parts)):
                everything.add(DELIMITER.join(parts[:i]))
        regex = _pattern(reference + pattern)
        lines = []
        for name in sorted(everything, key=lambda n: (n != "INBOX", n)):
            if not regex.fullmatch(name):
                continue
            folder = names.get(name)
            if command == "LSUB" and (folder is None or not folder.subscribed):
                continue
            attributes = []
            if folder is None:
                attributes.append("\\Noselect")
            has_children = any(other.startswith(name + DELIMITER) for other in everything)
            attributes.append("\\HasChildren" if has_children else "\\HasNoChildren")
            if folder is not None and folder.special_use:
                attributes.append(folder.special_use)
            lines.append(f"* {command} ({' '.join(attributes)}) \"{DELIMITER}\" ".encode()
                         + mailbox_name(name))
        self._send_lines(lines)
        await self._ok(tag, f"{command} completed")

    async def do_LSUB(self, tag, args):
        await self.do_LIST(tag, args, "LSUB")

    async def do_STATUS(self, tag, args):
        if len(args) != 2 or not isinstance(args[1], list):
            raise CommandSyntaxError("STATUS needs a folder name and a list of items")
        name = mailbox_arg(args[0])
        selected = self.selected
        try:
            if selected is not None and selected.folder.name == canonical_folder(name):
                counts = await self.mailbox.folder_status(selected.folder)
            else:
                counts = await self.mailbox.status(name)
        except NotFound:
            raise Refused(f"[NONEXISTENT] no folder {name}") from None
        items = []
        keys = {"MESSAGES": "messages", "RECENT": "recent", "UIDNEXT": "uidnext",
                "UIDVALIDITY": "uidvalidity", "UNSEEN": "unseen"}
        for item in args[1]:
            key = str(item).upper()
            if key not in keys:
                raise CommandSyntaxError(f"unknown STATUS item {item}")
            items.append(f"{key} {counts[keys[key]]}")
        self._send(b"* STATUS " + mailbox_name(name) + f" ({' '.join(items)})".encode())
        await self._ok(tag, "STATUS completed")

    async def do_APPEND(self, tag, args):
        if len(args) < 2 or not isinstance(args[-1], bytes):
            raise CommandSyntaxError("APPEND needs a folder name and a message literal")
        name = mailbox_arg(args[0])
        flag_names: list[str] = []
        when = None
        for extra in args[1:-1]:
            if isinstance(extra, list):
                flag_names = [str(f) for f in extra]
            elif isinstance(extra, bytes):
                when = _parse_date_time(extra.decode("ascii", "replace"))
            else:
                raise CommandSyntaxError(f"unexpected APPEND argument {extra}")
        _check_flags(flag_names)
        await self._folder(name, "TRYCREATE")
        delivered = await self.mailbox.append(name, _crlf(args[-1]), flag_names, when)
        await self._ok(tag, f"[APPENDUID {delivered.uidvalidity} {delivered.uid}] APPEND completed")

    async def do_NAMESPACE(self, tag, args):
        self._send(b'* NAMESPACE (("" "/")) NIL NIL')
        await self._ok(tag, "NAMESPACE completed")

    async def _quota_lines(self) -> list[bytes]:
        used, quota = await self.mailbox.quota()
        return [b'* QUOTA "" (STORAGE %d %d)' % ((used + 1023) // 1024, quota // 1024)]

    async def do_GETQUOTA(self, tag, args):
        if len(args) != 1 or astring(args[0]) != "":
            raise Refused("no such quota root")
        self._send_lines(await self._quota_lines())
        await self._ok(tag, "GETQUOTA completed")

    async def do_GETQUOTAROOT(self, tag, args):
        if len(args) != 1:
            raise CommandSyntaxError("GETQUOTAROOT needs a folder name")
        name = mailbox_arg(args[0])
        await self._folder(name)
        self._send_lines([b"* QUOTAROOT " + mailbox_name(name) + b' ""']
                         + await self._quota_lines())
        await self._ok(tag, "GETQUOTAROOT completed")

    async def do_SETQUOTA(self, tag, args):
        raise Refused("quotas are set by the operator")

    async def do_CHECK(self, tag, args):
        await self._ok(tag, "CHECK completed")

    async def do_IDLE(self, tag, args):
        self._idle_tag = tag
        self._send(b"+ idling")
        await self._sync(True)

    def _end_idle(self, line: bytes) -> bool:
        tag, self._idle_tag = self._idle_tag, None

        async def finish():
            if line.strip().upper() != b"DONE":
                self._tagged(tag, "BAD", "expected DONE")
                return
            await self._ok(tag, "IDLE terminated")
        return self._start(finish())

    # --- selected ---------------------------------------------------------------------

    async def do_CLOSE(self, tag, args):
        selected = self.selected
        if selected.writable:
            infos = await self.mailbox.message_infos(selected.folder)
            deleted = [i.uid for i in infos if i.flags & flagnames.DELETED]
            if deleted:
                await self.mailbox.expunge(selected.folder, deleted)
        self.selected = None
        self.state = "auth"
        self._tagged(tag, "OK", "CLOSE completed")

    async def do_UNSELECT(self, tag, args):
        self.selected = None
        self.state = "auth"
        self._tagged(tag, "OK", "UNSELECT completed")

    def _targets(self, token, uid: bool) -> list[int]:
        """The UIDs a sequence set (or, with ``uid``, a UID set) names, in order."""
        if not is_sequence_set(token):
            raise CommandSyntaxError(f"bad sequence set {str(token)[:40]}")
        numbers = SequenceSet(token)
        selected = self.selected
        if uid:
            star = selected.uids[-1] if selected.uids else 0
            return [u for u in selected.uids if numbers.contains(u, star)]
        count = len(selected.uids)
        if numbers.max_explicit() > count:
            raise CommandSyntaxError(f"no message {numbers.max_explicit()} (there are {count})")
        return [selected.uids[seq - 1] for seq in range(1, count + 1)
                if numbers.contains(seq, count)]

    async def do_UID(self, tag, args):
        if not args or not isinstance(args[0], Atom):
            raise CommandSyntaxError("UID needs a command")
        name = args[0].upper()
        handler = {"FETCH": self.do_FETCH, "SEARCH": self.do_SEARCH, "STORE": self.do_STORE,
                   "COPY": self.do_COPY, "MOVE": self.do_MOVE, "EXPUNGE": self.do_EXPUNGE}.get(name)
        if handler is None:
            raise CommandSyntaxError(f"UID {name[:20]} is not a command")
        await handler(tag, args[1:], uid=True)

    async def do_EXPUNGE(self, tag, args, uid=False):
        selected = self.selected
        if not selected.writable:
            raise Refused("[READ-ONLY] the folder is read-only")
        wanted = None
        if uid:
            if len(args) != 1:
                raise CommandSyntaxError("UID EXPUNGE needs a UID set")
            wanted = set(self._targets(args[0], True))
        elif args:
            raise CommandSyntaxError("EXPUNGE takes no arguments")
        infos = await self.mailbox.message_infos(selected.folder)
        deleted = [i.uid for i in infos if i.flags & flagnames.DELETED
                   and (wanted is None or i.uid in wanted)]
        if deleted:
            removed = await self.mailbox.expunge(selected.folder, deleted)
            self._expect("expunge", removed)
            self._report_expunged(removed)
        await self._ok(tag, "EXPUNGE completed")

    def _report_expunged(self, removed):
        selected = self.selected
        lines = []
        for uid in sorted(removed, reverse=True):
            seq = selected.seq_of(uid)
            if seq:
                lines.append(b"* %d EXPUNGE" % seq)
                del selected.uids[seq - 1]
                selected.infos.pop(uid, None)
                selected.recent.discard(uid)
        self._send_lines(lines)

    async def do_FETCH(self, tag, args, uid=False):
        if len(args) < 2:
            raise CommandSyntaxError("FETCH needs a sequence set and attributes")
        request = fetching.parse_fetch(args[1:])
        selected = self.selected
        items = list(request.items)
        if uid and "UID" not in items:
            items.insert(0, "UID")
        # The session's view is brought up to date first, then sizes, dates
        # and flags are answered from it without a query.  Sequence numbers
        # are the client's: taken before any new message is announced, and
        # no EXPUNGE during a FETCH by sequence number.
        if uid:
            await self._sync(True)
        targets = self._targets(args[0], uid)
        if not uid:
            await self._sync(False)
        if targets:
            infos = selected.infos
            if request.sets_seen and selected.writable:
                unseen = [t for t in targets if not infos[t].flags & flagnames.SEEN]
                if unseen:
                    changed = await self.mailbox.set_flags(selected.folder, unseen, ["\\Seen"])
                    self._expect("flags", [info.uid for info in changed])
                    for info in changed:
                        if info.uid in infos:
                            infos[info.uid] = info
                    if "FLAGS" not in items:
                        items.append("FLAGS")
            chunk = 20 if request.needs_data else len(targets)
            for start in range(0, len(targets), chunk):
                part_uids = targets[start:start + chunk]
                data = await self.mailbox.message_data(selected.folder, part_uids) \
                    if request.needs_data else {}
                lines = []
                for target in part_uids:
                    info = infos.get(target)
                    if info is None:
                        continue
                    raw = data.get(target)
                    if request.needs_data and raw is None:
                        continue
                    part = Part(raw) if raw is not None else None
                    rendered = [fetching.render_item(
                        item, uid=target, flags=self._flags(selected, target).split(),
                        size=info.size, date=info.internal_date, part=part) for item in items]
                    lines.append(b"* %d FETCH (" % selected.seq_of(target)
                                 + b" ".join(rendered) + b")")
                self._send_lines(lines)
        await self._ok(tag, f"{'UID ' if uid else ''}FETCH completed", allow_expunge=uid)

    async def do_STORE(self, tag, args, uid=False):
        if len(args) < 3 or not isinstance(args[1], Atom):
            raise CommandSyntaxError("STORE needs a sequence set, an item and flags")
        selected = self.selected
        if not selected.writable:
            raise Refused("[READ-ONLY] the folder is read-only")
        item = args[1].upper()
        match = re.fullmatch(r"([+-]?)FLAGS(\.SILENT)?", item)
        if not match:
            raise CommandSyntaxError(f"unknown STORE item {item[:30]}")
        mode = {"+": "add", "-": "remove", "": "replace"}[match.group(1)]
        silent = bool(match.group(2))
        values = args[2] if len(args) == 3 and isinstance(args[2], list) else args[2:]
        names = [str(v) for v in values]
        _check_flags(names)
        targets = self._targets(args[0], uid)
        if targets:
            infos = await self.mailbox.set_flags(selected.folder, targets, names, mode)
            self._expect("flags", [info.uid for info in infos])
            lines = []
            for info in infos:
                if info.uid not in selected.infos:
                    continue
                selected.infos[info.uid] = info
                if not silent:
                    flags = self._flags(selected, info.uid)
                    prefix = b"UID %d " % info.uid if uid else b""
                    lines.append(b"* %d FETCH (%sFLAGS (%s))" % (
                        selected.seq_of(info.uid), prefix, flags.encode()))
            self._send_lines(lines)
        await self._ok(tag, "STORE completed", allow_expunge=uid)

    async def do_COPY(self, tag, args, uid=False, move=False):
        command = "MOVE" if move else "COPY"
        if len(args) != 2:
            raise CommandSyntaxError(f"{command} needs a sequence set and a folder name")
        selected = self.selected
        if move and not selected.writable:
            raise Refused("[READ-ONLY] the folder is read-only")
        targets = self._targets(args[0], uid)
        name = mailbox_arg(args[1])
        await self._folder(name, "TRYCREATE")
        if not targets:
            await self._ok(tag, f"{command} completed")
            return
        uidvalidity, pairs = await self.mailbox.copy(selected.folder, targets, name, move=move)
        code = ""
        if pairs:
            code = (f"[COPYUID {uidvalidity} {_uid_set(p[0] for p in pairs)} "
                    f"{_uid_set(p[1] for p in pairs)}] ")
        if move:
            self._expect("expunge", [old for old, _ in pairs])
            if code:
                self._send(f"* OK {code.strip()} moved".encode())
            self._report_expunged([old for old, _ in pairs])
            await self._ok(tag, f"{command} completed")
        else:
            await self._ok(tag, f"{code}{command} completed")

    async def do_MOVE(self, tag, args, uid=False):
        await self.do_COPY(tag, args, uid=uid, move=True)

    async def do_SEARCH(self, tag, args, uid=False):
        selected = self.selected
        max_uid = selected.uids[-1] if selected.uids else 0
        try:
            _, query = parse_search(args, max_seq=len(selected.uids), max_uid=max_uid)
        except UnsupportedCharset:
            raise Refused("[BADCHARSET (UTF-8 US-ASCII)] unsupported charset") from None
        except SearchError as exc:
            raise CommandSyntaxError(str(exc)) from None
        await self._sync(allow_expunge=uid)
        matches = []
        known = [selected.infos[u] for u in selected.uids if u in selected.infos]
        for start in range(0, len(known), 50 if query.needs_text else max(1, len(known))):
            chunk = known[start:start + (50 if query.needs_text else len(known))]
            data = await self.mailbox.message_data(
                selected.folder, [i.uid for i in chunk]) if query.needs_text else {}
            for info in chunk:
                candidate = Candidate(selected.seq_of(info.uid), info.uid, info.size,
                                      info.internal_date, info.flags, info.keywords,
                                      info.uid in selected.recent, data.get(info.uid))
                if query.predicate(candidate):
                    matches.append(info.uid if uid else candidate.seq)
        self._send(b"* SEARCH" + b"".join(b" %d" % n for n in matches))
        await self._ok(tag, "SEARCH completed", allow_expunge=uid)


# --- helpers ------------------------------------------------------------------------

def _sleep(clock, seconds: float) -> defer.Deferred:
    d = defer.Deferred()
    clock.callLater(seconds, d.callback, None)
    return d


def _pattern(pattern: str) -> re.Pattern:
    out = []
    for char in pattern:
        if char == "*":
            out.append(".*")
        elif char == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(char))
    text = "".join(out)
    if pattern.upper().startswith("INBOX"):
        text = "(?i:INBOX)" + "".join(out[5:])
    return re.compile(text, re.DOTALL)


def _check_flags(names: list[str]):
    try:
        flagnames.to_bits(names)
    except ValueError as exc:
        raise CommandSyntaxError(str(exc)) from None
    for name in names:
        if not re.fullmatch(r"\\?[!#$&'+\-./0-9:;<=>?@A-Z^_`a-z|}~]+", name):
            raise CommandSyntaxError(f"bad flag {name[:40]!r}")


def _uid_set(uids) -> str:
    values = list(uids)
    ranges = []
    for value in values:
        if ranges and value == ranges[-1][1] + 1:
            ranges[-1][1] = value
        else:
            ranges.append([value, value])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def _parse_date_time(text: str) -> int:
    match = re.fullmatch(r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)",
                         text)
    if not match or match.group(2).lower() not in _MONTHS:
        raise CommandSyntaxError(f"bad date-time {text[:40]!r}")
    day, month, year, hh, mm, ss, sign, zh, zm = match.groups()
    offset = dt.timedelta(hours=int(zh), minutes=int(zm)) * (1 if sign == "+" else -1)
    try:
        when = dt.datetime(int(year), _MONTHS.index(month.lower()) + 1, int(day), int(hh),
                           int(mm), int(ss), tzinfo=dt.timezone(offset))
    except ValueError:
        raise CommandSyntaxError(f"bad date-time {text[:40]!r}") from None
    return int(when.timestamp())


def _crlf(data: bytes) -> bytes:
    """Bare LF line ends as CRLF, so every stored message has one form."""
    if b"\n" in data and data.count(b"\r\n") != data.count(b"\n"):
        data = re.sub(rb"\r?\n", b"\r\n", data)
    return data


__all__ = ["IMAPServer", "IMAPServerFactory", "Limits", "Refused"]
