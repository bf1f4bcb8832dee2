"""Targets, Queues and Services: read-only table screens."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text

from opskit.live import LiveState
from opskit.models import QueueDepth, ServiceHealth, Target
from opskit.output import number
from opskit.screens.base import Sort, TableScreen, styled_cell
from opskit.screens.widgets import Cell, sparkline, trend

HEALTH_STYLE = {"up": "green", "down": "bold red", "unknown": "yellow"}


def clock(when: datetime | None) -> str:
    """Local wall-clock time: unlike "5s ago" it changes only when the value does, so a
    refresh touches only the rows that really changed."""
    return when.astimezone().strftime("%H:%M:%S") if when else "-"


class TargetsScreen(TableScreen[Target]):
    TITLE_TEXT = "Targets"
    SOURCES = ("targets",)
    COLUMNS = ("job", "instance", "health", "last scrape", "duration ms", "last error")
    SORTS: ClassVar[Sequence[Sort]] = (
        ("health (down first)", lambda t: (t.health == "up", t.job, t.instance)),
        ("job", lambda t: (t.job, t.instance)),
        ("instance", lambda t: t.instance),
        ("scrape duration", lambda t: -t.last_scrape_duration),
    )

    def records(self, state: LiveState) -> list[Target]:
        return list(state["targets"].value or [])

    def key(self, record: Target) -> str:
        return record.key

    def is_fault(self, record: Target) -> bool:
        return record.health != "up"

    def cells(self, t: Target) -> Sequence[Cell]:
        row_style = "bold red" if t.health == "down" else None
        return (
            styled_cell(t.job, row_style),
            styled_cell(t.instance, row_style),
            Text(t.health, style=HEALTH_STYLE.get(t.health, "")),
            clock(t.last_scrape),
            f"{t.last_scrape_duration * 1000:.1f}",
            styled_cell(t.last_error, "red" if t.last_error else None),
        )


class QueuesScreen(TableScreen[QueueDepth]):
    TITLE_TEXT = "Queues"
    SOURCES = ("queues",)
    COLUMNS = ("queue", "series", "value", "warning", "critical", "state", "trend", "history")
    SORTS: ClassVar[Sequence[Sort]] = (
        ("state", lambda q: ({"critical": 0, "warning": 1}.get(q.state, 2), q.queue, q.series)),
        ("value", lambda q: -q.value if not math.isnan(q.value) else math.inf),
        ("name", lambda q: (q.queue, q.series)),
    )

    def records(self, state: LiveState) -> list[QueueDepth]:
        self._history = state.queue_history
        return list(state["queues"].value or [])

    def key(self, record: QueueDepth) -> str:
        return f"{record.queue} {record.series}"

    def is_fault(self, record: QueueDepth) -> bool:
        return record.state != "ok"

    def cells(self, q: QueueDepth) -> Sequence[Cell]:
        history = list(getattr(self, "_history", {}).get(self.key(q), []))
        style = {"critical": "bold red", "warning": "yellow"}.get(q.state, "green")
        return (
            q.queue,
            q.series,
            number(q.value),
            f"{q.warning:g}",
            f"{q.critical:g}" if q.critical is not None else "-",
            Text(q.state, style=style),
            trend(history),
            Text(sparkline(history), style=style),
        )


class ServicesScreen(TableScreen[ServiceHealth]):
    TITLE_TEXT = "Services"
    SOURCES = ("services",)
    COLUMNS = ("service", "state", "status", "latency ms", "url", "error")
    SORTS: ClassVar[Sequence[Sort]] = (
        ("state", lambda s: (s.ok, s.name)),
        ("name", lambda s: s.name),
        ("latency", lambda s: -(s.latency_ms or 0)),
    )

    def records(self, state: LiveState) -> list[ServiceHealth]:
        return list(state["services"].value or [])

    def key(self, record: ServiceHealth) -> str:
        return record.name

    def is_fault(self, record: ServiceHealth) -> bool:
        return not record.ok or record.degraded

    def cells(self, s: ServiceHealth) -> Sequence[Cell]:
        return (
            s.name,
            service_state(s),
            str(s.status_code or "-"),
            f"{s.latency_ms:.0f}" if s.latency_ms is not None else "-",
            s.url,
            styled_cell(s.error or s.detail(), "red" if s.error else "yellow"),
        )


def service_state(s: ServiceHealth) -> Text:
    if not s.ok:
        return Text("down", style="bold red")
    return Text("degraded", style="yellow") if s.degraded else Text("up", style="green")
