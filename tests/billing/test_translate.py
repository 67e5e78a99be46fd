from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.billing.translate import (
    MAX_NUMBER_LENGTH, Substitution, TranslationError, TranslationRuleError, TranslationRules,
    Transliteration, parse_rules, translate,
)


class GuideExampleTests(unittest.TestCase):
    def test_prepaid_ani_translation(self):
        self.assertEqual(translate("s/^0/ani44/", "021234567"), "ani4421234567")

    def test_callback_ani_translation(self):
        self.assertEqual(translate("s/^0/cb44/", "021234567"), "cb4421234567")

    def test_callback_dial_translation(self):
        self.assertEqual(translate("s/^0/44/", "0 5 888 7766"), "44 5 888 7766")
        self.assertEqual(translate("s/^0/44/", "058887766"), "4458887766")

    def test_rule_leaves_non_matching_numbers_alone(self):
        self.assertEqual(translate("s/^0/ani44/", "4421234567"), "4421234567")


class SubstitutionTests(unittest.TestCase):
    # Expectations checked against perl 5 with: perl -ne '$_=$_; RULE; print'
    PERL_AGREES = [
        ("s/x*/-/g", "abxd", "-a-b--d-"),
        ("s/(\\d{3})(\\d+)/$2-$1/", "1234567", "4567-123"),
        ("s/(a)|b/[$1]/g", "abab", "[a][][a][]"),
        ("s/\\d$/X/", "a1b2", "a1bX"),
        ("s/1/X/", "1211", "X211"),
        ("s/1/X/g", "1211", "X2XX"),
        ("s/A/x/gi", "aA", "xx"),
        ("s/^(?:00|\\+)//", "+15551234", "15551234"),
        ("s/^(?:00|\\+)//", "0015551234", "15551234"),
        ("s/^1(\\d{10})$/${1}/", "12125551234", "2125551234"),
        ("s/.*/[$&]/", "123", "[123]"),
        ("s/(\\d)\\1/<$1>/g", "112233", "<1><2><3>"),
        ("s/5(?=5)/x/g", "5551", "xx51"),
        ("s/\\D//g", "+1 (555) 123-4567", "15551234567"),
        ("s/[^0-9]//g", "+1 (555)", "1555"),
        ("s/(\\d+?)(\\d)/$2$1/", "1234", "21" + "34"),
        ("s/\\$/USD/", "$5", "USD5"),
        ("s/4/\\$/", "45", "$5"),
        ("s/a/\\\\/", "a1", "\\1"),
    ]

    def test_perl_semantics(self):
        for rule, number, expected in self.PERL_AGREES:
            self.assertEqual(translate(rule, number), expected, rule)

    def test_several_rules_run_in_order(self):
        rules = parse_rules("s/^00//; s/^0/44/;tr/0-9//cd ;")
        self.assertEqual(len(rules.steps), 3)
        self.assertEqual(rules.apply("00 44 (20) 7946-0018"), "442079460018")
        self.assertEqual(rules.apply("020 7946 0018"), "442079460018")
        self.assertEqual(str(rules), "s/^00//; s/^0/44/; tr/0-9//cd")

    def test_other_delimiters(self):
        self.assertEqual(translate("s#^\\+##", "+15551234"), "15551234")
        self.assertEqual(translate("s|^0|44|", "0123"), "44123")
        self.assertEqual(translate("s/^\\//x/", "/1"), "x1")

    def test_blank_rules_change_nothing(self):
        for text in ("", "  ", ";", None):
            rules = parse_rules(text)
            self.assertFalse(rules)
            self.assertEqual(rules.apply("0123"), "0123")

    def test_parsed_rules_can_be_reused(self):
        rules = parse_rules("s/^0/44/")
        self.assertIsInstance(rules, TranslationRules)
        self.assertIsInstance(rules.steps[0], Substitution)
        self.assertEqual(translate(rules, "012"), "4412")
        self.assertEqual(translate(rules, "099"), "4499")


class TransliterationTests(unittest.TestCase):
    def test_tr_flags(self):
        cases = [
            ("tr/1//s", "11122111", "1221"),
            ("tr/0-9//cd", "00 44 (20) 7946-0018", "00442079460018"),
            ("tr/a-c/A/", "abcd", "AAAd"),
            ("tr/0-9/a/c", "a1b2", "a1a2"),
            ("tr/a-z/A-Z/", "abc1", "ABC1"),
            ("y/abc/xy/d", "aabbcc", "xxyy"),
            ("tr/a//", "banana", "banana"),
            ("tr/-//d", "555-1234", "5551234"),
        ]
        for rule, number, expected in cases:
            self.assertEqual(translate(rule, number), expected, rule)
        self.assertIsInstance(parse_rules("tr/a/b/").steps[0], Transliteration)


class RuleErrorTests(unittest.TestCase):
    CASES = [
        ("s/^0/44", 5, "not closed"),
        ("s/^0", 2, "not closed"),
        ("s/(/x/", 2, "unmatched '('"),
        ("s/)/x/", 2, "unmatched ')'"),
        ("s/a/b/e", 6, "'e' flag"),
        ("s/a/b/x", 6, "unsupported flag 'x'"),
        ("tr/a/b/g", 7, "unsupported flag 'g'"),
        ("s/a/$x/", 4, "variables"),
        ("s/a/@foo/", 4, "arrays"),
        ("s/$foo/x/", 2, "variables"),
        ("s/a/$2/", 4, "group 2"),
        ("s/(a)/\\2/", 6, "group 2"),
        ("s/a/\\u$1/", 4, "unsupported escape \\u"),
        ("s/(\\d+)*/x/", 7, "backtrack"),
        ("s/(0|00)+/x/", 8, "backtrack"),
        ("s/((\\d)+)+/x/", 9, "backtrack"),
        ("s/a++/x/", 4, "possessive"),
        ("s/*/x/", 2, "follows nothing"),
        ("s/a{3,1}/x/", 3, "reversed"),
        ("s/a{2000}/x/", 3, "1000"),
        ("s/[a/x/", 2, "unterminated character class"),
        ("s/[[:digit:]]/x/", 3, "POSIX"),
        ("s/\\p{L}/x/", 2, "unsupported escape \\p"),
        ("s/(?{ system 1 })/x/", 2, "unsupported group construct"),
        ("s/(?<n>a)/x/", 2, "unsupported group construct"),
        ("s/\\12/x/", 2, "above \\9"),
        ("s//x/", 2, "empty pattern"),
        ("s{a}{b}", 1, "bracketing"),
        ("sxaxbx", 0, "unknown rule 'sxaxbx'"),
        ("s", 1, "missing delimiter"),
        ("x/a/b/", 0, "unknown rule 'x'"),
        ("/a/b/", 0, "unknown rule '/'"),
        ("s/a/b/ s/c/d/", 7, "separated by ';'"),
        ("system('rm')", 0, "unknown rule 'system'"),
        ("tr/9-0//", 3, "reversed"),
        ("tr/ab/xy/c", 6, "one character"),
        ("s/(?<=a+)b/x/", 2, "invalid pattern"),
    ]

    def test_errors_name_the_problem_and_its_position(self):
        for text, position, words in self.CASES:
            with self.assertRaises(TranslationRuleError, msg=text) as caught:
                parse_rules(text)
            self.assertIn(words, caught.exception.reason, text)
            self.assertEqual(caught.exception.position, position, text)
            self.assertIn(f"at position {position}", str(caught.exception))

    def test_errors_are_value_errors(self):
        self.assertTrue(issubclass(TranslationRuleError, TranslationError))
        self.assertTrue(issubclass(TranslationError, ValueError))

    def test_non_string_rules(self):
        self.assertRaises(TypeError, parse_rules, 42)

    def test_numbers_must_be_short_strings(self):
        rules = parse_rules("s/^0/44/")
        self.assertRaises(TranslationError, rules.apply, "1" * (MAX_NUMBER_LENGTH + 1))
        self.assertRaises(TranslationError, rules.apply, 12345)
        self.assertEqual(rules.apply("0" * MAX_NUMBER_LENGTH)[:3], "440")


_RULE_ALPHABET = "s/tr;y^$()[]{}|*+?.\\0123456789ad-:,@&e gic#"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_RULE_ALPHABET, max_size=24), st.text(alphabet="0123456789+ad-() ", max_size=30))
def _fuzz_rules(case, text, number):
    try:
        rules = parse_rules(text)
    except TranslationRuleError:
        return
    case.assertIsInstance(rules.apply(number), str)
    case.assertEqual(str(parse_rules(str(rules))), str(rules))


class PropertyTests(unittest.TestCase):
    def test_fuzzed_rules_raise_only_rule_errors_and_apply_cleanly(self):
        _fuzz_rules(self)
