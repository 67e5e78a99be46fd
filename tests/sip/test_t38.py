"""T38Signalling over the user agent on a fake UDP socket: the far end's re-INVITE to T.38
accepted once a UDPTL port is offered, our re-INVITE to T.38 accepted or refused."""

from twisted.internet import defer
from twisted.trial import unittest

from portaum_tx.sip.message import Request, make_response
from portaum_tx.sip.sdp import parse_sdp
from portaum_tx.sip.t38 import T38Signalling
from tests.sip.uahelpers import Harness, in_dialog, invite

T38_OFFER = (b"v=0\r\no=alice 1 2 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
             b"m=image 30010 udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\n"
             b"a=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxBuffer:1800\r\n"
             b"a=T38FaxMaxDatagram:300\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n")

T38_ANSWER = T38_OFFER.replace(b"1 2 IN", b"1 3 IN").replace(b"30010", b"30020")


class T38SignallingTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.h.feed(invite())
        self.session = self.h.incoming[0]
        answered = defer.ensureDeferred(self.session.answer())
        ok = self.h.responses()[-1]
        self.tag = ok.to.tag
        self.h.feed(in_dialog("ACK", self.tag, 1, "z9hG4bKack1"))
        self.assertTrue(answered.called)
        self.signalling = T38Signalling(self.session)
        self.streams = []
        self.signalling.listeners.append(self.streams.append)

    def test_far_end_reinvite_refused_until_a_port_is_offered(self):
        self.h.feed(in_dialog("INVITE", self.tag, 2, "z9hG4bKre1", body=T38_OFFER))
        self.assertEqual(self.h.responses()[-1].status, 488)
        self.assertEqual(self.streams, [])

    def test_far_end_reinvite_accepted_with_our_port(self):
        self.signalling.accept(31000)
        self.h.feed(in_dialog("INVITE", self.tag, 2, "z9hG4bKre1", body=T38_OFFER))
        ok = self.h.responses()[-1]
        self.assertEqual(ok.status, 200)
        answer = parse_sdp(ok.body)
        (image,) = answer.media
        self.assertEqual((image.media, image.port, image.proto), ("image", 31000, "udptl"))
        self.assertEqual(image.attr("T38FaxRateManagement"), "transferredTCF")
        (stream,) = self.streams
        self.assertEqual((stream.remote_address, stream.remote_port), ("192.0.2.7", 30010))
        # What we send is bounded by what the far end receives.
        self.assertEqual((stream.t38.max_datagram, stream.t38.max_buffer), (300, 1800))

    def test_local_tcf_offer_accepted_once_the_fax_layer_accepts_t38(self):
        self.assertEqual(self.session.t38_rate_management, ("transferredTCF",))
        self.signalling.accept(31000)
        offer = T38_OFFER.replace(b"transferredTCF", b"localTCF")
        self.h.feed(in_dialog("INVITE", self.tag, 2, "z9hG4bKre1", body=offer))
        ok = self.h.responses()[-1]
        self.assertEqual(ok.status, 200)
        self.assertEqual(parse_sdp(ok.body).media[0].attr("T38FaxRateManagement"), "localTCF")
        self.assertEqual(self.streams[0].t38.rate_management, "localTCF")

    def test_local_tcf_refused_by_default(self):
        self.session.t38_port = 31000
        offer = T38_OFFER.replace(b"transferredTCF", b"localTCF")
        self.h.feed(in_dialog("INVITE", self.tag, 2, "z9hG4bKre1", body=offer))
        self.assertEqual(self.h.responses()[-1].status, 488)

    def _our_reinvite(self):
        self.signalling.accept(31000)
        asked = defer.ensureDeferred(self.signalling.request())
        (request,) = [m for m, _ in self.h.take() if isinstance(m, Request)]
        self.assertEqual(request.method, "INVITE")
        offer = parse_sdp(request.body)
        self.assertEqual([(m.media, m.port) for m in offer.media], [("image", 31000)])
        return asked, request

    def test_our_reinvite_accepted(self):
        asked, request = self._our_reinvite()
        self.h.feed(make_response(request, 200, body=T38_ANSWER, headers=[
            ("Contact", "<sip:1001@10.0.0.7:5062>"),
            ("Content-Type", "application/sdp")]).serialize())
        self.assertTrue(self.successResultOf(asked))
        (stream,) = self.streams
        self.assertEqual(stream.remote_port, 30020)
        acks = [m for m, _ in self.h.take() if isinstance(m, Request) and m.method == "ACK"]
        self.assertEqual(len(acks), 1)

    def test_our_reinvite_refused(self):
        asked, request = self._our_reinvite()
        self.h.feed(make_response(request, 488).serialize())
        self.assertFalse(self.successResultOf(asked))
        self.assertEqual(self.signalling.refusal.code, 488)
        self.assertEqual(self.streams, [])
        self.assertEqual(self.session.state, "confirmed")

    def test_close_stops_accepting_and_listening(self):
        self.signalling.accept(31000)
        self.signalling.close()
        self.assertIsNone(self.session.t38_port)
        self.assertNotIn(self.signalling._negotiated, self.session.on_media)
        self.assertFalse(self.successResultOf(defer.ensureDeferred(self.signalling.request())))
        self.h.feed(in_dialog("INVITE", self.tag, 2, "z9hG4bKre1", body=T38_OFFER))
        self.assertEqual(self.h.responses()[-1].status, 488)
