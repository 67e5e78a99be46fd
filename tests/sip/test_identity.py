"""Diversion (RFC 5806) and History-Info (RFC 7044 / RFC 4458) read from INVITEs."""

from twisted.trial import unittest

from portaum_tx.sip.identity import diversion_of, user_of
from portaum_tx.sip.message import parse_message
from portaum_tx.sip.uri import parse_uri

from tests.sip.uahelpers import invite


def diverted(extra):
    return diversion_of(parse_message(invite(extra=extra)))


class DiversionTests(unittest.TestCase):
    def test_not_diverted(self):
        self.assertEqual(diverted(""), (None, None))

    def test_diversion_reasons(self):
        for reason, expected in (("user-busy", "busy"), ("no-answer", "no-answer"),
                                 ("unconditional", "unconditional"),
                                 ("deflection", "unavailable"), ('"unavailable"', "unavailable"),
                                 ("follow-me", "unconditional"), ("strange", "unknown")):
            self.assertEqual(diverted("Diversion: <sip:2002@example.com>;reason=%s\r\n" % reason),
                             ("2002", expected), reason)

    def test_most_recent_diversion_first(self):
        self.assertEqual(diverted("Diversion: <tel:+15551000>;reason=no-answer,"
                                  " <sip:2002@example.com>;reason=user-busy\r\n"),
                         ("+15551000", "no-answer"))

    def test_history_info_cause_in_uri(self):
        self.assertEqual(diverted(
            "History-Info: <sip:2002@example.com>;index=1\r\n"
            "History-Info: <sip:vm@example.com;target=sip:2002%40example.com;cause=408>;index=1.1\r\n"),
            ("2002", "no-answer"))

    def test_history_info_reason_header(self):
        self.assertEqual(diverted(
            "History-Info: <sip:2002@example.com?Reason=SIP%3Bcause%3D486>;index=1,"
            " <sip:800@192.0.2.1>;index=1.1\r\n"), ("2002", "busy"))

    def test_history_info_to_the_called_number_is_not_a_diversion(self):
        self.assertEqual(diverted("History-Info: <sip:800@192.0.2.1>;index=1,"
                                  " <sip:800@192.0.2.1;cause=302>;index=1.1\r\n"), (None, None))

    def test_user_of(self):
        self.assertEqual(user_of(parse_uri("tel:+1-555-1000")), "+1-555-1000")
        self.assertEqual(user_of(parse_uri("sip:%32002@example.com")), "2002")
        self.assertEqual(user_of(None), "")
