"""The Call API's shared behaviour, exercised through FakeCall on a task.Clock."""

import datetime as dt
from decimal import Decimal

from twisted.internet import defer, task
from twisted.trial import unittest

from portaum_tx.ivr.call import (
    DIVERSION_REASONS, Audio, Beep, CallError, CallHungUp, DialFailed, Digits, Silence,
    TransferFailed, diversion_reason,
)
from portaum_tx.ivr.fake import FakeCall, FakeCallStuck, speech


def drive(call, coroutine):
    return defer.ensureDeferred(call.run(coroutine))


class CollectDigitsTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.call = FakeCall(self.clock)

    async def collect(self, **kwargs):
        kwargs.setdefault("max_digits", 4)
        return await self.call.collect_digits(**kwargs)

    async def test_terminator_ends_entry_and_is_not_part_of_it(self):
        self.call.on_prompt("enter-pin", press="12#")
        result = await drive(self.call, self.collect(prompts=["enter-pin"]))
        self.assertEqual(result, Digits("12", "terminator", "#"))
        self.assertEqual(self.clock.seconds(), 0.4)

    async def test_keys_after_the_terminator_wait_for_the_next_question(self):
        self.call.press("12#9")
        first = await drive(self.call, self.collect())
        second = await drive(self.call, self.collect(max_digits=1))
        self.assertEqual((first.digits, second.digits), ("12", "9"))

    async def test_max_digits(self):
        self.call.press("123456")
        result = await drive(self.call, self.collect())
        self.assertEqual(result, Digits("1234", "max_digits"))
        self.assertEqual(self.clock.seconds(), 0)

    async def test_first_digit_timeout_runs_from_the_end_of_the_prompts(self):
        result = await drive(self.call, self.collect(prompts=["a", "b"], first_timeout=4))
        self.assertTrue(result.timed_out)
        self.assertEqual(self.clock.seconds(), 2 + 4)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_inter_digit_timeout(self):
        self.call.press("1", at=1.0)
        self.call.press("2", at=3.5)
        self.call.press("3", at=7.0)  # too late
        result = await drive(self.call, self.collect(first_timeout=5, inter_timeout=3))
        self.assertEqual(result, Digits("12", "timeout"))
        self.assertFalse(result.timed_out)
        self.assertEqual(self.clock.seconds(), 6.5)

    async def test_no_first_timeout_waits_for_a_key(self):
        self.call.press("5", at=100.0)
        result = await drive(self.call, self.collect(first_timeout=None, max_digits=1))
        self.assertEqual(result.digits, "5")

    async def test_waiting_forever_is_reported(self):
        with self.assertRaises(FakeCallStuck):
            await drive(self.call, self.collect(first_timeout=None))

    async def test_barge_in_stops_the_prompts_and_the_key_counts(self):
        self.call.on_prompt("b", press="7", after=0.5)
        result = await drive(self.call, self.collect(prompts=["a", "b", "c"], max_digits=1))
        self.assertEqual(result.digits, "7")
        self.assertEqual(self.call.played, ["a", "b"])

    async def test_without_barge_in_the_prompts_play_out(self):
        self.call.on_prompt("a", press="7")
        result = await drive(self.call, self.collect(prompts=["a", "b"], max_digits=1, barge_in=False))
        self.assertEqual((result.digits, self.call.played), ("7", ["a", "b"]))

    async def test_typed_ahead_key_skips_the_prompt(self):
        self.call.press("3")
        result = await drive(self.call, self.collect(prompts=["menu"], max_digits=1))
        self.assertEqual((result.digits, self.call.played), ("3", []))

    async def test_flush_forgets_typed_ahead_keys(self):
        self.call.press("3")
        result = await drive(self.call, self.collect(prompts=["menu"], max_digits=1, flush=True, first_timeout=1))
        self.assertTrue(result.timed_out)
        self.assertEqual(self.call.played, ["menu"])

    async def test_hang_up_while_collecting(self):
        self.call.press("1", at=1.0)
        self.call.hang_up(at=2.0)
        with self.assertRaises(CallHungUp):
            await drive(self.call, self.collect(first_timeout=5))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.call.hangup_reason, "caller")

    async def test_everything_after_hang_up_raises(self):
        self.call.remote_hangup("caller")
        for attempt in (self.call.play(["a"]), self.collect(), self.call.record(), self.call.answer(),
                        self.call.transfer("100"), self.call.dial("100")):
            with self.assertRaises(CallHungUp):
                await attempt
        await self.call.hangup()  # harmless
        self.assertEqual(self.call.events, [])

    async def test_bad_arguments(self):
        with self.assertRaisesRegex(CallError, "max_digits"):
            await self.call.collect_digits(0)
        with self.assertRaisesRegex(CallError, "cannot play 42"):
            await self.call.play([42])
        with self.assertRaisesRegex(CallError, "diversion reason 'lunch'"):
            FakeCall(self.clock, diversion_reason="lunch")

    async def test_invalid_keys_are_ignored(self):
        self.call.press("x1")
        result = await drive(self.call, self.collect(max_digits=1))
        self.assertEqual(result.digits, "1")


class PlayTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.call = FakeCall(self.clock, durations={"long": 5.0})

    async def test_items_and_their_lengths(self):
        pcm = speech(2.5)
        result = await drive(self.call, self.call.play(["long", Silence(500), Beep(250), Audio(pcm, "greeting")]))
        self.assertEqual(result.reason, "finished")
        self.assertEqual(self.call.played, ["long", "silence:500", "beep", "audio:greeting"])
        self.assertEqual(self.clock.seconds(), 5 + 0.5 + 0.25 + 2.5)

    async def test_barge_in_on_listed_keys_only(self):
        self.call.on_prompt("long", press="5", after=1)
        self.call.on_prompt("long", press="#", after=2)
        result = await drive(self.call, self.call.play(["long", "next"], barge_in="#"))
        self.assertEqual((result.reason, result.digit), ("digit", "#"))
        self.assertEqual(self.clock.seconds(), 2)
        self.assertEqual(self.call._digits, ["5", "#"])

    async def test_hang_up_during_playback(self):
        self.call.hang_up_on_prompt("long", after=1)
        with self.assertRaises(CallHungUp):
            await drive(self.call, self.call.play(["long", "next"]))
        self.assertEqual(self.call.played, ["long"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_stop_media(self):
        self.call.on_prompt("long", action=self.call.stop_media, after=1)
        result = await drive(self.call, self.call.play(["long", "next"]))
        self.assertEqual(result.reason, "stopped")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_one_operation_at_a_time(self):
        first = defer.ensureDeferred(self.call.play(["long"]))
        with self.assertRaisesRegex(CallError, "one media operation at a time"):
            await self.call.play(["other"])
        self.clock.advance(5)
        self.assertEqual((await first).reason, "finished")

    async def test_empty_play(self):
        self.assertEqual((await self.call.play([])).reason, "finished")


class SayTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(dt.datetime(2026, 3, 5, 17, 30, tzinfo=dt.timezone.utc).timestamp())
        self.call = FakeCall(self.clock)

    def test_duration_money_number_digits(self):
        self.assertEqual(self.call.sayings("duration", 349), ["5", "minutes", "and", "49", "seconds"])
        self.assertEqual(self.call.sayings("duration", 349, round_up_to_minutes=True), ["6", "minutes"])
        self.assertEqual(self.call.sayings("money", Decimal("12.34"), currency="USD"),
                         ["12", "dollars", "and", "34", "cents"])
        self.assertEqual(self.call.sayings("number", 115), ["1", "hundred", "15"])
        self.assertEqual(self.call.sayings("digits", "120#"), ["1", "2", "0", "pound"])
        self.assertEqual(self.call.sayings("count", 1, singular="vm-new-message", plural="vm-new-messages"),
                         ["1", "vm-new-message"])

    def test_datetime_in_the_account_time_zone(self):
        earlier = dt.datetime(2026, 3, 5, 14, 5, tzinfo=dt.timezone.utc).timestamp()
        self.assertEqual(self.call.sayings("datetime", earlier, timezone="America/New_York"),
                         ["today", "at", "9", "oh", "5", "am"])
        # 23:05 in Tokyo, and it is already 02:30 the next day there
        self.assertEqual(self.call.sayings("datetime", earlier, timezone="Asia/Tokyo"),
                         ["yesterday", "at", "11", "oh", "5", "pm"])

    def test_spanish(self):
        self.call.languages = ["es", "en"]
        self.assertEqual(self.call.sayings("duration", 60), ["1-m", "minute"])  # Spanish texts

    def test_errors_are_call_errors(self):
        with self.assertRaisesRegex(CallError, "unknown saying 'colour'"):
            self.call.sayings("colour", 1)
        with self.assertRaisesRegex(CallError, "cannot say duration"):
            self.call.sayings("duration", -1)
        with self.assertRaisesRegex(CallError, "unknown time zone 'Mars/Base'"):
            self.call.sayings("datetime", 0, timezone="Mars/Base")

    async def test_say_plays(self):
        await drive(self.call, self.call.say("number", 7, barge_in=True))
        self.assertEqual(self.call.played, ["7"])


class RecordTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.call = FakeCall(self.clock)

    async def test_terminator(self):
        self.call.speak(3.0, end="#")
        recording = await drive(self.call, self.call.record(60, 5))
        self.assertEqual((recording.ended_by, recording.digit, recording.duration), ("digit", "#", 3.0))
        self.assertEqual(self.call.played, ["beep"])
        self.assertEqual(self.call._digits, [])

    async def test_other_keys_do_not_end_it_nor_stay(self):
        self.call.speak(3.0, end="5")
        recording = await drive(self.call, self.call.record(10, None, beep=False))
        self.assertEqual((recording.ended_by, recording.duration), ("max_length", 3.0))
        self.assertEqual(self.clock.seconds(), 10)
        self.assertEqual(self.call._digits, [])

    async def test_silence(self):
        self.call.speak(2.0, end="silence")
        recording = await drive(self.call, self.call.record(60, 4, beep=False))
        self.assertEqual((recording.ended_by, recording.duration, self.clock.seconds()), ("silence", 2.0, 6.0))

    async def test_hang_up_returns_the_recording(self):
        self.call.speak(2.0, end="hangup")
        recording = await drive(self.call, self.call.record(60, 4))
        self.assertEqual((recording.ended_by, recording.duration), ("hangup", 2.0))
        with self.assertRaises(CallHungUp):
            await self.call.play(["after"])

    async def test_hang_up_during_the_beep_raises(self):
        self.call.hang_up_on_prompt("beep", after=0.1)
        with self.assertRaises(CallHungUp):
            await drive(self.call, self.call.record(60, 4))
        self.assertEqual(self.call.recordings, [])

    async def test_bad_length(self):
        with self.assertRaisesRegex(CallError, "max_seconds"):
            await self.call.record(0)


class SignallingTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.call = FakeCall(self.clock)

    async def test_answer_once(self):
        await self.call.answer()
        await self.call.answer()
        self.assertEqual(self.call.event_names, ["answer"])
        with self.assertRaisesRegex(CallError, "cannot be rejected"):
            await self.call.reject(486)

    async def test_reject(self):
        with self.assertRaisesRegex(CallError, "4xx-6xx"):
            await self.call.reject(200)
        await self.call.reject(404)
        self.assertEqual((self.call.events[0][1:], self.call.hangup_reason), (("reject", 404), "rejected"))
        self.assertTrue(self.call.hungup.called)

    async def test_hangup_fires_hungup(self):
        reasons = []
        self.call.hungup.addCallback(reasons.append)
        await self.call.hangup()
        self.assertEqual(reasons, ["local"])

    async def test_transfer(self):
        await drive(self.call, self.call.transfer("200"))
        self.assertEqual((self.call.events[-1][1:], self.call.hangup_reason), (("transfer", "200"), "transferred"))

    async def test_transfer_refused(self):
        self.call.transfer_outcome = TransferFailed("403 from the far end")
        with self.assertRaises(TransferFailed):
            await drive(self.call, self.call.transfer("200"))
        self.assertFalse(self.call.is_hungup)

    async def test_dial_and_bridge_until_the_other_side_hangs_up(self):
        other = FakeCall(self.clock, called="200")
        self.call.dial_outcomes["200"] = other
        other.hang_up(at=30.0)

        async def connect():
            leg = await self.call.dial("200", timeout=20)
            await self.call.bridge(leg)
            return leg
        leg = await drive(self.call, connect())
        self.assertIs(leg, other)
        self.assertEqual(self.call.event_names, ["dial", "bridge"])
        self.assertFalse(self.call.is_hungup)
        self.assertEqual(self.clock.seconds(), 30.0)

    async def test_caller_hang_up_during_bridge_hangs_up_the_other_leg(self):
        other = FakeCall(self.clock, called="200")
        self.call.dial_outcomes["200"] = other
        self.call.hang_up(at=10.0)

        async def connect():
            await self.call.bridge(await self.call.dial("200"))
        with self.assertRaises(CallHungUp):
            await drive(self.call, connect())
        self.assertEqual(other.hangup_reason, "local")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_ringback_loops_until_answer_and_stops_when_the_caller_leaves(self):
        other = FakeCall(self.clock, called="200")
        self.call.dial_outcomes["200"] = other
        self.call.ring_seconds = 3.5
        leg = await drive(self.call, self.call.dial("200", ringback=["moh"]))
        self.assertIs(leg, other)
        self.assertEqual(self.call.played, ["ringback:moh"] * 4)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.call.hang_up(at=self.clock.seconds() + 1.5)
        with self.assertRaises(CallHungUp):
            await drive(self.call, self.call.dial("300", ringback=["moh"]))
        self.assertEqual(self.call.played, ["ringback:moh"] * 6)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        with self.assertRaisesRegex(CallError, "cannot play"):
            await self.call.dial("300", ringback=[42])

    async def test_announce_over_a_bridge(self):
        other = FakeCall(self.clock, called="200")
        self.call.dial_outcomes["200"] = other
        other.hang_up(at=14.5)
        with self.assertRaisesRegex(CallError, "not bridged"):
            await self.call.announce(["pp-time-almost-up"])
        results = []

        def warn(items, mix):
            d = defer.ensureDeferred(self.call.announce(items, mix=mix))
            d.addCallback(lambda result: results.append((self.clock.seconds(), result.reason)))
        self.clock.callLater(10, warn, [Beep()], True)
        self.clock.callLater(12, warn, ["pp-time-almost-up", "pp-disconnect-in"], False)
        self.clock.callLater(12.5, warn, ["pp-disconnect-in", "5", "seconds"], False)

        async def connect():
            await self.call.bridge(await self.call.dial("200"))
        await drive(self.call, connect())
        # the beep ends by itself; the second is replaced by the third, which the end of the
        # bridge cuts short
        self.assertEqual(results, [(10.5, "finished"), (12.5, "stopped"), (14.5, "stopped")])
        self.assertEqual(self.call.announcements, [
            (10.0, ["beep"], True), (12.0, ["pp-time-almost-up", "pp-disconnect-in"], False),
            (12.5, ["pp-disconnect-in", "5", "seconds"], False)])
        self.assertEqual(self.call.played, [
            "announce:beep", "announce:pp-time-almost-up", "announce:pp-disconnect-in",
            "announce:5"])
        self.assertFalse(self.call.is_bridged)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_dial_no_answer_and_busy(self):
        with self.assertRaises(DialFailed) as caught:
            await drive(self.call, self.call.dial("300", timeout=15))
        self.assertEqual((caught.exception.reason, self.clock.seconds()), ("no-answer", 15))
        self.call.dial_outcomes["400"] = DialFailed("400", "busy", 486)
        with self.assertRaisesRegex(DialFailed, "busy"):
            await drive(self.call, self.call.dial("400"))

    async def test_caller_hangs_up_while_it_rings(self):
        self.call.hang_up(at=5.0)
        with self.assertRaises(CallHungUp):
            await drive(self.call, self.call.dial("300", timeout=30))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_fax_tone_listeners_switch_detection(self):
        heard = []
        remove = self.call.on_fax_tone(heard.append)
        self.assertTrue(self.call.fax_detection)
        self.call.send_fax_tone("CED")
        remove()
        self.assertFalse(self.call.fax_detection)
        self.call.send_fax_tone("CNG")
        self.assertEqual((heard, self.call.fax_tones), (["CED"], ["CED", "CNG"]))

    def test_fax_listener_failure_is_contained(self):
        def broken(tone):
            raise RuntimeError("listener bug")
        heard = []
        self.call.on_fax_tone(broken)
        self.call.on_fax_tone(heard.append)
        self.call.send_fax_tone("CNG")
        self.assertEqual(heard, ["CNG"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class DiversionReasonTests(unittest.TestCase):
    def test_diversion_header_reasons(self):
        self.assertEqual([diversion_reason(r) for r in ("user-busy", "no-answer", "unavailable", "unconditional",
                                                        '"deflection"', "USER-BUSY", "lunch")],
                         ["busy", "no-answer", "unavailable", "unconditional", "unavailable", "busy", "unknown"])

    def test_history_info_causes(self):
        self.assertEqual([diversion_reason(cause=c) for c in (486, "408", 480, 302, 499, "x")],
                         ["busy", "no-answer", "unavailable", "unconditional", "unknown", "unknown"])

    def test_not_diverted(self):
        self.assertIsNone(diversion_reason())
        self.assertIsNone(diversion_reason("", ""))

    def test_every_result_is_a_known_reason(self):
        for value in ("user-busy", "no-answer", "zzz", None):
            result = diversion_reason(value, 486)
            self.assertIn(result, DIVERSION_REASONS)


class CollectFuzzTests(unittest.TestCase):
    """Whatever the caller presses and whenever, collection ends as documented and leaves no
    timer behind."""

    def test_random_key_presses(self):
        from hypothesis import given, settings, strategies as st

        presses = st.lists(st.tuples(st.sampled_from("0123456789*#"), st.floats(0.0, 6.0)), max_size=12)

        @settings(max_examples=100, deadline=None)
        @given(presses, st.integers(1, 6), st.sampled_from(["#", "*#", ""]))
        def check(keys, max_digits, terminators):
            clock = task.Clock()
            call = FakeCall(clock)
            at = 0.0
            for key, gap in keys:
                at += gap
                call.press(key, at=at)
            done = []
            d = drive(call, call.collect_digits(max_digits, first_timeout=4, inter_timeout=3,
                                                terminators=terminators))
            d.addBoth(done.append)
            result = done[0]
            self.assertIsInstance(result, Digits)
            pressed = "".join(k for k, _ in keys)
            self.assertTrue(pressed.startswith(result.digits + (result.terminator or "")))
            self.assertLessEqual(len(result.digits), max_digits)
            self.assertTrue(all(k not in terminators for k in result.digits))
            if result.ended_by == "max_digits":
                self.assertEqual(len(result.digits), max_digits)
            call.remote_hangup("caller")  # drops the rest of the script
            self.assertEqual(clock.getDelayedCalls(), [])

        check()
