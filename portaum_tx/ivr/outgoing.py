"""Outgoing legs for the calling applications: dial, bridge, cut, charge.

Every calling application (prepaid card, callback, one-stage, PINless, pass-through PIN)
ends the same way once it knows who pays and where the caller wants to go:

1. authorize the destination on the paying account (the billing engine says how long the
   call may last), optionally announcing that time;
2. dial it through the configured trunk (the Call API's ``dial``), with pre-ring music on
   hold when asked for, counting the session's dial attempts;
3. bridge the legs until one side hangs up or the authorized time, less the "disconnect
   call before" margin, runs out; the end-of-call warning (a beep or the seconds left
   spoken) comes ``end_announce_time`` seconds before the cut;
4. charge the leg on the paying account by its access code, and release the
   authorization when no call took place.

:func:`call_options` reads the options the guide's Appendix A gives every calling
application; :class:`Dialer` runs steps 1-4 and :func:`announce_available_time` speaks the
"you can talk for" line with the seconds rounding mode.

Two sounds play while the caller's leg is busy with another media operation: pre-ring music
(``dial(..., ringback=[moh prompt])`` while the leg rings) and the warning
(``announce(items)`` while ``bridge`` runs).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional

from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.billing.rating import SecondsRounding, announce_time
from portaum_tx.ivr.apps import (  # option_choice: re-exported for the applications
    OptionError, choice_option, option_bool, option_choice, option_number,
)
from portaum_tx.ivr.call import Beep, CallHungUp, DialFailed
from portaum_tx.ivr import charging

log = Logger()

#: The access-code prefix of the announcement tariff (the guide's "ANNOUNCE+DNIS").
ANNOUNCE = "ANNOUNCE"
#: How the xDRs name the legs: the caller's into the application, and the one placed out.
LEG_A = "A"
LEG_B = "B"

#: How long an outgoing leg may ring before it counts as not answered.
RING_TIMEOUT = 60.0

SECONDS_ROUNDING_CHOICES = ("none", "up")
END_ANNOUNCE_CHOICES = ("beep", "voice")

#: The Appendix A options every calling application shares: (name, type, default, help[,
#: choices]).
CALL_OPTIONS = (
    ("announce_time", "bool", False,
     "Announce the longest call allowed to the destination before connecting."),
    ("use_announcement_tariff", "bool", False,
     "Announce the time by the ANNOUNCE+DNIS tariff while rating by the real one."),
    choice_option("seconds_rounding_mode", "none", SECONDS_ROUNDING_CHOICES,
                  "How seconds of the available time are spoken: none (5 min 49 s) or up (6 minutes)."),
    ("play_pre_ring_moh", "bool", False,
     "Play music on hold instead of ringback until the far end rings."),
    ("music_on_hold_class", "text", "",
     "Music on hold class for pre-ring MOH: plays the prompt moh-<class> (moh when it is missing)."),
    ("end_announce_time", "int", 0,
     "Seconds before the forced end of the call at which to warn (0 = no warning)."),
    choice_option("end_announce_type", "beep", END_ANNOUNCE_CHOICES,
                  "The warning: a beep, or the seconds left spoken."),
    ("disconnect_call_before", "int", 0,
     "Seconds before the balance runs out at which the call is cut."),
    ("maximum_dial_attempts", "int", 3, "Destinations the caller may try in one session."),
)


@dataclasses.dataclass(frozen=True)
class CallOptions:
    announce_time: bool = False
    use_announcement_tariff: bool = False
    seconds_rounding: SecondsRounding = SecondsRounding.NONE
    play_pre_ring_moh: bool = False
    music_on_hold_class: str = ""
    end_announce_time: int = 0
    end_announce_type: str = "beep"
    disconnect_call_before: int = 0
    maximum_dial_attempts: int = 3
    ring_timeout: float = RING_TIMEOUT


def option_text(options: dict, name: str, default: str = "") -> str:
    value = options.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise OptionError(f"option {name} must be text, got {value!r}")
    return value.strip()


def option_int(options: dict, name: str, default: int, minimum: int = 0,
               maximum: int = 86400) -> int:
    try:
        return int(option_number(options, name, default, minimum, maximum, integer=True))
    except OverflowError:  # an infinite float given as a count
        raise OptionError(f"option {name} must be an integer, got {options.get(name)!r}") from None


def call_options(options: dict) -> CallOptions:
    moh_class = option_text(options, "music_on_hold_class")
    if moh_class and ("/" in moh_class or moh_class.startswith(".")):
        raise OptionError(f"option music_on_hold_class must be a directory name, got {moh_class!r}")
    return CallOptions(
        announce_time=option_bool(options, "announce_time", False),
        use_announcement_tariff=option_bool(options, "use_announcement_tariff", False),
        seconds_rounding=SecondsRounding(option_choice(options, "seconds_rounding_mode", "none",
                                                       SECONDS_ROUNDING_CHOICES)),
        play_pre_ring_moh=option_bool(options, "play_pre_ring_moh", False),
        music_on_hold_class=moh_class,
        end_announce_time=option_int(options, "end_announce_time", 0),
        end_announce_type=option_choice(options, "end_announce_type", "beep",
                                        END_ANNOUNCE_CHOICES),
        disconnect_call_before=option_int(options, "disconnect_call_before", 0),
        maximum_dial_attempts=option_int(options, "maximum_dial_attempts", 3, 1, 100),
    )


def moh_prompt(moh_class: str) -> str:
    """The prompt a music-on-hold class plays: ``moh-<class>``, or ``moh`` by default (a
    Call plays ``moh`` when ``moh-<class>`` does not exist; see MediaCall)."""
    return f"moh-{moh_class}" if moh_class else "moh"


async def announce_available_time(call, seconds: Optional[int],
                                  rounding: SecondsRounding) -> None:
    """ "You can talk for five minutes and forty-nine seconds." An unlimited call (None)
    says nothing."""
    if seconds is None:
        return
    told = announce_time(max(0, int(seconds)), rounding)
    await call.play(["pp-you-can-talk"]
                    + call.sayings("duration", told.minutes * 60 + told.seconds))


# --- one outgoing call -------------------------------------------------------------------

@dataclasses.dataclass
class LegResult:
    """What became of one attempt to reach a destination."""

    destination: str
    outcome: str            # answered, refused, busy, no-answer, failed
    seconds: int = 0        # talk time charged
    cut: bool = False       # ended by the time limit
    xdr: Any = None
    refusal: Optional[str] = None   # why billing refused: insufficient-funds, forbidden, no-rate


class CallTimer:
    """Ends a bridged call at its time limit, warning ``warn_before`` seconds ahead."""

    def __init__(self, clock, limit: Optional[float], warn_before: float,
                 warn: Callable[[], Any], cut: Callable[[], Any]):
        self.clock = clock
        self.fired = False
        self._calls = []
        if limit is None:
            return
        if warn_before > 0 and limit > warn_before:
            self._calls.append(clock.callLater(limit - warn_before, self._run, warn))
        self._calls.append(clock.callLater(max(0.0, limit), self._cut, cut))

    def _run(self, what) -> None:
        try:
            result = what()
            if isinstance(result, defer.Deferred):
                result.addErrback(lambda f: log.failure("end-of-call warning failed", f))
        except Exception:
            log.failure("end-of-call warning failed")

    def _cut(self, cut) -> None:
        self.fired = True
        self._run(cut)

    def cancel(self) -> None:
        for delayed in self._calls:
            if delayed.active():
                delayed.cancel()
        self._calls = []


class Dialer:
    """Places, times and charges the outgoing legs of one IVR session.

    ``billing``: the billing engine; ``session_id``: the IVR session's ID, used for every
    authorization of the session when ``authorize_with_ivr_session_id`` holds;
    ``caller_id``: what the far end sees (the caller's number by default).
    """

    def __init__(self, call, billing, options: CallOptions, *, session_id: Optional[str] = None,
                 caller_id: Optional[str] = None, dnis: Optional[str] = None,
                 access_code: Optional[str] = None):
        self.call = call
        self.billing = billing
        self.options = options
        self.session_id = session_id
        self.caller_id = caller_id if caller_id is not None else (call.calling or None)
        #: The access number the session came in on: xDRs name it, and the announcement
        #: tariff is the product's ANNOUNCE<dnis> access code.
        self.dnis = dnis if dnis is not None else call.called
        #: The access code legs present to billing unless told otherwise: the access number,
        #: which selects the product's tariff for calls through it.
        self.access_code = access_code
        self.attempts = 0
        self.results: list[LegResult] = []

    @property
    def attempts_left(self) -> int:
        return max(0, self.options.maximum_dial_attempts - self.attempts)

    async def authorize(self, account, destination: str, access_code: Optional[str] = None):
        """The billing authorization, or a :class:`charging.Refused`."""
        announce_code = (f"{ANNOUNCE}{self.access_code or self.dnis}"
                         if self.options.announce_time and self.options.use_announcement_tariff
                         else None)
        return await charging.authorize(self.billing, account, destination,
                                        access_code=access_code or self.access_code,
                                        announce_code=announce_code,
                                        session_id=self.session_id)

    async def call_out(self, account, destination: str, *,
                       access_code: Optional[str] = None) -> LegResult:
        """One dial attempt: authorize, announce the time, dial, bridge with the timer,
        charge. Raises CallHungUp when the caller hangs up, after charging what was talked."""
        call = self.call
        self.attempts += 1
        try:
            authorization = await self.authorize(account, destination, access_code)
        except charging.Refused as refused:
            result = LegResult(destination, "refused", refusal=refused.reason)
            self.results.append(result)
            return result
        limit = self._limit(authorization)
        if limit is not None and limit <= 0:
            await charging.release(self.billing, authorization)
            result = LegResult(destination, "refused", refusal=charging.INSUFFICIENT_FUNDS)
            self.results.append(result)
            return result
        try:
            if self.options.announce_time:
                await announce_available_time(call, self._announced_seconds(authorization),
                                              self.options.seconds_rounding)
            other = await self._dial(destination)
        except DialFailed as failed:
            await charging.release(self.billing, authorization)
            result = LegResult(destination, failed.reason if failed.reason in (
                "busy", "no-answer") else "failed")
            self.results.append(result)
            return result
        except CallHungUp:
            await charging.release(self.billing, authorization)
            raise
        result = LegResult(destination, "answered")
        self.results.append(result)
        await self._talk(other, authorization, limit, result)
        return result

    def _limit(self, authorization) -> Optional[float]:
        """When the call must end: the authorized maximum less the disconnect margin."""
        maximum = charging.max_seconds(authorization)
        if maximum is None:
            return None
        return max(0, maximum - self.options.disconnect_call_before)

    def _announced_seconds(self, authorization) -> Optional[int]:
        announced = (charging.announced_seconds(authorization)
                     if self.options.use_announcement_tariff else None)
        maximum = announced if announced is not None else charging.max_seconds(authorization)
        if maximum is not None and not self.options.use_announcement_tariff:
            maximum = max(0, maximum - self.options.disconnect_call_before)
        return maximum

    async def _dial(self, destination: str):
        call = self.call
        timeout = self.options.ring_timeout
        if self.options.play_pre_ring_moh:
            ringback = [moh_prompt(self.options.music_on_hold_class)]
            return await call.dial(destination, self.caller_id, timeout, ringback=ringback)
        return await call.dial(destination, self.caller_id, timeout)

    async def _talk(self, other, authorization, limit: Optional[float], result: LegResult) -> None:
        call = self.call
        clock = call.clock
        started = clock.seconds()
        timer = CallTimer(clock, limit, self.options.end_announce_time,
                          lambda: self._warn(self.options.end_announce_time),
                          lambda: defer.ensureDeferred(other.hangup()))
        try:
            await call.bridge(other)
        finally:
            timer.cancel()
            result.cut = timer.fired
            elapsed = clock.seconds() - started
            result.seconds = max(0, math.ceil(elapsed - 1e-6))
            if limit is not None:
                result.seconds = min(result.seconds, math.ceil(limit))
            result.xdr = await charging.charge(
                self.billing, authorization, result.seconds, cli=self.caller_id or "",
                cld=result.destination, access_number=self.dnis, leg=LEG_B)

    def _warn(self, seconds_left: int):
        """The warning to the caller only: a beep over the conversation, or the time left
        spoken in place of it (so that it is understood)."""
        call = self.call
        if self.options.end_announce_type == "voice":
            items, mix = ["pp-disconnect-in"] + call.sayings("duration", seconds_left), False
        else:
            items, mix = [Beep()], True
        return defer.ensureDeferred(call.announce(items, mix=mix))


async def play_leg_outcome(call, result: LegResult) -> None:
    """Tell the caller why an attempt did not connect."""
    if result.outcome == "refused":
        prompt = {charging.FORBIDDEN: "pp-destination-forbidden",
                  charging.NO_RATE: "pp-destination-invalid"}.get(result.refusal,
                                                                   "pp-insufficient-funds")
    else:
        prompt = {"busy": "pp-number-busy", "no-answer": "pp-no-answer"}.get(
            result.outcome, "pp-call-failed")
    if result.outcome != "answered":
        await call.play([prompt])
