from twisted.internet import defer

from portaum_tx.store import AlreadyExists, NotFound, SchemaTooNew, StoreError
from portaum_tx.store.database import Database
from portaum_tx.store.engines import create_engine
from tests.support import StoreTestCase, on_both_engines

FOLDERS = (("INBOX", None), ("Trash", "\\Trash"))


def d(coroutine):
    return defer.ensureDeferred(coroutine)


@on_both_engines
class AccountStoreTests(StoreTestCase):
    @defer.inlineCallbacks
    def test_accounts_aliases_and_lookup(self):
        accounts = self.store.accounts
        customer = yield d(accounts.add_customer("Smart Calls, Ltd."))
        with self.assertRaises(AlreadyExists):
            yield d(accounts.add_customer("Smart Calls, Ltd."))
        yield d(accounts.add_account("12065557777", customer.id, quota_bytes=1000,
                                     mailbox_folders=FOLDERS, email="rachel@example.com",
                                     associated_number="1206555"))
        yield d(accounts.add_account("12065558888", customer.id, quota_bytes=1000,
                                     mailbox_folders=FOLDERS, um_enabled=0))
        with self.assertRaises(AlreadyExists):
            yield d(accounts.add_account("12065557777", customer.id, quota_bytes=1,
                                         mailbox_folders=FOLDERS))
        with self.assertRaises(AlreadyExists):
            yield d(accounts.add_account("12065559999", customer.id, quota_bytes=1,
                                         mailbox_folders=FOLDERS, email="rachel@example.com"))
        yield d(accounts.add_alias("1206555#4545", "12065557777"))
        with self.assertRaises(AlreadyExists):
            yield d(accounts.add_alias("1206555#4545", "12065558888"))
        with self.assertRaises(AlreadyExists):
            yield d(accounts.add_alias("12065558888", "12065557777"))
        with self.assertRaises(AlreadyExists):
            yield d(accounts.add_account("1206555#4545", customer.id, quota_bytes=1,
                                         mailbox_folders=FOLDERS))
        with self.assertRaises(NotFound):
            yield d(accounts.add_alias("777", "404"))
        by_alias = yield d(accounts.get_account_by_alias("1206555#4545"))
        self.assertEqual(by_alias.id, "12065557777")
        self.assertEqual(by_alias.associated_number, "1206555")
        by_email = yield d(accounts.get_account_by_email("RACHEL@example.com"))
        self.assertEqual(by_email.id, "12065557777")
        mark = yield d(accounts.get_account("12065558888"))
        self.assertFalse(mark.um_enabled)
        with self.assertRaises(NotFound):
            yield d(self.store.mailboxes.get_mailbox("12065558888"))
        with self.assertRaises(StoreError):
            yield d(accounts.delete_customer("Smart Calls, Ltd."))

    @defer.inlineCallbacks
    def test_delete_account_removes_mailbox_messages_and_aliases(self):
        accounts = self.store.accounts
        customer = yield d(accounts.add_customer("C"))
        yield d(accounts.add_account("15551234", customer.id, quota_bytes=10_000,
                                     mailbox_folders=FOLDERS))
        yield d(accounts.add_alias("200", "15551234"))
        yield d(accounts.store_greeting("15551234", "busy", b"\xff" * 80))
        yield d(self.store.mailboxes.store_message("15551234", "INBOX", b"hello"))
        yield d(accounts.delete_account("15551234"))
        with self.assertRaises(NotFound):
            yield d(accounts.get_account_by_alias("200"))
        self.assertIsNone((yield d(accounts.get_greeting("15551234", "busy"))))
        rows = yield d(self.store.db.execute("count bodies", "SELECT COUNT(*) FROM message_bodies"))
        self.assertEqual(rows[0][0], 0)
        yield d(accounts.delete_customer("C"))

    @defer.inlineCallbacks
    def test_preferences_and_greetings(self):
        accounts = self.store.accounts
        customer = yield d(accounts.add_customer("C"))
        yield d(accounts.add_account("15551234", customer.id, quota_bytes=1,
                                     mailbox_folders=FOLDERS))
        account = yield d(accounts.set_account_fields("15551234", language="es",
                                                      attachment_format="mp3", um_enabled=1))
        self.assertEqual((account.language, account.attachment_format), ("es", "mp3"))
        with self.assertRaises(ValueError):
            yield d(accounts.set_account_fields("15551234", customer_id=9))
        yield d(accounts.store_greeting("15551234", "unavailable", b"one"))
        yield d(accounts.store_greeting("15551234", "unavailable", b"two"))
        self.assertEqual((yield d(accounts.get_greeting("15551234", "unavailable"))), b"two")

    @defer.inlineCallbacks
    def test_auth_failures_lock_after_limit(self):
        accounts = self.store.accounts
        for expected in (1, 2):
            failures, locked = yield d(accounts.add_auth_failure("pin:100", 600, 3, 900))
            self.assertEqual((failures, locked), (expected, 0))
        failures, locked = yield d(accounts.add_auth_failure("pin:100", 600, 3, 900))
        self.assertGreater(locked, 0)
        self.assertEqual((yield d(accounts.get_locked_until("pin:100"))), locked)
        yield d(accounts.delete_auth_failures("pin:100"))
        self.assertEqual((yield d(accounts.get_locked_until("pin:100"))), 0)

    @defer.inlineCallbacks
    def test_access_numbers_exact_before_longest_prefix(self):
        numbers = self.store.access_numbers
        yield d(numbers.add_access_number("AD%", "pass-through", {"authorize_paid_calls": "yes"}))
        yield d(numbers.add_access_number("ADX%", "prepaid", {}))
        yield d(numbers.add_access_number("ADX100", "voicemail-access", {}))
        with self.assertRaises(AlreadyExists):
            yield d(numbers.add_access_number("AD%", "x", {}))
        self.assertEqual((yield d(numbers.get_access_number_for("AD12065551234"))).application,
                         "pass-through")
        self.assertEqual((yield d(numbers.get_access_number_for("ADX5"))).application, "prepaid")
        self.assertEqual((yield d(numbers.get_access_number_for("ADX100"))).application,
                         "voicemail-access")
        self.assertIsNone((yield d(numbers.get_access_number_for("12065551234"))))
        found = yield d(numbers.get_access_number_for("AD1"))
        self.assertEqual(found.options, {"authorize_paid_calls": "yes"})

    @defer.inlineCallbacks
    def test_prompts_and_settings(self):
        yield d(self.store.prompts.store_prompt("acme", "es", "welcome", b".snd1"))
        yield d(self.store.prompts.store_prompt("acme", "es", "welcome", b".snd2"))
        self.assertEqual((yield d(self.store.prompts.get_prompt("acme", "es", "welcome"))), b".snd2")
        listing = yield d(self.store.prompts.get_prompt_list("acme"))
        self.assertEqual([row[:4] for row in listing], [("acme", "es", "welcome", 5)])
        first = yield d(self.store.settings.get_or_create_secret())
        second = yield d(self.store.settings.get_or_create_secret())
        self.assertEqual(first, second)
        self.assertEqual(len(first), 64)

    @defer.inlineCallbacks
    def test_newer_schema_is_refused(self):
        rows = yield d(self.store.db.execute("read", "SELECT version FROM schema_version"))
        current = rows[0][0]
        yield d(self.store.db.execute("bump", "UPDATE schema_version SET version = 999"))
        from twisted.internet import reactor
        database = Database(create_engine(self.make_config(), reactor))
        with self.assertRaises(SchemaTooNew) as caught:
            yield d(database.open())
        self.assertIn("version 999", str(caught.exception))
        yield d(self.store.db.execute("restore", "UPDATE schema_version SET version = ?",
                                      (current,)))
