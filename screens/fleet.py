"""Fleet (issue 19): one row per context of the configuration -- targets down, firing
alerts by severity, Elasticsearch health, clusters degraded, freshness, and the error's
class when a backend is unreachable. Enter switches the app to that context.

The data is the app's fleet (opskit/fleet.py): polled on demand, through a Stack per
context, while this screen or the Alerts screen's merged mode is shown (like the Traces
screen's source; not one of opskit.live.SOURCES, so recordings are unchanged). The
screen renders what the app holds and calls no HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from opskit.errorclass import fit
from opskit.live import LiveState
from opskit.screens.base import Host, LiveScreen
from opskit.screens.widgets import Cell, KeyedTable

if TYPE_CHECKING:
    from opskit.fleet import FleetAlert, FleetRow
    from opskit.models import Alert, Membership

HEALTH_STYLE = {"green": "green", "yellow": "yellow", "red": "bold red"}
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
SEVERITY_ORDER = ("critical", "warning", "info")
ERROR_WIDTH = 50


@dataclass
class FleetView:
    """What the app holds of the fleet: the contexts in order, the last row of each and
    the merged alerts; `polling` while a refresh runs."""

    contexts: list[str] = field(default_factory=list)
    rows: dict[str, FleetRow] = field(default_factory=dict)
    alerts: list[FleetAlert] = field(default_factory=list)
    polling: bool = False
    refreshes: int = 0  # finished refreshes (tests wait on it)


class FleetHost(Host, Protocol):
    """What the Fleet screen and the merged alerts need of the app (OpskitApp)."""

    fleet: FleetView

    def poll_fleet(self) -> None: ...
    def switch_to_context(self, name: str) -> None: ...
    def silence_in_context(self, alert: Alert, context: str) -> None: ...


SHORT = {"alertmanager": "am", "prometheus": "prom"}


def cluster_cell(clusters: Sequence[Membership]) -> Text:
    """'am 3/3  prom 1/2': every clustered backend's members up of configured, a degraded
    one in the warning style ('-' when the context has no clustered backend)."""
    if not clusters:
        return Text("-", style="dim")
    text = Text()
    for m in clusters:
        if text:
            text.append("  ")
        mark = "≠" if m.disagreements else ""
        text.append(
            f"{SHORT.get(m.backend, m.backend)} {len(m.up)}/{len(m.members)}{mark}",
            style="yellow" if m.degraded else "",
        )
    return text


def alert_counts(by_severity: dict[str, int]) -> Text:
    """'2 critical 1 warning' in the severities' colours ('none' when nothing fires)."""
    text = Text()
    ranked = sorted(
        by_severity.items(),
        key=lambda kv: (SEVERITY_ORDER.index(kv[0]) if kv[0] in SEVERITY_ORDER else 9, kv[0]),
    )
    for severity, n in ranked:
        if text:
            text.append(" ")
        text.append(f"{n} {severity}", style=SEVERITY_STYLE.get(severity, ""))
    return text or Text("none", style="dim")


class FleetScreen(LiveScreen):
    TITLE_TEXT = "Fleet"
    SOURCES = ()
    COLUMNS = (
        "context", "state", "targets down", "alerts firing", "elasticsearch",
        "clusters", "fresh", "error",
    )  # fmt: skip
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Switch to context", id="fleet_open"),
    ]

    @property
    def fapp(self) -> FleetHost:
        return cast(FleetHost, self.app)

    def compose_body(self) -> ComposeResult:
        yield Static("", id="fleet-note")
        yield KeyedTable(*self.COLUMNS, id="fleet-table")

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#fleet-table", KeyedTable)

    # ------------------------------------------------------------------ polling
    def on_mount(self) -> None:
        self.set_interval(max(float(self.oapp.interval), 1.0), self.poll)
        self.set_interval(1.0, self.tick)  # the rows' ages ("5s ago") move between polls

    def tick(self) -> None:
        if self.is_current and self.fapp.fleet.rows:
            self.table.invalidate()
            self.render_body(self.oapp.state)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.poll()

    def poll(self) -> None:
        if self.is_current:
            self.fapp.poll_fleet()

    # ------------------------------------------------------------------ rendering
    def render_body(self, state: LiveState) -> None:
        view = self.fapp.fleet
        rows = [view.rows[n] for n in view.contexts if n in view.rows]
        waiting = [n for n in view.contexts if n not in view.rows]
        note = f"{len(view.contexts)} contexts"
        if waiting:
            note += f", waiting for {', '.join(waiting)}"
        self.query_one("#fleet-note", Static).update(note)
        self.table.show([(r.context, r) for r in rows], self.cells)

    def cells(self, r: FleetRow) -> Sequence[Cell]:
        current = r.context == self.oapp.settings.context
        name = Text(("> " if current else "  ") + r.context, style=f"bold {r.colour}")
        if r.read_only:
            name.append(" ro", style="dim")
        state = Text(r.severity, style=SEVERITY_STYLE.get(r.severity, "green"))
        down = "-" if r.targets_down is None else str(r.targets_down)
        es = Text(r.es_status or "-", style=HEALTH_STYLE.get(r.es_status or "", "dim"))
        clusters = cluster_cell(r.clusters)
        fresh = r.freshness(interval=self.oapp.interval)
        return (
            name,
            state,
            Text(down, style="bold red" if r.targets_down else ""),
            alert_counts(r.alerts),
            es,
            clusters,
            Text(fresh, style="yellow" if fresh in ("stale", "unreachable") else "dim"),
            Text(fit(r.error_headline, ERROR_WIDTH), style="red"),
        )

    # ------------------------------------------------------------------ actions
    def action_open(self) -> None:
        key = self.table.selected_key()
        if key is not None:
            self.fapp.switch_to_context(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()
