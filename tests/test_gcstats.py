import gc
import weakref

from twisted.internet import task
from twisted.trial import unittest

from portaum_tx.gcstats import CollectorPauses, SurvivorFreezer


class FakeTimer:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class CollectorPausesTests(unittest.TestCase):
    def test_times_each_generation(self):
        timer = FakeTimer()
        pauses = CollectorPauses(timer)
        for generation, took in ((0, 0.001), (0, 0.003), (2, 0.120), (1, 0.010)):
            pauses._callback("start", {"generation": generation})
            timer.now += took
            pauses._callback("stop", {"generation": generation, "collected": 5, "uncollectable": 0})
        status = pauses.status()
        self.assertEqual(status["collections"], [2, 1, 1])
        self.assertEqual(status["max_pause_ms"], [3.0, 10.0, 120.0])
        self.assertEqual(status["total_pause_ms"], [4.0, 10.0, 120.0])
        self.assertEqual(status["last_full_pause_ms"], 120.0)
        self.assertEqual(status["collected"], 20)
        self.assertEqual(status["thresholds"], list(gc.get_threshold()))

    def test_stop_without_start_is_ignored(self):
        pauses = CollectorPauses(FakeTimer())
        pauses._callback("stop", {"generation": 2, "collected": 0})
        self.assertEqual(pauses.status()["collections"], [0, 0, 0])
        self.assertIsNone(pauses.status()["last_full_pause_ms"])

    def test_installed_it_sees_real_collections(self):
        pauses = CollectorPauses()
        pauses.install()
        pauses.install()  # once only
        self.addCleanup(pauses.uninstall)
        self.assertEqual(gc.callbacks.count(pauses._callback), 1)
        gc.collect()
        self.assertEqual(pauses.status()["collections"][2], 1)
        self.assertIsNotNone(pauses.status()["last_full_pause_ms"])
        pauses.uninstall()
        gc.collect()
        self.assertEqual(pauses.status()["collections"][2], 1)
        self.assertNotIn(pauses._callback, gc.callbacks)


class Node:
    """Something the collector tracks, able to form a cycle and be watched."""

    def __init__(self):
        self.other = None


def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


class SurvivorFreezerTests(unittest.TestCase):
    """On the process's own collector: each test puts it back as it found it."""

    def setUp(self):
        self.clock = task.Clock()
        self.freezer = SurvivorFreezer(self.clock, thaw_interval=3600)
        self.addCleanup(self.freezer.stop)
        self.addCleanup(gc.unfreeze)

    def test_survivors_of_a_full_collection_are_frozen(self):
        self.freezer.start()
        self.freezer.start()  # once only
        self.assertEqual(gc.callbacks.count(self.freezer._callback), 1)
        kept = Node()
        gc.collect()
        self.assertTrue(gc.is_tracked(kept))
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertEqual(gc.get_count()[2], 0)  # the oldest generation is empty again
        self.assertEqual(self.freezer.status()["freezes"], 1)
        # younger collections leave what they promote alone
        gc.collect(1)
        self.assertEqual(self.freezer.status()["freezes"], 1)

    def test_a_frozen_object_released_is_still_freed(self):
        self.freezer.start()
        kept = Node()
        watch = weakref.ref(kept)
        gc.collect()
        del kept
        self.assertIsNone(watch())  # reference counting needs no walk

    def test_a_cycle_frozen_waits_for_the_thaw(self):
        self.freezer.start()
        a = Node()
        a.other = Node()
        a.other.other = a
        watch = weakref.ref(a)
        gc.collect()
        del a
        gc.collect()
        self.assertIsNotNone(watch())  # out of the collector's reach while frozen
        self.clock.advance(3600)
        self.assertIsNone(watch())
        status = self.freezer.status()
        self.assertEqual(status["thaws"], 1)
        self.assertGreaterEqual(status["reclaimed_at_last_thaw"], 2)
        self.assertGreater(gc.get_freeze_count(), 0)  # the survivors are frozen again
        self.clock.advance(3600)
        self.assertEqual(self.freezer.status()["thaws"], 2)

    def test_young_cycles_are_collected_as_before(self):
        self.freezer.start()
        gc.collect()
        watch = cycle()
        gc.collect()
        self.assertIsNone(watch())

    def test_stopped_it_freezes_nothing_more_and_thaws_no_more(self):
        self.freezer.start()
        gc.collect()
        self.freezer.stop()
        self.assertEqual(gc.get_freeze_count(), 0)  # given back
        self.assertNotIn(self.freezer._callback, gc.callbacks)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        gc.collect()
        self.assertEqual(self.freezer.status()["freezes"], 1)
        self.assertEqual(gc.get_freeze_count(), 0)

    def test_thaw_interval_must_be_positive(self):
        with self.assertRaises(ValueError):
            SurvivorFreezer(self.clock, thaw_interval=0)
