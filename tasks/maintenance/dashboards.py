"""Weekly dashboard spot-check: every Prometheus panel query of every Grafana dashboard,
run against Prometheus over the last hour. A query that errors fails, one that returns
no data warns, a datasource the dashboard names but Grafana does not have fails.

Grafana's template variables are filled in the way Grafana would with "All" selected:
`$__rate_interval`/`$__interval` become a step, a label matcher on a variable becomes
`=~".+"` unless the variable has a concrete current value."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from opskit.errors import BackendUnreachable, BadResponse
from opskit.models_grafana import Datasource
from opskit.tasks.maintenance.framework import Outcome, TaskContext, task

WINDOW = timedelta(hours=1)
STEP = 60.0
BUILTINS = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__interval_ms": "60000",
    "__range_ms": "3600000",
}
SPECIAL_DS = {"-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana", "dashboard"}
_VAR = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


@dataclass(slots=True)
class PanelQuery:
    dashboard: str  # uid
    title: str  # dashboard title
    panel: str
    ref: str
    expr: str
    datasource: Any  # as the panel/target names it: dict, name string or None


def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows and legacy `rows`."""
    stack: list[dict[str, Any]] = list(model.get("panels") or [])
    for row in model.get("rows") or []:
        stack.extend(row.get("panels") or [])
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels") or [])
        yield panel


def queries(uid: str, model: dict[str, Any]) -> Iterator[PanelQuery]:
    title = str(model.get("title", uid))
    for panel in panels(model):
        for target in panel.get("targets") or []:
            expr = str(target.get("expr") or "").strip()
            if not expr or target.get("hide"):
                continue
            yield PanelQuery(
                uid,
                title,
                str(panel.get("title") or f"panel {panel.get('id', '?')}"),
                str(target.get("refId", "")),
                expr,
                target.get("datasource") or panel.get("datasource"),
            )


def variable_values(model: dict[str, Any]) -> dict[str, str | None]:
    """Template variables and their concrete current value (None: All / several / none)."""
    out: dict[str, str | None] = {}
    for var in (model.get("templating") or {}).get("list") or []:
        current = (var.get("current") or {}).get("value")
        concrete = current if isinstance(current, str) and current not in ("", "$__all") else None
        out[str(var.get("name"))] = concrete
    return out


def expand(expr: str, variables: dict[str, str | None]) -> str:
    """Pure: the expression with variables filled in (see the module docstring)."""

    def in_matcher(m: re.Match[str]) -> str:
        label, op, value = m[1], m[2], m[3]
        if not _VAR.search(value):
            return m[0]
        unknown = False

        def value_of(v: re.Match[str]) -> str:
            nonlocal unknown
            name = v[1] or v[2] or v[3]
            if name in BUILTINS:
                return BUILTINS[name]
            known = variables.get(name)
            if known is None:
                unknown = True
                return ".+"
            return known

        filled = _VAR.sub(value_of, value)
        if unknown:
            op = "!~" if op in ("!=", "!~") else "=~"
        return f'{label}{op}"{filled}"'

    expr = _MATCHER.sub(in_matcher, expr)

    def rest(v: re.Match[str]) -> str:
        name = v[1] or v[2] or v[3]
        return BUILTINS.get(name) or variables.get(name) or "5m"

    return _VAR.sub(rest, expr)


def datasource_ref(ds: Any) -> tuple[str | None, str | None]:
    """(uid or name, type) of a panel's datasource reference."""
    if isinstance(ds, dict):
        return (str(ds["uid"]) if ds.get("uid") else None), ds.get("type")
    if isinstance(ds, str) and ds:
        return ds, None
    return None, None


@task(
    "weekly",
    "dashboards",
    "Dashboard spot-check",
    "Grafana /api/search, /api/dashboards/uid/*, /api/datasources; Prometheus query_range",
)
async def dashboard_spot_check(ctx: TaskContext) -> Outcome:
    grafana = ctx.stack.grafana
    wanted = ctx.options.dashboards
    uids = wanted or [h.uid for h in await grafana.search_all("dash-db")]
    sources = await grafana.datasources()
    by_ref: dict[str, Datasource] = {ref: d for d in sources for ref in (d.uid, d.name) if ref}
    default = next((d for d in sources if d.is_default), None)
    out = Outcome()
    checks: list[tuple[PanelQuery, str]] = []
    for uid in uids:
        found_dash = await grafana.find_dashboard(uid)
        if found_dash is None:
            out.add("critical", uid, "dashboard not found (maintenance.dashboards)")
            continue
        model = found_dash.model
        variables = variable_values(model)
        for q in queries(uid, model):
            ref, kind = datasource_ref(q.datasource)
            subject = f"{q.title} / {q.panel} [{q.ref}]"
            if ref and (ref.startswith("$") or ref in SPECIAL_DS):
                kind = kind or "prometheus"  # a datasource variable: the default
            elif ref and ref not in by_ref:
                out.add("critical", subject, f"datasource {ref!r} does not exist", dashboard=uid)
                continue
            found = by_ref.get(ref) if ref else default
            kind = kind or (found.type if found else None)
            if kind == "prometheus":
                checks.append((q, expand(q.expr, variables)))
    sem = asyncio.Semaphore(8)

    async def run(q: PanelQuery, expr: str) -> None:
        subject = f"{q.title} / {q.panel} [{q.ref}]"
        async with sem:
            try:
                series = await ctx.stack.prometheus.query_range(
                    expr, ctx.now - WINDOW, ctx.now, STEP
                )
            except BackendUnreachable:
                raise
            except BadResponse as exc:
                out.add("critical", subject, f"query error: {exc.reason}", dashboard=q.dashboard)
                return
        if not series:
            out.add("warning", subject, "no data in the last hour", dashboard=q.dashboard)
        else:
            out.add("info", subject, f"{len(series)} series", dashboard=q.dashboard)

    await asyncio.gather(*(run(q, e) for q, e in checks))
    out.findings.sort(key=lambda f: (f.evidence.get("dashboard", ""), f.subject))
    out.data = {"dashboards": len(uids), "queries": len(checks)}
    bad = [f for f in out.findings if f.actionable]
    out.summary = "" if bad else f"{len(checks)} panel queries on {len(uids)} dashboards ok"
    return out
