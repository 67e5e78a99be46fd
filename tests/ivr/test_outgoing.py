"""The shared outgoing-call pieces: option parsing, the call timer, and calls on a Call that
offers pre-ring music and announcements while bridged as the Call API has them."""

from decimal import Decimal

from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.trial import unittest

from portaum_tx.billing.rating import SecondsRounding
from portaum_tx.ivr.apps import OptionError
from portaum_tx.ivr.fake import FakeCall
from portaum_tx.ivr.outgoing import CallOptions, CallTimer, Dialer, call_options, moh_prompt
from tests.ivr.calling_support import Ledger, far_end


class CallOptionsTests(unittest.TestCase):
    def test_defaults_are_the_guides(self):
        self.assertEqual(call_options({}), CallOptions())
        self.assertEqual(CallOptions().maximum_dial_attempts, 3)
        self.assertEqual(CallOptions().end_announce_type, "beep")

    def test_values(self):
        parsed = call_options({"announce_time": "yes", "seconds_rounding_mode": "UP",
                               "end_announce_time": "30", "end_announce_type": "voice",
                               "disconnect_call_before": "10", "maximum_dial_attempts": "5",
                               "play_pre_ring_moh": "on", "music_on_hold_class": "jazz"})
        self.assertEqual((parsed.announce_time, parsed.seconds_rounding, parsed.end_announce_time,
                          parsed.end_announce_type, parsed.disconnect_call_before,
                          parsed.maximum_dial_attempts, parsed.play_pre_ring_moh,
                          parsed.music_on_hold_class),
                         (True, SecondsRounding.UP, 30, "voice", 10, 5, True, "jazz"))

    def test_bad_values_name_the_option(self):
        for options, name in (({"end_announce_type": "siren"}, "end_announce_type"),
                              ({"end_announce_time": "-1"}, "end_announce_time"),
                              ({"maximum_dial_attempts": "0"}, "maximum_dial_attempts"),
                              ({"disconnect_call_before": "soon"}, "disconnect_call_before"),
                              ({"music_on_hold_class": "../etc"}, "music_on_hold_class"),
                              ({"announce_time": "perhaps"}, "announce_time")):
            with self.assertRaises(OptionError) as caught:
                call_options(options)
            self.assertIn(name, str(caught.exception))

    def test_moh_prompt(self):
        self.assertEqual(moh_prompt(""), "moh")
        self.assertEqual(moh_prompt("my-ringtone"), "moh-my-ringtone")


class CallTimerTests(unittest.TestCase):
    def test_warns_then_cuts(self):
        clock = Clock()
        happened = []
        timer = CallTimer(clock, 100, 30, lambda: happened.append(("warn", clock.seconds())),
                          lambda: happened.append(("cut", clock.seconds())))
        clock.advance(69.9)
        self.assertEqual(happened, [])
        clock.advance(0.1)
        clock.advance(30)
        self.assertEqual(happened, [("warn", 70.0), ("cut", 100.0)])
        self.assertTrue(timer.fired)

    def test_no_warning_longer_than_the_call(self):
        clock = Clock()
        happened = []
        CallTimer(clock, 20, 30, lambda: happened.append("warn"), lambda: happened.append("cut"))
        clock.advance(20)
        self.assertEqual(happened, ["cut"])

    def test_unlimited_and_cancelled(self):
        clock = Clock()
        timer = CallTimer(clock, None, 30, lambda: None, lambda: None)
        self.assertEqual(clock.getDelayedCalls(), [])
        timer = CallTimer(clock, 50, 10, lambda: None, lambda: None)
        timer.cancel()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertFalse(timer.fired)

    def test_a_failing_warning_does_not_stop_the_cut(self):
        clock = Clock()
        happened = []

        def broken():
            raise RuntimeError("no audio")
        CallTimer(clock, 10, 5, broken, lambda: happened.append("cut"))
        clock.advance(10)
        self.assertEqual(happened, ["cut"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class PlainCallTests(unittest.TestCase):
    """The Call API's own ringback and announce (FakeCall's): pre-ring music while the leg
    rings, the beep over the bridge, the voice warning instead of the bridged audio."""

    async def call_out(self, options, early=None):
        clock = Clock()
        ledger = Ledger()
        payer_account = ledger.add("12345678901", balance="0.50", rates=(("1", "0.60"),))
        call = FakeCall(clock, calling="15550001111", called="18005550000")
        call.ring_seconds = 5.0
        if early is not None:
            call.early_media_seconds["12125551234"] = early
        other = far_end(clock, "12125551234")
        call.dial_outcomes["12125551234"] = other
        dialer = Dialer(call, ledger, call_options(options), session_id="s1")
        from portaum_tx.ivr import charging
        payer = await charging.find_account(ledger, payer_account.id)
        result = await call.run(dialer.call_out(payer, "12125551234"), reactor)
        self.assertTrue(other.is_hungup)
        return call, result

    async def test_pre_ring_music_and_the_beep(self):
        call, result = await self.call_out({"end_announce_time": "10", "play_pre_ring_moh": "yes",
                                            "music_on_hold_class": "jazz"})
        self.assertEqual((result.outcome, result.seconds, result.cut), ("answered", 50, True))
        self.assertEqual(result.xdr.charge, Decimal("0.50000"))
        self.assertEqual((result.xdr.leg, result.xdr.access_number), ("B", "18005550000"))
        # 5 s of ringing, a 1 s prompt looped; then the beep 10 s before the cut
        self.assertEqual(call.played, ["ringback:moh-jazz"] * 5 + ["announce:beep"])
        self.assertEqual(call.announcements, [(45.0, ["beep"], True)])

    async def test_early_media_stops_the_music_and_the_voice_warning_replaces_the_far_end(self):
        call, result = await self.call_out({"end_announce_time": "10", "end_announce_type": "voice",
                                            "play_pre_ring_moh": "yes"}, early=2.5)
        self.assertEqual(call.played[:3], ["ringback:moh"] * 3)
        self.assertNotIn("ringback:moh", call.played[3:])
        self.assertIn((2.5, "early-media", "12125551234"), call.events)
        [(when, items, mix)] = call.announcements
        self.assertEqual((when, items[0], mix), (45.0, "pp-disconnect-in", False))
        self.assertEqual(result.seconds, 50)

    async def test_no_music_without_the_option(self):
        call, result = await self.call_out({})
        self.assertEqual((call.played, call.announcements, result.seconds), ([], [], 50))


class CutOffProperties(unittest.TestCase):
    """Whatever the funds, the rate, the margin and how long the far end talks: the call is
    charged for what was talked up to the cut, the charge fits the funds, and nothing stays
    reserved."""

    def test_cut_off(self):
        from hypothesis import given, settings, strategies as st
        from twisted.internet import defer

        @settings(max_examples=60, deadline=None)
        @given(cents=st.integers(1, 2000), price=st.sampled_from(["0.01", "0.06", "0.60", "1.99"]),
               talk=st.integers(1, 20000), margin=st.integers(0, 120), warn=st.integers(0, 60))
        def check(cents, price, talk, margin, warn):
            clock = Clock()
            ledger = Ledger()
            balance = Decimal(cents) / 100
            account = ledger.add("12345678901", balance=str(balance), rates=(("1", price),))
            call = FakeCall(clock, calling="15550001111", called="18005550000")
            call.dial_outcomes["12125551234"] = far_end(clock, "12125551234")
            clock.callLater(call.ring_seconds + talk, call.dial_outcomes["12125551234"].remote_hangup, "far end")
            options = call_options({"disconnect_call_before": str(margin),
                                    "end_announce_time": str(warn)})
            from portaum_tx.ivr import charging
            results = []

            async def go():
                payer = await charging.find_account(ledger, account.id)
                results.append(await call.run(Dialer(call, ledger, options).call_out(
                    payer, "12125551234")))
            defer.ensureDeferred(go())
            self.assertEqual(len(results), 1)
            [result] = results
            authorized = ledger.authorizations[0].max_seconds if ledger.authorizations else 0
            if result.outcome == "refused":
                self.assertLessEqual(authorized, margin)
                self.assertEqual(ledger.xdrs, [])
            else:
                limit = authorized - margin
                self.assertEqual(result.seconds, min(talk, limit))
                self.assertEqual(result.cut, talk > limit)
                self.assertLessEqual(result.xdr.charge, balance)
            self.assertEqual(ledger.open, {})
            self.assertGreaterEqual(account.balance, 0)

        check()


class OptionFuzz(unittest.TestCase):
    """Any text an operator may type as an option value either parses or is refused with an
    OptionError naming the option."""

    def test_option_values(self):
        from hypothesis import given, settings, strategies as st
        from portaum_tx.ivr.apps._calling import login_options, low_balance_mode, translation_rule
        from portaum_tx.ivr.apps.credit_card import minimum_sum
        from portaum_tx.ivr.apps.voucher import voucher_lengths

        names = ["announce_time", "seconds_rounding_mode", "end_announce_time",
                 "end_announce_type", "disconnect_call_before", "maximum_dial_attempts",
                 "music_on_hold_class", "ani_authentication", "minimum_card_length",
                 "maximum_card_length", "maximum_login_attempts", "minimum_password_length",
                 "check_low_balance", "ani_translation_rule", "minimum_sum",
                 "minimum_voucher_length"]
        parsers = [call_options, login_options, low_balance_mode, minimum_sum, voucher_lengths,
                   lambda o: translation_rule(o, "ani_translation_rule")]

        @settings(max_examples=300, deadline=None)
        @given(name=st.sampled_from(names),
               value=st.one_of(st.text(max_size=20), st.integers(-5, 100), st.booleans(),
                               st.none(), st.floats(allow_nan=True)))
        def check(name, value):
            for parse in parsers:
                try:
                    parse({name: value})
                except OptionError as e:
                    self.assertIn(name, str(e))
        check()
