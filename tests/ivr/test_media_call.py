"""MediaCall: the Call API over a real RtpSession, fake UDP transports and a task.Clock."""

import gc
import weakref

import numpy as np
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest

from portaum_tx.convert.audio import decode_upload
from portaum_tx.ivr.router import run_application
from portaum_tx.rtp.recorder import Recorder
from tests.ivr.test_voicemail_support import MAILBOX, VoicemailCase

from portaum_tx.ivr.call import Audio, Beep, CallHungUp, DialFailed
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

    def test_playbacks_are_freed_without_the_garbage_collector(self):
        # A playback left in a reference cycle keeps the whole call (session, dialog,
        # SIP messages) until a full collection, whose pause stops every call's media.
        operations = []
        start_play = self.call._start_play

        def start_and_watch(items):
            operation = start_play(items)
            operations.append(weakref.ref(operation))
            return operation

        self.call._start_play = start_and_watch
        if gc.isenabled():
            gc.disable()
            self.addCleanup(gc.enable)
        finished = self.start(self.call.play([Audio(speech(0.2), "greeting")]))
        self.rig.run(0.3)
        barged = self.start(self.call.play(["vm-main-menu"], barge_in=True))
        self.rig.run(0.2)
        self.press("1")
        self.rig.run(0.04)
        self.assertEqual([finished[0].reason, barged[0].reason], ["finished", "digit"])
        self.assertEqual(len(operations), 2)
        self.assertEqual([ref() for ref in operations], [None, None])

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


class RingingSignalling(RecordingSignalling):
    """Dials that ring until the test answers them, telling of early media when asked."""

    def __init__(self):
        super().__init__()
        self.ringing = {}
        self.early = {}

    async def dial(self, destination, caller_id, timeout, on_early=None):
        self.actions.append(("dial", destination))
        self.early[destination] = on_early
        answered = self.ringing[destination] = defer.Deferred()
        return await answered


class SoundsBesideDialAndBridgeTests(unittest.TestCase):
    """Pre-ring music while a leg rings, announcements over a bridge."""

    def setUp(self):
        self.rig = Rig()
        self.library = PromptLibrary()
        self.session = self.rig.session()
        self.peer = FakePeer(self.session)
        self.signalling = RingingSignalling()
        self.call = MediaCall(self.rig.clock, self.session, self.library, self.signalling,
                              call_id="c1", calling="15557654321", called="15551230001")
        self.other_session = self.rig.session()
        self.other_peer = FakePeer(self.other_session, ssrc=0x1234)
        self.other = MediaCall(self.rig.clock, self.other_session, self.library,
                               RecordingSignalling(), call_id="c2")

    def sent(self, session):
        return b"".join(packet.payload for packet, _ in
                        self.rig.reactor.ports[session.local_port].rtp() if packet.payload_type == 0)

    def moh(self):
        return self.library.load_file(self.library.find_file("moh", ["en"]))

    def start(self, coroutine):
        results = []
        defer.ensureDeferred(coroutine).addBoth(results.append)
        return results

    def test_music_of_a_missing_class_is_moh_looped_until_early_media(self):
        done = self.start(self.call.dial("200", ringback=["moh-no-such-class"]))
        self.rig.run(1.0)
        heard = self.sent(self.session)
        self.assertGreater(len(heard), 7000)
        self.assertEqual(heard, self.moh()[:len(heard)])
        self.signalling.early["200"]()          # 183 with SDP: the far end's sound now
        self.assertIsNone(self.session.source)
        sent = len(self.sent(self.session))
        self.rig.run(0.5)
        self.assertEqual(set(self.sent(self.session)[sent:]), set(PCMU.silence(1)))
        self.signalling.ringing["200"].callback(self.other)
        self.assertIs(done[0], self.other)

    def test_the_caller_hears_the_far_ends_early_media_until_answer(self):
        done = self.start(self.call.dial("200", ringback=["moh"]))
        self.rig.run(0.3)
        self.signalling.early["200"](self.other_session)
        before = len(self.sent(self.session))
        announcement = speech(0.4, seed=7)
        for start in range(0, len(announcement), 160):
            self.other_peer.send(PCMU.encode(announcement[start:start + 160]))
            self.rig.run(0.02)
        self.rig.run(0.1)
        self.assertIn(PCMU.encode(announcement)[:1600], self.sent(self.session)[before:])
        self.signalling.ringing["200"].callback(self.other)
        self.assertIs(done[0], self.other)
        self.assertIsNone(self.session.source)
        self.assertEqual(self.other_session.consumers, [])

    def test_music_stops_at_answer(self):
        done = self.start(self.call.dial("200", ringback=["moh"]))
        self.rig.run(0.3)
        self.assertIsNotNone(self.session.source)
        self.signalling.ringing["200"].callback(self.other)
        self.assertIs(done[0], self.other)
        self.assertIsNone(self.session.source)

    def bridged(self):
        done = self.start(self.call.bridge(self.other))
        self.rig.run(0.1)
        return done

    def test_beep_mixed_over_the_other_leg_which_hears_nothing_of_it(self):
        done = self.bridged()
        bridge_source = self.session.source
        far_voice = speech(1.0, seed=3)
        before = len(self.sent(self.session))
        other_before = len(self.sent(self.other_session))
        warned = self.start(self.call.announce([Beep(300)]))
        for start in range(0, 4800, 160):
            self.other_peer.send(PCMU.encode(far_voice[start:start + 160]))
            self.rig.run(0.02)
        self.assertEqual(warned[0].reason, "finished")
        self.assertIs(self.session.source, bridge_source)
        heard = PCMU.decode(self.sent(self.session)[before:]).astype(float)
        beep = tones.beep(300).astype(float)
        # the beep starts at a frame boundary; what is left once it is taken out is the far
        # voice at half its level (u-law rounding aside)
        offset = min(range(0, 800, 160),
                     key=lambda o: np.mean((heard[o:o + len(beep)] - beep) ** 2))
        under = heard[offset:offset + len(beep)] - beep
        rms = lambda x: np.sqrt(np.mean(np.asarray(x, float) ** 2))  # noqa: E731
        self.assertLess(abs(rms(under[800:]) / rms(far_voice) - 0.5), 0.1)
        # the far end heard only the caller (silence here), never the beep
        other_heard = PCMU.decode(self.sent(self.other_session)[other_before:])
        self.assertLess(np.abs(other_heard.astype(float)).max() if len(other_heard) else 0, 200)
        self.other.remote_hangup("bye")
        self.assertEqual(done, [None])

    def test_spoken_warning_replaces_the_bridged_audio_and_the_bridge_end_cuts_it(self):
        done = self.bridged()
        before = len(self.sent(self.session))
        warned = self.start(self.call.announce(["pp-disconnect-in"], mix=False))
        for _ in range(25):
            self.other_peer.send(PCMU.encode(speech(0.02, seed=5)))
            self.rig.run(0.02)
        prompt = self.library.load_file(self.library.find_file("pp-disconnect-in", ["en"]))
        heard = self.sent(self.session)[before:]
        self.assertIn(prompt[1600:3200], heard)
        self.other.remote_hangup("bye")
        self.assertEqual(done, [None])
        self.assertEqual(warned[0].reason, "stopped")
        self.assertIsNone(self.session.source)
        self.assertFalse(self.call.is_hungup)

    def test_caller_hang_up_during_an_announcement_ends_the_bridge(self):
        done = self.bridged()
        warned = self.start(self.call.announce(["pp-disconnect-in"]))
        self.rig.run(0.2)
        self.session.close("bye")
        self.assertEqual(warned[0].reason, "stopped")
        self.assertTrue(self.call.is_hungup)
        self.assertEqual(len(done), 1)
        self.assertIsNone(self.session.source)
        self.assertEqual(self.other_session.source, None)


class PromptCacheTests(unittest.TestCase):
    def test_recorded_audio_is_encoded_once(self):
        from portaum_tx.ivr.call import Audio
        from portaum_tx.ivr.media_call import audio_prompt
        greeting = Audio(speech(0.5), "greeting")
        first = audio_prompt(greeting)
        self.assertIs(audio_prompt(greeting), first)
        self.assertEqual(first.encoded(PCMU), PCMU.encode(greeting.pcm))
        self.assertIsNot(audio_prompt(Audio(speech(0.5), "other")), first)

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
        idle_waits = 0
        while not done.called and rig.clock.seconds() < 60:
            recording = any(isinstance(c, Recorder) for c in session.consumers)
            if not recording and session.source is None and idle_waits < 200:
                # no media under way: the application waits on real work (the store,
                # the audio encoder in its thread), so give it real time, not media
                # time; fake seconds racing ahead would end the call as a dead peer
                idle_waits += 1
                await deferLater(reactor, 0.005, lambda: None)
                continue
            idle_waits = 0
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
