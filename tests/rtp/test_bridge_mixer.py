import numpy as np
from twisted.trial import unittest

from portaum_tx.rtp import tones
from portaum_tx.rtp.bridge import Bridge
from portaum_tx.rtp.codecs import PCMA, PCMU
from portaum_tx.rtp.dtmf import TelephoneEvent
from portaum_tx.rtp.mixer import ConferenceMixer
from portaum_tx.rtp.player import Player, Silence
from portaum_tx.rtp.session import MediaParams
from tests.rtp.fakes import PEER, FakePeer, Rig


def last_audio(rig, session):
    packets = [p for p, _ in rig.reactor.ports[session.local_port].rtp() if p.payload_type in (0, 8)]
    return session.codec.decode(packets[-1].payload)


def constant(value):
    return np.full(160, value, dtype=np.int16)


class BridgeTests(unittest.TestCase):
    def test_audio_crosses_both_ways_with_transcoding(self):
        rig = Rig()
        a = rig.session()
        b = rig.session(MediaParams(PEER, payload_type=8))
        Bridge(a, b).start()
        peer_a, peer_b = FakePeer(a), FakePeer(b, payload_type=8)
        beep = tones.beep(20)
        for _ in range(4):
            peer_a.send(PCMU.encode(beep))
            peer_b.send(PCMA.encode(constant(1000)))
            rig.run(0.02)
        np.testing.assert_array_equal(last_audio(rig, b), PCMA.decode(PCMA.encode(PCMU.decode(PCMU.encode(beep)))))
        self.assertTrue(np.all(np.abs(last_audio(rig, a).astype(int) - 1000) < 40))

    def test_rfc4733_digits_forwarded_and_converted_to_tones(self):
        rig = Rig()
        a = rig.session()
        b = rig.session(MediaParams(PEER, telephone_event_pt=None))
        Bridge(a, b).start()
        FakePeer(a).send(TelephoneEvent(3, False, 10, 160).to_bytes(), payload_type=101, marker=True)
        rig.run(0.3)
        listener = rig.session(MediaParams(PEER, telephone_event_pt=None))
        digits = []
        listener.dtmf_listeners.append(digits.append)
        packets = [p for p, _ in rig.reactor.ports[b.local_port].rtp()]
        peer = FakePeer(listener)
        for packet in packets:
            peer.send(packet.payload)
            rig.run(0.02)
        self.assertEqual([d.digit for d in digits], ["3"])

    def test_hangup_of_either_leg_ends_the_bridge(self):
        rig = Rig()
        a, b = rig.session(), rig.session()
        ended = []
        Bridge(a, b).start().addCallback(ended.append)
        b.close()
        self.assertEqual(ended, [b])
        self.assertIsNone(a.source)
        self.assertEqual(a.consumers, [])

    def test_stop_and_takeover(self):
        rig = Rig()
        a, b = rig.session(), rig.session()
        ended = []
        bridge = Bridge(a, b)
        bridge.start().addCallback(ended.append)
        bridge.stop()
        self.assertEqual(ended, [None])
        Bridge(a, b).start().addCallback(ended.append)
        Player(a).play([Silence(100)])  # an announcement to one leg breaks the bridge
        self.assertEqual(ended, [None, None])
        self.assertIsNone(b.source)


class MixerTests(unittest.TestCase):
    def test_each_member_hears_the_others_not_itself(self):
        rig = Rig()
        members = [rig.session() for _ in range(4)]
        mixer = ConferenceMixer(rig.media)
        for session in members:
            mixer.add(session)
        peers = [FakePeer(s) for s in members]
        levels = [1000, 2000, -500, 0]
        for _ in range(4):
            for peer, level in zip(peers, levels):
                peer.send(PCMU.encode(constant(level)))
            rig.run(0.02)
        decoded_inputs = [int(PCMU.decode(PCMU.encode(constant(v)))[0]) for v in levels]
        total = sum(decoded_inputs)
        for session, own in zip(members, decoded_inputs):
            heard = last_audio(rig, session)
            expected = int(PCMU.decode(PCMU.encode(constant(total - own)))[0])
            self.assertEqual(int(heard[0]), expected)

    def test_clipping_and_mute(self):
        rig = Rig()
        members = [rig.session() for _ in range(3)]
        mixer = ConferenceMixer(rig.media)
        for session in members:
            mixer.add(session)
        mixer.set_muted(members[2], True)
        peers = [FakePeer(s) for s in members]
        for _ in range(4):
            for peer, level in zip(peers, (30000, 30000, 12000)):
                peer.send(PCMU.encode(constant(level)))
            rig.run(0.02)
        self.assertEqual(int(last_audio(rig, members[2])[0]), 32124)  # 60000 clipped, then u-law max
        # member 0 hears member 1 only: the muted one is not mixed in
        self.assertEqual(int(last_audio(rig, members[0])[0]), int(PCMU.decode(PCMU.encode(constant(30000)))[0]))

    def test_leaving_and_empty_conference(self):
        rig = Rig()
        a, b = rig.session(), rig.session()
        mixer = ConferenceMixer(rig.media)
        mixer.add(a)
        mixer.add(b)
        a.close()
        self.assertEqual(mixer.members, (b,))
        mixer.remove(b)
        self.assertEqual(mixer.members, ())
        self.assertEqual(rig.media._hooks, [])
        rig.run(0.04)
        self.assertEqual(last_audio(rig, b)[0], 0)

    def test_forty_members_in_one_hook(self):
        rig = Rig()
        members = [rig.session() for _ in range(40)]
        mixer = ConferenceMixer(rig.media)
        for session in members:
            mixer.add(session)
        self.assertEqual(len(rig.media._hooks), 1)
        peers = [FakePeer(s) for s in members]
        levels = [25 * i - 400 for i in range(40)]
        for _ in range(4):
            for peer, level in zip(peers, levels):
                peer.send(PCMU.encode(constant(level)))
            rig.run(0.02)
        inputs = [int(PCMU.decode(PCMU.encode(constant(v)))[0]) for v in levels]
        total = sum(inputs)
        heard = [int(last_audio(rig, s)[0]) for s in members]
        expected = [int(PCMU.decode(PCMU.encode(constant(total - own)))[0]) for own in inputs]
        self.assertEqual(heard, expected)
