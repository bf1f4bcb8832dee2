"""Monthly performance analysis: each `[baselines.NAME]` expression, averaged over the
review window (a 5-minute subquery: hour-aligned steps would see nothing of a server up
for less than an hour), against its expected value. Worse than expected by
more than `tolerance` warns, by more than twice that fails; absent metrics are a "no
data" finding, never a crash."""

from __future__ import annotations

import asyncio
import math

from opskit.config import Baseline
from opskit.errors import BadResponse
from opskit.findings import Severity
from opskit.tasks.maintenance.framework import Outcome, Skip, TaskContext, task


def judge(value: float, b: Baseline) -> tuple[Severity, float]:
    """Pure: (level, how much worse than expected as a ratio; negative is better)."""
    if b.expected == 0:
        worse = value if not b.higher_is_better else -value
    elif b.higher_is_better:
        worse = (b.expected - value) / abs(b.expected)
    else:
        worse = (value - b.expected) / abs(b.expected)
    if worse > 2 * b.tolerance:
        return "critical", worse
    if worse > b.tolerance:
        return "warning", worse
    return "info", worse


@task(
    "monthly",
    "performance",
    "Performance analysis",
    "Prometheus: every [baselines] expression averaged over the review window",
)
async def performance(ctx: TaskContext) -> Outcome:
    baselines = {k: b for k, b in ctx.settings.baselines.items() if b.enabled}
    if not baselines:
        raise Skip("no baselines configured ([baselines.NAME])")
    window = f"[{ctx.options.review_days}d:5m]"
    out = Outcome()
    rows: dict[str, dict[str, object]] = {}

    async def one(name: str, b: Baseline) -> None:
        found = await ctx.stack.resolve(b.query, b.signal, f"{ctx.options.review_days}d")
        if found.query is None:
            out.add("warning", name, f"no data: no exporter found (looked for {found.looked_for})")
            rows[name] = {"expected": b.expected, "value": None, "looked_for": found.looked_for}
            return
        expr = f"avg_over_time(({found.query}){window})"
        try:
            samples = await ctx.stack.prometheus.query(expr, ctx.now)
        except BadResponse as exc:
            out.add("critical", name, f"query error: {exc.reason}")
            rows[name] = {"expected": b.expected, "value": None, "error": exc.reason}
            return
        values = [s.value for s in samples if math.isfinite(s.value)]
        if not values:
            out.add("warning", name, f"no data: {found.query} returned nothing")
            rows[name] = {"expected": b.expected, "value": None, "query": found.query}
            return
        value = max(values) if not b.higher_is_better else min(values)
        level, worse = judge(value, b)
        unit = b.unit
        shown = f"{value:.4g}{unit} against a baseline of {b.expected:g}{unit}"
        if level == "info":
            out.add(level, name, shown)
        else:
            out.add(level, name, f"{shown}: {worse:.0%} worse", value=value)
        rows[name] = {
            "expected": b.expected,
            "value": round(value, 6),
            "worse": round(worse, 4),
            "query": found.query,
            "exporter": found.exporter,
        }

    await asyncio.gather(*(one(n, b) for n, b in baselines.items()))
    out.findings.sort(key=lambda f: f.subject)
    out.data = {"window_days": ctx.options.review_days, "baselines": dict(sorted(rows.items()))}
    return out
