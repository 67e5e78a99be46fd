"""Active periods: the PortaBilling / Time::Period time-period syntax.

An auto-attendant menu is active during a period written as, for example::

    hr{6pm-5am}, wd{sa su}, md{1} mo{jan}, md{24-26} mo{dec}

The stored form is a comma-separated list of alternatives (ORed). Each
alternative is one or more ``scale{values}`` groups that must all match
(ANDed); the values inside one pair of braces are ORed. A blank period means
"always", the word ``none`` means "never".

Scales (long name or code): year/yr, month/mo, week/wk (week of the month,
1-6, weeks start on Sunday), yday/yd (1-366), mday/md (1-31), wday/wd
(1-7 with 1 = Sunday, or su mo tu we th fr sa), hour/hr (0-23 or 12am 1am
... 11am 12noon 12pm 1pm ... 11pm), minute/min (0-59), second/sec (0-59).

Every value stands for its whole unit and ranges are inclusive: ``5am`` is
05:00:00-05:59:59, so ``hr{6pm-5am}`` is "from 6:00pm until 6:00am", the
way the period wizard shows it. A range whose first value is larger than the
second wraps around (``hr{6pm-5am}`` crosses midnight, ``mo{nov-feb}`` the
new year), except for years, which never wrap. Two-digit years belong to the
century of the time being tested.

This module is pure: it only parses, prints and evaluates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ALWAYS", "NEVER", "Period", "PeriodSyntaxError", "SubPeriod", "parse"]


class PeriodSyntaxError(ValueError):
    """A period string that cannot be parsed; ``position`` is a 0-based offset."""

    def __init__(self, reason: str, position: int, text: str):
        self.reason = reason
        self.position = position
        self.text = text
        super().__init__(f"{reason} at position {position} in period {text!r}")


WEEKDAY_CODES = ("su", "mo", "tu", "we", "th", "fr", "sa")
WEEKDAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTH_CODES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July",
               "August", "September", "October", "November", "December")

_WEEKDAY_WORDS = {}
for _i, (_code, _name) in enumerate(zip(WEEKDAY_CODES, WEEKDAY_NAMES)):
    _WEEKDAY_WORDS[_code] = _i
    _WEEKDAY_WORDS[_name[:3].lower()] = _i
    _WEEKDAY_WORDS[_name.lower()] = _i
_MONTH_WORDS = {}
for _i, (_code, _name) in enumerate(zip(MONTH_CODES, MONTH_NAMES), start=1):
    _MONTH_WORDS[_code] = _i
    _MONTH_WORDS[_name.lower()] = _i

_NUMBER = re.compile(r"\d{1,4}\Z")
_HOUR = re.compile(r"(\d{1,2})(am|pm|noon)?\Z")


class _BadValue(Exception):
    """Raised by value readers; the parser adds the position."""


def _read_number(token: str, low: int, high: int, what: str) -> int:
    if not _NUMBER.match(token):
        raise _BadValue(f"{what} must be a number from {low} to {high}, not {token!r}")
    value = int(token)
    if not low <= value <= high:
        raise _BadValue(f"{what} {value} is out of range {low}-{high}")
    return value


def _read_hour(token: str) -> int:
    if ":" in token:
        raise _BadValue(f"hour {token!r} has minutes; hours are whole, use min{{...}} for minutes")
    match = _HOUR.match(token)
    if not match:
        raise _BadValue(f"bad hour {token!r} (use 0-23, or 12am, 1am-11am, 12noon, 12pm, 1pm-11pm)")
    number, suffix = int(match.group(1)), match.group(2)
    if suffix is None:
        if number > 23:
            raise _BadValue(f"hour {number} is out of range 0-23")
        return number
    if suffix == "noon":
        if number != 12:
            raise _BadValue(f"bad hour {token!r}: only 12noon exists")
        return 12
    if not 1 <= number <= 12:
        raise _BadValue(f"bad hour {token!r}: a 12-hour clock runs from 1 to 12")
    if suffix == "am":
        return 0 if number == 12 else number
    return 12 if number == 12 else number + 12


def _read_weekday(token: str) -> int:
    if token.isdigit():
        return _read_number(token, 1, 7, "day of the week") - 1
    try:
        return _WEEKDAY_WORDS[token]
    except KeyError:
        raise _BadValue(f"unknown day of the week {token!r} (use su mo tu we th fr sa or 1-7)") from None


def _read_month(token: str) -> int:
    if token.isdigit():
        return _read_number(token, 1, 12, "month")
    try:
        return _MONTH_WORDS[token]
    except KeyError:
        raise _BadValue(f"unknown month {token!r} (use jan ... dec or 1-12)") from None


def _read_year(token: str) -> int:
    if not _NUMBER.match(token):
        raise _BadValue(f"year must be a number, not {token!r}")
    value = int(token)
    if 99 < value < 1970:
        raise _BadValue(f"year {value} is out of range (use 0-99 or 1970 and later)")
    return value


def _hour_word(hour: int) -> str:
    if hour == 0:
        return "12am"
    if hour < 12:
        return f"{hour}am"
    if hour == 12:
        return "12pm"
    return f"{hour - 12}pm"


@dataclass(frozen=True)
class _Scale:
    code: str
    long_name: str
    read: Callable[[str], int]
    write: Callable[[int], str]
    wraps: bool = True


# Canonical order follows the period wizard's screens: time, days, months.
_SCALES = (
    _Scale("hr", "hour", _read_hour, _hour_word),
    _Scale("min", "minute", lambda t: _read_number(t, 0, 59, "minute"), str),
    _Scale("sec", "second", lambda t: _read_number(t, 0, 59, "second"), str),
    _Scale("wd", "wday", _read_weekday, lambda v: WEEKDAY_CODES[v]),
    _Scale("wk", "week", lambda t: _read_number(t, 1, 6, "week of the month"), str),
    _Scale("md", "mday", lambda t: _read_number(t, 1, 31, "day of the month"), str),
    _Scale("yd", "yday", lambda t: _read_number(t, 1, 366, "day of the year"), str),
    _Scale("mo", "month", _read_month, lambda v: MONTH_CODES[v - 1]),
    _Scale("yr", "year", _read_year, str, wraps=False),
)
_SCALE_BY_NAME = {s.code: s for s in _SCALES} | {s.long_name: s for s in _SCALES}
_SCALE_ORDER = {s.code: i for i, s in enumerate(_SCALES)}

Range = tuple[int, int]


def _in_range(value: int, bounds: Range) -> bool:
    low, high = bounds
    if low <= high:
        return low <= value <= high
    return value >= low or value <= high


def _week_of_month(moment: datetime) -> int:
    """Week 1 runs from the 1st to the first Saturday; each Sunday starts a new week."""
    first_weekday = (moment.replace(day=1).weekday() + 1) % 7  # Sunday = 0
    return (moment.day + first_weekday - 1) // 7 + 1


def _absolute_year(value: int, year: int) -> int:
    return value if value > 99 else (year // 100) * 100 + value


@dataclass(frozen=True)
class SubPeriod:
    """One alternative: every scale present must match."""

    scales: tuple[tuple[str, tuple[Range, ...]], ...]

    def ranges(self, code: str) -> tuple[Range, ...]:
        for scale_code, ranges in self.scales:
            if scale_code == code:
                return ranges
        return ()

    def contains(self, local: datetime) -> bool:
        for code, ranges in self.scales:
            if code == "yr":
                if not any(_absolute_year(lo, local.year) <= local.year <= _absolute_year(hi, local.year)
                           for lo, hi in ranges):
                    return False
                continue
            value = _field(code, local)
            if not any(_in_range(value, r) for r in ranges):
                return False
        return True

    def __str__(self) -> str:
        parts = []
        for code, ranges in self.scales:
            write = _SCALE_BY_NAME[code].write
            items = " ".join(write(lo) if lo == hi else f"{write(lo)}-{write(hi)}" for lo, hi in ranges)
            parts.append(f"{code}{{{items}}}")
        return " ".join(parts)

    def describe_lines(self) -> tuple[str, str]:
        phrases = _describe_phrases(self)
        first = phrases[0]
        return first[:1].upper() + first[1:], " ".join(phrases[1:])


def _field(code: str, local: datetime) -> int:
    if code == "hr":
        return local.hour
    if code == "min":
        return local.minute
    if code == "sec":
        return local.second
    if code == "wd":
        return (local.weekday() + 1) % 7
    if code == "wk":
        return _week_of_month(local)
    if code == "md":
        return local.day
    if code == "yd":
        return local.timetuple().tm_yday
    if code == "mo":
        return local.month
    raise AssertionError(code)


@dataclass(frozen=True)
class Period:
    """A parsed period; no alternatives means always, ``never`` means ``none``."""

    alternatives: tuple[SubPeriod, ...] = ()
    never: bool = False

    @property
    def is_always(self) -> bool:
        return not self.never and not self.alternatives

    def contains(self, when: datetime, tz: tzinfo | str | None = None) -> bool:
        """Whether the instant ``when`` falls in the period, read in the zone ``tz``.

        ``when`` must be timezone-aware; ``tz`` (a tzinfo or an IANA name such as
        "America/New_York") is the account's zone. Without ``tz`` the wall time of
        ``when`` itself is used.
        """
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("period.contains() needs a timezone-aware datetime")
        if self.never:
            return False
        if not self.alternatives:
            return True
        if isinstance(tz, str):
            tz = _zone(tz)
        if tz is not None:
            when = when.astimezone(tz)
        return any(alternative.contains(when) for alternative in self.alternatives)

    def __str__(self) -> str:
        if self.never:
            return "none"
        return ", ".join(str(a) for a in self.alternatives)

    def describe(self) -> str:
        """Plain English, laid out as the period wizard shows it."""
        if self.never:
            return "Never"
        if not self.alternatives:
            return "Always"
        lines = []
        for index, alternative in enumerate(self.alternatives):
            first, rest = alternative.describe_lines()
            lines.append(first if index == 0 else f"OR {first}")
            if rest:
                lines.append(f"   {rest}")
        return "\n".join(lines)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(f"unknown time zone {name!r}") from None


ALWAYS = Period()
NEVER = Period(never=True)


# ---------------------------------------------------------------- describing

def _join_and(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _items(ranges: tuple[Range, ...], word: Callable[[int], str]) -> str:
    return _join_and([word(lo) if lo == hi else f"{word(lo)}-{word(hi)}" for lo, hi in ranges])


def _counted(label: str, ranges: tuple[Range, ...]) -> str:
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    return f"{label if single else label + 's'} {_items(ranges, str)}"


def _clock(hour: int) -> str:
    if hour == 0:
        return "12:00am"
    if hour < 12:
        return f"{hour}:00am"
    if hour == 12:
        return "12:00pm"
    return f"{hour - 12}:00pm"


def _describe_phrases(sub: SubPeriod) -> list[str]:
    phrases = []

    time_parts = []
    hours = sub.ranges("hr")
    if hours:
        spans = [f"from {_clock(lo)} until {_clock((hi + 1) % 24)}" for lo, hi in hours]
        time_parts.append(" and ".join(spans))
    if sub.ranges("min"):
        time_parts.append(_counted("minute", sub.ranges("min")))
    if sub.ranges("sec"):
        time_parts.append(_counted("second", sub.ranges("sec")))
    if time_parts:
        phrases.append(", ".join(time_parts))

    day_parts = []
    if sub.ranges("wd"):
        day_parts.append(_items(sub.ranges("wd"), lambda v: WEEKDAY_NAMES[v]))
    if sub.ranges("md"):
        day_parts.append(_items(sub.ranges("md"), str))
    day = " on ".join(day_parts) if day_parts else ""
    if sub.ranges("yd"):
        year_days = _counted("day", sub.ranges("yd")) + " of the year"
        day = f"{day}, {year_days}" if day else year_days
    if not day:
        day = "any day"
    if sub.ranges("wk"):
        day += " in " + _counted("week", sub.ranges("wk"))
    phrases.append(day)

    months = sub.ranges("mo")
    month = "of " + (_items(months, lambda v: MONTH_NAMES[v - 1]) if months else "any month")
    if sub.ranges("yr"):
        month += " in " + _items(sub.ranges("yr"), str)
    phrases.append(month)
    return phrases


# ------------------------------------------------------------------- parsing

_SCALE_NAME = re.compile(r"[A-Za-z]+")
_VALUE = re.compile(r"[A-Za-z0-9:]+")
_SPACE = re.compile(r"\s*")


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, reason: str, position: int | None = None) -> PeriodSyntaxError:
        return PeriodSyntaxError(reason, self.pos if position is None else position, self.text)

    def skip_space(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()

    def peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def period(self) -> Period:
        if not self.text.strip():
            return ALWAYS
        if self.text.strip().lower() == "none":
            return NEVER
        alternatives = [self.sub_period()]
        while True:
            self.skip_space()
            if self.pos == len(self.text):
                break
            if self.peek() != ",":
                raise self.fail(f"unexpected {self.peek()!r}; expected ',' or a scale such as hr{{...}}")
            self.pos += 1
            alternatives.append(self.sub_period())
        unique = tuple(dict.fromkeys(alternatives))
        return Period(alternatives=unique)

    def sub_period(self) -> SubPeriod:
        collected: dict[str, set[Range]] = {}
        self.skip_space()
        if self.pos == len(self.text) or self.peek() == ",":
            raise self.fail("empty alternative; expected a scale such as hr{...}")
        while True:
            self.skip_space()
            if self.pos == len(self.text) or self.peek() == ",":
                break
            code, ranges = self.scale()
            collected.setdefault(code, set()).update(ranges)
        scales = tuple(
            (code, tuple(sorted(collected[code])))
            for code in sorted(collected, key=_SCALE_ORDER.__getitem__)
        )
        return SubPeriod(scales)

    def scale(self) -> tuple[str, list[Range]]:
        start = self.pos
        match = _SCALE_NAME.match(self.text, self.pos)
        if not match:
            raise self.fail(f"unexpected {self.peek()!r}; expected a scale such as hr, wd, md, mo, yr")
        name = match.group().lower()
        spec = _SCALE_BY_NAME.get(name)
        if spec is None:
            raise self.fail(f"unknown scale {match.group()!r} (use yr mo wk yd md wd hr min sec)", start)
        self.pos = match.end()
        self.skip_space()
        if self.peek() != "{":
            raise self.fail(f"expected '{{' after scale {match.group()!r}")
        open_brace = self.pos
        self.pos += 1
        ranges = []
        while True:
            self.skip_space()
            char = self.peek()
            if char == "}":
                if not ranges:
                    raise self.fail(f"empty braces for scale {spec.code!r}", open_brace)
                self.pos += 1
                return spec.code, ranges
            if char == "":
                raise self.fail("missing '}'", open_brace)
            ranges.append(self.range(spec))

    def value(self, spec: _Scale) -> tuple[int, str]:
        start = self.pos
        match = _VALUE.match(self.text, self.pos)
        if not match:
            raise self.fail(f"unexpected {self.peek()!r} in {spec.code}{{...}}")
        self.pos = match.end()
        token = match.group().lower()
        try:
            return spec.read(token), token
        except _BadValue as exc:
            raise self.fail(str(exc), start) from None

    def range(self, spec: _Scale) -> Range:
        start = self.pos
        low, low_token = self.value(spec)
        self.skip_space()
        if self.peek() != "-":
            return low, low
        self.pos += 1
        self.skip_space()
        high, high_token = self.value(spec)
        if not spec.wraps:
            if (low > 99) != (high > 99):
                raise self.fail(f"year range {low_token}-{high_token} mixes two- and four-digit years", start)
            if low > high:
                raise self.fail(f"year range {low_token}-{high_token} is reversed; years do not wrap", start)
        return low, high


def parse(text: str) -> Period:
    """Parse a period string; raise PeriodSyntaxError naming what is wrong and where."""
    if not isinstance(text, str):
        raise TypeError(f"a period is a string, not {type(text).__name__}")
    return _Parser(text).period()
