"""Estimated wait, what a waiting caller hears, and music on hold that follows on."""

import numpy as np
from twisted.internet import defer, task
from twisted.trial import unittest

from portaum_tx.ivr import queues
from portaum_tx.ivr.fake import FakeCall


class EstimateTests(unittest.TestCase):
    def test_guide_formula(self):
        # average duration / maximum connected calls * callers ahead
        self.assertEqual(queues.estimated_wait(180, 2, 3), 270)
        self.assertEqual(queues.estimated_wait(180, 2, 0), 0)
        self.assertEqual(queues.estimated_wait(90, 4, 1), 22.5)
        with self.assertRaisesRegex(queues.QueueError, "at least 1"):
            queues.estimated_wait(180, 0, 3)

    def test_announcements(self):
        call = FakeCall(task.Clock())
        self.assertEqual(queues.announcement(call, 1, 0),
                         ["queue-you-are-next", "queue-estimated-wait", "queue-less-than", "1", "minute"])
        self.assertEqual(queues.announcement(call, 4, 270),
                         ["queue-your-position", "4", "queue-estimated-wait", "5", "minutes"])
        self.assertEqual(queues.announcement(call, 2, 45)[-3:], ["queue-less-than", "1", "minute"])

    def test_settings_checks(self):
        queues.QueueSettings("200", 2, 120).check()
        for settings, message in [(("2x0", 1, 1), "destination"), (("200", 0, 1), "maximum connected"),
                                  (("200", 1, 0), "average call duration")]:
            with self.assertRaisesRegex(queues.QueueError, message):
                queues.QueueSettings(*settings).check()


class MusicTests(unittest.TestCase):
    def test_default_music_is_audible_pcm(self):
        pcm = queues.default_music_pcm()
        self.assertEqual(pcm.dtype, np.int16)
        self.assertEqual(len(pcm), 8 * 8000)
        self.assertGreater(np.abs(pcm).max(), 3000)

    @defer.inlineCallbacks
    def test_slices_follow_on_and_wrap(self):
        clock = task.Clock()
        call = FakeCall(clock)
        pcm = np.arange(8000 * 3, dtype=np.int16)
        music = queues.Music(pcm, "tune")

        async def play():
            await music.play(call, 2.0)
            await music.play(call, 2.0)
        yield call.run(play())
        heard = np.concatenate([a.pcm for a in call.played_audio])
        self.assertEqual(len(heard), 4 * 8000)
        self.assertTrue(np.array_equal(heard[:3 * 8000], pcm))
        self.assertTrue(np.array_equal(heard[3 * 8000:], pcm[:8000]))
        self.assertEqual(clock.seconds(), 4.0)
