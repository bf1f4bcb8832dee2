"""Quarterly capacity planning: days until each filesystem is full (a least-squares line
through 30 days of node exporter usage), Elasticsearch store growth against the data
nodes' free space, and Prometheus TSDB growth against the disk it lives on."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta

from opskit.findings import Severity
from opskit.tasks.maintenance.framework import Outcome, TaskContext, task

DAY = 86400.0
MAX_FORECAST_YEARS = 10  # a forecast further out than this is no forecast: "beyond 10 years"
_DATE_IN_NAME = re.compile(r"(\d{4})[.\-_](\d{2})[.\-_](\d{2})")


def slope(points: list[tuple[float, float]]) -> float | None:
    """Pure: least-squares slope of (t, value) points per second; None under 2 points."""
    n = len(points)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def growth_rate(points: list[tuple[float, float]]) -> float | None:
    """Pure: the least-squares slope when the series is growing, else None: flat, shrinking,
    or a slope within two standard errors of zero (noise around a flat line, whose tiny
    positive slope would otherwise reach 100% in millions of days)."""
    rate = slope(points)
    if rate is None or rate <= 0:
        return None
    n = len(points)
    if n <= 2:
        return rate
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    sse = sum((v - mean_v - rate * (t - mean_t)) ** 2 for t, v in points)
    stderr = math.sqrt(sse / (n - 2) / var)
    return rate if rate > 2 * stderr else None


def days_until_full(points: list[tuple[float, float]], now: float) -> float | None:
    """Pure: days from `now` until a used fraction (0..1) reaches 1 on its linear trend;
    None when it is not growing (`growth_rate`)."""
    rate = growth_rate(points)
    if rate is None:
        return None
    last_t, last_v = points[-1]
    return max((1.0 - last_v) / rate - (now - last_t), 0.0) / DAY


def forecast_cap_days(horizon: int) -> float:
    """Pure: how far a forecast is believed: `MAX_FORECAST_YEARS`, or ten horizons when the
    configured horizon is longer than a year."""
    return max(MAX_FORECAST_YEARS * 365.0, 10.0 * horizon)


def bounded_days(days: float | None, horizon: int) -> float | None:
    """Pure: `days` when it is a forecast worth a number, else None (not growing, or
    beyond the cap: a line through a flat series reaches 100% in millions of days)."""
    if days is None or days > forecast_cap_days(horizon):
        return None
    return days


def level_for(days: float | None, horizon: int, critical: int) -> Severity:
    if days is None or days >= horizon:
        return "info"
    return "critical" if days < critical else "warning"


def when(days: float | None, horizon: int = 0) -> str:
    """Pure: the forecast in words: "full in 21 days", "not growing", or "not full within
    10 years" rather than "full in 8294040 days"."""
    if days is None:
        return "not growing"
    cap = forecast_cap_days(horizon)
    if days > cap:
        return f"not full within {cap / 365:.0f} years at this growth"
    return f"full in {days:.0f} days"


def trend(days: float | None, horizon: int) -> str:
    """Pure: the word for `data`: growing (a forecast within the cap), beyond (growing,
    too slowly to forecast), not growing."""
    if days is None:
        return "not growing"
    return "beyond" if days > forecast_cap_days(horizon) else "growing"


async def filesystems(ctx: TaskContext, out: Outcome) -> None:
    opts = ctx.options
    sel = opts.filesystem_selector
    expr = f"1 - node_filesystem_avail_bytes{{{sel}}} / node_filesystem_size_bytes{{{sel}}}"
    start = ctx.now - timedelta(days=opts.review_days)
    series = await ctx.stack.prometheus.query_range(expr, start, ctx.now, 3600.0)
    now = ctx.now.timestamp()
    rows = {}
    for labels, points in series:
        subject = f"{labels.get('instance', '?')} {labels.get('mountpoint', '?')}"
        span = points[-1][0] - points[0][0] if points else 0.0
        if span < opts.min_history.total_seconds():
            out.add("info", subject, f"only {span / 3600:.0f} h of history: no trend yet")
            continue
        horizon = opts.capacity_horizon_days
        raw = days_until_full(points, now)
        days = bounded_days(raw, horizon)
        level = level_for(days, horizon, opts.capacity_critical_days)
        used = points[-1][1] * 100
        out.add(level, subject, f"{used:.0f}% used, {when(raw, horizon)}", days=days)
        rows[subject] = {
            "used_percent": round(used, 1),
            "days_until_full": days,
            "trend": trend(raw, horizon),
        }
    out.data["filesystems"] = rows


def index_day(name: str, created: datetime | None) -> date | None:
    """The day an index holds: the date in its name, else its creation day."""
    m = _DATE_IN_NAME.search(name)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    return created.date() if created else None


async def elasticsearch_store(ctx: TaskContext, out: Outcome) -> None:
    es = ctx.stack.elasticsearch
    indices = await es.indices()
    today = ctx.now.astimezone(UTC).date()
    first = today - timedelta(days=ctx.options.review_days)
    per_day: dict[date, int] = {}
    for i in indices:
        day = index_day(i.name, i.creation_date)
        if day is not None and first <= day < today:
            per_day[day] = per_day.get(day, 0) + i.store_size_bytes
    free = await es.fs_available_bytes()
    total = sum(i.store_size_bytes for i in indices)
    growth = sum(per_day.values()) / len(per_day) if per_day else None
    horizon = ctx.options.capacity_horizon_days
    raw = free / growth if growth and growth > 0 else None
    days = bounded_days(raw, horizon)
    level = level_for(days, horizon, ctx.options.capacity_critical_days)
    shown = f"{total / 2**30:.2f} GiB stored"
    if growth:
        shown += f", {growth / 2**20:.1f} MiB/day over {len(per_day)} days, {when(raw, horizon)}"
    else:
        shown += ", not growing"
    out.add(level, "elasticsearch", shown, days=days)
    out.data["elasticsearch"] = {
        "store_bytes": total,
        "growth_bytes_per_day": growth,
        "free_bytes": free,
        "days_until_full": days,
        "trend": trend(raw, horizon),
    }


async def prometheus_tsdb(ctx: TaskContext, out: Outcome) -> None:
    from opskit.tasks.prom_retention import gather

    r = await gather(ctx.stack.prometheus, None)
    growth, disk = r.growth_per_day_bytes, r.disk
    horizon = ctx.options.capacity_horizon_days
    raw = disk.available_bytes / growth if growth and growth > 0 and disk else None
    days = bounded_days(raw, horizon)
    level = level_for(days, horizon, ctx.options.capacity_critical_days)
    shown = f"TSDB {(r.blocks_bytes or 0) / 2**20:.0f} MiB"
    if growth:
        shown += f", {growth / 2**20:.1f} MiB/day"
    shown += f", {when(raw, horizon)}" if disk else ", disk unknown (no node exporter series)"
    out.add(level, "prometheus", shown, days=days)
    out.data["prometheus"] = {
        "growth_bytes_per_day": growth,
        "days_until_full": days,
        "trend": trend(raw, horizon) if disk else "unknown",
    }


@task(
    "quarterly",
    "capacity",
    "Capacity planning",
    "Prometheus: node exporter filesystems and TSDB growth (30 days); Elasticsearch stores",
)
async def capacity(ctx: TaskContext) -> Outcome:
    from opskit.errors import BackendUnreachable

    out = Outcome()
    for backend, part in (
        ("prometheus", filesystems),
        ("elasticsearch", elasticsearch_store),
        ("prometheus", prometheus_tsdb),
    ):
        try:
            await part(ctx, out)
        except BackendUnreachable as exc:
            if backend not in out.unreachable:
                out.unreachable.append(backend)
                out.add("critical", backend, str(exc))
    out.data["horizon_days"] = ctx.options.capacity_horizon_days
    return out
