"""Alerts (grouped, with a detail pane, silencing) and Silences (list, expire)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from opskit.errorclass import fit
from opskit.fleet import FleetAlert
from opskit.live import LiveState
from opskit.models import Alert, Silence
from opskit.output import ago
from opskit.screens.base import Sort, TableScreen
from opskit.screens.fleet import FleetHost
from opskit.screens.widgets import Cell, KeyedTable

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
EPOCH = datetime.min.replace(tzinfo=UTC)
# the widest a free-text cell gets: one line each, an ellipsis where it is cut (the
# detail pane has the whole text)
NAME_WIDTH = 40
LABELS_WIDTH = 60
TEXT_WIDTH = 80


def alert_state(a: Alert) -> str:
    return "silenced" if a.silenced else "inhibited" if a.inhibited else a.state


Row = Alert | FleetAlert  # an alert of this context, or (merged mode) of any context


def _a(r: Row) -> Alert:
    return r.alert if isinstance(r, FleetAlert) else r


class AlertsScreen(TableScreen[Row]):
    TITLE_TEXT = "Alerts"
    SOURCES = ("alerts",)
    COLUMNS = ("group", "alertname", "severity", "state", "since", "labels", "summary")
    SORTS: ClassVar[Sequence[Sort]] = (
        ("severity", lambda r: (SEVERITY_RANK.get(_a(r).severity, 9), _a(r).alertname,
                                _a(r).fingerprint)),
        ("alertname", lambda r: (_a(r).alertname, _a(r).fingerprint)),
        ("newest", lambda r: (-(_a(r).starts_at or EPOCH).timestamp(), _a(r).fingerprint)),
    )  # fmt: skip
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "silence", "Silence", id="silence"),
        Binding("i", "toggle_suppressed", "Silenced/inhibited", id="toggle_suppressed"),
        Binding("g", "group", "Group by", id="group"),
        Binding("S", "app.switch_mode('silences')", "Silences", id="silences"),
        Binding("A", "merged", "All contexts", show=False, id="alerts_merged"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_suppressed = False
        self.group_by = "severity"
        self.merged = False  # every context's alerts (the app's fleet), with a context column

    def compose_below(self) -> ComposeResult:
        merged = KeyedTable("context", *self.COLUMNS, id="merged-table")
        merged.display = False
        yield merged
        yield Static("", id="detail")

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#merged-table" if self.merged else "#table", KeyedTable)

    @property
    def fapp(self) -> FleetHost:
        return cast(FleetHost, self.app)

    # -- merged mode: polled like the Fleet screen, while shown
    def on_mount(self) -> None:
        self.set_interval(max(float(self.oapp.interval), 1.0), self.poll_fleet)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.poll_fleet()

    def poll_fleet(self) -> None:
        if self.merged and self.is_current:
            self.fapp.poll_fleet()

    def action_merged(self) -> None:
        self.merged = not self.merged
        self.query_one("#table", KeyedTable).display = not self.merged
        self.query_one("#merged-table", KeyedTable).display = self.merged
        self.table.focus()
        self.notify("every context's alerts" if self.merged else "this context", timeout=2)
        self.poll_fleet()
        self.render_body(self.oapp.state)

    def records(self, state: LiveState) -> list[Row]:
        source = self.fapp.fleet.alerts if self.merged else state["alerts"].value
        rows: list[Row] = list(source or [])
        if not self.show_suppressed:
            rows = [r for r in rows if _a(r).state == "active"]
        return rows

    def visible_rows(self, state: LiveState) -> list[Row]:
        rows = super().visible_rows(state)
        if self.group_by == "alertname":
            rows.sort(key=lambda r: _a(r).alertname)  # stable: keeps the chosen order inside
        else:
            rows.sort(key=lambda r: SEVERITY_RANK.get(_a(r).severity, 9))
        return rows

    def key(self, record: Row) -> str:
        return record.key if isinstance(record, FleetAlert) else record.fingerprint

    def is_fault(self, record: Row) -> bool:
        a = _a(record)
        return a.severity == "critical" and a.state == "active"

    def cells(self, record: Row) -> Sequence[Cell]:
        if isinstance(record, FleetAlert):
            row = self.fapp.fleet.rows.get(record.context)
            colour = row.colour if row is not None else ""
            context = Text(fit(record.context, NAME_WIDTH), style=f"bold {colour}".strip())
            return (context, *self.alert_cells(record.alert))
        return self.alert_cells(record)

    def alert_cells(self, a: Alert) -> Sequence[Cell]:
        extra = {k: v for k, v in a.labels.items() if k not in ("alertname", "severity")}
        state = alert_state(a)
        return (
            fit(a.severity if self.group_by == "severity" else a.alertname, NAME_WIDTH),
            fit(a.alertname, NAME_WIDTH),
            Text(a.severity, style=SEVERITY_STYLE.get(a.severity, "")),
            Text(state, style="dim" if state in ("silenced", "inhibited") else ""),
            a.starts_at.astimezone().strftime("%m-%d %H:%M") if a.starts_at else "-",
            fit(",".join(f"{k}={v}" for k, v in sorted(extra.items())), LABELS_WIDTH),
            fit(a.annotations.get("summary", ""), TEXT_WIDTH),
        )

    def selected(self) -> Alert | None:
        if self.merged:
            record = self.table.selected_record()
            return record.alert if isinstance(record, FleetAlert) else None
        key = self.table.selected_key()
        alerts: list[Alert] = self.oapp.state["alerts"].value or []
        return next((a for a in alerts if a.fingerprint == key), None)

    def selected_context(self) -> str:
        """The context of the alert under the cursor (the app's own outside merged mode)."""
        record = self.table.selected_record() if self.merged else None
        return record.context if isinstance(record, FleetAlert) else self.oapp.settings.context

    def after_render(self, state: LiveState, rows: list[Row]) -> None:
        self.show_detail()

    def on_data_table_row_highlighted(self) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        alert = self.selected()
        detail = self.query_one("#detail", Static)
        if alert is None:
            detail.update("")
            return
        text = Text()
        if self.merged:
            text.append(f"[{self.selected_context()}] ", style="bold")
        text.append(f"{alert.alertname}", style="bold")
        text.append(f"  {alert_state(alert)}  since {ago(alert.starts_at)}\n")
        text.append("labels: ", style="bold")
        text.append(" ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())) + "\n")
        for k, v in sorted(alert.annotations.items()):
            text.append(f"{k}: ", style="bold")
            text.append(f"{v}\n")
        if alert.silenced_by:
            text.append(f"silenced by {', '.join(alert.silenced_by)}\n", style="dim")
        if alert.inhibited_by:
            text.append(f"inhibited by {', '.join(alert.inhibited_by)}\n", style="dim")
        text.append(f"generator: {alert.generator_url}", style="dim")
        detail.update(text)

    def on_data_table_row_selected(self) -> None:
        """Enter on an alert: its incident screen."""
        alert = self.selected()
        if alert is None:
            return
        context = self.selected_context()
        if context != self.oapp.settings.context:  # the incident reads the app's context
            self.notify(f"{context}: switch to it (Fleet, Enter) for the incident", timeout=4)
            return
        self.oapp.open_incident(alert)

    def action_toggle_suppressed(self) -> None:
        self.show_suppressed = not self.show_suppressed
        self.notify(
            "showing silenced and inhibited" if self.show_suppressed else "firing only", timeout=2
        )
        self.render_body(self.oapp.state)

    def action_group(self) -> None:
        self.group_by = "alertname" if self.group_by == "severity" else "severity"
        self.render_body(self.oapp.state)

    def action_silence(self) -> None:
        alert = self.selected()
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        if self.merged:  # in the alert's own context (refused there when read-only)
            self.fapp.silence_in_context(alert, self.selected_context())
            return
        self.oapp.open_silence_form(alert)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # merged: each alert's own context decides (silence_in_context refuses read-only)
        return not (action == "silence" and self.oapp.settings.read_only and not self.merged)


class SilencesScreen(TableScreen[Silence]):
    TITLE_TEXT = "Silences"
    SOURCES = ("silences",)
    COLUMNS = ("id", "state", "matchers", "ends", "created by", "comment")
    SORTS: ClassVar[Sequence[Sort]] = (
        ("ends", lambda s: (s.state, s.ends_at or EPOCH)),
        ("created by", lambda s: s.created_by),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "expire", "Expire", id="expire"),
        Binding("e", "toggle_expired", "Show expired", id="toggle_expired"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.show_expired = False

    def records(self, state: LiveState) -> list[Silence]:
        rows = list(state["silences"].value or [])
        return rows if self.show_expired else [s for s in rows if s.state != "expired"]

    def key(self, record: Silence) -> str:
        return record.id

    def cells(self, s: Silence) -> Sequence[Cell]:
        ends = s.ends_at.astimezone().strftime("%Y-%m-%d %H:%M") if s.ends_at else "-"
        return (
            s.id[:8],
            s.state,
            fit(" ".join(s.matchers), LABELS_WIDTH),
            ends,
            fit(s.created_by, NAME_WIDTH),
            fit(s.comment, TEXT_WIDTH),
        )

    def action_toggle_expired(self) -> None:
        self.show_expired = not self.show_expired
        self.render_body(self.oapp.state)

    def action_expire(self) -> None:
        key = self.table.selected_key()
        silence = next((s for s in self.oapp.state["silences"].value or [] if s.id == key), None)
        if silence is None or silence.state == "expired":
            self.notify("no active silence selected", severity="warning")
            return
        self.oapp.confirm_expire(silence)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action == "expire" and self.oapp.settings.read_only)
