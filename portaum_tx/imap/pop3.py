"""POP3 server (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH PLAIN), INBOX only.

The message list is the INBOX as it was at login; DELE only marks, and the
marked messages are expunged when the client QUITs (the UPDATE state), so a
dropped connection deletes nothing.  UIDL is ``<uidvalidity>-<uid>``, stable
across sessions for as long as the folder keeps its UIDVALIDITY.
"""

from __future__ import annotations

import base64
import binascii
import inspect

from twisted.internet import defer, protocol
from twisted.internet.interfaces import ISSLTransport, ITLSTransport
from twisted.logger import Logger

from ..accounts import LoginRefused
from ..mailbox.service import UnknownMailbox
from ..store import StoreUnavailable

log = Logger()

MAX_LINE = 1024


class POP3Error(Exception):
    """Answered with ``-ERR`` and this text; the session goes on."""


class POP3Factory(protocol.ServerFactory):
    def __init__(self, *, accounts, mailboxes, clock, tls_context=None, implicit_tls=False,
                 allow_plaintext_auth=False, idle_timeout: float = 600,
                 failed_login_delay: float = 2.0):
        self.accounts = accounts
        self.mailboxes = mailboxes
        self.clock = clock
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.allow_plaintext_auth = allow_plaintext_auth
        self.idle_timeout = idle_timeout
        self.failed_login_delay = failed_login_delay

    def buildProtocol(self, addr):
        session = POP3Server(self)
        session.factory = self
        return session


class POP3Server(protocol.Protocol):
    def __init__(self, factory: POP3Factory):
        self.factory = factory
        self.clock = factory.clock
        self.tls = factory.implicit_tls
        self.state = "authorization"
        self.user: str | None = None
        self.mailbox = None
        self.folder = None
        self.messages: list = []          # MessageInfo, numbered from 1
        self.deleted: set[int] = set()    # message numbers
        self._buffer = bytearray()
        self._busy = False
        self._closed = False
        self._timer = None
        self._sasl: defer.Deferred | None = None

    def connectionMade(self):
        if ISSLTransport(self.transport, None) is not None:
            self.tls = True
        self._timer = self.clock.callLater(self.factory.idle_timeout, self._timed_out)
        self._send("+OK portaum_tx POP3 ready")

    def connectionLost(self, reason=None):
        self._closed = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._sasl is not None:
            sasl, self._sasl = self._sasl, None
            sasl.errback(ConnectionError("connection closed"))

    def _timed_out(self):
        self._send("-ERR idle for too long; closing")
        self.transport.loseConnection()

    def _send(self, text: str | bytes):
        if not self._closed:
            data = text.encode("utf-8") if isinstance(text, str) else text
            self.transport.write(data + b"\r\n")

    def dataReceived(self, data: bytes):
        if self._timer is not None and self._timer.active():
            self._timer.reset(self.factory.idle_timeout)
        self._buffer += data
        self._process()

    def _process(self):
        while not self._closed:
            if self._busy and self._sasl is None:
                return
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer.clear()
                    self._send("-ERR line too long; closing")
                    self.transport.loseConnection()
                    self._closed = True
                return
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[:end + 1]
            if len(line) > MAX_LINE:
                self._send("-ERR line too long")
                continue
            if self._sasl is not None:
                sasl, self._sasl = self._sasl, None
                sasl.callback(line)
                continue
            self._busy = True
            d = defer.ensureDeferred(self._run(line))
            d.addErrback(lambda f: log.failure("POP3 command failed", f))
            if d.called:
                self._busy = False
            else:
                d.addBoth(self._done)

    def _done(self, _):
        self._busy = False
        self._process()

    async def _run(self, line: bytes):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._send("-ERR commands are UTF-8 text")
            return
        words = text.split(" ")
        name, args = words[0].upper(), [w for w in words[1:] if w]
        handler = getattr(self, f"do_{name}", None)
        if handler is None or not name.isalpha():
            self._send(f"-ERR unknown command {name[:20]}")
            return
        allowed = getattr(handler, "states", ("authorization", "transaction"))
        if self.state not in allowed:
            self._send(f"-ERR {name} is not allowed now")
            return
        try:
            inspect.signature(handler).bind(*args)
        except TypeError:
            self._send(f"-ERR wrong number of arguments for {name}")
            return
        try:
            await handler(*args)
        except POP3Error as exc:
            self._send(f"-ERR {exc}")
        except StoreUnavailable:
            self._send("-ERR [SYS/TEMP] the message store is unavailable; try again")
        except Exception:
            if self._closed:
                return  # the client went away mid-command
            log.failure("POP3 {name} failed", name=name)
            self._send("-ERR [SYS/TEMP] internal error")

    # --- authorization ---------------------------------------------------------------

    def _capabilities(self) -> list[str]:
        caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE",
                "IMPLEMENTATION portaum_tx"]
        if self.state == "authorization":
            if self.tls or self.factory.allow_plaintext_auth:
                caps += ["USER", "SASL PLAIN"]
            if not self.tls and self.factory.tls_context is not None and \
                    ITLSTransport(self.transport, None) is not None:
                caps.append("STLS")
        return caps

    async def do_CAPA(self):
        self._send("+OK capability list follows")
        for cap in self._capabilities():
            self._send(cap)
        self._send(".")

    async def do_STLS(self):
        if self.tls:
            raise POP3Error("TLS is already active")
        if self.factory.tls_context is None or ITLSTransport(self.transport, None) is None:
            raise POP3Error("TLS is not available")
        self._buffer.clear()
        self._send("+OK begin TLS negotiation")
        self.transport.startTLS(self.factory.tls_context)
        self.tls = True
    do_STLS.states = ("authorization",)

    def _check_privacy(self):
        if not self.tls and not self.factory.allow_plaintext_auth:
            raise POP3Error("[AUTH] use STLS before logging in")

    async def do_USER(self, name):
        self._check_privacy()
        self.user = name
        self._send("+OK send PASS")
    do_USER.states = ("authorization",)

    async def do_PASS(self, *words):
        self._check_privacy()
        if self.user is None:
            raise POP3Error("USER first")
        user, self.user = self.user, None
        await self._login(user, " ".join(words))
    do_PASS.states = ("authorization",)

    async def do_AUTH(self, mechanism=None, initial=None):
        if mechanism is None:
            self._send("+OK mechanisms follow")
            self._send("PLAIN")
            self._send(".")
            return
        if mechanism.upper() != "PLAIN":
            raise POP3Error("only AUTH PLAIN is supported")
        self._check_privacy()
        if initial is None:
            self._send("+ ")
            self._sasl = defer.Deferred()
            response = await self._sasl
        else:
            response = initial.encode("ascii", "replace")
        if response.strip() == b"*":
            raise POP3Error("authentication cancelled")
        try:
            _, user, password = base64.b64decode(response.strip(), validate=True).split(b"\0")
            await self._login(user.decode("utf-8"), password.decode("utf-8"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise POP3Error("malformed PLAIN response") from None
    do_AUTH.states = ("authorization",)

    async def _login(self, user: str, password: str):
        peer = getattr(self.transport.getPeer(), "host", None)
        try:
            account = await self.factory.accounts.authenticate(user, password, source=peer)
            mailbox = await self.factory.mailboxes.open(account.id)
        except (LoginRefused, UnknownMailbox):
            d = defer.Deferred()
            self.clock.callLater(self.factory.failed_login_delay, d.callback, None)
            await d
            raise POP3Error("[AUTH] authentication failed") from None
        self.mailbox = mailbox
        self.folder = await mailbox.folder("INBOX")
        self.messages = await mailbox.message_infos(self.folder)
        self.state = "transaction"
        self._send(f"+OK {len(self.messages)} messages")

    # --- transaction --------------------------------------------------------------------

    def _message(self, number: str):
        try:
            index = int(number)
        except ValueError:
            raise POP3Error(f"not a message number: {number[:20]}") from None
        if not 1 <= index <= len(self.messages) or index in self.deleted:
            raise POP3Error(f"no message {index}")
        return index, self.messages[index - 1]

    def _live(self):
        return [(i, info) for i, info in enumerate(self.messages, start=1)
                if i not in self.deleted]

    async def do_STAT(self):
        live = self._live()
        self._send(f"+OK {len(live)} {sum(info.size for _, info in live)}")
    do_STAT.states = ("transaction",)

    async def do_LIST(self, number=None):
        if number is not None:
            index, info = self._message(number)
            self._send(f"+OK {index} {info.size}")
            return
        self._send("+OK scan listing follows")
        self.transport.writeSequence([f"{i} {info.size}\r\n".encode() for i, info in self._live()])
        self._send(".")
    do_LIST.states = ("transaction",)

    def _uidl(self, info) -> str:
        return f"{self.folder.uidvalidity}-{info.uid}"

    async def do_UIDL(self, number=None):
        if number is not None:
            index, info = self._message(number)
            self._send(f"+OK {index} {self._uidl(info)}")
            return
        self._send("+OK unique-id listing follows")
        self.transport.writeSequence([f"{i} {self._uidl(info)}\r\n".encode()
                                      for i, info in self._live()])
        self._send(".")
    do_UIDL.states = ("transaction",)

    async def _data(self, info) -> bytes:
        data = (await self.mailbox.message_data(self.folder, [info.uid])).get(info.uid)
        if data is None:
            raise POP3Error("[SYS/TEMP] the message was removed by another session")
        return data

    def _send_multiline(self, data: bytes):
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        out = [(b"." + line if line.startswith(b".") else line).rstrip(b"\r") + b"\r\n"
               for line in lines]
        out.append(b".\r\n")
        self.transport.writeSequence(out)

    async def do_RETR(self, number):
        index, info = self._message(number)
        data = await self._data(info)
        self._send(f"+OK {info.size} octets")
        self._send_multiline(data)
        # Reading a message by POP3 counts as reading it (MWI lamps go off).
        await self.mailbox.set_flags(self.folder, [info.uid], ["\\Seen"], "add")
    do_RETR.states = ("transaction",)

    async def do_TOP(self, number, lines):
        index, info = self._message(number)
        try:
            count = int(lines)
            if count < 0:
                raise ValueError
        except ValueError:
            raise POP3Error("TOP needs a line count") from None
        data = await self._data(info)
        split = data.find(b"\r\n\r\n")
        cut = 4
        if split < 0:
            split, cut = data.find(b"\n\n"), 2
        if split < 0:
            head, body = data, b""
        else:
            head, body = data[:split + cut], data[split + cut:]
        body_lines = body.split(b"\n")[:count]
        self._send("+OK top of message follows")
        self._send_multiline(head + b"\n".join(body_lines) + (b"\n" if body_lines else b""))
    do_TOP.states = ("transaction",)

    async def do_DELE(self, number):
        index, _ = self._message(number)
        self.deleted.add(index)
        self._send(f"+OK message {index} deleted")
    do_DELE.states = ("transaction",)

    async def do_RSET(self):
        self.deleted.clear()
        self._send(f"+OK {len(self.messages)} messages")
    do_RSET.states = ("transaction",)

    async def do_NOOP(self):
        self._send("+OK")
    do_NOOP.states = ("transaction",)

    async def do_QUIT(self):
        if self.state == "transaction" and self.deleted:
            self.state = "update"
            uids = [self.messages[i - 1].uid for i in sorted(self.deleted)]
            try:
                await self.mailbox.expunge(self.folder, uids)
            except Exception:
                log.failure("POP3 update failed")
                self._send("-ERR [SYS/TEMP] some deleted messages were not removed")
                self.transport.loseConnection()
                return
        self._send("+OK bye")
        self.transport.loseConnection()
        self._closed = True
    do_QUIT.states = ("authorization", "transaction")
