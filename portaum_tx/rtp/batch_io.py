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

import errno
import select
import socket

from twisted.logger import Logger

from portaum_tx.rtp.clock import MediaClock
from portaum_tx.rtp.engine import MediaEngine

log = Logger()

MAX_PACKET = 2048
# Enough to drain a burst after a stall, bounded so one flooded port cannot hold up
# the tick of every other session.
MAX_READS_PER_TICK = 16

_DRAINED = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class BatchedMediaClock(MediaClock):
    """A media clock that reads its sessions' RTP sockets at the start of each tick.

    One non-blocking epoll call finds the sockets with packets waiting; each is read
    once, and the poll is repeated for those still holding more (a burst), up to
    ``max_reads`` rounds. No read is spent to learn that a socket is empty: that
    would cost a second system call, and a Python exception, per session per tick.
    ``poller`` builds the poller (``select.epoll``; tests pass a fake).
    """

    def __init__(self, clock, *, max_reads: int = MAX_READS_PER_TICK, poller=None, **options):
        super().__init__(clock, **options)
        self.max_reads = max_reads
        self._poller = (poller or select.epoll)()
        self._readers: dict = {}  # fd -> (recvfrom, rtp_received, ipv6, session)
        self._fds: dict = {}  # session -> fd
        self.packets_read = 0
        self.read_errors = 0

    def register(self, session) -> int:
        slot = super().register(session)
        sock = getattr(session._rtp_transport, "socket", None)
        if sock is not None and session not in self._fds:
            fd = sock.fileno()
            self._poller.register(fd, select.EPOLLIN)
            self._fds[session] = fd
            self._readers[fd] = (sock.recvfrom, session.rtp_received,
                                 sock.family == socket.AF_INET6, session)
        return slot

    def unregister(self, session) -> None:
        fd = self._fds.pop(session, None)
        if fd is not None:
            self._readers.pop(fd, None)
            try:
                self._poller.unregister(fd)
            except (OSError, ValueError, KeyError):
                pass  # already closed
        super().unregister(session)

    def tick(self) -> None:
        # Send first, read after: how long the reads take varies from tick to tick
        # (with how many packets the peers' timing put in this tick rather than the
        # next), and reading before the tick would shift every send by that much.
        super().tick()
        self.read_sockets()

    def read_sockets(self) -> None:
        readers = self._readers
        if not readers:
            return
        poll = self._poller.poll
        limit = len(readers)
        read = 0
        ready = poll(0, limit)
        rounds = 0
        while ready:
            for fd, _events in ready:
                reader = readers.get(fd)
                if reader is None:
                    continue
                recvfrom, received, ipv6, session = reader
                try:
                    data, addr = recvfrom(MAX_PACKET)
                except BlockingIOError:
                    continue
                except OSError as e:
                    # ECONNREFUSED: an ICMP port unreachable for something we sent
                    if e.errno not in _DRAINED:
                        self.read_errors += 1
                    continue
                read += 1
                if session.closed:
                    continue
                try:
                    received(data, addr[:2] if ipv6 else addr)
                except Exception:
                    log.failure("RTP packet handling failed")
            rounds += 1
            if rounds >= self.max_reads:
                break
            ready = poll(0, limit)
        self.packets_read += read

class BatchedMediaEngine(MediaEngine):
    """A :class:`MediaEngine` whose RTP sockets are read by the media tick."""

    def __init__(self, reactor, port_range: tuple[int, int] = (10000, 20000), interface: str = "",
                 *, max_reads: int = MAX_READS_PER_TICK, poller=None, **session_defaults):
        super().__init__(reactor, port_range, interface, **session_defaults)
        self.media_clock = BatchedMediaClock(reactor, max_reads=max_reads, poller=poller)

    def create_session(self, params=None, **overrides):
        session = super().create_session(params, **overrides)
        # the tick reads this socket from now on; stopListening still closes it
        stop_reading = getattr(session._rtp_transport, "stopReading", None)
        if stop_reading is not None:
            stop_reading()
        return session
