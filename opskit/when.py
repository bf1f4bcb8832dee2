"""When a maintenance cadence runs, as written in `[schedule]`: `monday 06:00` (weekly),
`day 1 06:30` (monthly: that day of every month; quarterly: of January, April, July and
October). Pure, so config validation and the scheduler read it the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CADENCES = ("weekly", "monthly", "quarterly")
QUARTER_MONTHS = (1, 4, 7, 10)
_TIME = r"([01]?\d|2[0-3]):([0-5]\d)"
_WEEKLY = re.compile(rf"({'|'.join(WEEKDAYS)}|{'|'.join(d[:3] for d in WEEKDAYS)})\s+{_TIME}")
_DAY = re.compile(rf"day\s+(\d{{1,2}})\s+{_TIME}")


@dataclass(frozen=True)
class When:
    """A cadence's slot: weekday (0 = Monday) for weekly, day of month otherwise."""

    cadence: str
    hour: int
    minute: int
    weekday: int | None = None
    day: int | None = None

    @property
    def time(self) -> str:
        return f"{self.hour:02d}:{self.minute:02d}"

    @property
    def months(self) -> tuple[int, ...]:
        return QUARTER_MONTHS if self.cadence == "quarterly" else tuple(range(1, 13))

    def cron(self) -> str:
        """The five cron fields."""
        if self.weekday is not None:
            return f"{self.minute} {self.hour} * * {(self.weekday + 1) % 7}"
        months = "*" if self.cadence == "monthly" else ",".join(map(str, self.months))
        return f"{self.minute} {self.hour} {self.day} {months} *"

    def systemd(self) -> str:
        """A systemd OnCalendar= expression."""
        if self.weekday is not None:
            return f"{WEEKDAYS[self.weekday][:3].capitalize()} *-*-* {self.time}:00"
        months = "*" if self.cadence == "monthly" else ",".join(f"{m:02d}" for m in self.months)
        return f"*-{months}-{self.day:02d} {self.time}:00"

    def matches_day(self, year_month_day_weekday: tuple[int, int, int, int]) -> bool:
        """Whether this slot falls on the given (year, month, day, weekday) date."""
        _year, month, day, weekday = year_month_day_weekday
        if self.weekday is not None:
            return weekday == self.weekday
        return day == self.day and month in self.months


def parse_when(cadence: str, text: str) -> When:
    """Parse one `[schedule]` value; ValueError with a message fit for the operator."""
    raw = " ".join(text.strip().lower().split())
    if cadence == "weekly":
        m = _WEEKLY.fullmatch(raw)
        if not m:
            raise ValueError(f"bad weekly time {text!r} (expected e.g. 'monday 06:00')")
        names = [d[:3] for d in WEEKDAYS]
        return When(cadence, int(m[2]), int(m[3]), weekday=names.index(m[1][:3]))
    if cadence not in CADENCES:
        raise ValueError(f"unknown cadence {cadence!r}")
    m = _DAY.fullmatch(raw)
    if not m:
        raise ValueError(f"bad {cadence} time {text!r} (expected e.g. 'day 1 06:30')")
    day = int(m[1])
    if not 1 <= day <= 28:
        raise ValueError(f"bad {cadence} time {text!r}: day must be 1-28 (every month has it)")
    return When(cadence, int(m[2]), int(m[3]), day=day)
