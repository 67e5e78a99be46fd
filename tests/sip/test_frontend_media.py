"""The SIP front end builds the media engine that [rtp] asks for."""

from twisted.internet import task
from twisted.trial import unittest

from portaum_tx.config import load_config
from portaum_tx.rtp._rtpcore import Pacer
from portaum_tx.rtp.batch_io import BatchedMediaEngine, BatchedMediaClock
from portaum_tx.rtp.engine import MediaEngine
from portaum_tx.sip.frontend import media_engine_for


class MediaEngineChoiceTests(unittest.TestCase):
    def test_reactor_reads_when_configured(self):
        engine = media_engine_for(load_config(None, ["rtp.port_min=20000", "rtp.port_max=20100",
                                                     "rtp.batched_reads=no"]),
                                  task.Clock())
        self.assertIs(type(engine), MediaEngine)
        self.assertEqual((engine.allocator._low, engine.allocator._pairs), (20000, 50))
        self.assertEqual(engine.allocator.interface, "")

    def test_batched_reads_by_default(self):
        config = load_config(None, ["sip.listen_address=127.0.0.1",
                                    "rtp.dead_peer_timeout=10s"])
        engine = media_engine_for(config, task.Clock())
        self.assertIsInstance(engine, BatchedMediaEngine)
        self.assertIsInstance(engine.media_clock, BatchedMediaClock)
        self.assertEqual(engine.allocator.interface, "127.0.0.1")
        self.assertEqual(engine.session_defaults["dead_peer_timeout"], 10.0)

    def test_rtp_goes_out_through_the_pacer_60_ms_ahead_by_default(self):
        engine = media_engine_for(load_config(None, []), task.Clock())
        self.assertIsInstance(engine.media_clock.pacer, Pacer)
        self.assertEqual(engine.media_clock.send_ahead, 3)

    def test_the_tick_sends_itself_with_send_ahead_0(self):
        engine = media_engine_for(load_config(None, ["rtp.send_ahead=0"]), task.Clock())
        self.assertIsNone(engine.media_clock.pacer)
        self.assertEqual(engine.media_clock.send_ahead_samples, 0)

    def test_prompts_are_prepared_ahead_only_when_asked_and_with_a_pacer(self):
        default = media_engine_for(load_config(None, []), task.Clock())
        self.assertFalse(default.media_clock.prefetching)
        self.assertEqual(default.status()["prompt_ahead_ms"], 60)  # no deeper than send_ahead
        asked = media_engine_for(load_config(None, ["rtp.prompt_ahead=400"]), task.Clock())
        self.assertTrue(asked.media_clock.prefetching)
        self.assertEqual(asked.media_clock.prompt_ahead, 20)
        self.assertEqual(asked.status()["prompt_ahead_ms"], 400)
        self.assertEqual(asked.status()["pacer"]["withdrawn"], 0)
        no_pacer = media_engine_for(load_config(None, ["rtp.send_ahead=0", "rtp.prompt_ahead=400"]),
                                    task.Clock())
        self.assertFalse(no_pacer.media_clock.prefetching)
