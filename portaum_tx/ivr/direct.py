"""An account's own call straight through the trunk, without an IVR.

When an account of ours calls a number that is neither an access number nor a mailbox of
ours, and billing does not send the call through the account's IVR (internal and toll-free
calls, and every call of an account that does not call via IVR), the router places it as
the account's call: authorized on the account, dialled through the trunk, bridged, cut when
the authorized time runs out and charged to the account at the end (one xDR, leg ``B``).

It is the calling applications' :class:`~portaum_tx.ivr.outgoing.Dialer` with one
difference: nobody is there to speak to the caller, so the caller is answered only once
the far end answers, and a call that does not connect is rejected with the SIP status
that says why instead of an announcement.
"""

from __future__ import annotations

from typing import Optional

from portaum_tx.ivr import charging
from portaum_tx.ivr.call import CallHungUp
from portaum_tx.ivr.outgoing import RING_TIMEOUT, CallOptions, Dialer, LegResult

__all__ = ["DirectDialer", "place_direct_call", "rejection_for"]


class DirectDialer(Dialer):
    """A Dialer whose caller is answered when the far end answers, not before."""

    async def _dial(self, destination: str):
        other = await super()._dial(destination)
        try:
            await self.call.answer()
        except CallHungUp:
            await other.hangup()   # the caller left as the far end answered
            raise
        return other


def rejection_for(result: LegResult) -> tuple[int, str]:
    """The SIP status that tells the caller why an attempt did not connect."""
    if result.outcome == "refused":
        if result.refusal == charging.INSUFFICIENT_FUNDS:
            return 402, "Payment Required"
        if result.refusal == charging.NO_RATE:
            return 404, "Not Found"
        return 403, "Forbidden"
    return {"busy": (486, "Busy Here"),
            "no-answer": (480, "Temporarily Unavailable")}.get(result.outcome,
                                                               (502, "Bad Gateway"))


async def place_direct_call(call, billing, payer: charging.Payer, destination: str, *,
                            ring_timeout: float = RING_TIMEOUT) -> Optional[LegResult]:
    """Connect ``call`` with ``destination`` as ``payer``'s call and charge it; returns
    what became of the attempt (None when the caller hung up before it was decided)."""
    options = CallOptions(maximum_dial_attempts=1, ring_timeout=ring_timeout)
    dialer = DirectDialer(call, billing, options, session_id=call.call_id,
                          caller_id=call.calling or payer.id, dnis="")
    try:
        result = await dialer.call_out(payer, destination)
    except CallHungUp:
        return dialer.results[-1] if dialer.results else None
    if result.outcome != "answered" and not call.answered and not call.is_hungup:
        await call.reject(*rejection_for(result))
    return result
