"""Property tests: hostile input to the pure parsers raises only documented errors."""

import os

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.sip.digest import DigestError, parse_challenge, parse_credentials
from portaum_tx.sip.headers import SipParseError, VALUE_PARSERS, parse_header_value
from portaum_tx.sip.message import (
    Message, SipFramingError, StreamFramer, error_response_for, parse_message,
)
from portaum_tx.sip.sdp import NotAcceptable, SdpError, LocalCapabilities, Origin, answer_offer, parse_sdp
from portaum_tx.sip.uri import SipURIError, parse_uri
from portaum_tx.sip.validate import check_request, check_response

DATA = os.path.join(os.path.dirname(__file__), "data", "rfc4475")
SEEDS = [open(os.path.join(DATA, f), "rb").read()
         for f in sorted(os.listdir(DATA)) if f.endswith(".dat")]
SIP_ALPHABET = st.sampled_from(list(b"sip:@;=<>\"\\,?&%/[]: \t\r\n0123456789aAzZ.-_*+!~'()"))
# PORTAUM_FUZZ_EXAMPLES raises the example count for a longer hunt.
FUZZ = settings(max_examples=int(os.environ.get("PORTAUM_FUZZ_EXAMPLES", "100")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated_seed(draw):
    """A torture message with a few bytes replaced, inserted or deleted."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(("replace", "insert", "delete")))
        byte = draw(st.one_of(SIP_ALPHABET, st.integers(0, 255)))
        if action == "insert" or pos == len(data):
            data.insert(pos, byte)
        elif action == "replace":
            data[pos] = byte
        else:
            del data[pos]
    return bytes(data)


def exercise(message: Message) -> None:
    """Touch every typed accessor, validation and serialisation."""
    for name, _ in list(message.headers):
        try:
            message.parsed(name)
        except SipParseError:
            pass
    if message.is_request:
        error = check_request(message)
        if error is not None:
            error.build(message, "t")
    else:
        check_response(message)
    parse_message(message.serialize())


class MessageFuzz(unittest.TestCase):
    @FUZZ
    @given(mutated_seed())
    def test_parse_message_mutations(self, data):
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self.assertIsInstance(exc.status, int)
            error_response_for(data, exc)
            return
        try:
            exercise(message)
        except SipParseError:
            pass

    @FUZZ
    @given(st.binary(max_size=600))
    def test_parse_message_random_bytes(self, data):
        try:
            parse_message(data)
        except SipParseError:
            pass

    @FUZZ
    @given(mutated_seed(), st.lists(st.integers(1, 200), min_size=1, max_size=8))
    def test_framer(self, data, cuts):
        framer = StreamFramer(max_header_bytes=4096, max_body_bytes=4096)
        stream = data + b"\r\n\r\n" + data
        pos = 0
        try:
            for cut in cuts + [len(stream)]:
                for item in framer.feed(stream[pos:pos + cut]):
                    self.assertTrue(isinstance(item, (Message, SipParseError)))
                pos += cut
                self.assertLessEqual(framer.buffered, 4096 + 4096 + 4)
        except SipFramingError:
            pass


class FieldFuzz(unittest.TestCase):
    @FUZZ
    @given(st.text(alphabet=st.sampled_from("sip:@;=<>\"\\,?&%/[]: \tabc0123.-_*+!~'()tel"),
                   max_size=60))
    def test_uri(self, text):
        try:
            uri = parse_uri(text)
        except SipURIError:
            return
        self.assertEqual(str(parse_uri(str(uri))), str(uri))

    @FUZZ
    @given(st.sampled_from(sorted(VALUE_PARSERS)),
           st.text(alphabet=st.sampled_from("sip:@;=<>\"\\,?&%/[]: \tabc0123.-_*+!~'()SIP/2.0UDP"),
                   max_size=80))
    def test_header_values(self, name, text):
        try:
            values = parse_header_value(name, text)
        except SipParseError:
            return
        for value in values:
            str(value)

    @FUZZ
    @given(st.text(max_size=120))
    def test_auth(self, text):
        for parser in (parse_challenge, parse_credentials):
            try:
                parser(text)
            except DigestError:
                pass


SDP_SEED = (b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
            b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
            b"a=fmtp:101 0-15\r\na=sendonly\r\nm=image 4002 udptl t38\r\n"
            b"a=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\na=T38FaxRateManagement:transferredTCF\r\n"
            b"a=T38FaxUdpEC:t38UDPRedundancy\r\na=T38FaxMaxDatagram:400\r\n")


class SdpFuzz(unittest.TestCase):
    local = LocalCapabilities("198.51.100.1", 30000, t38_port=30002)

    @FUZZ
    @given(st.lists(st.tuples(st.integers(0, len(SDP_SEED)),
                              st.one_of(st.sampled_from(list(b"=: /\r\n0aIP4m")),
                                        st.integers(0, 255))),
                    min_size=1, max_size=6))
    def test_sdp_mutations(self, edits):
        data = bytearray(SDP_SEED)
        for pos, byte in edits:
            if pos < len(data):
                data[pos] = byte
            else:
                data.append(byte)
        try:
            sdp = parse_sdp(bytes(data))
        except SdpError:
            return
        try:
            answer_offer(sdp, self.local, Origin())
        except NotAcceptable:
            return
        parse_sdp(sdp.serialize())


class TransactionFuzz(unittest.TestCase):
    """Any sequence of parseable messages leaves the transaction layer sound."""

    @FUZZ
    @given(st.lists(st.tuples(st.one_of(mutated_seed(), st.sampled_from(SEEDS), st.none()),
                              st.sampled_from([0, 0.3, 2.0, 40.0]),
                              st.sampled_from([None, 100, 180, 200, 486]), st.booleans()),
                    min_size=1, max_size=10))
    def test_layer_survives(self, steps):
        from twisted.internet import task
        from portaum_tx.sip.message import make_response
        from portaum_tx.sip.transaction import TransactionLayer

        clock = task.Clock()
        sent = []
        answers = {}

        def on_request(transaction, request):
            if transaction is not None and answers.get("status"):
                transaction.respond(make_response(request, answers["status"], to_tag="fz"))

        layer = TransactionLayer(clock, lambda m, d: sent.append(m.serialize()), on_request,
                                 lambda r, s: None)
        previous = SEEDS[0]
        for data, delay, status, reliable in steps:
            data = previous if data is None else data    # None: a retransmission
            previous = data
            answers["status"] = status
            try:
                message = parse_message(data)
            except SipParseError:
                continue
            layer.receive(message, ("udp", "192.0.2.1", 5060), reliable)
            clock.advance(delay)
        clock.advance(100)
        for wire in sent:
            parse_message(wire)
        self.assertEqual(layer.client_transactions, 0)
        layer.shutdown()
        self.assertEqual(clock.getDelayedCalls(), [])

    @FUZZ
    @given(st.sampled_from(["INVITE", "OPTIONS"]), st.booleans(),
           st.lists(st.tuples(st.sampled_from([100, 180, 183, 200, 202, 302, 486, 503, 603]),
                              st.sampled_from([0, 0.2, 1.0, 5.0, 40.0])), max_size=8),
           st.booleans())
    def test_client_transaction_invariants(self, method, reliable, responses, cancel):
        from twisted.internet import task
        from portaum_tx.sip.message import Request, make_response
        from portaum_tx.sip.transaction import TransactionLayer

        clock = task.Clock()
        layer = TransactionLayer(clock, lambda m, d: None, lambda t, r: None)
        request = Request(method, "sip:bob@example.com", [
            ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfuzz"), ("From", "<sip:a@b>;tag=1"),
            ("To", "<sip:bob@example.com>"), ("Call-ID", "c"), ("CSeq", "1 %s" % method)])
        seen = []
        txn = layer.send_request(request, "peer", reliable, lambda t, r: seen.append(r.status))
        finals = []
        txn.final.addCallback(lambda r: finals.append(r.status))
        if cancel and method == "INVITE":
            txn.cancel()
        for status, delay in responses:
            layer.receive(parse_message(make_response(request, status, to_tag="x").serialize()),
                          "peer", reliable)
            clock.advance(delay)
        clock.advance(100)
        self.assertTrue(txn.terminated or txn.state == "proceeding")
        if txn.terminated:
            self.assertEqual(len(finals), 1)
            self.assertGreaterEqual(finals[0], 200)
        else:
            self.assertEqual(finals, [])
        # Nothing after a non-2xx final reaches the TU; only 2xx may repeat.
        finals_seen = [s for s in seen if s >= 200]
        if finals_seen and finals_seen[0] >= 300:
            self.assertEqual(len(finals_seen), 1)
        layer.shutdown()
        self.assertEqual(clock.getDelayedCalls(), [])
