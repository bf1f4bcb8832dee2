"""Targets, Queues and Services: read-only table screens."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable

from opskit.live import LiveState, signal_history
from opskit.models import QueueDepth, ServiceHealth, Target
from opskit.output import number
from opskit.screens.base import Sort, TableScreen, styled_cell
from opskit.screens.widgets import Cell, HistoryPlot, Line, Threshold, sparkline, trend

if TYPE_CHECKING:
    from opskit.stack import Stack

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


SIGNALS_EVERY = 30.0  # seconds between fetches of the latency and error-rate history
LATENCY_LINES = (("latency_p50", "p50", "green"), ("latency_p95", "p95", "orange"),
                 ("latency_p99", "p99", "red"))  # fmt: skip


class PlotHost(Protocol):
    """What the Queues screen's plots use of the app (OpskitApp)."""

    state: LiveState
    stack: Stack | None

    def run_worker(self, work: Any, *, group: str = ..., exclusive: bool = ...) -> Any: ...


class QueuesScreen(TableScreen[QueueDepth]):
    TITLE_TEXT = "Queues"
    SOURCES = ("queues",)
    COLUMNS = ("queue", "series", "value", "warning", "critical", "state", "trend", "history")
    SORTS: ClassVar[Sequence[Sort]] = (
        ("state", lambda q: ({"critical": 0, "warning": 1}.get(q.state, 2), q.queue, q.series)),
        ("value", lambda q: -q.value if not math.isnan(q.value) else math.inf),
        ("name", lambda q: (q.queue, q.series)),
    )

    def compose_below(self) -> ComposeResult:
        with Horizontal(id="plots"):
            yield HistoryPlot(id="queue-plot")
            yield HistoryPlot(id="latency-plot")
            yield HistoryPlot(id="error-plot")

    _fetching = False
    _signal_note = ""

    def on_mount(self) -> None:
        self.set_interval(SIGNALS_EVERY, self.fetch_signals)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.fetch_signals()

    def fetch_signals(self) -> None:
        """The email-service's latency and error rate over the last hour, fetched through
        the app's stack in a worker (no stack, as with fixed data: what the state has)."""
        host = cast(PlotHost, self.app)
        if host.stack is not None and not host.state.paused and not self._fetching:
            self._fetching = True  # one fetch at a time, none replaced before it ran
            self.run_worker(self._signals(host, host.stack), group="signals")

    async def _signals(self, host: PlotHost, stack: Stack) -> None:
        try:
            host.state.signal_history = await signal_history(stack)
            self._signal_note = ""
        except Exception as exc:  # a plot is a nicety: say why it is empty, keep going
            self._signal_note = f"{type(exc).__name__}: {exc}"[:80]
        finally:
            self._fetching = False
        if self.is_mounted:
            self.draw_signals(host.state)

    def records(self, state: LiveState) -> list[QueueDepth]:
        self._history = state.queue_history
        return list(state["queues"].value or [])

    def after_render(self, state: LiveState, rows: list[QueueDepth]) -> None:
        self.draw_queue(state, rows)
        self.draw_signals(state)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.draw_queue(self.oapp.state, self.records(self.oapp.state))

    def draw_queue(self, state: LiveState, rows: list[QueueDepth]) -> None:
        """The selected queue's depth over the last hour, with its thresholds."""
        key = self.table.selected_key()
        q = next((r for r in rows if self.key(r) == key), rows[0] if rows else None)
        plot = self.query_one("#queue-plot", HistoryPlot)
        if q is None:
            plot.show("queue depth", [], note="no queue selected")
            return
        style = {"critical": "red", "warning": "orange"}.get(q.state, "cyan")
        thresholds = [Threshold(f"warning {q.warning:g}", q.warning, "orange")]
        if q.critical is not None:
            thresholds.append(Threshold(f"critical {q.critical:g}", q.critical, "red"))
        plot.show(
            f"{q.queue} {q.series}",
            [Line("depth", state.queue_points(self.key(q)), style)],
            thresholds,
            note=q.note or "no history yet",
        )

    def draw_signals(self, state: LiveState) -> None:
        found = state.signal_history
        note = self._signal_note or "no exporter found"
        self.query_one("#latency-plot", HistoryPlot).show(
            "email-service latency ms",
            [
                Line(label, [(t, v * 1000) for t, v in found.get(name, [])], colour)
                for name, label, colour in LATENCY_LINES
            ],
            note=note,
        )
        self.query_one("#error-plot", HistoryPlot).show(
            "email-service 5xx %",
            [Line("5xx", [(t, v * 100) for t, v in found.get("error_rate", [])], "red")],
            note=note,
        )

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
            styled_cell(
                s.error or s.detail(), "red" if s.error or s.severity == "critical" else "yellow"
            ),
        )


def service_state(s: ServiceHealth) -> Text:
    if not s.ok:
        return Text("down", style="bold red")
    if s.severity == "critical":
        return Text("critical", style="bold red")
    return Text("degraded", style="yellow") if s.degraded else Text("up", style="green")
