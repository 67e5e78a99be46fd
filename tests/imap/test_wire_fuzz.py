"""The pure IMAP parsers on arbitrary input: they answer or raise their own
error class, never anything else; the MIME splitter cuts parts exactly."""

from __future__ import annotations

import base64

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.imap.fetch import FetchError, parse_fetch
from portaum_tx.imap.mime import Part, body_structure, envelope, split_multipart
from portaum_tx.imap.search import Candidate, SearchError, parse_search
from portaum_tx.imap.wire import (CommandSyntaxError, SequenceSet, decode_mailbox, encode_mailbox,
                                  render, tokenize)

_IMAPISH = st.lists(st.sampled_from([b"(", b")", b'"', b"\\", b"{", b"}", b"[", b"]", b" ",
                                     b"\r\n", b"*", b":", b",", b"1", b"FETCH", b"BODY", b"<",
                                     b">", b".", b"{3}\r\nabc", b"\xc3\xa9", b"\xff", b"NIL",
                                     b" NOT", b" OR", b" UID", b" HEADER", b" SUBJECT",
                                     b" ON", b" LARGER", b" KEYWORD", b" CHARSET"]),
                    max_size=40).map(b"".join)


class WireFuzzTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.binary(max_size=200), _IMAPISH))
    def test_tokenize_raises_only_its_own_error(self, data):
        try:
            tokens = tokenize(data)
        except CommandSyntaxError:
            return
        self.assertIsInstance(tokens, list)

    @settings(max_examples=200, deadline=None)
    @given(_IMAPISH)
    def test_fetch_and_search_parsers_raise_only_their_errors(self, data):
        try:
            tokens = tokenize(b"(" + data + b")")
        except CommandSyntaxError:
            return
        for parse in (lambda: parse_fetch(tokens),
                      lambda: parse_search(tokens[0] if tokens else [], max_seq=5, max_uid=9)):
            try:
                result = parse()
            except (FetchError, SearchError, CommandSyntaxError):
                continue
            self.assertIsNotNone(result)

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet="0123456789*:,", max_size=20), st.integers(1, 50))
    def test_sequence_sets(self, text, star):
        try:
            numbers = SequenceSet(text)
        except CommandSyntaxError:
            return
        selected = numbers.select(range(1, star + 1), star)
        self.assertTrue(all(1 <= n <= star for n in selected))

    @settings(max_examples=100, deadline=None)
    @given(st.recursive(st.one_of(st.none(), st.integers(0, 10 ** 9), st.text(max_size=20),
                                  st.binary(max_size=20)),
                        lambda children: st.lists(children, max_size=4), max_leaves=12))
    def test_rendered_values_tokenize_back(self, value):
        rendered = render([value])
        tokens = tokenize(rendered)
        self.assertEqual(len(tokens), 1)


class MimeTests(unittest.TestCase):
    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.binary(max_size=60).filter(lambda b: b"--b" not in b), min_size=1,
                    max_size=4))
    def test_multipart_parts_are_cut_exactly(self, bodies):
        message = b'Content-Type: multipart/mixed; boundary="b"\r\n\r\npreamble\r\n'
        for body in bodies:
            message += b"--b\r\nContent-Type: application/octet-stream\r\n\r\n" + body + b"\r\n"
        message += b"--b--\r\nepilogue\r\n"
        part = Part(message)
        self.assertEqual([p.body for p in part.parts], bodies)
        self.assertEqual(part.part((len(bodies),)).body, bodies[-1])
        structure = body_structure(part)
        self.assertEqual(structure[len(bodies)], "MIXED")

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=300))
    def test_any_bytes_give_a_structure(self, data):
        part = Part(data)
        render(body_structure(part))
        render(envelope(part))

    def test_search_text_on_base64_body(self):
        encoded = base64.b64encode("Grüße aus Köln".encode()).decode()
        raw = ("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
               f"\r\n{encoded}\r\n").encode()
        _, query = parse_search(tokenize("BODY köln".encode()), max_seq=1, max_uid=1)
        self.assertTrue(query.needs_text)
        self.assertTrue(query.predicate(Candidate(1, 1, len(raw), 0, 0, (), False, raw)))

    def test_split_multipart_ignores_boundary_prefix_lines(self):
        body = b"--bx\r\nnot a part\r\n--b\r\nA\r\n--b--\r\n"
        self.assertEqual(split_multipart(body, b"b"), [b"A"])


class MailboxNameTests(unittest.TestCase):
    def test_rfc3501_example(self):
        self.assertEqual(decode_mailbox("~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
                         "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e")
        self.assertEqual(encode_mailbox("a&b"), "a&-b")
        with self.assertRaises(CommandSyntaxError):
            decode_mailbox("broken&AAA")

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=30))
    def test_round_trip(self, name):
        encoded = encode_mailbox(name)
        self.assertTrue(encoded.isascii())
        self.assertEqual(decode_mailbox(encoded), name)

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet="&-ABab+,/=0", max_size=20))
    def test_decoder_raises_only_its_error(self, text):
        try:
            decode_mailbox(text)
        except CommandSyntaxError:
            pass
