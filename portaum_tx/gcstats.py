"""How long Python's cyclic garbage collector stops the process.

A collection holds the interpreter, media clock included, for as long as it walks
the objects it tracks. The send pacer hides a pause shorter than ``[rtp]
send_ahead``; a longer one drops media ticks. Operators see the pauses in
``/health`` (``gc``) beside the media clock's dropped ticks, which is how they can
tell a collector pause from an overloaded core.

    pauses = CollectorPauses()
    pauses.install()
    ...
    pauses.status()   # {"collections": [..3 generations..], "max_pause_ms": ...}
    pauses.uninstall()
"""

from __future__ import annotations

import gc
import time

GENERATIONS = 3


class CollectorPauses:
    """Counts collections per generation and times them, through ``gc.callbacks``."""

    def __init__(self, timer=time.perf_counter):
        self._timer = timer
        self._started: float | None = None
        self.collections = [0] * GENERATIONS
        self.pause_seconds = [0.0] * GENERATIONS
        self.max_pause = [0.0] * GENERATIONS
        self.last_full_pause: float | None = None
        self.collected = 0

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        # Runs inside the collector: no allocation beyond floats, never raises.
        if phase == "start":
            self._started = self._timer()
            return
        if self._started is None:
            return
        took = self._timer() - self._started
        self._started = None
        generation = info.get("generation", 0)
        if not 0 <= generation < GENERATIONS:
            return
        self.collections[generation] += 1
        self.pause_seconds[generation] += took
        if took > self.max_pause[generation]:
            self.max_pause[generation] = took
        if generation == GENERATIONS - 1:
            self.last_full_pause = took
        self.collected += info.get("collected", 0)

    def status(self) -> dict:
        """What ``/health`` shows: collections and pauses per generation (0 youngest,
        2 the full collection), the collector's thresholds, and how many objects the
        start-up freeze put out of its reach."""
        return {
            "collections": list(self.collections),
            "max_pause_ms": [round(s * 1000, 3) for s in self.max_pause],
            "total_pause_ms": [round(s * 1000, 1) for s in self.pause_seconds],
            "last_full_pause_ms": None if self.last_full_pause is None else round(self.last_full_pause * 1000, 3),
            "collected": self.collected,
            "thresholds": list(gc.get_threshold()),
            "frozen": gc.get_freeze_count(),
        }


class SurvivorFreezer:
    """Keeps the full collection's walk to what is new since the last one.

    A full collection walks every tracked object, so its pause grows with the calls in
    progress (about 200 objects each), while what it finds to free is almost always
    young. After each full collection this freezes its survivors (``gc.freeze``): the
    next one walks only the objects that came since. An object frozen and later
    released is still freed by reference counting; what freezing hides is a reference
    *cycle* among frozen objects. So every ``thaw_interval`` seconds the frozen objects
    go back to the collector (``gc.unfreeze``) and one full collection runs over
    everything, reclaiming any such cycle; ``status`` reports how many it found, which
    is how a cycle that keeps coming back would show.

        freezer = SurvivorFreezer(reactor, thaw_interval=3600)
        freezer.start()
        ...
        freezer.status()   # {"freezes": ..., "thaws": ..., "reclaimed_at_last_thaw": ...}
        freezer.stop()
    """

    def __init__(self, reactor, thaw_interval: float = 3600.0, collector=gc):
        if thaw_interval <= 0:
            raise ValueError(f"thaw_interval must be positive, got {thaw_interval!r}")
        self._reactor = reactor
        self._gc = collector
        self.thaw_interval = thaw_interval
        self.freezes = 0
        self.thaws = 0
        self.reclaimed_at_last_thaw: int | None = None
        self._thaw_call = None

    def start(self) -> None:
        if self._callback not in self._gc.callbacks:
            self._gc.callbacks.append(self._callback)
        if self._thaw_call is None:
            self._thaw_call = self._reactor.callLater(self.thaw_interval, self._thaw)

    def stop(self) -> None:
        """Stops freezing and gives the frozen objects back to the collector."""
        if self._callback in self._gc.callbacks:
            self._gc.callbacks.remove(self._callback)
        if self._thaw_call is not None:
            if self._thaw_call.active():
                self._thaw_call.cancel()
            self._thaw_call = None
            self._gc.unfreeze()

    def _callback(self, phase: str, info: dict) -> None:
        # Runs inside the collector, after it has finished: the oldest generation now
        # holds exactly what survived the full collection.
        if phase == "stop" and info.get("generation") == GENERATIONS - 1:
            self._gc.freeze()
            self.freezes += 1

    def _thaw(self) -> None:
        self._thaw_call = self._reactor.callLater(self.thaw_interval, self._thaw)
        self.thaw()

    def thaw(self) -> int:
        """Gives the frozen objects back and collects everything once (one full pause,
        whose survivors the collector callback freezes again). Returns the unreachable
        objects found."""
        self._gc.unfreeze()
        found = self._gc.collect()
        self.thaws += 1
        self.reclaimed_at_last_thaw = found
        return found

    def status(self) -> dict:
        return {
            "freezes": self.freezes,
            "thaws": self.thaws,
            "thaw_interval_s": self.thaw_interval,
            "reclaimed_at_last_thaw": self.reclaimed_at_last_thaw,
        }
