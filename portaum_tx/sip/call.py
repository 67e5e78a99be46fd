"""The signalling half of a call: an IVR :class:`~portaum_tx.ivr.call.Call` over SIP.

:class:`SipCall` turns the Call API's primitives into SIP (answer: 200 + ACK, reject:
an error response, hangup: BYE or CANCEL, transfer: REFER or a new leg bridged in,
dial: an outgoing INVITE through the trunk) and reports what the far end does (BYE,
CANCEL, INFO DTMF, dead RTP) through the base class's ``remote_hangup`` and
``digit_received``.  The media primitives (play, record, fax tone detection, media
bridging) belong to the media half: an object given as ``media`` with the methods
``start_play(call, items)``, ``start_record(call, max_seconds, silence_seconds)``,
``set_fax_detection(call, enabled)`` and ``bridge(call, other)`` (async), built per
call by the front end's ``media_factory(call)``.  Without one, media operations raise
:class:`~portaum_tx.ivr.call.CallError` and bridging uses the RTP engine's Bridge.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.ivr.call import Call, CallError, DialFailed, TransferFailed
from portaum_tx.sip.ua import DialError, IncomingSession, InviteSession, OutgoingSession

log = Logger()

__all__ = ["SipCall", "REFER_TIMEOUT"]

#: How long a REFER may take to report its outcome before we fall back to a new leg.
REFER_TIMEOUT = 32.0


class SipCall(Call):
    """One call leg as the IVR sees it, backed by an :class:`InviteSession`.

    Build it with :meth:`for_incoming` (an INVITE) or :meth:`for_outgoing` (an answered
    outgoing leg).  ``session`` stays reachable for the SIP layer and xDRs; applications
    use only the Call API.
    """

    def __init__(self, clock, session: InviteSession, ua, *, media: Any = None,
                 media_factory=None, use_refer: bool = True, **identity):
        super().__init__(clock, call_id=session.call_id, **identity)
        self.session = session
        self.ua = ua
        self.rtp = session.rtp
        self.media_factory = media_factory
        self.media = media if media is not None else (media_factory(self) if media_factory else None)
        self.use_refer = use_refer
        self.legs: list[SipCall] = []
        session.on_ended.append(self._session_ended)
        session.on_dtmf.append(self._info_dtmf)
        if self.rtp is not None:
            listeners = getattr(self.rtp, "dtmf_listeners", None)
            if listeners is not None:
                listeners.append(self._rtp_dtmf)
            dead = getattr(self.rtp, "dead_peer_listeners", None)
            if dead is not None:
                dead.append(self._dead_peer)
            fax = getattr(self.rtp, "fax_listeners", None)
            if fax is not None:
                fax.append(self.fax_tone_detected)

    @classmethod
    def for_incoming(cls, session: IncomingSession, ua, **options) -> "SipCall":
        return cls(ua.clock, session, ua, calling=session.calling, called=session.called,
                   calling_name=session.calling_name, original_called=session.original_called,
                   diversion_reason=session.diversion_reason, **options)

    @classmethod
    def for_outgoing(cls, session: OutgoingSession, ua, destination: str, caller_id: str | None,
                     **options) -> "SipCall":
        call = cls(ua.clock, session, ua, calling=caller_id or "", called=destination, **options)
        call.answered = True
        return call

    # --- what the far end does ----------------------------------------------------------

    def _session_ended(self, reason: str) -> None:
        self.remote_hangup(reason)

    def _info_dtmf(self, content_type: str, body: bytes) -> None:
        if self.rtp is not None and hasattr(self.rtp, "receive_info_dtmf"):
            # The media half reports it through the session's DTMF listeners (and so
            # the de-duplication against RFC 4733 events applies).
            self.rtp.receive_info_dtmf(content_type, body)
            return
        digit = _info_digit(body)
        if digit:
            self.digit_received(digit)

    def _rtp_dtmf(self, event) -> None:
        self.digit_received(getattr(event, "digit", event))

    def _dead_peer(self, rtp, why: str) -> None:
        if not self.session.is_ended:
            log.info("{call_id}: no RTP from the far end ({why}); hanging up",
                     call_id=self.call_id, why=why)
            self.session.hangup()

    # --- signalling primitives ----------------------------------------------------------

    async def _answer(self) -> None:
        if not isinstance(self.session, IncomingSession):
            return
        try:
            await self.session.answer()
        except DialError:
            pass  # the caller went away meanwhile: check() raises CallHungUp

    async def _reject(self, code: int, reason: str | None) -> None:
        if isinstance(self.session, IncomingSession):
            self.session.reject(code, reason)

    async def _hangup(self) -> None:
        for leg in list(self.legs):
            if not leg.is_hungup:
                await leg.hangup()
        await self.session.hangup()

    async def _transfer(self, destination: str) -> None:
        """REFER when the caller's phone accepts it, else a new leg bridged in."""
        session = self.session
        allow = ""
        if isinstance(session, IncomingSession):
            allow = (session.invite.get("Allow") or "").upper()
        target = self.ua.target_uri(destination) if ":" not in destination or \
            not destination.lower().startswith(("sip:", "sips:", "tel:")) else destination
        if self.use_refer and "REFER" in allow and self.answered:
            outcome = session.transfer(str(target))
            timer = self.clock.callLater(REFER_TIMEOUT, lambda: outcome.called or
                                         outcome.errback(DialError(destination, "no-answer")))
            try:
                await outcome
                if timer.active():
                    timer.cancel()
                await session.hangup()
                self._ended("transferred")
                return
            except DialError as exc:
                if timer.active():
                    timer.cancel()
                if exc.code not in (None, 405, 501, 420, 403, 603):
                    raise TransferFailed("transfer to %s failed: %s" % (destination, exc)) from None
                log.info("{call_id}: REFER refused ({why}); bridging a new leg instead",
                         call_id=self.call_id, why=exc)
        leg = await self._dial(destination, self.calling or None, 60.0)
        try:
            await self._bridge(leg)
        finally:
            if not leg.is_hungup:
                await leg.hangup()

    async def _dial(self, destination: str, caller_id: str | None, timeout: float) -> "SipCall":
        try:
            session = await self.ua.dial(destination, caller_id=caller_id, timeout=timeout)
        except DialError as exc:
            raise DialFailed(destination, exc.reason if exc.reason in (
                "busy", "no-answer", "rejected") else "failed", exc.code) from None
        except Exception as exc:
            log.failure("dialling {destination} failed", destination=destination)
            raise DialFailed(destination, "failed") from exc
        leg = SipCall.for_outgoing(session, self.ua, destination, caller_id,
                                   media_factory=self.media_factory)
        self.legs.append(leg)
        return leg

    async def _bridge(self, other: Call) -> None:
        if self.media is not None and hasattr(self.media, "bridge"):
            await self.media.bridge(self, other)
            return
        other_rtp = getattr(other, "rtp", None)
        if self.rtp is None or other_rtp is None:
            raise CallError("both legs need RTP to be bridged")
        from portaum_tx.rtp.bridge import Bridge
        bridge = Bridge(self.rtp, other_rtp)
        done = bridge.start()
        first = defer.DeferredList([done, self.hungup, other.hungup], fireOnOneCallback=True,
                                   consumeErrors=True)
        await first
        bridge.stop()

    # --- media primitives: the media half -----------------------------------------------

    def _media(self):
        if self.media is None:
            raise CallError("this call has no media half to play or record with")
        return self.media

    def _start_play(self, items):
        return self._media().start_play(self, items)

    def _start_record(self, max_seconds, silence_seconds):
        return self._media().start_record(self, max_seconds, silence_seconds)

    def _set_fax_detection(self, enabled: bool) -> None:
        if self.media is not None:
            self.media.set_fax_detection(self, enabled)
        elif self.rtp is not None and hasattr(self.rtp, "set_fax_detection"):
            self.rtp.set_fax_detection(enabled)


def _info_digit(body: bytes) -> str | None:
    text = body.decode("ascii", "replace").strip()
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal":
            value = value.strip()
            return {"10": "*", "11": "#"}.get(value, value)[:1] or None
    return text[:1] or None
