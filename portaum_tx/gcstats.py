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
