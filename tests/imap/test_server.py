"""IMAP protocol handling over StringTransport with a task.Clock: framing,
limits, bad input, timeouts and login slowing."""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from portaum_tx.imap.server import IMAPServerFactory, Limits
from tests.imap.fakes import FakeAccounts, FakeEvents, FakeMailboxes


class IMAPFramingTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.accounts = FakeAccounts()
        self.factory = IMAPServerFactory(
            accounts=self.accounts, mailboxes=FakeMailboxes(), events=FakeEvents(),
            clock=self.clock, allow_plaintext_auth=True,
            limits=Limits(max_line=1000, max_string_literal=100, max_message_size=5000,
                          idle_timeout=600, unauth_timeout=60, failed_login_delay=2.0))
        self.server = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.server.makeConnection(self.transport)

    def send(self, data: bytes) -> list[bytes]:
        self.transport.clear()
        self.server.dataReceived(data)
        return self.transport.value().split(b"\r\n")[:-1]

    def test_greeting_states_capabilities(self):
        server = self.factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        greeting = transport.value()
        self.assertTrue(greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 LITERAL+"))
        self.assertIn(b"AUTH=PLAIN", greeting)
        server.connectionLost(None)

    def test_plaintext_login_refused_unless_configured(self):
        factory = IMAPServerFactory(accounts=self.accounts, mailboxes=FakeMailboxes(),
                                    events=FakeEvents(), clock=self.clock)
        server = factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        self.assertIn(b"LOGINDISABLED", transport.value())
        transport.clear()
        server.dataReceived(b"a1 LOGIN 12065557777 secret-1\r\n")
        self.assertEqual(transport.value(),
                         b"a1 NO [PRIVACYREQUIRED] use STARTTLS before logging in\r\n")
        self.assertEqual(self.accounts.attempts, [])
        transport.clear()
        server.dataReceived(b"a2 STARTTLS\r\n")
        self.assertEqual(transport.value(), b"a2 NO TLS is not available\r\n")
        server.connectionLost(None)

    def test_malformed_commands_get_bad_and_the_session_goes_on(self):
        cases = [(b"\r\n", b"* BAD missing or malformed tag"),
                 (b"a1\r\n", b"a1 BAD missing command"),
                 (b"a2 FROBNICATE\r\n", b"a2 BAD unknown command FROBNICATE"),
                 (b"a3 FETCH 1 FLAGS\r\n", b"a3 BAD FETCH is not allowed in the unauth state"),
                 (b'a4 LOGIN "unterminated\r\n', b"a4 BAD line break inside a quoted string"),
                 (b"a5 LOGIN (a b\r\n", b"a5 BAD unbalanced '(': missing ')'"),
                 (b"a6 LOGIN x\r\n", b"a6 BAD LOGIN needs a user name and a password"),
                 (b"a7 AUTHENTICATE CRAM-MD5\r\n", b"a7 NO only AUTHENTICATE PLAIN is supported"),
                 (b"a8 AUTHENTICATE PLAIN !!!\r\n", b"a8 BAD malformed PLAIN response")]
        for data, reply in cases:
            self.assertEqual(self.send(data), [reply], data)
        self.assertEqual(self.send(b"a9 NOOP\r\n"), [b"a9 OK NOOP completed"])
        self.assertTrue(self.transport.connected)

    def test_huge_synchronizing_literal_is_refused_unread(self):
        lines = self.send(b"a1 LOGIN {999999999}\r\n")
        self.assertEqual(lines, [b"a1 NO [TOOBIG] literal of 999999999 octets is over the limit "
                                 b"of 100"])
        self.assertEqual(len(self.server._buffer), 0)
        self.assertEqual(self.send(b"a2 NOOP\r\n"), [b"a2 OK NOOP completed"])

    def test_huge_non_synchronizing_literal_closes_the_connection(self):
        lines = self.send(b"a1 LOGIN {999999999+}\r\n" + b"x" * 5000)
        self.assertEqual(lines, [b"* BYE literal of 999999999 octets is over the limit"])
        self.assertTrue(self.transport.disconnecting)
        self.assertLess(len(self.server._command), 200)

    def test_over_long_line_is_refused(self):
        lines = self.send(b"a1 NOOP " + b"x" * 2000)
        self.assertEqual(lines, [b"* BYE line too long"])
        self.assertTrue(self.transport.disconnecting)

    def test_literals_synchronizing_and_plus(self):
        self.assertEqual(self.send(b"a1 LOGIN {11}\r\n"), [b"+ go ahead"])
        lines = self.send(b"12065557777 {8+}\r\nsecret-1\r\n")
        self.assertEqual(self.accounts.attempts, [("12065557777", "secret-1", "192.168.1.1")])
        self.assertTrue(lines[0].startswith(b"a1 OK [CAPABILITY IMAP4rev1"))

    def test_failed_login_answer_waits_on_the_clock(self):
        self.assertEqual(self.send(b"a1 LOGIN 12065557777 wrong\r\n"), [])
        self.clock.advance(1.9)
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0.2)
        self.assertEqual(self.transport.value(),
                         b"a1 NO [AUTHENTICATIONFAILED] invalid credentials\r\n")
        # Commands sent meanwhile waited their turn.
        self.assertEqual(self.send(b"a2 NOOP\r\n"), [b"a2 OK NOOP completed"])

    def test_idle_timeout_before_and_after_login(self):
        self.clock.advance(59)
        self.assertTrue(self.transport.connected and not self.transport.disconnecting)
        self.server.dataReceived(b"a1 NOOP\r\n")
        self.clock.advance(59)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(self.transport.value().endswith(b"* BYE idle for too long; closing\r\n"))
        self.assertTrue(self.transport.disconnecting)

    def test_logged_in_session_gets_the_longer_timeout(self):
        self.send(b"a1 LOGIN 12065557777 secret-1\r\n")
        self.clock.advance(599)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(self.transport.disconnecting)

    def test_append_literal_limit_is_the_message_size(self):
        self.send(b"a1 LOGIN 12065557777 secret-1\r\n")
        self.assertEqual(self.send(b"a2 APPEND INBOX {4000}\r\n"), [b"+ go ahead"])
        self.server._literal_left = 0
        self.server._command.clear()
        self.assertEqual(self.send(b"a3 APPEND INBOX {6000}\r\n"),
                         [b"a3 NO [TOOBIG] literal of 6000 octets is over the limit of 5000"])

    def test_long_line_within_the_buffer_gets_a_tagged_bad(self):
        self.server.limits.max_line = 100
        lines = self.send(b"a1 LOGIN " + b"x" * 200 + b" y\r\na2 NOOP\r\n")
        self.assertEqual(lines, [b"a1 BAD line too long (limit 100 octets)",
                                 b"a2 OK NOOP completed"])

    def test_nothing_is_answered_after_logout(self):
        lines = self.send(b"a1 LOGOUT\r\na2 NOOP\r\n")
        self.assertEqual(lines, [b"* BYE logging out", b"a1 OK LOGOUT completed"])


class IMAPFuzzTests(unittest.TestCase):
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.one_of(
        st.binary(max_size=80),
        st.sampled_from([b"a1 LOGIN 12065557777 secret-1\r\n", b"a2 NOOP\r\n", b"a3 {5}\r\n",
                         b"a4 {5+}\r\n", b"abcde\r\n", b"a5 SELECT INBOX\r\n", b"DONE\r\n",
                         b"a6 AUTHENTICATE PLAIN\r\n", b"*\r\n", b"\r\n"])),
        max_size=15))
    def test_any_input_gets_answers_and_no_exception(self, chunks):
        from twisted.python import log as twisted_log
        errors = []
        observer = lambda event: errors.append(event) if event.get("isError") else None
        twisted_log.addObserver(observer)
        self.addCleanup(twisted_log.removeObserver, observer)
        clock = task.Clock()
        factory = IMAPServerFactory(accounts=FakeAccounts(), mailboxes=FakeMailboxes(),
                                    events=FakeEvents(), clock=clock, allow_plaintext_auth=True,
                                    limits=Limits(max_line=200, max_string_literal=50,
                                                  failed_login_delay=0))
        server = factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        for chunk in chunks:
            if transport.disconnecting:
                break
            server.dataReceived(chunk)
            clock.advance(0)
        for line in transport.value().split(b"\r\n")[:-1]:
            self.assertRegex(line, rb"^(\* |\+ |[^ ]+ (OK|NO|BAD) )")
        self.assertEqual(errors, [])
        server.connectionLost(None)


class IMAPShutdownTests(unittest.TestCase):
    def test_front_end_stop_says_bye_to_every_session(self):
        from twisted.internet import defer
        from portaum_tx.imap.frontend import IMAPFrontend
        clock = task.Clock()
        factory = IMAPServerFactory(accounts=FakeAccounts(), mailboxes=FakeMailboxes(),
                                    events=FakeEvents(), clock=clock)
        frontend = IMAPFrontend()
        frontend.factories = [factory]
        transports = []
        for _ in range(2):
            server = factory.buildProtocol(None)
            transport = StringTransport()
            server.makeConnection(transport)
            transports.append(transport)
        defer.ensureDeferred(frontend.stop())
        for transport in transports:
            self.assertTrue(transport.value().endswith(b"* BYE server shutting down\r\n"))
            self.assertTrue(transport.disconnecting)
