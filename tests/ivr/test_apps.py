"""Option parsing shared by the IVR applications, and option declarations with choices."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.ivr.apps import (
    OptionError, choice_option, load_applications, option_choice, option_number,
)


class OptionNumberTests(unittest.TestCase):
    def test_infinite_and_nan_are_refused_naming_the_option(self):
        for value in (float("inf"), float("-inf"), float("nan"), "inf", "-Infinity", "nan",
                      "1e400"):
            for integer in (False, True):
                with self.assertRaises(OptionError) as raised:
                    option_number({"wait_time": value}, "wait_time", 0, 0, 1e9, integer=integer)
                self.assertIn("wait_time", str(raised.exception))

    def test_plain_values(self):
        self.assertEqual(option_number({"n": " 7 "}, "n", 0, 0, 10, integer=True), 7)
        self.assertEqual(option_number({"n": 2.5}, "n", 0, 0, 10), 2.5)
        self.assertEqual(option_number({}, "n", 3, 0, 10, integer=True), 3)
        with self.assertRaises(OptionError):
            option_number({"n": 2.5}, "n", 0, 0, 10, integer=True)
        with self.assertRaises(OptionError):
            option_number({"n": 11}, "n", 0, 0, 10)
        with self.assertRaises(OptionError):
            option_number({"n": True}, "n", 0, 0, 10)

    @settings(max_examples=200, deadline=None)
    @given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                     st.text(max_size=12), st.booleans(), st.none(),
                     st.lists(st.integers(), max_size=2)))
    def test_any_value_is_a_number_in_range_or_an_option_error(self, value):
        for integer in (False, True):
            try:
                number = option_number({"n": value}, "n", 0, -1000, 1000, integer=integer)
            except OptionError as e:
                self.assertIn("option n", str(e))
            else:
                self.assertTrue(-1000 <= number <= 1000)
                self.assertIsInstance(number, int if integer else float)


class ChoiceTests(unittest.TestCase):
    def test_choice_option_declares_its_choices(self):
        self.assertEqual(choice_option("mode", "up", ("none", "up"), "How."),
                         ("mode", "choice", "up", "How.", ("none", "up")))
        with self.assertRaises(ValueError):
            choice_option("mode", "sideways", ("none", "up"), "How.")

    def test_option_choice(self):
        self.assertEqual(option_choice({"m": " UP "}, "m", "none", ("none", "up")), "up")
        self.assertEqual(option_choice({}, "m", "none", ("none", "up")), "none")
        with self.assertRaises(OptionError) as raised:
            option_choice({"m": "down"}, "m", "none", ("none", "up"))
        self.assertIn("option m must be one of none, up", str(raised.exception))

    def test_every_declared_choice_option_carries_choices_its_default_is_among(self):
        registry = load_applications()
        seen = 0
        for name in registry.names():
            for entry in getattr(registry.get(name), "OPTIONS", ()) or ():
                if entry[1] == "choice":
                    seen += 1
                    self.assertEqual(len(entry), 5, f"{name}: {entry[0]} has no choices")
                    self.assertIn(entry[2], entry[4], f"{name}: {entry[0]}")
        self.assertGreater(seen, 5)


class BackgroundWorkTests(unittest.TestCase):
    def setUp(self):
        from twisted.internet.task import Clock
        from portaum_tx.ivr.apps import BackgroundWork
        self.clock = Clock()
        self.work = BackgroundWork(self.clock)

    def test_failures_are_logged_and_finished_work_forgotten(self):
        from twisted.internet import defer
        ok, bad = defer.Deferred(), defer.Deferred()
        self.work.track(ok, "callback to 1")
        done = self.work.track(bad, "callback to 2")
        self.assertEqual(self.work.pending, ["callback to 1", "callback to 2"])
        bad.errback(RuntimeError("trunk down"))
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        ok.callback("xdr")
        self.assertEqual(self.work.pending, [])
        with self.assertRaises(TypeError):
            self.work.track(object())

    def test_stop_waits_out_the_grace_then_cancels_and_waits_for_the_unwinding(self):
        from twisted.internet import defer
        unwound = []
        hangup = defer.Deferred()

        async def session():
            try:
                await defer.Deferred()          # a call in progress
            finally:
                await hangup                    # the BYE's transaction
                unwound.append(True)

        quick = defer.Deferred()
        self.work.track(defer.ensureDeferred(session()), "callback session")
        self.work.track(quick, "quick one")
        stopping = defer.ensureDeferred(self.work.stop(grace=5))
        self.clock.advance(1)
        quick.callback(None)
        self.assertNoResult(stopping)
        self.clock.advance(4)                   # grace over: cancelled, hanging up
        self.assertNoResult(stopping)
        self.assertEqual(self.work.pending, ["callback session"])
        hangup.callback(None)
        self.successResultOf(stopping)
        self.assertEqual((unwound, self.work.pending), ([True], []))
        self.assertEqual(self.flushLoggedErrors(), [])
        cancelled = []
        late = defer.Deferred(cancelled.append)
        self.successResultOf(self.work.track(late, "too late"))
        self.assertEqual((cancelled, self.work.pending), ([late], []))


class AppContextTests(unittest.TestCase):
    def context(self, **extra):
        from twisted.internet.task import Clock
        from portaum_tx.ivr.apps import AppContext
        return AppContext(store=None, mailboxes=None, accounts=None, clock=Clock(), **extra)

    def test_originate_goes_through_the_node_or_fails_as_a_dial(self):
        from twisted.internet import defer
        from portaum_tx.ivr.call import DialFailed
        placed = []

        async def originator(destination, caller_id, timeout):
            placed.append((destination, caller_id, timeout))
            return "leg"

        context = self.context(originator=originator)
        leg = self.successResultOf(defer.ensureDeferred(context.originate("4420", "800", 30)))
        self.assertEqual((leg, placed), ("leg", [("4420", "800", 30)]))
        failure = self.failureResultOf(defer.ensureDeferred(self.context().originate("4420")),
                                       DialFailed)
        self.assertEqual(failure.value.reason, "failed")

    def test_background_without_a_node_tracker_still_logs_failures(self):
        from twisted.internet import defer
        context = self.context()
        work = defer.Deferred()
        context.background(work)
        self.assertEqual(context.background_work.pending, ["background work"])
        work.errback(ValueError("x"))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
