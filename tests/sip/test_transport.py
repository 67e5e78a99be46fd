"""SIP transports over fake sockets and a task.Clock: Via received/rport stamping and
response routing (RFC 3261 18.2, RFC 3581), TCP framing and keep-alives, idle and excess
connections closed, a flood of garbage that leaves service to good clients intact."""

from twisted.internet import address, task
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from portaum_tx.sip.message import parse_message
from portaum_tx.sip.transport import Peer, SipTransport, StreamFactory, UdpEndpoint

from tests.sip.uahelpers import FakeDatagramTransport, invite

OPTIONS = (b"OPTIONS sip:800@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5062;branch=z9hG4bKo1"
           b"%s\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:800@192.0.2.1>\r\nCall-ID: o1\r\n"
           b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


class Collector:
    def __init__(self):
        self.delivered = []

    def __call__(self, message, peer, reliable):
        self.delivered.append((message, peer, reliable))


class UdpTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.collector = Collector()
        self.sip = SipTransport(self.clock, self.collector)
        self.endpoint = UdpEndpoint(self.sip)
        self.socket = FakeDatagramTransport()
        self.endpoint.makeConnection(self.socket)

    def test_rport_sends_responses_back_to_the_source(self):
        self.endpoint.datagramReceived(OPTIONS % b";rport", ("198.51.100.9", 40001))
        [(message, peer, reliable)] = self.collector.delivered
        self.assertEqual(peer, Peer("udp", "198.51.100.9", 40001))
        self.assertFalse(reliable)
        via = message.top_via
        self.assertEqual((via.received, via.rport), ("198.51.100.9", 40001))

    def test_without_rport_responses_go_to_the_via_port_of_the_source_address(self):
        self.endpoint.datagramReceived(OPTIONS % b"", ("198.51.100.9", 40001))
        [(message, peer, _)] = self.collector.delivered
        self.assertEqual(peer, Peer("udp", "198.51.100.9", 5062))
        self.assertEqual(message.top_via.received, "198.51.100.9")

    def test_ipv4_mapped_ipv6_source_is_plain_ipv4(self):
        self.endpoint.datagramReceived(OPTIONS % b";rport", ("::ffff:198.51.100.9", 40001, 0, 0))
        [(_, peer, _)] = self.collector.delivered
        self.assertEqual(peer, Peer("udp", "198.51.100.9", 40001))

    def test_ipv6_peer(self):
        data = (OPTIONS % b";rport").replace(b"10.0.0.7:5062", b"[2001:db8::7]:5062")
        self.endpoint.datagramReceived(data, ("2001:db8::7", 40001, 0, 0))
        [(message, peer, _)] = self.collector.delivered
        self.assertEqual(peer, Peer("udp", "2001:db8::7", 40001))
        self.assertEqual(str(peer), "udp:[2001:db8::7]:40001")

    def test_send_writes_the_datagram(self):
        message = parse_message(OPTIONS % b"")
        self.sip.send(message, Peer("udp", "198.51.100.9", 5060))
        [(data, addr)] = self.socket.sent
        self.assertEqual(addr, ("198.51.100.9", 5060))
        self.assertEqual(parse_message(data).call_id, "o1")

    def test_keepalive_and_garbage_flood_do_not_stop_service(self):
        for i in range(2000):
            self.endpoint.datagramReceived(b"\r\n\r\n" if i % 2 else bytes([32 + i % 200]) * 300,
                                           ("203.0.113.66", 1000 + i))
        self.assertEqual(self.sip.garbage_received, 1000)
        self.assertEqual(self.socket.sent, [])        # nothing to answer garbage with
        self.endpoint.datagramReceived(OPTIONS % b";rport", ("198.51.100.9", 40001))
        self.assertEqual(len(self.collector.delivered), 1)


class TcpTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.collector = Collector()
        self.sip = SipTransport(self.clock, self.collector, max_connections=3, idle_timeout=30)
        self.factory = StreamFactory(self.sip, "tcp")

    def connect(self, port=40000):
        connection = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=address.IPv4Address("TCP", "198.51.100.9", port))
        connection.makeConnection(transport)
        return connection, transport

    def test_messages_are_framed_and_answered_over_the_connection(self):
        connection, transport = self.connect()
        data = invite().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP")
        connection.dataReceived(data[:50])
        connection.dataReceived(data[50:] + b"\r\n\r\n")     # a keep-alive ping after it
        [(message, peer, reliable)] = self.collector.delivered
        self.assertEqual(message.method, "INVITE")
        self.assertEqual(peer, Peer("tcp", "198.51.100.9", 40000))
        self.assertTrue(reliable)
        self.assertEqual(transport.value(), b"\r\n")         # RFC 5626 pong
        transport.clear()
        self.sip.send(parse_message(OPTIONS % b""), peer)
        self.assertTrue(transport.value().startswith(b"OPTIONS "))

    def test_unparsable_message_gets_400_and_the_stream_goes_on(self):
        connection, transport = self.connect()
        bad = (b"INVITE  sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
               b"From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
               b"Content-Length: 0\r\n\r\n")
        connection.dataReceived(bad)
        self.assertTrue(transport.value().startswith(b"SIP/2.0 400 "))
        self.assertFalse(transport.disconnecting)
        connection.dataReceived(invite().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        self.assertEqual(len(self.collector.delivered), 1)

    def test_framing_error_closes_the_connection(self):
        connection, transport = self.connect()
        connection.dataReceived(b"INVITE sip:x@y SIP/2.0\r\n" + b"X-Junk: " + b"a" * 20000)
        self.assertTrue(transport.disconnecting)

    def test_half_open_connections_are_closed_when_idle(self):
        connection, transport = self.connect()
        connection.dataReceived(b"INVITE sip:x@y SIP/2.0\r\n")   # and then nothing
        self.clock.advance(29)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(transport.disconnecting)

    def test_excess_connections_close_the_longest_idle(self):
        first, first_transport = self.connect(40001)
        self.clock.advance(5)
        others = [self.connect(40002 + i) for i in range(3)]
        self.assertTrue(first_transport.disconnecting)
        self.assertFalse(any(t.disconnecting for _, t in others))
        first.connectionLost(None)
        self.assertEqual(len(self.sip.connections), 3)
        self.assertNotIn(Peer("tcp", "198.51.100.9", 40001), self.sip.connections)

    def test_lost_connection_is_reported(self):
        lost = []
        self.sip.on_connection_lost = lost.append
        connection, _ = self.connect()
        connection.connectionLost(None)
        self.assertEqual(lost, [Peer("tcp", "198.51.100.9", 40000)])

    def test_response_after_the_connection_closed_goes_to_the_via_address(self):
        dialled = []
        self.sip.connect = lambda peer, factory: dialled.append(peer)
        connection, _ = self.connect()
        connection.dataReceived((OPTIONS % b"").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        [(request, peer, _)] = self.collector.delivered
        connection.connectionLost(None)
        from portaum_tx.sip.message import make_response
        self.sip.send(make_response(request, 200), peer)
        self.assertEqual(dialled, [Peer("tcp", "198.51.100.9", 5062)])

    def test_sending_to_an_unknown_stream_peer_without_connector_fails(self):
        from portaum_tx.sip.transaction import TransportError
        with self.assertRaises(TransportError):
            self.sip.send(parse_message(OPTIONS % b""), Peer("tcp", "198.51.100.10", 5060))
