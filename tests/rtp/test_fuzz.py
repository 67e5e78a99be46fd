"""Every parser of untrusted input raises only its own error class."""

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.rtp.dtmf import DtmfError, TelephoneEventReceiver, parse_sip_info_dtmf
from portaum_tx.rtp.player import AuFormatError, build_au, parse_au


class FuzzTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(["application/dtmf-relay", "application/dtmf", "text/plain",
                            "application/DTMF-relay; charset=x", ""]),
           st.one_of(st.binary(max_size=60), st.text(max_size=60),
                     st.builds(lambda s, d: f"Signal={s}\r\nDuration={d}\r\n", st.text(max_size=4),
                               st.text(max_size=6))))
    def test_sip_info_bodies(self, content_type, body):
        try:
            digit = parse_sip_info_dtmf(content_type, body)
        except DtmfError:
            return
        self.assertIn(digit.digit, "0123456789*#ABCD!")

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.booleans(), st.binary(max_size=6)), max_size=20))
    def test_telephone_event_streams(self, packets):
        receiver = TelephoneEventReceiver()
        for timestamp, marker, payload in packets:
            try:
                digit = receiver.feed(timestamp, marker, payload)
            except DtmfError:
                continue
            if digit is not None:
                self.assertEqual(digit.source, "rfc4733")

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=64), st.integers(0, 40), st.binary(max_size=8))
    def test_au_files(self, tail, cut, patch):
        data = bytearray(build_au(b"\x01" * 16) + tail)
        data[cut:cut + len(patch)] = patch
        try:
            codec, encoded = parse_au(bytes(data))
        except AuFormatError:
            return
        self.assertIn(codec.name, ("PCMU", "PCMA"))
