"""Shared set-up for auto-attendant, directory and queue flow tests: a real store, the IVR
on a task.Clock, and a customer with an attendant account and staff."""

from __future__ import annotations

import datetime as dt

from twisted.internet import defer, reactor, task

from portaum_tx.accounts import AccountService
from portaum_tx.convert.audio import make_au, pcm16_to_ulaw
from portaum_tx.ivr.apps import AppContext, load_applications
from portaum_tx.ivr.attendant import AttendantBook
from portaum_tx.ivr.call import CallHungUp
from portaum_tx.ivr.fake import FakeCall, speech
from portaum_tx.store import Store
from tests.support import StoreTestCase

# Friday 20 November 2026, 10:00 in New York.
START = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc).timestamp()
ATTENDANT = "18005551234"
STAFF = {"15551230116": ("116", "john.brown@smartdesign.example"),
         "15551230145": ("145", "mary.broslavsky@smartdesign.example"),
         "15551230100": ("100", "cecil.asok@smartdesign.example")}


def recording(seconds: float = 1.5, seed: int = 3) -> bytes:
    """A prompt as the web uploads it: u-law .au bytes."""
    return make_au(pcm16_to_ulaw(speech(seconds, seed)))


class StoreFakeCall(FakeCall):
    """FakeCall whose driver resumes from the reactor rather than from inside the
    application: when the application starts waiting on the call right after a store query
    (which completes on the real reactor), FakeCall.run would otherwise move the clock
    before the application reaches its await and report it stuck."""

    def __init__(self, clock, **kwargs):
        super().__init__(clock, **kwargs)
        #: (time, item) for every item as it started playing.
        self.timeline: list[tuple[float, str]] = []

    def _wait_started(self) -> None:
        reactor.callLater(0, self._poke)

    def _prompt_started(self, name: str) -> None:
        self.timeline.append((self.clock.seconds(), name))
        super()._prompt_started(name)

    @property
    def waiting(self) -> bool:
        """Blocked on the call (a playback, a key, a ring, a bridge), not on the store."""
        return self._waiting()


async def run_together(clock, starts, max_steps: int = 100000) -> None:
    """Run several applications that share ``clock``: ``starts`` holds (clock time, call,
    a function returning the application's coroutine). The clock moves to its next event
    only once every running application waits on its call, so store queries (which
    complete on the real reactor) never race the clock."""
    running: list = []
    failures: list = []

    def start(call, make):
        finished = defer.ensureDeferred(make())
        finished.addErrback(lambda f: f.trap(CallHungUp))
        finished.addErrback(failures.append)
        running.append((call, finished))

    for when, call, make in starts:
        clock.callLater(when - clock.seconds(), start, call, make)
    for _ in range(max_steps):
        for _ in range(10000):
            if all(d.called or call.waiting for call, d in running):
                break
            await task.deferLater(reactor, 0.001, lambda: None)
        else:
            raise AssertionError("applications never settled")
        if failures:
            failures[0].raiseException()
        pending = clock.getDelayedCalls()
        if not pending:
            if all(d.called for _, d in running):
                return
            raise AssertionError("applications wait forever: "
                                 + "; ".join(f"{c.call_id}: {c.played[-3:]}" for c, d in running if not d.called))
        due = min(c.getTime() for c in pending)
        clock.advance(max(0.0, due - clock.seconds()))
    raise AssertionError(f"more than {max_steps} clock steps")


class AttendantCase(StoreTestCase):
    async def _open(self):
        await super()._open()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.ivr_store = Store(self.store.db, self.clock)
        self.accounts = AccountService(self.ivr_store, self.clock)
        self.registry = load_applications().copy()
        self.book = AttendantBook(self.ivr_store)
        await self.ivr_store.accounts.add_customer("SmartDesign")
        await self.accounts.create_account(ATTENDANT, "SmartDesign", timezone="America/New_York")
        for account_id, (extension, email) in STAFF.items():
            await self.accounts.create_account(account_id, "SmartDesign", email=email)
            await self.accounts.add_alias(extension, account_id)

    def context(self) -> AppContext:
        return AppContext(store=self.ivr_store, mailboxes=None, accounts=self.accounts,
                          clock=self.clock, applications=self.registry)

    def make_call(self, **kwargs) -> FakeCall:
        kwargs.setdefault("calling", "15557654321")
        kwargs.setdefault("called", ATTENDANT)
        return StoreFakeCall(self.clock, **kwargs)

    async def run_app(self, name, call, options=None):
        app = self.registry.get(name)
        try:
            await call.run(app(call, self.context(), options or {}))
        except CallHungUp:
            pass  # the router's business: the caller has gone
        self.assertEqual(self.clock.getDelayedCalls(), [], "timers left behind")
        self.assertTrue(call.is_hungup, "the application left the call up")
        self.assertEqual(call.unused_hooks, [])
        return call

    def transfers(self, call) -> list:
        return [detail for _, what, detail in call.events if what == "transfer"]
