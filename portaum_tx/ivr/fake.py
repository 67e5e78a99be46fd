"""A scripted call on a task.Clock, for tests of IVR applications.

:class:`FakeCall` plays nothing and hears nothing: it writes down what the application
played (prompt names, in order, as far as they were actually played) and what it did
(answer, hang-up, transfer ...), and acts out a caller scripted by the test:

    call = FakeCall(Clock(), calling="15551230000", called="15551239999")
    call.on_prompt("vm-main-menu", press="1")       # barge in with 1 when the menu starts
    call.on_prompt("vm-message-menu", press="3", occurrence=2)
    call.speak(4.0, end="#")                        # the next recording: 4 s, then #
    call.hang_up(at=60.0)                           # or hang_up_on_prompt("goodbye")
    result = await call.run(app(call, context, options))
    assert call.played == ["vm-main-menu", ...]

Time only moves while the application waits on the call: :meth:`FakeCall.run` advances the
clock to the next scheduled event each time the application is blocked on a playback, a
digit, a recording or a ring, and otherwise lets the real reactor finish whatever the
application awaits (a store query). So flows over a real database stay deterministic.

Each item takes ``prompt_seconds`` to play (``durations`` overrides per name); Audio its
own length; Silence and Beep their milliseconds.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Awaitable, Callable, Optional, Union

import numpy as np
from twisted.internet import defer

from portaum_tx.ivr.call import (
    FINISHED, MAX_LENGTH, SILENCE, STOPPED, Audio, Beep, Call, CallError, DialFailed,
    MediaOperation, PlayItem, PlayResult, Recording, Silence,
)

DEFAULT_PROMPT_SECONDS = 1.0
KEY_GAP = 0.2  # seconds between scripted key presses


class FakeCallStuck(AssertionError):
    """The application waits on the call and nothing the script does will ever wake it."""


@dataclasses.dataclass
class Utterance:
    """What the caller says during one recording: ``seconds`` of speech, then ``end``:
    "#" (or another key) pressed, "silence" (the caller stops talking and waits),
    "hangup", or "wait" (keeps silent until the recording's own limits end it)."""

    seconds: float
    end: str = "#"
    pcm: np.ndarray | None = None


@dataclasses.dataclass
class _Hook:
    name: str
    occurrence: int
    action: Callable[[], None]
    after: float
    seen: int = 0
    fired: bool = False


def describe(item: PlayItem) -> str:
    """How an item appears in :attr:`FakeCall.played`."""
    if isinstance(item, str):
        return item
    if isinstance(item, Audio):
        return f"audio:{item.label}"
    if isinstance(item, Silence):
        return f"silence:{item.ms}"
    if isinstance(item, Beep):
        return "beep"
    raise CallError(f"cannot play {item!r}")


def speech(seconds: float, seed: int = 1) -> np.ndarray:
    """Deterministic voice-level audio standing in for what a caller says."""
    n = int(round(seconds * 8000))
    t = np.arange(n, dtype=np.float64) / 8000.0
    wave = 0.25 * np.sin(2 * np.pi * (180 + 20 * seed) * t) + 0.1 * np.sin(2 * np.pi * 730 * t)
    return (wave * 32767).astype(np.int16)


class FakeCall(Call):
    def __init__(self, clock, *, calling: str = "15550001111", called: str = "15550002222",
                 prompt_seconds: float = DEFAULT_PROMPT_SECONDS,
                 durations: Optional[dict[str, float]] = None, **identity: Any):
        identity.setdefault("call_id", f"fake-{id(self):x}")
        super().__init__(clock, calling=calling, called=called, **identity)
        self.prompt_seconds = prompt_seconds
        self.durations = dict(durations or {})
        #: Every item as it started playing, described by :func:`describe`.
        self.played: list[str] = []
        #: The Audio objects played, in order (to check greetings and messages).
        self.played_audio: list[Audio] = []
        #: (time, what, detail) for answer, reject, hangup, record, transfer, dial, bridge, fax.
        self.events: list[tuple[float, str, Any]] = []
        self.recordings: list[Recording] = []
        self.fax_detection = False
        #: What transfer() does: None succeeds, an exception is raised.
        self.transfer_outcome: Optional[Exception] = None
        #: destination -> the FakeCall answered, or a DialFailed to raise; unknown numbers
        #: ring until the dial timeout and fail with no-answer.
        self.dial_outcomes: dict[str, Union["FakeCall", DialFailed]] = {}
        self.ring_seconds = 2.0
        #: destination -> seconds after the dial at which it sends early media (stopping
        #: the ringback); destinations not named send none.
        self.early_media_seconds: dict[str, float] = {}
        #: Announcements played over a bridge: (time, items described, mixed).
        self.announcements: list[tuple[float, list[str], bool]] = []
        self._hooks: list[_Hook] = []
        self._utterances: list[Utterance] = []
        self._nudge: defer.Deferred | None = None
        self._reactor = None
        self._scripted: list = []

    # --- the script -----------------------------------------------------------------

    def press(self, keys: str, at: float | None = None, gap: float = KEY_GAP) -> None:
        """Press keys ``gap`` seconds apart starting at clock time ``at``, or, without
        ``at``, put them in the digit buffer now (typed ahead)."""
        if at is None:
            for key in keys:
                self.digit_received(key)
            return
        self._schedule(at - self.clock.seconds(), lambda: self._press_timed(keys, gap))

    def hang_up(self, at: float) -> None:
        self._schedule(at - self.clock.seconds(), lambda: self.remote_hangup("caller"))

    def send_fax_tone(self, tone: str = "CNG", at: float | None = None) -> None:
        if at is None:
            self._fax(tone)
        else:
            self._schedule(at - self.clock.seconds(), lambda: self._fax(tone))

    def speak(self, seconds: float, end: str = "#", pcm: np.ndarray | None = None) -> None:
        """Queue what the caller says in the next recording (see :class:`Utterance`).
        Without one queued, the caller keeps silent."""
        if end not in ("silence", "hangup", "wait") and (len(end) != 1 or end not in "0123456789*#"):
            raise CallError(f"an utterance ends with a key, silence, hangup or wait, not {end!r}")
        self._utterances.append(Utterance(seconds, end, pcm))

    def on_prompt(self, name: str, *, press: str | None = None, hangup: bool = False,
                  fax: str | None = None, action: Callable[[], None] | None = None,
                  after: float = 0.0, occurrence: int = 1, gap: float = KEY_GAP) -> None:
        """When prompt ``name`` starts playing for the ``occurrence``-th time, ``after``
        seconds later: press keys, hang up, send a fax tone, or run ``action``."""
        steps: list[Callable[[], None]] = []
        if press:
            steps.append(lambda: self._press_timed(press, gap))
        if fax:
            steps.append(lambda: self._fax(fax))
        if action is not None:
            steps.append(action)
        if hangup:
            steps.append(lambda: self.remote_hangup("caller"))
        if not steps:
            raise CallError("on_prompt needs something to do: press, hangup, fax or action")

        def run():
            for step in steps:
                step()
        self._hooks.append(_Hook(name, occurrence, run, after))

    def hang_up_on_prompt(self, name: str, occurrence: int = 1, after: float = 0.0) -> None:
        self.on_prompt(name, hangup=True, occurrence=occurrence, after=after)

    @property
    def unused_hooks(self) -> list[str]:
        """Scripted prompt actions that never happened (a test usually expects none)."""
        return [f"{h.name}#{h.occurrence}" for h in self._hooks if not h.fired]

    # --- driving ------------------------------------------------------------------------

    async def run(self, work: Awaitable, reactor=None, max_steps: int = 100000):
        """Run the application (a coroutine or Deferred) to its end, moving the clock
        whenever it waits on the call; returns its result or raises its exception.

        When the application also awaits things outside the call (a real store), pass the
        reactor those complete on: the driver then resumes through it, after the application
        has really suspended on the call."""
        self._reactor = reactor
        done = defer.ensureDeferred(work) if not isinstance(work, defer.Deferred) else work
        finished = []
        done.addBoth(lambda r: (finished.append(True), self._poke(), r)[2])
        steps = 0
        while not finished:
            self._nudge = defer.Deferred()
            if self._waiting():
                self._nudge.callback(None)
            await self._nudge
            if finished:
                break
            if not self._waiting():
                continue
            calls = self.clock.getDelayedCalls()
            if not calls:
                raise FakeCallStuck(f"the application waits forever; played so far: {self.played}")
            steps += 1
            if steps > max_steps:
                raise FakeCallStuck(f"more than {max_steps} clock steps; played so far: {self.played}")
            due = min(c.getTime() for c in calls)
            self.clock.advance(max(0.0, due - self.clock.seconds()))
        return await done

    def _waiting(self) -> bool:
        return self._busy and (self._operation is not None or self._digit_waiter is not None
                               or bool(self._hangup_gates))

    def _wait_started(self) -> None:
        self._poke()

    def _poke(self) -> None:
        nudge, self._nudge = self._nudge, None
        if nudge is not None and not nudge.called:
            if self._reactor is not None:
                self._reactor.callLater(0, nudge.callback, None)
            else:
                nudge.callback(None)

    def _schedule(self, delay: float, what: Callable[[], None]) -> None:
        self._scripted = [c for c in self._scripted if c.active()]
        self._scripted.append(self.clock.callLater(max(0.0, delay), what))

    def remote_hangup(self, reason: str = "hangup") -> None:
        """Also drops what the script would still have done: a caller who has gone presses
        nothing more."""
        super().remote_hangup(reason)
        for pending in self._scripted:
            if pending.active():
                pending.cancel()
        self._scripted = []

    def _press_timed(self, keys: str, gap: float) -> None:
        for index, key in enumerate(keys):
            self._schedule(index * gap, lambda key=key: self.digit_received(key))

    def _fax(self, tone: str) -> None:
        self.events.append((self.clock.seconds(), "fax", tone))
        self.fax_tone_detected(tone)

    # --- primitives ----------------------------------------------------------------------

    def _log(self, what: str, detail: Any = None) -> None:
        self.events.append((self.clock.seconds(), what, detail))

    @property
    def event_names(self) -> list[str]:
        return [what for _, what, _ in self.events]

    async def _answer(self) -> None:
        self._log("answer")

    async def _reject(self, code: int, reason: str | None) -> None:
        self._log("reject", code)

    async def _hangup(self) -> None:
        self._log("hangup")

    def _set_fax_detection(self, enabled: bool) -> None:
        self.fax_detection = enabled

    def _duration(self, item: PlayItem) -> float:
        if isinstance(item, str):
            return self.durations.get(item, self.prompt_seconds)
        if isinstance(item, Audio):
            return item.duration
        return item.ms / 1000.0

    def _start_play(self, items: list[PlayItem]) -> MediaOperation:
        state = {"timer": None}

        def stop():
            timer = state["timer"]
            if timer is not None and timer.active():
                timer.cancel()
            operation.done.callback(PlayResult(STOPPED))

        operation = MediaOperation(stop)

        def start(index: int) -> None:
            state["timer"] = None
            if operation.done.called:
                return
            if index >= len(items):
                operation.done.callback(PlayResult(FINISHED))
                return
            item = items[index]
            name = describe(item)
            self.played.append(name)
            if isinstance(item, Audio):
                self.played_audio.append(item)
            state["timer"] = self.clock.callLater(self._duration(item), start, index + 1)
            self._prompt_started(name)

        start(0)
        return operation

    def _prompt_started(self, name: str) -> None:
        for hook in self._hooks:
            if hook.name == name and not hook.fired:
                hook.seen += 1
                if hook.seen == hook.occurrence:
                    hook.fired = True
                    self._schedule(hook.after, hook.action)

    def _start_record(self, max_seconds: float, silence_seconds: float | None) -> MediaOperation:
        utterance = self._utterances.pop(0) if self._utterances else Utterance(0.0, "wait")
        started = self.clock.seconds()
        timers = []
        self._log("record", (max_seconds, silence_seconds))
        audio = utterance.pcm if utterance.pcm is not None else speech(utterance.seconds, len(self.recordings) + 1)
        speaking = len(audio) / 8000.0

        def finish(reason: str) -> None:
            for timer in timers:
                if timer.active():
                    timer.cancel()
            if operation.done.called:
                return
            elapsed = min(self.clock.seconds() - started, max_seconds)
            pcm = audio[: int(round(min(elapsed, speaking) * 8000))]
            recording = Recording(pcm, reason)
            self.recordings.append(recording)
            operation.done.callback(recording)

        operation = MediaOperation(lambda: finish(STOPPED))
        limit = max_seconds
        end_reason = MAX_LENGTH
        if utterance.end in ("silence", "wait") and silence_seconds is not None:
            quiet_end = speaking + silence_seconds
            if quiet_end < limit:
                limit, end_reason = quiet_end, SILENCE
        timers.append(self.clock.callLater(limit, finish, end_reason))
        if speaking < max_seconds:
            if utterance.end == "hangup":
                timers.append(self.clock.callLater(speaking, self.remote_hangup, "caller"))
            elif utterance.end not in ("silence", "wait"):
                timers.append(self.clock.callLater(speaking, self.digit_received, utterance.end))
        return operation

    async def _transfer(self, destination: str) -> None:
        self._log("transfer", destination)
        if self.transfer_outcome is not None:
            raise self.transfer_outcome

    async def _dial(self, destination: str, caller_id: str | None, timeout: float) -> Call:
        self._log("dial", destination)
        outcome = self.dial_outcomes.get(destination)
        ring = defer.Deferred()
        delay = min(self.ring_seconds, timeout) if outcome is not None else timeout
        timers = [self.clock.callLater(delay, ring.callback, None)]
        early = self.early_media_seconds.get(destination)
        if early is not None and early < delay:
            timers.append(self.clock.callLater(early, self._early_media, destination))

        def stop_timers(result):
            for timer in timers:
                if timer.active():
                    timer.cancel()
            return result
        ring.addBoth(stop_timers)
        await ring
        if outcome is None:
            raise DialFailed(destination, "no-answer")
        if isinstance(outcome, DialFailed):
            raise outcome
        outcome.answered = True
        return outcome

    async def _bridge(self, other: Call) -> None:
        self._log("bridge", getattr(other, "called", None))
        ended = defer.Deferred()
        other.hungup.addBoth(lambda r: (ended.called or ended.callback(None), r)[1])
        await ended


    def _early_media(self, destination: str) -> None:
        self._log("early-media", destination)
        self.early_media()

    def _looped(self, items: list[PlayItem], on_item: Callable[[str], None]) -> MediaOperation:
        """Items one after the other, ``on_item`` told of each as it starts, over and over
        until stopped."""
        state = {"timer": None}

        def stop():
            timer = state["timer"]
            if timer is not None and timer.active():
                timer.cancel()
            if not operation.done.called:
                operation.done.callback(PlayResult(STOPPED))

        operation = MediaOperation(stop)

        def start(index: int) -> None:
            item = items[index % len(items)]
            on_item(describe(item))
            state["timer"] = self.clock.callLater(max(0.02, self._duration(item)), start, index + 1)

        start(0)
        return operation

    def _start_ringback(self, items: list[PlayItem]) -> MediaOperation:
        """Written down in :attr:`played` as ``ringback:<item>`` each time an item starts."""
        return self._looped(items, lambda name: self.played.append("ringback:" + name))

    def _start_announce(self, items: list[PlayItem], mix: bool) -> MediaOperation:
        """Written down in :attr:`announcements` and, item by item, in :attr:`played` as
        ``announce:<item>``."""
        self.announcements.append((self.clock.seconds(), [describe(i) for i in items], mix))
        state = {"timer": None}

        def stop():
            timer = state["timer"]
            if timer is not None and timer.active():
                timer.cancel()
            if not operation.done.called:
                operation.done.callback(PlayResult(STOPPED))

        operation = MediaOperation(stop)

        def start(index: int) -> None:
            if index >= len(items):
                operation.done.callback(PlayResult(FINISHED))
                return
            self.played.append("announce:" + describe(items[index]))
            state["timer"] = self.clock.callLater(self._duration(items[index]), start, index + 1)

        start(0)
        return operation
