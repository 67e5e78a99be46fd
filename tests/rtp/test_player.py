import os

from twisted.internet import defer
from twisted.trial import unittest

from portaum_tx.rtp import tones
from portaum_tx.rtp.codecs import PCMA, PCMU
from portaum_tx.rtp.dtmf import TelephoneEvent
from portaum_tx.rtp.player import (
    AuFormatError, MusicOnHold, Player, PlayerError, Prompt, PromptCache, Silence, Tone, build_au, parse_au,
)
from portaum_tx.rtp.session import MediaParams
from tests.rtp.fakes import PEER, FakePeer, Rig


def sent_payloads(rig, session):
    return [p.payload for p, _ in rig.reactor.ports[session.local_port].rtp() if p.payload_type in (0, 8)]


def press(session, digit_code, timestamp):
    peer = FakePeer(session, sequence=timestamp % 60000)
    peer.send(TelephoneEvent(digit_code, False, 10, 160).to_bytes(), payload_type=101, marker=True,
              timestamp=timestamp)


class AuFileTests(unittest.TestCase):
    def test_roundtrip_and_header_fields(self):
        data = build_au(b"\x01\x02\x03", annotation=b"hello")
        self.assertEqual(data[:4], b".snd")
        self.assertEqual(parse_au(data), (PCMU, b"\x01\x02\x03"))
        self.assertEqual(parse_au(build_au(b"\x55", PCMA)), (PCMA, b"\x55"))
        unknown_size = bytearray(build_au(b"\x09" * 10))
        unknown_size[8:12] = b"\xff\xff\xff\xff"
        self.assertEqual(parse_au(bytes(unknown_size))[1], b"\x09" * 10)

    def test_rejects_other_formats(self):
        good = build_au(b"\x00" * 8)
        cases = [
            (b"RIFF" + good[4:], "not an .au file"),
            (good[:12] + (3).to_bytes(4, "big") + good[16:], "encoding 3"),
            (good[:16] + (16000).to_bytes(4, "big") + good[20:], "16000 Hz"),
            (good[:8] + (99).to_bytes(4, "big") + good[12:], "announces 99"),
            (good[:10], "too short"),
        ]
        for data, message in cases:
            with self.assertRaisesRegex(AuFormatError, message):
                parse_au(data, "prompt.au")

    def test_cache_reads_each_file_once(self):
        path = self.mktemp() + ".au"
        with open(path, "wb") as f:
            f.write(build_au(b"\x10" * 400))
        cache = PromptCache()
        first = cache.load(path)
        os.remove(path)  # a second load must not touch the disk
        self.assertIs(cache.load(path), first)
        self.assertEqual((len(cache), first.duration_ms), (1, 50))
        self.assertEqual(first.encoded(PCMA), PCMA.encode(PCMU.decode(b"\x10" * 400)))
        with self.assertRaisesRegex(AuFormatError, "cannot read"):
            cache.load(self.mktemp())


class PlayerTests(unittest.TestCase):
    def setUp(self):
        self.rig = Rig()
        self.session = self.rig.session()
        self.player = Player(self.session)

    def test_plays_items_in_sequence_then_finishes(self):
        prompt = Prompt(PCMU, bytes(range(256)) * 2)  # 512 samples: 3.2 frames
        results = []
        self.player.play([prompt, Silence(40), Tone(tones.beep(20))]).addCallback(results.append)
        self.rig.run(0.2)
        self.assertEqual(len(results), 1)
        self.assertEqual((results[0].reason, results[0].played_ms), ("finished", 64 + 40 + 20))
        audio = b"".join(sent_payloads(self.rig, self.session))
        expected = bytes(range(256)) * 2 + b"\xff" * 320 + PCMU.encode(tones.beep(20))
        self.assertEqual(audio[: len(expected)], expected)
        self.assertEqual(audio[len(expected):], b"\xff" * (len(audio) - len(expected)))
        self.assertFalse(self.player.playing)

    def test_pcma_leg_gets_transcoded_prompt(self):
        session = self.rig.session(MediaParams(PEER, payload_type=8))
        Player(session).play([Prompt(PCMU, b"\x20" * 160)])
        self.rig.run(0.02)
        self.assertEqual(sent_payloads(self.rig, session)[0], PCMA.encode(PCMU.decode(b"\x20" * 160)))

    def test_barge_in_stops_on_a_digit(self):
        results = []
        self.player.play([Prompt(PCMU, b"\x33" * 8000)], barge_in="*#").addCallback(results.append)
        self.rig.run(0.1)
        press(self.session, 5, 1000)  # not a barge-in digit
        self.rig.run(0.1)
        self.assertEqual(results, [])
        press(self.session, 11, 2000)
        self.assertEqual((results[0].reason, results[0].digit), ("digit", "#"))
        self.assertEqual(results[0].played_ms, 200)
        self.rig.run(0.04)
        self.assertEqual(sent_payloads(self.rig, self.session)[-1], b"\xff" * 160)

    def test_without_barge_in_digits_do_not_interrupt(self):
        results = []
        self.player.play([Prompt(PCMU, b"\x33" * 800)]).addCallback(results.append)
        press(self.session, 1, 1000)
        self.rig.run(0.2)
        self.assertEqual(results[0].reason, "finished")

    def test_music_on_hold_loops_until_stopped(self):
        results = []
        loop = Prompt(PCMU, bytes(range(100)))
        self.player.play([MusicOnHold(loop)]).addCallback(results.append)
        self.rig.run(2.0)
        self.assertEqual(results, [])
        audio = b"".join(sent_payloads(self.rig, self.session))
        self.assertEqual(audio, (bytes(range(100)) * 160)[: len(audio)])
        self.player.stop()
        self.assertEqual(results[0].reason, "stopped")

    def test_cancel_hangup_and_replacement(self):
        d = self.player.play([Prompt(PCMU, b"\x33" * 8000)])
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertIsNone(self.session.source)
        results = []
        self.player.play([Prompt(PCMU, b"\x33" * 8000)]).addCallback(results.append)
        Player(self.session).play([Silence(100)])  # another source takes over
        self.assertEqual(results[0].reason, "stopped")
        other = Player(self.session)
        other.play([Prompt(PCMU, b"\x33" * 8000)]).addCallback(results.append)
        self.session.close()
        self.assertEqual(results[1].reason, "hangup")
        late = other.play([Silence(20)])
        self.assertEqual(self.successResultOf(late).reason, "hangup")

    def test_unplayable_items(self):
        with self.assertRaisesRegex(PlayerError, "cannot play 42"):
            self.player.play([Silence(20), 42])
        with self.assertRaisesRegex(PlayerError, "needs audio"):
            self.player.play([MusicOnHold(Silence(0))])
        self.assertFalse(self.player.playing)

    def test_back_to_back_plays_leave_no_gap(self):
        first = Prompt(PCMU, b"\x41" * 320)
        second = Prompt(PCMU, b"\x42" * 320)
        self.player.play([first]).addCallback(lambda _: self.player.play([second]))
        self.rig.run(0.1)
        payloads = sent_payloads(self.rig, self.session)
        self.assertEqual(payloads[:5], [b"\x41" * 160] * 2 + [b"\x42" * 160] * 2 + [b"\xff" * 160])
