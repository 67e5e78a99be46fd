import datetime as dt
import email
import email.policy

from twisted.internet import defer, reactor

from portaum_tx.accounts import AccountService
from portaum_tx.mailbox.events import EventBus, MailboxChanged, NewMessage
from portaum_tx.mailbox.service import MailboxFull, MailboxService, UnknownMailbox
from tests.support import StoreTestCase, on_both_engines


def wait_for(events, count):
    """A Deferred that fires once ``events`` holds ``count`` items."""
    d = defer.Deferred()

    def check():
        if len(events) >= count:
            d.callback(list(events))
        else:
            reactor.callLater(0.01, check)
    check()
    return d.addTimeout(10, reactor)


@on_both_engines
class MailboxServiceTests(StoreTestCase):
    async def _setup(self, quota=1_000_000):
        self.events = EventBus(self.store)
        self.addCleanup(self.events.close)
        self.service = MailboxService(self.store, self.events, reactor, domain="example.net")
        accounts = AccountService(self.store, reactor)
        await self.store.accounts.add_customer("Smart Calls, Ltd.")
        await accounts.create_account("12065557777", "Smart Calls, Ltd.", quota=quota,
                                      email="rachel@example.net", timezone="America/Los_Angeles",
                                      password="secret-1")
        await accounts.add_alias("1206555#4545", "12065557777")

    @defer.inlineCallbacks
    def test_voice_delivery_builds_mime_and_announces(self):
        yield defer.ensureDeferred(self._setup())
        seen = []
        self.events.subscribe(NewMessage, seen.append)
        when = dt.datetime(2026, 3, 5, 17, 30, tzinfo=dt.timezone.utc)
        delivered = yield defer.ensureDeferred(self.service.deliver_voice(
            "12065557777", audio=b"RIFF....WAVEfmt ", audio_format="wav", duration=349,
            caller="12065558888", caller_name="Mark", when=when))
        self.assertEqual((delivered.folder, delivered.uid, delivered.kind), ("INBOX", 1, "voice"))
        events = yield wait_for(seen, 1)
        self.assertEqual(events[0].account_id, "12065557777")
        self.assertEqual(events[0].kind, "voice")
        mailbox = yield defer.ensureDeferred(self.service.open("12065557777"))
        inbox = yield defer.ensureDeferred(mailbox.folder("inbox"))
        data = (yield defer.ensureDeferred(mailbox.message_data(inbox, [1])))[1]
        message = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(message["Message-Context"], "voice-message")
        self.assertIn("Mark (12065558888)", message["Subject"])
        self.assertIn("5 minutes 49 seconds", message["Subject"])
        # The time is given in the account's zone: 17:30 UTC is 09:30 in Seattle.
        self.assertIn("09:30", message.get_body(("plain",)).get_content())
        attachment = next(message.iter_attachments())
        self.assertEqual(attachment.get_content_type(), "audio/wav")
        self.assertEqual(attachment.get_content(), b"RIFF....WAVEfmt ")
        counts = yield defer.ensureDeferred(self.service.message_counts("12065557777"))
        self.assertEqual(counts["voice"]["new"], 1)

    @defer.inlineCallbacks
    def test_resolve_by_id_alias_and_address(self):
        yield defer.ensureDeferred(self._setup())
        for name in ("12065557777", "1206555#4545", "Rachel@Example.NET", "12065557777@example.net"):
            self.assertEqual((yield defer.ensureDeferred(self.service.resolve(name))), "12065557777")
        with self.assertRaises(UnknownMailbox):
            yield defer.ensureDeferred(self.service.resolve("nobody@example.net"))

    @defer.inlineCallbacks
    def test_over_quota_is_refused_and_nothing_stored(self):
        yield defer.ensureDeferred(self._setup(quota=1000))
        yield defer.ensureDeferred(self.service.deliver("12065557777", b"x" * 900))
        with self.assertRaises(MailboxFull):
            yield defer.ensureDeferred(self.service.deliver("12065557777", b"y" * 200))
        mailbox = yield defer.ensureDeferred(self.service.open("12065557777"))
        status = yield defer.ensureDeferred(mailbox.status("INBOX"))
        self.assertEqual(status["messages"], 1)

    @defer.inlineCallbacks
    def test_flag_changes_are_announced_and_seen_by_mwi(self):
        yield defer.ensureDeferred(self._setup())
        changes = []
        self.events.subscribe(MailboxChanged, changes.append)
        yield defer.ensureDeferred(self.service.deliver("12065557777", b"v", kind="voice"))
        mailbox = yield defer.ensureDeferred(self.service.open("12065557777"))
        inbox = yield defer.ensureDeferred(mailbox.folder("INBOX"))
        yield defer.ensureDeferred(mailbox.set_flags(inbox, [1], ["\\Seen"]))
        events = yield wait_for(changes, 1)
        self.assertEqual((events[0].change, events[0].uids), ("flags", (1,)))
        counts = yield defer.ensureDeferred(self.service.message_counts("12065557777"))
        self.assertEqual((counts["voice"]["new"], counts["voice"]["old"]), (0, 1))

    @defer.inlineCallbacks
    def test_new_message_event_reaches_another_node(self):
        """Node B hears a delivery made by node A (through the database on PostgreSQL)."""
        yield defer.ensureDeferred(self._setup())
        if self.engine == "sqlite":
            other_store = self.store  # one node: events are in-process
        else:
            other_store = yield defer.ensureDeferred(self.open_store())
        other_bus = EventBus(other_store)
        self.addCleanup(other_bus.close)
        heard = []
        other_bus.subscribe(NewMessage, heard.append)
        if self.engine == "postgres":
            yield other_store.db.engine.listening()
            self.assertIsNot(other_store.db.engine, self.store.db.engine)
        yield defer.ensureDeferred(self.service.deliver("12065557777", b"hello"))
        events = yield wait_for(heard, 1)
        self.assertEqual((events[0].account_id, events[0].uid), ("12065557777", 1))
