"""POP3 driven by Python's poplib over loopback sockets, on both engines."""

from __future__ import annotations

import poplib

from twisted.internet import defer, reactor

from portaum_tx.imap.pop3 import POP3Factory
from tests.imap.support import PASSWORD, USER, MailNodeTestCase, client_tls, in_thread
from tests.support import on_both_engines


@on_both_engines
class POP3ClientTests(MailNodeTestCase):
    async def _open(self):
        await super()._open()
        self.factory = POP3Factory(accounts=self.accounts, mailboxes=self.mailboxes,
                                   clock=reactor, tls_context=self.tls_context,
                                   failed_login_delay=0.01)
        self.port = self.listen(self.factory)
        for number in range(1, 4):
            body = "".join(f"line {n}\r\n" for n in range(1, 6))
            await self.mailboxes.deliver(
                USER, f"Subject: m{number}\r\n\r\n{body}.starts with a dot\r\n".encode())

    def connect(self) -> poplib.POP3:
        client = poplib.POP3("127.0.0.1", self.port, timeout=20)
        client.stls(context=client_tls())
        client.user(USER)
        client.pass_(PASSWORD)
        return client

    @defer.inlineCallbacks
    def test_plaintext_login_is_refused_before_stls(self):
        def session():
            client = poplib.POP3("127.0.0.1", self.port, timeout=20)
            capabilities = client.capa()
            try:
                client.user(USER)
                refused = False
            except poplib.error_proto as exc:
                refused = b"STLS" in exc.args[0]
            client.stls(context=client_tls())
            after = client.capa()
            try:
                client.user(USER)
                client.pass_("wrong")
                wrong = False
            except poplib.error_proto:
                wrong = True
            client.user(USER)
            stat = client.pass_(PASSWORD)
            client.quit()
            return capabilities, refused, after, wrong, stat
        capabilities, refused, after, wrong, stat = yield in_thread(session)
        self.assertIn("STLS", capabilities)
        self.assertNotIn("USER", capabilities)
        self.assertTrue(refused)
        self.assertIn("USER", after)
        self.assertIn("SASL", after)
        self.assertTrue(wrong)
        self.assertEqual(stat, b"+OK 3 messages")

    @defer.inlineCallbacks
    def test_stat_list_uidl_top_retr_and_deletion_only_at_quit(self):
        def first_session():
            client = self.connect()
            result = {"stat": client.stat(), "list": client.list()[1], "uidl": client.uidl()[1],
                      "top": client.top(2, 2)[1], "retr": client.retr(1)[1]}
            client.dele(1)
            client.dele(3)
            result["stat_after_dele"] = client.stat()
            client.rset()
            result["stat_after_rset"] = client.stat()
            client.dele(1)
            try:
                client.retr(1)
                result["retr_deleted"] = "allowed"
            except poplib.error_proto as exc:
                result["retr_deleted"] = exc.args[0]
            try:
                client._shortcmd("LIST abc")
            except poplib.error_proto as exc:
                result["bad"] = exc.args[0]
            client.quit()
            return result
        r = yield in_thread(first_session)
        self.assertEqual(r["stat"][0], 3)
        self.assertEqual(len(r["list"]), 3)
        self.assertEqual(r["top"], [b"Subject: m2", b"", b"line 1", b"line 2"])
        self.assertEqual(r["retr"][-1], b".starts with a dot")
        self.assertEqual(r["stat_after_dele"][0], 1)
        self.assertEqual(r["stat_after_rset"][0], 3)
        self.assertTrue(r["retr_deleted"].startswith(b"-ERR"))
        self.assertTrue(r["bad"].startswith(b"-ERR"))

        def second_session():
            client = self.connect()
            uidl = client.uidl()[1]
            client.dele(1)
            # The connection drops without QUIT: nothing is deleted.
            client.sock.close()
            client = self.connect()
            still = client.stat()
            client.quit()
            return uidl, still
        uidl, still = yield in_thread(second_session)
        # UIDL is stable across sessions: the two messages left keep theirs.
        self.assertEqual([line.split()[1] for line in uidl],
                         [line.split()[1] for line in r["uidl"][1:]])
        self.assertEqual(still[0], 2)
        # Reading by POP3 marks the message \Seen.
        mailbox = yield defer.ensureDeferred(self.mailboxes.open(USER))
        inbox = yield defer.ensureDeferred(mailbox.folder("INBOX"))
        status = yield defer.ensureDeferred(mailbox.status("INBOX"))
        self.assertEqual(status["messages"], 2)
        self.assertEqual(inbox.name, "INBOX")
