"""Forwarded copies and notifications as built, and the loop guards."""

from __future__ import annotations

import email
import email.policy

from twisted.trial import unittest

from portaum_tx.smtp.forward import notification, resent_copy, should_forward

ORIGINAL = (b"From: Mark <mark@example.org>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
            b"Content-Type: text/plain\r\n\r\nsecret body\r\n")


class ForwardTests(unittest.TestCase):
    def test_copy_keeps_the_message_and_adds_resent_fields(self):
        copy = resent_copy(ORIGINAL, account_id="12065557777", from_address="pm@mx.example.net",
                           to_address="me@remote.example", hostname="mx.example.net", now=0)
        self.assertTrue(copy.endswith(ORIGINAL))
        message = email.message_from_bytes(copy, policy=email.policy.default)
        self.assertEqual(message["Resent-To"], "me@remote.example")
        self.assertEqual(message["X-Portaum-Forwarded-For"], "12065557777")

    def test_notification_is_short_and_names_the_message(self):
        note = notification(ORIGINAL, kind="voice", account_id="12065557777",
                            from_address="pm@mx.example.net", to_address="me@remote.example",
                            hostname="mx.example.net", now=0)
        message = email.message_from_bytes(note, policy=email.policy.default)
        self.assertEqual(message["Subject"], "New voice message for 12065557777: caf\u00e9")
        self.assertEqual(message["Auto-Submitted"], "auto-generated")
        self.assertNotIn("secret body", message.get_content())
        self.assertIn("Mark <mark@example.org>", message.get_content())

    def test_loops_are_cut(self):
        copy = resent_copy(ORIGINAL, account_id="12065557777", from_address="pm@mx.example.net",
                           to_address="x@example.net", hostname="mx.example.net", now=0)
        self.assertTrue(should_forward(ORIGINAL, "copy", "12065557777"))
        self.assertFalse(should_forward(copy, "copy", "12065557777"))
        self.assertTrue(should_forward(copy, "copy", "12065559999"))
        note = notification(ORIGINAL, kind="email", account_id="1", from_address="a@b.example",
                            to_address="c@d.example", hostname="h", now=0)
        self.assertFalse(should_forward(note, "notify", "12065557777"))
        self.assertTrue(should_forward(note, "copy", "12065557777"))


class ForwarderSettingsTests(unittest.TestCase):
    def test_settings_are_read_at_most_once_per_ttl(self):
        from twisted.internet import defer, task
        from portaum_tx.mailbox.service import Delivered
        from portaum_tx.smtp.forward import Forwarder

        class Accounts:
            calls = 0

            def get_account(self, account_id):
                self.calls += 1
                return defer.succeed(type("Account", (), {"forward_mode": "none",
                                                          "forward_address": None})())
        clock = task.Clock()
        accounts = Accounts()
        forwarder = Forwarder(accounts=accounts, mailboxes=None, queue=None, clock=clock,
                              from_address="pm@mx.example.net", hostname="mx.example.net")
        delivered = Delivered("12065557777", "INBOX", 1, 1, "voice", 10)
        for _ in range(3):
            forwarder(delivered)
        self.assertEqual(accounts.calls, 1)
        clock.advance(Forwarder.SETTINGS_TTL)
        forwarder(delivered)
        self.assertEqual(accounts.calls, 2)
        forwarder(Delivered("12065557777", "Sent", 1, 2, "email", 10))
        self.assertEqual(accounts.calls, 2)
