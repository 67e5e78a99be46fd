"""Rating: what a call costs and how long an account may talk.

Money is ``decimal.Decimal`` throughout; floats are refused because a price
such as 0.1 has no exact binary form. Intermediate amounts are exact
fractions and are rounded once, at the end, to a configurable precision
(five places, rounded up, for charges; two places, rounded down, for what the
IVR announces, so that nobody hears money they do not have).

Billing follows the PortaBilling rate model:

* a call is billed by its rate's *first interval* (the minimum billed time),
  then in whole *next intervals*, each rounded up: a 61-second call on a
  30/6 rate is billed 30 + 36 = 66 seconds;
* the first interval is priced at ``price_per_minute``, the next intervals
  at ``next_price_per_minute`` (the same price unless given);
* the *connection fee* is charged once per answered call. A call of zero
  seconds was not answered and costs nothing at all, fee included;
* *grace period*: an answered call no longer than this many seconds is free
  (fee included); a longer one is billed in full;
* *free seconds*: the first seconds of every charged call are not billed;
  interval rounding applies to the remainder. The fee is still due;
* a *forbidden* rate refuses the destination.

``max_duration`` answers "how long may this call last" by searching the
same ``charge`` function, so the two can never disagree: ``charge(max)`` fits
the funds and ``charge(max + 1)`` does not.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from decimal import (
    ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation, localcontext,
)
from fractions import Fraction
from typing import Iterable, Union

__all__ = [
    "ANNOUNCE", "INTERNAL", "AnnouncedTime", "ForbiddenDestinationError", "InvalidRateError",
    "MoneyPrecision", "NoRateError", "Rate", "RatingError", "SecondsRounding", "Tariff",
    "announce_time", "charge", "max_duration", "postpaid_funds", "prepaid_funds", "round_money",
    "to_money",
]

MoneyInput = Union[Decimal, int, str]


class RatingError(ValueError):
    """Base class of rating errors."""


class InvalidRateError(RatingError):
    """A rate, tariff or amount that cannot be used as given."""


class NoRateError(RatingError):
    """The tariff has no rate for the destination."""

    def __init__(self, number: str):
        self.number = number
        super().__init__(f"no rate for destination {number!r}")


class ForbiddenDestinationError(RatingError):
    """The destination's rate is marked forbidden."""

    def __init__(self, number: str, prefix: str):
        self.number = number
        self.prefix = prefix
        super().__init__(f"destination {number!r} is forbidden (rate prefix {prefix!r})")


def to_money(value: MoneyInput, what: str = "amount") -> Decimal:
    """An exact Decimal from a Decimal, int or numeric string; floats are refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidRateError(f"{what} must be a Decimal, int or string, not {type(value).__name__} {value!r}")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, (int, str)):
        try:
            amount = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise InvalidRateError(f"{what} {value!r} is not a number") from None
    else:
        raise InvalidRateError(f"{what} must be a Decimal, int or string, not {type(value).__name__}")
    if not amount.is_finite():
        raise InvalidRateError(f"{what} {value!r} is not a finite number")
    return amount


def round_money(amount: Decimal | Fraction | int, places: int, rounding: str = ROUND_UP) -> Decimal:
    """Round an exact amount to ``places`` decimals with a ``decimal`` rounding mode.

    Fractions (such as 7/60 of a price) are rounded exactly: the remainder is
    replaced by a stand-in on the same side of the half-way point, which every
    ``decimal`` rounding mode treats the same as the true value.
    """
    exact = Fraction(amount)
    scaled = exact * 10 ** places
    whole = scaled.numerator // scaled.denominator
    remainder = scaled - whole
    if remainder == 0:
        stand_in = Decimal(0)
    elif remainder < Fraction(1, 2):
        stand_in = Decimal("0.25")
    elif remainder == Fraction(1, 2):
        stand_in = Decimal("0.5")
    else:
        stand_in = Decimal("0.75")
    with localcontext() as context:
        context.prec = len(str(abs(whole))) + places + 10
        units = (Decimal(whole) + stand_in).quantize(Decimal(1), rounding=rounding)
        return units.scaleb(-places)


@dataclass(frozen=True)
class MoneyPrecision:
    """How many decimals an amount keeps and which way it rounds."""

    places: int = 5
    rounding: str = ROUND_UP

    def __post_init__(self):
        if not isinstance(self.places, int) or isinstance(self.places, bool) or not 0 <= self.places <= 12:
            raise InvalidRateError(f"money precision must be 0-12 decimal places, not {self.places!r}")

    def round(self, amount: Decimal | Fraction | int) -> Decimal:
        return round_money(amount, self.places, self.rounding)


INTERNAL = MoneyPrecision(5, ROUND_UP)
ANNOUNCE = MoneyPrecision(2, ROUND_DOWN)


def _seconds(value: int, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRateError(f"{what} must be a whole number of seconds, not {value!r}")
    if value < minimum:
        raise InvalidRateError(f"{what} must be at least {minimum} seconds, not {value}")
    return value


@dataclass(frozen=True)
class Rate:
    """The price of calls to destinations starting with ``prefix``."""

    prefix: str
    price_per_minute: Decimal
    first_interval: int = 60
    next_interval: int = 60
    connection_fee: Decimal = Decimal(0)
    forbidden: bool = False
    next_price_per_minute: Decimal | None = None
    free_seconds: int = 0
    grace_period: int = 0

    def __post_init__(self):
        if not isinstance(self.prefix, str) or not self.prefix or any(c.isspace() for c in self.prefix):
            raise InvalidRateError(f"rate prefix must be a non-empty string without spaces, not {self.prefix!r}")
        prices = {
            "price_per_minute": self.price_per_minute,
            "connection_fee": self.connection_fee,
            "next_price_per_minute": (self.price_per_minute if self.next_price_per_minute is None
                                      else self.next_price_per_minute),
        }
        for name, value in prices.items():
            amount = to_money(value, f"{name} of rate {self.prefix!r}")
            if amount < 0:
                raise InvalidRateError(f"{name} of rate {self.prefix!r} is negative: {amount}")
            object.__setattr__(self, name, amount)
        _seconds(self.first_interval, f"first interval of rate {self.prefix!r}", 1)
        _seconds(self.next_interval, f"next interval of rate {self.prefix!r}", 1)
        _seconds(self.free_seconds, f"free seconds of rate {self.prefix!r}")
        _seconds(self.grace_period, f"grace period of rate {self.prefix!r}")
        object.__setattr__(self, "forbidden", bool(self.forbidden))

    def billed_seconds(self, duration: int) -> int:
        """The seconds actually billed at the per-minute prices (after grace, free seconds, intervals)."""
        duration = _seconds(duration, "call duration")
        if duration == 0 or duration <= self.grace_period:
            return 0
        chargeable = duration - self.free_seconds
        if chargeable <= 0:
            return 0
        if chargeable <= self.first_interval:
            return self.first_interval
        rest = chargeable - self.first_interval
        return self.first_interval + math.ceil(rest / self.next_interval) * self.next_interval

    def exact_charge(self, duration: int) -> Fraction:
        """The unrounded charge."""
        duration = _seconds(duration, "call duration")
        if self.forbidden:
            raise ForbiddenDestinationError(self.prefix, self.prefix)
        if duration == 0 or duration <= self.grace_period:
            return Fraction(0)
        billed = self.billed_seconds(duration)
        first = min(billed, self.first_interval)
        rest = billed - first
        return (Fraction(self.connection_fee)
                + Fraction(self.price_per_minute) * first / 60
                + Fraction(self.next_price_per_minute) * rest / 60)

    def charge(self, duration: int, precision: MoneyPrecision = INTERNAL) -> Decimal:
        """What a call of ``duration`` seconds costs, rounded to ``precision``."""
        return precision.round(self.exact_charge(duration))

    def max_duration(self, funds: MoneyInput, precision: MoneyPrecision = INTERNAL,
                     limit: int | None = None) -> int | None:
        return max_duration(funds, self, precision, limit)


def charge(rate: Rate, duration: int, precision: MoneyPrecision = INTERNAL) -> Decimal:
    """What a call of ``duration`` seconds at ``rate`` costs."""
    return rate.charge(duration, precision)


def max_duration(available_funds: MoneyInput, rate: Rate, precision: MoneyPrecision = INTERNAL,
                 limit: int | None = None) -> int | None:
    """The longest call, in whole seconds, whose charge fits ``available_funds``.

    Returns ``None`` when no duration would ever exceed the funds (a free rate,
    or a rate whose later intervals cost nothing) and no ``limit`` is given;
    with a ``limit`` the answer never exceeds it. Negative funds allow no call
    at all, not even one that a grace period would leave free.
    """
    funds = to_money(available_funds, "available funds")
    if rate.forbidden:
        raise ForbiddenDestinationError(rate.prefix, rate.prefix)
    if limit is not None:
        _seconds(limit, "duration limit")
    if funds < 0:
        return 0

    def fits(seconds: int) -> bool:
        return rate.charge(seconds, precision) <= funds

    if limit is not None and fits(limit):
        return limit
    # Beyond this point every longer call is billed through the next intervals.
    settled = rate.grace_period + rate.free_seconds + rate.first_interval + 1
    if limit is not None:
        too_long = limit
    elif rate.next_price_per_minute == 0:
        if fits(settled):
            return None
        too_long = settled
    else:
        too_long = settled
        while fits(too_long):
            too_long *= 2
    fitting = 0  # charge(0) is zero, which non-negative funds always cover
    while too_long - fitting > 1:
        middle = (fitting + too_long) // 2
        if fits(middle):
            fitting = middle
        else:
            too_long = middle
    return fitting


def prepaid_funds(balance: MoneyInput) -> Decimal:
    """What a prepaid (debit) account may spend: its balance."""
    return max(to_money(balance, "balance"), Decimal(0))


def postpaid_funds(balance: MoneyInput, credit_limit: MoneyInput) -> Decimal:
    """What a postpaid (credit) account may spend: credit limit minus the balance it owes."""
    return max(to_money(credit_limit, "credit limit") - to_money(balance, "balance"), Decimal(0))


@dataclass
class Tariff:
    """A set of rates; a number is rated by the rate with the longest matching prefix."""

    rates: Iterable[Rate] = ()
    name: str = ""
    _by_prefix: dict[str, Rate] = field(init=False, repr=False)

    def __post_init__(self):
        self._by_prefix = {}
        for rate in self.rates:
            if not isinstance(rate, Rate):
                raise InvalidRateError(f"tariff {self.name!r} holds a {type(rate).__name__}, not a Rate")
            if rate.prefix in self._by_prefix:
                raise InvalidRateError(f"tariff {self.name!r} has two rates for prefix {rate.prefix!r}")
            self._by_prefix[rate.prefix] = rate
        self.rates = tuple(self._by_prefix.values())

    def find_rate(self, number: str) -> Rate | None:
        """The longest-prefix rate for ``number`` (forbidden or not), or None."""
        if not isinstance(number, str) or not number:
            raise InvalidRateError(f"destination must be a non-empty string, not {number!r}")
        for length in range(len(number), 0, -1):
            rate = self._by_prefix.get(number[:length])
            if rate is not None:
                return rate
        return None

    def rate_for(self, number: str) -> Rate:
        """The rate that applies to ``number``; refuses unknown and forbidden destinations."""
        rate = self.find_rate(number)
        if rate is None:
            raise NoRateError(number)
        if rate.forbidden:
            raise ForbiddenDestinationError(number, rate.prefix)
        return rate

    def charge(self, number: str, duration: int, precision: MoneyPrecision = INTERNAL) -> Decimal:
        return self.rate_for(number).charge(duration, precision)

    def max_duration(self, number: str, available_funds: MoneyInput, precision: MoneyPrecision = INTERNAL,
                     limit: int | None = None) -> int | None:
        return max_duration(available_funds, self.rate_for(number), precision, limit)


class SecondsRounding(enum.Enum):
    """How the seconds of an announced available time are spoken (prepaid "Seconds Rounding Mode")."""

    NONE = "none"
    UP = "up"

    @classmethod
    def from_option(cls, text: str) -> "SecondsRounding":
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise InvalidRateError(f"seconds rounding mode must be 'none' or 'up', not {text!r}") from None


@dataclass(frozen=True)
class AnnouncedTime:
    minutes: int
    seconds: int


def announce_time(seconds: int, rounding: SecondsRounding | str = SecondsRounding.NONE) -> AnnouncedTime:
    """Minutes and seconds to announce: 5:49 is "five minutes and 49 seconds", or "six minutes" rounded up."""
    seconds = _seconds(seconds, "announced time")
    if not isinstance(rounding, SecondsRounding):
        rounding = SecondsRounding.from_option(rounding)
    if rounding is SecondsRounding.UP:
        return AnnouncedTime(math.ceil(seconds / 60), 0)
    minutes, rest = divmod(seconds, 60)
    return AnnouncedTime(minutes, rest)
