"""Durations as operators write them: Prometheus style (`90s`, `5m`, `2h`, `1h30m`, `30d`,
`2w`, `1y`, `250ms`)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+")


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m` and friends; raise ValueError with a message fit for the operator."""
    raw = text.strip().lower()
    if not raw or not _WHOLE.fullmatch(raw):
        raise ValueError(f"bad duration {text!r} (expected e.g. 30s, 5m, 2h, 1h30m, 30d)")
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(raw))
    return from_seconds(seconds, text)


MAX_SECONDS = 100 * 365 * 86400.0


def from_seconds(seconds: float, shown: object) -> timedelta:
    """A positive duration of at most a century (timedelta overflows far beyond)."""
    if not seconds > 0:
        raise ValueError(f"bad duration {shown!r}: must be greater than zero")
    if seconds > MAX_SECONDS:
        raise ValueError(f"bad duration {shown!r}: longer than 100 years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta | float) -> str:
    """Compact form of a duration, largest units first (`1d2h`, `45s`)."""
    total = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if total < 1:
        return f"{round(total * 1000)}ms"
    seconds = round(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts[:2])
