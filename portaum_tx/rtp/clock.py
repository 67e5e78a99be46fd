"""The one media clock: a single 20 ms ticker serving every RTP session.

Each tick it
  1. pops one frame from every session's jitter buffer and decodes them all at once,
  2. runs the in-band DTMF and fax tone detectors once over the stacked block,
  3. hands each session's frame to its consumers (recorder, bridge, mixer),
  4. runs tick hooks (conference mixers compute all their outputs here),
  5. asks each session's source for its next frame, encodes the PCM ones in one
     vectorized pass, and sends,
  6. lets each session do its RTCP / dead-peer bookkeeping.

The ticker is a LoopingCall on an injected clock, but the number of ticks run is
derived from the clock's seconds() since start, so a late timer is caught up
(bounded) and the send rate never drifts from real time.

With a :class:`~portaum_tx.rtp._rtpcore.Pacer` the tick does not send: step 5 fills
the pacer's batch for the instant ``send_ahead`` ticks later, and the pacer's own
thread sends it at that instant. Every stream then goes out on the tick's schedule
even while the interpreter is held up (a garbage collection, a long tick) for less
than the lead; the price is that much more delay on what is sent.

Prompt audio is known in advance, so it need not pay that price to outlast a longer
pause. A session whose source says so (``prefetch = True``: the Player) has its frames
prepared up to ``prompt_ahead`` ticks ahead, in batches for their own instants, while
live audio (bridges, conferences, recorded echo) keeps the short lead. When the
playback is interrupted (barge-in, stop, a new source, a re-INVITE), :meth:`withdraw`
takes the frames not yet due at the live lead back out of the pacer and rewinds the
session's sequence and timestamp, so the far end hears the interruption as promptly
as without the deeper lead; and the end of a playback is reported (:meth:`when_sent`)
when its last frame reaches the live lead, as if it had not been prepared early.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable

import numpy as np
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from portaum_tx.rtp._rtpcore import listening, next_frames, pop_frames, send_frames
from portaum_tx.rtp.blas import limit_blas_threads
from portaum_tx.rtp.codecs import ALAW_ENCODE, ALAW_DECODE, PCMA, ULAW_DECODE, ULAW_ENCODE
from portaum_tx.rtp.dtmf import DtmfDigit, InbandDtmfDetector
from portaum_tx.rtp.jitter import FRAME_AUDIO
from portaum_tx.rtp.tones import FaxToneDetector

TICK_SECONDS = 0.020
FRAME_SAMPLES = 160

log = Logger()


class MediaClock:
    def __init__(self, clock, *, dtmf_detector: InbandDtmfDetector | None = None,
                 fax_detector: FaxToneDetector | None = None, max_catch_up: int = 5,
                 single_threaded_blas: bool = True, pacer=None, send_ahead: int = 0,
                 prompt_ahead: int = 0, refill_frames: int = 4, refill_share: float = 0.25,
                 refill_calm: int = 50):
        """``pacer``: a Pacer that sends each tick's packets ``send_ahead`` ticks
        after the tick (``clock`` must then count real seconds, as time.time()).
        ``prompt_ahead`` (ticks, more than ``send_ahead`` to have an effect): how far
        ahead a prefetching source's frames are prepared; a session below that lead
        (a playback starting, or after a pause) gets up to ``refill_frames`` more
        frames a tick until it is back, all of them together at most
        ``refill_share`` of the sessions' frames (or ``refill_frames``), and none while
        the clock is catching up with a stall or within ``refill_calm`` ticks of one
        that dropped ticks: refilling every session at once after a pause would make
        the next ticks as long as the pause, and an overloaded clock must shed work
        rather than add it."""
        if single_threaded_blas:
            limit_blas_threads(1)
        if send_ahead < 0 or (pacer is None and send_ahead):
            raise ValueError("send_ahead needs a pacer and must not be negative")
        if min(prompt_ahead, refill_frames, refill_share, refill_calm) < 0:
            raise ValueError("prompt_ahead and the refill settings must not be negative")
        self.clock = clock
        self.pacer = pacer
        self.send_ahead = send_ahead
        self.prompt_ahead = max(prompt_ahead, send_ahead)
        self.refill_frames = refill_frames
        self.refill_share = refill_share
        self.refill_calm = refill_calm
        self._catching_up = False
        self._last_drop = -refill_calm  # the tick after the clock last dropped ticks
        # only with a pacer can a frame be prepared for an instant of its own
        self.prefetching = pacer is not None and self.prompt_ahead > send_ahead
        # per slot: the tick the session's next frame is for (0: the live lead) and
        # whether its source may be prepared up to prompt_ahead
        self._next_tick = np.zeros(64, dtype=np.int64)
        self._prefetch = np.zeros(64, dtype=bool)
        self._sent_waiters: list = []  # heap of (tick, n, session, callback)
        self._waiter_order = itertools.count()
        self.dtmf_detector = dtmf_detector or InbandDtmfDetector()
        self.fax_detector = fax_detector or FaxToneDetector()
        self.max_catch_up = max_catch_up
        self.ticks = 0
        self.skipped_ticks = 0
        self._sessions: list = []
        self._free_slots: list[int] = []
        self._released_slots: list[int] = []
        self._next_slot = 0
        self._dirty = True
        self._hooks: list[Callable[[int], None]] = []
        self._loop: LoopingCall | None = None
        self._epoch = 0.0
        self._due = 0
        # per-tick index arrays, rebuilt when sessions come and go
        self._slots = np.zeros(0, dtype=np.intp)
        self._alaw_rows = np.zeros(0, dtype=np.intp)
        self._dtmf_rows = np.zeros(0, dtype=np.intp)
        self._fax_rows = np.zeros(0, dtype=np.intp)

    # --- registry ------------------------------------------------------------------

    @property
    def sessions(self) -> tuple:
        return tuple(self._sessions)

    def register(self, session) -> int:
        if session.slot is not None:
            return session.slot
        slot = self._free_slots.pop() if self._free_slots else self._next_slot
        if slot == self._next_slot:
            self._next_slot += 1
        session.slot = slot
        self.dtmf_detector.reset(slot)
        self.fax_detector.reset(slot)
        if slot >= len(self._next_tick):
            size = max(2 * len(self._next_tick), slot + 1)
            self._next_tick = np.concatenate([self._next_tick, np.zeros(size - len(self._next_tick), np.int64)])
            self._prefetch = np.concatenate([self._prefetch, np.zeros(size - len(self._prefetch), bool)])
        self._next_tick[slot] = 0
        self._prefetch[slot] = False
        self._sessions.append(session)
        self._dirty = True
        self.source_changed(session)
        return slot

    def unregister(self, session) -> None:
        if session.slot is None:
            return
        if session in self._sessions:
            self._sessions.remove(session)
        if self.pacer is not None and session._rtp_fd >= 0:
            # the socket is closed next: nothing queued may go out on its number
            self.pacer.forget(session._rtp_fd)
        # reused from the next tick on: this tick's index arrays may still name it
        self._released_slots.append(session.slot)
        self._prefetch[session.slot] = False
        session.slot = None
        self._dirty = True
        self._release_waiters(session)

    def session_changed(self, session) -> None:
        """Codec or detection settings of a session changed."""
        self._dirty = True

    def receive_changed(self, session) -> None:
        """What decides which packets a session accepts (its far end's address or
        SSRC, latching, payload type) changed: a clock that reads the sockets itself
        re-checks the session on its next packet."""

    # --- prepared ahead ---------------------------------------------------------------

    def source_changed(self, session) -> None:
        """What decides whether a session's frames may be prepared up to prompt_ahead
        changed: its source, or how it sends (see RtpSession.prefetchable)."""
        slot = session.slot
        if self.prefetching and slot is not None:
            source = session.source
            self._prefetch[slot] = (source is not None and getattr(source, "prefetch", False)
                                    and session.prefetchable())

    def _live_cutoff(self) -> int:
        """The first tick a live source has not been asked for yet."""
        return self._due + self.send_ahead + 1

    def queued_ahead(self, session) -> int:
        """Ticks of the session's audio prepared beyond what a live source would have."""
        if not self.prefetching or session.slot is None:
            return 0
        return max(0, int(self._next_tick[session.slot]) - self._live_cutoff())

    def withdraw(self, session) -> int:
        """Take the session's frames prepared beyond the live lead back out of the
        pacer; the session rewinds its stream to the first of them. The frames
        withdrawn."""
        ahead = self.queued_ahead(session)
        if not ahead:
            return 0
        cutoff = self._live_cutoff()
        removed = 0
        if session._rtp_fd >= 0:
            # half a tick early: the instants are sums of floats
            removed = self.pacer.withdraw(session._rtp_fd,
                                          self._epoch + (cutoff - 0.5) * TICK_SECONDS)
        self._next_tick[session.slot] = cutoff
        session.rewind(ahead, removed)
        return ahead

    def when_sent(self, session, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the session's frames prepared so far have reached
        the live lead (at once when none are ahead of it); when the session leaves
        the clock first, then."""
        ahead = self.queued_ahead(session)
        if not ahead:
            callback()
            return
        heapq.heappush(self._sent_waiters,
                       (self._due + ahead, next(self._waiter_order), session, callback))

    def _run_waiters(self) -> None:
        waiters = self._sent_waiters
        while waiters and waiters[0][0] <= self._due:
            callback = heapq.heappop(waiters)[3]
            try:
                callback()
            except Exception:
                log.failure("playback end callback {callback!r} failed", callback=callback)

    def _release_waiters(self, session) -> None:
        if not self._sent_waiters:
            return
        mine = [entry for entry in self._sent_waiters if entry[2] is session]
        if not mine:
            return
        self._sent_waiters = [entry for entry in self._sent_waiters if entry[2] is not session]
        heapq.heapify(self._sent_waiters)
        for entry in sorted(mine):
            try:
                entry[3]()
            except Exception:
                log.failure("playback end callback {callback!r} failed", callback=entry[3])

    def send_lead_samples(self, session) -> int:
        """How far the session's RTP timestamp runs ahead of what has reached the wire."""
        if self.prefetching and session.slot is not None and self._next_tick[session.slot]:
            return max(0, int(self._next_tick[session.slot]) - self._due - 1) * FRAME_SAMPLES
        return self.send_ahead_samples

    def add_tick_hook(self, hook: Callable[[int], None]) -> None:
        self._hooks.append(hook)

    def remove_tick_hook(self, hook: Callable[[int], None]) -> None:
        if hook in self._hooks:
            self._hooks.remove(hook)

    def _rebuild(self) -> None:
        self._free_slots.extend(self._released_slots)
        self._released_slots.clear()
        sessions = self._sessions
        self._slots = np.array([s.slot for s in sessions], dtype=np.intp)
        self._alaw_rows = np.array([i for i, s in enumerate(sessions) if s.codec is PCMA], dtype=np.intp)
        self._dtmf_rows = np.array([i for i, s in enumerate(sessions) if s.inband_dtmf], dtype=np.intp)
        self._fax_rows = np.array([i for i, s in enumerate(sessions) if s.fax_detection], dtype=np.intp)
        self._dirty = False

    # --- running -------------------------------------------------------------------

    @property
    def send_ahead_samples(self) -> int:
        """How far a session's RTP timestamp runs ahead of what has reached the wire."""
        return self.send_ahead * FRAME_SAMPLES

    def start(self) -> None:
        if self._loop is not None:
            return
        if self.pacer is not None:
            self.pacer.start()
        self._epoch = self.clock.seconds()
        self._due = 0
        self._loop = LoopingCall(self._timer)
        self._loop.clock = self.clock
        self._loop.start(TICK_SECONDS, now=False)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
        if self.pacer is not None:
            self.pacer.stop()

    @property
    def running(self) -> bool:
        return self._loop is not None

    def _timer(self) -> None:
        # How many ticks real time asks for, whatever the timer's own lateness. Ticks
        # run back to back until caught up: waiting for the timer's next firing
        # instead would let a stall leave the clock behind for good (two ticks a
        # firing take longer than one period, so the firing after is skipped).
        budget = self.max_catch_up
        while budget > 0:
            target = int((self.clock.seconds() - self._epoch) / TICK_SECONDS + 1e-6)
            behind = target - self._due
            if behind <= 0:
                return
            if behind > budget:
                # far behind (process stalled): do not burst, drop the backlog
                self.skipped_ticks += behind - budget
                self._due += behind - budget
                self._last_drop = self._due
            self._due += 1
            budget -= 1
            self._catching_up = behind > 1
            try:
                self.tick()
            except Exception:
                log.failure("media tick failed")

    def tick(self) -> None:
        """One 20 ms step of every registered session."""
        self.ticks += 1
        if self._dirty:
            self._rebuild()
        # a snapshot: listeners may close sessions while the tick runs
        sessions = list(self._sessions)
        count = len(sessions)
        if count == 0:
            for hook in list(self._hooks):
                hook(self.ticks)
            return
        now = self.clock.seconds()

        # 1. inbound: one frame per session, decoded together
        popped, statuses = pop_frames(sessions)
        codes = np.frombuffer(popped, dtype=np.uint8).reshape(count, FRAME_SAMPLES)
        pcm = ULAW_DECODE.take(codes)
        if len(self._alaw_rows):
            pcm[self._alaw_rows] = ALAW_DECODE.take(codes[self._alaw_rows])

        # 2. detectors over the stacked block
        if len(self._dtmf_rows):
            rows = self._dtmf_rows
            heard = np.frombuffer(statuses, dtype=np.uint8) == FRAME_AUDIO
            if len(rows) == count:
                block, slots = pcm, self._slots
            else:
                block, slots, heard = pcm[rows], self._slots[rows], heard[rows]
            for row, digit in self.dtmf_detector.process(block, slots, heard):
                session = sessions[rows[row]]
                if not session.closed:
                    session.emit_dtmf(DtmfDigit(digit, "inband"))
        if len(self._fax_rows):
            rows = self._fax_rows
            block, slots = (pcm, self._slots) if len(rows) == count else (pcm[rows], self._slots[rows])
            for row, tone in self.fax_detector.process(block, slots):
                session = sessions[rows[row]]
                if not session.closed:
                    session.emit_fax_tone(tone)

        # 3. consumers (a detector's listener may have added or closed some)
        for index in listening(sessions):
            session = sessions[index]
            if session.consumers and not session.closed:
                session.deliver_inbound(pcm[index], statuses[index])

        # 4. hooks (mixers)
        for hook in list(self._hooks):
            try:
                hook(self.ticks)
            except Exception:
                log.failure("media tick hook {hook!r} failed", hook=hook)

        # 5. outbound: sources, vectorized encode, send; 6. bookkeeping
        if self.prefetching:
            self._run_waiters()
            self._send_prepared_ahead(sessions, now)
            return
        outbound, pcm_rows = next_frames(sessions, np.ndarray)
        self._encode(sessions, outbound, pcm_rows)
        # every frame as RtpSession.send_frame would send it (the plain case without
        # Python), then each session's due RTCP and dead-peer housekeeping
        pacer = self.pacer
        if pacer is None:
            send_frames(sessions, outbound, now)
            return
        pacer.begin(self._epoch + (self._due + self.send_ahead) * TICK_SECONDS)
        try:
            send_frames(sessions, outbound, now, pacer)
        finally:
            pacer.commit()

    def _encode(self, sessions: list, outbound: list, pcm_rows: list) -> None:
        """The PCM frames among ``outbound`` (at ``pcm_rows``) encoded in place, in one
        vectorized pass."""
        if not pcm_rows:
            return
        stacked = np.concatenate([outbound[i] for i in pcm_rows]).astype(np.int16, copy=False)
        as_unsigned = stacked.view(np.uint16).reshape(len(pcm_rows), FRAME_SAMPLES)
        encoded = ULAW_ENCODE.take(as_unsigned)
        if len(self._alaw_rows):
            alaw = [p for p, i in enumerate(pcm_rows) if sessions[i].codec is PCMA]
            if alaw:
                encoded[alaw] = ALAW_ENCODE.take(as_unsigned[alaw])
        blob = encoded.tobytes()
        for position, index in enumerate(pcm_rows):
            start = position * FRAME_SAMPLES
            outbound[index] = blob[start:start + FRAME_SAMPLES]

    def _send_prepared_ahead(self, sessions: list, now: float) -> None:
        """Step 5 with prefetching sources: each session's next frame goes into the
        batch of its own instant. A live source's is the tick's live lead, as ever; a
        prefetching source's is as far ahead as prompt_ahead allows, with up to
        refill_frames more frames a tick for one below it. A session whose frames
        reach beyond the live lead (a playback just ended) waits for the lead to get
        there before its live source is asked again."""
        pacer = self.pacer
        live = self._due + self.send_ahead
        horizon = self._due + self.prompt_ahead
        slots = self._slots
        if self._catching_up or self._due - self._last_drop < self.refill_calm:
            refill = 0
        else:
            refill = max(self.refill_frames, int(len(sessions) * self.refill_share))
        for attempt in range(1 + self.refill_frames):
            ticks = np.maximum(self._next_tick[slots], live)
            limit = np.where(self._prefetch[slots], horizon, live)
            wanted = ticks <= limit
            rows = np.flatnonzero(wanted)
            if attempt == 0:
                if len(rows) < len(sessions):
                    self._housekeep_waiting(sessions, wanted, now)
            elif len(rows) > refill:
                # the budget's worth, starting somewhere else each tick
                start = self.ticks % len(rows)
                rows = np.concatenate([rows[start:], rows[:start]])[:refill]
            if not len(rows):
                return
            if attempt:
                refill -= len(rows)
            chosen = sessions if len(rows) == len(sessions) else [sessions[i] for i in rows]
            targets = ticks[rows]
            # before the sources run: one that runs out now counts this frame as queued
            self._next_tick[slots[rows]] = targets + 1
            outbound, pcm_rows = next_frames(chosen, np.ndarray)
            self._encode(chosen, outbound, pcm_rows)
            first = targets[0]
            if (targets == first).all():
                groups = ((first, chosen, outbound),)
            else:
                groups = []
                for tick in np.unique(targets):
                    members = np.flatnonzero(targets == tick).tolist()
                    groups.append((tick, [chosen[i] for i in members], [outbound[i] for i in members]))
            for tick, members, frames in groups:
                pacer.begin(self._epoch + int(tick) * TICK_SECONDS)
                try:
                    send_frames(members, frames, now, pacer)
                finally:
                    pacer.commit()

    @staticmethod
    def _housekeep_waiting(sessions: list, wanted, now: float) -> None:
        # send_frames does this for the sessions that send; the others still owe
        # their RTCP and dead-peer checks
        for index in np.flatnonzero(~wanted).tolist():
            session = sessions[index]
            if not session.closed and now >= session.housekeeping_due:
                session.housekeeping(now)
