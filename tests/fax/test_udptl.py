import random

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.fax.udptl import (
    FecInfo, UdptlError, UdptlPacket, UdptlReceiver, UdptlSender,
    build_udptl, ifp_length, parse_udptl)


def ifp_stream(count):
    """Well-formed IFP packets (V.21 HDLC data) with distinct lengths and contents,
    so a wrong slot or a wrong length shows up."""
    packets = []
    for i in range(count):
        payload = bytes([(i * 7) % 251 + 1]) * (1 + i % 9)
        packets.append(bytes((0xC0, 0x01, 0x80, 0x00, len(payload) - 1)) + payload)
    return packets


class CodecTests(unittest.TestCase):
    def test_known_redundancy_encoding(self):
        # seq 5, primary 02 00, two secondaries: what spandsp/Asterisk put on the wire.
        wire = bytes.fromhex("0005" "02" "0200" "00" "02" "01" "aa" "02" "bbcc")
        packet = parse_udptl(wire)
        self.assertEqual(packet, UdptlPacket(5, b"\x02\x00", (b"\xaa", b"\xbb\xcc")))
        self.assertEqual(build_udptl(packet), wire)

    def test_known_fec_encoding(self):
        wire = bytes.fromhex("ffff" "01" "07" "80" "01" "03" "02" "01" "11" "00")
        packet = parse_udptl(wire)
        self.assertEqual(packet.seq, 65535)
        self.assertEqual(packet.fec, FecInfo(3, (b"\x11", b"")))
        self.assertEqual(build_udptl(packet), wire)

    def test_long_primary_uses_two_byte_length(self):
        primary = bytes(range(256)) * 2
        wire = build_udptl(UdptlPacket(1, primary))
        self.assertEqual(wire[2:4], bytes((0x82, 0x00)))
        self.assertEqual(parse_udptl(wire).primary, primary)

    def test_fragmented_primary_round_trips(self):
        primary = bytes(40000)
        self.assertEqual(parse_udptl(build_udptl(UdptlPacket(9, primary))).primary, primary)

    def test_truncated_packet_names_the_field(self):
        wire = build_udptl(UdptlPacket(1, b"\x01\x02\x03", (b"\x04",)))
        for cut in range(len(wire)):
            with self.assertRaises(UdptlError) as caught:
                parse_udptl(wire[:cut])
            self.assertIn("truncated", str(caught.exception))

    def test_trailing_bytes_rejected(self):
        wire = build_udptl(UdptlPacket(1, b"\x01"))
        with self.assertRaisesRegex(UdptlError, "trailing"):
            parse_udptl(wire + b"\x00")

    def test_empty_primary_rejected(self):
        with self.assertRaisesRegex(UdptlError, "empty primary"):
            parse_udptl(bytes.fromhex("0001000000"))

    def test_non_bytes_rejected(self):
        with self.assertRaises(UdptlError):
            parse_udptl("0001")

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=80))
    def test_fuzz_only_udptl_error_escapes(self, data):
        try:
            packet = parse_udptl(data)
        except UdptlError:
            return
        self.assertEqual(parse_udptl(build_udptl(packet)), packet)

    @settings(max_examples=100, deadline=None)
    @given(st.integers(0, 65535), st.binary(min_size=1, max_size=300),
           st.lists(st.binary(max_size=40), max_size=5))
    def test_build_parse_round_trip(self, seq, primary, secondary):
        packet = UdptlPacket(seq, primary, tuple(secondary))
        self.assertEqual(parse_udptl(build_udptl(packet)), packet)

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.binary(max_size=30), max_size=40))
    def test_fuzz_receiver_only_udptl_error_escapes(self, datagrams):
        receiver = UdptlReceiver()
        for datagram in datagrams:
            try:
                receiver.receive(datagram)
            except UdptlError:
                pass
        receiver.flush()
        self.assertLessEqual(len(receiver._pending), receiver.reorder_window)


class SenderReceiverTests(unittest.TestCase):
    def run_link(self, sender, receiver, ifps, drop=(), order=None):
        datagrams = [sender.packetize(ifp) for ifp in ifps]
        indexes = order if order is not None else range(len(datagrams))
        delivered = []
        for i in indexes:
            if i not in drop:
                delivered += receiver.receive(datagrams[i])
        return delivered + receiver.flush()

    def test_sequence_numbers_and_redundancy(self):
        sender = UdptlSender(redundancy=2, first_seq=65534)
        first, second, third = (parse_udptl(sender.packetize(x)) for x in (b"a", b"b", b"c"))
        self.assertEqual([first.seq, second.seq, third.seq], [65534, 65535, 0])
        self.assertEqual(third.secondary, (b"b", b"a"))
        self.assertEqual(first.secondary, ())

    def test_redundancy_sheds_to_fit_datagram(self):
        sender = UdptlSender(redundancy=3, max_datagram=120)
        for _ in range(4):
            datagram = sender.packetize(bytes(50))
        self.assertLessEqual(len(datagram), 120)
        self.assertEqual(len(parse_udptl(datagram).secondary), 1)

    def test_loss_recovered_from_redundancy(self):
        ifps = ifp_stream(100)
        drop = {3, 4, 20, 50, 51, 77}
        delivered = self.run_link(UdptlSender(redundancy=2), UdptlReceiver(), ifps, drop)
        self.assertEqual(delivered, list(enumerate(ifps)))

    def test_fec_repair_trims_padding_to_the_ifp(self):
        # Real IFP packets of different lengths: indicator, HDLC data, FCS-OK.
        ifps = [bytes.fromhex(h) for h in (
            "06", "c001800000ff", "c0018000011234", "c00140", "c0028000005510", "00")] * 4
        sender = UdptlSender(mode="fec", fec_span=2, fec_entries=1)
        datagrams = [sender.packetize(ifp) for ifp in ifps]
        receiver = UdptlReceiver()
        delivered = []
        for index, datagram in enumerate(datagrams):
            if index not in (7, 13, 20):
                delivered += receiver.receive(datagram)
        delivered += receiver.flush()
        self.assertEqual(receiver.stats.recovered, 3)
        self.assertEqual(delivered, list(enumerate(ifps)))

    def test_ifp_length(self):
        for hex_ifp, length in (("06", 1), ("c001800000ff", 6), ("c00140", 3),
                                ("c00200", 3), ("c0028000005510", 7), ("2040", 2)):
            ifp = bytes.fromhex(hex_ifp)
            self.assertEqual(ifp_length(ifp + bytes(5)), length)
        self.assertIsNone(ifp_length(bytes.fromhex("c0018000050102")))   # 6 octets promised
        self.assertIsNone(ifp_length(b""))
        # T.38 version 1+ spends a whole octet on each field type.
        self.assertEqual(ifp_length(bytes.fromhex("c0020800") + bytes(3), 2), 4)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=40), st.integers(0, 3))
    def test_fuzz_ifp_length_in_bounds(self, data, version):
        length = ifp_length(data, version)
        self.assertTrue(length is None or 1 <= length <= len(data))

    def test_loss_recovered_from_fec(self):
        ifps = ifp_stream(120)
        drop = {10, 30, 31, 60, 95}
        receiver = UdptlReceiver()
        delivered = self.run_link(UdptlSender(mode="fec", fec_span=3, fec_entries=3),
                                  receiver, ifps, drop)
        self.assertEqual(delivered, list(enumerate(ifps)))
        self.assertEqual(receiver.stats.recovered, len(drop))

    def test_reordering_delivers_in_order(self):
        ifps = ifp_stream(60)
        order = list(range(60))
        rng = random.Random(4)
        for start in range(3, 58, 3):   # the first packet defines the stream start
            if rng.random() < 0.5:
                order[start], order[start + 2] = order[start + 2], order[start]
        delivered = self.run_link(UdptlSender(redundancy=0), UdptlReceiver(), ifps,
                                  order=order)
        self.assertEqual(delivered, list(enumerate(ifps)))

    def test_duplicates_and_late_packets_dropped(self):
        sender = UdptlSender(redundancy=0)
        datagrams = [sender.packetize(x) for x in ifp_stream(20)]
        receiver = UdptlReceiver(reorder_window=3)
        out = []
        for i in range(20):
            if i != 5:
                out += receiver.receive(datagrams[i])
            if i == 10:
                out += receiver.receive(datagrams[8])
        out += receiver.receive(datagrams[5])          # far too late: its slot was skipped
        self.assertEqual([seq for seq, _ in out], [i for i in range(20) if i != 5])
        self.assertEqual(receiver.stats.duplicates, 1)
        self.assertEqual(receiver.stats.late, 1)
        self.assertEqual(receiver.stats.lost, 1)

    def test_peer_restart_resynchronises(self):
        receiver = UdptlReceiver()
        receiver.receive(build_udptl(UdptlPacket(10, b"a")))
        out = receiver.receive(build_udptl(UdptlPacket(30000, b"b")))
        self.assertEqual(out, [(30000, b"b")])

    def test_memory_bounded_under_random_traffic(self):
        receiver = UdptlReceiver(reorder_window=4)
        rng = random.Random(7)
        for _ in range(3000):
            seq = rng.randrange(65536)
            receiver.receive(build_udptl(UdptlPacket(seq, b"x", fec=FecInfo(2, (b"y",)))))
        self.assertLessEqual(len(receiver._pending), 4)
        self.assertLessEqual(len(receiver._recent), UdptlReceiver.HISTORY)
        self.assertLessEqual(len(receiver._fec), 16)

    def test_held_packets_released_by_flush(self):
        sender = UdptlSender(redundancy=0)
        datagrams = [sender.packetize(x) for x in (b"a", b"b", b"c")]
        receiver = UdptlReceiver()
        self.assertEqual(receiver.receive(datagrams[0]), [(0, b"a")])
        self.assertFalse(receiver.holding)
        self.assertEqual(receiver.receive(datagrams[2]), [])
        self.assertTrue(receiver.holding)
        self.assertEqual(receiver.flush(), [(2, b"c")])
        self.assertFalse(receiver.holding)
        self.assertEqual(receiver.stats.lost, 1)

