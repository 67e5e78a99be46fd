from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.rtp.packet import (
    Goodbye, ReceiverReport, ReportBlock, RtpError, RtpHeaderExtension, RtpPacket, SdesChunk,
    SenderReport, SourceDescription, UnknownRtcp, build_rtcp, build_rtp, looks_like_rtcp,
    ntp_from_seconds, ntp_middle32, parse_rtcp, parse_rtp, SDES_CNAME,
)


class RtpPacketTests(unittest.TestCase):
    def test_minimal_header_layout(self):
        data = build_rtp(RtpPacket(0, 0x1234, 0xDEADBEEF, 0x01020304, b"\xff" * 160, marker=True))
        self.assertEqual(data[:12], bytes.fromhex("80801234deadbeef01020304"))
        self.assertEqual(len(data), 172)

    def test_roundtrip_with_everything(self):
        packet = RtpPacket(
            payload_type=101, sequence=65535, timestamp=2**32 - 1, ssrc=7, payload=b"abc",
            marker=True, csrcs=(1, 2, 3), extension=RtpHeaderExtension(0xBEDE, b"\x10\x01\x00\x00"),
            padding=5,
        )
        data = packet.to_bytes()
        self.assertEqual(data[0] & 0x3F, 0x20 | 0x10 | 3)
        self.assertEqual(data[-1], 5)
        self.assertEqual(parse_rtp(data), packet)

    def test_parse_known_packet(self):
        data = bytes.fromhex("80 08 00 01 00 00 00 a0 ca fe ba be".replace(" ", "")) + b"\xd5" * 160
        packet = parse_rtp(data)
        self.assertEqual((packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc),
                         (8, 1, 160, 0xCAFEBABE))
        self.assertFalse(packet.marker)
        self.assertEqual(packet.payload, b"\xd5" * 160)

    def test_errors_name_the_problem(self):
        with self.assertRaisesRegex(RtpError, "shorter than the 12-octet header"):
            parse_rtp(b"\x80\x00")
        with self.assertRaisesRegex(RtpError, "version 1"):
            parse_rtp(b"\x40" + bytes(11))
        with self.assertRaisesRegex(RtpError, "CSRC"):
            parse_rtp(b"\x82" + bytes(11) + bytes(4))
        with self.assertRaisesRegex(RtpError, "extension"):
            parse_rtp(b"\x90" + bytes(11) + b"\x00\x00\x00\x05")
        with self.assertRaisesRegex(RtpError, "padding"):
            parse_rtp(b"\xa0" + bytes(11) + b"\x01\x09")
        with self.assertRaisesRegex(RtpError, "sequence number"):
            build_rtp(RtpPacket(0, 70000, 0, 0))
        with self.assertRaisesRegex(RtpError, "payload type"):
            build_rtp(RtpPacket(128, 0, 0, 0))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=80))
    def test_fuzz_only_rtp_error_escapes(self, data):
        try:
            packet = parse_rtp(data)
        except RtpError:
            return
        # Whatever parses must re-encode to something that parses the same.
        self.assertEqual(parse_rtp(build_rtp(packet)), packet)

    @settings(max_examples=150, deadline=None)
    @given(
        pt=st.integers(0, 127), seq=st.integers(0, 0xFFFF), ts=st.integers(0, 2**32 - 1),
        ssrc=st.integers(0, 2**32 - 1), payload=st.binary(max_size=40), marker=st.booleans(),
        csrcs=st.lists(st.integers(0, 2**32 - 1), max_size=15), padding=st.integers(0, 20),
    )
    def test_roundtrip_property(self, pt, seq, ts, ssrc, payload, marker, csrcs, padding):
        packet = RtpPacket(pt, seq, ts, ssrc, payload, marker, tuple(csrcs), None, padding)
        self.assertEqual(parse_rtp(build_rtp(packet)), packet)


class RtcpTests(unittest.TestCase):
    def compound(self):
        block = ReportBlock(0x11111111, 25, -3, 0x0001FFFF, 40, 0x12345678, 65536)
        return [
            SenderReport(0xAAAA0001, ntp_from_seconds(1_700_000_000.5), 160000, 1000, 160000, (block,)),
            SourceDescription((SdesChunk(0xAAAA0001, ((SDES_CNAME, b"ivr@node1"),)),)),
            Goodbye((0xAAAA0001,), b"hangup"),
        ]

    def test_compound_roundtrip(self):
        packets = self.compound()
        data = build_rtcp(packets)
        self.assertEqual(len(data) % 4, 0)
        self.assertTrue(looks_like_rtcp(data))
        self.assertEqual(parse_rtcp(data), packets)
        self.assertEqual(parse_rtcp(data)[1].cname(0xAAAA0001), b"ivr@node1")

    def test_sr_wire_layout(self):
        sr = SenderReport(1, 0x0102030405060708, 3, 4, 5)
        data = build_rtcp([sr])
        self.assertEqual(data, bytes.fromhex("80c80006" "00000001" "0102030405060708" "00000003"
                                             "00000004" "00000005"))

    def test_rr_and_unknown_types(self):
        packets = [ReceiverReport(9), UnknownRtcp(204, 1, b"\x00\x00\x00\x09NAME")]
        self.assertEqual(parse_rtcp(build_rtcp(packets)), packets)

    def test_rtp_is_not_rtcp(self):
        self.assertFalse(looks_like_rtcp(build_rtp(RtpPacket(0, 1, 2, 3))))
        self.assertFalse(looks_like_rtcp(build_rtp(RtpPacket(101, 1, 2, 3, marker=True))))

    def test_ntp_helpers(self):
        ntp = ntp_from_seconds(0.25)
        self.assertEqual(ntp >> 32, 2208988800)
        self.assertEqual(ntp & 0xFFFFFFFF, 1 << 30)
        self.assertEqual(ntp_middle32(0x0102030405060708), 0x03040506)

    def test_errors(self):
        with self.assertRaisesRegex(RtpError, "overruns"):
            parse_rtcp(bytes.fromhex("80c80006") + bytes(8))
        with self.assertRaisesRegex(RtpError, "report blocks"):
            parse_rtcp(bytes.fromhex("81c90001") + bytes(4))
        with self.assertRaisesRegex(RtpError, "END item"):
            parse_rtcp(bytes.fromhex("81ca0002") + bytes.fromhex("00000001 01020000".replace(" ", "")))
        with self.assertRaisesRegex(RtpError, "at least one"):
            build_rtcp([])
        with self.assertRaisesRegex(RtpError, "cumulative lost"):
            build_rtcp([ReceiverReport(1, (ReportBlock(1, 0, 1 << 24, 0, 0, 0, 0),))])

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=100))
    def test_fuzz_only_rtp_error_escapes(self, data):
        try:
            packets = parse_rtcp(data)
        except RtpError:
            return
        self.assertTrue(packets)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.sampled_from([0x80, 0x81, 0xA1, 0x9F]), min_size=1, max_size=3),
           st.lists(st.integers(200, 204), min_size=3, max_size=3), st.binary(min_size=0, max_size=60))
    def test_fuzz_plausible_headers(self, firsts, types, tail):
        data = b""
        for first, packet_type in zip(firsts, types):
            words = len(tail) // 4
            data += bytes([first, packet_type]) + words.to_bytes(2, "big") + tail[: 4 * words]
        try:
            parse_rtcp(data)
        except RtpError:
            pass
