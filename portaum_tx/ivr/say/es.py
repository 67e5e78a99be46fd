"""Spanish sayings.

Numbers agree with the noun they count: "un minuto", "una hora", "veintiún dólares",
"doscientas libras"; "uno" when counting alone. Millions take "de" before the noun
("un millón de dólares"). Dates are "lunes, tres de marzo", times use the 24-hour clock
("las catorce y quince", "la una en punto").
"""

from __future__ import annotations

import datetime as dt
from typing import Optional, Union

from portaum_tx.ivr.say import MONTHS, WEEKDAYS, SayError, Sayer, _integer

GENDERS = (None, "m", "f")


class SpanishSayer(Sayer):
    language = "es"
    money_joiner = "con"
    point = "point"
    currencies = {
        "USD": ("dollar", "dollars", "m", "cent", "cents", "m"),
        "CAD": ("dollar", "dollars", "m", "cent", "cents", "m"),
        "AUD": ("dollar", "dollars", "m", "cent", "cents", "m"),
        "NZD": ("dollar", "dollars", "m", "cent", "cents", "m"),
        "EUR": ("euro", "euros", "m", "euro-cent", "euro-cents", "m"),
        "GBP": ("pound-sterling", "pounds-sterling", "f", "penny", "pence", "m"),
        "MXN": ("peso", "pesos", "m", "centavo", "centavos", "m"),
    }
    units = {
        "hour": ("hour", "hours", "f"),
        "minute": ("minute", "minutes", "m"),
        "second": ("second", "seconds", "m"),
    }

    def number(self, n: int, gender: Optional[str] = None) -> list[str]:
        """gender None counts ("veintiuno"); "m" and "f" agree with a noun ("veintiún", "veintiuna")."""
        n = _integer(n)
        if gender not in GENDERS:
            raise SayError(f"gender must be 'm', 'f' or None, got {gender!r}")
        if n < 0:
            return [self.minus] + self.number(-n, gender)
        if n == 0:
            return ["0"]
        millions, rest = divmod(n, 10 ** 6)
        out: list[str] = []
        if millions == 1:
            out += ["1-m", "millon"]
        elif millions:
            # "millón" is a masculine noun: "veintiún millones", "doscientos millones"
            out += _below_million(millions, "m", feminine_hundreds=False) + ["millones"]
        if rest:
            out += _below_million(rest, gender, feminine_hundreds=gender == "f")
        return out

    def count(self, n: int, singular: str, plural: str, gender: Optional[str] = None) -> list[str]:
        words = self.number(n, gender or "m")
        if abs(n) >= 10 ** 6 and n % 10 ** 6 == 0:
            return words + ["de", plural]  # "un millón de dólares"
        return words + [singular if n == 1 else plural]

    def date(self, when: dt.date, with_year: bool = False, with_weekday: bool = True) -> list[str]:
        """lunes, tres de marzo[ de dos mil veintiséis]; the first is "primero"."""
        if not isinstance(when, dt.date):
            raise SayError(f"date needs a date, got {type(when).__name__}")
        out = [WEEKDAYS[when.weekday()]] if with_weekday else []
        out += (["ord-1"] if when.day == 1 else self.number(when.day)) + ["de", MONTHS[when.month - 1]]
        return out + (["de"] + self.number(when.year) if with_year else [])

    def time(self, when: Union[dt.time, dt.datetime]) -> list[str]:
        """24-hour clock: "las catorce y quince", "la una en punto", "las cero y cinco"."""
        if not isinstance(when, (dt.time, dt.datetime)):
            raise SayError(f"time needs a time or datetime, got {type(when).__name__}")
        out = ["la" if when.hour == 1 else "las"] + self.number(when.hour, "f")
        if when.minute == 0:
            return out + ["en-punto"]
        return out + ["and"] + self.number(when.minute)

    @property
    def vocabulary(self) -> frozenset[str]:
        words = self._common_vocabulary()
        words |= {str(i) for i in range(100)}
        words |= {"1-m", "1-f", "21-m", "21-f"} | {f"{t}1-{g}" for t in range(3, 10) for g in "mf"}
        words |= {"100", "ciento"} | {f"{h}00" for h in range(2, 10)} | {f"{h}00-f" for h in range(2, 10)}
        words |= {"mil", "millon", "millones", "de", "la", "las", "en-punto"}
        return frozenset(words)


def _below_million(n: int, gender: Optional[str], feminine_hundreds: bool) -> list[str]:
    thousands, rest = divmod(n, 1000)
    out: list[str] = []
    if thousands == 1:
        out.append("mil")  # "mil", never "un mil"
    elif thousands:
        # before "mil" the unit is apocopated whatever the noun: "veintiún mil"
        out += _below_thousand(thousands, "m", feminine_hundreds) + ["mil"]
    return out + (_below_thousand(rest, gender, feminine_hundreds) if rest else [])


def _below_thousand(n: int, gender: Optional[str], feminine_hundreds: bool) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out: list[str] = []
    if hundreds == 1:
        out.append("100" if rest == 0 else "ciento")
    elif hundreds:
        out.append(f"{hundreds}00-f" if feminine_hundreds else f"{hundreds}00")
    if rest:
        if gender and rest % 10 == 1 and rest != 11:
            out.append(f"{rest}-{gender}")
        else:
            out.append(str(rest))
    return out


SAYER = SpanishSayer()
