"""SDP parsing/serialisation and offer/answer for G.711, telephone-event and T.38."""

from twisted.trial import unittest

from portaum_tx.sip.sdp import (
    Connection, LocalCapabilities, Media, NotAcceptable, Origin, SdpError, T38Params,
    answer_offer, make_offer, parse_sdp, read_answer,
)

BARESIP_OFFER = (
    b"v=0\r\n"
    b"o=- 1234 5678 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"a=tool:baresip\r\n"
    b"m=audio 10000 RTP/AVP 9 8 0 101\r\n"
    b"b=AS:64\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:30\r\n"
    b"a=maxptime:60\r\n"
    b"a=sendrecv\r\n"
    b"m=video 10002 RTP/AVP 96\r\n"
    b"a=rtpmap:96 H264/90000\r\n"
)

T38_REINVITE = (
    b"v=0\r\n"
    b"o=CiscoSystemsSIP-GW-UserAgent 4107 8134 IN IP4 192.0.2.77\r\n"
    b"s=SIP Call\r\n"
    b"c=IN IP4 192.0.2.77\r\n"
    b"t=0 0\r\n"
    b"m=image 17190 udptl t38\r\n"
    b"c=IN IP4 192.0.2.78\r\n"
    b"a=T38FaxVersion:0\r\n"
    b"a=T38MaxBitRate:14400\r\n"
    b"a=T38FaxFillBitRemoval\r\n"
    b"a=T38FaxRateManagement:transferredTCF\r\n"
    b"a=T38FaxMaxBuffer:200\r\n"
    b"a=T38FaxMaxDatagram:320\r\n"
    b"a=T38FaxUdpEC:t38UDPFEC\r\n"
)

LOCAL = LocalCapabilities("198.51.100.1", 30000, t38_port=30002)
ORIGIN = Origin("-", 77, 1, "IN", "IP4", "198.51.100.1")


class ParseTests(unittest.TestCase):
    def test_parse_offer(self):
        sdp = parse_sdp(BARESIP_OFFER)
        self.assertEqual(sdp.origin.session_id, 1234)
        self.assertEqual(sdp.connection.address, "192.0.2.10")
        self.assertEqual(sdp.attr("tool"), "baresip")
        audio, video = sdp.media
        self.assertEqual((audio.media, audio.port, audio.proto), ("audio", 10000, "RTP/AVP"))
        self.assertEqual(audio.formats, ["9", "8", "0", "101"])
        self.assertEqual(audio.rtpmap("101").encoding, "telephone-event")
        self.assertEqual(audio.fmtp("101"), "0-15")
        self.assertEqual((audio.ptime, audio.maxptime), (30, 60))
        self.assertEqual(audio.direction, "sendrecv")
        self.assertEqual(audio.bandwidths, ["AS:64"])
        self.assertEqual(video.rtpmap("96").clock_rate, 90000)
        self.assertEqual(sdp.media_direction(video), "sendrecv")

    def test_roundtrip(self):
        for data in (BARESIP_OFFER, T38_REINVITE):
            self.assertEqual(parse_sdp(data).serialize(), data)

    def test_static_payload_without_rtpmap(self):
        media = Media.parse_m_line("audio 4000 RTP/AVP 0 8 18")
        self.assertEqual(media.rtpmap("8").encoding, "PCMA")
        self.assertIsNone(media.rtpmap("96"))

    def test_ipv6_and_multicast(self):
        self.assertEqual(Connection.parse("IN IP6 2001:db8::10").address, "2001:db8::10")
        conn = Connection.parse("IN IP4 224.2.1.1/127/3")
        self.assertEqual((conn.ttl, conn.count), (127, 3))
        self.assertEqual(str(conn), "IN IP4 224.2.1.1/127/3")
        self.assertTrue(Connection.parse("IN IP4 0.0.0.0").is_null)
        self.assertRaises(SdpError, Connection.parse, "IN IP4 2001:db8::1")
        self.assertRaises(SdpError, Connection.parse, "IN IP4")

    def test_session_level_direction(self):
        sdp = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=x\r\nt=0 0\r\na=inactive\r\n"
                        b"m=audio 1 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\n")
        self.assertEqual(sdp.direction, "inactive")
        self.assertEqual(sdp.media_direction(sdp.media[0]), "inactive")
        self.assertEqual(sdp.media_connection(sdp.media[0]).address, "192.0.2.1")

    def test_t38_params(self):
        params = T38Params.from_media(parse_sdp(T38_REINVITE).media[0])
        self.assertEqual(params, T38Params(0, 14400, "transferredTCF", 200, 320, "t38UDPFEC",
                                           True, False, False))
        media = Media("image", 1, "udptl", ["t38"], attributes=params.attributes())
        self.assertEqual(T38Params.from_media(media), params)
        self.assertTrue(media.is_t38)

    def test_errors(self):
        for bad in [b"", b"v=1\r\n", b"v=0\r\ns=x\r\n", b"v=0\r\no=bad\r\n",
                    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n",
                    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n",
                    b"v=0\r\no=- 1 1 IN IP4 h\r\nm =video 1 RTP/AVP 0\r\n",
                    b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP\r\n",
                    b"v=0\r\no=- 1 1 IN IP4 h\r\nt=now\r\n",
                    b"v=0\r\no=- 1 1 IN IP4 h\r\na=\r\n",
                    b"v=0\r\no=- 1 1 IN IP4 h\r\nv=0\r\n",
                    b"v=0\r\no=- 1 1 IN IP4 h\r\n\xff\r\n",
                    b"v=0\r\n" + b"m=audio 1 RTP/AVP 0\r\n" * 40]:
            self.assertRaises(SdpError, parse_sdp, bad)
        self.assertRaises(SdpError, parse_sdp, 42)


class AnswerTests(unittest.TestCase):
    def test_answer_g711_with_events(self):
        result = answer_offer(parse_sdp(BARESIP_OFFER), LOCAL, ORIGIN)
        answer = parse_sdp(result.sdp.serialize())
        self.assertEqual(len(answer.media), 2)
        audio, video = answer.media
        self.assertEqual(audio.port, 30000)
        self.assertEqual(audio.formats, ["0", "101"])
        self.assertEqual(audio.direction, "sendrecv")
        self.assertEqual(audio.fmtp("101"), "0-15")
        self.assertEqual((video.port, video.media, video.formats), (0, "video", ["96"]))
        self.assertEqual(answer.connection.address, "198.51.100.1")
        stream = result.audio
        self.assertEqual((stream.codec, stream.payload_type, stream.telephone_event_pt),
                         ("PCMU", 0, 101))
        self.assertEqual((stream.remote_address, stream.remote_port), ("192.0.2.10", 10000))
        self.assertEqual(stream.ptime, 30)
        self.assertFalse(stream.on_hold)
        self.assertTrue(stream.send and stream.receive)

    def test_local_preference(self):
        local = LocalCapabilities("198.51.100.1", 30000, codecs=("PCMA", "PCMU"),
                                  telephone_event=False)
        result = answer_offer(parse_sdp(BARESIP_OFFER), local, ORIGIN)
        self.assertEqual(result.sdp.media[0].formats, ["8"])
        self.assertEqual(result.audio.codec, "PCMA")

    def test_dynamic_payload_for_g711(self):
        offer = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                          b"m=audio 5000 RTP/AVP 98\r\na=rtpmap:98 pcma/8000\r\n")
        result = answer_offer(offer, LOCAL, ORIGIN)
        self.assertEqual(result.audio.payload_type, 98)
        self.assertEqual(result.audio.telephone_event_pt, None)

    def test_hold_directions(self):
        for offered, answered in [("sendonly", "recvonly"), ("recvonly", "sendonly"),
                                  ("inactive", "inactive")]:
            offer = parse_sdp(BARESIP_OFFER.replace(b"a=sendrecv", b"a=" + offered.encode()))
            result = answer_offer(offer, LOCAL, ORIGIN)
            self.assertEqual(result.sdp.media[0].direction, answered)
            self.assertEqual(result.audio.on_hold, offered != "recvonly")

    def test_rfc2543_hold(self):
        offer = parse_sdp(BARESIP_OFFER.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0"))
        stream = answer_offer(offer, LOCAL, ORIGIN).audio
        self.assertTrue(stream.on_hold)
        self.assertFalse(stream.send)

    def test_local_direction_restricts(self):
        local = LocalCapabilities("198.51.100.1", 30000, direction="sendonly")
        result = answer_offer(parse_sdp(BARESIP_OFFER), local, ORIGIN)
        self.assertEqual(result.sdp.media[0].direction, "sendonly")

    def test_not_acceptable(self):
        offer = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
                          b"m=audio 5000 RTP/AVP 18\r\nm=audio 5002 RTP/SAVP 0\r\n")
        self.assertRaises(NotAcceptable, answer_offer, offer, LOCAL, ORIGIN)
        no_conn = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n")
        self.assertRaises(NotAcceptable, answer_offer, no_conn, LOCAL, ORIGIN)

    def test_second_audio_stream_rejected(self):
        offer = parse_sdp(BARESIP_OFFER.replace(b"m=video 10002 RTP/AVP 96", b"m=audio 10002 RTP/AVP 0"))
        result = answer_offer(offer, LOCAL, ORIGIN)
        self.assertEqual([m.port for m in result.sdp.media], [30000, 0])

    def test_t38_reinvite_answer(self):
        result = answer_offer(parse_sdp(T38_REINVITE), LOCAL, ORIGIN)
        media = result.sdp.media[0]
        self.assertEqual((media.media, media.port, media.proto, media.formats),
                         ("image", 30002, "udptl", ["t38"]))
        answered = T38Params.from_media(media)
        self.assertEqual(answered.rate_management, "transferredTCF")
        self.assertEqual(answered.udp_ec, "t38UDPRedundancy")
        self.assertFalse(answered.fill_bit_removal)
        self.assertEqual(answered.max_datagram, LOCAL.t38.max_datagram)
        stream = result.image
        self.assertEqual((stream.remote_address, stream.remote_port), ("192.0.2.78", 17190))
        self.assertEqual(stream.t38.max_datagram, 320)
        self.assertIsNone(result.audio)

    def test_t38_refused(self):
        no_fax = LocalCapabilities("198.51.100.1", 30000)
        self.assertRaises(NotAcceptable, answer_offer, parse_sdp(T38_REINVITE), no_fax, ORIGIN)
        local_tcf = parse_sdp(T38_REINVITE.replace(b"transferredTCF", b"localTCF"))
        self.assertRaises(NotAcceptable, answer_offer, local_tcf, LOCAL, ORIGIN)

    def test_audio_and_t38_offer(self):
        both = BARESIP_OFFER + T38_REINVITE.split(b"t=0 0\r\n")[1]
        result = answer_offer(parse_sdp(both), LOCAL, ORIGIN)
        self.assertEqual([m.port for m in result.sdp.media], [30000, 0, 30002])
        self.assertIsNotNone(result.audio)
        self.assertIsNotNone(result.image)


class OfferTests(unittest.TestCase):
    def test_audio_offer_and_answer(self):
        offer = make_offer(LOCAL, ORIGIN)
        self.assertEqual(offer.media[0].formats, ["0", "8", "101"])
        self.assertEqual(offer.media[0].rtpmap("101").encoding, "telephone-event")
        remote = parse_sdp(b"v=0\r\no=- 9 9 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.3\r\nt=0 0\r\n"
                           b"m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                           b"a=recvonly\r\n")
        result = read_answer(offer, remote)
        stream = result.audio
        self.assertEqual((stream.codec, stream.payload_type, stream.telephone_event_pt),
                         ("PCMA", 8, 101))
        self.assertEqual((stream.remote_address, stream.remote_port), ("192.0.2.3", 7000))
        self.assertEqual(stream.direction, "sendonly")

    def test_reinvite_to_t38(self):
        origin = ORIGIN.bumped()
        self.assertEqual(origin.session_version, 2)
        offer = make_offer(LOCAL, origin, t38=True, audio=False)
        self.assertEqual(len(offer.media), 1)
        self.assertTrue(offer.media[0].is_t38)
        self.assertEqual(T38Params.from_media(offer.media[0]), LOCAL.t38)
        answer = answer_offer(parse_sdp(offer.serialize()),
                              LocalCapabilities("192.0.2.9", 1, t38_port=4000), ORIGIN)
        result = read_answer(offer, parse_sdp(answer.sdp.serialize()))
        self.assertEqual(result.image.remote_port, 4000)
        self.assertRaises(ValueError, make_offer, LocalCapabilities("h", 1), ORIGIN, t38=True)

    def test_rejected_answer(self):
        offer = make_offer(LOCAL, ORIGIN)
        remote = parse_sdp(b"v=0\r\no=- 9 9 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n")
        self.assertRaises(NotAcceptable, read_answer, offer, remote)
        extra = parse_sdp(b"v=0\r\no=- 9 9 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n"
                          b"m=audio 0 RTP/AVP 0\r\n")
        self.assertRaises(SdpError, read_answer, offer, extra)

    def test_ipv6_offer(self):
        local = LocalCapabilities("2001:db8::1", 30000)
        text = make_offer(local, Origin(address="2001:db8::1", addrtype="IP6")).serialize()
        self.assertIn(b"c=IN IP6 2001:db8::1\r\n", text)
