"""Traces (issue 20): per service request rate, error rate and latency from Jaeger's
traces over `[tracing] window`; the failing and the slowest traces, with the span tree of
the one under the cursor on Enter; the service dependency graph as text (`d`).

The data is the on-demand `traces` source of the live state (opskit.live.ON_DEMAND),
polled through the app's stack while the screen is shown, every TRACES_EVERY seconds
(or the refresh interval when longer); Jaeger failing keeps the last traces, with a
banner. The screen itself renders state and calls no HTTP."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from opskit.errorclass import classify, fit
from opskit.live import TRACES_EVERY, LiveState, poll_source
from opskit.models_tracing import ServiceStats, TracesOverview, TraceSummary
from opskit.screens.base import LiveScreen, styled_cell
from opskit.screens.widgets import Cell, KeyedTable
from opskit.tracing import dependency_lines, ms, percent, tree_lines

if TYPE_CHECKING:
    from opskit.stack import Stack

STATE_STYLE = {"critical": "bold red", "warning": "yellow", "ok": "green"}
NAME_WIDTH = 40  # the widest a service or operation cell gets (one line, an ellipsis)
ERROR_WIDTH = 60


def _clock(trace: TraceSummary) -> str:
    return trace.start.astimezone().strftime("%H:%M:%S")


class TracesScreen(LiveScreen):
    TITLE_TEXT = "Traces"
    SOURCES = ("traces",)
    DEFAULT_CSS = """
    TracesScreen #trace-services { height: auto; max-height: 12; }
    TracesScreen #trace-list { height: 1fr; }
    TracesScreen #trace-lower { height: 1fr; border-top: solid $primary; }
    TracesScreen #trace-detail { width: 2fr; padding: 0 1; }
    TracesScreen #trace-deps { width: 1fr; padding: 0 1; border-left: solid $primary; }
    TracesScreen #trace-note { height: auto; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Spans / only this service", id="open_trace"),
        Binding("e", "errors_only", "Failing only", id="trace_errors"),
        Binding("d", "dependencies", "Dependencies", id="trace_dependencies"),
        Binding("escape", "back", "Back", show=False, id="trace_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.service: str | None = None  # traces of this service only (Enter on a service)
        self.errors_only = False
        self.opened: str | None = None  # the trace whose spans the detail pane shows
        self._polling = False

    def compose_body(self) -> ComposeResult:
        yield Static("", id="trace-note")
        yield KeyedTable(
            "service", "req/s", "requests", "errors", "error %", "p50 ms", "p95 ms",
            "p99 ms", "last trace", "state", id="trace-services",
        )  # fmt: skip
        yield KeyedTable(
            "kind", "start", "duration ms", "service", "operation", "spans", "error", "trace id",
            id="trace-list",
        )  # fmt: skip
        with Horizontal(id="trace-lower"):
            with VerticalScroll(id="trace-detail"):
                yield Static("", id="trace-spans")
            with VerticalScroll(id="trace-deps"):
                yield Static("", id="trace-graph")

    # ------------------------------------------------------------------ polling
    def on_mount(self) -> None:
        every = max(TRACES_EVERY, float(getattr(self.oapp, "interval", TRACES_EVERY)))
        self.set_interval(every, self.poll)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.poll()

    def poll(self) -> None:
        """The overview through the app's stack, in a worker (none without a stack, as
        with fixed data or a replay: what the state has)."""
        host = self.oapp
        stack = host.stack
        if stack is None or host.state.paused or self._polling:
            return
        if not host.settings.tracing.enabled:
            return
        self._polling = True
        self.run_worker(self._poll(stack), group="traces", exclusive=True)

    async def _poll(self, stack: Stack) -> None:
        state = self.oapp.state
        try:
            changed = await poll_source(state, "traces", stack.traces)
        finally:
            self._polling = False
        if changed:
            src = state["traces"]
            if src.error:
                self.notify(src.banner(), severity="error", timeout=6)
            else:
                self.notify("traces: back", timeout=3)
        if self.is_mounted:
            self.refresh_from(state, "traces")

    # ------------------------------------------------------------------ rendering
    @property
    def overview(self) -> TracesOverview | None:
        value = self.oapp.state["traces"].value
        return value if isinstance(value, TracesOverview) else None

    def rows(self) -> list[tuple[str, TraceSummary]]:
        o = self.overview
        if o is None:
            return []
        chosen: list[tuple[str, TraceSummary]] = [("failing", t) for t in o.failing]
        if not self.errors_only:
            failing = {t.trace_id for t in o.failing}
            chosen += [("slow", t) for t in o.slowest if t.trace_id not in failing]
        if self.service:
            chosen = [(k, t) for k, t in chosen if self._involves(t, self.service)]
        return chosen

    @staticmethod
    def _involves(t: TraceSummary, service: str) -> bool:
        return t.service == service or (t.trace is not None and service in t.trace.services)

    def render_body(self, state: LiveState) -> None:
        o = self.overview
        note = self.query_one("#trace-note", Static)
        if not self.oapp.settings.tracing.enabled:
            note.update("tracing is disabled ([tracing] enabled = false)")
        elif o is None:
            note.update("loading traces from Jaeger…" if not state["traces"].error else "")
        else:
            span = o.end - o.start
            minutes = span.total_seconds() / 60
            scope = f"  service: {self.service}" if self.service else ""
            failing = "  failing only" if self.errors_only else ""
            note.update(
                f"traces of the last {minutes:g} min from {o.jaeger_url} "
                f"(read at {o.end.astimezone().strftime('%H:%M:%S')}){scope}{failing}"
            )
        services = list(o.services) if o else []
        self.query_one("#trace-services", KeyedTable).sync(
            [(s.service, self.service_cells(s)) for s in services]
        )
        self.query_one("#trace-list", KeyedTable).sync(
            [(t.trace_id, self.trace_cells(kind, t)) for kind, t in self.rows()]
        )
        self.show_detail()
        graph = dependency_lines(o.dependencies) if o else []
        where = f" ({o.dependencies_source})" if o and o.dependencies_source else ""
        text = Text(f"Dependencies{where}\n", style="bold")
        text.append("\n".join(graph) if graph else "(no calls between services seen)")
        self.query_one("#trace-graph", Static).update(text)

    def service_cells(self, s: ServiceStats) -> Sequence[Cell]:
        if s.error:
            # class first, then as much of the raw text as fits (no pane has it whole)
            found = classify(s.error)
            lead = f"{found.label}: " if found.kind != "other" else ""
            error = Text(fit(lead + s.error, ERROR_WIDTH), "red")
            return (fit(s.service, NAME_WIDTH), "-", "-", "-", "-", "-", "-", "-", "-", error)
        rate = f"{s.rate_per_s:.2f}" + ("*" if s.truncated else "")
        last = s.last_trace.astimezone().strftime("%H:%M:%S") if s.last_trace else "-"
        style = STATE_STYLE.get(s.state, "")
        name = fit(s.service, NAME_WIDTH)
        marked = f"▶ {name}" if s.service == self.service else name
        return (
            marked,
            rate,
            str(s.requests),
            styled_cell(str(s.errors), "red" if s.errors else None),
            styled_cell(percent(s.error_rate), style if s.state != "ok" else None),
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            last,
            Text(s.state if not math.isnan(s.error_rate) else "idle", style=style),
        )

    def trace_cells(self, kind: str, t: TraceSummary) -> Sequence[Cell]:
        return (
            Text(kind, style="bold red" if kind == "failing" else "cyan"),
            _clock(t),
            ms(t.duration_ms),
            fit(t.service, NAME_WIDTH),
            fit(t.operation, NAME_WIDTH),
            str(t.spans),
            styled_cell(fit(t.error_message or ("error" if t.errors else ""), ERROR_WIDTH), "red"),
            t.trace_id,
        )

    def show_detail(self) -> None:
        """The opened trace's span tree, or a hint."""
        pane = self.query_one("#trace-spans", Static)
        found = next((t for _, t in self.rows() if t.trace_id == self.opened), None)
        if found is None or found.trace is None:
            pane.update(Text("Enter on a trace shows its spans", style="dim"))
            return
        trace = found.trace
        text = Text()
        state = "error" if trace.error else "ok"
        text.append(
            f"trace {trace.trace_id}  {ms(trace.duration_ms)} ms  {len(trace.spans)} spans  ",
            style="bold",
        )
        text.append(state + "\n", style="bold red" if trace.error else "green")
        for line, attrs, error in tree_lines(trace):
            text.append(line + "\n", style="bold red" if error else "")
            if attrs:
                text.append(attrs + "\n", style="dim")
        pane.update(text)

    # ------------------------------------------------------------------ actions
    def action_open(self) -> None:
        """Enter: on a trace, its span tree; on a service, only that service's traces
        (again: every service)."""
        focused = self.focused
        if isinstance(focused, KeyedTable) and focused.id == "trace-services":
            key = focused.selected_key()
            self.service = None if key == self.service else key
            self.opened = None
        else:
            self.opened = self.query_one("#trace-list", KeyedTable).selected_key()
        self.render_body(self.oapp.state)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_errors_only(self) -> None:
        self.errors_only = not self.errors_only
        self.render_body(self.oapp.state)

    def action_dependencies(self) -> None:
        self.query_one("#trace-deps", VerticalScroll).focus()

    def action_back(self) -> None:
        if self.opened or self.service:
            self.opened = None
            self.service = None
            self.render_body(self.oapp.state)
