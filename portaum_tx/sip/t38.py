"""The T.38 switch of one call leg, for fax reception, over the user agent's public API.

:class:`T38Signalling` wraps an :class:`~portaum_tx.sip.ua.InviteSession`:

- ``accept(port)`` sets the session's ``t38_port`` (and the rate management methods
  accepted: transferred and local TCF), so that a re-INVITE (or UPDATE) offering
  ``m=image udptl t38`` is answered with our UDPTL port instead of 488;
- ``await request()`` re-INVITEs to T.38 only (``m=image``, no audio) and returns
  whether the far end accepted; a refusal (488, 415, a rejected image stream, a
  timeout) returns False and the call stays on G.711;
- every negotiation that ends with a T.38 stream, ours or the far end's, is passed to
  each of ``listeners`` as the negotiated stream (``remote_address``, ``remote_port``,
  ``t38`` with the far end's parameters).
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from portaum_tx.sip.sdp import Negotiation, NegotiatedStream
from portaum_tx.sip.ua import DialError

log = Logger()

__all__ = ["T38Signalling"]


class T38Signalling:
    def __init__(self, session):
        self.session = session
        self.listeners: list[Callable[[NegotiatedStream], None]] = []
        self.refusal: DialError | None = None
        self._closed = False
        session.on_media.append(self._negotiated)

    def accept(self, port: int,
               rate_management: tuple[str, ...] = ("transferredTCF", "localTCF")) -> None:
        """Answer T.38 offers with ``port``; spandsp does both TCF methods."""
        self.session.t38_port = port
        self.session.t38_rate_management = rate_management

    async def request(self) -> bool:
        if self._closed or self.session.is_ended or self.session.t38_port is None:
            return False
        try:
            negotiation = await self.session.reoffer(t38=True, audio=False)
        except DialError as e:
            self.refusal = e
            log.info("{call_id}: T.38 refused ({why})", call_id=self.session.call_id, why=e)
            return False
        return negotiation.image is not None

    def _negotiated(self, negotiation: Negotiation) -> None:
        image = negotiation.image
        if image is None or self._closed:
            return
        for listener in list(self.listeners):
            listener(image)

    def close(self) -> None:
        """Stop listening; later T.38 offers are refused (488) again."""
        if self._closed:
            return
        self._closed = True
        self.session.t38_port = None
        self.session.t38_rate_management = ("transferredTCF",)
        if self._negotiated in self.session.on_media:
            self.session.on_media.remove(self._negotiated)
