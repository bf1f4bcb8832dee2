"""The incident screen (issue 17): one alert's evidence on one page, each part loaded in
a worker of its own (opskit.tasks.incident) with a loading or error line of its own.
Pushed by Enter on an alert (Alerts screen); escape closes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from opskit.durations import format_duration
from opskit.live import LiveState
from opskit.models import (
    Alert,
    AlertHistory,
    DashboardLink,
    IncidentAlert,
    IncidentLogs,
    QueueDepth,
    RuleEvidence,
    TargetEvidence,
)
from opskit.models_tracing import IncidentTraces
from opskit.output import ago
from opskit.screens.base import LiveScreen
from opskit.screens.widgets import HistoryPlot, Line, Threshold, sparkline
from opskit.stack import Sourced, fetch
from opskit.tasks import incident as tasks
from opskit.tasks.traces import incident_traces
from opskit.tracing import ms

PARTS = ("alert", "history", "targets", "rule", "logs", "traces", "queues", "dashboards")
TITLES = {
    "alert": "Alert",
    "history": "Firing history",
    "targets": "Targets",
    "rule": "Rule",
    "logs": "Logs",
    "traces": "Traces",
    "queues": "Queues",
    "dashboards": "Dashboards",
}
LEVEL_STYLE = {"ERROR": "bold red", "CRITICAL": "bold red", "WARNING": "yellow"}


def _when(at: datetime | None) -> str:
    return at.astimezone().strftime("%m-%d %H:%M:%S") if at else "-"


def alert_text(a: IncidentAlert) -> Text:
    text = Text()
    text.append(a.alertname, style="bold")
    text.append(f"  {a.state}", style="bold red" if a.state == "firing" else "")
    text.append(f"  {a.severity}  started {ago(a.starts_at)} ({_when(a.starts_at)})\n")
    for line, style in ((a.summary, ""), (a.description, "dim")):
        if line:
            text.append(line + "\n", style=style)
    if a.runbook_url:
        text.append(f"runbook: {a.runbook_url}\n")
    text.append("labels: ", style="bold")
    text.append(" ".join(f"{k}={v}" for k, v in sorted(a.labels.items())) + "\n")
    for s in a.silences:
        text.append(f"silenced by {s.id[:8]} until {_when(s.ends_at)}: {s.comment}\n", style="dim")
    for i in a.inhibited_by:
        text.append(f"inhibited by {i['alertname'] or i['fingerprint']}\n", style="dim")
    for i in a.inhibits:
        text.append(f"inhibits {i['alertname']}\n", style="dim")
    if a.source == "history":
        text.append("(no longer in Alertmanager: as Prometheus' ALERTS last saw it)", style="dim")
    return text


def history_text(h: AlertHistory) -> Text:
    text = Text()
    text.append(
        f"fired {h.fired}x in {format_duration(h.end - h.start)}, "
        f"{format_duration(h.firing_seconds)} firing\n"
    )
    for e in h.episodes:
        end = "ongoing" if e.ongoing else _when(e.end)
        style = "bold red" if e.ongoing else ""
        text.append(
            f"  {_when(e.start)} → {end:<14}  {format_duration(e.duration):>8}", style=style
        )
        if e.labels.get("instance"):
            text.append(f"  {e.labels['instance']}", style="dim")
        text.append("\n")
    if not h.episodes:
        text.append("  no firing episode in the window\n", style="dim")
    return text


def targets_text(targets: list[TargetEvidence]) -> Text:
    text = Text()
    if not targets:
        text.append("the alert names no job (or its targets are gone)", style="dim")
    for t in targets:
        text.append(f"{t.job} {t.instance}  ")
        text.append(t.health, style="green" if t.health == "up" else "bold red")
        ratio = "-" if t.up_ratio is None else f"{t.up_ratio * 100:.0f}%"
        text.append(f"  up {ratio} of the window  scrape {t.last_scrape_duration:.3f}s  ")
        text.append(sparkline([v for _, v in t.up], 40))
        if t.last_error:
            text.append(f"\n  {t.last_error}", style="red")
        text.append("\n")
    return text


def rule_text(r: RuleEvidence | None) -> Text:
    text = Text()
    if r is None:
        text.append("Prometheus has no alerting rule of this name", style="dim")
        return text
    text.append(f"{r.name}", style="bold")
    text.append(f"  group {r.group}  for {format_duration(r.duration)}  health {r.health}\n")
    text.append(" ".join(r.query.split()) + "\n")
    if r.threshold:
        text.append(f"threshold {r.threshold['op']} {r.threshold['value']:g}\n")
    for s in r.current:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "__name__")
        text.append(f"now {s.value:g}  {labels}\n")
    if not r.current:
        text.append("now: (no data)\n", style="dim")
    for series in r.series[:3]:
        values = [v for _, v in series.points]
        text.append(f"{format_duration(r.end - r.start)}: ")
        text.append(sparkline(values, 80), style="cyan")
        text.append("\n")
    return text


def logs_text(logs: IncidentLogs, limit: int = 25) -> Text:
    text = Text()
    if logs.note:
        text.append(logs.note, style="dim")
        return text
    text.append(f"{', '.join(logs.indices)} since {_when(logs.start)}: {logs.matched} lines\n")
    for g in logs.groups[:limit]:
        text.append(f"{g.level:<7}", style=LEVEL_STYLE.get(g.level, "dim"))
        text.append(f" {g.count:>4}x  {_when(g.last)}  {g.message[:160]}\n")
    if len(logs.groups) > limit:
        text.append(f"… {len(logs.groups) - limit} more\n", style="dim")
    return text


def queues_text(depths: list[QueueDepth] | None) -> Text:
    if depths is None:
        return Text("not about a queue", style="dim")
    text = Text()
    for d in depths:
        style = {"critical": "bold red", "warning": "yellow"}.get(d.state, "")
        text.append(f"{d.queue} {d.series}  {d.value:g} (warning {d.warning:g})  ")
        text.append(f"{d.state}\n", style=style)
    return text


def dashboards_text(links: list[DashboardLink]) -> Text:
    text = Text()
    if not links:
        text.append("no dashboard shows this job or metric", style="dim")
    for d in links:
        text.append(d.title, style="bold")
        text.append(f"  {d.url}  ({', '.join(d.matched)})\n")
    return text


def traces_text(found: IncidentTraces) -> Text:
    """The service's traces around the start: failing first, then the slowest, each with
    its link into Jaeger's UI."""
    text = Text()
    if found.note:
        text.append(found.note, style="dim")
        return text
    text.append(
        f"{found.service}: {found.read} trace(s) from {_when(found.start)} to "
        f"{_when(found.end)}, {found.errors} failing\n"
    )
    for t in found.traces:
        style = "bold red" if t.errors else ""
        text.append(f"{_when(t.start)}  {ms(t.duration_ms):>6} ms  ", style=style)
        text.append(f"{t.operation}", style=style)
        if t.error_message:
            text.append(f"  {t.error_message}", style="red")
        text.append(f"\n  {found.link(t.trace_id)}\n", style="dim")
    return text


RENDER: dict[str, Callable[[Any], Text]] = {
    "alert": alert_text,
    "history": history_text,
    "targets": targets_text,
    "rule": rule_text,
    "logs": logs_text,
    "queues": queues_text,
    "dashboards": dashboards_text,
    "traces": traces_text,
}


class IncidentScreen(LiveScreen):
    """The incident view of one alert (by fingerprint or alertname)."""

    TITLE_TEXT = "Incident"
    SOURCES = ("alerts",)
    DEFAULT_CSS = """
    IncidentScreen #rule-plot { height: 14; margin: 0 0 1 0; }
    IncidentScreen .part { padding: 0 1; margin: 0 0 1 0; border-left: tall $panel; }
    IncidentScreen .part.-error { border-left: tall $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="close_incident"),
        Binding("s", "silence", "Silence", id="silence"),
        Binding("l", "widen_logs", "Wider logs", id="widen_logs"),
        Binding("h", "switch_history", "History 24h/7d", id="switch_history"),
    ]

    def __init__(
        self,
        key: str,
        alert: Alert | None = None,
        results: Mapping[str, Sourced[Any]] | None = None,
    ) -> None:
        """`results`: every part already gathered (a replay, the snapshot tests); then
        nothing is loaded."""
        super().__init__()
        self.key = key
        self.given = alert
        self.since = timedelta(hours=2)
        self.history_window = tasks.HISTORY_WINDOWS[0]
        self.log_before = tasks.LOG_WINDOWS[0]
        self.results: dict[str, Sourced[Any] | None] = dict.fromkeys(PARTS)
        self.preloaded = results is not None
        self.results.update(results or {})

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="incident"):
            for name in PARTS:
                part = Static("", id=f"part-{name}", classes="part")
                part.border_title = TITLES[name]
                yield part
                if name == "rule":  # the expression drawn, with its threshold
                    yield HistoryPlot(id="rule-plot")

    def on_mount(self) -> None:
        for name in PARTS:
            self.show_part(name)
        if not self.preloaded:
            self.run_worker(self._locate(), group="incident-alert", exclusive=True)

    @property
    def subject(self) -> IncidentAlert | None:
        part = self.results["alert"]
        return part.value if part is not None else None

    def titles(self, name: str) -> str:
        if name == "history":
            return f"{TITLES[name]} ({format_duration(self.history_window)})"
        if name == "logs":
            return f"{TITLES[name]} (from {format_duration(self.log_before)} before the start)"
        return TITLES[name]

    def show_part(self, name: str) -> None:
        widget = self.query_one(f"#part-{name}", Static)
        widget.border_title = self.titles(name)
        part = self.results[name]
        if part is None and self.preloaded and name == "traces":
            widget.display = False  # a replay or a preloaded view without traces
            return
        if part is None:
            widget.update(Text("loading…", style="dim"))
            widget.remove_class("-error")
            return
        body = Text()
        if part.error is not None:
            body.append(f"{part.error}\n", style="bold red")
        if part.value is not None or (part.error is None and name in ("rule", "queues")):
            body.append_text(RENDER[name](part.value))
        widget.update(body)
        widget.set_class(part.error is not None, "-error")
        if name == "rule":
            self.plot_rule(part.value)

    def plot_rule(self, rule: RuleEvidence | None) -> None:
        plot = self.query_one("#rule-plot", HistoryPlot)
        plot.display = bool(rule and rule.series)
        if rule is None or not rule.series:
            return
        colours = ("cyan", "magenta", "green")
        lines = [
            Line(
                ",".join(f"{v}" for k, v in sorted(s.labels.items()) if k != "__name__") or "value",
                s.points,
                colours[i % 3],
            )
            for i, s in enumerate(rule.series[:3])
        ]
        thresholds = []
        if rule.threshold:
            op, value = rule.threshold["op"], float(rule.threshold["value"])
            thresholds.append(Threshold(f"threshold {op} {value:g}", value, "red"))
        span = (rule.end - rule.start).total_seconds() / 60
        plot.show(rule.plotted, lines, thresholds, span=span)

    # -- loading
    async def _locate(self) -> None:
        stack = self.oapp.stack
        if stack is None:
            from opskit.errors import BackendUnreachable

            self.results["alert"] = Sourced(error=BackendUnreachable("opskit", "not connected"))
            self.show_part("alert")
            return
        self.results["alert"] = await tasks.locate(stack, self.key, self.history_window)
        self.show_part("alert")
        if self.subject is None:
            for name in PARTS[1:]:
                self.query_one(f"#part-{name}", Static).update(Text("-", style="dim"))
            return
        for name in PARTS[1:]:
            self.load(name)

    def load(self, name: str) -> None:
        self.results[name] = None
        self.show_part(name)
        self.run_worker(self._load(name), group=f"incident-{name}", exclusive=True)

    def _coroutine(self, name: str) -> Awaitable[Any]:
        stack, subject = self.oapp.stack, self.subject
        assert stack is not None and subject is not None
        if name == "history":
            return tasks.alert_history(
                stack, subject.alertname, self.history_window, active=tasks.active_since(subject)
            )
        if name == "targets":
            return tasks.alert_targets(stack, subject, self.since)
        if name == "rule":
            return tasks.alert_rule(stack, subject, self.since)
        if name == "logs":
            return tasks.alert_logs(stack, subject, self.log_before)
        if name == "queues":
            return tasks.alert_queues(stack, subject)
        if name == "traces":
            return incident_traces(stack, subject)
        return tasks.alert_dashboards(stack, subject)

    async def _load(self, name: str) -> None:
        if self.oapp.stack is None or self.subject is None:
            return
        self.results[name] = await fetch(self._coroutine(name))
        if self.is_mounted:
            self.show_part(name)

    def render_body(self, state: LiveState) -> None:
        """The parts load on their own; the poller's updates leave them alone."""

    # -- actions
    def action_close(self) -> None:
        self.app.pop_screen()

    def action_silence(self) -> None:
        subject = self.subject
        alert = subject.instances[0] if subject and subject.instances else self.given
        if alert is None:
            self.notify("no alert in Alertmanager to silence", severity="warning")
            return
        self.oapp.open_silence_form(alert)

    def action_widen_logs(self) -> None:
        self.log_before = tasks.widen(self.log_before, tasks.LOG_WINDOWS)
        self.notify(f"logs from {format_duration(self.log_before)} before the start", timeout=2)
        if self.subject is not None:
            self.load("logs")

    def action_switch_history(self) -> None:
        self.history_window = tasks.widen(self.history_window, tasks.HISTORY_WINDOWS)
        self.notify(f"history: {format_duration(self.history_window)}", timeout=2)
        if self.subject is not None:
            self.load("history")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("widen_logs", "switch_history") and self.preloaded:
            return False  # nothing to load again
        return not (action == "silence" and self.oapp.settings.read_only)
