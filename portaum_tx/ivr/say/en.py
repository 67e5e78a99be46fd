"""English (US) sayings: "one hundred fifteen", "twenty twenty-six", "ten oh five p.m."."""

from __future__ import annotations

import datetime as dt
from typing import Optional, Union

from portaum_tx.ivr.say import MONTHS, WEEKDAYS, SayError, Sayer, _integer

SCALES = ((10 ** 9, "billion"), (10 ** 6, "million"), (10 ** 3, "thousand"))


class EnglishSayer(Sayer):
    language = "en"
    currencies = {
        "USD": ("dollar", "dollars", "m", "cent", "cents", "m"),
        "CAD": ("dollar", "dollars", "m", "cent", "cents", "m"),
        "AUD": ("dollar", "dollars", "m", "cent", "cents", "m"),
        "NZD": ("dollar", "dollars", "m", "cent", "cents", "m"),
        "EUR": ("euro", "euros", "m", "euro-cent", "euro-cents", "m"),
        "GBP": ("pound-sterling", "pounds-sterling", "m", "penny", "pence", "m"),
        "MXN": ("peso", "pesos", "m", "centavo", "centavos", "m"),
    }

    def number(self, n: int, gender: Optional[str] = None) -> list[str]:
        n = _integer(n)
        if n < 0:
            return [self.minus] + self.number(-n)
        if n == 0:
            return ["0"]
        out: list[str] = []
        for value, word in SCALES:
            if n >= value:
                out += _below_thousand(n // value) + [word]
                n %= value
        return out + _below_thousand(n)

    def year(self, year: int) -> list[str]:
        """1999 -> nineteen ninety-nine, 2005 -> two thousand five, 1900 -> nineteen hundred."""
        year = _integer(year)
        if not 1000 <= year <= 9999 or 2000 <= year <= 2009 or year % 1000 == 0:
            return self.number(year)
        century, rest = divmod(year, 100)
        if rest == 0:
            return [str(century), "hundred"]
        return [str(century)] + (["oh", str(rest)] if rest < 10 else [str(rest)])

    def date(self, when: dt.date, with_year: bool = False, with_weekday: bool = True) -> list[str]:
        """Monday, March third[, twenty twenty-six]."""
        if not isinstance(when, dt.date):
            raise SayError(f"date needs a date, got {type(when).__name__}")
        out = [WEEKDAYS[when.weekday()]] if with_weekday else []
        out += [MONTHS[when.month - 1], f"ord-{when.day}"]
        return out + (self.year(when.year) if with_year else [])

    def time(self, when: Union[dt.time, dt.datetime]) -> list[str]:
        """12-hour clock: "ten a.m.", "ten oh five a.m.", "twelve thirty p.m."."""
        if not isinstance(when, (dt.time, dt.datetime)):
            raise SayError(f"time needs a time or datetime, got {type(when).__name__}")
        hour = when.hour % 12 or 12
        half = "am" if when.hour < 12 else "pm"
        if when.minute == 0:
            return [str(hour), half]
        if when.minute < 10:
            return [str(hour), "oh", str(when.minute), half]
        return [str(hour), str(when.minute), half]

    @property
    def vocabulary(self) -> frozenset[str]:
        words = self._common_vocabulary()
        words |= {str(i) for i in range(100)} | {"hundred"} | {word for _, word in SCALES}
        words |= {"am", "pm", "oh"}
        return frozenset(words)


def _below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out = [str(hundreds), "hundred"] if hundreds else []
    return out + ([str(rest)] if rest else [])


SAYER = EnglishSayer()
