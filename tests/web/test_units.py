"""The web's pure parts: session tokens, byte ranges, body validation, the HTML
sanitizer, message summaries and option checks; fuzzed where they parse."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.mailbox.compose import build_fax_message, build_voice_message
from portaum_tx.store import MessageInfo
from portaum_tx.web import messages
from portaum_tx.web.api import (ApiError, Field, RangeNotSatisfiable, Router, Route, parse_json,
                                parse_range, validate_body)
from portaum_tx.web.app_options import OptionValueError, check_options
from portaum_tx.web.sanitize import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, sanitize_html
from portaum_tx.web.sessions import BadSession, SessionSigner


class SessionTests(unittest.TestCase):
    def test_round_trip_and_csrf(self):
        signer = SessionSigner("secret", lifetime=100)
        token, session = signer.issue("user", "12065557777", 1000, "hash-1")
        again = signer.verify(token, 1050)
        self.assertEqual(again, session)
        self.assertTrue(signer.check_csrf(again, signer.csrf_token(session)))
        self.assertFalse(signer.check_csrf(again, "x" * 32))
        self.assertFalse(signer.check_csrf(again, None))

    def test_expired_forged_and_foreign_tokens_are_refused(self):
        signer = SessionSigner("secret", lifetime=100)
        token, _ = signer.issue("user", "12065557777", 1000)
        with self.assertRaises(BadSession):
            signer.verify(token, 1100)
        with self.assertRaises(BadSession):
            SessionSigner("another node's secret").verify(token, 1001)
        body, mac = token.split(".")
        with self.assertRaises(BadSession):
            signer.verify(body.replace("dXNlc", "YWRta") + "." + mac, 1001)

    def test_any_node_with_the_secret_accepts_the_session(self):
        token, session = SessionSigner("cluster").issue("admin", "operator", 5)
        self.assertEqual(SessionSigner("cluster").verify(token, 6), session)

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=300))
    def test_fuzz_tokens(self, text):
        signer = SessionSigner("secret")
        try:
            signer.verify(text, 0)
        except BadSession:
            return
        self.fail(f"accepted {text!r}")


class RangeTests(unittest.TestCase):
    def test_forms(self):
        self.assertEqual(parse_range("bytes=0-99", 1000), (0, 99))
        self.assertEqual(parse_range("bytes=900-", 1000), (900, 999))
        self.assertEqual(parse_range("bytes=-100", 1000), (900, 999))
        self.assertEqual(parse_range("bytes=990-5000", 1000), (990, 999))
        self.assertIsNone(parse_range(None, 1000))
        self.assertIsNone(parse_range("bytes=0-1,5-6", 1000))   # several ranges: whole body
        self.assertIsNone(parse_range("items=0-1", 1000))
        self.assertIsNone(parse_range("bytes=5-1", 1000))
        with self.assertRaises(RangeNotSatisfiable):
            parse_range("bytes=1000-", 1000)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=40), st.integers(min_value=1, max_value=10**7))
    def test_fuzz(self, header, length):
        try:
            result = parse_range(header, length)
        except RangeNotSatisfiable:
            return
        if result is not None:
            first, last = result
            self.assertTrue(0 <= first <= last < length, (header, length, result))


FIELDS = [Field("name", "string", "a name", True, max_length=10),
          Field("count", "integer", "a count"), Field("tags", "array", "tags", max_items=3),
          Field("kind", "string", "kind", enum=("a", "b")), Field("note", "string", "n", nullable=True)]
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)


class ValidationTests(unittest.TestCase):
    def test_checks(self):
        self.assertEqual(validate_body(FIELDS, {"name": "x", "count": 2, "tags": ["a"], "note": None}),
                         {"name": "x", "count": 2, "tags": ["a"], "note": None})
        for body, field in (({}, "name"), ({"name": 5}, "name"), ({"name": "x" * 11}, "name"),
                            ({"name": "x", "count": True}, "count"),
                            ({"name": "x", "tags": ["a", 1]}, "tags"),
                            ({"name": "x", "tags": ["a"] * 4}, "tags"),
                            ({"name": "x", "kind": "c"}, "kind"), ({"name": "x", "other": 1}, "other")):
            with self.assertRaises(ApiError) as caught:
                validate_body(FIELDS, body)
            self.assertEqual((caught.exception.status, caught.exception.field), (400, field), body)

    @settings(max_examples=300, deadline=None)
    @given(json_values)
    def test_fuzz_bodies(self, value):
        try:
            result = validate_body(FIELDS, value)
        except ApiError as exc:
            self.assertEqual(exc.status, 400)
            return
        self.assertIsInstance(result["name"], str)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=200))
    def test_fuzz_json(self, raw):
        try:
            parse_json(raw)
        except ApiError as exc:
            self.assertEqual(exc.status, 400)

    def test_router(self):
        async def handler(ctx):
            return {}
        router = Router([Route("GET", "/api/v1/things/{id}", handler, "public", "s", "t")])
        route, params = router.match("GET", "/api/v1/things/a%2Fb")
        self.assertEqual(params, {"id": "a%2Fb"})
        with self.assertRaises(ApiError) as caught:
            router.match("POST", "/api/v1/things/1")
        self.assertEqual(caught.exception.status, 405)
        with self.assertRaises(ApiError) as caught:
            router.match("GET", "/api/v1/things/1/more")
        self.assertEqual(caught.exception.code, "no_route")
        with self.assertRaises(ValueError):
            router.add(Route("GET", "/api/v1/things/{id}", handler, "public", "s", "t"))


class _Check(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(tag)
        for name, value in attrs:
            if name not in ALLOWED_ATTRIBUTES | {"target", "rel"}:
                self.problems.append(name)
            if name in ("href", "src") and value and not value.lower().startswith(
                    ("http:", "https:", "//", "mailto:", "cid:", "#")):
                self.problems.append(value)


class SanitizerTests(unittest.TestCase):
    def test_removes_what_could_run_or_fetch(self):
        dirty = ('<p style="background:url(https://x.example/a)" onmouseover="x()">Hi</p>'
                 '<script>evil()</script><style>body{background:url(//x)}</style>'
                 '<a href=" jav&#x09;ascript:alert(1)">x</a><img src="//x.example/i.png">'
                 '<img src="cid:logo@1"><form action="https://x"><input name=a></form>'
                 '<iframe src="https://x"></iframe><b>kept</b>')
        clean, blocked = sanitize_html(dirty)
        for text in ("script", "evil", "onmouseover", "url(", "javascript", "x.example", "<form",
                     "<input", "<iframe"):
            self.assertNotIn(text, clean.lower())
        self.assertIn("<b>kept</b>", clean)
        self.assertIn('src="cid:logo@1"', clean)
        self.assertEqual(blocked, 1)
        shown, blocked = sanitize_html(dirty, remote_images=True)
        self.assertIn("//x.example/i.png", shown)
        self.assertEqual(blocked, 0)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(
        ["<script>", "</script>", "<a href='javascript:x'>", "<img src=x onerror=y>", "<b>", "</b>",
         "<style>", "</style>", "<p style='x:url(y)'>", "text", "&lt;", "<!--", "-->", "<svg><g>",
         "</svg>", "<div", ">", "'", "\"", "<iframe>", "</iframe>", "<a href=https://ok>", "</a>",
         "<IMG SRC=//remote>", "<table><tr><td>"]) | st.text(max_size=8), max_size=30))
    def test_fuzz_output_is_allow_listed(self, pieces):
        clean, _ = sanitize_html("".join(pieces))
        check = _Check()
        check.feed(clean)
        check.close()
        self.assertEqual(check.problems, [], clean)
        self.assertNotIn("<script", clean.lower())


class MessageSummaryTests(unittest.TestCase):
    when = dt.datetime(2026, 3, 5, 17, 30, tzinfo=dt.timezone.utc)

    def test_voice_and_fax(self):
        voice = build_voice_message(mailbox="1", domain="example.net", timezone="UTC", when=self.when,
                                    duration=65, audio=b"RIFFxxxx", audio_format="wav",
                                    caller="12065550101", caller_name="Mark")
        info = MessageInfo(3, len(voice), 100, 0, (), "voice", False)
        row = messages.summary("INBOX", info, messages.parse_headers(voice))
        self.assertEqual((row["kind"], row["from"], row["duration"], row["seen"]),
                         ("voice", "12065550101", 65, False))
        detail = messages.detail("INBOX", info, voice)
        self.assertEqual(detail["attachments"][0]["content_type"], "audio/wav")
        self.assertEqual(messages.attachment(messages.parse(voice), 1)[1], b"RIFFxxxx")
        self.assertIsNone(messages.attachment(messages.parse(voice), 2))
        fax = build_fax_message(mailbox="1", domain="example.net", timezone="UTC", when=self.when,
                                document=b"%PDF-1.4", document_format="pdf", pages=3)
        row = messages.summary("INBOX", MessageInfo(4, 1, 1, 1, (), "fax", False),
                               messages.parse_headers(fax))
        self.assertEqual((row["kind"], row["pages"], row["seen"]), ("fax", 3, True))

    @settings(max_examples=150, deadline=None)
    @given(st.binary(max_size=400))
    def test_fuzz_any_bytes_give_a_row(self, data):
        info = MessageInfo(1, len(data), 0, 0, (), "email", False)
        row = messages.summary("INBOX", info, messages.parse_headers(data))
        self.assertEqual(row["kind"], "email")
        messages.detail("INBOX", info, data)


class OptionTests(unittest.TestCase):
    def test_values_are_checked_and_normalised(self):
        self.assertEqual(check_options("prepaid", {"announce_balance": True, "maximum_card_length": 12}),
                         {"announce_balance": "yes", "maximum_card_length": "12"})
        for options in ({"announce_balance": "maybe"}, {"maximum_card_length": "ten"},
                        {"seconds_rounding_mode": "down"}, {"no_such_option": "1"}):
            with self.assertRaises(OptionValueError):
                check_options("prepaid", options)
        with self.assertRaises(OptionValueError):
            check_options("no-such-application", {})
