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
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from portaum_tx.rtp._rtpcore import pop_frames, send_frames
from portaum_tx.rtp.blas import limit_blas_threads
from portaum_tx.rtp.codecs import ALAW_ENCODE, ALAW_DECODE, PCMA, ULAW_DECODE, ULAW_ENCODE
from portaum_tx.rtp.dtmf import DtmfDigit, InbandDtmfDetector
from portaum_tx.rtp.tones import FaxToneDetector

TICK_SECONDS = 0.020
FRAME_SAMPLES = 160

log = Logger()


class MediaClock:
    def __init__(self, clock, *, dtmf_detector: InbandDtmfDetector | None = None,
                 fax_detector: FaxToneDetector | None = None, max_catch_up: int = 5,
                 single_threaded_blas: bool = True, pacer=None, send_ahead: int = 0):
        """``pacer``: a Pacer that sends each tick's packets ``send_ahead`` ticks
        after the tick (``clock`` must then count real seconds, as time.time())."""
        if single_threaded_blas:
            limit_blas_threads(1)
        if send_ahead < 0 or (pacer is None and send_ahead):
            raise ValueError("send_ahead needs a pacer and must not be negative")
        self.clock = clock
        self.pacer = pacer
        self.send_ahead = send_ahead
        self.dtmf_detector = dtmf_detector or InbandDtmfDetector()
        self.fax_detector = fax_detector or FaxToneDetector()
        self.max_catch_up = max_catch_up
        self.ticks = 0
        self.skipped_ticks = 0
        self._sessions: list = []
        self._free_slots: list[int] = []
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
        self._sessions.append(session)
        self._dirty = True
        return slot

    def unregister(self, session) -> None:
        if session.slot is None:
            return
        if session in self._sessions:
            self._sessions.remove(session)
        if self.pacer is not None and session._rtp_fd >= 0:
            # the socket is closed next: nothing queued may go out on its number
            self.pacer.forget(session._rtp_fd)
        self._free_slots.append(session.slot)
        session.slot = None
        self._dirty = True

    def session_changed(self, session) -> None:
        """Codec or detection settings of a session changed."""
        self._dirty = True

    def receive_changed(self, session) -> None:
        """What decides which packets a session accepts (its far end's address or
        SSRC, latching, payload type) changed: a clock that reads the sockets itself
        re-checks the session on its next packet."""

    def add_tick_hook(self, hook: Callable[[int], None]) -> None:
        self._hooks.append(hook)

    def remove_tick_hook(self, hook: Callable[[int], None]) -> None:
        if hook in self._hooks:
            self._hooks.remove(hook)

    def _rebuild(self) -> None:
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
            self._due += 1
            budget -= 1
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
            block, slots = (pcm, self._slots) if len(rows) == count else (pcm[rows], self._slots[rows])
            for row, digit in self.dtmf_detector.process(block, slots):
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

        # 3. consumers
        for index, session in enumerate(sessions):
            if session.consumers and not session.closed:
                session.deliver_inbound(pcm[index], statuses[index])

        # 4. hooks (mixers)
        for hook in list(self._hooks):
            try:
                hook(self.ticks)
            except Exception:
                log.failure("media tick hook {hook!r} failed", hook=hook)

        # 5. outbound: sources, vectorized encode, send; 6. bookkeeping
        outbound = [None if session.closed else session.next_outbound() for session in sessions]
        pcm_rows = [i for i, frame in enumerate(outbound) if frame.__class__ is np.ndarray]
        if pcm_rows:
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
