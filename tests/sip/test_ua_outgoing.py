"""Outgoing legs over a fake UDP socket and a task.Clock: INVITE through the outbound
proxy, Digest answers to 401/407 (MD5 and SHA-256), early media, answer and ACK, busy,
CANCEL on timeout or when the caller gives up, a late 2xx after CANCEL, BYE both ways."""

from twisted.internet import defer
from twisted.trial import unittest

from portaum_tx.sip.digest import DigestServer, VerifyResult, compute_ha1, parse_credentials
from portaum_tx.sip.message import Request, make_response
from portaum_tx.sip.ua import Credentials, DialError

from tests.sip.uahelpers import Harness

PROXY = ("192.0.2.50", 5060)
ANSWER = (b"v=0\r\no=far 1 1 IN IP4 192.0.2.60\r\ns=-\r\nc=IN IP4 192.0.2.60\r\nt=0 0\r\n"
          b"m=audio 50000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
          b"a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n")


class OutgoingLeg(unittest.TestCase):
    def setUp(self):
        self.h = Harness(outbound_proxy="sip:192.0.2.50:5060",
                         credentials=Credentials("trunkuser", "trunkpass"))

    def dial(self, **kw):
        d = defer.ensureDeferred(self.h.ua.dial("5551234", caller_id="800", **kw))
        [(invite, address)] = self.h.take()
        self.assertEqual(address, PROXY)
        return d, invite

    def respond(self, request, status, tag="far1", body=b"", headers=()):
        extra = [("Contact", "<sip:5551234@192.0.2.60:5070>")] + list(headers)
        if body:
            extra.append(("Content-Type", "application/sdp"))
        self.h.feed(make_response(request, status, to_tag=tag, headers=extra, body=body).serialize(),
                    source=PROXY)

    def requests(self):
        return [(m, a) for m, a in self.h.take() if isinstance(m, Request)]

    def test_invite_through_proxy_early_media_answer_and_ack(self):
        d, invite = self.dial()
        self.assertEqual(str(invite.uri), "sip:5551234@192.0.2.50:5060")
        self.assertEqual(invite.from_.uri.user, "800")
        self.assertIn(b"m=audio 40000 RTP/AVP 0 8 101", invite.body)
        self.assertEqual(invite.get("Supported"), "timer")
        self.respond(invite, 100, tag=None)
        self.respond(invite, 183, body=ANSWER)
        rtp = self.h.media.sessions[0]
        self.assertTrue(rtp.started)                     # early media flows
        self.assertEqual(rtp.params.payload_type, 8)
        self.assertFalse(d.called)
        self.respond(invite, 200, body=ANSWER)
        leg = self.successResultOf(d)
        [(ack, address)] = self.requests()
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(str(ack.uri), "sip:5551234@192.0.2.60:5070")
        self.assertEqual(address, PROXY)   # every request of the leg goes via the trunk
        self.assertEqual(ack.cseq.number, invite.cseq.number)
        self.assertEqual((leg.state, leg.negotiation.audio.codec), ("confirmed", "PCMA"))
        self.assertEqual(rtp.params.remote_address, ("192.0.2.60", 50000))
        # The far end hangs up.
        bye = leg._request("BYE")  # shape of an in-dialog request, reversed below
        bye_from_far = Request("BYE", "sip:portaum@192.0.2.1:5060", [
            ("Via", "SIP/2.0/UDP 192.0.2.60:5070;branch=z9hG4bKfarbye"),
            ("From", bye.get("To")), ("To", bye.get("From")), ("Call-ID", bye.call_id),
            ("CSeq", "1 BYE"), ("Max-Forwards", "70")])
        self.h.feed(bye_from_far.serialize(), source=("192.0.2.60", 5070))
        self.assertEqual([m.status for m, _ in self.h.take()], [200])
        self.assertEqual(leg.end_reason, "bye")
        self.assertEqual(self.h.ua.active_calls, 0)

    def test_proxy_challenge_answered_with_digest(self):
        server = DigestServer("trunk.example", b"s", algorithms=("SHA-256", "MD5"),
                              now=self.h.clock.seconds)
        d, invite = self.dial()
        self.respond(invite, 407, headers=[("Proxy-Authenticate", str(c))
                                           for c in server.challenge()])
        [(ack, _)] = self.requests()
        self.assertEqual(ack.method, "ACK")           # the 407 is acknowledged first
        self.h.clock.advance(0)
        [(retry, address)] = self.requests()
        self.assertEqual((retry.method, retry.cseq.number, address), ("INVITE", 2, PROXY))
        self.assertNotEqual(retry.top_via.branch, invite.top_via.branch)
        credentials = parse_credentials(retry.get("Proxy-Authorization"))
        self.assertEqual((credentials.username, credentials.algorithm), ("trunkuser", "SHA-256"))
        ha1 = {a: compute_ha1("trunkuser", "trunk.example", "trunkpass", a)
               for a in ("MD5", "SHA-256")}
        self.assertIs(server.verify(credentials, "INVITE", ha1), VerifyResult.OK)
        self.respond(retry, 200, body=ANSWER)
        self.assertEqual(self.successResultOf(d).state, "confirmed")

    def test_repeated_challenge_gives_up(self):
        d, invite = self.dial()
        challenge = ("WWW-Authenticate", 'Digest realm="r", nonce="n1", algorithm=MD5')
        self.respond(invite, 401, headers=[challenge])
        self.h.clock.advance(0)
        retries = [m for m, _ in self.requests() if m.method == "INVITE"]
        self.respond(retries[0], 401, headers=[challenge])
        self.h.clock.advance(0)
        retries = [m for m, _ in self.requests() if m.method == "INVITE"]
        self.respond(retries[0], 401, headers=[challenge])
        failure = self.failureResultOf(d, DialError)
        self.assertEqual((failure.value.reason, failure.value.code), ("failed", 401))

    def test_busy(self):
        d, invite = self.dial()
        self.respond(invite, 486)
        failure = self.failureResultOf(d, DialError)
        self.assertEqual((failure.value.reason, failure.value.code), ("busy", 486))
        self.assertEqual(self.h.media.sessions[0].closed, "hangup")
        self.assertEqual(self.h.ua.active_calls, 0)

    def test_no_answer_cancels(self):
        d, invite = self.dial(timeout=20)
        self.respond(invite, 180)
        self.h.clock.advance(20)
        [(cancel, address)] = self.requests()
        self.assertEqual((cancel.method, address), ("CANCEL", PROXY))
        self.assertEqual(cancel.top_via.branch, invite.top_via.branch)
        self.h.feed(make_response(cancel, 200).serialize(), source=PROXY)
        self.respond(invite, 487)
        failure = self.failureResultOf(d, DialError)
        self.assertEqual((failure.value.reason, failure.value.code), ("no-answer", 487))

    def test_caller_giving_up_cancels_and_a_late_answer_is_hung_up(self):
        d, invite = self.dial()
        self.respond(invite, 180)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        [(cancel, _)] = self.requests()
        self.assertEqual(cancel.method, "CANCEL")
        # The far end answered anyway: ACK, then BYE.
        self.respond(invite, 200, body=ANSWER)
        self.assertEqual([m.method for m, _ in self.requests()], ["ACK", "BYE"])

    def test_local_hangup_sends_bye(self):
        d, invite = self.dial()
        self.respond(invite, 200, body=ANSWER)
        leg = self.successResultOf(d)
        self.h.take()
        self.successResultOf(leg.hangup())
        [(bye, address)] = self.requests()
        self.assertEqual((bye.method, address), ("BYE", PROXY))
        self.assertEqual(str(bye.uri), "sip:5551234@192.0.2.60:5070")
        self.assertEqual(bye.to.tag, "far1")
        self.assertEqual(bye.cseq.number, invite.cseq.number + 1)

    def test_number_without_proxy_is_refused(self):
        h = Harness()
        d = defer.ensureDeferred(h.ua.dial("5551234"))
        self.assertEqual(self.failureResultOf(d, DialError).value.reason, "failed")
