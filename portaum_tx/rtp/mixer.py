"""N-party conference mixing.

Each tick the mixer gathers the inbound frame of every member into one
(members x 160) array, sums the unmuted ones once, and gives each member the sum
minus its own contribution, clipped to 16 bits: one vectorized pass per conference
instead of N*(N-1) additions.
"""

from __future__ import annotations

import numpy as np

FRAME_SAMPLES = 160


class _Member:
    def __init__(self, mixer: "ConferenceMixer", session, muted: bool):
        self.mixer = mixer
        self.session = session
        self.muted = muted
        self.row = 0

    def inbound_frame(self, session, pcm, status) -> None:
        self.mixer._inputs[self.row] = pcm

    def next_frame(self, session):
        return self.mixer._outputs[self.row]

    def session_closed(self, session, reason) -> None:
        self.mixer.remove(session)

    def source_detached(self, session) -> None:
        self.mixer.remove(session)


class ConferenceMixer:
    def __init__(self, media_clock):
        self.media_clock = media_clock
        self._members: dict[object, _Member] = {}
        self._inputs = np.zeros((0, FRAME_SAMPLES), dtype=np.int16)
        self._outputs = np.zeros((0, FRAME_SAMPLES), dtype=np.int16)
        self._speaking = np.zeros(0, dtype=bool)
        self._hooked = False

    @property
    def members(self) -> tuple:
        return tuple(self._members)

    def add(self, session, muted: bool = False) -> None:
        if session in self._members:
            return
        member = _Member(self, session, muted)
        self._members[session] = member
        self._rebuild()
        session.add_consumer(member)
        session.set_source(member)
        if not self._hooked:
            self.media_clock.add_tick_hook(self._mix)
            self._hooked = True

    def remove(self, session) -> None:
        member = self._members.pop(session, None)
        if member is None:
            return
        session.remove_consumer(member)
        session.clear_source(member)
        self._rebuild()
        if not self._members and self._hooked:
            self.media_clock.remove_tick_hook(self._mix)
            self._hooked = False

    def set_muted(self, session, muted: bool) -> None:
        self._members[session].muted = muted
        self._rebuild()

    def _rebuild(self) -> None:
        members = list(self._members.values())
        for row, member in enumerate(members):
            member.row = row
        self._inputs = np.zeros((len(members), FRAME_SAMPLES), dtype=np.int16)
        self._outputs = np.zeros((len(members), FRAME_SAMPLES), dtype=np.int16)
        self._speaking = np.array([not m.muted for m in members], dtype=bool)

    def _mix(self, tick: int) -> None:
        if not len(self._inputs):
            return
        inputs = self._inputs.astype(np.int32)
        inputs[~self._speaking] = 0
        total = inputs.sum(axis=0)
        np.clip(total[None, :] - inputs, -32768, 32767, out=inputs)
        self._outputs = inputs.astype(np.int16)
        self._inputs[:] = 0  # a member whose frame does not arrive next tick adds nothing
