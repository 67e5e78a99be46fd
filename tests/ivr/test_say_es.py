import datetime as dt
from decimal import Decimal

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.ivr.say import SayError, get_sayer

es = get_sayer("es")


class NumberTests(unittest.TestCase):
    def test_cardinals(self):
        expected = {
            0: ["0"],
            1: ["1"],
            7: ["7"],
            13: ["13"],
            21: ["21"],
            29: ["29"],
            31: ["31"],
            100: ["100"],
            101: ["ciento", "1"],
            115: ["ciento", "15"],
            500: ["500"],
            1000: ["mil"],
            1999: ["mil", "900", "99"],
            2000: ["2", "mil"],
            21000: ["21-m", "mil"],
            101000: ["ciento", "1-m", "mil"],
            1000000: ["1-m", "millon"],
            2000000: ["2", "millones"],
            21000000: ["21-m", "millones"],
            1001000000: ["mil", "1-m", "millones"],
            -7: ["minus", "7"],
        }
        for n, words in expected.items():
            self.assertEqual(es.number(n), words, n)

    def test_gender_agreement(self):
        self.assertEqual(es.number(1, "m"), ["1-m"])
        self.assertEqual(es.number(1, "f"), ["1-f"])
        self.assertEqual(es.number(21, "f"), ["21-f"])
        self.assertEqual(es.number(41, "m"), ["41-m"])
        self.assertEqual(es.number(11, "f"), ["11"])
        self.assertEqual(es.number(200, "f"), ["200-f"])
        self.assertEqual(es.number(251, "f"), ["200-f", "51-f"])
        self.assertEqual(es.number(200, "m"), ["200"])
        # before "mil" the unit is apocopated, the hundreds agree
        self.assertEqual(es.number(221000, "f"), ["200-f", "21-m", "mil"])
        # millions are counted in the masculine whatever the noun
        self.assertEqual(es.number(200000000, "f"), ["200", "millones"])
        self.assertRaises(SayError, es.number, 1, "x")

    def test_ordinals_and_digits(self):
        self.assertEqual(es.ordinal(1), ["ord-1"])
        self.assertEqual(es.digits("1206#"), ["1", "2", "0", "6", "pound"])
        self.assertEqual(es.spell("Ñu"), ["letter-n", "letter-u"])


class MoneyTests(unittest.TestCase):
    def test_dollars(self):
        cases = {
            "0.05": ["5", "cents"],
            "0.01": ["1-m", "cent"],
            "1.00": ["1-m", "dollar"],
            "12.34": ["12", "dollars", "con", "34", "cents"],
            "21.21": ["21-m", "dollars", "con", "21-m", "cents"],
            "0": ["0", "dollars"],
            "-2.50": ["minus", "2", "dollars", "con", "50", "cents"],
            "1000": ["mil", "dollars"],
            "1000000": ["1-m", "millon", "de", "dollars"],
            "3000000.10": ["3", "millones", "de", "dollars", "con", "10", "cents"],
            "1000001": ["1-m", "millon", "1-m", "dollars"],
        }
        for amount, words in cases.items():
            self.assertEqual(es.money(Decimal(amount), "USD"), words, amount)

    def test_pounds_are_feminine(self):
        self.assertEqual(es.money(Decimal("1.00"), "GBP"), ["1-f", "pound-sterling"])
        self.assertEqual(es.money(Decimal("21"), "GBP"), ["21-f", "pounds-sterling"])
        self.assertEqual(es.money(Decimal("300.01"), "GBP"), ["300-f", "pounds-sterling", "con", "1-m", "penny"])

    def test_euros(self):
        self.assertEqual(es.money(Decimal("1.50"), "EUR"), ["1-m", "euro", "con", "50", "euro-cents"])

    def test_unknown_currency(self):
        self.assertEqual(es.money(Decimal("3.40"), "CHF"),
                         ["3", "point", "4", "0", "letter-c", "letter-h", "letter-f"])


class DurationTests(unittest.TestCase):
    def test_durations(self):
        cases = {
            0: ["0", "seconds"],
            1: ["1-m", "second"],
            21: ["21-m", "seconds"],
            59: ["59", "seconds"],
            60: ["1-m", "minute"],
            61: ["1-m", "minute", "and", "1-m", "second"],
            349: ["5", "minutes", "and", "49", "seconds"],
            3600: ["1-f", "hour"],
            3661: ["1-f", "hour", "1-m", "minute", "and", "1-m", "second"],
            21 * 3600 + 60: ["21-f", "hours", "and", "1-m", "minute"],
        }
        for seconds, words in cases.items():
            self.assertEqual(es.duration(seconds), words, seconds)

    def test_round_up(self):
        self.assertEqual(es.duration(349, round_up_to_minutes=True), ["6", "minutes"])


class DateTimeTests(unittest.TestCase):
    def test_date(self):
        self.assertEqual(es.date(dt.date(2026, 3, 2)), ["monday", "2", "de", "march"])
        self.assertEqual(es.date(dt.date(2026, 3, 1), with_year=True),
                         ["sunday", "ord-1", "de", "march", "de", "2", "mil", "26"])
        self.assertEqual(es.date(dt.date(2021, 5, 21), with_weekday=False), ["21", "de", "may"])

    def test_time_is_24_hour(self):
        self.assertEqual(es.time(dt.time(14, 15)), ["las", "14", "and", "15"])
        self.assertEqual(es.time(dt.time(1, 0)), ["la", "1-f", "en-punto"])
        self.assertEqual(es.time(dt.time(21, 30)), ["las", "21-f", "and", "30"])
        self.assertEqual(es.time(dt.time(0, 5)), ["las", "0", "and", "5"])

    def test_relative(self):
        now = dt.datetime(2026, 11, 22, 15, 0)
        self.assertEqual(es.datetime(dt.datetime(2026, 11, 22, 9, 15), now), ["today", "at", "las", "9", "and", "15"])
        self.assertEqual(es.datetime(dt.datetime(2026, 11, 21, 13, 0), now), ["yesterday", "at", "las", "13", "en-punto"])
        self.assertEqual(es.datetime(dt.datetime(2026, 10, 1, 8, 0), now),
                         ["thursday", "ord-1", "de", "october", "at", "las", "8", "en-punto"])


class VocabularyTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.integers(min_value=-(10 ** 12) + 1, max_value=10 ** 12 - 1), st.sampled_from([None, "m", "f"]))
    def test_numbers_stay_in_vocabulary(self, n, gender):
        self.assertLessEqual(set(es.number(n, gender)), es.vocabulary)

    @settings(max_examples=200, deadline=None)
    @given(st.decimals(min_value=-10 ** 9, max_value=10 ** 9, places=2),
           st.sampled_from(["USD", "EUR", "GBP", "MXN", "XYZ"]))
    def test_money_stays_in_vocabulary(self, amount, currency):
        self.assertLessEqual(set(es.money(amount, currency)), es.vocabulary)

    @settings(max_examples=200, deadline=None)
    @given(st.integers(min_value=0, max_value=10 ** 9), st.booleans())
    def test_durations_stay_in_vocabulary(self, seconds, round_up):
        self.assertLessEqual(set(es.duration(seconds, round_up)), es.vocabulary)

    @settings(max_examples=200, deadline=None)
    @given(st.datetimes(min_value=dt.datetime(1000, 1, 1)), st.datetimes(min_value=dt.datetime(1000, 1, 1)))
    def test_dates_stay_in_vocabulary(self, when, now):
        self.assertLessEqual(set(es.datetime(when, now)), es.vocabulary)
        self.assertLessEqual(set(es.date(when, with_year=True)), es.vocabulary)
