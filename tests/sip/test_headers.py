"""Header value grammar: Via, name-addr, lists, auth, RFC 4028/7044/5806 headers."""

from twisted.trial import unittest

from portaum_tx.sip.headers import (
    AuthHeader, CSeq, MediaType, NameAddr, RetryAfter, SessionExpires, SipParseError, Via,
    canonical_name, check_date, is_multi_value, parse_header_value, quote, split_values, unquote,
)
from portaum_tx.sip.uri import SipURI


class NameTests(unittest.TestCase):
    def test_compact_forms(self):
        expected = {"i": "Call-ID", "m": "Contact", "f": "From", "t": "To", "v": "Via",
                    "l": "Content-Length", "c": "Content-Type", "k": "Supported",
                    "e": "Content-Encoding", "s": "Subject", "o": "Event",
                    "u": "Allow-Events", "r": "Refer-To", "b": "Referred-By",
                    "x": "Session-Expires", "y": "Identity", "V": "Via", "CALL-id": "Call-ID"}
        for short, full in expected.items():
            self.assertEqual(canonical_name(short), full)
        self.assertEqual(canonical_name("X-Custom"), "X-Custom")

    def test_multi_value(self):
        self.assertTrue(is_multi_value("v"))
        self.assertTrue(is_multi_value("Record-Route"))
        self.assertFalse(is_multi_value("To"))
        self.assertFalse(is_multi_value("WWW-Authenticate"))


class SplitTests(unittest.TestCase):
    def test_commas_in_quotes_and_brackets(self):
        self.assertEqual(
            split_values('"Doe, John" <sip:a@b>;q=1, <sip:c@d;x=1,2>, sip:e@f'),
            ['"Doe, John" <sip:a@b>;q=1', '<sip:c@d;x=1,2>', 'sip:e@f'])
        self.assertEqual(split_values(r'"a\", b" <sip:x@y>'), [r'"a\", b" <sip:x@y>'])

    def test_unterminated_quote(self):
        self.assertRaises(SipParseError, split_values, '"abc <sip:a@b>')

    def test_quote_roundtrip(self):
        self.assertEqual(unquote(quote('say "hi" \\ bye')), 'say "hi" \\ bye')


class ViaTests(unittest.TestCase):
    def test_parse_with_lws(self):
        via = Via.parse("SIP  /   2.0\t/UDP   192.0.2.2 : 5062 ; branch = z9hG4bKabc ;rport")
        self.assertEqual((via.transport, via.host, via.port), ("UDP", "192.0.2.2", 5062))
        self.assertEqual(via.branch, "z9hG4bKabc")
        self.assertTrue(via.has_magic_cookie)
        self.assertIs(via.rport, True)
        self.assertFalse(via.reliable)

    def test_received_rport(self):
        via = Via.parse("SIP/2.0/TCP [2001:db8::5]:5070;branch=z9hG4bK1;received=2001:db8::9;rport=4000")
        self.assertEqual(via.host, "2001:db8::5")
        self.assertEqual(via.sent_by, "[2001:db8::5]:5070")
        self.assertEqual(via.rport, 4000)
        self.assertEqual(via.received, "2001:db8::9")
        self.assertTrue(via.reliable)

    def test_build_and_modify(self):
        via = Via("udp", "10.0.0.1", 5060, [("branch", "z9hG4bKx"), ("rport", None)])
        via.set_param("received", "192.0.2.7")
        via.set_param("rport", "1234")
        self.assertEqual(str(via), "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;rport=1234;received=192.0.2.7")
        self.assertEqual(str(Via.parse(str(via))), str(via))

    def test_rfc2543_without_branch(self):
        via = Via.parse("SIP/2.0/UDP iftgw.example.com")
        self.assertIsNone(via.branch)
        self.assertFalse(via.has_magic_cookie)

    def test_rejects(self):
        for bad in ["", "SIP/2.0/UDP", "SIP/2.0 host", "SIP/3.0/UDP host", "SIP/2.0/UDP host;;",
                    "SIP/2.0/UDP host;branch=", "SIP/2.0/UDP ho st", "SIP/2.0/UDP host:99999",
                    "SIP/2.0/UDP host;rport=x", "SIP/2.0/UDP host;branch=a b"]:
            self.assertRaises(SipParseError, Via.parse, bad)

    def test_multiple_vias_in_one_line(self):
        vias = parse_header_value("v", "SIP/2.0/UDP a;branch=z9hG4bK1 , SIP/2.0/TCP b;branch=z9hG4bK2")
        self.assertEqual([v.host for v in vias], ["a", "b"])
        self.assertRaises(SipParseError, parse_header_value, "Via", "SIP/2.0/UDP a,,")


class NameAddrTests(unittest.TestCase):
    def test_quoted_display(self):
        value = NameAddr.parse('"Alice \\"A\\" Smith" <sip:alice@atlanta.com>;tag=1928301774')
        self.assertEqual(value.display, 'Alice "A" Smith')
        self.assertEqual(value.tag, "1928301774")
        self.assertEqual(str(value), '"Alice \\"A\\" Smith" <sip:alice@atlanta.com>;tag=1928301774')

    def test_token_display_and_addr_spec(self):
        value = NameAddr.parse("Bob   Smith<sip:bob@biloxi.com>")
        self.assertEqual(value.display, "Bob Smith")
        value = NameAddr.parse("sip:bob@biloxi.com;tag=xyz")
        self.assertIsNone(value.display)
        self.assertEqual(value.tag, "xyz")
        self.assertEqual(str(value.uri), "sip:bob@biloxi.com")

    def test_contact_params(self):
        contact = NameAddr.parse("<sip:u@h;transport=tcp>;expires=3600;q=0.7;+sip.instance=\"<urn:x>\"")
        self.assertEqual(contact.expires, 3600)
        self.assertEqual(contact.q, 0.7)
        self.assertEqual(contact.param("+sip.instance"), "<urn:x>")
        self.assertEqual(contact.uri.transport, "tcp")
        huge = NameAddr.parse("<sip:u@h>;expires=280297596632815")
        self.assertEqual(huge.expires, 2 ** 32 - 1)

    def test_wildcard(self):
        self.assertTrue(NameAddr.parse(" * ").wildcard)
        self.assertEqual(str(NameAddr.parse("*")), "*")

    def test_set_tag_and_build(self):
        value = NameAddr(SipURI("example.com", "bob"), "Bob, the builder")
        value.tag = "abc"
        self.assertEqual(str(value), '"Bob, the builder" <sip:bob@example.com>;tag=abc')
        self.assertEqual(NameAddr.parse(str(value)).display, "Bob, the builder")

    def test_history_info_and_diversion(self):
        items = parse_header_value(
            "History-Info",
            "<sip:bob@example.com?Reason=SIP%3Bcause%3D302>;index=1, <sip:vm@example.com>;index=1.1;rc=1")
        self.assertEqual([i.param("index") for i in items], ["1", "1.1"])
        self.assertEqual(items[0].uri.header_fields(), [("Reason", "SIP;cause=302")])
        div = parse_header_value("Diversion", '"Bob" <tel:+15551234>;reason=unconditional;counter=1')
        self.assertEqual(div[0].param("reason"), "unconditional")
        self.assertEqual(div[0].uri.digits, "+15551234")
        pai = parse_header_value("P-Asserted-Identity", '"x" <sip:+1555@h;user=phone>, <tel:+1555>')
        self.assertEqual(len(pai), 2)

    def test_rejects(self):
        for bad in ['"unterminated <sip:a@b>', "<sip:a@b", "< sip:a@b>", "Bell, Al <sip:a@b>",
                    "sip:a@b?x=y", "<sip:a@b> garbage", "<sip:a@b>;;", '"x" sip:a@b',
                    "<sip:>", ""]:
            self.assertRaises(SipParseError, NameAddr.parse, bad)


class OtherHeaderTests(unittest.TestCase):
    def test_cseq(self):
        self.assertEqual(CSeq.parse(" 0009 \t INVITE"), CSeq(9, "INVITE"))
        for bad in ["1", "x INVITE", "1 INVITE extra", "4294967296 INVITE", "-1 BYE"]:
            self.assertRaises(SipParseError, CSeq.parse, bad)

    def test_ints(self):
        self.assertEqual(parse_header_value("Max-Forwards", "70"), [70])
        self.assertRaises(SipParseError, parse_header_value, "Max-Forwards", "256")
        self.assertEqual(parse_header_value("l", " 0 "), [0])
        self.assertRaises(SipParseError, parse_header_value, "Content-Length", "-1")
        self.assertEqual(parse_header_value("Expires", "3600"), [3600])

    def test_content_type_and_accept(self):
        ctype = MediaType.parse("Application/SDP ; charset=utf-8")
        self.assertEqual(ctype.mimetype, "application/sdp")
        self.assertEqual(ctype.param("charset"), "utf-8")
        accept = parse_header_value("Accept", "application/sdp;level=1, */*;q=0.1")
        self.assertTrue(accept[1].matches("text/plain"))
        self.assertFalse(MediaType.parse("text/*").matches("application/sdp"))
        self.assertFalse(MediaType.parse("application/sdp;q=0").matches("application/sdp"))
        self.assertTrue(MediaType.parse("application/sdp;q=0.5").matches("application/sdp"))
        self.assertEqual(parse_header_value("Accept", ""), [])

    def test_token_lists(self):
        self.assertEqual(parse_header_value("k", "timer, 100rel ,replaces"),
                         ["timer", "100rel", "replaces"])
        self.assertEqual(parse_header_value("Supported", ""), [])
        self.assertRaises(SipParseError, parse_header_value, "Require", "a b")
        self.assertEqual(parse_header_value("Allow", "INVITE,ACK, BYE"), ["INVITE", "ACK", "BYE"])

    def test_event_and_subscription_state(self):
        event = parse_header_value("o", "message-summary;id=7")[0]
        self.assertEqual((event.value, event.param("id")), ("message-summary", "7"))
        state = parse_header_value("Subscription-State", "terminated;reason=timeout;retry-after=30")[0]
        self.assertEqual((state.value, state.param("reason"), state.param("retry-after")),
                         ("terminated", "timeout", "30"))

    def test_session_timer(self):
        value = SessionExpires.parse("1800;refresher=UAS")
        self.assertEqual((value.seconds, value.refresher), (1800, "uas"))
        self.assertEqual(str(SessionExpires(90, "uac")), "90;refresher=uac")
        self.assertEqual(parse_header_value("x", "600")[0].seconds, 600)
        self.assertEqual(parse_header_value("Min-SE", "90")[0].seconds, 90)
        self.assertRaises(SipParseError, SessionExpires.parse, "90;refresher=me")

    def test_retry_after(self):
        value = RetryAfter.parse("18000 (in a meeting);duration=3600")
        self.assertEqual((value.seconds, value.comment, value.param("duration")),
                         (18000, "in a meeting", "3600"))
        self.assertRaises(SipParseError, RetryAfter.parse, "949302838503028349304023988")

    def test_auth(self):
        challenge = AuthHeader.parse(
            'Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int", '
            'nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5')
        self.assertEqual(challenge.scheme, "Digest")
        self.assertEqual(challenge.params["qop"], "auth,auth-int")
        self.assertEqual(challenge.params["opaque"], "")
        self.assertEqual(challenge.params["algorithm"], "MD5")
        again = AuthHeader.parse(str(challenge))
        self.assertEqual(again.params, challenge.params)
        basic = AuthHeader.parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        self.assertEqual(basic.token68, "QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        self.assertRaises(SipParseError, AuthHeader.parse, 'Digest realm="x')

    def test_date(self):
        self.assertEqual(check_date("Sat, 13 Nov 2010 23:29:00 GMT"), "Sat, 13 Nov 2010 23:29:00 GMT")
        self.assertRaises(SipParseError, check_date, "Fri, 01 Jan 2010 16:00:00 EST")

    def test_call_id(self):
        self.assertEqual(parse_header_value("i", " abc@host "), ["abc@host"])
        self.assertRaises(SipParseError, parse_header_value, "Call-ID", "a b")

    def test_unknown_header_is_text(self):
        self.assertEqual(parse_header_value("X-Foo", " a, b "), ["a, b"])


class ExtensionHeaderTests(unittest.TestCase):
    def test_replaces(self):
        value = parse_header_value("Replaces", "98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff;early-only")[0]
        self.assertEqual((value.call_id, value.from_tag, value.to_tag, value.early_only),
                         ("98732@sip.example.com", "r33th4x0r", "ff87ff", True))
        self.assertRaises(SipParseError, parse_header_value, "Replaces", "abc;to-tag=1")

    def test_rack(self):
        value = parse_header_value("RAck", "776656 1 INVITE")[0]
        self.assertEqual((value.rseq, value.cseq, value.method), (776656, 1, "INVITE"))
        self.assertEqual(str(value), "776656 1 INVITE")
        self.assertRaises(SipParseError, parse_header_value, "RAck", "1 INVITE")


class StampSourceTests(unittest.TestCase):
    def test_received_and_rport(self):
        via = Via.parse("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;rport")
        via.stamp_source("203.0.113.9", 40123)
        self.assertEqual((via.received, via.rport), ("203.0.113.9", 40123))
        via = Via.parse("SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKa")
        via.stamp_source("203.0.113.9", 5060)
        self.assertIsNone(via.received)
        self.assertIsNone(via.rport)
        via = Via.parse("SIP/2.0/UDP pc.example.com;branch=z9hG4bKa")
        via.stamp_source("198.51.100.2", 5060)
        self.assertEqual(via.received, "198.51.100.2")


class LenientDisplayNameTests(unittest.TestCase):
    def test_unquoted_utf8_display_name(self):
        value = NameAddr.parse("Jürgen Müller <sip:jm@example.de>;tag=1")
        self.assertEqual(value.display, "Jürgen Müller")
        self.assertEqual(value.tag, "1")

    def test_ascii_separators_still_rejected(self):
        for bad in ["Müller, Jürgen <sip:jm@example.de>", "a@b <sip:jm@example.de>",
                    "x\udcff <sip:jm@example.de>"]:
            self.assertRaises(SipParseError, NameAddr.parse, bad)


class ResponseAddressTests(unittest.TestCase):
    def test_rules(self):
        cases = [
            ("SIP/2.0/UDP pc.example.com", ("pc.example.com", 5060)),
            ("SIP/2.0/TLS pc.example.com", ("pc.example.com", 5061)),
            ("SIP/2.0/UDP pc.example.com:5070;received=192.0.2.4", ("192.0.2.4", 5070)),
            ("SIP/2.0/UDP 10.0.0.5:5060;rport=40123;received=203.0.113.9", ("203.0.113.9", 40123)),
            ("SIP/2.0/UDP 10.0.0.5:5060;rport;received=203.0.113.9", ("203.0.113.9", 5060)),
            ("SIP/2.0/UDP h:5070;maddr=239.1.1.1;received=192.0.2.4", ("239.1.1.1", 5070)),
            ("SIP/2.0/UDP [2001:db8::1]:5062;received=2001:db8::9", ("2001:db8::9", 5062)),
        ]
        for text, expected in cases:
            self.assertEqual(Via.parse(text).response_address(), expected, text)
