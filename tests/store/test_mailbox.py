from twisted.internet import defer

from portaum_tx.store import AlreadyExists, MailboxFull, NotFound
from portaum_tx.store.mailbox import DELETED, FLAGGED, SEEN
from tests.support import StoreTestCase, on_both_engines

FOLDERS = (("INBOX", None), ("Saved", None), ("Sent", "\\Sent"), ("Trash", "\\Trash"))


@on_both_engines
class MailboxStoreTests(StoreTestCase):
    async def _account(self, account_id="12065557777", quota=10_000):
        customer = await self.store.accounts.add_customer("Smart Calls, Ltd.")
        await self.store.accounts.add_account(account_id, customer.id, quota_bytes=quota,
                                              mailbox_folders=FOLDERS)
        mailbox = await self.store.mailboxes.get_mailbox(account_id)
        return mailbox

    @defer.inlineCallbacks
    def test_uids_increase_and_are_never_reused(self):
        mailbox = yield defer.ensureDeferred(self._account())
        store = self.store.mailboxes
        first = yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"a" * 10))
        second = yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"b" * 10))
        self.assertEqual(first[1] + 1, second[1])
        inbox = yield defer.ensureDeferred(store.get_folder(mailbox.id, "INBOX"))
        yield defer.ensureDeferred(store.delete_messages(inbox.id, [second[1]]))
        third = yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"c"))
        self.assertEqual(third[1], second[1] + 1)
        self.assertEqual(third[0], inbox.uidvalidity)

    @defer.inlineCallbacks
    def test_concurrent_deliveries_get_distinct_monotonic_uids(self):
        yield defer.ensureDeferred(self._account(quota=10_000_000))
        store = self.store.mailboxes
        results = yield defer.gatherResults([
            defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"x%d" % i))
            for i in range(40)])
        uids = sorted(uid for _, uid in results)
        self.assertEqual(uids, list(range(1, 41)))
        mailbox = yield defer.ensureDeferred(store.get_mailbox("12065557777"))
        inbox = yield defer.ensureDeferred(store.get_folder(mailbox.id, "INBOX"))
        data = yield defer.ensureDeferred(store.get_message_data(inbox.id, uids))
        # Every UID holds the body of exactly one delivery.
        self.assertEqual(sorted(data.values()), sorted(b"x%d" % i for i in range(40)))

    @defer.inlineCallbacks
    def test_quota_refuses_and_expunge_frees(self):
        mailbox = yield defer.ensureDeferred(self._account(quota=100))
        store = self.store.mailboxes
        _, uid = yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"a" * 60))
        with self.assertRaises(MailboxFull) as caught:
            yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"b" * 60))
        self.assertIn("12065557777", str(caught.exception))
        inbox = yield defer.ensureDeferred(store.get_folder(mailbox.id, "INBOX"))
        yield defer.ensureDeferred(store.delete_messages(inbox.id, [uid]))
        yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"b" * 60))
        mailbox = yield defer.ensureDeferred(store.get_mailbox("12065557777"))
        self.assertEqual(mailbox.used_bytes, 60)

    @defer.inlineCallbacks
    def test_flags_copy_move_and_shared_bodies(self):
        mailbox = yield defer.ensureDeferred(self._account(quota=1000))
        store = self.store.mailboxes
        _, uid = yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"m" * 100))
        inbox = yield defer.ensureDeferred(store.get_folder(mailbox.id, "INBOX"))
        saved = yield defer.ensureDeferred(store.get_folder(mailbox.id, "Saved"))
        infos = yield defer.ensureDeferred(
            store.set_flags(inbox.id, [uid], SEEN | FLAGGED, ["$Label1"], "add"))
        self.assertEqual(infos[0].flags, SEEN | FLAGGED)
        self.assertEqual(infos[0].keywords, ("$Label1",))
        infos = yield defer.ensureDeferred(store.set_flags(inbox.id, [uid], FLAGGED, (), "remove"))
        self.assertEqual(infos[0].flags, SEEN)
        pairs = yield defer.ensureDeferred(store.copy_messages(inbox.id, [uid], saved.id))
        self.assertEqual(pairs, [(uid, 1)])
        mailbox = yield defer.ensureDeferred(store.get_mailbox("12065557777"))
        self.assertEqual(mailbox.used_bytes, 200)
        yield defer.ensureDeferred(store.delete_messages(inbox.id, [uid]))
        data = yield defer.ensureDeferred(store.get_message_data(saved.id, [1]))
        self.assertEqual(data[1], b"m" * 100)
        moved = yield defer.ensureDeferred(store.copy_messages(saved.id, [1], inbox.id, move=True))
        self.assertEqual(moved, [(1, uid + 1)])
        mailbox = yield defer.ensureDeferred(store.get_mailbox("12065557777"))
        self.assertEqual(mailbox.used_bytes, 100)
        self.assertEqual((yield defer.ensureDeferred(store.get_message_infos(saved.id))), [])

    @defer.inlineCallbacks
    def test_recent_is_claimed_by_one_session(self):
        mailbox = yield defer.ensureDeferred(self._account())
        store = self.store.mailboxes
        yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"1"))
        yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"2"))
        inbox = yield defer.ensureDeferred(store.get_folder(mailbox.id, "INBOX"))
        first = yield defer.ensureDeferred(store.claim_recent(inbox.id))
        second = yield defer.ensureDeferred(store.claim_recent(inbox.id))
        self.assertEqual(first, (0, 2))
        self.assertEqual(second, (2, 2))

    @defer.inlineCallbacks
    def test_mwi_counts(self):
        yield defer.ensureDeferred(self._account())
        store = self.store.mailboxes
        yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"v1", kind="voice"))
        yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"v2", kind="voice",
                                                       urgent=True, flags=SEEN))
        yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"v3", kind="voice",
                                                       flags=DELETED))
        yield defer.ensureDeferred(store.store_message("12065557777", "Trash", b"v4", kind="voice"))
        yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"f", kind="fax"))
        yield defer.ensureDeferred(store.store_message("12065557777", "INBOX", b"e"))
        counts = yield defer.ensureDeferred(store.get_message_counts("12065557777"))
        self.assertEqual(counts["voice"], {"new": 1, "old": 1, "urgent_new": 0, "urgent_old": 1})
        self.assertEqual(counts["fax"]["new"], 1)

    @defer.inlineCallbacks
    def test_folders(self):
        mailbox = yield defer.ensureDeferred(self._account())
        store = self.store.mailboxes
        folder = yield defer.ensureDeferred(store.add_folder(mailbox.id, "Work"))
        with self.assertRaises(AlreadyExists):
            yield defer.ensureDeferred(store.add_folder(mailbox.id, "Work"))
        yield defer.ensureDeferred(store.store_message("12065557777", "Work", b"w" * 50))
        yield defer.ensureDeferred(store.delete_folder(folder.id))
        again = yield defer.ensureDeferred(store.add_folder(mailbox.id, "Work"))
        self.assertNotEqual(again.uidvalidity, folder.uidvalidity)
        mailbox = yield defer.ensureDeferred(store.get_mailbox("12065557777"))
        self.assertEqual(mailbox.used_bytes, 0)
        with self.assertRaises(NotFound):
            yield defer.ensureDeferred(store.get_folder(mailbox.id, "Nope"))
        names = [f.name for f in (yield defer.ensureDeferred(store.get_folders(mailbox.id)))]
        self.assertEqual(names, ["INBOX", "Saved", "Sent", "Trash", "Work"])
