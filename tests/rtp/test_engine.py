from twisted.internet.task import Clock
from twisted.trial import unittest

from portaum_tx.rtp.engine import MediaEngine
from portaum_tx.rtp.player import Prompt
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.session import MediaParams
from tests.rtp.fakes import PEER, FakeUdpReactor


class FakeReactor(FakeUdpReactor, Clock):
    def __init__(self):
        FakeUdpReactor.__init__(self)
        Clock.__init__(self)


class MediaEngineTests(unittest.TestCase):
    def test_call_flow_as_the_sip_layer_drives_it(self):
        reactor = FakeReactor()
        engine = MediaEngine(reactor, (16000, 16099), "127.0.0.1", dead_peer_timeout=20.0)
        engine.start()
        session = engine.create_session()
        self.assertEqual(session.local_port, 16000)
        self.assertEqual(session.dead_peer_timeout, 20.0)
        session.configure(MediaParams(PEER, payload_type=0, telephone_event_pt=101, ptime=20))
        session.start()
        results = []
        engine.player(session).play([Prompt(PCMU, b"\x42" * 480)]).addCallback(results.append)
        for _ in range(5):
            reactor.advance(0.02)
        self.assertEqual(results[0].reason, "finished")
        payloads = [p.payload for p, _ in reactor.ports[16000].rtp()]
        self.assertEqual(payloads[:3], [b"\x42" * 160] * 3)
        engine.stop()
        self.assertTrue(session.closed)
        self.assertFalse(reactor.ports[16000].listening)
        self.assertFalse(engine.media_clock.running)
