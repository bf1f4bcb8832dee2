"""Overview: one glance at the whole stack; each tile leads to its screen."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Static

from opskit.live import LiveState, SourceState
from opskit.models import Alert, QueueDepth
from opskit.output import number
from opskit.screens.base import LiveScreen
from opskit.screens.widgets import sparkline
from opskit.summary import (
    AlertSummary,
    ElasticsearchSummary,
    Summary,
    TargetSummary,
    readings_from_live,
    summarize,
)

ALERTS_LISTED = 5  # the firing alerts the tile lists


class Tile(Static, can_focus=True):
    """A summary panel; Enter or a click opens its screen."""

    def __init__(self, title: str, mode: str) -> None:
        super().__init__(id=f"tile-{mode}", classes="tile")
        self.border_title = title
        self.mode = mode

    def on_click(self) -> None:
        self.app.switch_mode(self.mode)

    def key_enter(self) -> None:
        self.app.switch_mode(self.mode)


class AlertsTile(Tile):
    """The alerts tile: up/down pick one of the alerts it lists, Enter opens that alert's
    incident screen (with none picked, Enter opens the Alerts screen)."""

    def __init__(self) -> None:
        super().__init__("Alerts", "alerts")
        self.listed: list[Alert] = []
        self.cursor = -1  # none picked

    def key_down(self) -> None:
        if self.listed:
            self.cursor = min(self.cursor + 1, len(self.listed) - 1)
            self.screen_refresh()

    def key_up(self) -> None:
        self.cursor = max(self.cursor - 1, -1)
        self.screen_refresh()

    def key_enter(self) -> None:
        if 0 <= self.cursor < len(self.listed):
            cast(LiveScreen, self.screen).oapp.open_incident(self.listed[self.cursor])
        else:
            super().key_enter()

    def screen_refresh(self) -> None:
        screen = self.screen
        if isinstance(screen, OverviewScreen):
            screen.render_body(screen.oapp.state)


def _status_line(src: SourceState) -> Text:
    if src.status == "loading":
        return Text("loading…", style="dim")
    if src.error:
        return Text(src.banner() + "\n", style="bold red")
    return Text()


def targets_text(src: SourceState, summary: TargetSummary | None) -> Text:
    text = _status_line(src)
    if summary is None or not summary.total:
        return text
    text.append(f"{summary.up} up", style="green")
    text.append("   ")
    text.append(f"{summary.down} down", style="bold red" if summary.down else "dim")
    for t in summary.down_targets[:5]:
        text.append(f"\n  {t.job} {t.instance}", style="red")
        text.append(f"  {t.last_error[:60]}", style="dim")
    return text


def alerts_text(src: SourceState, summary: AlertSummary | None, picked: int = -1) -> Text:
    text = _status_line(src)
    if summary is None:
        return text
    by_sev = dict(summary.by_severity)
    text.append(f"{summary.firing} firing  ")
    for sev, style in (("critical", "bold red"), ("warning", "yellow")):
        text.append(f"{by_sev.pop(sev, 0)} {sev}  ", style=style)
    for sev, n in sorted(by_sev.items()):
        text.append(f"{n} {sev}  ")
    text.append(f"\n{summary.suppressed} silenced or inhibited", style="dim")
    for i, a in enumerate(summary.top[:ALERTS_LISTED]):
        style = "bold red" if a.severity == "critical" else ""
        text.append("\n")
        text.append(f"{'>' if i == picked else ' '} {a.alertname}", style=style)
        if i == picked:
            text.stylize("reverse", len(text) - len(a.alertname) - 2)
    return text


def queues_text(src: SourceState, depths: list[QueueDepth] | None, state: LiveState) -> Text:
    text = _status_line(src)
    for q in depths or []:
        style = {"critical": "bold red", "warning": "yellow"}.get(q.state, "green")
        history: Iterable[float] = state.queue_history.get(f"{q.queue} {q.series}", ())
        text.append(f"{q.queue} {q.series} ", style="bold")
        text.append(f"{number(q.value)}", style=style)
        text.append(f" / {q.warning:g}  ", style="dim")
        text.append(sparkline(history, 16) + "\n", style=style)
    return text


def elasticsearch_text(cluster: SourceState, summary: ElasticsearchSummary | None) -> Text:
    text = _status_line(cluster)
    if summary is None:
        return text
    style = {"green": "green", "yellow": "yellow"}.get(summary.status, "bold red")
    text.append(f"{summary.cluster} ", style="bold")
    text.append(summary.status, style=style)
    text.append(f"  {summary.nodes} node(s), {summary.unassigned_shards} unassigned shards\n")
    counts = summary.indices
    for name, style in (("green", "green"), ("yellow", "yellow"), ("red", "bold red")):
        text.append(f"{counts.get(name, 0)} {name}  ", style=style)
    if counts.get("closed"):
        text.append(f"{counts['closed']} closed", style="dim")
    return text


def services_text(src: SourceState, grafana: SourceState, summary: Summary) -> Text:
    text = _status_line(src)
    for svc in summary.services:
        colour = "bold red" if not svc.ok else "yellow" if svc.degraded else "green"
        text.append("● ", style=colour)
        text.append(f"{svc.name:<16}")
        problem = svc.error or svc.detail()
        text.append(f" {problem}\n" if problem else "\n", style="dim")
    if summary.grafana:
        text.append("● ", style="green")
        text.append(f"{'grafana':<16} {summary.grafana.get('version', '')}\n")
    elif grafana.error:
        text.append("● ", style="bold red")
        text.append(f"{'grafana':<16} {grafana.error}\n", style="dim")
    return text


class OverviewScreen(LiveScreen):
    TITLE_TEXT = "Overview"
    SOURCES = ("targets", "alerts", "queues", "cluster", "indices", "services", "grafana")

    def compose_body(self) -> ComposeResult:
        with Grid(id="tiles"):
            yield Tile("Targets", "targets")
            yield AlertsTile()
            yield Tile("Queues", "queues")
            yield Tile("Elasticsearch", "indices")
            yield Tile("Services", "services")

    def refresh_from(self, state: LiveState, changed: str | None) -> None:
        if not self.is_mounted:
            return
        # the overview shows each source's own banner in its tile, not one at the top
        from textual.css.query import NoMatches

        from opskit.screens.base import ContextBar

        try:
            self.query_one(ContextBar).show(self.oapp, self.TITLE_TEXT, self.SOURCES)
        except NoMatches:  # still being composed
            return
        self.render_body(state)

    def alerts_tile(self, state: LiveState, summary: Summary) -> Text:
        tile = self.query_one(AlertsTile)
        tile.listed = summary.alerts.top[:ALERTS_LISTED] if summary.alerts else []
        tile.cursor = min(tile.cursor, len(tile.listed) - 1)
        return alerts_text(state["alerts"], summary.alerts, tile.cursor)

    def render_body(self, state: LiveState) -> None:
        # the same summary `opskit status` prints: one judgement of the stack
        summary = summarize(self.oapp.settings.context, readings_from_live(state))
        tiles = {
            "targets": (targets_text(state["targets"], summary.targets), state["targets"]),
            "alerts": (self.alerts_tile(state, summary), state["alerts"]),
            "queues": (queues_text(state["queues"], summary.queues, state), state["queues"]),
            "indices": (
                elasticsearch_text(state["cluster"], summary.elasticsearch),
                state["cluster"],
            ),
            "services": (
                services_text(state["services"], state["grafana"], summary),
                state["services"],
            ),
        }
        for mode, (text, src) in tiles.items():
            tile = self.query_one(f"#tile-{mode}", Tile)
            tile.update(text)
            tile.set_class(src.status in ("stale", "unreachable"), "-stale")
