"""Sayings: numbers, money, durations, dates and spelling as sequences of prompt names.

A sayer turns a value into the list of prompt names (from prompts/catalog.tsv) that, played
in order, speak it in one language:

    >>> get_sayer("en").duration(349)
    ['5', 'minutes', 'and', '49', 'seconds']
    >>> get_sayer("es").money(Decimal("21.00"), "GBP")
    ['21-f', 'pounds-sterling']

Each language is one module of this package defining a ``SAYER`` instance; get_sayer() finds
it by the language code, so adding a language is adding a module (and its prompts). Every name
a sayer can return is listed in its ``vocabulary``, which the tests check against the prompt
files of that language.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Optional, Union

DEFAULT_LANGUAGE = "en"
_LANGUAGE_MODULE = re.compile(r"^[a-z]{2,3}$")

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
# Keys and symbols digits() and spell() can say; letters are "letter-a" ... "letter-z".
SYMBOLS = {"*": "star", "#": "pound", ".": "dot", "@": "at-sign", "-": "dash", "_": "underscore",
           "+": "plus"}
DIGIT_SEPARATORS = " -()./"
MAX_NUMBER = 10 ** 12 - 1
MAX_ORDINAL = 31


class SayError(ValueError):
    """A value a sayer cannot speak (wrong type, out of range, unknown character)."""


class Sayer:
    """What every language provides. Subclasses fill the tables and the word-order methods."""

    language = ""
    # currency code -> (unit singular, unit plural, unit gender, sub singular, sub plural, sub gender)
    currencies: dict[str, tuple[str, str, str, str, str, str]] = {}
    money_joiner = "and"          # "twelve dollars AND thirty-four cents"
    minus = "minus"
    point = "point"               # decimal separator of a bare amount
    units = {                     # duration units: (singular, plural, gender)
        "hour": ("hour", "hours", "m"),
        "minute": ("minute", "minutes", "m"),
        "second": ("second", "seconds", "m"),
    }

    # -- to be provided per language
    def number(self, n: int, gender: Optional[str] = None) -> list[str]:
        """A cardinal. gender is "m" or "f" where the language inflects numbers."""
        raise NotImplementedError

    def date(self, when: dt.date, with_year: bool = False, with_weekday: bool = True) -> list[str]:
        raise NotImplementedError

    def time(self, when: Union[dt.time, dt.datetime]) -> list[str]:
        raise NotImplementedError

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every prompt name this sayer can return."""
        raise NotImplementedError

    # -- common to all languages
    def ordinal(self, n: int) -> list[str]:
        n = _integer(n)
        if not 1 <= n <= MAX_ORDINAL:
            raise SayError(f"ordinal {n} is outside 1..{MAX_ORDINAL}")
        return [f"ord-{n}"]

    def digits(self, text: Union[str, int]) -> list[str]:
        """Digit by digit, as a phone number or PIN: "1206" -> ["1", "2", "0", "6"]."""
        if isinstance(text, bool) or not isinstance(text, (str, int)):
            raise SayError(f"digits need a string or an int, got {type(text).__name__}")
        if isinstance(text, int):
            if text < 0:
                raise SayError(f"digits of a negative number {text}")
            text = str(text)
        out = []
        for char in text:
            if char.isascii() and char.isdigit():
                out.append(char)
            elif char in "*#+":
                out.append(SYMBOLS[char])
            elif char not in DIGIT_SEPARATORS:
                raise SayError(f"cannot say {char!r} in {text!r} as a digit")
        return out

    def spell(self, text: str) -> list[str]:
        """Letter by letter; accents are dropped, spaces skipped."""
        if not isinstance(text, str):
            raise SayError(f"spell needs a string, got {type(text).__name__}")
        plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        out = []
        for char in plain.lower():
            if "a" <= char <= "z":
                out.append(f"letter-{char}")
            elif char.isascii() and char.isdigit():
                out.append(char)
            elif char in SYMBOLS:
                out.append(SYMBOLS[char])
            elif not char.isspace():
                raise SayError(f"cannot spell {char!r} in {text!r}")
        return out

    def count(self, n: int, singular: str, plural: str, gender: Optional[str] = None) -> list[str]:
        """A number of things: "1 minute", "5 minutes"."""
        return self.number(n, gender) + [singular if n == 1 else plural]

    def money(self, amount: Union[Decimal, int, str], currency: str) -> list[str]:
        """An amount in a currency, to the cent; unknown currencies are said as a decimal number
        followed by the spelled code."""
        value = _decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        negative = value < 0
        units, cents = divmod(int(abs(value) * 100), 100)
        out = [self.minus] if negative else []
        if not isinstance(currency, str):
            raise SayError(f"currency code must be a string, got {type(currency).__name__}")
        table = self.currencies.get(currency.upper())
        if table is None:
            out += self.number(units)
            if cents:
                out += [self.point] + self.digits(f"{cents:02d}")
            return out + self.spell(currency)
        unit_one, unit_many, unit_gender, sub_one, sub_many, sub_gender = table
        if units or not cents:
            out += self.count(units, unit_one, unit_many, unit_gender)
        if cents:
            if units:
                out.append(self.money_joiner)
            out += self.count(cents, sub_one, sub_many, sub_gender)
        return out

    def duration(self, seconds: Union[int, float, Decimal, dt.timedelta],
                 round_up_to_minutes: bool = False) -> list[str]:
        """"5 minutes and 49 seconds"; with round_up_to_minutes, 349 s is "6 minutes"."""
        if isinstance(seconds, dt.timedelta):
            seconds = seconds.total_seconds()
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float, Decimal)):
            raise SayError(f"duration needs a number of seconds, got {type(seconds).__name__}")
        if seconds != seconds or seconds < 0 or seconds > MAX_NUMBER:  # NaN, negative, absurd
            raise SayError(f"cannot say a duration of {seconds} seconds")
        total = int(seconds)
        if round_up_to_minutes:
            total = -(-total // 60) * 60
        hours, rest = divmod(total, 3600)
        minutes, secs = divmod(rest, 60)
        parts = [(value, self.units[unit]) for value, unit in
                 ((hours, "hour"), (minutes, "minute"), (secs, "second")) if value]
        if not parts:
            one, many, gender = self.units["second"]
            return self.count(0, one, many, gender)
        out: list[str] = []
        for index, (value, (one, many, gender)) in enumerate(parts):
            if index and index == len(parts) - 1:
                out.append("and")
            out += self.count(value, one, many, gender)
        return out

    def datetime(self, when: dt.datetime, now: Optional[dt.datetime] = None) -> list[str]:
        """When something happened, relative to now when given: "today at 10 15 a.m.",
        "yesterday at ...", the weekday within the past week, else the date (with the year
        when it is not this year's)."""
        if not isinstance(when, dt.datetime):
            raise SayError(f"datetime needs a datetime, got {type(when).__name__}")
        if now is None:
            return self.date(when) + ["at"] + self.time(when)
        if when.tzinfo is not None and now.tzinfo is not None:
            when = when.astimezone(now.tzinfo)
        days_ago = (now.date() - when.date()).days
        if days_ago == 0:
            day = ["today"]
        elif days_ago == 1:
            day = ["yesterday"]
        elif days_ago == -1:
            day = ["tomorrow"]
        elif 1 < days_ago < 7:
            day = [WEEKDAYS[when.weekday()]]
        else:
            day = self.date(when, with_year=when.year != now.year)
        return day + ["at"] + self.time(when)

    def _common_vocabulary(self) -> set[str]:
        words = {str(i) for i in range(10)} | set(SYMBOLS.values())
        words |= {f"letter-{chr(c)}" for c in range(ord("a"), ord("z") + 1)}
        words |= {f"ord-{n}" for n in range(1, MAX_ORDINAL + 1)}
        words |= set(WEEKDAYS) | set(MONTHS)
        words |= {"today", "yesterday", "tomorrow", "at", "and", self.minus, self.point, self.money_joiner}
        for table in self.currencies.values():
            words |= {table[0], table[1], table[3], table[4]}
        for one, many, _ in self.units.values():
            words |= {one, many}
        return words


def _integer(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, Decimal)):
        raise SayError(f"expected an integer, got {type(n).__name__} {n!r}")
    if isinstance(n, Decimal):
        if n != n.to_integral_value():
            raise SayError(f"expected an integer, got {n}")
        n = int(n)
    if abs(n) > MAX_NUMBER:
        raise SayError(f"{n} is too large to say (limit {MAX_NUMBER})")
    return n


def _decimal(amount) -> Decimal:
    if isinstance(amount, bool) or isinstance(amount, float):
        raise SayError(f"money needs a Decimal, int or string, not {type(amount).__name__} {amount!r}")
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise SayError(f"not an amount of money: {amount!r}") from None
    if not value.is_finite() or abs(value) > MAX_NUMBER:
        raise SayError(f"cannot say an amount of {amount!r}")
    return value


_sayers: dict[str, Sayer] = {}


_modules: list[str] = []


def available_languages() -> list[str]:
    """Language codes that have a sayer module here."""
    if not _modules:
        _modules.extend(sorted(m.name for m in pkgutil.iter_modules(__path__) if _LANGUAGE_MODULE.match(m.name)))
    return list(_modules)


def get_sayer(language: Optional[str]) -> Sayer:
    """The sayer of a language code ("es", "es-MX", "ES_mx"); English when there is none."""
    code = (language or DEFAULT_LANGUAGE).strip().lower().replace("_", "-").split("-", 1)[0]
    if code not in _sayers:
        if code not in available_languages():
            code = DEFAULT_LANGUAGE
        if code not in _sayers:
            _sayers[code] = importlib.import_module(f"{__name__}.{code}").SAYER
    return _sayers[code]
