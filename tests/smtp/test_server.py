"""SMTP protocol handling over StringTransport with a task.Clock."""

from __future__ import annotations

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from portaum_tx.smtp.server import SMTPServerFactory
from tests.imap.fakes import FakeAccounts, FakeMailboxes


class SMTPProtocolTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.mailboxes = FakeMailboxes()
        self.factory = SMTPServerFactory(
            role="mx", mailboxes=self.mailboxes, accounts=FakeAccounts(), clock=self.clock,
            hostname="mx.example.net", local_domains={"example.net"}, max_message_size=2000,
            idle_timeout=300)
        self.server = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.server.makeConnection(self.transport)

    def send(self, data: bytes) -> list[bytes]:
        self.transport.clear()
        self.server.dataReceived(data)
        return self.transport.value().split(b"\r\n")[:-1]

    def test_pipelined_transaction_answers_in_order(self):
        lines = self.send(b"EHLO client.example\r\nMAIL FROM:<a@example.org> BODY=8BITMIME\r\n"
                          b"RCPT TO:<rachel@example.net>\r\nDATA\r\nSubject: hi\r\n\r\n"
                          b"..leading dot\r\n.\r\nQUIT\r\n")
        codes = [line[:4] for line in lines if line[3:4] == b" "]
        self.assertEqual(codes, [b"250 ", b"250 ", b"250 ", b"354 ", b"250 ", b"221 "])
        self.assertEqual(len(self.mailboxes.delivered), 1)
        account, data = self.mailboxes.delivered[0]
        self.assertEqual(account, "12065557777")
        self.assertTrue(data.startswith(b"Received: from client.example"))
        self.assertTrue(data.endswith(b"Subject: hi\r\n\r\n.leading dot\r\n"))

    def test_bad_commands_get_5xx_and_the_session_goes_on(self):
        self.send(b"EHLO client.example\r\n")
        cases = [(b"FROB\r\n", b"500 5.5.1 unknown command FROB"),
                 (b"MAIL TO:<a@b.example>\r\n", b"501 5.5.4 syntax: MAIL FROM:<address> "
                                                b"[parameters]"),
                 (b"RCPT TO:<rachel@example.net>\r\n", b"503 5.5.1 MAIL first"),
                 (b"MAIL FROM:<a@b.example> SIZE=x\r\n", b"501 5.5.4 SIZE needs a number"),
                 (b"MAIL FROM:<a@b.example> FOO=1\r\n", b"555 5.5.4 unsupported parameter FOO"),
                 (b"DATA\r\n", b"503 5.5.1 need MAIL and RCPT first"),
                 (b"AUTH PLAIN AGEAYg==\r\n", b"503 5.5.1 AUTH is offered on the submission "
                                              b"port only"),
                 (b"HELO bad\r\nX-Injected: yes\r\n", None)]
        for data, reply in cases:
            lines = self.send(data)
            if reply is not None:
                self.assertEqual(lines, [reply], data)
            else:
                self.assertEqual(lines, [b"250 mx.example.net greets bad",
                                         b"500 unknown command X-Injected:"])
        self.assertTrue(self.transport.connected and not self.transport.disconnecting)

    def test_message_over_the_size_limit_is_refused_after_data(self):
        self.send(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<rachel@example.net>\r\n"
                  b"DATA\r\n")
        lines = self.send(b"Subject: big\r\n\r\n" + b"x" * 900 + b"\r\n" + b"y" * 1500 + b"\r\n.\r\n")
        self.assertEqual(lines, [b"552 5.3.4 message size exceeds the fixed maximum"])
        self.assertEqual(self.mailboxes.delivered, [])
        self.assertLess(len(self.server._buffer), 10)
        self.assertEqual(self.send(b"NOOP\r\n"), [b"250 2.0.0 OK"])

    def test_relay_is_refused(self):
        self.send(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\n")
        lines = self.send(b"RCPT TO:<victim@elsewhere.example>\r\n")
        self.assertEqual(lines, [b"550 5.1.1 no mailbox here by the name "
                                 b"<victim@elsewhere.example>; relaying denied"])

    def test_idle_timeout_on_the_clock(self):
        self.clock.advance(299)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(2)
        self.assertEqual(self.transport.value().split(b"\r\n")[-2],
                         b"421 mx.example.net idle for too long; closing")
        self.assertTrue(self.transport.disconnecting)

    def test_submission_refuses_auth_in_the_clear_and_mail_without_auth(self):
        factory = SMTPServerFactory(role="submission", mailboxes=self.mailboxes,
                                    accounts=FakeAccounts(), clock=self.clock,
                                    hostname="mx.example.net")
        server = factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        transport.clear()
        server.dataReceived(b"EHLO c.example\r\nAUTH PLAIN AHUAcA==\r\nMAIL FROM:<a@b.example>\r\n")
        lines = transport.value().split(b"\r\n")
        self.assertNotIn(b"250-AUTH PLAIN LOGIN", lines)
        self.assertIn(b"538 5.7.11 encryption required; use STARTTLS first", lines)
        self.assertIn(b"530 5.7.0 authentication required", lines)

    def test_plaintext_auth_login_when_allowed_and_failure_waits(self):
        factory = SMTPServerFactory(role="submission", mailboxes=self.mailboxes,
                                    accounts=FakeAccounts(), clock=self.clock,
                                    hostname="mx.example.net", allow_plaintext_auth=True,
                                    failed_login_delay=3)
        server = factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        transport.clear()
        server.dataReceived(b"EHLO c.example\r\nAUTH LOGIN\r\ndXNlcg==\r\nd3Jvbmc=\r\n")
        self.assertTrue(transport.value().endswith(b"334 UGFzc3dvcmQ6\r\n"))
        transport.clear()
        self.clock.advance(3)
        self.assertEqual(transport.value(), b"535 5.7.8 authentication failed\r\n")
        transport.clear()
        server.dataReceived(b"AUTH PLAIN AHVzZXIAc2VjcmV0LTE=\r\n")
        self.assertEqual(transport.value(), b"235 2.7.0 authenticated\r\n")


class SMTPFuzzTests(unittest.TestCase):
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.one_of(
        st.binary(max_size=80),
        st.sampled_from([b"EHLO a.example\r\n", b"MAIL FROM:<a@b.example>\r\n",
                         b"RCPT TO:<rachel@example.net>\r\n", b"DATA\r\n", b".\r\n",
                         b"RSET\r\n", b"AUTH LOGIN\r\n", b"STARTTLS\r\n", b"\r\n", b"\n"])),
        max_size=15))
    def test_any_input_gets_replies_and_no_exception(self, chunks):
        from twisted.python import log as twisted_log
        errors = []
        observer = lambda event: errors.append(event) if event.get("isError") else None
        twisted_log.addObserver(observer)
        self.addCleanup(twisted_log.removeObserver, observer)
        clock = task.Clock()
        factory = SMTPServerFactory(role="mx", mailboxes=FakeMailboxes(), accounts=FakeAccounts(),
                                    clock=clock, hostname="mx.example.net",
                                    local_domains={"example.net"}, max_message_size=2000)
        server = factory.buildProtocol(None)
        transport = StringTransport()
        server.makeConnection(transport)
        for chunk in chunks:
            if transport.disconnecting:
                break
            server.dataReceived(chunk)
        for line in transport.value().split(b"\r\n")[:-1]:
            self.assertRegex(line, rb"^[2345]\d\d[ -]")
        self.assertEqual(errors, [])
        server.connectionLost(None)
