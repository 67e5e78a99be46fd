from twisted.internet import defer

from tests.support import StoreTestCase, on_both_engines


@on_both_engines
class OutboundStoreTests(StoreTestCase):
    @defer.inlineCallbacks
    def test_claim_is_exclusive_until_the_lease_ends(self):
        outbound = self.store.outbound
        ids = yield defer.ensureDeferred(outbound.add_outbound(
            "a@example.net", ["b@example.com", "c@example.org"], b"Subject: x\r\n\r\nbody\r\n"))
        self.assertEqual(len(ids), 2)
        first = yield defer.ensureDeferred(outbound.claim_outbound("node-a", lease=300))
        self.assertEqual([item.recipient for item in first], ["b@example.com", "c@example.org"])
        self.assertEqual(first[0].data, b"Subject: x\r\n\r\nbody\r\n")
        second = yield defer.ensureDeferred(outbound.claim_outbound("node-b", lease=300))
        self.assertEqual(second, [])
        yield defer.ensureDeferred(outbound.delete_outbound(first[0].id))
        yield defer.ensureDeferred(outbound.set_outbound_retry(first[1].id, 0, "451 try later"))
        again = yield defer.ensureDeferred(outbound.claim_outbound("node-b", lease=300))
        self.assertEqual([(i.recipient, i.attempts, i.last_error) for i in again],
                         [("c@example.org", 1, "451 try later")])
        yield defer.ensureDeferred(outbound.delete_outbound(again[0].id))
        left = yield defer.ensureDeferred(outbound.get_outbound())
        self.assertEqual(left, [])
