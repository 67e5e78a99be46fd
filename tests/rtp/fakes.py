"""Fake datagram transports and a fake UDP reactor for session tests."""

import random

from twisted.internet.address import IPv4Address
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock

from portaum_tx.rtp.clock import MediaClock
from portaum_tx.rtp.packet import RtpPacket, build_rtp, parse_rtcp, parse_rtp, looks_like_rtcp
from portaum_tx.rtp.session import MediaParams, PortAllocator, RtpSession

PEER = ("127.0.0.1", 40000)


class FakeDatagramTransport:
    def __init__(self, port, interface=""):
        self.port = port
        self.interface = interface
        self.written = []
        self.listening = True

    def write(self, data, addr):
        assert self.listening, "write on a closed port"
        self.written.append((data, addr))

    def stopListening(self):
        self.listening = False

    def getHost(self):
        return IPv4Address("UDP", self.interface or "0.0.0.0", self.port)

    def rtp(self):
        """Everything written, parsed as RTP."""
        return [(parse_rtp(data), addr) for data, addr in self.written if not looks_like_rtcp(data)]

    def rtcp(self):
        return [(parse_rtcp(data), addr) for data, addr in self.written]


class FakeUdpReactor:
    def __init__(self, busy=()):
        self.busy = set(busy)
        self.ports = {}

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        existing = self.ports.get(port)
        if port in self.busy or (existing is not None and existing.listening):
            raise CannotListenError(interface, port, OSError("address already in use"))
        transport = FakeDatagramTransport(port, interface)
        self.ports[port] = transport
        protocol.makeConnection(transport)
        return transport


class Rig:
    """A task.Clock, a running media clock and helpers to make bound sessions."""

    def __init__(self, **media_kwargs):
        self.clock = Clock()
        self.media = MediaClock(self.clock, **media_kwargs)
        self.reactor = FakeUdpReactor()
        self.allocator = PortAllocator(self.reactor, (20000, 20999), "127.0.0.1")
        self.media.start()
        self.seed = 0

    def session(self, params=None, start=True, **kwargs):
        self.seed += 1
        kwargs.setdefault("rng", random.Random(self.seed))
        session = RtpSession(self.media, params or MediaParams(PEER), **kwargs)
        self.allocator.bind(session)
        if start:
            session.start()
        return session

    def run(self, seconds, step=0.020):
        for _ in range(int(round(seconds / step))):
            self.clock.advance(step)


class FakePeer:
    """The far end of one session: builds RTP packets and delivers them."""

    def __init__(self, session, addr=PEER, ssrc=0x5EED5EED, payload_type=0, sequence=1000, timestamp=50000):
        self.session = session
        self.addr = addr
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.sequence = sequence
        self.timestamp = timestamp

    def packet(self, payload, payload_type=None, marker=False, sequence=None, timestamp=None):
        return build_rtp(RtpPacket(
            self.payload_type if payload_type is None else payload_type,
            self.sequence if sequence is None else sequence,
            self.timestamp if timestamp is None else timestamp,
            self.ssrc, payload, marker,
        ))

    def send(self, payload, advance=True, **kwargs):
        data = self.packet(payload, **kwargs)
        self.session.rtp_received(data, self.addr)
        if advance:
            self.sequence = (self.sequence + 1) & 0xFFFF
            self.timestamp = (self.timestamp + len(payload)) & 0xFFFFFFFF
        return data
