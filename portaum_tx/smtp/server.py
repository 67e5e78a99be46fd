"""SMTP server: inbound mail for local mailboxes (MX role, RFC 5321) and
authenticated submission (RFC 6409).

Extensions: SIZE, 8BITMIME, PIPELINING, ENHANCEDSTATUSCODES, STARTTLS, AUTH
PLAIN/LOGIN (submission only).  Commands run in order, one at a time, so
pipelined MAIL/RCPT/DATA see each other's results.  A message is committed
to the store (or to the outbound queue) before the 250 that ends DATA.

End of data is recognised only as CRLF.CRLF: a bare LF never ends a line of
the message for dot detection, so a message cannot smuggle a second one
past this server (it is stored with its bare LFs turned into CRLF).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.utils
import re
import uuid

from twisted.internet import defer, protocol
from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.logger import Logger

from ..accounts import LoginRefused
from ..mailbox.service import MailboxFull, UnknownMailbox
from ..store import NotFound, StoreUnavailable
from .local import local_account

log = Logger()

MAX_COMMAND_LINE = 2048
MAX_DATA_LINE = 64 * 1024
MAX_RECIPIENTS = 100

_ADDRESS = re.compile(r"[^\s<>()\[\],;:\"\\@]+(?:\.[^\s<>()\[\],;:\"\\@]+)*@"
                      r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_PATH = re.compile(r"(FROM|TO):\s*<([^<>\r\n]*)>(.*)", re.IGNORECASE)
_HELO = re.compile(r"[A-Za-z0-9.\-:\[\]_]{1,255}")


class Reply(Exception):
    """An SMTP reply to send instead of going on: ``Reply(550, "5.1.1", "text")``."""

    def __init__(self, code: int, status: str, text: str):
        super().__init__(f"{code} {status} {text}")
        self.code, self.status, self.text = code, status, text


@dataclasses.dataclass
class Envelope:
    sender: str | None = None
    recipients: list = dataclasses.field(default_factory=list)   # (address, account_id or None)
    declared_size: int = 0


class SMTPServerFactory(protocol.ServerFactory):
    """``role`` is ``"mx"`` (local delivery only, no relaying) or ``"submission"``."""

    def __init__(self, *, role: str, mailboxes, accounts, clock, hostname: str,
                 local_domains=(), outbound=None, tls_context=None, implicit_tls=False,
                 allow_plaintext_auth=False, max_message_size=25 * 1024 * 1024,
                 idle_timeout: float = 300, failed_login_delay: float = 2.0):
        if role not in ("mx", "submission"):
            raise ValueError(f"unknown SMTP role {role!r}")
        self.role = role
        self.mailboxes = mailboxes
        self.accounts = accounts
        self.clock = clock
        self.hostname = hostname
        self.local_domains = {d.lower() for d in local_domains if d}
        self.outbound = outbound
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.allow_plaintext_auth = allow_plaintext_auth
        self.max_message_size = max_message_size
        self.idle_timeout = idle_timeout
        self.failed_login_delay = failed_login_delay
        self.sessions: set = set()

    def buildProtocol(self, addr):
        session = SMTPServer(self)
        session.factory = self
        return session


class SMTPServer(protocol.Protocol):
    def __init__(self, factory: SMTPServerFactory):
        self.factory = factory
        self.clock = factory.clock
        self.tls = factory.implicit_tls
        self.helo: str | None = None
        self.esmtp = False
        self.account = None          # the authenticated account (submission)
        self.envelope = Envelope()
        self._buffer = bytearray()
        self._busy = False
        self._closed = False
        self._data: bytearray | None = None
        self._data_size = 0
        self._data_too_big = False
        self._data_line_too_long = False
        self._sasl: defer.Deferred | None = None
        self._timer = None

    # --- connection ---------------------------------------------------------------

    def connectionMade(self):
        self.factory.sessions.add(self)
        if ISSLTransport(self.transport, None) is not None:
            self.tls = True
        self._timer = self.clock.callLater(self.factory.idle_timeout, self._timed_out)
        self._reply(220, None, f"{self.factory.hostname} ESMTP portaum_tx")

    def connectionLost(self, reason=None):
        self._closed = True
        self.factory.sessions.discard(self)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._sasl is not None:
            sasl, self._sasl = self._sasl, None
            sasl.errback(ConnectionError("connection closed"))

    def _timed_out(self):
        self._reply(421, "4.4.2", f"{self.factory.hostname} idle for too long; closing")
        self.transport.loseConnection()

    def _reply(self, code: int, status: str | None, text: str, more: list[str] = ()):
        if self._closed:
            return
        lines = [text] + list(more)
        out = []
        for index, line in enumerate(lines):
            separator = " " if index == len(lines) - 1 else "-"
            prefix = f"{status} " if status and self.esmtp and index == 0 else ""
            out.append(f"{code}{separator}{prefix}{line}\r\n".encode("utf-8", "replace"))
        self.transport.writeSequence(out)

    # --- input ----------------------------------------------------------------------

    def dataReceived(self, data: bytes):
        if self._timer is not None and self._timer.active():
            self._timer.reset(self.factory.idle_timeout)
        self._buffer += data
        self._process()

    def _process(self):
        while not self._closed:
            if self._busy and self._sasl is None:
                return
            if self._data is not None:
                if not self._take_data():
                    return
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_COMMAND_LINE:
                    self._buffer.clear()
                    self._reply(500, "5.5.2", "line too long; closing")
                    self.transport.loseConnection()
                    self._closed = True
                return
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[:end + 1]
            if len(line) > MAX_COMMAND_LINE:
                self._reply(500, "5.5.2", "line too long")
                continue
            if self._sasl is not None:
                sasl, self._sasl = self._sasl, None
                sasl.callback(line)
                continue
            self._busy = True
            d = defer.ensureDeferred(self._command(line))
            d.addErrback(self._failed)
            if d.called:
                self._busy = False
            else:
                d.addBoth(self._done)
            # The loop stops at its top unless the command waits for a
            # SASL response, which must be read now.

    def _done(self, _):
        self._busy = False
        self._process()

    def _failed(self, failure):
        if self._closed:
            return  # the client went away mid-command (an AUTH exchange, say)
        log.failure("SMTP command failed", failure)
        self._reply(451, "4.3.0", "local error; try again later")

    def _take_data(self) -> bool:
        """Consume message lines; True when the end of data was reached."""
        while True:
            end = self._buffer.find(b"\r\n")
            if end < 0:
                if len(self._buffer) > MAX_DATA_LINE:
                    # Keep only the tail that could still hold the CRLF.
                    self._data_line_too_long = True
                    del self._buffer[:-1]
                return False
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 2]
            if line == b".":
                break
            if line.startswith(b"."):
                line = line[1:]
            if b"\n" in line or b"\r" in line:
                line = re.sub(rb"\r?\n|\r", b"\r\n", line)
            self._data_size += len(line) + 2
            if self._data_size > self.factory.max_message_size:
                self._data_too_big = True
            elif len(line) > MAX_DATA_LINE:
                self._data_line_too_long = True
            if not self._data_too_big:
                self._data += line + b"\r\n"
        data = bytes(self._data)
        self._data = None
        self._busy = True
        d = defer.ensureDeferred(self._end_of_data(data))
        d.addErrback(self._failed)
        if d.called:
            self._busy = False
        else:
            d.addBoth(self._done)
        return True

    # --- commands ---------------------------------------------------------------------

    async def _command(self, line: bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._reply(500, "5.5.2", "commands are ASCII text")
            return
        name, _, argument = text.strip().partition(" ")
        handler = getattr(self, "do_" + name.upper(), None) if name.isalpha() else None
        if handler is None:
            self._reply(500, "5.5.1", f"unknown command {name[:20]}")
            return
        try:
            await handler(argument.strip())
        except Reply as reply:
            self._reply(reply.code, reply.status, reply.text)
        except StoreUnavailable:
            self._reply(451, "4.3.0", "message store unavailable; try again later")

    def _extensions(self) -> list[str]:
        extensions = [f"SIZE {self.factory.max_message_size}", "8BITMIME", "PIPELINING",
                      "ENHANCEDSTATUSCODES"]
        if not self.tls and self.factory.tls_context is not None and \
                ITLSTransport(self.transport, None) is not None:
            extensions.append("STARTTLS")
        if self.factory.role == "submission" and self.account is None and (
                self.tls or self.factory.allow_plaintext_auth):
            extensions.append("AUTH PLAIN LOGIN")
        return extensions

    async def do_EHLO(self, argument):
        await self.do_HELO(argument, esmtp=True)

    async def do_HELO(self, argument, esmtp=False):
        if not _HELO.fullmatch(argument or ""):
            raise Reply(501, "5.5.4", "HELO/EHLO needs a domain name or address literal")
        self.helo = argument
        self.esmtp = esmtp
        self.envelope = Envelope()
        greeting = f"{self.factory.hostname} greets {argument}"
        if esmtp:
            self._reply(250, None, greeting, self._extensions())
        else:
            self._reply(250, None, greeting)

    async def do_STARTTLS(self, argument):
        if self.tls:
            raise Reply(503, "5.5.1", "TLS is already active")
        if self.factory.tls_context is None or ITLSTransport(self.transport, None) is None:
            raise Reply(454, "4.7.0", "TLS not available")
        # Commands pipelined after STARTTLS came in the clear: drop them.
        self._buffer.clear()
        self._reply(220, "2.0.0", "ready to start TLS")
        self.transport.startTLS(self.factory.tls_context)
        self.tls = True
        self.helo = None
        self.envelope = Envelope()

    async def do_AUTH(self, argument):
        if self.factory.role != "submission":
            raise Reply(503, "5.5.1", "AUTH is offered on the submission port only")
        if self.account is not None:
            raise Reply(503, "5.5.1", "already authenticated")
        if not self.tls and not self.factory.allow_plaintext_auth:
            raise Reply(538, "5.7.11", "encryption required; use STARTTLS first")
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.upper()
        if mechanism == "PLAIN":
            response = initial.encode() if initial else await self._challenge(b"")
            try:
                _, user, password = base64.b64decode(response, validate=True).split(b"\0")
                user_text, password_text = user.decode("utf-8"), password.decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise Reply(501, "5.5.2", "malformed PLAIN response") from None
        elif mechanism == "LOGIN":
            try:
                user_text = base64.b64decode(
                    initial.encode() if initial else await self._challenge(b"Username:"),
                    validate=True).decode("utf-8")
                password_text = base64.b64decode(await self._challenge(b"Password:"),
                                                 validate=True).decode("utf-8")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise Reply(501, "5.5.2", "malformed LOGIN response") from None
        else:
            raise Reply(504, "5.5.4", "AUTH mechanisms: PLAIN LOGIN")
        peer = getattr(self.transport.getPeer(), "host", None)
        try:
            self.account = await self.factory.accounts.authenticate(user_text, password_text,
                                                                    source=peer)
        except LoginRefused:
            d = defer.Deferred()
            self.clock.callLater(self.factory.failed_login_delay, d.callback, None)
            await d
            raise Reply(535, "5.7.8", "authentication failed") from None
        self._reply(235, "2.7.0", "authenticated")

    async def _challenge(self, prompt: bytes) -> bytes:
        self._reply(334, None, base64.b64encode(prompt).decode())
        self._sasl = defer.Deferred()
        response = await self._sasl
        if response.strip() == b"*":
            raise Reply(501, "5.7.0", "authentication cancelled")
        return response.strip()

    async def do_MAIL(self, argument):
        if self.helo is None:
            raise Reply(503, "5.5.1", "say EHLO first")
        if self.envelope.sender is not None:
            raise Reply(503, "5.5.1", "one sender per message")
        if self.factory.role == "submission" and self.account is None:
            raise Reply(530, "5.7.0", "authentication required")
        match = _PATH.fullmatch(argument)
        if not match or match.group(1).upper() != "FROM":
            raise Reply(501, "5.5.4", "syntax: MAIL FROM:<address> [parameters]")
        address = match.group(2)
        if address and not _ADDRESS.fullmatch(address):
            raise Reply(501, "5.1.7", f"bad sender address <{address[:100]}>")
        size = 0
        for parameter in match.group(3).split():
            key, _, value = parameter.partition("=")
            key = key.upper()
            if key == "SIZE":
                if not value.isdigit():
                    raise Reply(501, "5.5.4", "SIZE needs a number")
                size = int(value)
                if size > self.factory.max_message_size:
                    raise Reply(552, "5.3.4", "message size exceeds the fixed maximum")
            elif key == "BODY":
                if value.upper() not in ("7BIT", "8BITMIME"):
                    raise Reply(501, "5.5.4", "BODY is 7BIT or 8BITMIME")
            elif key == "AUTH":
                continue
            else:
                raise Reply(555, "5.5.4", f"unsupported parameter {key[:20]}")
        if self.factory.role == "submission" and address and not self._may_send_as(address):
            raise Reply(553, "5.7.1", f"you may not send as <{address}>")
        self.envelope = Envelope(sender=address, declared_size=size)
        self._reply(250, "2.1.0", "sender OK")

    def _may_send_as(self, address: str) -> bool:
        account = self.account
        local, _, domain = address.lower().rpartition("@")
        if account.email and address.lower() == account.email.lower():
            return True
        return local == account.id.lower() and domain in self.factory.local_domains

    async def do_RCPT(self, argument):
        if self.envelope.sender is None:
            raise Reply(503, "5.5.1", "MAIL first")
        match = _PATH.fullmatch(argument)
        if not match or match.group(1).upper() != "TO" or match.group(3).strip():
            raise Reply(501, "5.5.4", "syntax: RCPT TO:<address>")
        address = match.group(2)
        if not _ADDRESS.fullmatch(address):
            raise Reply(553, "5.1.3", f"bad recipient address <{address[:100]}>")
        if len(self.envelope.recipients) >= MAX_RECIPIENTS:
            raise Reply(452, "4.5.3", "too many recipients")
        account_id = await self._local_account(address)
        if account_id is None and self.factory.role == "mx":
            raise Reply(550, "5.1.1", f"no mailbox here by the name <{address}>; relaying denied")
        if account_id is not None:
            await self._check_quota(account_id)
        self.envelope.recipients.append((address, account_id))
        self._reply(250, "2.1.5", "recipient OK")

    async def _local_account(self, address: str) -> str | None:
        factory = self.factory
        return await local_account(factory.mailboxes, factory.accounts, factory.local_domains,
                                   address)

    async def _check_quota(self, account_id: str):
        size = self.envelope.declared_size
        if not size:
            return
        mailbox = await self.factory.mailboxes.open(account_id)
        used, quota = await mailbox.quota()
        if size > quota:
            raise Reply(552, "5.2.2", "message is larger than the mailbox")
        if used + size > quota:
            raise Reply(452, "4.2.2", "mailbox is full; try again later")

    async def do_DATA(self, argument):
        if self.envelope.sender is None or not self.envelope.recipients:
            raise Reply(503, "5.5.1", "need MAIL and RCPT first")
        self._data = bytearray()
        self._data_size = 0
        self._data_too_big = False
        self._data_line_too_long = False
        self._reply(354, None, "end data with <CR><LF>.<CR><LF>")

    async def _end_of_data(self, data: bytes):
        envelope, self.envelope = self.envelope, Envelope()
        try:
            if self._data_too_big:
                raise Reply(552, "5.3.4", "message size exceeds the fixed maximum")
            if self._data_line_too_long:
                raise Reply(500, "5.5.2", "a line of the message is too long")
            if self.factory.role == "mx":
                await self._deliver_inbound(envelope, data)
            else:
                await self._submit(envelope, data)
        except Reply as reply:
            self._reply(reply.code, reply.status, reply.text)
        except StoreUnavailable:
            self._reply(451, "4.3.0", "message store unavailable; try again later")

    def _received(self, recipient: str | None) -> bytes:
        peer = self.transport.getPeer()
        host = getattr(peer, "host", "unknown")
        protocol_name = "ESMTP" if self.esmtp else "SMTP"
        if self.tls:
            protocol_name += "S"
        if self.account is not None:
            protocol_name += "A"
        identifier = uuid.uuid4().hex[:16]
        stamp = email.utils.formatdate(self.clock.seconds(), localtime=False)
        recipient_part = f"\r\n\tfor <{recipient}>" if recipient else ""
        return (f"Received: from {self.helo} ([{host}])\r\n\tby {self.factory.hostname} "
                f"(portaum_tx) with {protocol_name} id {identifier}{recipient_part};\r\n"
                f"\t{stamp}\r\n").encode("ascii", "replace")

    async def _deliver_inbound(self, envelope: Envelope, data: bytes):
        delivered, full, failed = [], [], []
        for address, account_id in envelope.recipients:
            message = self._received(address) + data
            try:
                await self.factory.mailboxes.deliver(account_id, message, kind="email")
                delivered.append(address)
            except MailboxFull as exc:
                full.append((address, exc))
            except UnknownMailbox:
                failed.append(address)
        if delivered:
            if (full or failed) and self.factory.outbound is not None and envelope.sender:
                # Some recipients have it; the others are told to the sender
                # by a bounce, as SMTP has one reply for DATA.
                await self.factory.outbound.bounce(
                    envelope.sender, [a for a, _ in full] + failed, data,
                    "552 5.2.2 mailbox full")
            self._reply(250, "2.0.0", "message accepted for delivery")
            return
        if full:
            too_big = any(len(data) > exc.quota for _, exc in full)
            if too_big:
                raise Reply(552, "5.2.2", "message is larger than the mailbox")
            raise Reply(452, "4.2.2", "mailbox is full; try again later")
        raise Reply(550, "5.1.1", "no such mailbox")

    async def _submit(self, envelope: Envelope, data: bytes):
        data = _complete_headers(data, envelope.sender, self.factory.hostname, self.clock)
        message = self._received(None) + data
        local = [(a, i) for a, i in envelope.recipients if i is not None]
        remote = [a for a, i in envelope.recipients if i is None]
        if remote:
            if self.factory.outbound is None:
                raise Reply(451, "4.3.0", "outbound mail is not available")
            await self.factory.outbound.enqueue(envelope.sender, remote, message)
        for address, account_id in local:
            try:
                await self.factory.mailboxes.deliver(account_id, message, kind="email")
            except MailboxFull:
                if self.factory.outbound is not None and envelope.sender:
                    await self.factory.outbound.bounce(envelope.sender, [address], data,
                                                       "552 5.2.2 mailbox full")
        try:
            mailbox = await self.factory.mailboxes.open(self.account.id)
            await mailbox.append("Sent", data, ["\\Seen"])
        except (MailboxFull, NotFound, UnknownMailbox) as exc:
            # The message went out; only the copy is missing.
            log.info("no Sent copy for {account}: {why}", account=self.account.id, why=exc)
        self._reply(250, "2.0.0", "message accepted for delivery")

    async def do_RSET(self, argument):
        self.envelope = Envelope()
        self._reply(250, "2.0.0", "reset")

    async def do_NOOP(self, argument):
        self._reply(250, "2.0.0", "OK")

    async def do_VRFY(self, argument):
        self._reply(252, "2.5.0", "cannot verify; send the message and see")

    async def do_HELP(self, argument):
        self._reply(214, "2.0.0", "see RFC 5321")

    async def do_QUIT(self, argument):
        self._reply(221, "2.0.0", f"{self.factory.hostname} closing")
        self.transport.loseConnection()
        self._closed = True


def _complete_headers(data: bytes, sender: str, hostname: str, clock) -> bytes:
    """Add Date and Message-ID when a submitting client left them out."""
    end = data.find(b"\r\n\r\n")
    header = data[:end + 2] if end >= 0 else data
    names = {line.split(b":", 1)[0].strip().lower()
             for line in header.split(b"\r\n") if line and line[:1] not in (b" ", b"\t")}
    extra = b""
    if b"date" not in names:
        extra += b"Date: " + email.utils.formatdate(clock.seconds()).encode() + b"\r\n"
    if b"message-id" not in names:
        extra += f"Message-ID: <{uuid.uuid4().hex}@{hostname}>\r\n".encode()
    if end < 0 and not data.startswith(b"\r\n"):
        # No header/body separator at all: everything is body.
        return extra + b"\r\n" + data if extra else data
    return extra + data
