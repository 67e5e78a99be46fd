"""SMTP inbound, submission, the outbound queue, bounces and forwarding,
driven by smtplib (and imaplib for what users then see) over loopback sockets."""

from __future__ import annotations

import email
import email.policy
import imaplib
import smtplib
import socket

from twisted.internet import defer, reactor

from portaum_tx.imap.server import IMAPServerFactory
from portaum_tx.server import Node
from portaum_tx.smtp.frontend import SMTPFrontend
from tests.imap.support import (ADDRESS, PASSWORD, USER, MailNodeTestCase, client_tls,
                                in_thread, raw_command, wait_until)
from tests.smtp.sink import SinkFactory
from tests.support import on_both_engines

AUDIO = bytes(range(256)) * 10


@on_both_engines
class SMTPClientTests(MailNodeTestCase):
    async def _open(self):
        await super()._open()
        self.sink = SinkFactory(reject={"nobody@remote.example"})
        sink_port = reactor.listenTCP(0, self.sink, interface="127.0.0.1")
        self.addCleanup(sink_port.stopListening)
        config = self.make_config(
            f"storage.data_dir={self.config.data_dir}", "smtp.hostname=mx.example.net",
            f"smtp.smarthost=127.0.0.1:{sink_port.getHost().port}",
            "smtp.from_address=portaum@mx.example.net")
        node = Node(config=config, reactor=reactor, store=self.store, events=self.events,
                    mailboxes=self.mailboxes, accounts=self.accounts, name="node-1",
                    secret="s")
        self.frontend = SMTPFrontend()
        factories = await self.frontend.start(node)
        self.addCleanup(lambda: defer.ensureDeferred(self.frontend.stop()))
        for factory in factories.values():
            factory.failed_login_delay = 0.01
        self.mx_port = self.listen(factories["smtp"])
        self.submission_port = self.listen(factories["submission"])

    def mx(self) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.mx_port, timeout=20)

    def submission(self) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.submission_port, timeout=20)
        client.starttls(context=client_tls())
        client.login(USER, PASSWORD)
        return client

    def inbox(self):
        return defer.ensureDeferred(self._inbox())

    async def _inbox(self, folder="INBOX"):
        mailbox = await self.mailboxes.open(USER)
        target = await mailbox.folder(folder)
        infos = await mailbox.message_infos(target)
        data = await mailbox.message_data(target, [i.uid for i in infos])
        return [data[i.uid] for i in infos]

    @defer.inlineCallbacks
    def test_inbound_accepts_local_refuses_relay_and_adds_received(self):
        def session():
            client = self.mx()
            code, features = client.ehlo("client.example")
            client.mail("someone@example.org")
            relay = client.rcpt("victim@elsewhere.example")
            foreign_id = client.rcpt(f"{USER}@elsewhere.example")
            local = client.rcpt(ADDRESS)
            alias = client.rcpt("rachel@mx.example.net")
            # smtplib dot-stuffs the line; the server must unstuff it.
            code_data, _ = client.data(b"Subject: hello\r\n\r\nline one\r\n.dot line\r\n")
            bad = client.docmd("MAIL FROM:<not an address>")
            still = client.noop()
            client.quit()
            return features, relay, foreign_id, local, alias, code_data, bad, still
        features, relay, foreign_id, local, alias, code_data, bad, still = yield in_thread(session)
        for name in (b"SIZE", b"8BITMIME", b"PIPELINING", b"ENHANCEDSTATUSCODES", b"STARTTLS"):
            self.assertIn(name, features)
        self.assertNotIn(b"AUTH", features)
        self.assertEqual(relay[0], 550)
        self.assertEqual(foreign_id[0], 550)
        self.assertEqual(local[0], 250)
        self.assertEqual(alias[0], 250)
        self.assertEqual(code_data, 250)
        self.assertEqual(bad[0], 501)
        self.assertEqual(still[0], 250)
        messages = yield self.inbox()
        # One recipient address per delivery: two RCPTs for the same mailbox
        # give two copies, each with its own Received header.
        self.assertEqual(len(messages), 2)
        self.assertTrue(messages[0].startswith(b"Received: from client.example ([127.0.0.1])"))
        self.assertIn(b"by mx.example.net (portaum_tx) with ESMTP", messages[0])
        self.assertIn(b"\r\n.dot line\r\n", messages[0])

    @defer.inlineCallbacks
    def test_size_and_quota_refusals(self):
        yield defer.ensureDeferred(self.store.mailboxes.set_quota(USER, 2000))
        yield defer.ensureDeferred(self.mailboxes.deliver(USER, b"x" * 1500))

        def session():
            client = self.mx()
            client.ehlo("client.example")
            too_big = client.docmd(f"MAIL FROM:<a@example.org> SIZE={30 * 1024 * 1024}")
            client.rset()
            client.docmd("MAIL FROM:<a@example.org> SIZE=1000")
            temporary = client.docmd(f"RCPT TO:<{ADDRESS}>")
            client.rset()
            client.docmd("MAIL FROM:<a@example.org> SIZE=5000")
            permanent = client.docmd(f"RCPT TO:<{ADDRESS}>")
            client.rset()
            client.mail("a@example.org")
            client.rcpt(ADDRESS)
            full, _ = client.data(b"Subject: big\r\n\r\n" + b"y" * 800 + b"\r\n")
            client.quit()
            return too_big, temporary, permanent, full
        too_big, temporary, permanent, full = yield in_thread(session)
        self.assertEqual(too_big[0], 552)
        self.assertEqual(temporary[0], 452)
        self.assertIn(b"4.2.2", temporary[1])
        self.assertEqual(permanent[0], 552)
        self.assertEqual(full, 452)
        messages = yield self.inbox()
        self.assertEqual(len(messages), 1)

    @defer.inlineCallbacks
    def test_bare_lf_cannot_smuggle_a_second_message(self):
        def session():
            sock = socket.create_connection(("127.0.0.1", self.mx_port), timeout=20)
            reader = sock.makefile("rb")
            reader.readline()
            payload = (b"EHLO client.example\r\nMAIL FROM:<a@example.org>\r\n"
                       + f"RCPT TO:<{ADDRESS}>\r\nDATA\r\n".encode()
                       + b"Subject: first\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\n"
                       b"RCPT TO:<" + ADDRESS.encode() + b">\nDATA\nSubject: smuggled\n\n"
                       b"bad\n.\n\r\n.\r\nQUIT\r\n")
            sock.sendall(payload)
            replies = reader.read()
            sock.close()
            return replies
        replies = yield in_thread(session)
        self.assertEqual(replies.count(b"\r\n250 2.0.0 message accepted"), 1)
        messages = yield self.inbox()
        self.assertEqual(len(messages), 1)
        self.assertIn(b"\r\nSubject: smuggled\r\n", messages[0])
        self.assertNotIn(b"\n.\n", messages[0])

    @defer.inlineCallbacks
    def test_submission_needs_auth_after_tls_then_relays_with_sent_copy(self):
        def session():
            plain = smtplib.SMTP("127.0.0.1", self.submission_port, timeout=20)
            plain.ehlo("client.example")
            no_auth_offered = "auth" not in plain.esmtp_features
            refused = plain.docmd("AUTH PLAIN AGEyAGI=")
            anonymous = plain.docmd("MAIL FROM:<rachel@example.net>")
            plain.quit()
            client = self.submission()
            spoof = client.docmd("MAIL FROM:<ceo@example.net>")
            client.rset()
            refused_rcpts = client.sendmail(ADDRESS, ["friend@remote.example"],
                                            b"Subject: hi friend\r\nFrom: Rachel <"
                                            + ADDRESS.encode() + b">\r\n\r\nsee you\r\n")
            client.quit()
            return no_auth_offered, refused, anonymous, spoof, refused_rcpts
        no_auth_offered, refused, anonymous, spoof, refused_rcpts = yield in_thread(session)
        self.assertTrue(no_auth_offered)
        self.assertEqual(refused[0], 538)
        self.assertEqual(anonymous[0], 530)
        self.assertEqual(spoof[0], 553)
        self.assertEqual(refused_rcpts, {})
        yield wait_until(lambda: self.sink.messages)
        sender, recipients, data = self.sink.messages[0]
        self.assertEqual((sender, recipients), (ADDRESS, ["friend@remote.example"]))
        self.assertIn(b"Subject: hi friend", data)
        self.assertIn(b"Message-ID: <", data)
        yield wait_until(lambda: self.frontend.queue._running is None)
        sent = yield defer.ensureDeferred(self._inbox("Sent"))
        self.assertEqual(len(sent), 1)
        self.assertIn(b"Subject: hi friend", sent[0])
        queued = yield defer.ensureDeferred(self.store.outbound.get_outbound())
        self.assertEqual(queued, [])

    @defer.inlineCallbacks
    def test_permanent_failure_bounces_to_the_sender(self):
        def session():
            client = self.submission()
            client.sendmail(ADDRESS, ["nobody@remote.example"],
                            b"Subject: doomed\r\nFrom: " + ADDRESS.encode() + b"\r\n\r\nx\r\n")
            client.quit()
        yield in_thread(session)
        yield wait_until(lambda: self.frontend.queue._running is None and self.frontend.queue.passes)
        messages = yield wait_until_messages(self, 1)
        report = email.message_from_bytes(messages[0], policy=email.policy.default)
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        parts = list(report.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        status = parts[1].as_string()
        self.assertIn("Final-Recipient: rfc822; nobody@remote.example", status)
        self.assertIn("Action: failed", status)
        self.assertIn("Status: 5.1.1", status)
        self.assertIn(b"Subject: doomed", messages[0])
        self.assertEqual(self.sink.messages, [])

    @defer.inlineCallbacks
    def test_forwarding_full_copy_and_notification(self):
        # Settings are read afresh for each delivery (no caching between the two).
        self.frontend.forwarder.SETTINGS_TTL = 0
        yield defer.ensureDeferred(self.accounts.set_preferences(
            USER, forward_mode="copy", forward_address="me@remote.example"))
        yield defer.ensureDeferred(self.mailboxes.deliver_voice(
            USER, audio=AUDIO, audio_format="wav", duration=5, caller="12065558888"))
        yield wait_until(lambda: len(self.sink.messages) == 1)
        sender, recipients, copy = self.sink.messages[0]
        self.assertEqual((sender, recipients), ("portaum@mx.example.net", ["me@remote.example"]))
        forwarded = email.message_from_bytes(copy, policy=email.policy.default)
        self.assertEqual(forwarded["Resent-To"], "me@remote.example")
        self.assertEqual(next(forwarded.iter_attachments()).get_content(), AUDIO)

        yield defer.ensureDeferred(self.accounts.set_preferences(USER, forward_mode="notify"))
        yield defer.ensureDeferred(self.mailboxes.deliver(
            USER, b"From: Mark <mark@example.org>\r\nSubject: lunch?\r\n\r\nat noon\r\n"))
        yield wait_until(lambda: len(self.sink.messages) == 2)
        note = email.message_from_bytes(self.sink.messages[1][2], policy=email.policy.default)
        self.assertIn("lunch?", note["Subject"])
        self.assertIn("Mark <mark@example.org>", note.get_content())
        self.assertFalse(note.is_multipart())
        self.assertNotIn("at noon", note.get_content())

    @defer.inlineCallbacks
    def test_idle_is_woken_by_an_smtp_delivery(self):
        imap = IMAPServerFactory(accounts=self.accounts, mailboxes=self.mailboxes,
                                 events=self.events, clock=reactor, tls_context=self.tls_context,
                                 implicit_tls=True)
        imap_port = self.listen(imap, implicit_tls=True)
        self.idling = False

        def idle():
            client = imaplib.IMAP4_SSL("127.0.0.1", imap_port, ssl_context=client_tls(),
                                       timeout=20)
            client.login(USER, PASSWORD)
            client.select("INBOX")
            tag = client._new_tag()
            client.send(tag + b" IDLE\r\n")
            client.readline()
            self.idling = True
            pushed = client.readline()
            client.send(b"DONE\r\n")
            while not client.readline().startswith(tag):
                pass
            fetched = raw_command(client, "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            client.logout()
            return pushed, fetched
        d = in_thread(idle)
        yield wait_until(lambda: self.idling)

        def send():
            client = self.mx()
            client.sendmail("mark@example.org", [ADDRESS], b"Subject: wake up\r\n\r\nnow\r\n")
            client.quit()
        yield in_thread(send)
        pushed, fetched = yield d
        self.assertEqual(pushed, b"* 1 EXISTS\r\n")
        self.assertIn(b"Subject: wake up", fetched[1][0])


    # The outbound relay through a smarthost that wants STARTTLS and AUTH:
    # this node's own submission port stands in for it.
    @defer.inlineCallbacks
    def test_relay_uses_starttls_and_auth_on_the_smarthost(self):
        from portaum_tx.smtp.queue import DeliveryError, Smarthost, SMTPRelay
        relay = SMTPRelay(reactor, "client.example", Smarthost(
            "127.0.0.1", self.submission_port, username=USER, password=PASSWORD,
            require_tls=True))
        yield defer.ensureDeferred(relay.send(
            ADDRESS, "friend@remote.example",
            b"From: " + ADDRESS.encode() + b"\r\nSubject: via smarthost\r\n\r\nhello\r\n"))
        yield wait_until(lambda: self.sink.messages)
        self.assertEqual(self.sink.messages[0][1], ["friend@remote.example"])
        self.assertIn(b"Subject: via smarthost", self.sink.messages[0][2])
        # The submission server saw TLS and AUTH: its Received header says ESMTPSA.
        self.assertIn(b"with ESMTPSA", self.sink.messages[0][2])
        bad = SMTPRelay(reactor, "client.example", Smarthost(
            "127.0.0.1", self.submission_port, username=USER, password="wrong-password"))
        with self.assertRaises(DeliveryError) as caught:
            yield defer.ensureDeferred(bad.send(ADDRESS, "friend@remote.example", b"x\r\n"))
        self.assertTrue(caught.exception.permanent)


async def _poll_inbox(test, count, timeout=10.0):
    deadline = reactor.seconds() + timeout
    while True:
        messages = await test._inbox()
        if len(messages) >= count or reactor.seconds() > deadline:
            return messages
        pause = defer.Deferred()
        reactor.callLater(0.05, pause.callback, None)
        await pause


def wait_until_messages(test, count):
    return defer.ensureDeferred(_poll_inbox(test, count))

