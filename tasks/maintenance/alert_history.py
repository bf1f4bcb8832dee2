"""Alert firing history from Prometheus's `ALERTS` series: how often each alert fired
over a window, for how long, and whether it flaps. Shared by the weekly pattern review
and the monthly threshold review; `episodes` is pure."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opskit.clients.prometheus import PrometheusClient

FIRING = 'max by (alertname) (ALERTS{alertstate="firing"})'


@dataclass(slots=True)
class AlertHistory:
    alertname: str
    episodes: int  # separate firings (a gap longer than one step ends one)
    firing_seconds: float
    coverage: float  # fraction of the window spent firing
    first: datetime | None
    last: datetime | None

    @property
    def firing_hours(self) -> float:
        return round(self.firing_seconds / 3600, 2)


def episodes(stamps: list[float], step: float) -> tuple[int, float]:
    """(episodes, seconds firing) from the timestamps at which a range query saw the alert
    firing, sampled every `step` seconds."""
    if not stamps:
        return 0, 0.0
    ordered = sorted(stamps)
    count = 1
    for before, after in itertools.pairwise(ordered):
        if after - before > step * 1.5:
            count += 1
    return count, len(ordered) * step


def summarize(
    alertname: str, stamps: list[float], step: float, window_seconds: float
) -> AlertHistory:
    count, seconds = episodes(stamps, step)
    return AlertHistory(
        alertname=alertname,
        episodes=count,
        firing_seconds=seconds,
        coverage=round(min(seconds / window_seconds, 1.0), 4) if window_seconds > 0 else 0.0,
        first=datetime.fromtimestamp(min(stamps), UTC) if stamps else None,
        last=datetime.fromtimestamp(max(stamps), UTC) if stamps else None,
    )


async def alert_history(
    prom: PrometheusClient, end: datetime, window: timedelta, step: timedelta
) -> dict[str, AlertHistory]:
    """Per alert name, its firing history over `window` up to `end`."""
    start = end - window
    seconds = step.total_seconds()
    series = await prom.query_range(FIRING, start, end, seconds)
    out: dict[str, AlertHistory] = {}
    for labels, points in series:
        name = labels.get("alertname", "")
        stamps = [t for t, _v in points]
        out[name] = summarize(name, stamps, seconds, window.total_seconds())
    return out
