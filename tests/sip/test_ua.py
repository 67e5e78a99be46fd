"""The user agent over a fake UDP socket and a task.Clock: UAS call flows, in-dialog
requests, validation responses, CANCEL, re-INVITE, session timers, OPTIONS, 503."""

from twisted.internet import defer
from twisted.trial import unittest

from portaum_tx.sip.message import Request
from portaum_tx.sip.ua import ALLOWED_METHODS

from tests.sip.uahelpers import OFFER, PHONE, Harness, in_dialog, invite


class IncomingCall(unittest.TestCase):
    def setUp(self):
        self.h = Harness()

    def start_call(self, **kw):
        self.h.feed(invite(**kw))
        self.assertEqual(len(self.h.incoming), 1)
        return self.h.incoming[0]

    def answer(self):
        session = self.start_call()
        answered = defer.ensureDeferred(session.answer())
        ok = self.h.responses()[-1]
        self.assertEqual(ok.status, 200)
        self.h.feed(in_dialog("ACK", ok.to.tag, 1, "z9hG4bKack1"))
        self.assertTrue(answered.called)
        return session, ok

    def test_invite_becomes_session_with_identity(self):
        session = self.start_call(extra="Diversion: <sip:2002@example.com>;reason=user-busy\r\n")
        self.assertEqual((session.called, session.calling, session.calling_name),
                         ("800", "1001", "Alice"))
        self.assertEqual((session.original_called, session.diversion_reason), ("2002", "busy"))
        self.assertEqual(self.h.ua.active_calls, 1)

    def test_answer_sends_sdp_and_waits_for_ack(self):
        session = self.start_call()
        session.ring()
        answered = defer.ensureDeferred(session.answer())
        responses = self.h.responses()
        self.assertEqual([r.status for r in responses], [180, 200])
        ok = responses[1]
        self.assertEqual(ok.to.tag, responses[0].to.tag)
        self.assertIn(b"m=audio 40000 RTP/AVP 0 101", ok.body)
        self.assertEqual(ok.contact[0].uri.host, "192.0.2.1")
        self.assertFalse(answered.called)
        # Without the ACK the 2xx is retransmitted after T1 (RFC 3261 13.3.1.4).
        self.h.clock.advance(0.5)
        self.assertEqual([r.status for r in self.h.responses()], [200])
        self.h.feed(in_dialog("ACK", ok.to.tag, 1, "z9hG4bKack1"))
        self.assertTrue(answered.called)
        self.h.clock.advance(4)
        self.assertEqual(self.h.responses(), [])
        rtp = self.h.media.sessions[0]
        self.assertTrue(rtp.started)
        self.assertEqual(rtp.params.remote_address, ("192.0.2.7", 30000))
        self.assertEqual((rtp.params.payload_type, rtp.params.telephone_event_pt), (0, 101))

    def test_responses_follow_rport_to_the_source(self):
        self.start_call()
        [(message, address)] = self.h.take()[:1] or [(None, None)]
        self.h.clock.advance(0.3)  # 100 Trying after its delay
        sent = self.h.take()
        self.assertEqual(sent[0][0].status, 100)
        self.assertEqual(sent[0][1], PHONE)
        self.assertEqual(sent[0][0].top_via.received, "192.0.2.7")
        self.assertEqual(sent[0][0].top_via.rport, 5062)

    def test_bye_from_caller_ends_call(self):
        session, ok = self.answer()
        ended = []
        session.on_ended.append(ended.append)
        self.h.feed(in_dialog("BYE", ok.to.tag, 2, "z9hG4bKbye1"))
        self.assertEqual([r.status for r in self.h.responses()], [200])
        self.assertEqual(ended, ["bye"])
        self.assertEqual(self.h.media.sessions[0].closed, "hangup")
        self.assertEqual(self.h.ua.active_calls, 0)
        # A later request in the dead dialog is 481.
        self.h.feed(in_dialog("INFO", ok.to.tag, 3, "z9hG4bKinfo9"))
        self.assertEqual([r.status for r in self.h.responses()], [481])

    def test_local_hangup_sends_bye_to_the_flow(self):
        session, ok = self.answer()
        self.successResultOf(session.hangup())
        [(bye, address)] = self.h.take()
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(address, PHONE)
        self.assertEqual(str(bye.uri), "sip:1001@10.0.0.7:5062")
        self.assertEqual(bye.to.tag, "alice1")
        self.assertEqual(bye.from_.tag, ok.to.tag)
        self.assertEqual(session.end_reason, "local")

    def test_cancel_before_answer(self):
        session = self.start_call()
        ended = []
        session.on_ended.append(ended.append)
        self.h.feed(invite(method="CANCEL", body=b"").replace(b"CSeq: 1 CANCEL", b"CSeq: 1 CANCEL"))
        statuses = sorted(r.status for r in self.h.responses())
        self.assertEqual(statuses, [200, 487])
        self.assertEqual(ended, ["cancel"])

    def test_cancel_for_nothing_is_481(self):
        self.h.feed(invite(method="CANCEL", body=b"", call_id="nothing"))
        self.assertEqual([r.status for r in self.h.responses()], [481])

    def test_reject_with_code(self):
        session = self.start_call()
        session.reject(486)
        [busy] = self.h.responses()
        self.assertEqual(busy.status, 486)
        self.assertIsNotNone(busy.to.tag)
        self.assertEqual(session.end_reason, "rejected")

    def test_unacceptable_offer_is_488(self):
        offer = OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 18").replace(
            b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n", b"")
        self.h.feed(invite(body=offer))
        self.assertEqual([r.status for r in self.h.responses()], [488])
        self.assertEqual(self.h.incoming, [])
        self.assertEqual(self.h.media.sessions[0].closed, "rejected")

    def test_require_unknown_extension_is_420(self):
        self.h.feed(invite(extra="Require: 100rel, foo\r\n"))
        [response] = self.h.responses()
        self.assertEqual(response.status, 420)
        self.assertEqual(response.get("Unsupported"), "100rel, foo")

    def test_max_calls_gives_503_with_retry_after(self):
        h = Harness(max_calls=1)
        h.feed(invite())
        h.feed(invite(call_id="call-2", branch="z9hG4bKinv2"))
        [response] = h.responses()
        self.assertEqual(response.status, 503)
        self.assertEqual(response.get("Retry-After"), "30")

    def test_options_lists_capabilities(self):
        self.h.feed(invite(method="OPTIONS", body=b"", call_id="opt"))
        [response] = self.h.responses()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.get("Allow"), ", ".join(ALLOWED_METHODS))
        self.assertEqual(response.get("Accept"), "application/sdp")
        self.assertIn("timer", response.get("Supported"))

    def test_unknown_method_is_501_register_405(self):
        self.h.feed(invite(method="FOO", body=b"", call_id="x1"))
        self.h.feed(invite(method="REGISTER", body=b"", call_id="x2", branch="z9hG4bKreg"))
        self.assertEqual([r.status for r in self.h.responses()], [501, 405])

    def test_max_forwards_zero_is_483(self):
        self.h.feed(invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 0"))
        self.assertEqual([r.status for r in self.h.responses()], [483])

    def test_garbage_datagram_is_dropped_without_harm(self):
        self.h.feed(b"\x00\xffgarbage" * 50)
        self.h.feed(b"INVITE sip:x SIP/2.0\r\nVia: broken\r\n\r\n")
        self.assertEqual(self.h.transport.garbage_received, 1)
        # The second parses but lacks what a transaction needs: 400, statelessly, to its source.
        [(response, address)] = self.h.take()
        self.assertEqual((response.status, address), (400, ("192.0.2.7", 5062)))
        self.start_call()

    def test_reinvite_hold_and_glare(self):
        session, ok = self.answer()
        tag = ok.to.tag
        hold = OFFER.replace(b"a=ptime:20", b"a=ptime:20\r\na=sendonly").replace(b"o=alice 1 1", b"o=alice 1 2")
        self.h.feed(in_dialog("INVITE", tag, 2, "z9hG4bKre1", body=hold))
        [reok] = self.h.responses()
        self.assertEqual(reok.status, 200)
        self.assertIn(b"a=recvonly", reok.body)
        self.assertIn(b"o=portaum", reok.body)
        self.assertTrue(session.hold)
        self.assertEqual(self.h.media.sessions[0].params.direction, "recvonly")
        # A second offer before the ACK of the first answer is still fine once ACKed.
        self.h.feed(in_dialog("ACK", tag, 2, "z9hG4bKack2"))
        # An old CSeq is refused.
        self.h.feed(in_dialog("UPDATE", tag, 1, "z9hG4bKupd0", body=OFFER))
        self.assertEqual([r.status for r in self.h.responses()], [500])

    def test_reinvite_with_unacceptable_offer_keeps_the_call(self):
        session, ok = self.answer()
        bad = OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 18")
        self.h.feed(in_dialog("INVITE", ok.to.tag, 2, "z9hG4bKre1", body=bad.replace(
            b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n", b"")))
        self.assertEqual([r.status for r in self.h.responses()], [488])
        self.assertFalse(session.is_ended)

    def test_info_dtmf_goes_to_listeners(self):
        session, ok = self.answer()
        got = []
        session.on_dtmf.append(lambda ctype, body: got.append((ctype, body)))
        self.h.feed(in_dialog("INFO", ok.to.tag, 2, "z9hG4bKinfo1",
                              body=b"Signal=5\r\nDuration=160\r\n",
                              content_type="application/dtmf-relay"))
        self.assertEqual([r.status for r in self.h.responses()], [200])
        self.assertEqual(got, [("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n")])

    def test_session_timer_refresher_uac_ends_unrefreshed_call(self):
        session = self.start_call(extra="Supported: timer\r\nSession-Expires: 120;refresher=uac\r\n")
        defer.ensureDeferred(session.answer())
        ok = self.h.responses()[-1]
        self.assertEqual(ok.get("Session-Expires"), "120;refresher=uac")
        self.h.feed(in_dialog("ACK", ok.to.tag, 1, "z9hG4bKack1"))
        self.h.clock.advance(87)  # BYE 32 s before the 120 s expiry (RFC 4028 10)
        self.assertFalse(session.is_ended)
        self.h.clock.advance(2)
        self.assertEqual(session.end_reason, "session-expired")
        self.assertEqual([m.method for m, _ in self.h.take() if isinstance(m, Request)], ["BYE"])

    def test_session_interval_too_small_is_422(self):
        self.h.feed(invite(extra="Supported: timer\r\nSession-Expires: 30\r\n"))
        [response] = self.h.responses()
        self.assertEqual(response.status, 422)
        self.assertEqual(response.get("Min-SE"), "90")
