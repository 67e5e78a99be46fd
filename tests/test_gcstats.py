import gc

from twisted.trial import unittest

from portaum_tx.gcstats import CollectorPauses


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
