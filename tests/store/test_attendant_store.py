from twisted.internet import defer, task

from portaum_tx.store import Store

from portaum_tx.store import AlreadyExists, NotFound
from tests.support import StoreTestCase, on_both_engines

FOLDERS = (("INBOX", None),)
ACCOUNT = "18005551234"


def d(coroutine):
    return defer.ensureDeferred(coroutine)


class AttendantStoreCase(StoreTestCase):
    async def _open(self):
        await super()._open()
        customer = await self.store.accounts.add_customer("SmartDesign")
        await self.store.accounts.add_account(ACCOUNT, customer.id, quota_bytes=10 ** 6,
                                              mailbox_folders=FOLDERS)
        self.attendant = self.store.attendant


@on_both_engines
class MenuStoreTests(AttendantStoreCase):
    @defer.inlineCallbacks
    def test_store_menus_replaces_the_set_and_carries_prompts_on_rename(self):
        yield d(self.attendant.store_menus(ACCOUNT, [("ROOT", "", '{"1": {"action": "menu", "target": "Sales"}}'),
                                                     ("Sales", "wd{mo-fr}", "{}")]))
        menus = yield d(self.attendant.get_menus(ACCOUNT))
        self.assertEqual([(m.name, m.period) for m in menus], [("ROOT", ""), ("Sales", "wd{mo-fr}")])
        yield d(self.attendant.store_attendant_prompt(ACCOUNT, "menu:Sales", "intro", b".snd-sales"))
        yield d(self.attendant.store_menus(ACCOUNT, [("ROOT", "", '{"1": {"action": "menu", "target": "Sellers"}}'),
                                                     ("Sellers", "wd{mo-fr}", "{}")], renamed=("Sales", "Sellers")))
        self.assertEqual((yield d(self.attendant.get_attendant_prompt(ACCOUNT, "menu:Sellers", "intro"))),
                         b".snd-sales")
        self.assertIsNone((yield d(self.attendant.get_attendant_prompt(ACCOUNT, "menu:Sales", "intro"))))
        root = yield d(self.attendant.get_menu(ACCOUNT, "ROOT"))
        self.assertIn("Sellers", root.events)
        # A menu left out is removed together with its recordings.
        yield d(self.attendant.store_menus(ACCOUNT, [("ROOT", "", "{}")]))
        self.assertEqual([m.name for m in (yield d(self.attendant.get_menus(ACCOUNT)))], ["ROOT"])
        self.assertEqual((yield d(self.attendant.get_attendant_prompts(ACCOUNT))), [])
        with self.assertRaises(NotFound):
            yield d(self.attendant.get_menu(ACCOUNT, "Sellers"))
        with self.assertRaises(NotFound):
            yield d(self.attendant.store_menus("19999999999", [("ROOT", "", "{}")]))

    @defer.inlineCallbacks
    def test_prompts_round_trip(self):
        yield d(self.attendant.store_attendant_prompt(ACCOUNT, "menu:ROOT", "menu", b"one"))
        yield d(self.attendant.store_attendant_prompt(ACCOUNT, "menu:ROOT", "menu", b"two!"))
        yield d(self.attendant.store_attendant_prompt(ACCOUNT, "queue:support", "music", b"la"))
        listed = yield d(self.attendant.get_attendant_prompts(ACCOUNT))
        self.assertEqual([(s, k, n) for s, k, n, _ in listed],
                         [("menu:ROOT", "menu", 4), ("queue:support", "music", 2)])
        self.assertTrue((yield d(self.attendant.delete_attendant_prompt(ACCOUNT, "menu:ROOT", "menu"))))
        self.assertFalse((yield d(self.attendant.delete_attendant_prompt(ACCOUNT, "menu:ROOT", "menu"))))


@on_both_engines
class DirectoryStoreTests(AttendantStoreCase):
    @defer.inlineCallbacks
    def test_entries(self):
        yield d(self.attendant.add_directory_entry(ACCOUNT, "116", "John", "Brown"))
        yield d(self.attendant.add_directory_entry(ACCOUNT, "145", "Mary", "Broslavsky"))
        yield d(self.attendant.add_directory_entry(ACCOUNT, "100", "Cecil", "Asok", excluded=True))
        with self.assertRaises(AlreadyExists):
            yield d(self.attendant.add_directory_entry(ACCOUNT, "116", "Jim", "Other"))
        with self.assertRaises(NotFound):
            yield d(self.attendant.add_directory_entry("19999999999", "1", "A", "B"))
        every = yield d(self.attendant.get_directory_entries(ACCOUNT))
        self.assertEqual([e.last_name for e in every], ["Asok", "Broslavsky", "Brown"])
        listed = yield d(self.attendant.get_directory_entries(ACCOUNT, include_excluded=False))
        self.assertEqual([e.extension for e in listed], ["145", "116"])
        entry = yield d(self.attendant.set_directory_entry(ACCOUNT, "100", excluded=False))
        self.assertFalse(entry.excluded)
        self.assertFalse(entry.has_name_audio)
        yield d(self.attendant.store_directory_name(ACCOUNT, "116", b".snd"))
        self.assertTrue((yield d(self.attendant.get_directory_entry(ACCOUNT, "116"))).has_name_audio)
        self.assertEqual((yield d(self.attendant.get_directory_name(ACCOUNT, "116"))), b".snd")
        yield d(self.attendant.store_directory_name(ACCOUNT, "116", None))
        self.assertIsNone((yield d(self.attendant.get_directory_name(ACCOUNT, "116"))))
        yield d(self.attendant.delete_directory_entry(ACCOUNT, "145"))
        with self.assertRaises(NotFound):
            yield d(self.attendant.delete_directory_entry(ACCOUNT, "145"))
        with self.assertRaises(NotFound):
            yield d(self.attendant.set_directory_entry(ACCOUNT, "145", last_name="X"))
        self.assertFalse((yield d(self.attendant.get_hide_extensions(ACCOUNT))))
        yield d(self.attendant.set_hide_extensions(ACCOUNT, True))
        self.assertTrue((yield d(self.attendant.get_hide_extensions(ACCOUNT))))


@on_both_engines
class QueueStoreTests(AttendantStoreCase):
    async def queue(self, max_connected=2):
        return await self.attendant.add_queue(ACCOUNT, "support", "200", max_connected, 120)

    @defer.inlineCallbacks
    def test_queue_definitions(self):
        queue = yield d(self.queue())
        self.assertEqual((queue.destination, queue.max_connected, queue.average_seconds, queue.connected),
                         ("200", 2, 120, 0))
        with self.assertRaises(AlreadyExists):
            yield d(self.queue())
        changed = yield d(self.attendant.set_queue(ACCOUNT, "support", max_connected=5))
        self.assertEqual(changed.max_connected, 5)
        self.assertEqual([q.name for q in (yield d(self.attendant.get_queues(ACCOUNT)))], ["support"])
        yield d(self.attendant.delete_queue(ACCOUNT, "support"))
        with self.assertRaises(NotFound):
            yield d(self.attendant.get_queue(ACCOUNT, "support"))

    @defer.inlineCallbacks
    def test_order_and_slots(self):
        queue = yield d(self.queue(max_connected=2))
        callers = []
        for n in range(4):
            callers.append((yield d(self.attendant.add_queue_caller(queue.id, f"call-{n}", "node-a"))))
        standing = yield d(self.attendant.get_queue_standing(callers[2].id))
        self.assertEqual((standing.position, standing.waiting, standing.connected), (3, 4, 0))
        # Only the first caller waiting may take a slot.
        self.assertFalse((yield d(self.attendant.claim_queue_slot(callers[1].id))))
        self.assertTrue((yield d(self.attendant.claim_queue_slot(callers[0].id))))
        self.assertTrue((yield d(self.attendant.claim_queue_slot(callers[1].id))))
        # The queue is at its maximum: the third waits although it is first now.
        self.assertEqual((yield d(self.attendant.get_queue_standing(callers[2].id))).position, 1)
        self.assertFalse((yield d(self.attendant.claim_queue_slot(callers[2].id))))
        self.assertEqual((yield d(self.attendant.get_queue(ACCOUNT, "support"))).connected, 2)
        yield d(self.attendant.set_queue_caller_connected(callers[0].id))
        # A waiting caller who hangs up leaves without giving back a slot it never had.
        yield d(self.attendant.delete_queue_caller(callers[3].id))
        self.assertEqual((yield d(self.attendant.get_queue(ACCOUNT, "support"))).connected, 2)
        yield d(self.attendant.delete_queue_caller(callers[0].id))
        self.assertEqual((yield d(self.attendant.get_queue(ACCOUNT, "support"))).connected, 1)
        self.assertTrue((yield d(self.attendant.claim_queue_slot(callers[2].id))))
        left = yield d(self.attendant.get_queue_callers(queue.id))
        self.assertEqual([(c.call_id, c.state) for c in left], [("call-1", "offered"), ("call-2", "offered")])
        # Leaving twice gives back one slot only.
        yield d(self.attendant.delete_queue_caller(callers[1].id))
        yield d(self.attendant.delete_queue_caller(callers[1].id))
        self.assertEqual((yield d(self.attendant.get_queue(ACCOUNT, "support"))).connected, 1)

    @defer.inlineCallbacks
    def test_concurrent_claims_from_two_nodes_never_over_connect(self):
        queue = yield d(self.queue(max_connected=3))
        other = yield d(self.open_store())
        stores = [self.attendant, other.attendant]
        callers = []
        for n in range(8):
            callers.append((yield d(stores[n % 2].add_queue_caller(queue.id, f"call-{n}", f"node-{n % 2}"))))
        for _ in range(4):
            claims = [d(stores[n % 2].claim_queue_slot(c.id)) for n, c in enumerate(callers)]
            yield defer.gatherResults(claims)
        state = yield d(self.attendant.get_queue(ACCOUNT, "support"))
        self.assertEqual(state.connected, 3)
        rows = yield d(self.attendant.get_queue_callers(queue.id))
        self.assertEqual([r.call_id for r in rows if r.state == "offered"], ["call-0", "call-1", "call-2"])

    @defer.inlineCallbacks
    def test_stale_callers_are_purged_and_their_slots_given_back(self):
        queue = yield d(self.queue(max_connected=1))
        first = yield d(self.attendant.add_queue_caller(queue.id, "call-0"))
        second = yield d(self.attendant.add_queue_caller(queue.id, "call-1"))
        self.assertTrue((yield d(self.attendant.claim_queue_slot(first.id))))
        self.assertEqual((yield d(self.attendant.delete_stale_queue_callers(queue.id, 60))), 0)
        # Rows whose heartbeat is older than the limit go; fresh ones stay.
        self.assertEqual((yield d(self.attendant.delete_stale_queue_callers(queue.id, -1))), 2)
        self.assertEqual((yield d(self.attendant.get_queue(ACCOUNT, "support"))).connected, 0)
        self.assertFalse((yield d(self.attendant.touch_queue_caller(second.id))))

    @defer.inlineCallbacks
    def test_asking_for_a_turn_keeps_a_waiting_caller_alive(self):
        clock = task.Clock()
        clock.advance(1000)
        attendant = Store(self.store.db, clock).attendant
        queue = yield d(attendant.add_queue(ACCOUNT, "support", "200", 1, 60))
        first = yield d(attendant.add_queue_caller(queue.id, "call-0"))
        asking = yield d(attendant.add_queue_caller(queue.id, "call-1"))
        silent = yield d(attendant.add_queue_caller(queue.id, "call-2"))
        self.assertTrue((yield d(attendant.claim_queue_slot(first.id))))
        clock.advance(100)
        yield d(attendant.touch_queue_caller(first.id))
        self.assertFalse((yield d(attendant.claim_queue_slot(asking.id))))
        self.assertEqual((yield d(attendant.delete_stale_queue_callers(queue.id, 90))), 1)
        left = yield d(attendant.get_queue_callers(queue.id))
        self.assertEqual([(c.call_id, c.heartbeat) for c in left], [("call-0", 1100), ("call-1", 1100)])
        self.assertNotIn(silent.id, [c.id for c in left])
        self.assertEqual((yield d(attendant.get_queue(ACCOUNT, "support"))).connected, 1)
        with self.assertRaises(NotFound):
            yield d(attendant.claim_queue_slot(silent.id))
