"""Connecting two sessions back to back: what one leg hears the other says.

Within a media tick every session's inbound frame is delivered before any source is
asked for outbound audio, so audio crosses the bridge in the same tick (no added
delay). Key presses are forwarded as well: RFC 4733 and SIP INFO digits are re-sent
with ``send_dtmf`` (telephone-events or tones, whatever the other leg negotiated);
in-band digits already travel in the audio and are only converted when the other
leg uses telephone-events.
"""

from __future__ import annotations

from twisted.internet import defer

from portaum_tx.rtp.dtmf import DtmfDigit


class BridgeError(RuntimeError):
    """A bridge connected twice."""


class _Direction:
    """Consumer on one leg, source on the other."""

    def __init__(self, bridge: "Bridge", listen, speak):
        self.bridge = bridge
        self.listen = listen
        self.speak = speak
        self.frame = None

    def inbound_frame(self, session, pcm, status) -> None:
        self.frame = pcm  # used within this tick, before the tick's buffer is reused

    def next_frame(self, session):
        frame, self.frame = self.frame, None
        return frame

    def on_digit(self, digit: DtmfDigit) -> None:
        if not self.bridge.forward_dtmf:
            return
        target = self.speak
        if digit.source == "inband" and (target.params is None or target.params.telephone_event_pt is None):
            return
        target.send_dtmf(digit.digit, digit.duration_ms or 100)

    def session_closed(self, session, reason) -> None:
        self.bridge._ended(session)

    def source_detached(self, session) -> None:
        self.bridge._ended(None)


class Bridge:
    def __init__(self, a, b, forward_dtmf: bool = True):
        self.a = a
        self.b = b
        self.forward_dtmf = forward_dtmf
        self._directions = (_Direction(self, a, b), _Direction(self, b, a))
        self._deferred: defer.Deferred | None = None

    def start(self) -> defer.Deferred:
        """Connect the legs; the Deferred fires with the session that hung up first,
        or None when the bridge was stopped."""
        if self._deferred is not None:
            raise BridgeError("bridge already connected")
        self._deferred = defer.Deferred(lambda d: self._ended(None, cancelled=True))
        deferred = self._deferred
        for direction in self._directions:
            direction.listen.add_consumer(direction)
            direction.listen.dtmf_listeners.append(direction.on_digit)
            direction.speak.set_source(direction)
        for session in (self.a, self.b):
            if session.closed:
                self._ended(session)
                break
        return deferred

    def stop(self) -> None:
        self._ended(None)

    def _ended(self, session, cancelled: bool = False) -> None:
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return
        for direction in self._directions:
            direction.listen.remove_consumer(direction)
            if direction.on_digit in direction.listen.dtmf_listeners:
                direction.listen.dtmf_listeners.remove(direction.on_digit)
            direction.speak.clear_source(direction)
        if not cancelled:
            deferred.callback(session)
