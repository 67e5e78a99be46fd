"""Interoperability with independently written SIP peers.

Offline: messages captured from baresip 1.0 and SIPp 3.6 (data/peers/) are
parsed, validated and answered.  Live: SIPp's built-in "uac" scenario calls
a small UAS assembled from this package's parser, validator, transaction
layer and SDP answerer, over UDP and over TCP; SIPp registers through a
Digest challenge (its own MD5 implementation against DigestServer); and
client transactions place a call to SIPp's "uas" scenario.  The live tests need SIPp
(Debian package ``sip-tester``); without it they are skipped with that
reason, unless PORTAUM_REQUIRE_PEERS=1 makes its absence a failure.
"""

import os
import shutil
import socket

from twisted.internet import defer, protocol, reactor, task
from twisted.trial import unittest

from portaum_tx.sip.digest import (
    DigestError, DigestServer, VerifyResult, compute_ha1, parse_credentials,
)
from portaum_tx.sip.message import Request, StreamFramer, make_response, parse_message
from portaum_tx.sip.sdp import (
    LocalCapabilities, Origin, answer_offer, make_offer, parse_sdp, read_answer,
)
from portaum_tx.sip.transaction import TransactionLayer, TwoXXRetransmitter, new_branch
from portaum_tx.sip.validate import check_request
from tests.support import free_port

PEERS = os.path.join(os.path.dirname(__file__), "data", "peers")
LOCAL = LocalCapabilities("127.0.0.1", 40000)


def load(name):
    with open(os.path.join(PEERS, name + ".dat"), "rb") as f:
        return f.read()


class CapturedMessages(unittest.TestCase):
    def test_baresip_invite(self):
        invite = parse_message(load("baresip-invite"))
        self.assertIsNone(check_request(invite))
        self.assertEqual(invite.parsed("Supported"), [])
        self.assertIs(invite.top_via.rport, True)
        self.assertIn("REFER", invite.parsed("Allow"))
        result = answer_offer(parse_sdp(invite.body_part("application/sdp")), LOCAL, Origin())
        self.assertEqual((result.audio.codec, result.audio.telephone_event_pt, result.audio.ptime),
                         ("PCMU", 101, 20))

    def test_baresip_in_dialog_requests(self):
        for name in ("baresip-ack", "baresip-bye"):
            message = parse_message(load(name))
            self.assertIsNone(check_request(message))
            self.assertEqual(message.to.tag, "uas1")

    def test_sipp_messages(self):
        invite = parse_message(load("sipp-invite"))
        self.assertIsNone(check_request(invite))
        self.assertEqual(invite.contact[0].uri.user, "sipp")
        self.assertEqual(len(invite.body), invite.first("Content-Length"))
        answer_offer(parse_sdp(invite.body), LOCAL, Origin())
        for name in ("sipp-ack", "sipp-bye"):
            self.assertIsNone(check_request(parse_message(load(name))))


class MiniUAS:
    """Answers INVITE with 180 + 200/SDP and everything else with 200."""

    def __init__(self, send, reliable):
        self.layer = TransactionLayer(reactor, send, self.on_request)
        self.send = send
        self.reliable = reliable
        self.methods = []
        self.retransmitters = {}
        self.rejections = []
        self.digest: DigestServer | None = None
        self.auth_results = []

    def register(self, request):
        """401 with a challenge, then 200 or 403 by the Digest credentials."""
        header = request.get("Authorization")
        if header is None:
            return make_response(request, 401, to_tag="uas1", headers=[
                ("WWW-Authenticate", value) for value in self.digest.challenge()])
        try:
            credentials = parse_credentials(header)
        except DigestError:
            return make_response(request, 403, to_tag="uas1")
        ha1 = {algorithm: compute_ha1("alice", self.digest.realm, "wonderland", algorithm)
               for algorithm in ("MD5", "SHA-256")}
        result = self.digest.verify(credentials, request.method, ha1)
        self.auth_results.append((credentials.uri, result))
        return make_response(request, 200 if result is VerifyResult.OK else 403, to_tag="uas1")

    def receive(self, data_or_message, source):
        message = parse_message(data_or_message) if isinstance(data_or_message, bytes) \
            else data_or_message
        self.layer.receive(message, source, self.reliable)

    def on_request(self, transaction, request):
        self.methods.append(request.method)
        if transaction is None:
            retransmitter = self.retransmitters.get(request.call_id)
            if request.method == "ACK" and retransmitter is not None:
                retransmitter.ack_received()
            return
        error = check_request(request)
        if error is not None:
            self.rejections.append(error)
            transaction.respond(error.build(request, "uas1"))
            return
        if request.method == "REGISTER" and self.digest is not None:
            transaction.respond(self.register(request))
            return
        if request.method != "INVITE":
            transaction.respond(make_response(request, 200, to_tag="uas1"))
            return
        transaction.respond(make_response(request, 180, to_tag="uas1"))
        result = answer_offer(parse_sdp(request.body_part("application/sdp")), LOCAL,
                              Origin(address="127.0.0.1"))
        ok = make_response(request, 200, to_tag="uas1", headers=[
            ("Contact", "<sip:uas@127.0.0.1>"), ("Content-Type", "application/sdp")],
            body=result.sdp.serialize())
        transaction.respond(ok)
        self.retransmitters[request.call_id] = TwoXXRetransmitter(
            reactor, self.send, ok, transaction.source, self.reliable, already_sent=True)

    def stop(self):
        for retransmitter in self.retransmitters.values():
            retransmitter.stop()
        self.layer.shutdown()


class UDPEndpoint(protocol.DatagramProtocol):
    def __init__(self):
        self.uas = MiniUAS(lambda m, d: self.transport.write(m.serialize(), d), reliable=False)

    def datagramReceived(self, data, addr):
        self.uas.receive(data, addr)


class TCPConnection(protocol.Protocol):
    def connectionMade(self):
        self.framer = StreamFramer()
        self.factory.connections.append(self)
        self.uas = MiniUAS(lambda m, d: self.transport.write(m.serialize()), reliable=True)
        self.factory.uas_list.append(self.uas)

    def dataReceived(self, data):
        for item in self.framer.feed(data):
            if not isinstance(item, Exception):
                self.uas.receive(item, self.transport.getPeer())


class SippProcess(protocol.ProcessProtocol):
    def __init__(self):
        self.done = defer.Deferred()
        self.output = b""

    def outReceived(self, data):
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason):
        self.done.callback(reason.value.exitCode)


class LiveSipp(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.sipp = shutil.which("sipp")
        if self.sipp is None:
            if os.environ.get("PORTAUM_REQUIRE_PEERS") == "1":
                self.fail("SIPp (Debian package sip-tester) is required but not installed")
            raise unittest.SkipTest("SIPp (Debian package sip-tester) is not installed")

    def run_sipp(self, port, transport_mode, scenario=("-sn", "uac")):
        process = SippProcess()
        args = [self.sipp, *scenario, "127.0.0.1:%d" % port, "-m", "1", "-nostdin",
                "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
                "-t", transport_mode, "-timeout", "20s", "-timeout_error",
                "-trace_err", "-error_file", os.path.abspath("sipp-errors.log")]
        reactor.spawnProcess(process, self.sipp, args, env={"PATH": "/usr/bin:/bin"},
                             path=os.getcwd())
        return process

    @defer.inlineCallbacks
    def test_udp_call(self):
        endpoint = UDPEndpoint()
        port = reactor.listenUDP(0, endpoint, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(endpoint.uas.stop)
        process = self.run_sipp(port.getHost().port, "u1")
        exit_code = yield process.done
        self.assertEqual(exit_code, 0, process.output[-2000:])
        self.assertEqual(endpoint.uas.methods, ["INVITE", "ACK", "BYE"])
        self.assertEqual(endpoint.uas.rejections, [])
        self.assertTrue(all(r.acked for r in endpoint.uas.retransmitters.values()))

    @defer.inlineCallbacks
    def test_tcp_call(self):
        factory = protocol.ServerFactory()
        factory.protocol = TCPConnection
        factory.connections = []
        factory.uas_list = []
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        process = self.run_sipp(port.getHost().port, "t1")
        exit_code = yield process.done
        for uas in factory.uas_list:
            uas.stop()
        for connection in factory.connections:
            connection.transport.loseConnection()
        self.assertEqual(exit_code, 0, process.output[-2000:])
        self.assertEqual(factory.uas_list[0].methods, ["INVITE", "ACK", "BYE"])
        self.assertTrue(all(r.acked for r in factory.uas_list[0].retransmitters.values()))

    @defer.inlineCallbacks
    def test_register_with_digest(self):
        # SIPp computes MD5 Digest responses only, so the realm offers MD5 alone.
        endpoint = UDPEndpoint()
        endpoint.uas.digest = DigestServer("example.com", b"test-secret", algorithms=("MD5",))
        port = reactor.listenUDP(0, endpoint, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(endpoint.uas.stop)
        scenario = ("-sf", os.path.join(PEERS, "register-digest.xml"))
        process = self.run_sipp(port.getHost().port, "u1", scenario)
        exit_code = yield process.done
        self.assertEqual(exit_code, 0, process.output[-2000:])
        self.assertEqual(endpoint.uas.methods, ["REGISTER", "REGISTER"])
        self.assertEqual(endpoint.uas.auth_results,
                         [("sip:127.0.0.1:%d" % port.getHost().port, VerifyResult.OK)])

    @defer.inlineCallbacks
    def test_outgoing_call_to_sipp_uas(self):
        sipp_port = free_port(socket.SOCK_DGRAM)
        process = SippProcess()
        reactor.spawnProcess(process, self.sipp, [
            self.sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(sipp_port), "-m", "1",
            "-nostdin", "-timeout", "20s", "-timeout_error"], env={"PATH": "/usr/bin:/bin"},
            path=os.getcwd())
        endpoint = UDPEndpoint()
        port = reactor.listenUDP(0, endpoint, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(endpoint.uas.stop)
        layer = endpoint.uas.layer
        peer = ("127.0.0.1", sipp_port)
        local = "127.0.0.1:%d" % port.getHost().port
        yield task.deferLater(reactor, 0.5, lambda: None)     # let SIPp bind

        offer = make_offer(LocalCapabilities("127.0.0.1", 41000), Origin(address="127.0.0.1"))
        invite = Request("INVITE", "sip:service@%s:%d" % peer, [
            ("Via", "SIP/2.0/UDP %s;branch=%s;rport" % (local, new_branch())),
            ("Max-Forwards", "70"), ("From", "<sip:ivr@%s>;tag=uac1" % local),
            ("To", "<sip:service@%s:%d>" % peer), ("Call-ID", "outgoing-1@127.0.0.1"),
            ("CSeq", "1 INVITE"), ("Contact", "<sip:ivr@%s>" % local),
            ("Content-Type", "application/sdp")], body=offer.serialize())
        statuses = []
        invite_txn = layer.send_request(invite, peer, False, lambda t, r: statuses.append(r.status))
        ok = yield invite_txn.final
        self.assertEqual(ok.status, 200)
        negotiation = read_answer(offer, parse_sdp(ok.body))
        self.assertEqual(negotiation.audio.codec, "PCMU")

        target = ok.contact[0].uri
        ack = Request("ACK", target, [
            ("Via", "SIP/2.0/UDP %s;branch=%s;rport" % (local, new_branch())),
            ("Max-Forwards", "70"), ("From", invite.get("From")), ("To", ok.get("To")),
            ("Call-ID", invite.call_id), ("CSeq", "1 ACK")])
        endpoint.transport.write(ack.serialize(), peer)
        bye = Request("BYE", target, [
            ("Via", "SIP/2.0/UDP %s;branch=%s;rport" % (local, new_branch())),
            ("Max-Forwards", "70"), ("From", invite.get("From")), ("To", ok.get("To")),
            ("Call-ID", invite.call_id), ("CSeq", "2 BYE")])
        bye_response = yield layer.send_request(bye, peer, False).final
        self.assertEqual(bye_response.status, 200)
        exit_code = yield process.done
        self.assertEqual(exit_code, 0, process.output[-2000:])
        self.assertEqual(statuses[-1], 200)
        self.assertIn(180, statuses)
