from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.billing.rating import (
    ANNOUNCE, INTERNAL, AnnouncedTime, ForbiddenDestinationError, InvalidRateError, MoneyPrecision,
    NoRateError, Rate, RatingError, SecondsRounding, Tariff, announce_time, charge, max_duration,
    postpaid_funds, prepaid_funds, round_money, to_money,
)

D = Decimal


class ConferenceExampleTests(unittest.TestCase):
    def test_three_participants_at_three_cents(self):
        conference = Rate("CONF", D("0.03"))
        charges = [conference.charge(minutes * 60) for minutes in (30, 25, 20)]
        self.assertEqual(charges, [D("0.90"), D("0.75"), D("0.60")])
        self.assertEqual([ANNOUNCE.round(c) for c in charges], [D("0.90"), D("0.75"), D("0.60")])
        self.assertEqual([str(ANNOUNCE.round(c)) for c in charges], ["0.90", "0.75", "0.60"])


class IntervalTests(unittest.TestCase):
    def test_per_second_billing(self):
        rate = Rate("1", D("0.06"), 1, 1)
        self.assertEqual(rate.charge(1), D("0.00100"))
        self.assertEqual(rate.charge(59), D("0.05900"))
        self.assertEqual(rate.charge(61), D("0.06100"))

    def test_thirty_six_billing(self):
        rate = Rate("1", D("0.06"), 30, 6)
        expected_billed = {1: 30, 29: 30, 30: 30, 31: 36, 36: 36, 37: 42, 60: 60, 61: 66}
        for duration, billed in expected_billed.items():
            self.assertEqual(rate.billed_seconds(duration), billed, duration)
            self.assertEqual(rate.charge(duration), D("0.001") * billed, duration)

    def test_minute_billing(self):
        rate = Rate("1", D("0.10"), 60, 60)
        self.assertEqual(rate.charge(1), D("0.10"))
        self.assertEqual(rate.charge(60), D("0.10"))
        self.assertEqual(rate.charge(61), D("0.20"))
        self.assertEqual(rate.charge(3600), D("6.00"))

    def test_different_price_for_next_intervals(self):
        rate = Rate("1", D("0.60"), 60, 60, next_price_per_minute=D("0.06"))
        self.assertEqual(rate.charge(60), D("0.60"))
        self.assertEqual(rate.charge(121), D("0.72"))

    def test_zero_seconds_costs_nothing_even_with_a_fee(self):
        rate = Rate("1", D("0.10"), 60, 60, connection_fee=D("0.25"))
        self.assertEqual(rate.charge(0), D(0))
        self.assertEqual(rate.charge(1), D("0.35"))

    def test_connection_fee_is_charged_once(self):
        rate = Rate("1", D("0.06"), 1, 1, connection_fee=D("0.05"))
        self.assertEqual(rate.charge(600), D("0.65"))

    def test_grace_period_makes_short_calls_free(self):
        rate = Rate("1", D("0.60"), 60, 60, connection_fee=D("0.10"), grace_period=5)
        self.assertEqual(rate.charge(5), D(0))
        self.assertEqual(rate.charge(6), D("0.70"))

    def test_free_seconds_are_not_billed(self):
        rate = Rate("1", D("0.60"), 30, 6, connection_fee=D("0.10"), free_seconds=10)
        self.assertEqual(rate.charge(10), D("0.10"))        # answered: fee only
        self.assertEqual(rate.charge(11), D("0.10") + D("0.30"))
        self.assertEqual(rate.billed_seconds(40), 30)
        self.assertEqual(rate.billed_seconds(41), 36)

    def test_module_level_charge_matches_method(self):
        rate = Rate("1", D("0.07"), 30, 6)
        self.assertEqual(charge(rate, 77), rate.charge(77))

    def test_bad_durations(self):
        rate = Rate("1", D("0.07"))
        for bad in (-1, 1.5, "10", None, True):
            self.assertRaises(RatingError, rate.charge, bad)


class RoundingTests(unittest.TestCase):
    def test_charges_round_up_to_five_places(self):
        rate = Rate("1", D("0.07"), 1, 1)       # 0.07 / 60 per second is 0.0011666...
        self.assertEqual(rate.charge(1), D("0.00117"))
        self.assertEqual(rate.charge(1).as_tuple().exponent, -5)
        self.assertEqual(rate.exact_charge(1), Fraction(7, 6000))

    def test_configurable_precision(self):
        rate = Rate("1", D("0.07"), 1, 1)
        self.assertEqual(rate.charge(1, MoneyPrecision(2)), D("0.01"))
        self.assertEqual(rate.charge(1, MoneyPrecision(3, ROUND_HALF_UP)), D("0.001"))
        self.assertEqual(rate.charge(7, MoneyPrecision(4, ROUND_HALF_UP)), D("0.0082"))  # 0.008166...

    def test_round_money_is_exact_at_the_half(self):
        self.assertEqual(round_money(D("1.005"), 2, ROUND_HALF_UP), D("1.01"))
        self.assertEqual(round_money(D("1.005"), 2, ROUND_HALF_EVEN), D("1.00"))
        self.assertEqual(round_money(Fraction(1, 3), 2, ROUND_HALF_UP), D("0.33"))
        self.assertEqual(round_money(Fraction(2, 3), 2, ROUND_HALF_UP), D("0.67"))
        self.assertEqual(round_money(Fraction(-1, 3), 2), D("-0.34"))   # away from zero
        self.assertEqual(round_money(D("12345678901234567890123.456"), 2), D("12345678901234567890123.46"))

    def test_announcements_round_down(self):
        self.assertEqual(ANNOUNCE.round(D("0.99999")), D("0.99"))
        self.assertEqual(INTERNAL.round(D("0.000001")), D("0.00001"))

    def test_bad_precision(self):
        self.assertRaises(InvalidRateError, MoneyPrecision, -1)
        self.assertRaises(InvalidRateError, MoneyPrecision, 2.5)


class MoneyInputTests(unittest.TestCase):
    def test_floats_are_refused(self):
        with self.assertRaises(InvalidRateError) as caught:
            Rate("1", 0.1)
        self.assertIn("price_per_minute", str(caught.exception))
        self.assertRaises(InvalidRateError, to_money, 0.5)
        self.assertRaises(InvalidRateError, max_duration, 1.0, Rate("1", "1"))

    def test_strings_and_ints_are_exact(self):
        self.assertEqual(Rate("1", "0.1").price_per_minute, D("0.1"))
        self.assertEqual(to_money(3), D(3))
        for bad in ("abc", "NaN", "Infinity", "", None, True):
            self.assertRaises(InvalidRateError, to_money, bad)

    def test_rate_validation(self):
        for kwargs in [dict(prefix="", price_per_minute="1"), dict(prefix="4 4", price_per_minute="1"),
                       dict(prefix="1", price_per_minute="-1"), dict(prefix="1", price_per_minute="1", first_interval=0),
                       dict(prefix="1", price_per_minute="1", next_interval=0),
                       dict(prefix="1", price_per_minute="1", connection_fee="-0.01"),
                       dict(prefix="1", price_per_minute="1", free_seconds=-1)]:
            self.assertRaises(InvalidRateError, Rate, **kwargs)


class TariffTests(unittest.TestCase):
    def setUp(self):
        self.tariff = Tariff([
            Rate("1", D("0.02")),
            Rate("1206", D("0.01")),
            Rate("1900", D("0"), forbidden=True),
            Rate("19005", D("0.50")),
            Rate("44", D("0.05"), 30, 6),
        ], name="retail")

    def test_longest_prefix_wins(self):
        self.assertEqual(self.tariff.rate_for("12065551234").prefix, "1206")
        self.assertEqual(self.tariff.rate_for("12125551234").prefix, "1")
        self.assertEqual(self.tariff.rate_for("19005551234").prefix, "19005")
        self.assertEqual(self.tariff.charge("12065551234", 60), D("0.01"))

    def test_forbidden_destination_refuses(self):
        with self.assertRaises(ForbiddenDestinationError) as caught:
            self.tariff.rate_for("19001234567")
        self.assertEqual(caught.exception.prefix, "1900")
        self.assertRaises(ForbiddenDestinationError, self.tariff.charge, "19001234567", 10)
        self.assertRaises(ForbiddenDestinationError, self.tariff.max_duration, "19001234567", "10")
        self.assertTrue(self.tariff.find_rate("19001234567").forbidden)

    def test_unknown_destination(self):
        self.assertRaises(NoRateError, self.tariff.rate_for, "33123456")
        self.assertIsNone(self.tariff.find_rate("33123456"))
        self.assertRaises(InvalidRateError, self.tariff.rate_for, "")

    def test_duplicate_prefix_is_refused(self):
        self.assertRaises(InvalidRateError, Tariff, [Rate("1", "1"), Rate("1", "2")])


class FundsTests(unittest.TestCase):
    def test_prepaid_and_postpaid_funds(self):
        self.assertEqual(prepaid_funds("5.00"), D("5.00"))
        self.assertEqual(prepaid_funds("-1"), D(0))
        self.assertEqual(postpaid_funds(balance="30", credit_limit="100"), D("70"))
        self.assertEqual(postpaid_funds(balance="120", credit_limit="100"), D(0))

    def test_max_duration_prepaid(self):
        rate = Rate("1", D("0.06"), 60, 60)
        self.assertEqual(max_duration(prepaid_funds("0.30"), rate), 300)
        self.assertEqual(max_duration(prepaid_funds("0.31"), rate), 300)
        self.assertEqual(max_duration(prepaid_funds("0.05"), rate), 0)

    def test_max_duration_postpaid_uses_credit_limit(self):
        rate = Rate("1", D("0.06"), 1, 1)
        funds = postpaid_funds(balance="99.40", credit_limit="100")
        self.assertEqual(max_duration(funds, rate), 600)

    def test_max_duration_with_fee_and_grace(self):
        rate = Rate("1", D("0.60"), 60, 60, connection_fee="0.10", grace_period=5)
        self.assertEqual(max_duration("0.09", rate), 5)
        self.assertEqual(max_duration("0.70", rate), 60)
        self.assertEqual(max_duration("-1", rate), 0)

    def test_unlimited_and_limit(self):
        free = Rate("800", "0")
        self.assertIsNone(max_duration("0", free))
        self.assertEqual(max_duration("0", free, limit=3600), 3600)
        flat = Rate("1", "1.00", 60, 60, next_price_per_minute="0")
        self.assertIsNone(max_duration("1", flat))
        self.assertEqual(max_duration("0.99", flat), 0)
        self.assertEqual(max_duration("100", Rate("1", "0.06", 1, 1), limit=60), 60)

    def test_thirty_six_max_duration_ends_on_an_interval(self):
        rate = Rate("44", D("0.06"), 30, 6)   # 0.001 per second
        self.assertEqual(max_duration("0.041", rate), 36)
        self.assertEqual(max_duration("0.029", rate), 0)


@st.composite
def _rates(draw):
    cents = st.integers(0, 500).map(lambda n: D(n) / 100)
    return Rate(
        "1",
        draw(cents),
        first_interval=draw(st.sampled_from([1, 6, 30, 60])),
        next_interval=draw(st.sampled_from([1, 6, 30, 60])),
        connection_fee=draw(st.integers(0, 50).map(lambda n: D(n) / 100)),
        next_price_per_minute=draw(st.one_of(st.none(), cents)),
        free_seconds=draw(st.sampled_from([0, 0, 10])),
        grace_period=draw(st.sampled_from([0, 0, 3])),
    )


@settings(max_examples=200, deadline=None)
@given(_rates(), st.integers(0, 100_000).map(lambda n: D(n) / 1000), st.sampled_from([INTERNAL, ANNOUNCE]))
def _max_duration_is_consistent(case, rate, funds, precision):
    longest = max_duration(funds, rate, precision)
    if longest is None:
        for seconds in (1, 61, 3600, 10**7):
            case.assertLessEqual(rate.charge(seconds, precision), funds)
        return
    case.assertLessEqual(rate.charge(longest, precision), funds)
    case.assertGreater(rate.charge(longest + 1, precision), funds)
    case.assertEqual(max_duration(funds, rate, precision, limit=longest + 5), longest)


@settings(max_examples=200, deadline=None)
@given(_rates(), st.integers(0, 7200), st.integers(0, 7200))
def _charge_is_monotone(case, rate, a, b):
    short, long = sorted((a, b))
    case.assertLessEqual(rate.charge(short), rate.charge(long))
    case.assertEqual(rate.charge(short), round_money(rate.exact_charge(short), 5))


class PropertyTests(unittest.TestCase):
    def test_max_duration_agrees_with_charge(self):
        _max_duration_is_consistent(self)

    def test_charge_never_decreases_with_duration(self):
        _charge_is_monotone(self)


class AnnounceTimeTests(unittest.TestCase):
    def test_guide_example(self):
        self.assertEqual(announce_time(5 * 60 + 49, SecondsRounding.NONE), AnnouncedTime(5, 49))
        self.assertEqual(announce_time(5 * 60 + 49, SecondsRounding.UP), AnnouncedTime(6, 0))

    def test_whole_minutes_and_option_strings(self):
        self.assertEqual(announce_time(300, "up"), AnnouncedTime(5, 0))
        self.assertEqual(announce_time(0, "UP"), AnnouncedTime(0, 0))
        self.assertEqual(announce_time(59, " none "), AnnouncedTime(0, 59))
        self.assertEqual(SecondsRounding.from_option("up"), SecondsRounding.UP)

    def test_bad_option(self):
        with self.assertRaises(InvalidRateError) as caught:
            announce_time(10, "down")
        self.assertIn("'down'", str(caught.exception))
        self.assertRaises(InvalidRateError, announce_time, -1)
