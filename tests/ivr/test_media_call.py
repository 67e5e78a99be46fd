"""MediaCall: the Call API over a real RtpSession, fake UDP transports and a task.Clock."""

import numpy as np
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest

from portaum_tx.convert.audio import decode_upload
from portaum_tx.ivr.router import run_application
from portaum_tx.rtp.recorder import Recorder
from tests.ivr.test_voicemail_support import MAILBOX, VoicemailCase

from portaum_tx.ivr.call import Audio, CallHungUp, DialFailed
from portaum_tx.ivr.media_call import MediaCall
from portaum_tx.ivr.prompts import PromptLibrary
from portaum_tx.ivr.fake import speech
from portaum_tx.rtp import tones
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.dtmf import TelephoneEvent
from tests.rtp.fakes import FakePeer, Rig

EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


class RecordingSignalling:
    def __init__(self):
        self.actions = []
        self.dialled = {}

    async def answer(self):
        self.actions.append("answer")

    async def reject(self, code, reason):
        self.actions.append(("reject", code))

    async def hangup(self):
        self.actions.append("hangup")

    async def transfer(self, destination):
        self.actions.append(("transfer", destination))

    async def dial(self, destination, caller_id, timeout):
        self.actions.append(("dial", destination))
        leg = self.dialled.get(destination)
        if leg is None:
            raise DialFailed(destination, "busy", 486)
        return leg


class MediaCallTests(unittest.TestCase):
    def setUp(self):
        self.rig = Rig()
        self.library = PromptLibrary()
        self.session = self.rig.session()
        self.peer = FakePeer(self.session)
        self.signalling = RecordingSignalling()
        self.call = MediaCall(self.rig.clock, self.session, self.library, self.signalling,
                              call_id="c1", calling="15557654321", called="15551230001")
        self.timestamp = 100000

    def sent_payloads(self, session=None):
        session = session or self.session
        return [packet.payload for packet, _ in self.rig.reactor.ports[session.local_port].rtp()
                if packet.payload_type == 0]

    def press(self, digit):
        self.timestamp += 1600
        self.peer.send(TelephoneEvent(EVENTS[digit], False, 10, 160).to_bytes(), payload_type=101,
                       marker=True, timestamp=self.timestamp, advance=False, sequence=self.peer.sequence)
        self.peer.sequence += 1

    def talk(self, pcm, peer=None):
        """Send audio frame by frame in real time."""
        peer = peer or self.peer
        for start in range(0, len(pcm), 160):
            peer.send(PCMU.encode(pcm[start:start + 160]))
            self.rig.run(0.02)

    def start(self, coroutine):
        results = []
        d = defer.ensureDeferred(coroutine)
        d.addBoth(results.append)
        return results

    def test_plays_prompts_from_the_library(self):
        done = self.start(self.call.play(["goodbye", "thank-you"]))
        expected = self.library.load_file(self.library.find_file("goodbye", ["en"]))
        expected += self.library.load_file(self.library.find_file("thank-you", ["en"]))
        self.rig.run(len(expected) / 8000 + 0.1)
        self.assertEqual(done[0].reason, "finished")
        sent = b"".join(self.sent_payloads())
        self.assertEqual(sent[:len(expected)], expected)
        self.assertIsNone(self.session.source)

    def test_language_and_missing_prompt(self):
        self.call.languages = ["es", "en"]
        done = self.start(self.call.play(["no-such-prompt", "goodbye"]))
        expected = self.library.load_file(self.library.find_file("goodbye", ["es"]))
        self.rig.run(len(expected) / 8000 + 0.1)
        self.assertEqual(done[0].reason, "finished")
        self.assertEqual(b"".join(self.sent_payloads())[:len(expected)], expected)

    def test_audio_beep_and_silence(self):
        pcm = speech(0.2)
        done = self.start(self.call.play([Audio(pcm, "greeting")]))
        self.rig.run(0.3)
        self.assertEqual(done[0].reason, "finished")
        self.assertEqual(b"".join(self.sent_payloads())[:1600], PCMU.encode(pcm))

    def test_collect_digits_with_barge_in(self):
        done = self.start(self.call.collect_digits(4, prompts=["vm-main-menu"]))
        self.rig.run(0.5)
        self.press("1")
        self.rig.run(0.04)
        self.assertIsNone(self.session.source)  # the menu stopped at the key
        self.press("2")
        self.press("#")
        self.assertEqual((done[0].digits, done[0].ended_by), ("12", "terminator"))

    def test_collect_timeout_on_the_media_clock(self):
        done = self.start(self.call.collect_digits(4, first_timeout=3))
        self.rig.run(2.9)
        self.assertEqual(done, [])
        self.rig.run(0.2)
        self.assertTrue(done[0].timed_out)

    def test_record_until_pound(self):
        done = self.start(self.call.record(30, None, beep=True))
        self.rig.run(0.6)  # the beep
        self.talk(speech(1.0))
        self.press("#")
        recording = done[0]
        self.assertEqual((recording.ended_by, recording.digit), ("digit", "#"))
        self.assertLessEqual(abs(recording.duration - 1.0), 0.12)
        self.assertEqual(self.session.consumers, [])

    def test_record_inband_terminator_is_trimmed(self):
        self.session.set_inband_dtmf(True)
        done = self.start(self.call.record(30, None, beep=False))
        audio = np.concatenate([speech(1.0), tones.dtmf("#", 100), tones.silence(200)])
        self.talk(audio)
        recording = done[0]
        self.assertEqual(recording.ended_by, "digit")
        self.assertLess(recording.duration, 1.06)

    def test_record_silence(self):
        done = self.start(self.call.record(30, 2.0, beep=False))
        self.talk(np.concatenate([speech(1.0), tones.silence(2500)]))
        self.assertEqual(done[0].ended_by, "silence")
        self.assertLessEqual(abs(done[0].duration - 1.0), 0.12)

    def test_session_close_hangs_up_the_call(self):
        done = self.start(self.call.collect_digits(4, first_timeout=10))
        self.rig.run(0.1)
        self.session.close("bye")
        self.assertIsInstance(done[0].value, CallHungUp)
        self.assertEqual(self.call.hangup_reason, "media bye")

    def test_remote_hangup_during_recording_returns_audio_and_closes_media(self):
        done = self.start(self.call.record(30, None, beep=False))
        self.talk(speech(0.6))
        self.call.remote_hangup("bye")
        self.assertEqual(done[0].ended_by, "hangup")
        self.assertLessEqual(abs(done[0].duration - 0.6), 0.12)
        self.assertTrue(self.session.closed)

    def test_hangup_sends_bye_and_releases_the_ports(self):
        self.start(self.call.answer())
        self.start(self.call.hangup())
        self.assertEqual(self.signalling.actions, ["answer", "hangup"])
        self.assertTrue(self.session.closed)
        self.assertFalse(self.rig.reactor.ports[self.session.local_port].listening)
        self.assertEqual(self.call.hangup_reason, "local")
        self.assertNotIn(self.session, self.rig.media.sessions)

    def test_fax_tone_listener_turns_on_detection(self):
        heard = []
        remove = self.call.on_fax_tone(heard.append)
        self.talk(tones.fax_cng(1))
        self.assertEqual(heard, ["CNG"])
        remove()
        self.assertFalse(self.session.fax_detection)

    def test_transfer(self):
        self.start(self.call.transfer("200"))
        self.assertEqual(self.signalling.actions, [("transfer", "200")])
        self.assertEqual(self.call.hangup_reason, "transferred")

    def test_dial_failure(self):
        done = self.start(self.call.dial("300"))
        self.assertIsInstance(done[0].value, DialFailed)

    def test_bridge_until_the_other_leg_hangs_up(self):
        other_session = self.rig.session()
        other_peer = FakePeer(other_session, ssrc=0x1234)
        other = MediaCall(self.rig.clock, other_session, self.library, RecordingSignalling(), call_id="c2")
        self.signalling.dialled["200"] = other

        async def connect():
            leg = await self.call.dial("200")
            await self.call.bridge(leg)
        done = self.start(connect())
        pcm = speech(0.4)
        self.talk(pcm)
        self.rig.run(0.1)
        heard = b"".join(self.sent_payloads(other_session))
        self.assertIn(PCMU.encode(pcm)[:800], heard)
        other_peer.send(PCMU.encode(pcm[:160]))
        other.remote_hangup("bye")
        self.assertEqual(done, [None])
        self.assertFalse(self.call.is_hungup)
        self.assertIsNone(self.session.source)


class PromptCacheTests(unittest.TestCase):
    def test_encoded_prompts_are_shared_between_calls(self):
        rig = Rig()
        library = PromptLibrary()
        shared = {}
        calls = [MediaCall(rig.clock, rig.session(), library, RecordingSignalling(), prompt_cache=shared)
                 for _ in range(2)]
        for call in calls:
            defer.ensureDeferred(call.play(["goodbye"]))
        self.assertEqual(len(shared), 1)
        [prompt] = shared.values()
        self.assertEqual(prompt.name, "goodbye")
        self.assertTrue(all(call.player.playing for call in calls))
        rig.run(0.1)
        first, second = ([p.payload for p, _ in rig.reactor.ports[c.session.local_port].rtp()] for c in calls)
        self.assertEqual(first, second)
        self.assertEqual(b"".join(first), prompt.encoded(PCMU)[:len(b"".join(first))])


class DepositOverRtpTests(VoicemailCase):
    """The deposit application on a MediaCall: greeting out as RTP, the caller's audio and
    # in, the message in the real store."""

    async def test_deposit_over_rtp(self):
        rig = Rig()
        session = rig.session()
        peer = FakePeer(session)
        signalling = RecordingSignalling()
        call = MediaCall(rig.clock, session, PromptLibrary(), signalling, call_id="rtp-1",
                         calling="15557654321", called=MAILBOX)
        app = self.registry.get("voicemail")
        done = defer.ensureDeferred(run_application(
            app, call, self.context(mailbox=MAILBOX, reason="busy"), {"review": False}, "voicemail"))
        said = speech(1.5)
        sent_speech = 0
        timestamp = 900000
        for _ in range(3000):
            if done.called:
                break
            recording = any(isinstance(c, Recorder) for c in session.consumers)
            if recording and sent_speech < len(said):
                peer.send(PCMU.encode(said[sent_speech:sent_speech + 160]))
                sent_speech += 160
            elif recording:
                timestamp += 1600
                peer.send(TelephoneEvent(11, False, 10, 160).to_bytes(), payload_type=101, marker=True,
                          timestamp=timestamp, advance=False, sequence=peer.sequence)
                peer.sequence += 1
            rig.clock.advance(0.02)
            await deferLater(reactor, 0, lambda: None)
        await done
        self.assertEqual(signalling.actions, ["answer", "hangup"])
        self.assertTrue(session.closed)
        [(info, message)] = await self.messages()
        [attachment] = list(message.iter_attachments())
        pcm = decode_upload(attachment.get_content(), normalise=False)
        self.assertLessEqual(abs(len(pcm) / 8000 - 1.5), 0.1)
        library = PromptLibrary()
        sent = b"".join(p.payload for p, _ in rig.reactor.ports[session.local_port].rtp() if p.payload_type == 0)
        for name in ("vm-the-person-at", "vm-is-busy", "vm-leave-message", "vm-message-sent"):
            self.assertIn(library.load_file(library.find_file(name, ["en"]))[:800], sent, name)
