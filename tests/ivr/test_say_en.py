import datetime as dt
from decimal import Decimal

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.ivr.say import SayError, get_sayer

en = get_sayer("en")


class NumberTests(unittest.TestCase):
    def test_cardinals(self):
        expected = {
            0: ["0"],
            1: ["1"],
            7: ["7"],
            13: ["13"],
            21: ["21"],
            100: ["1", "hundred"],
            101: ["1", "hundred", "1"],
            115: ["1", "hundred", "15"],
            1000: ["1", "thousand"],
            1999: ["1", "thousand", "9", "hundred", "99"],
            21000: ["21", "thousand"],
            1000000: ["1", "million"],
            2021001: ["2", "million", "21", "thousand", "1"],
            3000000000: ["3", "billion"],
            -42: ["minus", "42"],
        }
        for n, words in expected.items():
            self.assertEqual(en.number(n), words, n)

    def test_decimal_integers_are_numbers(self):
        self.assertEqual(en.number(Decimal("12")), ["12"])

    def test_rejects_what_is_not_an_integer(self):
        for bad in (1.5, "12", None, True, Decimal("1.5"), 10 ** 12):
            self.assertRaises(SayError, en.number, bad)

    def test_ordinals(self):
        self.assertEqual(en.ordinal(1), ["ord-1"])
        self.assertEqual(en.ordinal(31), ["ord-31"])
        self.assertRaises(SayError, en.ordinal, 0)
        self.assertRaises(SayError, en.ordinal, 32)

    def test_digits(self):
        self.assertEqual(en.digits("1206"), ["1", "2", "0", "6"])
        self.assertEqual(en.digits("+1 (206) 555-01*#"),
                         ["plus", "1", "2", "0", "6", "5", "5", "5", "0", "1", "star", "pound"])
        self.assertEqual(en.digits(4545), ["4", "5", "4", "5"])
        self.assertRaises(SayError, en.digits, "12a")
        self.assertRaises(SayError, en.digits, -3)

    def test_spell(self):
        self.assertEqual(en.spell("Bro wn"), ["letter-b", "letter-r", "letter-o", "letter-w", "letter-n"])
        self.assertEqual(en.spell("Núñez"), ["letter-n", "letter-u", "letter-n", "letter-e", "letter-z"])
        self.assertEqual(en.spell("a.b@c-1"),
                         ["letter-a", "dot", "letter-b", "at-sign", "letter-c", "dash", "1"])
        self.assertRaises(SayError, en.spell, "a/b")
        self.assertRaises(SayError, en.spell, 12)


class MoneyTests(unittest.TestCase):
    def test_dollars(self):
        cases = {
            "0.05": ["5", "cents"],
            "0.01": ["1", "cent"],
            "1.00": ["1", "dollar"],
            "12.34": ["12", "dollars", "and", "34", "cents"],
            "1.01": ["1", "dollar", "and", "1", "cent"],
            "0": ["0", "dollars"],
            "-2.50": ["minus", "2", "dollars", "and", "50", "cents"],
            "1000000": ["1", "million", "dollars"],
            "0.005": ["1", "cent"],  # rounded half up to the cent
        }
        for amount, words in cases.items():
            self.assertEqual(en.money(Decimal(amount), "USD"), words, amount)

    def test_other_currencies(self):
        self.assertEqual(en.money(Decimal("1.01"), "GBP"), ["1", "pound-sterling", "and", "1", "penny"])
        self.assertEqual(en.money(Decimal("3.20"), "gbp"), ["3", "pounds-sterling", "and", "20", "pence"])
        self.assertEqual(en.money(Decimal("2.01"), "EUR"), ["2", "euros", "and", "1", "euro-cent"])

    def test_unknown_currency_is_a_decimal_and_its_code(self):
        self.assertEqual(en.money(Decimal("12.05"), "CHF"),
                         ["12", "point", "0", "5", "letter-c", "letter-h", "letter-f"])

    def test_rejects_floats_and_garbage(self):
        for bad in (0.1, "abc", None, Decimal("NaN"), Decimal("Infinity")):
            self.assertRaises(SayError, en.money, bad, "USD")


class DurationTests(unittest.TestCase):
    def test_durations(self):
        cases = {
            0: ["0", "seconds"],
            1: ["1", "second"],
            59: ["59", "seconds"],
            60: ["1", "minute"],
            61: ["1", "minute", "and", "1", "second"],
            349: ["5", "minutes", "and", "49", "seconds"],
            3600: ["1", "hour"],
            3661: ["1", "hour", "1", "minute", "and", "1", "second"],
            7260: ["2", "hours", "and", "1", "minute"],
            90000: ["25", "hours"],
        }
        for seconds, words in cases.items():
            self.assertEqual(en.duration(seconds), words, seconds)

    def test_round_up_to_minutes(self):
        self.assertEqual(en.duration(349, round_up_to_minutes=True), ["6", "minutes"])
        self.assertEqual(en.duration(360, round_up_to_minutes=True), ["6", "minutes"])
        self.assertEqual(en.duration(1, round_up_to_minutes=True), ["1", "minute"])

    def test_other_types(self):
        self.assertEqual(en.duration(dt.timedelta(minutes=2)), ["2", "minutes"])
        self.assertEqual(en.duration(59.9), ["59", "seconds"])

    def test_rejects_negative_and_nonsense(self):
        for bad in (-1, float("nan"), "60", None):
            self.assertRaises(SayError, en.duration, bad)


class DateTimeTests(unittest.TestCase):
    def test_date(self):
        self.assertEqual(en.date(dt.date(2026, 3, 2)), ["monday", "march", "ord-2"])
        self.assertEqual(en.date(dt.date(2026, 3, 31), with_year=True, with_weekday=False),
                         ["march", "ord-31", "20", "26"])

    def test_years(self):
        self.assertEqual(en.year(1999), ["19", "99"])
        self.assertEqual(en.year(2005), ["2", "thousand", "5"])
        self.assertEqual(en.year(2000), ["2", "thousand"])
        self.assertEqual(en.year(1900), ["19", "hundred"])
        self.assertEqual(en.year(1905), ["19", "oh", "5"])
        self.assertEqual(en.year(2010), ["20", "10"])

    def test_time_is_12_hour(self):
        self.assertEqual(en.time(dt.time(0, 30)), ["12", "30", "am"])
        self.assertEqual(en.time(dt.time(10, 0)), ["10", "am"])
        self.assertEqual(en.time(dt.time(12, 5)), ["12", "oh", "5", "pm"])
        self.assertEqual(en.time(dt.datetime(2026, 1, 1, 23, 59)), ["11", "59", "pm"])

    def test_relative(self):
        now = dt.datetime(2026, 11, 22, 15, 0)  # a Sunday
        self.assertEqual(en.datetime(dt.datetime(2026, 11, 22, 9, 15), now), ["today", "at", "9", "15", "am"])
        self.assertEqual(en.datetime(dt.datetime(2026, 11, 21, 22, 0), now), ["yesterday", "at", "10", "pm"])
        self.assertEqual(en.datetime(dt.datetime(2026, 11, 18, 8, 0), now), ["wednesday", "at", "8", "am"])
        self.assertEqual(en.datetime(dt.datetime(2026, 11, 2, 8, 0), now),
                         ["monday", "november", "ord-2", "at", "8", "am"])
        self.assertEqual(en.datetime(dt.datetime(2025, 12, 25, 8, 0), now),
                         ["thursday", "december", "ord-25", "20", "25", "at", "8", "am"])
        self.assertEqual(en.datetime(dt.datetime(2026, 11, 22, 9, 15)),
                         ["sunday", "november", "ord-22", "at", "9", "15", "am"])

    def test_relative_across_time_zones(self):
        utc = dt.timezone.utc
        minus8 = dt.timezone(dt.timedelta(hours=-8))
        now = dt.datetime(2026, 11, 22, 10, 0, tzinfo=minus8)
        when = dt.datetime(2026, 11, 22, 2, 0, tzinfo=utc)  # 18:00 the day before, local
        self.assertEqual(en.datetime(when, now), ["yesterday", "at", "6", "pm"])


class RegistryTests(unittest.TestCase):
    def test_lookup_and_fallback(self):
        self.assertIs(get_sayer("en-US"), en)
        self.assertIs(get_sayer("EN"), en)
        self.assertIs(get_sayer(None), en)
        self.assertIs(get_sayer("fr"), en)
        self.assertIs(get_sayer("../x"), en)
        self.assertEqual(get_sayer("es_MX").language, "es")


class VocabularyTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.integers(min_value=-(10 ** 12) + 1, max_value=10 ** 12 - 1))
    def test_numbers_stay_in_vocabulary(self, n):
        self.assertLessEqual(set(en.number(n)), en.vocabulary)

    @settings(max_examples=200, deadline=None)
    @given(st.decimals(min_value=-10 ** 9, max_value=10 ** 9, places=2),
           st.sampled_from(["USD", "EUR", "GBP", "MXN", "CAD", "JPY"]))
    def test_money_stays_in_vocabulary(self, amount, currency):
        self.assertLessEqual(set(en.money(amount, currency)), en.vocabulary)

    @settings(max_examples=200, deadline=None)
    @given(st.integers(min_value=0, max_value=10 ** 7), st.booleans())
    def test_durations_stay_in_vocabulary(self, seconds, round_up):
        self.assertLessEqual(set(en.duration(seconds, round_up)), en.vocabulary)

    @settings(max_examples=200, deadline=None)
    @given(st.datetimes(min_value=dt.datetime(1000, 1, 1)), st.datetimes(min_value=dt.datetime(1000, 1, 1)))
    def test_dates_stay_in_vocabulary(self, when, now):
        self.assertLessEqual(set(en.datetime(when, now)), en.vocabulary)
        self.assertLessEqual(set(en.date(when, with_year=True)), en.vocabulary)
