"""Reading every session's RTP socket from the media tick instead of the reactor.

With one reactor callback per packet, a thousand sessions cost fifty thousand trips
a second through the reactor's poll loop, its logging context and the port's read
loop before a packet reaches its session. Here the RTP sockets are taken out of the
reactor and the media clock, at the end of each tick (after sending), reads each
registered session's socket that has packets waiting and hands them straight to the
session. A packet is so read at most 20 ms after it arrives, before the next tick
pops the jitter buffers, as with reactor reads.

What changes for the session: the arrival time it sees is the time of the read, so
the interarrival jitter it reports in RTCP is measured at tick granularity. RTCP
sockets stay in the reactor (a packet every few seconds).

    engine = BatchedMediaEngine(reactor, port_range=(10000, 20000), interface="192.0.2.10")
    # then exactly as MediaEngine
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.python.failure import Failure

from portaum_tx.rtp._rtpcore import RtpReader
from portaum_tx.rtp.clock import MediaClock
from portaum_tx.rtp.engine import MediaEngine

log = Logger()

# Enough to drain a burst after a stall, bounded so one flooded port cannot hold up
# the tick of every other session.
MAX_READS_PER_TICK = 16


class BatchedMediaClock(MediaClock):
    """A media clock that reads its sessions' RTP sockets at the end of each tick.

    The reading is :class:`portaum_tx.rtp._rtpcore.RtpReader`: one non-blocking epoll
    call finds the sockets with packets waiting, each is read once, and the poll is
    repeated for those still holding more (a burst), up to ``max_reads`` rounds. No
    read is spent to learn that a socket is empty. The usual audio packet goes into
    the session's statistics and jitter buffer without Python; any other is passed
    to the session's ``rtp_received``. Once a session's packet passed the full check,
    the reader keeps what it checked (payload type, source address, SSRC) in a slot of
    its own and checks the next packets against that, not against the session's
    attributes; the session's ``configure`` and ``rtp_received`` disarm the slot
    through :meth:`receive_changed` whenever any of it changes.
    """

    def __init__(self, clock, *, max_reads: int = MAX_READS_PER_TICK, **options):
        super().__init__(clock, **options)
        self.max_reads = max_reads
        self._reader = RtpReader(failed=self._handler_failed, max_rounds=max_reads)
        self._fds: dict = {}  # session -> fd

    def register(self, session) -> int:
        slot = super().register(session)
        sock = getattr(session._rtp_transport, "socket", None)
        if sock is not None and session not in self._fds:
            fd = sock.fileno()
            self._reader.add(fd, session)
            self._fds[session] = fd
        return slot

    def session_changed(self, session) -> None:
        super().session_changed(session)
        self.receive_changed(session)

    def receive_changed(self, session) -> None:
        fd = self._fds.get(session)
        if fd is not None:
            self._reader.disarm(fd)

    def unregister(self, session) -> None:
        fd = self._fds.pop(session, None)
        if fd is not None:
            self._reader.remove(fd)
        super().unregister(session)

    @property
    def packets_read(self) -> int:
        return self._reader.packets_read

    @property
    def read_errors(self) -> int:
        return self._reader.read_errors

    @property
    def sockets_read(self) -> int:
        return self._reader.registered

    def tick(self) -> None:
        # Send first, read after: how long the reads take varies from tick to tick
        # (with how many packets the peers' timing put in this tick rather than the
        # next), and reading before the tick would shift every send by that much.
        super().tick()
        self.read_sockets()

    def read_sockets(self) -> None:
        self._reader.read(self.clock.seconds())

    @staticmethod
    def _handler_failed(kind, value, traceback) -> None:
        log.failure("RTP packet handling failed", Failure(value, kind, traceback))


class BatchedMediaEngine(MediaEngine):
    """A :class:`MediaEngine` whose RTP sockets are read by the media tick."""

    clock_class = BatchedMediaClock

    def __init__(self, reactor, port_range: tuple[int, int] = (10000, 20000), interface: str = "",
                 *, max_reads: int = MAX_READS_PER_TICK, send_ahead_ms: int = 0, prompt_ahead_ms: int = 0,
                 **session_defaults):
        super().__init__(reactor, port_range, interface, send_ahead_ms=send_ahead_ms,
                         prompt_ahead_ms=prompt_ahead_ms,
                         clock_options={"max_reads": max_reads}, **session_defaults)

    def create_session(self, params=None, **overrides):
        session = super().create_session(params, **overrides)
        # the tick reads this socket from now on; stopListening still closes it
        stop_reading = getattr(session._rtp_transport, "stopReading", None)
        if stop_reading is not None:
            stop_reading()
        return session
