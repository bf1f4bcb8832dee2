"""Weekly checks (the README's "Weekly Tasks"): alert firing patterns, disk usage on the
monitoring nodes, log ingestion rate per source. The dashboard spot-check is in
`dashboards.py`."""

from __future__ import annotations

import re
import statistics
from datetime import date, timedelta

from opskit.tasks.maintenance.alert_history import alert_history
from opskit.tasks.maintenance.framework import Outcome, TaskContext, task

WEEK = timedelta(days=7)


@task(
    "weekly",
    "alert_patterns",
    "Alert firing patterns",
    "Alertmanager /api/v2/alerts; Prometheus ALERTS over 7 days (query_range)",
)
async def alert_patterns(ctx: TaskContext) -> Outcome:
    opts = ctx.options
    history = await alert_history(ctx.stack.prometheus, ctx.now, WEEK, opts.history_step)
    active = await ctx.stack.alertmanager.alerts()
    out = Outcome()
    firing_now = sorted({a.alertname for a in active if a.state == "active"})
    for name, h in sorted(history.items()):
        evidence = {
            "firings": h.episodes,
            "hours_firing": h.firing_hours,
            "coverage": h.coverage,
            "firing_now": name in firing_now,
        }
        if h.coverage >= opts.firing_all_ratio:
            out.add(
                "warning",
                name,
                f"firing {h.coverage:.0%} of the week: fix the cause or the threshold",
                **evidence,
            )
        elif h.episodes >= opts.flapping_episodes:
            out.add(
                "warning",
                name,
                f"flapping: fired {h.episodes} times this week for {h.firing_hours:g} h in all",
                **evidence,
            )
        else:
            out.add("info", name, f"fired {h.episodes} time(s), {h.firing_hours:g} h", **evidence)
    out.data = {
        "window_days": 7,
        "alerts": {name: h for name, h in sorted(history.items())},
        "firing_now": firing_now,
    }
    out.summary = (
        f"{len(history)} alert(s) fired this week, {len(firing_now)} active now"
        if not [f for f in out.findings if f.severity != "info"]
        else ""
    )
    return out


@task(
    "weekly",
    "disk_usage",
    "Disk usage on monitoring nodes",
    "Prometheus: node exporter node_filesystem_{avail,size}_bytes",
)
async def disk_usage(ctx: TaskContext) -> Outcome:
    opts = ctx.options
    sel = opts.filesystem_selector
    look = f"{int(opts.disk_lookback.total_seconds())}s"
    expr = (
        f"100 * (1 - last_over_time(node_filesystem_avail_bytes{{{sel}}}[{look}])"
        f" / last_over_time(node_filesystem_size_bytes{{{sel}}}[{look}]))"
    )
    samples = await ctx.stack.prometheus.query(expr, ctx.now)
    out = Outcome()
    if not samples:
        out.add("warning", "node exporter", "no filesystem series: is node exporter scraped?")
    for s in sorted(samples, key=lambda s: -s.value):
        subject = f"{s.labels.get('instance', '?')} {s.labels.get('mountpoint', '?')}"
        used = round(s.value, 1)
        if used > opts.disk_critical_percent:
            out.add(
                "critical", subject, f"{used}% used (> {opts.disk_critical_percent:g}%)", used=used
            )
        elif used > opts.disk_warning_percent:
            out.add(
                "warning", subject, f"{used}% used (> {opts.disk_warning_percent:g}%)", used=used
            )
        else:
            out.add("info", subject, f"{used}% used", used=used)
    out.data = {"query": expr, "filesystems": len(samples)}
    return out


def index_glob(template: str, source: str) -> str:
    """`logs-{source}-%Y.%m.%d` -> `logs-postfix-*`: every daily index of a source."""
    return re.sub(
        r"(%[a-zA-Z])+([^a-zA-Z0-9]*(%[a-zA-Z]))*", "*", template.replace("{source}", source)
    )


def ingestion_findings(
    source: str, counts: dict[date, int | None], drop_ratio: float, out: Outcome
) -> None:
    """Pure: a missing day fails, a day below drop_ratio x the median of the others warns."""
    present = [c for c in counts.values() if c is not None]
    median = statistics.median(present) if present else 0
    missing = [d for d, c in counts.items() if c is None]
    for day in missing:
        out.add("critical", source, f"no index for {day:%Y-%m-%d}: logs missing that day", day=day)
    for day, count in counts.items():
        if count is not None and median and count < drop_ratio * median:
            out.add(
                "warning",
                source,
                f"{day:%Y-%m-%d}: {count} documents, well below the median {median:g}",
                day=day,
                count=count,
                median=median,
            )
    if not missing and all(c is None or c >= drop_ratio * median for c in counts.values()):
        out.add("info", source, f"{len(present)} days present, median {median:g} documents/day")


@task(
    "weekly",
    "log_ingestion",
    "Log ingestion rate",
    "Elasticsearch _cat/indices: the daily index of every log source (doctor.log_sources)",
)
async def log_ingestion(ctx: TaskContext) -> Outcome:
    doctor = ctx.settings.doctor
    days = [ctx.now.date() - timedelta(days=i) for i in range(ctx.options.ingestion_days, 0, -1)]
    out = Outcome()
    table: dict[str, dict[str, int | None]] = {}
    for source in doctor.log_sources:
        pattern = index_glob(doctor.log_index, source)
        indices = {i.name: i.docs_count for i in await ctx.stack.elasticsearch.indices(pattern)}
        template = doctor.log_index.replace("{source}", source)
        counts = {d: indices.get(d.strftime(template)) for d in days}
        ingestion_findings(source, counts, ctx.options.ingestion_drop_ratio, out)
        table[source] = {f"{d:%Y-%m-%d}": c for d, c in counts.items()}
    out.data = {"days": [f"{d:%Y-%m-%d}" for d in days], "documents": table}
    return out
