"""The Call API: what an IVR application sees of one call leg.

Applications are ``async def app(call, context, options)`` functions. They answer, play
prompts, say values, collect digits, record, transfer, dial and bridge through a
:class:`Call`, never through SIP messages or RTP sessions.

:class:`Call` implements the behaviour every call shares once, on an injected clock:
the digit buffer, barge-in, digit collection with its timeouts and terminators, the
recording terminators, sayings, and hang-up handling. An implementation (the SIP layer's
call over RTP, :mod:`portaum_tx.ivr.media_call`; the scripted
:class:`~portaum_tx.ivr.fake.FakeCall` of the tests) provides only the primitives marked
"implementers provide" below and reports what the far end does by calling
:meth:`Call.digit_received`, :meth:`Call.remote_hangup` and :meth:`Call.fax_tone_detected`.

Hang-up: once the caller hangs up, every wait of the application (play, collect, the beep,
transfer, dial, bridge) ends at once with :class:`CallHungUp`, and every later call of a
media method raises it immediately, so an application is cancelled wherever it is.
:meth:`Call.record` is the one exception: hanging up is how most callers end a voicemail,
so it returns the recording with ``ended_by == "hangup"``; the next media call raises.
Store operations an application is in the middle of are not interrupted, so nothing is
left half-written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Callable, Iterable, Optional, Sequence, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from portaum_tx.ivr.say import SayError, get_sayer

log = Logger()

DTMF_KEYS = "0123456789*#ABCD"

#: What the SIP layer may put in :attr:`Call.diversion_reason`, normalised from the
#: Diversion ``reason`` (RFC 5806) or History-Info cause (RFC 4458) by
#: :func:`diversion_reason`: user-busy -> busy, no-answer -> no-answer, unavailable /
#: deflection / out-of-service ... -> unavailable, unconditional -> unconditional,
#: anything else -> unknown.
DIVERSION_REASONS = ("busy", "no-answer", "unavailable", "unconditional", "unknown")

_DIVERSION_TOKENS = {
    "user-busy": "busy", "busy": "busy",
    "no-answer": "no-answer", "noanswer": "no-answer",
    "unavailable": "unavailable", "deflection": "unavailable", "out-of-service": "unavailable",
    "do-not-disturb": "unavailable", "away": "unavailable", "time-of-day": "unavailable",
    "unconditional": "unconditional", "follow-me": "unconditional",
}
# RFC 4458 cause values (History-Info ``cause=`` of a voicemail URI) and their reasons.
_DIVERSION_CAUSES = {486: "busy", 600: "busy", 408: "no-answer", 480: "unavailable",
                     404: "unavailable", 503: "unavailable", 487: "no-answer", 302: "unconditional"}


def diversion_reason(reason: str | None = None, cause: int | str | None = None) -> str | None:
    """Normalise a Diversion ``reason`` token (RFC 5806) or a History-Info ``cause`` (RFC 4458)
    into one of DIVERSION_REASONS; None when the call was not diverted at all."""
    if reason:
        return _DIVERSION_TOKENS.get(reason.strip().strip('"').lower(), "unknown")
    if cause is not None and cause != "":
        try:
            return _DIVERSION_CAUSES.get(int(cause), "unknown")
        except (TypeError, ValueError):
            return "unknown"
    return None


# How a playback ended.
FINISHED = "finished"
DIGIT = "digit"
STOPPED = "stopped"
# How a digit collection ended.
MAX_DIGITS = "max_digits"
TERMINATOR = "terminator"
TIMEOUT = "timeout"
# How a recording ended (plus DIGIT and STOPPED).
SILENCE = "silence"
MAX_LENGTH = "max_length"
HANGUP = "hangup"


class CallError(Exception):
    """Misuse of a call (a bad argument, a second media operation at once)."""


class CallHungUp(Exception):
    """The call is over: raised inside the application wherever it waits."""

    def __init__(self, reason: str = "hangup"):
        super().__init__(f"the call has ended ({reason})")
        self.reason = reason


class TransferFailed(CallError):
    """The far end refused or failed the transfer; the call is still up."""


class DialFailed(CallError):
    """An outgoing leg was not answered. ``reason`` is busy, no-answer, rejected or failed;
    ``code`` the final SIP status when there was one."""

    def __init__(self, destination: str, reason: str, code: int | None = None):
        super().__init__(f"call to {destination} failed: {reason}" + (f" ({code})" if code else ""))
        self.destination = destination
        self.reason = reason
        self.code = code


# --- what can be played ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Audio:
    """Recorded audio (a greeting, a name, a voice message): int16 PCM, 8 kHz mono."""

    pcm: np.ndarray = dataclasses.field(compare=False, repr=False)
    label: str = "audio"

    @property
    def duration(self) -> float:
        return len(self.pcm) / 8000.0


@dataclasses.dataclass(frozen=True)
class Silence:
    ms: int


@dataclasses.dataclass(frozen=True)
class Beep:
    """The record tone."""

    ms: int = 500


#: A prompt name from prompts/catalog.tsv, or one of the classes above.
PlayItem = Union[str, Audio, Silence, Beep]


@dataclasses.dataclass(frozen=True)
class PlayResult:
    reason: str  # finished, digit (barge-in) or stopped
    digit: str | None = None


@dataclasses.dataclass(frozen=True)
class Digits:
    digits: str
    ended_by: str  # max_digits, terminator or timeout
    terminator: str | None = None

    @property
    def timed_out(self) -> bool:
        """Nothing at all was entered."""
        return self.ended_by == TIMEOUT and not self.digits


@dataclasses.dataclass(frozen=True)
class Recording:
    pcm: np.ndarray = dataclasses.field(repr=False)  # int16, 8 kHz mono
    ended_by: str  # digit, silence, max_length, hangup or stopped
    digit: str | None = None

    @property
    def duration(self) -> float:
        return len(self.pcm) / 8000.0


class MediaOperation:
    """A playback or recording in progress, as an implementation hands it back.

    ``done`` fires once with the result: a :class:`PlayResult` for a playback (reason
    ``finished``, or ``stopped`` after :meth:`stop`), a :class:`Recording` for a recording
    (``silence``, ``max_length``, or ``stopped`` with the audio so far after :meth:`stop`).
    :meth:`stop` must make ``done`` fire promptly and release whatever the operation holds.
    """

    def __init__(self, stop: Callable[[], None] | None = None):
        self.done: defer.Deferred = defer.Deferred()
        self._stop = stop
        # ``stop`` is usually a closure over this operation: a reference cycle that,
        # left standing, only the full collection (which pauses the media clock)
        # would free. Finished, the operation has nothing left to stop.
        self.done.addBoth(self._finished)

    def _finished(self, result):
        self._stop = None
        return result

    def stop(self) -> None:
        if not self.done.called and self._stop is not None:
            self._stop()


class Call:
    """One call leg. See the module docstring for the contract.

    The SIP layer fills the identity fields from the INVITE: ``calling`` (the caller's
    number: user part of P-Asserted-Identity or From, "" when anonymous), ``calling_name``
    (display name or None), ``called`` (the number dialled: Request-URI user part),
    ``original_called`` (the first diverting number of Diversion / History-Info, or None)
    and ``diversion_reason`` (one of :data:`DIVERSION_REASONS`, or None).

    Applications may set ``languages`` (prompt language preference, first is used for
    sayings) and ``brand`` (the access number's prompt brand directory).
    """

    def __init__(self, clock, *, call_id: str = "", calling: str = "", called: str = "",
                 calling_name: str | None = None, original_called: str | None = None,
                 diversion_reason: str | None = None):
        if diversion_reason is not None and diversion_reason not in DIVERSION_REASONS:
            raise CallError(f"diversion reason {diversion_reason!r} is not one of "
                            f"{', '.join(DIVERSION_REASONS)}")
        self.clock = clock
        self.call_id = call_id
        self.calling = calling
        self.calling_name = calling_name
        self.called = called
        self.original_called = original_called
        self.diversion_reason = diversion_reason
        self.languages: list[str] = ["en"]
        self.brand: str | None = None
        self.answered = False
        #: Fires with the reason once the call is over (caller hung up, we hung up,
        #: transferred). Never errbacks.
        self.hungup: defer.Deferred = defer.Deferred()
        self.hangup_reason: str | None = None
        self.fax_tones: list[str] = []  # every CNG / CED heard, in order
        self._fax_listeners: list[Callable[[str], None]] = []
        self._digits: list[str] = []
        self._digit_waiter: defer.Deferred | None = None
        self._operation: MediaOperation | None = None
        self._barge_in: Union[bool, str] = False
        self._barged: str | None = None
        self._record_terminators = ""
        self._terminated: str | None = None
        self._busy = False
        self._recording = False
        self._hangup_gates: list[defer.Deferred] = []
        self._bridged_to: "Call | None" = None
        self._ringback: MediaOperation | None = None
        self._announcement: MediaOperation | None = None

    # --- implementers provide --------------------------------------------------------

    async def _answer(self) -> None:
        """Send 200 OK with our SDP and wait for the ACK (media flows from then on)."""
        raise NotImplementedError

    async def _reject(self, code: int, reason: str | None) -> None:
        """Send a final error response to the INVITE (404, 486, 480 ...)."""
        raise NotImplementedError

    async def _hangup(self) -> None:
        """Send BYE (or CANCEL/error before answer) and release the media."""
        raise NotImplementedError

    def _start_play(self, items: list[PlayItem]) -> MediaOperation:
        """Start playing ``items`` in order (prompt names resolved with ``self.languages`` and
        ``self.brand``). Digits are not the implementer's concern: the base class stops the
        operation on barge-in."""
        raise NotImplementedError

    def _start_record(self, max_seconds: float, silence_seconds: float | None) -> MediaOperation:
        """Start recording the caller; end by itself on silence or at the maximum length."""
        raise NotImplementedError

    def _set_fax_detection(self, enabled: bool) -> None:
        """Listen (or stop listening) for CNG / CED in the inbound audio; may be called
        after the call has ended."""
        raise NotImplementedError

    async def _transfer(self, destination: str) -> None:
        """Blind transfer (REFER, or an INVITE to ``destination`` bridged in, as the SIP layer
        prefers); return once the call has left us. Raise TransferFailed when refused."""
        raise NotImplementedError

    async def _dial(self, destination: str, caller_id: str | None, timeout: float) -> "Call":
        """Place an outgoing leg; return it answered, or raise DialFailed."""
        raise NotImplementedError

    async def _bridge(self, other: "Call") -> None:
        """Connect the media (and forward DTMF) of both legs; return when either hangs up."""
        raise NotImplementedError

    def _start_ringback(self, items: list[PlayItem]) -> MediaOperation:
        """Play ``items`` to the caller over and over (music on hold while a dialled leg
        rings) until stopped."""
        raise NotImplementedError

    def _start_announce(self, items: list[PlayItem], mix: bool) -> MediaOperation:
        """While bridged: play ``items`` to this leg over what the other leg says (``mix``)
        or instead of it; the bridge goes on. ``done`` fires with a PlayResult."""
        raise NotImplementedError

    # --- implementers call these ---------------------------------------------------------

    def digit_received(self, digit: str) -> None:
        """A DTMF key from the caller (RFC 4733, in-band or SIP INFO)."""
        if self.hangup_reason is not None or digit not in DTMF_KEYS:
            return
        operation = self._operation
        if operation is not None and self._recording:
            if digit in self._record_terminators and self._terminated is None:
                self._terminated = digit
                operation.stop()
            return  # keys pressed while recording are not menu input
        self._digits.append(digit)
        barge = self._barge_in
        if operation is not None and self._barged is None and (
                barge is True or (isinstance(barge, str) and digit in barge)):
            self._barged = digit
            operation.stop()
        waiter, self._digit_waiter = self._digit_waiter, None
        if waiter is not None:
            waiter.callback(True)

    def remote_hangup(self, reason: str = "hangup") -> None:
        """The call ended from the far side (BYE, CANCEL, dead media, transfer done)."""
        if self.hangup_reason is not None:
            return
        self.hangup_reason = reason
        for operation in (self._operation, self._announcement, self._ringback):
            if operation is not None:
                operation.stop()
        waiter, self._digit_waiter = self._digit_waiter, None
        if waiter is not None:
            waiter.callback(False)
        for gate in list(self._hangup_gates):
            if not gate.called:
                gate.callback((False, None))
        self.hungup.callback(reason)

    def early_media(self) -> None:
        """The leg being dialled sends early media (183 with SDP): the caller's ringback
        music stops."""
        ringback = self._ringback
        if ringback is not None:
            ringback.stop()

    def fax_tone_detected(self, tone: str) -> None:
        """CNG (a calling fax) or CED (an answering fax) heard in the caller's audio."""
        if self.hangup_reason is not None:
            return
        self.fax_tones.append(tone)
        for listener in list(self._fax_listeners):
            try:
                listener(tone)
            except Exception:
                log.failure("fax tone listener failed on {tone}", tone=tone)

    # --- for applications --------------------------------------------------------------

    @property
    def is_hungup(self) -> bool:
        return self.hangup_reason is not None

    @property
    def language(self) -> str:
        return self.languages[0] if self.languages else "en"

    def check(self) -> None:
        """Raise CallHungUp when the call is over (between store operations, say)."""
        if self.hangup_reason is not None:
            raise CallHungUp(self.hangup_reason)

    async def answer(self) -> None:
        self.check()
        if not self.answered:
            await self._answer()
            self.answered = True
            self.check()

    async def reject(self, code: int = 486, reason: str | None = None) -> None:
        """Refuse an unanswered call with a SIP status (404 no such number, 486 busy ...)."""
        if self.answered:
            raise CallError("an answered call cannot be rejected; hang it up")
        if not 400 <= code <= 699:
            raise CallError(f"reject needs a 4xx-6xx status, got {code}")
        if self.hangup_reason is None:
            await self._reject(code, reason)
            self._ended("rejected")

    async def hangup(self) -> None:
        """End the call from our side; harmless when it has already ended."""
        if self.hangup_reason is None:
            self.stop_media()
            await self._hangup()
            self._ended("local")

    def _ended(self, reason: str) -> None:
        self.remote_hangup(reason)

    def flush_digits(self) -> None:
        """Forget keys pressed ahead (before asking for a PIN, say)."""
        self._digits.clear()

    def stop_media(self) -> None:
        """End the current playback or recording early (it returns ``stopped``)."""
        if self._operation is not None:
            self._operation.stop()

    def on_fax_tone(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(tone)`` for each CNG / CED; returns the function that removes it.
        Detection runs while at least one listener is registered."""
        self._fax_listeners.append(listener)
        if len(self._fax_listeners) == 1:
            self._set_fax_detection(True)

        def remove():
            if listener in self._fax_listeners:
                self._fax_listeners.remove(listener)
                if not self._fax_listeners:
                    self._set_fax_detection(False)
        return remove

    async def play(self, items: Iterable[PlayItem], barge_in: Union[bool, str] = False) -> PlayResult:
        """Play items in order. ``barge_in``: True (any key), a string of keys, or False.
        A key that barges in stays in the digit buffer for the next collect_digits; a key
        already waiting in the buffer skips the playback altogether."""
        items = _playable(items)
        self.check()
        if not items:
            return PlayResult(FINISHED)
        for digit in self._digits:
            if barge_in is True or (isinstance(barge_in, str) and digit in barge_in):
                return PlayResult(DIGIT, digit)
        self._begin()
        self._barge_in, self._barged = barge_in, None
        self._recording = False
        try:
            self._operation = self._start_play(items)
            result = await self._wait(self._operation.done)
        finally:
            self._operation = None
            self._barge_in = False
            self._busy = False
        self.check()
        if self._barged is not None:
            return PlayResult(DIGIT, self._barged)
        return result

    async def say(self, kind: str, value: Any, *, barge_in: Union[bool, str] = False,
                  **options: Any) -> PlayResult:
        """Speak a value in the call's language; see :meth:`sayings`."""
        return await self.play(self.sayings(kind, value, **options), barge_in=barge_in)

    def sayings(self, kind: str, value: Any, *, timezone: str | None = None,
                **options: Any) -> list[str]:
        """The prompt names that speak ``value``: kind is number, digits, money (options:
        currency), duration (round_up_to_minutes), count (singular, plural), ordinal, spell,
        date, time or datetime. Dates and times are said in ``timezone`` (an IANA name, the
        account's), datetime relative to now ("today at ...")."""
        sayer = get_sayer(self.language)
        try:
            if kind in ("date", "time", "datetime"):
                zone = _zone(timezone)
                if isinstance(value, (int, float)):
                    value = dt.datetime.fromtimestamp(value, dt.timezone.utc)
                if isinstance(value, dt.datetime):
                    value = (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(zone)
                if kind == "datetime":
                    now = dt.datetime.fromtimestamp(self.clock.seconds(), zone)
                    return sayer.datetime(value, now=now)
                return getattr(sayer, kind)(value, **options)
            if kind == "count":
                return sayer.count(value, options["singular"], options["plural"], options.get("gender"))
            if kind == "money":
                return sayer.money(value, options["currency"])
            if kind in ("number", "digits", "duration", "ordinal", "spell"):
                return getattr(sayer, kind)(value, **options)
        except (SayError, KeyError, TypeError) as e:
            raise CallError(f"cannot say {kind} {value!r}: {e}") from None
        raise CallError(f"unknown saying {kind!r}")

    async def collect_digits(self, max_digits: int, first_timeout: float | None = 5.0,
                             inter_timeout: float | None = 3.0, terminators: str = "#",
                             prompts: Sequence[PlayItem] = (), barge_in: bool = True,
                             flush: bool = False) -> Digits:
        """Collect up to ``max_digits`` keys. ``prompts`` are played first (keys barge in
        when ``barge_in``); the first-digit timeout runs from the end of the prompts, the
        inter-digit timeout after each key. A key in ``terminators`` ends the entry and is
        not part of it. ``flush`` forgets keys pressed before."""
        if max_digits < 1:
            raise CallError(f"max_digits must be at least 1, got {max_digits}")
        if flush:
            self.flush_digits()
        if prompts:
            await self.play(prompts, barge_in=barge_in)
        self.check()
        collected = ""
        timeout = first_timeout
        while True:
            while self._digits:
                digit = self._digits.pop(0)
                if digit in terminators:
                    return Digits(collected, TERMINATOR, digit)
                collected += digit
                timeout = inter_timeout
                if len(collected) >= max_digits:
                    return Digits(collected, MAX_DIGITS)
            if not await self._wait_for_digit(timeout):
                return Digits(collected, TIMEOUT)

    async def record(self, max_seconds: float = 120.0, silence_seconds: float | None = 5.0,
                     terminators: str = "#", beep: bool = True) -> Recording:
        """Record the caller after an optional beep; ends on a terminator key (not recorded),
        ``silence_seconds`` of silence (trimmed), ``max_seconds``, or hang-up (returned, not
        raised). Keys pressed while recording are not kept as menu input."""
        if max_seconds <= 0:
            raise CallError(f"max_seconds must be positive, got {max_seconds}")
        self.flush_digits()
        if beep:
            await self.play([Beep()])
            self.flush_digits()
        self.check()
        self._begin()
        self._recording = True
        self._record_terminators = terminators
        self._terminated = None
        try:
            self._operation = self._start_record(max_seconds, silence_seconds)
            self._wait_started()
            result = await self._operation.done
        finally:
            self._operation = None
            self._recording = False
            self._busy = False
        if self.hangup_reason is not None:
            return dataclasses.replace(result, ended_by=HANGUP, digit=None)
        if self._terminated is not None:
            return dataclasses.replace(result, ended_by=DIGIT, digit=self._terminated)
        return result

    async def transfer(self, destination: str) -> None:
        """Hand the call to ``destination``; afterwards the call is over for the application."""
        self.check()
        self._begin()
        try:
            await self._wait(defer.ensureDeferred(self._transfer(destination)))
        finally:
            self._busy = False
        self._ended("transferred")

    async def dial(self, destination: str, caller_id: str | None = None,
                   timeout: float = 30.0, ringback: Sequence[PlayItem] | None = None) -> "Call":
        """An outgoing leg, answered. Raises DialFailed, or CallHungUp when the caller
        hangs up while it rings (the outgoing attempt is then cancelled). ``ringback``:
        items played to the caller over and over while the leg rings (pre-ring music on
        hold), until the leg answers, fails or sends early media."""
        items = _playable(ringback) if ringback else []
        self.check()
        self._begin()
        try:
            if items:
                self._ringback = self._start_ringback(items)
            return await self._wait(defer.ensureDeferred(self._dial(destination, caller_id, timeout)))
        finally:
            ringback_operation, self._ringback = self._ringback, None
            if ringback_operation is not None:
                ringback_operation.stop()
            self._busy = False

    async def bridge(self, other: "Call") -> None:
        """Connect this call with ``other`` until one side hangs up. Returns when the other
        side hung up (this call goes on); when this side hangs up, the other leg is hung up
        too and CallHungUp is raised."""
        self.check()
        other.check()
        self._begin()
        self._bridged_to = other
        try:
            await self._wait(defer.ensureDeferred(self._bridge(other)))
        except CallHungUp:
            await other.hangup()
            raise
        finally:
            self._bridged_to = None
            if self._announcement is not None:
                self._announcement.stop()
            self._busy = False
        self.check()

    @property
    def is_bridged(self) -> bool:
        return self._bridged_to is not None

    async def announce(self, items: Iterable[PlayItem], mix: bool = True) -> PlayResult:
        """Play ``items`` to this leg while it is bridged (the end-of-call warning), mixed
        over what the other leg says (``mix``) or in place of it; the other leg hears
        nothing of it and the bridge goes on. Returns when played (``finished``) or cut
        short by the end of the bridge (``stopped``); a new announcement replaces one still
        playing. Not a media operation of its own: it runs beside the bridge."""
        items = _playable(items)
        self.check()
        if self._bridged_to is None:
            raise CallError("announce plays over a bridge, and this call is not bridged; use play")
        if not items:
            return PlayResult(FINISHED)
        if self._announcement is not None:
            self._announcement.stop()
        operation = self._announcement = self._start_announce(items, mix)
        try:
            return await operation.done
        finally:
            if self._announcement is operation:
                self._announcement = None

    # --- internals ---------------------------------------------------------------------

    def _begin(self) -> None:
        if self._busy:
            raise CallError("one media operation at a time: the previous one has not finished")
        self._busy = True

    def _wait_started(self) -> None:
        """The application now waits on this call (a test driver may move the clock on)."""

    async def _wait(self, d: defer.Deferred):
        """Wait for ``d`` or the hang-up, whichever comes first; on hang-up ``d`` is
        cancelled and CallHungUp raised."""
        if self.hangup_reason is not None:
            d.cancel()
            d.addErrback(lambda f: None)
            raise CallHungUp(self.hangup_reason)
        gate = defer.Deferred()

        def done(result):
            if not gate.called:
                gate.callback((True, result))

        d.addBoth(done)
        self._hangup_gates.append(gate)
        try:
            self._wait_started()
            finished, result = await gate
        finally:
            if gate in self._hangup_gates:
                self._hangup_gates.remove(gate)
        if not finished:
            if not d.called:
                d.cancel()
            raise CallHungUp(self.hangup_reason or "hangup")
        if isinstance(result, Failure):
            result.raiseException()
        return result

    async def _wait_for_digit(self, timeout: float | None) -> bool:
        """True when a key arrived, False on timeout; CallHungUp on hang-up."""
        self.check()
        waiter = self._digit_waiter = defer.Deferred()
        timer = None
        if timeout is not None:
            def expire():
                if self._digit_waiter is waiter:
                    self._digit_waiter = None
                    waiter.callback(False)
            timer = self.clock.callLater(max(0.0, timeout), expire)
        self._busy = True
        try:
            self._wait_started()
            got = await waiter
        finally:
            self._busy = False
            if timer is not None and timer.active():
                timer.cancel()
            if self._digit_waiter is waiter:
                self._digit_waiter = None
        self.check()
        return got


def _playable(items: Iterable[PlayItem]) -> list[PlayItem]:
    items = list(items)
    for item in items:
        if not isinstance(item, (str, Audio, Silence, Beep)):
            raise CallError(f"cannot play {item!r}: expected a prompt name, Audio, Silence or Beep")
    return items


def _zone(name: Optional[str]):
    if not name:
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CallError(f"unknown time zone {name!r}") from None
