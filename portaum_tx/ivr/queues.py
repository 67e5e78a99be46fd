"""Call queues: what a waiting caller hears, and the caller's life in a queue.

A queue has a destination (one number; hunting among agents happens behind it), a maximum
number of connected calls, an average call duration and music on hold. A caller who arrives
joins the end of the queue and hears their position and the estimated wait,

    estimated wait = average duration / maximum connected calls * callers ahead,

then music, with the position and wait again every minute. While the queue holds fewer
outgoing calls than its maximum, the first caller waiting takes a slot and the destination
is called for them, attempt after attempt, until it answers; the caller is then bridged to
it. A caller who hangs up leaves the queue, giving back any slot.

The order and the slots live in the store (:class:`~portaum_tx.store.attendant.AttendantStore`),
so callers on different nodes share one queue; each caller's own node polls for its turn.
"""

from __future__ import annotations

import dataclasses
import math
import re
from functools import lru_cache
from typing import Optional

import numpy as np
from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.ivr.call import Audio, Call, DialFailed
from portaum_tx.store import NotFound

log = Logger()

ANNOUNCE_EVERY = 60.0   # seconds between position announcements
POLL_SECONDS = 2.0      # how often a waiting caller checks for its turn
RETRY_SECONDS = 5.0     # pause between two unanswered attempts
RING_SECONDS = 30.0     # how long one attempt rings
HEARTBEAT_SECONDS = 20.0
STALE_SECONDS = 90      # a caller row not refreshed for this long belongs to a dead node

_DESTINATION = re.compile(r"[0-9*#+]{1,32}")


class QueueError(ValueError):
    """A queue setting that cannot be stored; the message names what is wrong."""


@dataclasses.dataclass(frozen=True)
class QueueSettings:
    destination: str
    max_connected: int = 1
    average_seconds: int = 180

    def check(self) -> "QueueSettings":
        if not isinstance(self.destination, str) or not _DESTINATION.fullmatch(self.destination):
            raise QueueError(f"queue destination must be 1-32 of 0-9 * # +, got {self.destination!r}")
        if not isinstance(self.max_connected, int) or not 1 <= self.max_connected <= 1000:
            raise QueueError(f"maximum connected calls must be 1-1000, got {self.max_connected!r}")
        if not isinstance(self.average_seconds, int) or not 1 <= self.average_seconds <= 86400:
            raise QueueError(f"average call duration must be 1-86400 seconds, "
                             f"got {self.average_seconds!r}")
        return self


def estimated_wait(average_seconds: float, max_connected: int, ahead: int) -> float:
    """The guide's estimate: average duration / maximum connected calls * callers ahead."""
    if max_connected < 1:
        raise QueueError(f"maximum connected calls must be at least 1, got {max_connected}")
    return average_seconds / max_connected * max(0, ahead)


def announcement(call: Call, position: int, wait_seconds: float) -> list:
    """Position and estimated wait, as prompt names in the call's language."""
    if position <= 1:
        items = ["queue-you-are-next"]
    else:
        items = ["queue-your-position"] + call.sayings("number", position)
    items.append("queue-estimated-wait")
    if wait_seconds < 60:
        items += ["queue-less-than"] + call.sayings("duration", 60)
    else:
        items += call.sayings("duration", math.ceil(wait_seconds), round_up_to_minutes=True)
    return items


@lru_cache(maxsize=1)
def default_music_pcm() -> np.ndarray:
    """Eight seconds of a soft arpeggio: the music on hold when the queue has none recorded."""
    rate = 8000
    notes = [261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 293.66, 349.23,
             440.0, 587.33, 440.0, 349.23, 246.94, 293.66, 392.0, 493.88]
    note_samples = rate // 2
    t = np.arange(note_samples) / rate
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-3.0 * t)
    freqs = np.repeat(np.asarray(notes), note_samples)
    phase = np.tile(t, len(notes))
    wave = (np.sin(2 * np.pi * freqs * phase) + 0.3 * np.sin(4 * np.pi * freqs * phase))
    wave *= np.tile(envelope, len(notes)) * 0.25
    return (wave * 32767).astype(np.int16)


class Music:
    """Music on hold played in slices that follow on from each other, so the caller hears
    one continuous piece although the queue stops every few seconds to check its turn."""

    def __init__(self, pcm: Optional[np.ndarray] = None, label: str = "music-on-hold"):
        self.pcm = default_music_pcm() if pcm is None or not len(pcm) else pcm
        self.label = label
        self.offset = 0

    async def play(self, call: Call, seconds: float) -> None:
        samples = int(round(seconds * 8000))
        while samples > 0:
            chunk = self.pcm[self.offset:self.offset + samples]
            self.offset = (self.offset + len(chunk)) % len(self.pcm)
            samples -= len(chunk)
            call.flush_digits()
            await call.play([Audio(chunk, self.label)])


class Heartbeat:
    """Refreshes a queue caller's row while its call holds a slot (ringing or bridged)."""

    def __init__(self, clock, touch, interval: float = HEARTBEAT_SECONDS):
        self.clock = clock
        self.touch = touch
        self.interval = interval
        self._timer = None
        self._pending = None

    def start(self) -> None:
        self._timer = self.clock.callLater(self.interval, self._beat)

    def _beat(self) -> None:
        self._pending = defer.ensureDeferred(self.touch())
        self._pending.addErrback(lambda failure: None)
        self._timer = self.clock.callLater(self.interval, self._beat)

    async def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._pending is not None and not self._pending.called:
            await self._pending


@dataclasses.dataclass
class QueueOutcome:
    connected: bool = False
    attempts: int = 0
    announcements: int = 0


async def wait_in_queue(call: Call, store, queue, music: Music, *, node: str = "",
                        poll_seconds: float = POLL_SECONDS, retry_seconds: float = RETRY_SECONDS,
                        ring_seconds: float = RING_SECONDS,
                        announce_every: float = ANNOUNCE_EVERY) -> QueueOutcome:
    """Put ``call`` in ``queue`` (a stored CallQueue) and keep it there until it is bridged
    to the destination and that call ends, or until the caller hangs up (CallHungUp)."""
    attendant = store.attendant
    outcome = QueueOutcome()
    await attendant.delete_stale_queue_callers(queue.id, STALE_SECONDS)
    caller = await attendant.add_queue_caller(queue.id, call.call_id, node)
    heartbeat = Heartbeat(call.clock, lambda: attendant.touch_queue_caller(caller.id))
    try:
        return await _wait(call, attendant, queue, caller, music, heartbeat, outcome,
                           poll_seconds, retry_seconds, ring_seconds, announce_every)
    except NotFound:
        # The queue was removed while the caller waited (its callers went with it).
        log.info("{call_id}: queue {queue} went away", call_id=call.call_id, queue=queue.name)
        call.flush_digits()
        await call.play(["service-unavailable"])
        return outcome
    finally:
        await heartbeat.stop()
        await attendant.delete_queue_caller(caller.id)


async def _wait(call: Call, attendant, queue, caller, music: Music, heartbeat: Heartbeat,
                outcome: QueueOutcome, poll_seconds: float, retry_seconds: float,
                ring_seconds: float, announce_every: float) -> QueueOutcome:
    if not await attendant.claim_queue_slot(caller.id):
        next_announcement = call.clock.seconds() + announce_every
        await _announce(call, attendant, caller.id, outcome, welcome=True)
        while True:
            await music.play(call, max(0.02, min(poll_seconds,
                                                 next_announcement - call.clock.seconds())))
            if await attendant.claim_queue_slot(caller.id):
                break
            if call.clock.seconds() >= next_announcement - 1e-6:
                await attendant.delete_stale_queue_callers(queue.id, STALE_SECONDS)
                next_announcement = call.clock.seconds() + announce_every
                await _announce(call, attendant, caller.id, outcome)
    heartbeat.start()
    await attendant.touch_queue_caller(caller.id)
    await call.play(["queue-connecting"])
    while True:
        outcome.attempts += 1
        try:
            agent = await call.dial(queue.destination, caller_id=call.calling or None,
                                    timeout=ring_seconds)
            break
        except DialFailed:
            await music.play(call, retry_seconds)
    try:
        await attendant.set_queue_caller_connected(caller.id)
    except NotFound:
        await agent.hangup()
        raise
    outcome.connected = True
    await call.bridge(agent)
    return outcome


async def _announce(call: Call, attendant, caller_id: int, outcome: QueueOutcome,
                    welcome: bool = False) -> None:
    standing = await attendant.get_queue_standing(caller_id)
    call.check()
    wait = estimated_wait(standing.average_seconds, standing.max_connected, standing.ahead)
    items = (["queue-welcome"] if welcome else []) + announcement(call, standing.position, wait)
    outcome.announcements += 1
    call.flush_digits()
    await call.play(items)


__all__ = ["Music", "QueueError", "QueueOutcome", "QueueSettings", "announcement",
           "estimated_wait", "wait_in_queue"]
