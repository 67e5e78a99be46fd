from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st
from twisted.trial import unittest

from portaum_tx.ivr.period import Period, PeriodSyntaxError, parse

NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc

GUIDE_PERIOD = "hr{6pm-5am}, wd{sa su}, md{1} mo{jan}, md{24-26} mo{dec}"
GUIDE_WORDS = (
    "From 6:00pm until 6:00am\n"
    "   any day of any month\n"
    "OR Sunday and Saturday\n"
    "   of any month\n"
    "OR 1\n"
    "   of January\n"
    "OR 24-26\n"
    "   of December"
)


def local(*args):
    return datetime(*args, tzinfo=NEW_YORK)


class GuideExampleTests(unittest.TestCase):
    def test_wizard_first_screen(self):
        period = parse("hr{6pm-5am}")
        self.assertEqual(period.describe(), "From 6:00pm until 6:00am\n   any day of any month")
        self.assertEqual(str(period), "hr{6pm-5am}")

    def test_full_wizard_example_words(self):
        self.assertEqual(parse(GUIDE_PERIOD).describe(), GUIDE_WORDS)

    def test_full_wizard_example_canonical_form(self):
        self.assertEqual(str(parse(GUIDE_PERIOD)),
                         "hr{6pm-5am}, wd{su sa}, md{1} mo{jan}, md{24-26} mo{dec}")

    def test_full_wizard_example_membership(self):
        period = parse(GUIDE_PERIOD)
        self.assertTrue(period.contains(local(2026, 11, 25, 19, 0)))   # Wednesday evening
        self.assertFalse(period.contains(local(2026, 11, 25, 12, 0)))  # Wednesday noon
        self.assertTrue(period.contains(local(2026, 11, 28, 12, 0)))   # Saturday noon
        self.assertTrue(period.contains(local(2026, 1, 1, 12, 0)))     # New Year's Day (Thursday)
        self.assertTrue(period.contains(local(2026, 12, 25, 12, 0)))   # Christmas (Friday)
        self.assertFalse(period.contains(local(2026, 12, 23, 12, 0)))


class HourTests(unittest.TestCase):
    def test_end_hour_is_inclusive_and_crosses_midnight(self):
        period = parse("hr{6pm-5am}")
        expectations = [
            ((17, 59, 59), False), ((18, 0, 0), True), ((23, 59, 59), True), ((0, 0, 0), True),
            ((5, 59, 59), True), ((6, 0, 0), False), ((12, 0, 0), False),
        ]
        for (hour, minute, second), inside in expectations:
            self.assertEqual(period.contains(local(2026, 6, 10, hour, minute, second)), inside,
                             (hour, minute, second))

    def test_twelve_hour_words(self):
        for word, hour in [("12am", 0), ("1am", 1), ("11am", 11), ("12noon", 12), ("12pm", 12),
                           ("1pm", 13), ("11pm", 23), ("0", 0), ("23", 23), ("9", 9)]:
            period = parse(f"hr{{{word}}}")
            self.assertTrue(period.contains(local(2026, 6, 10, hour, 30)), word)
            self.assertFalse(period.contains(local(2026, 6, 10, (hour + 1) % 24, 30)), word)

    def test_24_hour_values_print_as_12_hour(self):
        self.assertEqual(str(parse("hr{0-11 12 13-23}")), "hr{12am-11am 12pm 1pm-11pm}")

    def test_single_hour_description(self):
        self.assertEqual(parse("hr{11pm}").describe(), "From 11:00pm until 12:00am\n   any day of any month")

    def test_several_hour_ranges_description(self):
        self.assertEqual(parse("hr{9am-11am 1pm-4pm} wd{mo-fr}").describe(),
                         "From 9:00am until 12:00pm and from 1:00pm until 5:00pm\n"
                         "   Monday-Friday of any month")

    def test_minutes_and_seconds(self):
        period = parse("hr{9am} min{0-29}")
        self.assertTrue(period.contains(local(2026, 6, 10, 9, 29, 59)))
        self.assertFalse(period.contains(local(2026, 6, 10, 9, 30)))
        self.assertEqual(period.describe(), "From 9:00am until 10:00am, minutes 0-29\n   any day of any month")
        self.assertTrue(parse("sec{0-4 10-14}").contains(local(2026, 6, 10, 9, 1, 12)))
        self.assertFalse(parse("sec{0-4 10-14}").contains(local(2026, 6, 10, 9, 1, 7)))
        self.assertEqual(parse("minute{5}").describe(), "Minute 5\n   any day of any month")


class TimeZoneTests(unittest.TestCase):
    def test_instant_is_read_in_the_account_zone(self):
        period = parse("hr{9am-4pm}")
        instant = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)   # 10:00 in New York (EDT)
        self.assertTrue(period.contains(instant, NEW_YORK))
        self.assertTrue(period.contains(instant, "America/New_York"))
        self.assertTrue(period.contains(instant))            # 14:00 UTC wall time
        self.assertFalse(period.contains(instant, "Asia/Tokyo"))  # 23:00

    def test_midnight_in_the_account_zone_changes_the_weekday(self):
        period = parse("wd{sa su}")
        instant = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)   # Saturday in UTC, Friday 22:00 in New York
        self.assertTrue(period.contains(instant))
        self.assertFalse(period.contains(instant, NEW_YORK))

    def test_spring_forward_skips_two_am(self):
        # 2026-03-08 02:00 EST jumps to 03:00 EDT in New York.
        two_am, three_am = parse("hr{2am}"), parse("hr{3am}")
        start = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
        minutes = [start + timedelta(minutes=m) for m in range(4 * 60)]
        self.assertFalse(any(two_am.contains(m, NEW_YORK) for m in minutes))
        self.assertEqual(sum(three_am.contains(m, NEW_YORK) for m in minutes), 60)
        self.assertFalse(three_am.contains(datetime(2026, 3, 8, 6, 59, tzinfo=UTC), NEW_YORK))
        self.assertTrue(three_am.contains(datetime(2026, 3, 8, 7, 0, tzinfo=UTC), NEW_YORK))

    def test_fall_back_repeats_one_am(self):
        # 2026-11-01 02:00 EDT falls back to 01:00 EST: the one-o'clock hour happens twice.
        one_am = parse("hr{1am}")
        start = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
        minutes = [start + timedelta(minutes=m) for m in range(4 * 60)]
        self.assertEqual(sum(one_am.contains(m, NEW_YORK) for m in minutes), 120)
        self.assertTrue(one_am.contains(datetime(2026, 11, 1, 5, 30, tzinfo=UTC), NEW_YORK))
        self.assertTrue(one_am.contains(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), NEW_YORK))

    def test_night_period_across_daylight_saving_change(self):
        night = parse("hr{6pm-5am}")
        evening = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)     # 18:00 EST Saturday
        minutes = [evening + timedelta(minutes=m) for m in range(14 * 60)]
        inside = [m for m in minutes if night.contains(m, NEW_YORK)]
        # 18:00 EST until 06:00 EDT is eleven real hours because the clock skips one.
        self.assertEqual(len(inside), 11 * 60)
        self.assertEqual(inside[-1], datetime(2026, 3, 8, 9, 59, tzinfo=UTC))

    def test_unknown_zone_name_is_a_value_error(self):
        instant = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)
        for name in ("Mars/Olympus_Mons", "../etc/passwd", ""):
            with self.assertRaises(ValueError) as caught:
                parse("hr{1}").contains(instant, name)
            self.assertIn("unknown time zone", str(caught.exception))

    def test_naive_datetime_is_refused(self):
        self.assertRaises(ValueError, parse("hr{1}").contains, datetime(2026, 1, 1))


class DayAndMonthTests(unittest.TestCase):
    def test_weekday_spellings(self):
        for text in ["wd{mo-fr}", "wd{2-6}", "wd{Mon-Fri}", "wday{monday-friday}", "WD { MO - FR }"]:
            period = parse(text)
            self.assertEqual(str(period), "wd{mo-fr}", text)
            self.assertTrue(period.contains(local(2026, 11, 23, 12)), text)   # Monday
            self.assertFalse(period.contains(local(2026, 11, 22, 12)), text)  # Sunday

    def test_weekday_range_wraps(self):
        period = parse("wd{fr-mo}")
        self.assertEqual([period.contains(local(2026, 11, d, 12)) for d in range(22, 29)],
                         [True, True, False, False, False, True, True])

    def test_month_range_wraps_over_new_year(self):
        winter = parse("mo{nov-feb}")
        self.assertEqual([winter.contains(local(2026, m, 1, 12)) for m in range(1, 13)],
                         [True, True] + [False] * 8 + [True, True])
        split = parse("mo{jan-feb nov-dec}")
        self.assertEqual([split.contains(local(2026, m, 1, 12)) for m in range(1, 13)],
                         [winter.contains(local(2026, m, 1, 12)) for m in range(1, 13)])
        self.assertEqual(parse("mo{jan feb} mo{nov dec}"), parse("mo{january february november december}"))

    def test_scales_are_anded_and_values_ored(self):
        period = parse("md{1} mo{jan}")
        self.assertTrue(period.contains(local(2027, 1, 1, 0)))
        self.assertFalse(period.contains(local(2027, 2, 1, 0)))
        self.assertFalse(period.contains(local(2027, 1, 2, 0)))

    def test_week_of_month_starts_on_sunday(self):
        period = parse("wk{2}")
        # August 2026 begins on a Saturday: week 1 is the 1st alone.
        self.assertFalse(period.contains(local(2026, 8, 1, 12)))
        self.assertTrue(period.contains(local(2026, 8, 2, 12)))
        self.assertTrue(period.contains(local(2026, 8, 8, 12)))
        self.assertFalse(period.contains(local(2026, 8, 9, 12)))
        self.assertTrue(parse("wk{6}").contains(local(2026, 8, 31, 12)))

    def test_day_of_year(self):
        self.assertTrue(parse("yd{32}").contains(local(2026, 2, 1, 12)))
        self.assertTrue(parse("yd{366}").contains(local(2028, 12, 31, 12)))

    def test_years(self):
        self.assertTrue(parse("yr{2026}").contains(local(2026, 5, 5)))
        self.assertTrue(parse("yr{26}").contains(local(2026, 5, 5)))
        self.assertFalse(parse("yr{2025 2027}").contains(local(2026, 5, 5)))
        self.assertTrue(parse("yr{2025-2027}").contains(local(2026, 5, 5)))
        self.assertEqual(parse("md{4} mo{jul} yr{2027}").describe(), "4\n   of July in 2027")

    def test_weekday_with_month_day_description(self):
        self.assertEqual(parse("wd{fr} md{13}").describe(), "Friday on 13\n   of any month")
        self.assertEqual(parse("wd{mo we fr}").describe(), "Monday, Wednesday and Friday\n   of any month")


class SpecialPeriodTests(unittest.TestCase):
    def test_blank_is_always(self):
        for text in ["", "   ", "\t\n"]:
            period = parse(text)
            self.assertTrue(period.is_always)
            self.assertEqual(str(period), "")
            self.assertEqual(period.describe(), "Always")
            self.assertTrue(period.contains(local(2026, 1, 1)))
        self.assertEqual(Period(), parse(""))

    def test_none_is_never(self):
        period = parse(" None ")
        self.assertEqual(str(period), "none")
        self.assertEqual(period.describe(), "Never")
        self.assertFalse(period.contains(local(2026, 1, 1)))

    def test_duplicates_collapse(self):
        self.assertEqual(str(parse("wd{su sa su}, wd{sa su}")), "wd{su sa}")


class SyntaxErrorTests(unittest.TestCase):
    CASES = [
        ("xx{1}", 0, "unknown scale 'xx'"),
        ("hr{25}", 3, "hour 25 is out of range"),
        ("hr{13pm}", 3, "12-hour clock"),
        ("hr{0am}", 3, "12-hour clock"),
        ("hr{11noon}", 3, "only 12noon"),
        ("hr{9:30am}", 3, "use min{...}"),
        ("md{0}", 3, "day of the month 0 is out of range"),
        ("md{32}", 3, "out of range 1-31"),
        ("mo{foo}", 3, "unknown month 'foo'"),
        ("mo{13}", 3, "month 13 is out of range"),
        ("wd{xy}", 3, "unknown day of the week 'xy'"),
        ("wd{8}", 3, "out of range 1-7"),
        ("yr{1500}", 3, "year 1500 is out of range"),
        ("yr{2027-2025}", 3, "reversed"),
        ("yr{99-2001}", 3, "mixes"),
        ("hr{}", 2, "empty braces"),
        ("hr{ }", 2, "empty braces"),
        ("hr{1", 2, "missing '}'"),
        ("hr 1", 3, "expected '{'"),
        ("hr}{", 2, "expected '{'"),
        ("hr{1}}", 5, "unexpected '}'"),
        ("hr{1} !", 6, "unexpected '!'"),
        ("hr{1},", 6, "empty alternative"),
        (", hr{1}", 0, "empty alternative"),
        ("hr{1},,wd{1}", 6, "empty alternative"),
        ("hr{1-}", 5, "unexpected '}'"),
        ("hr{-1}", 3, "unexpected '-'"),
        ("hr{1 ; 2}", 5, "unexpected ';'"),
        ("none, hr{1}", 0, "unknown scale 'none'"),
    ]

    def test_errors_name_the_problem_and_its_position(self):
        for text, position, words in self.CASES:
            with self.assertRaises(PeriodSyntaxError, msg=text) as caught:
                parse(text)
            self.assertEqual(caught.exception.position, position, text)
            self.assertIn(words, caught.exception.reason, text)
            self.assertIn(f"at position {position}", str(caught.exception))

    def test_error_is_a_value_error(self):
        self.assertTrue(issubclass(PeriodSyntaxError, ValueError))

    def test_non_string_is_a_type_error(self):
        self.assertRaises(TypeError, parse, None)


# ------------------------------------------------------------ property tests

_PERIOD_ALPHABET = "hrwdmoyrkinsec{}-, 0123456789apmnu:!;tTfHW\t"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_PERIOD_ALPHABET, max_size=40))
def _fuzz_only_syntax_errors(case, text):
    try:
        period = parse(text)
    except PeriodSyntaxError:
        return
    case.assertEqual(parse(str(period)), period)
    case.assertIsInstance(period.describe(), str)


_SCALE_LIMITS = {"hr": (0, 23), "min": (0, 59), "wd": (1, 7), "md": (1, 31), "mo": (1, 12), "wk": (1, 6)}


def _field(code, moment):
    return {
        "hr": moment.hour, "min": moment.minute, "wd": (moment.weekday() + 1) % 7 + 1,
        "md": moment.day, "mo": moment.month, "wk": (moment.day + (moment.replace(day=1).weekday() + 1) % 7 - 1) // 7 + 1,
    }[code]


def _covered(low, high, limits):
    """The values a range covers, walked one step at a time (wrapping)."""
    first, last = limits
    values, value = {low}, low
    while value != high:
        value = first if value == last else value + 1
        values.add(value)
    return values


@st.composite
def _periods(draw):
    """A period written in numeric form with the set of values each scale allows."""
    alternatives = []
    for _ in range(draw(st.integers(1, 3))):
        scales = draw(st.lists(st.sampled_from(sorted(_SCALE_LIMITS)), min_size=1, max_size=3, unique=True))
        groups = {}
        for code in scales:
            low_limit, high_limit = _SCALE_LIMITS[code]
            bounds = draw(st.lists(st.tuples(st.integers(low_limit, high_limit), st.integers(low_limit, high_limit)),
                                   min_size=1, max_size=3))
            groups[code] = bounds
        alternatives.append(groups)
    text = ", ".join(
        " ".join(f"{code}{{{' '.join(f'{lo}-{hi}' for lo, hi in bounds)}}}" for code, bounds in groups.items())
        for groups in alternatives)
    return text, alternatives


def _oracle(alternatives, moment):
    return any(
        all(any(_field(code, moment) in _covered(lo, hi, _SCALE_LIMITS[code]) for lo, hi in bounds)
            for code, bounds in groups.items())
        for groups in alternatives)


@settings(max_examples=150, deadline=None)
@given(_periods(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1),
                                timezones=st.just(NEW_YORK)))
def _membership_matches_oracle(case, generated, moment):
    text, alternatives = generated
    period = parse(text)
    case.assertEqual(period.contains(moment), _oracle(alternatives, moment), (text, moment))
    again = parse(str(period))
    case.assertEqual(again, period)
    case.assertEqual(again.contains(moment), period.contains(moment))


class PropertyTests(unittest.TestCase):
    def test_fuzzed_text_raises_only_syntax_errors(self):
        _fuzz_only_syntax_errors(self)

    def test_membership_matches_a_brute_force_oracle_and_survives_round_trip(self):
        _membership_matches_oracle(self)
