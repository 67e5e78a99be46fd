from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.fax.t38sdp import (
    EC_FEC, EC_NONE, EC_REDUNDANCY, RATE_LOCAL_TCF, RATE_TRANSFERRED_TCF, T38ParameterError,
    T38Params, answer_t38, parse_t38_attributes, t38_attributes)


def split(lines):
    pairs = []
    for line in lines:
        name, _, value = line.partition(":")
        pairs.append((name, value if _ else None))
    return pairs


class ParseTests(unittest.TestCase):
    def test_typical_gateway_offer(self):
        offer = parse_t38_attributes(split([
            "T38FaxVersion:0", "T38MaxBitRate:14400", "T38FaxFillBitRemoval:0",
            "T38FaxTranscodingMMR:0", "T38FaxTranscodingJBIG:0",
            "T38FaxRateManagement:transferredTCF", "T38FaxMaxBuffer:200",
            "T38FaxMaxDatagram:72", "T38FaxUdpEC:t38UDPRedundancy", "ptime:20"]))
        self.assertEqual(offer, T38Params(
            version=0, max_bit_rate=14400, rate_management=RATE_TRANSFERRED_TCF,
            max_buffer=200, max_datagram=72, error_correction=EC_REDUNDANCY))

    def test_flags_without_value_and_odd_case(self):
        offer = parse_t38_attributes(split([
            "t38faxfillbitremoval", "T38FaxUdpEC:T38UDPFEC",
            "T38FaxRateManagement:LocalTCF"]))
        self.assertTrue(offer.fill_bit_removal)
        self.assertEqual(offer.error_correction, EC_FEC)
        self.assertEqual(offer.udptl_mode, "fec")
        self.assertEqual(offer.rate_management, RATE_LOCAL_TCF)

    def test_bad_values_name_the_attribute(self):
        for line, message in (("T38MaxBitRate:fast", "T38MaxBitRate"),
                              ("T38FaxMaxDatagram:0", "T38FaxMaxDatagram"),
                              ("T38FaxUdpEC:magic", "T38FaxUdpEC"),
                              ("T38FaxRateManagement:", "T38FaxRateManagement"),
                              ("T38FaxFillBitRemoval:yes", "T38FaxFillBitRemoval")):
            with self.assertRaisesRegex(T38ParameterError, message):
                parse_t38_attributes(split([line]))

    def test_round_trip(self):
        params = T38Params(version=1, max_bit_rate=9600, rate_management=RATE_LOCAL_TCF,
                           max_datagram=160, error_correction=EC_NONE,
                           fill_bit_removal=True)
        self.assertEqual(parse_t38_attributes(split(t38_attributes(params))), params)
        self.assertEqual(params.udptl_redundancy, 0)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from([
        "T38FaxVersion", "T38MaxBitRate", "T38FaxRateManagement", "T38FaxMaxBuffer",
        "T38FaxMaxDatagram", "T38FaxUdpEC", "T38FaxFillBitRemoval", "other"]),
        st.one_of(st.none(), st.text(max_size=12))), max_size=6))
    def test_fuzz_only_parameter_error(self, pairs):
        try:
            params = parse_t38_attributes(pairs)
        except T38ParameterError:
            return
        self.assertIsInstance(params, T38Params)


class AnswerTests(unittest.TestCase):
    def test_answer_limits_and_declines(self):
        offer = T38Params(version=3, max_bit_rate=33600, rate_management=RATE_LOCAL_TCF,
                          max_datagram=72, error_correction=EC_FEC, fill_bit_removal=True,
                          transcoding_mmr=True)
        answer = answer_t38(offer)
        self.assertEqual(answer.version, 0)
        self.assertEqual(answer.max_bit_rate, 14400)
        self.assertEqual(answer.rate_management, RATE_LOCAL_TCF)
        self.assertEqual(answer.error_correction, EC_FEC)
        self.assertFalse(answer.fill_bit_removal or answer.transcoding_mmr)
        self.assertEqual(answer.max_datagram, T38Params().max_datagram)

    def test_slow_offer_picks_a_real_rate(self):
        self.assertEqual(answer_t38(T38Params(max_bit_rate=10000)).max_bit_rate, 9600)
