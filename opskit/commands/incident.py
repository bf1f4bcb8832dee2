"""`opskit incident ALERTNAME|FINGERPRINT`: an alert's evidence on one page
(opskit.tasks.incident)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click

from opskit.commands.common import App, json_option, pass_app, run
from opskit.durations import format_duration, parse_duration
from opskit.errors import UsageError
from opskit.output import ago, console, esc, number, print_json, styled, table

if TYPE_CHECKING:
    from opskit.models import (
        AlertHistory,
        DashboardLink,
        IncidentAlert,
        IncidentLogs,
        QueueDepth,
        RuleEvidence,
        TargetEvidence,
    )
    from opskit.models_tracing import IncidentTraces
    from opskit.tasks.incident import Incident


def _duration(option: str, text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if at else "-"


@click.command()
@click.argument("key", metavar="ALERTNAME|FINGERPRINT")
@click.option(
    "--since",
    default="2h",
    show_default=True,
    help="Metrics window: the targets' `up` and the rule's expression.",
)
@click.option("--history", default="24h", show_default=True, help="Firing history window.")
@click.option(
    "--logs-before",
    default="15m",
    show_default=True,
    help="Logs from this long before the alert started.",
)
@json_option
@pass_app
def incident(app: App, key: str, since: str, history: str, logs_before: str, as_json: bool) -> int:
    """One alert's evidence: the alert, its firing history, its targets, its rule and
    expression, the service's logs and traces, related queues and Grafana dashboards.

    Exit 0 when the alert was found (even resolved), 6 when there is no such alert
    (neither firing nor in the history), 3 when Alertmanager could not be reached."""
    from opskit.tasks.incident import incident as gather

    windows = (
        _duration("--since", since),
        _duration("--history", history),
        _duration("--logs-before", logs_before),
    )

    async def go() -> Incident:
        async with app.stack() as stack:
            return await gather(stack, key, *windows)

    found = run(go())
    if as_json:
        print_json(found.to_json())
    else:
        show(found)
    if found.alert.error is not None:
        print(f"opskit: {found.alert.error}", file=sys.stderr)
    return found.exit_code()


def show(found: Incident) -> None:
    out = console()
    failed = [(name, part) for name, part in found.parts().items() if part and part.error]
    alert = found.alert.value
    if alert is not None:
        _alert(alert)
    if found.history and found.history.value is not None:
        _history(found.history.value)
    if found.targets and found.targets.value is not None:
        _targets(found.targets.value)
    if found.rule and found.rule.ok:
        _rule(found.rule.value)
    if found.logs and found.logs.value is not None:
        _logs(found.logs.value)
    if found.traces and found.traces.value is not None:
        _traces(found.traces.value)
    if found.queues and found.queues.value is not None:
        _queues(found.queues.value)
    if found.dashboards and found.dashboards.value is not None:
        _dashboards(found.dashboards.value)
    for name, part in failed:  # one line per failed part
        if part is not None and not (name == "alert" and alert is None):
            out.print(f"[bold red]{name}: {esc(part.error)}[/]")


def _alert(a: IncidentAlert) -> None:
    out = console()
    state = "[bold red]firing[/]" if a.state == "firing" else a.state
    out.print(
        f"[bold]{esc(a.alertname)}[/]  {state}  {esc(a.severity)}  started {ago(a.starts_at)}"
    )
    if a.summary:
        out.print(esc(a.summary))
    if a.description:
        out.print(f"[dim]{esc(a.description)}[/]")
    if a.runbook_url:
        out.print(f"runbook: {esc(a.runbook_url)}")
    labels = " ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
    out.print(f"labels: {esc(labels)}")
    out.print(f"started: {_when(a.starts_at)}  source: {a.source}  fingerprint: {a.fingerprint}")
    if len(a.instances) > 1:
        out.print(f"{len(a.instances)} instances")
    for s in a.silences:
        out.print(f"silenced by {s.id[:8]} until {_when(s.ends_at)} ({esc(s.comment)})")
    for i in a.inhibited_by:
        out.print(f"inhibited by {esc(i['alertname'] or i['fingerprint'])}")
    for i in a.inhibits:
        out.print(f"[dim]inhibits {esc(i['alertname'])}[/]")
    out.print()


def _history(h: AlertHistory) -> None:
    from opskit.output import stamp

    tb = table(
        f"Firing history ({format_duration(h.end - h.start)}): fired {h.fired}x, "
        f"{format_duration(h.firing_seconds)} firing",
        "start",
        "end",
        "duration",
        "labels",
    )
    for e in h.episodes:
        labels = ",".join(f"{k}={v}" for k, v in sorted(e.labels.items()))
        end = "ongoing" if e.ongoing else stamp(e.end)
        tb.add_row(stamp(e.start), end, format_duration(e.duration), esc(labels))
    console().print(tb)
    console().print()


def _targets(targets: list[TargetEvidence]) -> None:
    tb = table("Targets", "job", "instance", "health", "up %", "scrape s", "last error")
    for t in targets:
        ratio = "-" if t.up_ratio is None else f"{t.up_ratio * 100:.0f}"
        tb.add_row(
            esc(t.job),
            esc(t.instance),
            styled(t.health),
            ratio,
            f"{t.last_scrape_duration:.3f}",
            esc(t.last_error),
        )
    console().print(tb if targets else "[dim]Targets: the alert names no job[/]")
    console().print()


def _rule(r: RuleEvidence | None) -> None:
    out = console()
    if r is None:
        out.print("[dim]Rule: Prometheus has no alerting rule of this name[/]\n")
        return
    out.print(
        f"[bold]Rule[/] {esc(r.name)} (group {esc(r.group)}, for {format_duration(r.duration)})"
    )
    out.print(f"  {esc(' '.join(r.query.split()))}")
    if r.threshold:
        out.print(f"  threshold: {esc(r.threshold['op'])} {number(r.threshold['value'])}")
    for s in r.current:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "__name__")
        out.print(f"  now: {number(s.value)}  {esc(labels)}")
    if not r.current:
        out.print("  now: (no data)")
    out.print()


def _logs(logs: IncidentLogs) -> None:
    from opskit.output import stamp

    if logs.note:
        console().print(f"[dim]Logs: {esc(logs.note)}[/]\n")
        return
    tb = table(
        f"Logs {', '.join(logs.indices)} since {_when(logs.start)}: {logs.matched} lines",
        "level",
        "count#",
        "last",
        "message",
    )
    for g in logs.groups[:30]:
        style = {"ERROR": "bold red", "WARNING": "yellow"}.get(g.level)
        level = f"[{style}]{g.level}[/]" if style else g.level
        tb.add_row(level, str(g.count), stamp(g.last), esc(g.message[:160]))
    console().print(tb)
    console().print()


def _traces(found: IncidentTraces) -> None:
    from opskit.commands.traces import failing_span
    from opskit.output import stamp
    from opskit.tracing import ms

    if found.note:
        console().print(f"[dim]Traces: {esc(found.note)}[/]\n")
        return
    tb = table(
        f"Traces of {found.service} from {_when(found.start)} to {_when(found.end)}: "
        f"{found.read} read, {found.errors} failing (failing first, then slowest)",
        "start",
        "duration ms",
        "operation",
        "error",
        "link",
    )
    for t in found.traces:
        error = failing_span(t) if t.errors else ""
        tb.add_row(
            stamp(t.start), ms(t.duration_ms), esc(t.operation), error, found.link(t.trace_id)
        )
    console().print(tb)
    console().print()


def _queues(depths: list[QueueDepth]) -> None:
    tb = table("Queues", "queue", "series", "value", "warning", "state")
    for d in depths:
        tb.add_row(esc(d.queue), esc(d.series), number(d.value), number(d.warning), d.state)
    console().print(tb)
    console().print()


def _dashboards(links: list[DashboardLink]) -> None:
    tb = table("Dashboards", "title", "url", "matched")
    for d in links:
        tb.add_row(esc(d.title), esc(d.url), esc(", ".join(d.matched)))
    console().print(tb if links else "[dim]Dashboards: none shows this job or metric[/]")
