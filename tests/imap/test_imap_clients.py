"""IMAP4rev1 driven by Python's imaplib over real loopback sockets, on both engines."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import imaplib

from twisted.internet import defer, reactor

from portaum_tx.imap.server import IMAPServerFactory, Limits
from tests.imap.support import (PASSWORD, USER, MailNodeTestCase, client_tls, in_thread,
                                raw_command, wait_until)
from tests.support import POSTGRES_DSN, on_both_engines

AUDIO = bytes(range(256)) * 40 + b"RIFF-tail\r\n.\r\n"


@on_both_engines
class IMAPClientTests(MailNodeTestCase):
    async def _open(self):
        await super()._open()
        self.factory = IMAPServerFactory(
            accounts=self.accounts, mailboxes=self.mailboxes, events=self.events, clock=reactor,
            tls_context=self.tls_context, limits=Limits(failed_login_delay=0.01))
        self.port = self.listen(self.factory)
        self.tls_port = self.listen(IMAPServerFactory(
            accounts=self.accounts, mailboxes=self.mailboxes, events=self.events, clock=reactor,
            tls_context=self.tls_context, implicit_tls=True,
            limits=Limits(failed_login_delay=0.01)), implicit_tls=True)

    def connect(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=client_tls(),
                                   timeout=20)
        client.login(USER, PASSWORD)
        return client

    async def deliver_voice(self):
        when = dt.datetime(2026, 3, 5, 17, 30, tzinfo=dt.timezone.utc)
        return await self.mailboxes.deliver_voice(USER, audio=AUDIO, audio_format="wav",
                                                  duration=12, caller="12065558888",
                                                  caller_name="Mark", when=when)

    @defer.inlineCallbacks
    def test_login_refused_before_starttls_and_accepted_after(self):
        def session():
            client = imaplib.IMAP4("127.0.0.1", self.port, timeout=20)
            before = client.capabilities
            try:
                client.login(USER, PASSWORD)
                refused = False
            except imaplib.IMAP4.error as exc:
                refused = "PRIVACYREQUIRED" in str(exc)
            client.starttls(ssl_context=client_tls())
            after = client.capabilities
            typ, _ = client.login(USER, PASSWORD)
            client.logout()
            return before, refused, after, typ
        before, refused, after, typ = yield in_thread(session)
        self.assertIn("LOGINDISABLED", before)
        self.assertIn("STARTTLS", before)
        self.assertTrue(refused)
        self.assertIn("AUTH=PLAIN", after)
        self.assertEqual(typ, "OK")

    @defer.inlineCallbacks
    def test_wrong_password_is_refused_and_session_continues(self):
        def session():
            client = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=client_tls(),
                                       timeout=20)
            try:
                client.login(USER, "wrong-password")
                failed = False
            except imaplib.IMAP4.error as exc:
                failed = "AUTHENTICATIONFAILED" in str(exc)
            typ, _ = client.authenticate(
                "PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
            client.logout()
            return failed, typ
        failed, typ = yield in_thread(session)
        self.assertTrue(failed)
        self.assertEqual(typ, "OK")

    @defer.inlineCallbacks
    def test_list_special_use_status_and_folders(self):
        def session():
            client = self.connect()
            client.create("Work/Projects")
            client.create("Entw&APw-rfe")
            typ, listing = client.list()
            _, status = client.status("INBOX", "(MESSAGES UNSEEN UIDNEXT)")
            client.rename("Work", "Archive")
            _, renamed = client.list('""', "Archive*")
            client.delete("Archive/Projects")
            _, namespace = client.namespace()
            _, quota = raw_command(client, "GETQUOTAROOT INBOX")
            client.logout()
            return listing, status, renamed, namespace, quota
        listing, status, renamed, namespace, quota = yield in_thread(session)
        lines = [line.decode() for line in listing]
        self.assertTrue(any("\\Sent" in line and '"Sent"' in line for line in lines))
        self.assertTrue(any("\\Trash" in line for line in lines))
        self.assertTrue(any('\\Noselect \\HasChildren) "/" "Work"' in line for line in lines))
        # Modified UTF-7 on the wire, text in the store (the web shows the same name).
        self.assertTrue(any(line.endswith('"Entw&APw-rfe"') for line in lines))
        mailbox = yield defer.ensureDeferred(self.mailboxes.open(USER))
        names = [f.name for f in (yield defer.ensureDeferred(mailbox.folders()))]
        self.assertIn("Entw\u00fcrfe", names)
        self.assertIn(b"MESSAGES 0", status[0])
        self.assertTrue(any(b'"Archive/Projects"' in line for line in renamed))
        self.assertIn(b'(("" "/"))', namespace[0])
        self.assertEqual(quota[0], b'* QUOTAROOT "INBOX" ""')
        self.assertRegex(quota[1].decode(), r'\* QUOTA "" \(STORAGE \d+ 9765\)')

    @defer.inlineCallbacks
    def test_fetch_voice_attachment_byte_for_byte(self):
        yield defer.ensureDeferred(self.deliver_voice())

        def session():
            client = self.connect()
            client.select("INBOX")
            _, structure = client.fetch("1", "(BODYSTRUCTURE ENVELOPE RFC822.SIZE FLAGS)")
            _, attachment = client.fetch("1", "(BODY.PEEK[2])")
            _, flags_after_peek = client.fetch("1", "(FLAGS)")
            _, mime = client.fetch("1", "(BODY.PEEK[2.MIME])")
            _, partial = client.fetch("1", "(BODY.PEEK[]<0.20>)")
            _, whole = client.fetch("1", "(BODY[])")
            _, flags_after_read = client.fetch("1", "(FLAGS)")
            client.logout()
            return structure, attachment, flags_after_peek, mime, partial, whole, flags_after_read
        structure, attachment, peek_flags, mime, partial, whole, read_flags = yield in_thread(session)
        text = structure[0].decode() if isinstance(structure[0], bytes) else structure[0][0].decode()
        self.assertIn('("AUDIO" "WAV"', text.upper())
        self.assertIn("\"MIXED\"", text.upper())
        self.assertIn("ENVELOPE", text)
        encoded = attachment[0][1]
        import base64
        self.assertEqual(base64.b64decode(encoded), AUDIO)
        self.assertNotIn(b"\\Seen", peek_flags[0])
        self.assertIn(b"audio/wav", mime[0][1].lower())
        self.assertEqual(len(partial[0][1]), 20)
        message = email.message_from_bytes(whole[0][1], policy=email.policy.default)
        self.assertEqual(next(message.iter_attachments()).get_content(), AUDIO)
        self.assertIn(b"\\Seen", read_flags[0])
        # The phone sees the same \Seen: the voice message is no longer new.
        counts = yield defer.ensureDeferred(self.mailboxes.message_counts(USER))
        self.assertEqual(counts["voice"], {"new": 0, "old": 1, "urgent_new": 0, "urgent_old": 0})

    @defer.inlineCallbacks
    def test_search_flag_move_expunge_and_uid_forms(self):
        for number in range(1, 6):
            yield defer.ensureDeferred(self.mailboxes.deliver(
                USER, (f"From: Mark <mark@example.com>\r\nTo: {USER}@example.net\r\n"
                       f"Subject: note {number} caf\u00e9\r\nDate: Thu, 5 Mar 2026 10:00:00 +0000"
                       f"\r\n\r\nbody {number}\r\n").encode("utf-8"), internal_date=1772704800))

        def session():
            client = self.connect()
            client.select("INBOX")
            results = {}
            results["subject"] = client.search(None, "SUBJECT", '"note 3"')[1]
            results["utf8"] = client.search("UTF-8", "SUBJECT", "caf\u00e9".encode())[1]
            results["body"] = client.uid("SEARCH", None, "BODY", "body", "NOT", "UID", "2")[1]
            results["date"] = client.search(None, "ON", "5-Mar-2026", "LARGER", "10")[1]
            client.store("2:3", "+FLAGS", "(\\Flagged $Important)")
            results["flagged"] = client.search(None, "FLAGGED", "KEYWORD", "$Important")[1]
            results["move"] = client.uid("MOVE", "1", "Saved")
            results["after_move"] = client.search(None, "ALL")[1]
            results["status"] = raw_command(client, "STATUS INBOX (MESSAGES UNSEEN)")
            client.store("1", "+FLAGS.SILENT", "(\\Deleted)")
            results["expunge"] = raw_command(client, "EXPUNGE")
            results["copy"] = client.uid("COPY", "4:5", "Trash")
            results["copy_raw"] = raw_command(client, "UID COPY 5 Trash")
            results["bad"] = raw_command(client, "FETCH 1 (NOSUCHATT)")
            results["still"] = client.noop()[0]
            client.select("Saved")
            results["saved"] = client.fetch("1", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1]
            client.logout()
            return results
        r = yield in_thread(session)
        self.assertEqual(r["subject"], [b"3"])
        self.assertEqual(r["utf8"], [b"1 2 3 4 5"])
        self.assertEqual(r["body"], [b"1 3 4 5"])
        self.assertEqual(r["date"], [b"1 2 3 4 5"])
        self.assertEqual(r["flagged"], [b"2 3"])
        self.assertEqual(r["move"][0], "OK")
        self.assertEqual(r["after_move"], [b"1 2 3 4"])
        self.assertEqual(r["status"][1], [b'* STATUS "INBOX" (MESSAGES 4 UNSEEN 4)'])
        self.assertEqual(r["expunge"], (b"OK EXPUNGE completed", [b"* 1 EXPUNGE"]))
        self.assertEqual(r["copy"][0], "OK")
        self.assertRegex(r["copy_raw"][0].decode(), r"^OK \[COPYUID \d+ 5 3\]")
        self.assertEqual(r["bad"][0], b"BAD unknown fetch attribute NOSUCHATT")
        self.assertEqual(r["still"], "OK")
        self.assertIn(b"Subject: note 1", r["saved"][0][1])

    @defer.inlineCallbacks
    def test_append_returns_appenduid_and_idle_wakes_on_delivery(self):
        def append_and_idle():
            client = self.connect()
            typ, data = client.append("INBOX", "(\\Seen)", None,
                                      b"Subject: appended\r\n\r\nhello\r\n")
            client.select("INBOX")
            tag = client._new_tag()
            client.send(tag + b" IDLE\r\n")
            continuation = client.readline()
            self.idling = True
            pushed = client.readline() + client.readline()
            client.send(b"DONE\r\n")
            done = client.readline()
            client.logout()
            return data, continuation, pushed, done
        self.idling = False
        d = in_thread(append_and_idle)
        yield wait_until(lambda: self.idling)
        yield defer.ensureDeferred(self.mailboxes.deliver(USER, b"Subject: new\r\n\r\nnew\r\n"))
        data, continuation, pushed, done = yield d
        self.assertRegex(data[0].decode(), r"APPENDUID \d+ 1")
        self.assertTrue(continuation.startswith(b"+"))
        # Recent: the appended message (claimed at SELECT) and the new one.
        self.assertEqual(pushed, b"* 2 EXISTS\r\n* 2 RECENT\r\n")
        self.assertIn(b"OK IDLE terminated", done)


@on_both_engines
class TwoSessionTests(MailNodeTestCase):
    async def _open(self):
        await super()._open()
        self.factory = IMAPServerFactory(
            accounts=self.accounts, mailboxes=self.mailboxes, events=self.events, clock=reactor,
            tls_context=self.tls_context, allow_plaintext_auth=True)
        self.port = self.listen(self.factory)
        for number in range(1, 4):
            await self.mailboxes.deliver(USER, f"Subject: m{number}\r\n\r\nx\r\n".encode())

    @defer.inlineCallbacks
    def test_flags_expunges_and_new_messages_seen_by_both(self):
        def open_session():
            client = imaplib.IMAP4("127.0.0.1", self.port, timeout=20)
            client.login(USER, PASSWORD)
            typ, data = client.select("INBOX")
            return client, client.untagged_responses.get("RECENT")

        first, first_recent = yield in_thread(open_session)
        second, second_recent = yield in_thread(open_session)
        # Exactly one session sees the messages as \Recent.
        self.assertEqual(first_recent, [b"3"])
        self.assertEqual(second_recent, [b"0"])

        def flag_in_first():
            raw_command(first, "STORE 2 +FLAGS (\\Seen)")
            raw_command(first, "STORE 1 +FLAGS (\\Deleted)")
            return raw_command(first, "EXPUNGE")
        status, lines = yield in_thread(flag_in_first)
        self.assertEqual(lines, [b"* 1 EXPUNGE"])
        yield defer.ensureDeferred(self.mailboxes.deliver(USER, b"Subject: m4\r\n\r\nx\r\n"))
        # The delivery event reaches the sessions through the event bus
        # (PostgreSQL NOTIFY on that engine).
        yield wait_until(lambda: all(s.selected.dirty for s in self.factory.sessions))

        def second_sees():
            return raw_command(second, "NOOP"), raw_command(second, "FETCH 1:* (UID FLAGS)")
        (status, updates), (_, fetched) = yield in_thread(second_sees)
        self.assertEqual(status, b"OK NOOP completed")
        self.assertIn(b"* 1 EXPUNGE", updates)
        self.assertIn(b"* 1 FETCH (UID 2 FLAGS (\\Seen))", updates)
        self.assertIn(b"* 3 EXISTS", updates)
        self.assertEqual(fetched[:2], [b"* 1 FETCH (UID 2 FLAGS (\\Seen))",
                                       b"* 2 FETCH (UID 3 FLAGS ())"])
        self.assertIn(fetched[2], [b"* 3 FETCH (UID 4 FLAGS (\\Recent))",
                                   b"* 3 FETCH (UID 4 FLAGS ())"])
        second_recent = b"\\Recent" in fetched[2]

        def first_final():
            updates = raw_command(first, "NOOP")[1]
            result = raw_command(first, "FETCH 1:* (UID FLAGS)")[1]
            first.logout()
            second.logout()
            return updates, result
        updates, fetched = yield in_thread(first_final)
        self.assertEqual(updates[0], b"* 3 EXISTS")
        self.assertEqual(len(fetched), 3)
        # Exactly one of the two sessions has the new message as \Recent.
        first_recent = b"\\Recent" in fetched[-1]
        self.assertNotEqual(first_recent, second_recent)


@on_both_engines
class LockoutTests(MailNodeTestCase):
    @defer.inlineCallbacks
    def test_failed_logins_lock_the_account_across_connections_and_nodes(self):
        from portaum_tx.accounts import AccountService
        from portaum_tx.imap.pop3 import POP3Factory
        imap_port = self.listen(IMAPServerFactory(
            accounts=self.accounts, mailboxes=self.mailboxes, events=self.events, clock=reactor,
            allow_plaintext_auth=True, limits=Limits(failed_login_delay=0.01)))
        # A second node: its own store handle and services on the same database.
        other_store = yield defer.ensureDeferred(self.open_store())
        pop3_port = self.listen(POP3Factory(
            accounts=AccountService(other_store, reactor), mailboxes=self.mailboxes,
            clock=reactor, allow_plaintext_auth=True, failed_login_delay=0.01))

        def attempts():
            answers = []
            for _ in range(AccountService.FAILURE_LIMIT):
                client = imaplib.IMAP4("127.0.0.1", imap_port, timeout=20)
                try:
                    client.login(USER, "not-the-password")
                except imaplib.IMAP4.error as exc:
                    answers.append(str(exc))
                client.shutdown()
            client = imaplib.IMAP4("127.0.0.1", imap_port, timeout=20)
            try:
                client.login(USER, PASSWORD)
                locked_imap = "logged in"
            except imaplib.IMAP4.error as exc:
                locked_imap = str(exc)
            client.shutdown()
            import poplib
            pop = poplib.POP3("127.0.0.1", pop3_port, timeout=20)
            pop.user(USER)
            try:
                pop.pass_(PASSWORD)
                locked_pop = "logged in"
            except poplib.error_proto as exc:
                locked_pop = str(exc)
            pop.quit()
            return answers, locked_imap, locked_pop
        answers, locked_imap, locked_pop = yield in_thread(attempts)
        self.assertEqual(len(answers), 5)
        self.assertIn("AUTHENTICATIONFAILED", answers[0])
        self.assertIn("too many failed attempts", locked_imap)
        self.assertIn("authentication failed", locked_pop)


class CrossNodeIdleTests(MailNodeTestCase):
    """A delivery on another cluster node wakes IDLE here (PostgreSQL NOTIFY)."""

    engine = "postgres"
    if not POSTGRES_DSN:
        skip = "PORTAUM_TEST_POSTGRES is not set: cluster events travel through PostgreSQL"

    @defer.inlineCallbacks
    def test_idle_woken_by_a_delivery_on_another_node(self):
        from portaum_tx.mailbox.events import EventBus
        from portaum_tx.mailbox.service import MailboxService
        port = self.listen(IMAPServerFactory(
            accounts=self.accounts, mailboxes=self.mailboxes, events=self.events, clock=reactor,
            tls_context=self.tls_context, allow_plaintext_auth=True))
        other_store = yield defer.ensureDeferred(self.open_store())
        other_events = EventBus(other_store)
        self.addCleanup(other_events.close)
        other_node = MailboxService(other_store, other_events, reactor, domain="example.net")
        self.idling = False

        def idle():
            client = imaplib.IMAP4("127.0.0.1", port, timeout=20)
            client.login(USER, PASSWORD)
            client.select("INBOX")
            tag = client._new_tag()
            client.send(tag + b" IDLE\r\n")
            client.readline()
            self.idling = True
            pushed = client.readline()
            client.send(b"DONE\r\n")
            client.readline()
            client.readline()
            client.logout()
            return pushed
        d = in_thread(idle)
        yield wait_until(lambda: self.idling)
        yield defer.ensureDeferred(other_node.deliver(USER, b"Subject: from node B\r\n\r\nx\r\n"))
        pushed = yield d
        self.assertEqual(pushed, b"* 1 EXISTS\r\n")
