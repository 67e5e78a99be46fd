"""A call as the IVR sees it, over SIP: :class:`SipCall` is the
:class:`~portaum_tx.ivr.media_call.MediaCall` of one call leg with :class:`SipSignalling`
as its signalling half.

:class:`SipSignalling` turns the Call API's signalling into SIP (answer: 200 + ACK,
reject: an error response, hangup: BYE or CANCEL, transfer: REFER or a new leg bridged
in, dial: an outgoing INVITE through the trunk) and :class:`SipCall` reports what the
far end does (BYE, CANCEL, SIP INFO DTMF) to the Call.  No SIP message is visible above.
"""

from __future__ import annotations

import functools
import weakref
from typing import Optional

from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.ivr.call import DialFailed, TransferFailed
from portaum_tx.ivr.media_call import MediaCall
from portaum_tx.sip.ua import DialError, IncomingSession, InviteSession, OutgoingSession

log = Logger()

__all__ = ["SipCall", "SipSignalling", "dial_session", "REFER_TIMEOUT", "TRANSFER_RING_TIMEOUT"]

#: How long a REFER may take to report its outcome.
REFER_TIMEOUT = 32.0
#: How long the new leg of a transfer without REFER may ring.
TRANSFER_RING_TIMEOUT = 60.0
#: REFER refusals after which a new leg is tried instead (the phone cannot transfer).
_REFER_UNSUPPORTED = (None, 400, 403, 405, 420, 488, 501, 603)


async def dial_session(ua, destination: str, caller_id: Optional[str], timeout: float,
                       on_early=None) -> OutgoingSession:
    """``ua.dial`` with its DialError as the Call API's DialFailed."""
    try:
        return await defer.ensureDeferred(ua.dial(destination, caller_id=caller_id,
                                                  timeout=timeout, on_early=on_early))
    except DialError as exc:
        reason = exc.reason if exc.reason in ("busy", "no-answer", "rejected") else "failed"
        raise DialFailed(destination, reason, exc.code) from None


class SipSignalling:
    """:class:`~portaum_tx.ivr.media_call.CallSignalling` over one :class:`InviteSession`."""

    def __init__(self, invite: InviteSession, ua, make_leg, use_refer: bool = True):
        self.invite = invite
        self.ua = ua
        self.make_leg = make_leg        # (OutgoingSession, destination, caller_id) -> SipCall
        self.use_refer = use_refer
        self._call = None

    @property
    def call(self) -> Optional["SipCall"]:
        # weakly: the call holds its signalling, and a reference back would be a cycle
        return self._call() if self._call is not None else None

    @call.setter
    def call(self, call: Optional["SipCall"]) -> None:
        self._call = weakref.ref(call) if call is not None else None

    async def answer(self) -> None:
        if isinstance(self.invite, IncomingSession):
            try:
                await self.invite.answer()
            except DialError:
                pass  # the caller left meanwhile: the call's check() raises CallHungUp

    async def reject(self, code: int, reason: Optional[str]) -> None:
        if isinstance(self.invite, IncomingSession):
            self.invite.reject(code, reason)

    async def hangup(self) -> None:
        await self.invite.hangup()

    async def dial(self, destination: str, caller_id: Optional[str], timeout: float,
                   on_early=None) -> "SipCall":
        """``on_early(rtp)``: the leg's RTP session once it carries early media."""
        early = (lambda session: on_early(session.rtp)) if on_early is not None else None
        session = await dial_session(self.ua, destination, caller_id, timeout, early)
        return self.make_leg(session, destination, caller_id)

    async def transfer(self, destination: str) -> None:
        """REFER when the caller's phone takes it; otherwise (or when the phone cannot
        transfer) a new leg to ``destination`` bridged with the caller until either ends."""
        invite = self.invite
        allow = ""
        if isinstance(invite, IncomingSession):
            allow = (invite.invite.get("Allow") or "").upper()
        if self.use_refer and "REFER" in allow and invite.state == "confirmed":
            target = str(self.ua.target_uri(destination))
            outcome = invite.transfer(target)
            timer = self.ua.clock.callLater(
                REFER_TIMEOUT, lambda: outcome.called or outcome.errback(
                    DialError(destination, "no-answer")))
            try:
                status = await outcome
            except DialError as exc:
                if exc.code not in _REFER_UNSUPPORTED:
                    raise TransferFailed("transfer to %s failed: %s" % (destination, exc)) from None
                log.info("REFER to {destination} refused ({why}); bridging a new leg instead",
                         destination=destination, why=exc)
            else:
                if 200 <= status < 300:
                    await self._leave()
                    return
                raise TransferFailed("transfer to %s failed with %d" % (destination, status))
            finally:
                if timer.active():
                    timer.cancel()
        caller_id = self.call.calling if self.call is not None else None
        try:
            leg = await self.dial(destination, caller_id or None, TRANSFER_RING_TIMEOUT)
        except DialFailed as exc:
            raise TransferFailed(str(exc)) from None
        try:
            await self.call._bridge(leg)
        finally:
            if not leg.is_hungup:
                await leg.hangup()
        if not self.invite.is_ended:
            await self._leave()

    async def _leave(self) -> None:
        """BYE to the caller once the transfer is done; the Call ends itself as
        "transferred", so the BYE is not reported to it as a hang-up."""
        if self.call is not None:
            if self.call._signalling_ended in self.invite.on_ended:
                self.invite.on_ended.remove(self.call._signalling_ended)
            self.call._detach()   # nor is the media closing with it
        await self.invite.hangup()


class SipCall(MediaCall):
    """One call leg for the IVR: the media half over the leg's RTP session, SIP for the
    rest.  ``sip`` is the :class:`InviteSession` (for the SIP layer and xDRs only)."""

    def __init__(self, invite: InviteSession, ua, prompts, *, prompt_cache: dict | None = None,
                 use_refer: bool = True, **identity):
        self.sip = invite
        self.ua = ua
        self._prompt_cache = prompt_cache if prompt_cache is not None else {}
        signalling = SipSignalling(invite, ua, functools.partial(SipCall._leg, ua, prompts,
                                                                 self._prompt_cache), use_refer)
        super().__init__(ua.clock, invite.rtp, prompts, signalling,
                         prompt_cache=self._prompt_cache, call_id=invite.call_id, **identity)
        signalling.call = self
        invite.on_ended.append(self._signalling_ended)
        invite.on_dtmf.append(self._info_dtmf)

    @classmethod
    def for_incoming(cls, invite: IncomingSession, ua, prompts, **options) -> "SipCall":
        return cls(invite, ua, prompts, calling=invite.calling, called=invite.called,
                   calling_name=invite.calling_name, original_called=invite.original_called,
                   diversion_reason=invite.diversion_reason, **options)

    @classmethod
    async def originate(cls, ua, prompts, destination: str, caller_id: Optional[str] = None,
                        timeout: float = 60.0, **options) -> "SipCall":
        """A call of our own, not a leg of an incoming one (a callback): the answered leg;
        raises DialFailed."""
        session = await dial_session(ua, destination, caller_id, timeout)
        call = cls(session, ua, prompts, calling=caller_id or "", called=destination, **options)
        call.answered = True
        return call

    @staticmethod
    def _leg(ua, prompts, prompt_cache: dict, session: OutgoingSession, destination: str,
             caller_id: Optional[str]) -> "SipCall":
        # not a method of the call: the signalling keeps it, and the call its signalling
        leg = SipCall(session, ua, prompts, prompt_cache=prompt_cache, calling=caller_id or "",
                  called=destination)
        leg.answered = True
        return leg

    def _signalling_ended(self, reason: str) -> None:
        self.remote_hangup(reason)

    def _info_dtmf(self, content_type: str, body: bytes) -> None:
        # Through the RTP session, so the digit reaches the call like any other DTMF.
        try:
            self.session.receive_info_dtmf(content_type, body)
        except Exception as exc:
            log.info("{call_id}: unusable SIP INFO DTMF: {why}", call_id=self.call_id, why=exc)
