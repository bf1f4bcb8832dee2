"""Monthly tasks (the README's "Monthly Tasks"): alert threshold review, archiving old
logs through the retention policies, the Prometheus retention review. Performance
analysis against baselines is in `performance.py`."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

from opskit.findings import Severity
from opskit.models import Rule
from opskit.tasks.maintenance.alert_history import AlertHistory, alert_history
from opskit.tasks.maintenance.framework import Outcome, Skip, TaskContext, task
from opskit.tasks.maintenance.promql import Threshold, split_threshold

MAX_POINTS = 10_000
MIN_HOURS = 24  # hourly points of an expression needed to judge its threshold


def history_step(window: timedelta, step: timedelta) -> timedelta:
    """The configured step, widened so a range query stays under Prometheus's 11,000 points."""
    return max(step, window / MAX_POINTS)


async def distribution(
    ctx: TaskContext, t: Threshold, days: int, step: timedelta = timedelta(minutes=5)
) -> dict[str, float | None]:
    """Quantiles of the threshold's left-hand side over `days` (1-hour subquery). When that
    sees under `MIN_HOURS` points, `seen_hours` is how much of the window had data at
    `step` resolution (a young series, or one shorter than an hour between two hours)."""
    agg = "max" if t.op in (">", ">=") else "min"
    window = f"[{days}d:1h]"
    exprs = {
        "p50": f"{agg}(quantile_over_time(0.5, ({t.lhs}){window}))",
        "p95": f"{agg}(quantile_over_time(0.95, ({t.lhs}){window}))",
        "p99": f"{agg}(quantile_over_time(0.99, ({t.lhs}){window}))",
        "min": f"min(min_over_time(({t.lhs}){window}))",
        "max": f"max(max_over_time(({t.lhs}){window}))",
        "hours": f"max(count_over_time(({t.lhs}){window}))",
    }
    prom = ctx.stack.prometheus
    answers = await asyncio.gather(*(prom.query(e, ctx.now) for e in exprs.values()))
    out: dict[str, float | None] = {}
    for key, samples in zip(exprs, answers, strict=True):
        value = samples[0].value if samples else math.nan
        out[key] = round(value, 6) if math.isfinite(value) else None
    if (out["hours"] or 0) < MIN_HOURS:
        seconds = max(int(step.total_seconds()), 1)
        fine = f"max(count_over_time(({t.lhs})[{days}d:{seconds}s]))"
        samples = await prom.query(fine, ctx.now)
        count = samples[0].value if samples else math.nan
        out["seen_hours"] = round(count * seconds / 3600, 2) if math.isfinite(count) else 0.0
    return out


def span(hours: float) -> str:
    """Pure: 2h, 1.5h, 25m."""
    return f"{hours * 60:.0f}m" if hours < 1 else f"{round(hours, 1):g}h"


def place(
    t: Threshold, dist: dict[str, float | None], fired: bool = False, days: int = 30
) -> tuple[Severity, str]:
    """Pure: (level, sentence) for where a threshold sits in the observed distribution.
    `fired`: the rule fired in the window (from ALERTS), so its expression had data and it
    can fire: never "cannot fire" then, whatever the hourly subquery saw. `days`: the window."""
    p50, p95, p99, top, bottom = (dist[k] for k in ("p50", "p95", "p99", "max", "min"))
    hours = dist.get("hours") or 0.0
    had = max(hours, dist.get("seen_hours") or 0.0)  # hours of data, at the finer step too
    if p50 is None or top is None or bottom is None or hours < MIN_HOURS:
        if had > 0:
            return (
                "info",
                f"only {span(had)} of data in the {days}d window: too little to judge the"
                " threshold",
            )
        if fired:
            return (
                "info",
                f"the rule fired, but its expression left no samples in the {days}d window"
                " (a series younger or shorter than the review's step): too little to judge"
                " the threshold",
            )
        return "warning", f"no data for the expression in the {days}d window: the rule cannot fire"
    upper = t.op in (">", ">=")
    shown = f"threshold {t.value:g}; observed p50 {p50:g}, p95 {p95:g}, p99 {p99:g}, max {top:g}"
    if (t.value < p50) if upper else (t.value > p50):
        if not fired:
            return (
                "warning",
                f"{shown}: the condition holds most of the time, yet the rule never fired in"
                " the window (is the rule newer than the data, or its `for:` too long?)",
            )
        return "warning", f"{shown}: the condition holds most of the time"
    if (t.value > top) if upper else (t.value < bottom):
        return "info", f"{shown}: never reached in the window"
    if upper and p95 is not None and t.value < p95:
        return "info", f"{shown}: crossed more than 5% of the time"
    return "info", shown


def rule_verdict(
    rule: Rule, h: AlertHistory | None, per_window_flaps: float, all_ratio: float
) -> tuple[Severity, str]:
    if h is None or h.episodes == 0:
        return "info", "never fired in the review window"
    if h.coverage >= all_ratio:
        return "warning", f"always firing ({h.coverage:.0%} of the window)"
    if h.episodes >= per_window_flaps:
        return "warning", f"flapping: {h.episodes} firings, {h.firing_hours:g} h in all"
    return "info", f"fired {h.episodes} time(s), {h.firing_hours:g} h in all"


@task(
    "monthly",
    "alert_thresholds",
    "Alert threshold review",
    "Prometheus /api/v1/rules; ALERTS and each rule's expression over 30 days",
)
async def alert_thresholds(ctx: TaskContext) -> Outcome:
    opts = ctx.options
    window = timedelta(days=opts.review_days)
    prom = ctx.stack.prometheus
    rules = [r for r in await prom.rules() if r.type == "alerting"]
    history = await alert_history(prom, ctx.now, window, history_step(window, opts.history_step))
    flaps = opts.flapping_episodes * opts.review_days / 7
    out = Outcome()
    rows = []
    for rule in rules:
        level, verdict = rule_verdict(rule, history.get(rule.name), flaps, opts.firing_all_ratio)
        out.add(level, rule.name, verdict, group=rule.group)
        row: dict[str, object] = {"rule": rule.name, "verdict": verdict}
        threshold = split_threshold(rule.query)
        h = history.get(rule.name)
        if threshold is not None:
            dist = await distribution(ctx, threshold, opts.review_days, opts.history_step)
            fired = h is not None and h.episodes > 0
            tlevel, sentence = place(threshold, dist, fired, opts.review_days)
            out.add(tlevel, rule.name, sentence, threshold=threshold.value)
            row.update(threshold=threshold.value, op=threshold.op, distribution=dist)
        row.update(firings=h.episodes if h else 0, hours_firing=h.firing_hours if h else 0.0)
        rows.append(row)
    out.data = {"window_days": opts.review_days, "rules": rows}
    return out


@task(
    "monthly",
    "archive_logs",
    "Archive old logs",
    "Elasticsearch: the [[retention]] policies (snapshot first where set, then act)",
    destructive=True,
)
async def archive_logs(ctx: TaskContext) -> Outcome:
    from opskit.tasks import retention as ret

    policies = ctx.settings.retention
    if not policies:
        raise Skip("no retention policies configured ([[retention]] in the config)")
    es = ctx.stack.elasticsearch
    facts = await ret.index_facts(es, [p.pattern for p in policies])
    plan = ret.plan_all(policies, facts, ctx.now)
    out = Outcome()
    planned = {p.policy: [d.index for d in p.act] for p in plan.policies}
    out.data = {"planned": planned}
    if plan.empty:
        out.add("info", "retention", "nothing is older than its policy keeps")
        return out
    if ctx.dry_run or not ctx.apply:
        for p in plan.policies:
            if p.act:
                out.add("info", p.policy, f"would {p.action} {len(p.act)} index(es)")
        if not ctx.dry_run:
            why = "read-only context" if ctx.settings.read_only else "no --yes"
            out.add("warning", "retention", f"planned but not applied ({why})")
        return out
    repository = ctx.settings.elasticsearch.snapshot_repository
    if any(p.snapshot_first and p.act for p in plan.policies):
        from opskit.tasks.snapshots import ensure_repository

        await ensure_repository(es, repository, ctx.settings.elasticsearch.snapshot_location)
    result = await ret.apply_plan(es, plan, repository)
    for o in result.outcomes:
        if o.snapshot_error:
            out.add("critical", o.policy, f"snapshot failed, nothing acted on: {o.snapshot_error}")
        for index, why in o.failed.items():
            out.add("critical", o.policy, f"{o.action} {index} failed: {why}")
        if o.done:
            snap = f" after snapshot {o.snapshot.name}" if o.snapshot else ""
            out.add("info", o.policy, f"{o.action}: {len(o.done)} index(es){snap}")
    out.data["done"] = {o.policy: o.done for o in result.outcomes}
    return out


@task(
    "monthly",
    "prometheus_retention",
    "Prometheus retention review",
    "Prometheus flags, TSDB status and growth; node exporter free space",
)
async def prometheus_retention(ctx: TaskContext) -> Outcome:
    from opskit.durations import parse_duration
    from opskit.tasks.prom_retention import gather

    budget = ctx.settings.prometheus.disk_budget
    r = await gather(ctx.stack.prometheus, int(budget) if budget else None)
    out = Outcome()
    per_day = r.growth_per_day_bytes
    out.data = {"report": r}
    days_kept: float | None = None
    try:
        days_kept = parse_duration(r.retention_time).total_seconds() / 86400
    except ValueError:  # "" is no time limit (a size limit only)
        days_kept = None
    server = "VictoriaMetrics" if r.flavor == "victoriametrics" else "Prometheus"
    flag = r.flag_retention_time or f"not set, {server}' default"
    shown = f"retention {r.retention_time or 'no time limit'} (flag: {flag})"
    if r.retention_size:
        shown += f", size limit {r.retention_size}"
    if per_day:
        shown += f", growing {per_day / 2**20:.1f} MiB/day"
    out.add("info", "prometheus", shown)
    if r.fits_days is not None and days_kept is not None and days_kept > r.fits_days:
        out.add(
            "warning",
            "prometheus",
            f"{r.retention_time} of data does not fit the disk budget ({r.fits_days} days do):"
            f" set {' '.join(r.flags_to_set)}",
        )
    if r.disk and per_day and days_kept:
        room_days = r.disk.available_bytes / per_day
        if room_days < days_kept:
            out.add(
                "warning",
                r.disk.mountpoint,
                f"free space lasts {room_days:.0f} days at this growth, retention is"
                f" {days_kept:g} days",
            )
    for note in r.notes:
        out.add("info", "prometheus", note)
    return out
