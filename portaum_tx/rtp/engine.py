"""The media engine as the rest of the server sees it: one media clock, one port
allocator and one prompt cache for the whole process."""

from __future__ import annotations

from portaum_tx.rtp._rtpcore import Pacer
from portaum_tx.rtp.clock import TICK_SECONDS, MediaClock
from portaum_tx.rtp.player import Player, PromptCache
from portaum_tx.rtp.session import MediaParams, PortAllocator, RtpSession


class MediaEngine:
    clock_class = MediaClock

    def __init__(self, reactor, port_range: tuple[int, int] = (10000, 20000), interface: str = "",
                 *, send_ahead_ms: int = 0, prompt_ahead_ms: int = 0, clock_options: dict | None = None,
                 **session_defaults):
        """``reactor`` provides IReactorTime and IReactorUDP; ``send_ahead_ms`` > 0
        sends RTP through a :class:`Pacer` that much after it is prepared (the
        reactor's clock must then be real time), and prompts up to ``prompt_ahead_ms``
        ahead; ``session_defaults`` are keyword arguments of RtpSession (symmetric,
        dead_peer_timeout, cname ...)."""
        self.reactor = reactor
        ahead = round(send_ahead_ms / 1000 / TICK_SECONDS)
        pacer = Pacer() if ahead else None
        prompt_ahead = round(prompt_ahead_ms / 1000 / TICK_SECONDS) if ahead else 0
        self.media_clock = self.clock_class(reactor, pacer=pacer, send_ahead=ahead, prompt_ahead=prompt_ahead,
                                            **(clock_options or {}))
        self.allocator = PortAllocator(reactor, port_range, interface)
        self.prompts = PromptCache()
        self.session_defaults = session_defaults

    def start(self) -> None:
        self.media_clock.start()

    def stop(self) -> None:
        for session in self.media_clock.sessions:
            session.close("shutdown")
        self.media_clock.stop()

    def status(self) -> dict:
        """What an operator watches: live sessions, ticks the clock had to drop, and
        how punctually the pacer put each tick's packets on the wire."""
        clock = self.media_clock
        status = {"sessions": len(clock.sessions), "ticks": clock.ticks,
                  "skipped_ticks": clock.skipped_ticks, "send_ahead_ms": round(clock.send_ahead * TICK_SECONDS * 1000),
                  "prompt_ahead_ms": round(clock.prompt_ahead * TICK_SECONDS * 1000)}
        pacer = clock.pacer
        if pacer is not None:
            status["pacer"] = {"scheduling": pacer.scheduling, "batches_sent": pacer.batches_sent,
                               "late_batches": pacer.late_batches,
                               "max_late_ms": round(pacer.max_late * 1000, 3),
                               "packets_sent": pacer.packets_sent, "send_errors": pacer.send_errors,
                               "withdrawn": pacer.withdrawn}
        return status

    def create_session(self, params: MediaParams | None = None, **overrides) -> RtpSession:
        """A session bound to a fresh even/odd port pair (``session.local_port`` goes in
        the SDP); call ``configure`` once the answer is known, then ``start``."""
        options = dict(self.session_defaults, **overrides)
        session = RtpSession(self.media_clock, params, **options)
        self.allocator.bind(session)
        return session

    def player(self, session: RtpSession) -> Player:
        """A player sharing the process-wide prompt cache."""
        return Player(session, self.prompts)
