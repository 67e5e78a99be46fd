"""Mid-call offers on an answered incoming call: our re-INVITE (hold), 491 glare and its
retry, session refresh when the caller does not do RFC 4028 (we refresh), UPDATE, and a
re-INVITE to T.38 accepted once the fax layer offers a T.38 port."""

from twisted.internet import defer
from twisted.trial import unittest

from portaum_tx.sip.message import Request, make_response

from tests.sip.uahelpers import OFFER, Harness, in_dialog, invite

T38_OFFER = (b"v=0\r\no=alice 1 3 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
             b"m=audio 0 RTP/AVP 0\r\nm=image 30002 udptl t38\r\na=T38FaxVersion:0\r\n"
             b"a=T38MaxBitRate:14400\r\na=T38FaxRateManagement:transferredTCF\r\n"
             b"a=T38FaxMaxDatagram:176\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n")
ANSWER_RECVONLY = OFFER.replace(b"a=ptime:20", b"a=ptime:20\r\na=recvonly").replace(
    b"RTP/AVP 0 8 101", b"RTP/AVP 0 101").replace(b"a=rtpmap:8 PCMA/8000\r\n", b"")


class MidCall(unittest.TestCase):
    def setUp(self):
        self.h = Harness(session_expires=600)
        self.h.feed(invite())
        [self.session] = self.h.incoming
        defer.ensureDeferred(self.session.answer())
        ok = self.h.responses()[-1]
        self.tag = ok.to.tag
        self.h.feed(in_dialog("ACK", self.tag, 1, "z9hG4bKack1"))

    def requests(self):
        return [m for m, _ in self.h.take() if isinstance(m, Request)]

    def test_hold_by_our_reinvite(self):
        d = defer.ensureDeferred(self.session.reoffer(hold=True))
        [reinvite] = self.requests()
        self.assertEqual((reinvite.method, reinvite.cseq.number), ("INVITE", 1))
        self.assertIn(b"a=sendonly", reinvite.body)
        self.assertEqual(reinvite.to.tag, "alice1")
        self.h.feed(make_response(reinvite, 200, headers=[
            ("Contact", "<sip:1001@10.0.0.7:5062>"), ("Content-Type", "application/sdp")],
            body=ANSWER_RECVONLY).serialize())
        negotiation = self.successResultOf(d)
        self.assertEqual(negotiation.audio.direction, "sendonly")
        [ack] = self.requests()
        self.assertEqual((ack.method, ack.cseq.number), ("ACK", 1))

    def test_glare_answers_491_and_retries(self):
        d = defer.ensureDeferred(self.session.reoffer(hold=True))
        [ours] = self.requests()
        # Their re-INVITE crosses ours: 491 for it.
        self.h.feed(in_dialog("INVITE", self.tag, 2, "z9hG4bKre2", body=OFFER))
        self.assertEqual([r.status for r in self.h.responses()], [491])
        # Ours gets 491 too: we try again after a pause.
        self.h.feed(make_response(ours, 491).serialize())
        [ack] = self.requests()                       # the transaction's ACK for the 491
        self.assertEqual((ack.method, ack.cseq.number), ("ACK", 1))
        self.h.clock.advance(1.0)
        [retry] = self.requests()
        self.assertEqual((retry.method, retry.cseq.number), ("INVITE", 2))
        self.h.feed(make_response(retry, 200, headers=[("Content-Type", "application/sdp")],
                                  body=ANSWER_RECVONLY).serialize())
        self.assertEqual(self.successResultOf(d).audio.direction, "sendonly")

    def test_no_offer_of_ours_before_the_ack_of_theirs(self):
        self.h.take()
        self.h.feed(in_dialog("INVITE", self.tag, 2, "z9hG4bKre2", body=OFFER))
        self.assertEqual([r.status for r in self.h.responses()], [200])
        d = defer.ensureDeferred(self.session.reoffer(hold=True))
        self.assertEqual(self.requests(), [])         # their answer is not yet ACKed
        self.h.feed(in_dialog("ACK", self.tag, 2, "z9hG4bKack2"))
        self.h.clock.advance(1.0)
        [ours] = self.requests()
        self.assertEqual(ours.method, "INVITE")
        self.h.feed(make_response(ours, 200, headers=[("Content-Type", "application/sdp")],
                                  body=ANSWER_RECVONLY).serialize())
        self.assertTrue(self.successResultOf(d).audio is not None)

    def test_we_refresh_when_the_caller_has_no_session_timer(self):
        self.h.take()
        self.h.clock.advance(299)
        self.assertEqual(self.requests(), [])
        self.h.clock.advance(2)
        [refresh] = self.requests()
        self.assertEqual(refresh.method, "INVITE")
        self.assertEqual(refresh.get("Session-Expires"), "600;refresher=uac")
        self.h.feed(make_response(refresh, 200, headers=[("Content-Type", "application/sdp")],
                                  body=OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 0 101")
                                  .replace(b"a=rtpmap:8 PCMA/8000\r\n", b"")).serialize())
        self.assertEqual([m.method for m in self.requests()], ["ACK"])
        self.assertFalse(self.session.is_ended)

    def test_update_with_new_offer(self):
        self.h.feed(in_dialog("UPDATE", self.tag, 2, "z9hG4bKupd",
                              body=OFFER.replace(b"c=IN IP4 192.0.2.7", b"c=IN IP4 192.0.2.8")))
        [ok] = self.h.responses()
        self.assertEqual(ok.status, 200)
        self.assertIn(b"m=audio 40000", ok.body)
        self.assertEqual(self.h.media.sessions[0].params.remote_address, ("192.0.2.8", 30000))

    def test_reinvite_to_t38_when_the_fax_layer_takes_it(self):
        seen = []
        self.session.on_media.append(seen.append)
        self.h.feed(in_dialog("INVITE", self.tag, 2, "z9hG4bKt1", body=T38_OFFER))
        self.assertEqual([r.status for r in self.h.responses()], [488])   # no T.38 port yet
        self.session.t38_port = 41000
        self.h.feed(in_dialog("INVITE", self.tag, 3, "z9hG4bKt2", body=T38_OFFER))
        [ok] = self.h.responses()
        self.assertEqual(ok.status, 200)
        self.assertIn(b"m=image 41000 udptl t38", ok.body)
        self.assertEqual(seen[-1].image.remote_port, 30002)
