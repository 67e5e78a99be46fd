"""The media tick reading RTP sockets itself (portaum_tx.rtp.batch_io)."""

import errno
import random
import select
import socket

import numpy as np
from twisted.internet.task import Clock
from twisted.trial import unittest

from portaum_tx.rtp.batch_io import BatchedMediaClock, BatchedMediaEngine
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.jitter import FRAME_AUDIO
from portaum_tx.rtp.packet import RtpPacket, build_rtp
from portaum_tx.rtp.session import MediaParams, PortAllocator, RtpSession

from tests.rtp.fakes import PEER, FakeDatagramTransport, FakeUdpReactor


SOCKETS = {}  # fd -> FakeSocket, for FakePoller


class FakeSocket:
    """A non-blocking datagram socket with queued input."""

    def __init__(self, transport, family=socket.AF_INET):
        self.transport = transport
        self.family = family
        self.queue = []
        self.reads = 0
        self.fd = 1000 + len(SOCKETS)
        SOCKETS[self.fd] = self

    def fileno(self):
        return self.fd

    def recvfrom(self, size):
        self.reads += 1
        if not self.queue:
            raise BlockingIOError(errno.EAGAIN, "would block")
        item = self.queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def sendto(self, data, addr):
        self.transport.write(data, addr)


class FakePoller:
    """epoll over FakeSockets: ready while a socket's queue holds something."""

    def __init__(self):
        self.registered = {}
        self.polls = 0

    def register(self, fd, mask):
        assert fd not in self.registered, "registered twice"
        self.registered[fd] = mask

    def unregister(self, fd):
        del self.registered[fd]

    def poll(self, timeout=-1, maxevents=-1):
        assert timeout == 0, "the tick must never block"
        self.polls += 1
        ready = [(fd, select.EPOLLIN) for fd in self.registered if SOCKETS[fd].queue]
        return ready[:maxevents] if maxevents > 0 else ready


class ReadableTransport(FakeDatagramTransport):
    """A fake port with a socket, that knows whether the reactor reads it."""

    def __init__(self, port, interface=""):
        super().__init__(port, interface)
        self.socket = FakeSocket(self)
        self.reading = True

    def stopReading(self):
        self.reading = False


class ReadableReactor(FakeUdpReactor):
    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        transport = ReadableTransport(port, interface)
        if port in self.busy:
            return super().listenUDP(port, protocol, interface, maxPacketSize)
        self.ports[port] = transport
        protocol.makeConnection(transport)
        return transport

    def seconds(self):
        return self.clock.seconds()

    def callLater(self, *args, **kwargs):
        return self.clock.callLater(*args, **kwargs)


def speech_frame(index):
    t = np.arange(160) + index * 160
    return PCMU.encode((8000 * np.sin(2 * np.pi * 440 * t / 8000)).astype(np.int16))


def packets(count, first_sequence=100, ssrc=0x1234):
    return [(build_rtp(RtpPacket(payload_type=0, sequence=first_sequence + i,
                                 timestamp=1000 + 160 * i, ssrc=ssrc,
                                 payload=speech_frame(i))), PEER) for i in range(count)]


class Frames:
    def __init__(self):
        self.statuses = []
        self.pcm = []

    def inbound_frame(self, session, pcm, status):
        self.statuses.append(status)
        self.pcm.append(pcm.copy())


class Rig:
    def __init__(self, max_reads=16):
        self.clock = Clock()
        self.media = BatchedMediaClock(self.clock, max_reads=max_reads, poller=FakePoller)
        self.reactor = ReadableReactor()
        self.allocator = PortAllocator(self.reactor, (20000, 20999), "127.0.0.1")
        self.media.start()

    def session(self, start=True):
        session = RtpSession(self.media, MediaParams(PEER), rng=random.Random(len(self.media.sessions)))
        self.allocator.bind(session)
        if start:
            session.start()
        return session

    def tick(self, count=1):
        for _ in range(count):
            self.clock.advance(0.020)


class BatchedMediaClockTests(unittest.TestCase):
    def test_a_packet_that_arrived_before_a_tick_is_read_in_that_tick(self):
        # read at the end of the tick, played from the next one on
        rig = Rig()
        session = rig.session()
        frames = Frames()
        session.add_consumer(frames)
        stream = packets(8)
        for index, packet in enumerate(stream):
            session._rtp_transport.socket.queue.append(packet)
            rig.tick()
            self.assertEqual(session.packets_received, index + 1)
        self.assertEqual(rig.media.packets_read, 8)
        audio = [pcm for status, pcm in zip(frames.statuses, frames.pcm) if status == FRAME_AUDIO]
        self.assertGreaterEqual(len(audio), 5)
        for index, pcm in enumerate(audio):
            np.testing.assert_array_equal(pcm, PCMU.decode(speech_frame(index)))

    def test_the_tick_sends_before_it_reads(self):
        # the send instants must not move with how long the reads take
        rig = Rig()
        session = rig.session(start=False)
        transport = session._rtp_transport
        order = []
        sock = transport.socket
        original_write, original_recvfrom = transport.write, sock.recvfrom
        transport.write = lambda data, addr: (order.append("send"), original_write(data, addr))
        sock.recvfrom = lambda size: (order.append("read"), original_recvfrom(size))[1]
        session._sendto = None  # through transport.write, to see it
        session.start()
        sock.queue.extend(packets(1))
        rig.tick()
        self.assertEqual(order, ["send", "read"])

    def test_each_tick_reads_what_is_waiting_and_never_an_empty_socket(self):
        rig = Rig()
        session, idle = rig.session(), rig.session()
        sock = session._rtp_transport.socket
        sock.queue.extend(packets(2))
        rig.tick()
        self.assertEqual(session.packets_received, 2)
        self.assertEqual(sock.reads, 2)
        rig.tick()
        self.assertEqual(sock.reads, 2)
        self.assertEqual(idle._rtp_transport.socket.reads, 0)

    def test_a_flooded_port_gives_up_the_rest_of_its_queue_until_the_next_tick(self):
        rig = Rig(max_reads=5)
        flooded, quiet = rig.session(), rig.session()
        flooded._rtp_transport.socket.queue.extend(packets(12))
        quiet._rtp_transport.socket.queue.extend(packets(1, ssrc=0x99))
        rig.tick()
        self.assertEqual((flooded.packets_received, quiet.packets_received), (5, 1))
        rig.tick()
        self.assertEqual(flooded.packets_received, 10)
        rig.tick()
        self.assertEqual(flooded.packets_received, 12)

    def test_a_refused_read_is_counted_and_the_other_sessions_are_still_read(self):
        rig = Rig()
        first, second = rig.session(), rig.session()
        first._rtp_transport.socket.queue.append(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
        second._rtp_transport.socket.queue.extend(packets(1))
        rig.tick()
        self.assertEqual(rig.media.read_errors, 1)
        self.assertEqual(second.packets_received, 1)
        first._rtp_transport.socket.queue.extend(packets(1))
        rig.tick()
        self.assertEqual(first.packets_received, 1)

    def test_ipv6_addresses_are_cut_to_host_and_port(self):
        rig = Rig()
        session = rig.session()
        sock = session._rtp_transport.socket
        rig.media.unregister(session)
        sock.family = socket.AF_INET6
        rig.media.register(session)
        session.configure(MediaParams(("2001:db8::7", 4000)))
        data, _ = packets(1)[0]
        seen = []
        session.rtp_received = lambda data, addr: seen.append(addr)
        rig.media.unregister(session)
        rig.media.register(session)
        sock.queue.append((data, ("2001:db8::7", 4000, 0, 0)))
        rig.tick()
        self.assertEqual(seen, [("2001:db8::7", 4000)])

    def test_sessions_not_started_or_closed_are_not_read(self):
        rig = Rig()
        waiting = rig.session(start=False)
        closed = rig.session()
        waiting._rtp_transport.socket.queue.extend(packets(1))
        closed_socket = closed._rtp_transport.socket
        closed.close("hangup")
        closed_socket.queue.extend(packets(1))
        rig.tick()
        self.assertEqual(waiting._rtp_transport.socket.reads, 0)
        self.assertEqual(closed_socket.reads, 0)
        waiting.start()
        rig.tick()
        self.assertEqual(waiting.packets_received, 1)

    def test_a_failing_session_does_not_stop_the_tick(self):
        rig = Rig()
        broken, fine = rig.session(), rig.session()

        def explode(data, addr):
            raise RuntimeError("boom")
        rig.media.unregister(broken)
        broken.rtp_received = explode
        rig.media.register(broken)
        broken._rtp_transport.socket.queue.extend(packets(1))
        fine._rtp_transport.socket.queue.extend(packets(1, ssrc=0x77))
        rig.tick()
        self.assertEqual(fine.packets_received, 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class BatchedMediaEngineTests(unittest.TestCase):
    def test_rtp_ports_leave_the_reactor_and_rtcp_ports_stay(self):
        reactor = ReadableReactor()
        reactor.clock = Clock()
        engine = BatchedMediaEngine(reactor, port_range=(30000, 30009), interface="127.0.0.1",
                                    poller=FakePoller)
        self.assertIsInstance(engine.media_clock, BatchedMediaClock)
        session = engine.create_session()
        self.assertFalse(session._rtp_transport.reading)
        self.assertTrue(session._rtcp_transport.reading)
        engine.start()
        session.configure(MediaParams(PEER))
        session.start()
        session._rtp_transport.socket.queue.extend(packets(2))
        reactor.clock.advance(0.020)
        self.assertEqual(session.packets_received, 2)
        # sending still goes out of the session's own port
        self.assertTrue(session._rtp_transport.rtp())
        engine.stop()
        self.assertFalse(session._rtp_transport.listening)
        self.assertEqual(engine.media_clock._poller.registered, {})


class SocketReactor:
    """Real UDP ports on loopback, a task.Clock for time, and a record of which
    descriptors the reactor would be watching; nothing runs the global reactor."""

    def __init__(self):
        self.clock = Clock()
        self.readers = set()

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        from twisted.internet import udp
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


class LoopbackTests(unittest.TestCase):
    """The real epoll path over real sockets (loopback delivers during sendto, so
    what was sent is waiting when the tick runs)."""

    def test_packets_sent_to_the_session_port_are_read_by_the_tick(self):
        reactor = SocketReactor()
        engine = BatchedMediaEngine(reactor, port_range=(46000, 46999), interface="127.0.0.1")
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(peer.close)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        session = engine.create_session()
        self.addCleanup(engine.stop)
        self.assertNotIn(session._rtp_transport, reactor.readers)
        self.assertIn(session._rtcp_transport, reactor.readers)
        session.configure(MediaParams(peer.getsockname(), telephone_event_pt=None))
        session.start()
        engine.start()
        stream = packets(5)
        for data, _ in stream[:3]:
            peer.sendto(data, ("127.0.0.1", session.local_port))
        reactor.clock.advance(0.020)
        self.assertEqual(session.packets_received, 3)
        self.assertEqual(session.remote_address, peer.getsockname())  # latched
        for data, _ in stream[3:]:
            peer.sendto(data, ("127.0.0.1", session.local_port))
        reactor.clock.advance(0.020)
        self.assertEqual(session.packets_received, 5)
        self.assertEqual(engine.media_clock.packets_read, 5)
        sent = []
        while True:
            try:
                sent.append(peer.recv(2048))
            except BlockingIOError:
                break
        self.assertEqual(len(sent), 2)  # one packet per tick back to the peer
        session.close("hangup")
        self.assertEqual(engine.media_clock._readers, {})
