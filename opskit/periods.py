"""Retention periods: how long to keep something, calendar-correct.

`30d`, `2w`, `36h` are exact lengths; `6mo` (or `6M`) and `1y` are calendar months and
years: six months before 31 August is 28 (or 29) February, not 184 days earlier.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_PART = re.compile(r"(\d+)(mo|M|y|w|d|h)")
_WHOLE = re.compile(r"(?:\d+(?:mo|M|y|w|d|h))+")
_FIXED = {"w": 7 * 86400, "d": 86400, "h": 3600}


@dataclass(frozen=True)
class Period:
    """A retention period: whole calendar months plus an exact number of seconds."""

    text: str
    months: int = 0
    seconds: int = 0

    def before(self, when: datetime) -> datetime:
        """The instant this period before `when` (months first, then the exact part)."""
        return add_months(when, -self.months) - timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return self.text


def parse_period(text: str) -> Period:
    """`30d`, `2w`, `6mo`, `1y`, `1y6mo`; raise ValueError with an operator's message."""
    raw = text.strip()
    if not raw or not _WHOLE.fullmatch(raw):
        hint = " (months are `mo`, e.g. 6mo)" if re.fullmatch(r"\d+m", raw) else ""
        raise ValueError(f"bad period {text!r}: expected e.g. 14d, 2w, 6mo, 1y{hint}")
    months = seconds = 0
    for number, unit in _PART.findall(raw):
        n = int(number)
        if unit in ("mo", "M"):
            months += n
        elif unit == "y":
            months += 12 * n
        else:
            seconds += n * _FIXED[unit]
    if months == 0 and seconds == 0:
        raise ValueError(f"bad period {text!r}: must be greater than zero")
    if months > 1200 or seconds > 100 * 366 * 86400:
        raise ValueError(f"bad period {text!r}: longer than 100 years")
    return Period(raw, months, seconds)


def add_months(when: datetime, months: int) -> datetime:
    """`when` moved by whole calendar months; the day is clamped to the month's end."""
    index = when.year * 12 + (when.month - 1) + months
    year, month = divmod(index, 12)
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return when.replace(year=year, month=month + 1, day=day)
