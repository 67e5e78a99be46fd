"""SIP over TLS on the front end: a TLS client (Python's ssl module, an independent TLS
stack) sends OPTIONS and an INVITE over one connection and gets the answers back on it."""

import shutil
import socket
import ssl
import tempfile

from twisted.internet import defer, threads
from twisted.trial import unittest

from tests.sip.live import LiveFrontend, free_port
from tests.sip.uahelpers import OFFER as REMOTE_OFFER

OFFER = REMOTE_OFFER.replace(b"192.0.2.7", b"127.0.0.1")


def exchange(port: int, requests: list[bytes], expect: int) -> list[bytes]:
    """Send ``requests`` over one TLS connection; return the first ``expect`` responses."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            for request in requests:
                tls.sendall(request)
            data = b""
            while data.count(b"SIP/2.0 ") < expect:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    return [b"SIP/2.0 " + part for part in data.split(b"SIP/2.0 ")[1:]]


def request(method, call_id, body=b"", port=0):
    head = (f"{method} sip:800@127.0.0.1:{port};transport=tls SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK{call_id};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:1001@127.0.0.1>;tag=t1\r\n"
            f"To: <sip:800@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\n"
            f"Contact: <sip:1001@127.0.0.1:5061;transport=tls>\r\n")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


class TlsTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_options_and_invite_over_tls(self):
        data_dir = tempfile.mkdtemp(prefix="portaum-sip-tls-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        tls_port = free_port(socket.SOCK_STREAM)
        calls = []

        async def answer(call):
            calls.append(call)
            await call.answer()
            await call.hungup
        server = yield defer.ensureDeferred(LiveFrontend(answer, overrides=[
            "sip.tls_port=%d" % tls_port, "storage.data_dir=%s" % data_dir]).start())
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        responses = yield threads.deferToThread(
            exchange, tls_port, [request("OPTIONS", "tlsopt", port=tls_port),
                                 request("INVITE", "tlsinv", OFFER, port=tls_port)], 3)
        statuses = [r.split(b" ")[1] for r in responses[:3]]
        self.assertEqual(statuses[0], b"200")
        self.assertIn(b"Allow: INVITE", responses[0])
        self.assertIn(b"180", statuses)
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0].sip.peer.transport, "tls")
        self.assertIn(b";transport=tls>", [r for r in responses if b" 180 " in r[:12]][0])
