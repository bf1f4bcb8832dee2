"""Dates in index names, read with a strftime-style timestring (`%Y.%m.%d`), as
Elasticsearch Curator does.

A timestring matches only where the date is not part of a longer date: `%Y.%m` does not
match `logs-2024.01.15` (the `.15` that follows would make it a daily name), and a name
with two candidate dates is ambiguous and left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opskit.periods import add_months

# directive -> (regex, the unit it pins down)
DIRECTIVES: dict[str, tuple[str, str]] = {
    "%Y": (r"\d{4}", "year"),
    "%y": (r"\d{2}", "year"),
    "%m": (r"\d{2}", "month"),
    "%d": (r"\d{2}", "day"),
    "%j": (r"\d{3}", "day"),
    "%H": (r"\d{2}", "hour"),
}
_FINEST = ("year", "month", "day", "hour")
_SEPARATORS = "._-"


@dataclass(frozen=True)
class Timestring:
    text: str
    pattern: re.Pattern[str]
    loose: re.Pattern[str]  # any date-shaped run: more than one makes a name ambiguous
    unit: str  # year | month | day | hour: the length of the period one name covers

    def period(self, name: str) -> tuple[datetime, datetime] | None:
        """The UTC period [start, end) the name's date stands for, or None when the name has
        no date in this form (or more than one)."""
        found = self.pattern.findall(name)
        if len(found) != 1 or len(self.loose.findall(name)) != 1:
            return None
        try:
            start = datetime.strptime(found[0], self.text).replace(tzinfo=UTC)
        except ValueError:
            return None
        return start, period_end(start, self.unit)


def period_end(start: datetime, unit: str) -> datetime:
    if unit == "year":
        return add_months(start, 12)
    if unit == "month":
        return add_months(start, 1)
    return start + (timedelta(days=1) if unit == "day" else timedelta(hours=1))


def compile_timestring(text: str) -> Timestring:
    """Check a timestring and build its matcher; raise ValueError naming the problem."""
    parts: list[str] = []
    units: set[str] = set()
    seen: set[str] = set()
    i = 0
    while i < len(text):
        if text[i] == "%":
            directive = text[i : i + 2]
            if directive not in DIRECTIVES:
                known = " ".join(DIRECTIVES)
                raise ValueError(f"timestring {text!r}: unsupported {directive!r} (use {known})")
            if directive in seen:
                raise ValueError(f"timestring {text!r}: {directive} appears twice")
            seen.add(directive)
            regex, unit = DIRECTIVES[directive]
            parts.append(regex)
            units.add(unit)
            i += 2
        else:
            parts.append(re.escape(text[i]))
            i += 1
    if not seen & {"%Y", "%y"}:
        raise ValueError(f"timestring {text!r}: needs a year (%Y or %y)")
    if "%d" in seen and "%m" not in seen:
        raise ValueError(f"timestring {text!r}: %d needs %m")
    if "%j" in seen and seen & {"%m", "%d"}:
        raise ValueError(f"timestring {text!r}: %j (day of year) excludes %m and %d")
    if "%H" in seen and "day" not in units:
        raise ValueError(f"timestring {text!r}: %H needs a day (%m%d or %j)")
    unit = max(units, key=_FINEST.index)
    sep = re.escape(_SEPARATORS)
    body = "".join(parts)
    pattern = re.compile(f"(?<!\\d)({body})(?![{sep}]?\\d)")
    loose = re.compile(f"(?<!\\d){body}(?!\\d)")
    return Timestring(text, pattern, loose, unit)
