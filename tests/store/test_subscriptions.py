"""SIP subscriptions in the store, on both engines: create, refresh, claim a NOTIFY once
across nodes, list by account, delete, expire."""

from twisted.internet import defer

from portaum_tx.store import NotFound
from tests.support import StoreTestCase, on_both_engines

DIALOG = {"call_id": "c1", "local": "<sip:1001@example.com>;tag=a", "remote": "<sip:1001@h>;tag=b",
          "target": "sip:1001@192.0.2.7", "routes": [], "peer": ["udp", "192.0.2.7", 5060]}


def d(coroutine):
    return defer.ensureDeferred(coroutine)


@on_both_engines
class SubscriptionStoreTests(StoreTestCase):
    @defer.inlineCallbacks
    def test_lifecycle(self):
        subs = self.store.subscriptions
        row = yield d(subs.store_subscription("c1;a;b", "1001", "message-summary", DIALOG, 0, 1,
                                              1000))
        self.assertEqual((row.account_id, row.dialog, row.local_cseq, row.remote_cseq,
                          row.expires, row.last_body), ("1001", DIALOG, 0, 1, 1000, ""))
        # The first NOTIFY with a body is claimed once; the same body again is not.
        first = yield d(subs.set_subscription_notified("c1;a;b", "yes", only_if_changed=True))
        again = yield d(subs.set_subscription_notified("c1;a;b", "yes", only_if_changed=True))
        forced = yield d(subs.set_subscription_notified("c1;a;b", "yes", only_if_changed=False))
        self.assertEqual((first, again, forced), (1, None, 2))
        # A refresh keeps the CSeq we reached and the last body.
        row = yield d(subs.store_subscription("c1;a;b", "1001", "message-summary", DIALOG, 0, 3,
                                              2000))
        self.assertEqual((row.local_cseq, row.remote_cseq, row.expires, row.last_body),
                         (2, 3, 2000, "yes"))
        yield d(subs.store_subscription("c2;a;b", "1001", "message-summary", DIALOG, 0, 1, 500))
        yield d(subs.store_subscription("c3;a;b", "2002", "message-summary", DIALOG, 0, 1, 500))
        listed = yield d(subs.get_subscriptions("1001", "message-summary"))
        self.assertEqual(sorted(s.id for s in listed), ["c1;a;b", "c2;a;b"])
        expired = yield d(subs.delete_expired_subscriptions(600))
        self.assertEqual(sorted(s.id for s in expired), ["c2;a;b", "c3;a;b"])
        again = yield d(subs.delete_expired_subscriptions(600))
        self.assertEqual(again, [])
        gone = yield d(subs.delete_subscription("c1;a;b"))
        self.assertEqual(gone.id, "c1;a;b")
        with self.assertRaises(NotFound):
            yield d(subs.get_subscription("c1;a;b"))
        self.assertIsNone((yield d(subs.delete_subscription("c1;a;b"))))
        self.assertIsNone((yield d(subs.set_subscription_notified("c1;a;b", "x", False))))

    @defer.inlineCallbacks
    def test_two_nodes_claim_a_change_once(self):
        other = yield d(self.open_store())
        yield d(self.store.subscriptions.store_subscription("s;a;b", "1001", "message-summary",
                                                            DIALOG, 0, 1, 10 ** 12))
        claims = yield defer.gatherResults([
            d(store.subscriptions.set_subscription_notified("s;a;b", "summary-2", True))
            for store in (self.store, other)])
        self.assertEqual(sorted(c for c in claims if c is not None), [1])
