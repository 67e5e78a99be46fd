"""Message parsing, serialisation, the stream framer and response building."""

from twisted.trial import unittest

from portaum_tx.sip.headers import Via
from portaum_tx.sip.message import (
    Request, Response, SipFramingError, SipParseError, StreamFramer, error_response_for,
    is_keepalive, make_response, parse_message, reason_phrase,
)

INVITE = (
    b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
    b"Via: SIP/2.0/UDP proxy.atlanta.com;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.com>\r\n"
    b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Record-Route: <sip:proxy.atlanta.com;lr>\r\n"
    b"Timestamp: 54\r\n"
    b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


class ParseTests(unittest.TestCase):
    def test_request(self):
        message = parse_message(INVITE)
        self.assertIsInstance(message, Request)
        self.assertTrue(message.is_request)
        self.assertEqual(message.method, "INVITE")
        self.assertEqual(message.uri.user, "bob")
        self.assertEqual(message.body, b"v=0\n")
        self.assertEqual(message.cseq.number, 314159)
        self.assertEqual(message.get("cseq"), "314159 INVITE")
        self.assertEqual(message.count("Via"), 2)
        self.assertEqual(message.serialize(), INVITE)

    def test_response_and_leading_crlf(self):
        message = parse_message(b"\r\n\r\nSIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n")
        self.assertIsInstance(message, Response)
        self.assertEqual((message.status, message.reason), (180, "Ringing"))
        self.assertTrue(message.is_provisional)

    def test_bare_lf_tolerated(self):
        message = parse_message(INVITE.replace(b"\r\n", b"\n"))
        self.assertEqual(message.body, b"v=0\n")
        self.assertEqual(message.cseq.method, "INVITE")

    def test_trailing_octets_ignored(self):
        message = parse_message(INVITE + b"garbage")
        self.assertEqual(message.body, b"v=0\n")

    def test_no_content_length_takes_rest(self):
        data = INVITE.replace(b"Content-Length: 4\r\n", b"")
        self.assertEqual(parse_message(data).body, b"v=0\n")

    def test_errors(self):
        cases = [
            (b"", 400), (b"\r\n\r\n", 400), (b"INVITE sip:a@b SIP/3.0\r\n\r\n", 505),
            (b"SIP/2.1 200 OK\r\n\r\n", 505), (b"INVITE sip:a@b HTTP/1.1\r\n\r\n", 400),
            (b"INVITE sip:a@b\r\n\r\n", 400), (b"SIP/2.0 20 OK\r\n\r\n", 400),
            (b"SIP/2.0 700 OK\r\n\r\n", 400), (b"INV@TE sip:a@b SIP/2.0\r\n\r\n", 400),
            (b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n", 400),
            (b"INVITE sip:a@b SIP/2.0\r\n continuation\r\n\r\n", 400),
            (b"INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", 400),
            (INVITE.replace(b"Content-Length: 4", b"Content-Length: 5"), 400),
            (INVITE.replace(b"Content-Length: 4", b"Content-Length: four"), 400),
            (b"x" * 70000, 513),
        ]
        for data, status in cases:
            with self.assertRaises(SipParseError, msg=data[:40]) as ctx:
                parse_message(data)
            self.assertEqual(ctx.exception.status, status, data[:40])

    def test_size_limit(self):
        self.assertRaises(SipParseError, parse_message, INVITE, max_size=100)

    def test_keepalive(self):
        self.assertTrue(is_keepalive(b"\r\n\r\n"))
        self.assertFalse(is_keepalive(INVITE))


class BuildTests(unittest.TestCase):
    def test_build_and_serialize(self):
        request = Request("OPTIONS", "sip:carol@chicago.com", [
            ("Via", Via("UDP", "10.0.0.1", 5060, [("branch", "z9hG4bKx")])),
            ("f", "<sip:a@b>;tag=1"), ("t", "<sip:carol@chicago.com>"),
            ("i", "abc"), ("CSeq", "1 OPTIONS"), ("Max-Forwards", 70)],
            body=b"hello")
        self.assertEqual(request.headers[1], ("From", "<sip:a@b>;tag=1"))
        wire = request.serialize()
        self.assertTrue(wire.endswith(b"Content-Length: 5\r\n\r\nhello"))
        again = parse_message(wire)
        self.assertEqual(again.from_.tag, "1")
        self.assertEqual(again.top_via.branch, "z9hG4bKx")

    def test_content_length_rewritten(self):
        message = parse_message(INVITE)
        message.body = b"v=0\r\no=x\r\n"
        self.assertIn(b"Content-Length: 10\r\n", message.serialize())
        self.assertEqual(message.serialize().count(b"Content-Length"), 1)

    def test_header_editing_invalidates_cache(self):
        message = parse_message(INVITE)
        self.assertEqual(len(message.via), 2)
        message.add("Via", "SIP/2.0/TCP new.example.com;branch=z9hG4bKn", first=True)
        self.assertEqual(message.top_via.host, "new.example.com")
        self.assertEqual(len(message.via), 3)
        message.set("Max-Forwards", 69)
        self.assertEqual(message.max_forwards, 69)
        message.remove("Record-Route")
        self.assertEqual(message.record_route, ())
        message.set_values("Route", ["<sip:p1;lr>", "<sip:p2;lr>"])
        self.assertEqual([str(r.uri) for r in message.route], ["sip:p1;lr", "sip:p2;lr"])
        self.assertIn("route", message)
        self.assertNotIn("Record-Route", message)

    def test_parsed_message_leaves_little_for_the_collector(self):
        # A dialog keeps its INVITE for the whole call; what of it stays tracked by the
        # cyclic collector is walked by every full collection, which pauses media.
        import gc
        message = parse_message(INVITE)
        for name in ("Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards",
                     "Record-Route", "Route", "RSeq", "Session-Expires", "Require"):
            message.parsed(name)
        gc.collect()
        gc.collect()  # a tuple holding tuples is untracked once they are
        self.assertFalse(any(gc.is_tracked(entry) for entry in message.headers))
        self.assertFalse(any(gc.is_tracked(entries) for entries in message._index.values()))
        self.assertIs(message.parsed("RSeq"), message.parsed("Session-Expires"))
        self.assertEqual(message.parsed("RSeq"), ())
        self.assertFalse(gc.is_tracked(message.uri.params))
        self.assertFalse(gc.is_tracked(message.from_.params))
        self.assertFalse(gc.is_tracked(message.from_.uri.headers))
        # edits still work on the immutable entries
        message.from_.set_param("tag", "changed")
        self.assertEqual(message.from_.tag, "changed")
        message.uri.set_param("transport", "tcp")
        self.assertEqual(message.uri.transport, "tcp")

    def test_reason_phrase(self):
        self.assertEqual(reason_phrase(486), "Busy Here")
        self.assertEqual(reason_phrase(499), "Bad Request")
        self.assertEqual(Response(299).reason, "OK")
        self.assertEqual(Response(400, "a\r\nInjected: 1").start_line(), "SIP/2.0 400 a  Injected: 1")


class MakeResponseTests(unittest.TestCase):
    def test_copies_rfc3261_8_2_6(self):
        request = parse_message(INVITE)
        response = make_response(request, 180, to_tag="bobtag",
                                 headers=[("Contact", "<sip:bob@192.0.2.4>")])
        self.assertEqual(response.get_all("Via"), request.get_all("Via"))
        self.assertEqual(response.get("From"), request.get("From"))
        self.assertEqual(response.to.tag, "bobtag")
        self.assertEqual(response.call_id, request.call_id)
        self.assertEqual(response.cseq, request.cseq)
        self.assertEqual(response.get("Record-Route"), "<sip:proxy.atlanta.com;lr>")
        self.assertIsNone(response.get("Timestamp"))
        self.assertEqual(response.contact[0].uri.host, "192.0.2.4")

    def test_trying_no_tag_keeps_timestamp(self):
        response = make_response(parse_message(INVITE), 100, to_tag="t")
        self.assertIsNone(response.to.tag)
        self.assertEqual(response.get("Timestamp"), "54")

    def test_existing_tag_kept(self):
        request = parse_message(INVITE.replace(b"To: Bob <sip:bob@biloxi.com>",
                                               b"To: Bob <sip:bob@biloxi.com>;tag=old"))
        self.assertEqual(make_response(request, 200, to_tag="new").to.tag, "old")

    def test_error_response_for_unparseable(self):
        data = INVITE.replace(b"Content-Length: 4", b"Content-Length: 400")
        with self.assertRaises(SipParseError) as ctx:
            parse_message(data)
        response = error_response_for(data, ctx.exception)
        self.assertEqual(response.status, 400)
        self.assertEqual(response.cseq.number, 314159)
        self.assertIsNone(error_response_for(b"SIP/2.0 200 OK\r\n\r\n", ctx.exception))
        self.assertIsNone(error_response_for(b"INVITE sip:a@b SIP/2.0\r\n\r\n", ctx.exception))


class FramerTests(unittest.TestCase):
    def test_byte_by_byte(self):
        framer = StreamFramer()
        out = []
        for i in range(len(INVITE) * 2):
            out.extend(framer.feed((INVITE * 2)[i:i + 1]))
        self.assertEqual(len(out), 2)
        self.assertTrue(all(m.body == b"v=0\n" for m in out))
        self.assertEqual(framer.buffered, 0)

    def test_keepalives(self):
        pings = []
        framer = StreamFramer(on_keepalive=lambda: pings.append(1))
        out = framer.feed(b"\r\n\r\n" + INVITE + b"\r\n\r\n\r\n\r\n" + INVITE[:10])
        self.assertEqual(len(out), 1)
        self.assertEqual(len(pings), 3)
        out = framer.feed(INVITE[10:])
        self.assertEqual(len(out), 1)

    def test_pong_between_messages(self):
        framer = StreamFramer()
        out = framer.feed(b"\r\n" + INVITE + b"\r\n")
        self.assertEqual(len(out), 1)
        self.assertEqual(len(framer.feed(INVITE)), 1)

    def test_missing_content_length_means_empty_body(self):
        framer = StreamFramer()
        data = INVITE.replace(b"Content-Length: 4\r\n", b"")
        out = framer.feed(data)
        self.assertEqual(out[0].body, b"")

    def test_header_limit(self):
        framer = StreamFramer(max_header_bytes=1000)
        framer.feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X: " + b"a" * 900)
        with self.assertRaises(SipFramingError) as ctx:
            framer.feed(b"a" * 200)
        self.assertEqual(ctx.exception.status, 513)
        self.assertEqual(framer.buffered, 0)

    def test_body_limit(self):
        framer = StreamFramer(max_body_bytes=100)
        with self.assertRaises(SipFramingError):
            framer.feed(INVITE.replace(b"Content-Length: 4", b"Content-Length: 101"))

    def test_bad_length_is_framing_error(self):
        for bad in (b"Content-Length: -1", b"Content-Length: 4x", b"Content-Length: 4\r\nl: 5"):
            self.assertRaises(SipFramingError, StreamFramer().feed,
                              INVITE.replace(b"Content-Length: 4", bad))

    def test_unparseable_message_does_not_break_stream(self):
        framer = StreamFramer()
        bad = b"INVITE sip:a@b SIP/9.0\r\nContent-Length: 2\r\n\r\nxx"
        out = framer.feed(bad + INVITE)
        self.assertIsInstance(out[0], SipParseError)
        self.assertEqual(out[0].status, 505)
        self.assertEqual(out[0].raw, bad)
        self.assertIsInstance(out[1], Request)


class BodyTests(unittest.TestCase):
    SIPI = (
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP gw;branch=z9hG4bK1\r\nFrom: <sip:a@gw>;tag=1\r\nTo: <sip:bob@example.com>\r\n"
        b"Call-ID: i\r\nCSeq: 1 INVITE\r\n"
        b"Content-Type: multipart/mixed;boundary=unique-boundary-1\r\n"
        b"MIME-Version: 1.0\r\n\r\n"
        b"--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n"
        b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n\r\n"
        b"--unique-boundary-1\r\nContent-Type: application/ISUP;version=itu-t92+\r\n"
        b"Content-Disposition: signal; handling=optional\r\n\r\n\x01\x00\x49\x00\r\n"
        b"--unique-boundary-1--\r\n"
    )

    def test_sdp_inside_multipart(self):
        message = parse_message(self.SIPI)
        self.assertEqual(message.body_part("application/sdp"),
                         b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n")
        self.assertEqual(message.body_part("application/isup"), b"\x01\x00\x49\x00")
        self.assertIsNone(message.body_part("text/plain"))

    def test_plain_body(self):
        message = parse_message(INVITE)
        self.assertEqual(message.body_part("application/sdp"), b"v=0\n")
        self.assertIsNone(message.body_part("text/plain"))

    def test_copy_is_independent(self):
        message = parse_message(INVITE)
        clone = message.copy()
        clone.set("CSeq", "314160 INVITE")
        clone.uri.set_param("transport", "tcp")
        self.assertEqual(message.cseq.number, 314159)
        self.assertEqual(clone.cseq.number, 314160)
        self.assertEqual(str(message.uri), "sip:bob@biloxi.com")
