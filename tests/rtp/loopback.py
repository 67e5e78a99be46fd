"""Real UDP sockets on loopback under a task.Clock, for the media paths that talk
to the kernel themselves (the C packet I/O). Loopback delivers a datagram during
sendto(), so what was sent is waiting when the next tick runs: no sleeps."""

import random
import socket

from twisted.internet import udp
from twisted.internet.task import Clock

from portaum_tx.rtp.batch_io import BatchedMediaClock
from portaum_tx.rtp.clock import MediaClock
from portaum_tx.rtp.session import MediaParams, PortAllocator, RtpSession


class SocketReactor:
    """Real UDP ports, a task.Clock for time, and a record of which descriptors the
    reactor would be watching; nothing runs the global reactor."""

    def __init__(self):
        self.clock = Clock()
        self.readers = set()

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        listening = udp.Port(port, protocol, interface, maxPacketSize, reactor=self)
        listening.startListening()
        return listening

    def addReader(self, reader):
        self.readers.add(reader)

    def removeReader(self, reader):
        self.readers.discard(reader)

    def addWriter(self, writer):
        pass

    def removeWriter(self, writer):
        pass

    def seconds(self):
        return self.clock.seconds()

    def callLater(self, *args, **kwargs):
        return self.clock.callLater(*args, **kwargs)


class Peer:
    """The far end: a non-blocking loopback socket."""

    def __init__(self, testcase, family=socket.AF_INET, host="127.0.0.1"):
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        testcase.addCleanup(self.socket.close)
        self.socket.bind((host, 0))
        self.socket.setblocking(False)
        self.address = self.socket.getsockname()[:2]

    def send(self, data, session):
        self.socket.sendto(data, (self.address[0], session.local_port))

    def received(self):
        out = []
        while True:
            try:
                out.append(self.socket.recv(4096))
            except BlockingIOError:
                return out


class LoopbackRig:
    """A media clock (batched reads by default) over real loopback ports."""

    def __init__(self, testcase, batched=True, interface="127.0.0.1", **media_kwargs):
        self.reactor = SocketReactor()
        self.clock = self.reactor.clock
        kind = BatchedMediaClock if batched else MediaClock
        self.media = kind(self.clock, **media_kwargs)
        self.allocator = PortAllocator(self.reactor, (46000, 47999), interface)
        self.media.start()
        self.seed = 0
        self.sessions = []
        testcase.addCleanup(self.close)

    def session(self, remote, start=True, **kwargs):
        self.seed += 1
        kwargs.setdefault("rng", random.Random(self.seed))
        params = kwargs.pop("params", None) or MediaParams(remote)
        session = RtpSession(self.media, params, **kwargs)
        self.allocator.bind(session)
        if getattr(self.media, "read_sockets", None) is not None:
            session._rtp_transport.stopReading()
        self.sessions.append(session)
        if start:
            session.start()
        return session

    def tick(self, count=1):
        for _ in range(count):
            self.clock.advance(0.020)

    def close(self):
        for session in self.sessions:
            session.close("shutdown")
        self.media.stop()
