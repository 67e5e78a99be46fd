"""POP3 protocol handling over StringTransport with a task.Clock."""

from __future__ import annotations

import base64

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from portaum_tx.imap.pop3 import POP3Factory
from tests.imap.fakes import FakeAccounts


class FakeMailbox:
    def folder(self, name):
        from twisted.internet import defer
        return defer.succeed(type("Folder", (), {"uidvalidity": 7, "name": name})())

    def message_infos(self, folder):
        from twisted.internet import defer
        return defer.succeed([])


class FakeMailboxes:
    def open(self, account_id):
        from twisted.internet import defer
        return defer.succeed(FakeMailbox())


class POP3ProtocolTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.factory = POP3Factory(accounts=FakeAccounts(), mailboxes=FakeMailboxes(),
                                   clock=self.clock, allow_plaintext_auth=True,
                                   idle_timeout=600, failed_login_delay=1.5)
        self.server = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.server.makeConnection(self.transport)

    def send(self, data: bytes) -> list[bytes]:
        self.transport.clear()
        self.server.dataReceived(data)
        return self.transport.value().split(b"\r\n")[:-1]

    def test_auth_plain_with_and_without_initial_response(self):
        token = base64.b64encode(b"\x0012065557777\x00wrong").decode()
        self.assertEqual(self.send(f"AUTH PLAIN {token}\r\n".encode()), [])
        self.clock.advance(1.5)
        self.assertEqual(self.transport.value(), b"-ERR [AUTH] authentication failed\r\n")
        self.assertEqual(self.send(b"AUTH PLAIN\r\n"), [b"+ "])
        token = base64.b64encode(b"\x0012065557777\x00secret-1")
        self.assertEqual(self.send(token + b"\r\n"), [b"+OK 0 messages"])
        self.assertEqual(self.send(b"STAT\r\n"), [b"+OK 0 0"])

    def test_bad_input_gets_err_and_the_session_goes_on(self):
        cases = [(b"FROB\r\n", b"-ERR unknown command FROB"),
                 (b"STAT\r\n", b"-ERR STAT is not allowed now"),
                 (b"PASS x\r\n", b"-ERR USER first"),
                 (b"USER a b c\r\n", b"-ERR wrong number of arguments for USER"),
                 (b"AUTH PLAIN !!!\r\n", b"-ERR malformed PLAIN response"),
                 (b"\xff\xfe\r\n", b"-ERR commands are UTF-8 text")]
        for data, reply in cases:
            self.assertEqual(self.send(data), [reply], data)
        self.assertEqual(self.send(b"CAPA\r\n")[0], b"+OK capability list follows")

    def test_over_long_line_closes_and_idle_timeout(self):
        self.assertEqual(self.send(b"x" * 3000), [b"-ERR line too long; closing"])
        self.assertTrue(self.transport.disconnecting)
        server = self.factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        self.clock.advance(599)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)


class POP3FuzzTests(unittest.TestCase):
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.one_of(
        st.binary(max_size=80),
        st.sampled_from([b"USER 12065557777\r\n", b"PASS secret-1\r\n", b"STAT\r\n",
                         b"LIST 1\r\n", b"RETR 1\r\n", b"TOP 1 x\r\n", b"AUTH PLAIN\r\n",
                         b"*\r\n", b"DELE 0\r\n", b"QUIT\r\n", b"\r\n"])),
        max_size=15))
    def test_any_input_gets_answers_and_no_exception(self, chunks):
        from twisted.python import log as twisted_log
        errors = []
        observer = lambda event: errors.append(event) if event.get("isError") else None
        twisted_log.addObserver(observer)
        self.addCleanup(twisted_log.removeObserver, observer)
        clock = task.Clock()
        factory = POP3Factory(accounts=FakeAccounts(), mailboxes=FakeMailboxes(), clock=clock,
                              allow_plaintext_auth=True, failed_login_delay=0)
        server = factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        for chunk in chunks:
            if transport.disconnecting:
                break
            server.dataReceived(chunk)
            clock.advance(0)
        self.assertEqual(errors, [])
        server.connectionLost(None)
