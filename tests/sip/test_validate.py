"""UAS request checks and UAC response checks."""

from twisted.trial import unittest

from portaum_tx.sip.headers import Via
from portaum_tx.sip.message import parse_message
from portaum_tx.sip.validate import (
    check_request, check_response, is_unsafe_destination, method_not_allowed, via_is_unsafe,
)

BASE = (
    "{method} sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
    "From: <sip:alice@example.com>;tag=a\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 1 {method}\r\n"
    "Max-Forwards: 70\r\n"
    "{extra}"
    "\r\n"
)


def request(method="INVITE", extra="", body=b""):
    text = BASE.format(method=method, extra=extra).encode() + body
    return parse_message(text)


class CheckRequestTests(unittest.TestCase):
    def test_good(self):
        self.assertIsNone(check_request(request()))
        sdp = b"v=0\r\n"
        self.assertIsNone(check_request(request(
            extra="Content-Type: application/sdp\r\nContent-Length: 5\r\n", body=sdp)))

    def test_missing_header(self):
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            message = request()
            message.remove(name)
            error = check_request(message)
            self.assertEqual(error.status, 400)
            self.assertIn(name, error.reason)

    def test_bad_max_forwards(self):
        self.assertEqual(check_request(request(extra="Max-Forwards: 5\r\n")).status, 400)
        message = request()
        message.set("Max-Forwards", "abc")
        self.assertEqual(check_request(message).status, 400)
        message.set("Max-Forwards", "0")
        self.assertIsNone(check_request(message))

    def test_require(self):
        message = request(extra="Require: timer, foo\r\n")
        error = check_request(message, supported=["timer"])
        self.assertEqual(error.status, 420)
        self.assertEqual(error.headers, (("Unsupported", "foo"),))
        self.assertIsNone(check_request(message, supported=["timer", "FOO"]))
        ack = request("ACK", extra="Require: foo\r\n")
        self.assertIsNone(check_request(ack))

    def test_content_type(self):
        message = request(extra="Content-Type: text/html\r\nContent-Length: 2\r\n", body=b"<>")
        error = check_request(message)
        self.assertEqual(error.status, 415)
        self.assertEqual(error.headers[0][0], "Accept")
        message = request(extra="Content-Length: 2\r\n", body=b"<>")
        self.assertEqual(check_request(message).status, 400)
        message = request(extra="Content-Type: application/sdp\r\nContent-Encoding: gzip\r\n"
                                "Content-Length: 2\r\n", body=b"<>")
        self.assertEqual(check_request(message).status, 415)
        info = request("INFO", extra="Content-Type: application/dtmf-relay\r\nContent-Length: 2\r\n",
                       body=b"<>")
        self.assertIsNone(check_request(info))

    def test_accept(self):
        self.assertEqual(check_request(request(extra="Accept: text/plain\r\n")).status, 406)
        self.assertIsNone(check_request(request(extra="Accept: application/*\r\n")))
        self.assertIsNone(check_request(request("OPTIONS", extra="Accept: text/plain\r\n")))

    def test_uri_scheme(self):
        message = request()
        message.uri = parse_message(
            b"OPTIONS mailto:a@b SIP/2.0\r\n\r\n").uri
        self.assertEqual(check_request(message).status, 416)
        message.uri = parse_message(b"OPTIONS tel:+15551234 SIP/2.0\r\n\r\n").uri
        self.assertIsNone(check_request(message))

    def test_contact_wildcard(self):
        self.assertEqual(check_request(request(extra="Contact: *\r\n")).status, 400)
        self.assertIsNone(check_request(request("REGISTER", extra="Contact: *\r\nExpires: 0\r\n")))

    def test_build_error_response(self):
        message = request(extra="Require: foo\r\n")
        response = check_request(message).build(message, to_tag="xyz")
        wire = parse_message(response.serialize())
        self.assertEqual(wire.status, 420)
        self.assertEqual(wire.get("Unsupported"), "foo")
        self.assertEqual(wire.to.tag, "xyz")

    def test_method_not_allowed(self):
        error = method_not_allowed("PUBLISH", ["INVITE", "ACK"])
        self.assertEqual((error.status, error.headers), (405, (("Allow", "INVITE, ACK"),)))
        self.assertEqual(method_not_allowed("FOO", ["INVITE"]).status, 501)


class CheckResponseTests(unittest.TestCase):
    RESPONSE = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
                b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n")

    def test_good_and_bad(self):
        self.assertIsNone(check_response(parse_message(self.RESPONSE)))
        two_vias = self.RESPONSE.replace(b"Via:", b"Via: SIP/2.0/UDP x;branch=z9hG4bK2\r\nVia:")
        self.assertIn("Via", check_response(parse_message(two_vias)))
        self.assertIsNone(check_response(parse_message(two_vias), max_via=2))
        self.assertIsNotNone(check_response(parse_message(self.RESPONSE.replace(b"Call-ID: x\r\n", b""))))
        self.assertIsNotNone(check_response(parse_message(self.RESPONSE.replace(b"1 INVITE", b"INVITE"))))


class DestinationTests(unittest.TestCase):
    def test_unsafe(self):
        for host in ("255.255.255.255", "0.0.0.0", "224.0.0.1", "239.1.2.3", "ff02::1", "::",
                     "[ff05::2]", "240.0.0.1"):
            self.assertTrue(is_unsafe_destination(host), host)
        for host in ("192.0.2.1", "2001:db8::1", "example.com", "10.255.255.255"):
            self.assertFalse(is_unsafe_destination(host), host)

    def test_via(self):
        self.assertTrue(via_is_unsafe(Via.parse("SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1")))
        self.assertTrue(via_is_unsafe(Via.parse("SIP/2.0/UDP h;branch=z9hG4bK1;received=0.0.0.0")))
        self.assertTrue(via_is_unsafe(Via.parse("SIP/2.0/UDP h;maddr=224.0.1.75")))
        self.assertFalse(via_is_unsafe(Via.parse("SIP/2.0/UDP 192.0.2.1;received=192.0.2.9")))


class SessionTimerTests(unittest.TestCase):
    def test_min_se(self):
        from portaum_tx.sip.validate import check_session_timer
        self.assertIsNone(check_session_timer(request()))
        self.assertIsNone(check_session_timer(request(extra="Session-Expires: 1800;refresher=uac\r\n")))
        error = check_session_timer(request(extra="Session-Expires: 60\r\n"), min_se=90)
        self.assertEqual((error.status, error.headers), (422, (("Min-SE", "90"),)))
        self.assertEqual(check_session_timer(request(extra="x: abc\r\n")).status, 400)
