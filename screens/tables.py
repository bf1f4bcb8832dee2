"""Targets, Queues and Services: read-only table screens."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable

from opskit.errorclass import classify
from opskit.live import LiveState, Point, signal_history
from opskit.models import QueueDepth, ServiceHealth, Target
from opskit.output import ago, number
from opskit.screens.base import Sort, TableScreen, styled_cell
from opskit.screens.details import (
    DetailFetcher,
    DetailPane,
    Fetched,
    error_class,
    field_line,
    field_lines,
    one_line,
)
from opskit.screens.widgets import Cell, HistoryPlot, Line, Threshold, sparkline, trend

if TYPE_CHECKING:
    from opskit.stack import Stack

HEALTH_STYLE = {"up": "green", "down": "bold red", "unknown": "yellow"}
# the widest a free-text cell gets (cells are one line: longer text ends in an ellipsis,
# the whole of it is in the detail pane)
NAME_WIDTH = 40  # job, queue, service names
INSTANCE_WIDTH = 48  # instances, series, URLs
ERROR_WIDTH = 48  # an error's class (or first words)
UP_WINDOW = 3600.0  # seconds of `up` history in the target detail
UP_POINTS = 60  # one per minute: each the lowest `up` of its minute


def clock(when: datetime | None) -> str:
    """Local wall-clock time: unlike "5s ago" it changes only when the value does, so a
    refresh touches only the rows that really changed."""
    return when.astimezone().strftime("%H:%M:%S") if when else "-"


class TargetsScreen(TableScreen[Target]):
    TITLE_TEXT = "Targets"
    SOURCES = ("targets",)
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "job", "instance", "health", "last scrape", "duration ms", "last error",
    )  # fmt: skip
    # with HA replicas (`[prometheus] urls`): each replica's health of the target, too
    REPLICA_COLUMNS: ClassVar[tuple[str, ...]] = (*COLUMNS[:3], "replicas", *COLUMNS[3:])
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
        cells: list[Cell] = [
            styled_cell(one_line(t.job, NAME_WIDTH), row_style),
            styled_cell(one_line(t.instance, INSTANCE_WIDTH), row_style),
            Text(t.health, style=HEALTH_STYLE.get(t.health, "")),
            clock(t.last_scrape),
            f"{t.last_scrape_duration * 1000:.1f}",
            styled_cell(
                one_line(error_class(t.last_error), ERROR_WIDTH), "red" if t.last_error else None
            ),
        ]
        if self.clustered:
            cells.insert(3, replicas_text(t))
        return cells

    def compose_body(self) -> ComposeResult:
        self.clustered = len(self.oapp.settings.prometheus.members) > 1
        if self.clustered:
            self.COLUMNS = self.REPLICA_COLUMNS  # type: ignore[misc]
        yield from super().compose_body()

    # -- the detail pane: the selected target in full, and its `up` over the last hour
    def __init__(self) -> None:
        super().__init__()
        self.clustered = False  # HA replicas: set when composed, from the settings
        self.history: DetailFetcher[list[Point]] = DetailFetcher(
            self, "target-history", self._fetch_history, lambda key: self.show_detail()
        )

    def compose_below(self) -> ComposeResult:
        yield DetailPane()

    def selected(self) -> Target | None:
        """The target under the cursor: the record the table shows (no lookup)."""
        target = self.table.selected_record()
        return target if isinstance(target, Target) else None

    def after_render(self, state: LiveState, rows: list[Target]) -> None:
        self.show_detail()

    def on_data_table_row_highlighted(self) -> None:
        self.show_detail()

    def on_data_table_row_selected(self) -> None:
        """Enter on a target: the detail pane, expanded and focused (Enter/Esc: back)."""
        self.query_one(DetailPane).toggle()

    def show_detail(self) -> None:
        target = self.selected()
        live = self.oapp.stack is not None
        if live:  # fetches only when the selection changed (and not from the cache)
            self.history.use(self.oapp.stack)
            self.history.select(target.key if target else None)
        pane = self.query_one(DetailPane)
        if target is None:
            pane.show("")
            return
        loading = self.history.pending == target.key
        pane.show(target_detail(target, self.history.get(target.key), live, loading))

    async def _fetch_history(self, key: str) -> list[Point]:
        stack = self.oapp.stack
        target = self.selected()
        if target is None or target.key != key:  # the cursor moved on: look it up once
            target = next((t for t in self.oapp.state["targets"].value or () if t.key == key), None)
        if stack is None or target is None:
            return []
        end = datetime.now(UTC)
        instance = target.labels.get("instance", target.instance)
        return await stack.prometheus.target_up(
            target.job, instance, end - timedelta(seconds=UP_WINDOW), end, UP_WINDOW / UP_POINTS
        )


def target_detail(
    t: Target, history: Fetched[list[Point]] | None, live: bool, loading: bool
) -> Text:
    """The target detail pane: everything Prometheus says of the target, in full."""
    text = Text()
    text.append(f"{t.job}  {t.instance}  ", style="bold")
    text.append(t.health, style=HEALTH_STYLE.get(t.health, ""))
    text.append("\n")
    every = f"every {t.scrape_interval or '-'}, timeout {t.scrape_timeout or '-'}"
    field_line(text, "scrape", f"{t.scrape_url}  {every}")
    last = (
        f"{clock(t.last_scrape)} ({ago(t.last_scrape)}), took "
        f"{t.last_scrape_duration * 1000:.1f} ms"
        if t.last_scrape
        else "never"
    )
    field_line(text, "last", last)
    error_lines(text, t.last_error)
    for name, health in t.replicas.items():  # HA replicas: each one's view
        text.append(f"{'replica':<10}", style="bold")
        text.append(f"{name} ")
        text.append(health, style=HEALTH_STYLE.get(health, "dim"))
        error = t.replica_errors.get(name, "")
        text.append(f"  {error.strip()}\n" if error else "\n", style="red" if error else "")
    field_line(text, "labels", " ".join(f"{k}={v}" for k, v in sorted(t.labels.items())))
    text.append(f"{'up (1h)':<10}", style="bold")
    text.append_text(up_line(history, live, loading))
    return text


def replicas_text(t: Target) -> Text:
    """'a up, b down', each health in its colour ("-" when no replica answered)."""
    out = Text()
    for n, (name, health) in enumerate(t.replicas.items()):
        out.append(f"{', ' if n else ''}{name} ")
        out.append(health, style=HEALTH_STYLE.get(health, "dim"))
    return out if t.replicas else Text("-")


def error_lines(text: Text, error: str) -> None:
    """The error's class (when it has one), then the raw message in full."""
    text.append(f"{'error':<10}", style="bold")
    if not error:
        text.append("none\n")
        return
    found = classify(error)
    if found.kind != "other":
        text.append(f"{found.label}\n", style="bold red")
        text.append(" " * 10)
    text.append(f"{error.strip()}\n", style="red")


def up_line(history: Fetched[list[Point]] | None, live: bool, loading: bool) -> Text:
    """`up` over the last hour as a sparkline (green when up now), or why there is none."""
    if not live and history is None:
        return Text("no history (not connected to Prometheus)", style="dim")
    if history is None or (loading and history.value is None):
        return Text("loading…", style="dim")
    if history.value is None:
        return Text(f"no history: {history.error}", style="yellow")
    values = [v for _, v in history.value]
    if not values:
        return Text("no samples in the last hour", style="dim")
    line = sparkline(values, UP_POINTS)
    if min(values) == max(values):  # the sparkline's scale is the data's: pin it to 0..1
        line = ("█" if values[0] >= 1 else "▁") * len(line)
    share = sum(1 for v in values if v >= 1) / len(values)
    points = history.value
    minutes = round((points[-1][0] - points[0][0]) / 60) + 1  # a young series: less
    span = "the last hour" if minutes >= UP_WINDOW / 60 else f"the last {minutes} min"
    out = Text(line, style="green" if values[-1] >= 1 else "red")
    out.append(f"  up {share:.0%} of {span}", style="dim")
    return out


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
            one_line(q.queue, NAME_WIDTH),
            one_line(q.series, INSTANCE_WIDTH),
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
            one_line(s.name, NAME_WIDTH),
            service_state(s),
            str(s.status_code or "-"),
            f"{s.latency_ms:.0f}" if s.latency_ms is not None else "-",
            one_line(s.url, INSTANCE_WIDTH),
            styled_cell(
                one_line(error_class(s.error) if s.error else s.detail(), ERROR_WIDTH),
                "red" if s.error or s.severity == "critical" else "yellow",
            ),
        )

    # -- the detail pane: the selected service's whole answer (nothing to fetch)
    def compose_below(self) -> ComposeResult:
        yield DetailPane()

    def after_render(self, state: LiveState, rows: list[ServiceHealth]) -> None:
        self.show_detail()

    def on_data_table_row_highlighted(self) -> None:
        self.show_detail()

    def on_data_table_row_selected(self) -> None:
        self.query_one(DetailPane).toggle()

    def show_detail(self) -> None:
        key = self.table.selected_key()
        found = next((s for s in self.oapp.state["services"].value or [] if s.name == key), None)
        self.query_one(DetailPane).show(service_detail(found) if found else "")


def service_state(s: ServiceHealth) -> Text:
    if not s.ok:
        return Text("down", style="bold red")
    if s.severity == "critical":
        return Text("critical", style="bold red")
    return Text("degraded", style="yellow") if s.degraded else Text("up", style="green")


def service_detail(s: ServiceHealth) -> Text:
    text = Text()
    text.append(f"{s.name}  ", style="bold")
    text.append_text(service_state(s))
    text.append("\n")
    field_line(text, "url", s.url)
    latency = f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else "-"
    field_line(text, "answer", f"HTTP {s.status_code or '-'} in {latency}")
    if s.error:
        error_lines(text, s.error)
    if s.reported:
        field_line(text, "reported", s.reported)
    if s.checks:
        field_lines(text, "checks", [f"{k}: {v}" for k, v in sorted(s.checks.items())])
    if s.metrics:
        field_lines(text, "metrics", [f"{k}: {v:g}" for k, v in sorted(s.metrics.items())])
    text.rstrip()
    return text
