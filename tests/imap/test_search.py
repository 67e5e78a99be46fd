"""Every SEARCH key of RFC 3501 6.4.4 against a small set of messages."""

from __future__ import annotations

import datetime as dt

from twisted.trial import unittest

from portaum_tx.imap.search import Candidate, SearchError, UnsupportedCharset, parse_search
from portaum_tx.imap.wire import tokenize
from portaum_tx.mailbox.flags import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN


def _raw(subject, sender, to, date, body, extra=""):
    return (f"From: {sender}\r\nTo: {to}\r\nCc: boss@example.com\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\n{extra}\r\n{body}\r\n").encode("utf-8")


def _when(day):
    return int(dt.datetime(2026, 3, day, 12, tzinfo=dt.timezone.utc).timestamp())


MESSAGES = [
    Candidate(1, 10, 500, _when(1), SEEN | ANSWERED, ("$Work",), False,
              _raw("Quarterly report", "Ann <ann@example.com>", "me@example.net",
                   "Sun, 1 Mar 2026 09:00:00 +0000", "numbers inside")),
    Candidate(2, 11, 1500, _when(3), FLAGGED, (), True,
              _raw("=?utf-8?q?Caf=C3=A9?= tonight", "Bob <bob@example.org>", "me@example.net",
                   "Tue, 3 Mar 2026 09:00:00 +0000", "see you", "X-Mailer: Thing\r\n")),
    Candidate(3, 15, 3000, _when(5), DELETED | DRAFT | SEEN, ("$Junk",), True,
              _raw("voice message", "Carol <carol@example.com>", "other@example.net",
                   "Thu, 5 Mar 2026 09:00:00 +0000", "listen to the attachment")),
]


def search(text: str) -> list[int]:
    _, query = parse_search(tokenize(text.encode("utf-8")), max_seq=3, max_uid=15)
    return [m.seq for m in MESSAGES if query.predicate(m)]


class SearchKeyTests(unittest.TestCase):
    def test_flag_keys(self):
        self.assertEqual(search("ALL"), [1, 2, 3])
        self.assertEqual(search("ANSWERED"), [1])
        self.assertEqual(search("UNANSWERED"), [2, 3])
        self.assertEqual(search("DELETED"), [3])
        self.assertEqual(search("UNDELETED"), [1, 2])
        self.assertEqual(search("DRAFT"), [3])
        self.assertEqual(search("UNDRAFT"), [1, 2])
        self.assertEqual(search("FLAGGED"), [2])
        self.assertEqual(search("UNFLAGGED"), [1, 3])
        self.assertEqual(search("SEEN"), [1, 3])
        self.assertEqual(search("UNSEEN"), [2])
        self.assertEqual(search("RECENT"), [2, 3])
        self.assertEqual(search("NEW"), [2])
        self.assertEqual(search("OLD"), [1])
        self.assertEqual(search("KEYWORD $Work"), [1])
        self.assertEqual(search("UNKEYWORD $Junk"), [1, 2])
        self.assertEqual(search("KEYWORD \\Seen"), [1, 3])

    def test_size_date_and_number_keys(self):
        self.assertEqual(search("LARGER 1000"), [2, 3])
        self.assertEqual(search("SMALLER 1500"), [1])
        self.assertEqual(search("BEFORE 3-Mar-2026"), [1])
        self.assertEqual(search("ON 3-Mar-2026"), [2])
        self.assertEqual(search("SINCE 3-Mar-2026"), [2, 3])
        self.assertEqual(search("SENTBEFORE 3-Mar-2026"), [1])
        self.assertEqual(search("SENTON 5-Mar-2026"), [3])
        self.assertEqual(search("SENTSINCE 2-Mar-2026"), [2, 3])
        self.assertEqual(search("2:*"), [2, 3])
        self.assertEqual(search("UID 11:15"), [2, 3])
        self.assertEqual(search("UID *"), [3])

    def test_text_keys(self):
        self.assertEqual(search("FROM bob"), [2])
        self.assertEqual(search("TO other@"), [3])
        self.assertEqual(search("CC boss"), [1, 2, 3])
        self.assertEqual(search("BCC boss"), [])
        self.assertEqual(search("SUBJECT caf\u00e9"), [2])
        self.assertEqual(search('SUBJECT "quarterly REPORT"'), [1])
        self.assertEqual(search("HEADER X-Mailer thing"), [2])
        self.assertEqual(search('HEADER X-Mailer ""'), [2])
        self.assertEqual(search("BODY attachment"), [3])
        self.assertEqual(search("TEXT carol"), [3])
        self.assertEqual(search("TEXT numbers"), [1])

    def test_combinations(self):
        self.assertEqual(search("NOT SEEN"), [2])
        self.assertEqual(search("OR FLAGGED DRAFT"), [2, 3])
        self.assertEqual(search("(OR ANSWERED FLAGGED) SMALLER 1000"), [1])
        self.assertEqual(search("OR (FROM ann) (FROM carol) NOT DELETED"), [1])
        self.assertEqual(search('CHARSET UTF-8 SUBJECT "caf\u00e9"'), [2])

    def test_errors(self):
        for text in ("", "BOGUS", "LARGER x", "ON 31-Foo-2026", "OR SEEN", "NOT", "FROM",
                     "UID abc", "HEADER Subject"):
            with self.assertRaises(SearchError, msg=text):
                search(text)
        with self.assertRaises(UnsupportedCharset):
            search("CHARSET KOI8-R ALL")

    def test_only_text_keys_need_the_message(self):
        _, query = parse_search(tokenize(b"UNSEEN LARGER 10 UID 1:*"), max_seq=3, max_uid=15)
        self.assertFalse(query.needs_text)
        _, query = parse_search(tokenize(b"OR SEEN (SUBJECT x)"), max_seq=3, max_uid=15)
        self.assertTrue(query.needs_text)
