"""SIP/SIPS/tel/opaque URI parsing, serialisation and comparison."""

from twisted.trial import unittest

from portaum_tx.sip.uri import (
    OpaqueURI, SipURI, SipURIError, TelURI, escape_user, parse_uri,
)


class SipURITests(unittest.TestCase):
    def test_full_uri(self):
        uri = parse_uri("sips:alice:secret@Example.COM:5061;transport=tcp;lr?Subject=hi&X=%20y")
        self.assertIsInstance(uri, SipURI)
        self.assertEqual(uri.scheme, "sips")
        self.assertTrue(uri.secure)
        self.assertEqual((uri.user, uri.password, uri.host, uri.port),
                         ("alice", "secret", "Example.COM", 5061))
        self.assertEqual(uri.transport, "tcp")
        self.assertTrue(uri.lr)
        self.assertEqual(uri.header_fields(), [("Subject", "hi"), ("X", " y")])

    def test_roundtrip_keeps_escapes(self):
        text = "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
        uri = parse_uri(text)
        self.assertEqual(str(uri), text)
        self.assertEqual(uri.user_unescaped, "caller")
        self.assertTrue(uri.has_param("lr"))
        self.assertEqual(uri.param("name"), "value%41")

    def test_ipv6_host(self):
        uri = parse_uri("sip:bob@[2001:db8::10]:5060;maddr=[2001:db8::1]")
        self.assertEqual(uri.host, "2001:db8::10")
        self.assertEqual(uri.port, 5060)
        self.assertEqual(uri.hostport, "[2001:db8::10]:5060")
        self.assertEqual(str(uri), "sip:bob@[2001:db8::10]:5060;maddr=[2001:db8::1]")
        self.assertEqual(parse_uri("sip:[::ffff:192.0.2.1]").host, "::ffff:192.0.2.1")

    def test_user_with_semicolons_and_at(self):
        uri = parse_uri("sip:user;par=u%40example.net@example.com")
        self.assertEqual(uri.user, "user;par=u%40example.net")
        self.assertEqual(uri.host, "example.com")
        self.assertEqual(uri.params, ())

    def test_escaped_user_in_request_uri(self):
        uri = parse_uri("sip:sips%3Auser%40example.com@example.net")
        self.assertEqual(uri.user_unescaped, "sips:user@example.com")
        self.assertEqual(uri.host, "example.net")

    def test_no_user(self):
        uri = parse_uri("sip:example.com")
        self.assertIsNone(uri.user)
        self.assertEqual(str(uri), "sip:example.com")

    def test_equality_rfc3261(self):
        self.assertEqual(parse_uri("sip:%61lice@atlanta.com;transport=TCP"),
                         parse_uri("sip:alice@AtLanTa.CoM;Transport=tcp"))
        self.assertNotEqual(parse_uri("SIP:ALICE@AtLanTa.CoM;Transport=udp"),
                            parse_uri("sip:alice@AtLanTa.CoM;Transport=UDP"))
        self.assertNotEqual(parse_uri("sip:bob@biloxi.com"), parse_uri("sip:bob@biloxi.com:5060"))
        self.assertNotEqual(parse_uri("sip:bob@biloxi.com"),
                            parse_uri("sip:bob@biloxi.com;transport=udp"))
        self.assertEqual(parse_uri("sip:carol@chicago.com"),
                         parse_uri("sip:carol@chicago.com;newparam=5"))
        self.assertNotEqual(parse_uri("sip:carol@chicago.com;newparam=5"),
                            parse_uri("sip:carol@chicago.com;newparam=6"))
        self.assertEqual(parse_uri("sip:a@b?X=1"), parse_uri("sip:a@b?x=1"))

    def test_set_and_remove_param(self):
        uri = parse_uri("sip:a@b;transport=udp")
        uri.set_param("transport", "tcp")
        uri.set_param("lr")
        self.assertEqual(str(uri), "sip:a@b;transport=tcp;lr")
        uri.remove_param("TRANSPORT")
        self.assertEqual(str(uri), "sip:a@b;lr")

    def test_build_and_escape(self):
        uri = SipURI("example.com", escape_user("I have spaces"), 5070)
        self.assertEqual(str(uri), "sip:I%20have%20spaces@example.com:5070")
        self.assertEqual(parse_uri(str(uri)).user_unescaped, "I have spaces")

    def test_rejects(self):
        for bad in ["", "sip:", "nocolon", "sip:user@", "sip:@host", "sip:a b@host",
                    "sip:host:99999", "sip:host:5x", "sip:[2001:db8::1", "sip:host;",
                    "sip:host;;lr", "sip:host;a=", "sip:user@ho st", "sip:%zz@host",
                    "sip:[1:2:3:4:5:6:7:8:9]", "sip:300.1.1.1", "sip:host?",
                    "1sip:x", "sip:<a@b>", "sip:a@b\x00"]:
            self.assertRaises(SipURIError, parse_uri, bad)

    def test_error_is_value_error(self):
        self.assertTrue(issubclass(SipURIError, ValueError))


class OtherSchemeTests(unittest.TestCase):
    def test_tel(self):
        uri = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
        self.assertIsInstance(uri, TelURI)
        self.assertEqual(uri.digits, "+12015550123")
        self.assertTrue(uri.is_global)
        self.assertEqual(uri.param("phone-context"), "example.com")
        self.assertEqual(str(uri), "tel:+1-201-555-0123;phone-context=example.com")
        self.assertEqual(uri, parse_uri("tel:+1.201.555.0123;PHONE-CONTEXT=example.com"))
        self.assertRaises(SipURIError, parse_uri, "tel:+1 555")

    def test_opaque(self):
        for text in ["nobodyKnowsThisScheme:totallyopaquecontent",
                     "soap.beep://192.0.2.103:3002", "isbn:2983792873", "http://www.example.com"]:
            uri = parse_uri(text)
            self.assertIsInstance(uri, OpaqueURI)
            self.assertFalse(uri.is_sip)
            self.assertEqual(str(uri), text)
        self.assertEqual(parse_uri("soap.beep://x").scheme, "soap.beep")
