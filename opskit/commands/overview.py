"""`opskit status`, `opskit health`, `opskit queues`."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import click

from opskit.commands.common import App, json_option, pass_app, run
from opskit.errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNREACHABLE, EXIT_WARNING, BackendError
from opskit.models import QueueDepth, ServiceHealth, Severity
from opskit.output import console, esc, number, print_json, styled, table
from opskit.stack import Stack, StackStatus, collect


@dataclass
class Finding:
    severity: Severity
    source: str
    message: str


@dataclass
class Summary:
    context: str
    sources: dict[str, dict[str, Any]]
    targets: dict[str, Any] | None
    alerts: dict[str, Any] | None
    queues: list[QueueDepth] | None
    elasticsearch: dict[str, Any] | None
    grafana: dict[str, Any] | None
    services: list[ServiceHealth]
    findings: list[Finding] = field(default_factory=list)
    exit_code: int = EXIT_OK


def summarize(context: str, st: StackStatus) -> Summary:
    """Judge the collected state: findings and the exit code of `opskit status`."""
    findings: list[Finding] = []
    sources: dict[str, dict[str, Any]] = {}
    for name, src in (
        ("prometheus", st.targets),
        ("alertmanager", st.alerts),
        ("elasticsearch", st.cluster),
        ("grafana", st.grafana),
    ):
        sources[name] = {
            "ok": src.ok,
            "error": f"{src.error.title}: {src.error.reason}" if src.error else None,
            "latency_ms": round(src.latency_ms, 1),
        }
        if src.error:
            findings.append(Finding("critical", name, f"{src.error.title}: {src.error.reason}"))

    targets = None
    if st.targets.value is not None:
        down = [t for t in st.targets.value if t.health != "up"]
        targets = {
            "total": len(st.targets.value),
            "up": len(st.targets.value) - len(down),
            "down": len(down),
            "down_targets": [
                {"job": t.job, "instance": t.instance, "last_error": t.last_error} for t in down
            ],
        }
        for t in down:
            findings.append(
                Finding("critical", "targets", f"{t.job} {t.instance} down: {t.last_error}")
            )

    alerts = None
    if st.alerts.value is not None:
        firing = [a for a in st.alerts.value if a.state == "active"]
        by_sev = Counter(a.severity for a in firing)
        alerts = {
            "firing": len(firing),
            "by_severity": dict(sorted(by_sev.items())),
            "silenced": sum(a.silenced for a in st.alerts.value),
            "inhibited": sum(a.inhibited for a in st.alerts.value),
        }
        for a in firing:
            sev: Severity = "critical" if a.severity == "critical" else "warning"
            summary = a.annotations.get("summary", "")
            findings.append(Finding(sev, "alerts", f"{a.alertname} firing {summary}".strip()))

    if st.queues.error and not st.targets.error:
        findings.append(Finding("warning", "queues", str(st.queues.error)))
    for q in st.queues.value or []:
        if q.note:  # no value: say what was looked for
            findings.append(Finding("warning", "queues", f"{q.queue}: no data ({q.note})"))
        elif q.state != "ok":
            limit = q.critical if q.state == "critical" and q.critical else q.warning
            findings.append(
                Finding(q.state, "queues", f"{q.queue} {q.series}: {number(q.value)} > {limit:g}")
            )

    es = None
    if st.cluster.value is not None:
        health = st.cluster.value
        by_health = Counter(i.health or "closed" for i in st.indices.value or [])
        es = {
            "cluster": health.cluster_name,
            "status": health.status,
            "nodes": health.number_of_nodes,
            "unassigned_shards": health.unassigned_shards,
            "indices": dict(sorted(by_health.items())),
        }
        if health.status == "red":
            findings.append(Finding("critical", "elasticsearch", "cluster health is red"))
        elif health.status == "yellow":
            findings.append(Finding("warning", "elasticsearch", "cluster health is yellow"))

    for svc in st.services:
        if not svc.ok:
            findings.append(Finding("critical", "services", f"{svc.name}: {svc.error}"))
        elif svc.degraded:
            findings.append(Finding("warning", "services", f"{svc.name}: {svc.detail()}"))

    if any(not s["ok"] for s in sources.values()):
        code = EXIT_UNREACHABLE
    elif any(f.severity == "critical" for f in findings):
        code = EXIT_CRITICAL
    elif findings:
        code = EXIT_WARNING
    else:
        code = EXIT_OK
    return Summary(
        context,
        sources,
        targets,
        alerts,
        st.queues.value,
        es,
        st.grafana.value,
        st.services,
        findings,
        code,
    )


async def _status(app: App) -> Summary:
    async with app.stack() as stack:
        return summarize(app.settings.context, await collect(stack))


@click.command()
@json_option
@pass_app
def status(app: App, as_json: bool = False) -> int:
    """One summary of the whole stack.

    Exit 0 all good, 1 warnings, 2 critical findings, 3 when Prometheus, Alertmanager,
    Elasticsearch or Grafana could not be read (the others are still reported)."""
    summary = run(_status(app))
    if as_json:
        print_json(summary)
        return summary.exit_code
    out = console()
    out.print(f"[bold]context[/] {esc(summary.context)}")
    src = table("Sources", "source", "state", "latency ms")
    for name, s in summary.sources.items():
        state = "ok" if s["ok"] else f"[bold red]{esc(s['error'])}[/]"
        src.add_row(name, state, f"{s['latency_ms']:.0f}")
    out.print(src)
    if summary.targets:
        t = summary.targets
        out.print(
            f"[bold]targets[/] {t['up']} up, "
            f"{styled('down') if t['down'] else '0 down'}"
            f"{'' if not t['down'] else ' ' + str(t['down'])}"
        )
    if summary.alerts:
        sev = ", ".join(f"{n} {styled(k)}" for k, n in summary.alerts["by_severity"].items())
        out.print(
            f"[bold]alerts[/] {summary.alerts['firing']} firing ({sev or 'none'}), "
            f"{summary.alerts['silenced']} silenced, "
            f"{summary.alerts['inhibited']} inhibited"
        )
    if summary.elasticsearch:
        e = summary.elasticsearch
        counts = ", ".join(f"{n} {styled(k)}" for k, n in e["indices"].items())
        out.print(
            f"[bold]elasticsearch[/] {esc(e['cluster'])} {styled(e['status'])}, "
            f"{e['nodes']} node(s), indices: {counts or 'none'}"
        )
    if summary.grafana:
        out.print(f"[bold]grafana[/] {esc(summary.grafana['version'])}")
    if summary.findings:
        ft = table("Findings", "severity", "source", "finding")
        for f in summary.findings:
            ft.add_row(styled(f.severity), f.source, esc(f.message))
        out.print(ft)
    else:
        out.print("[green]no findings[/]")
    return summary.exit_code


async def _timed(name: str, url: str, coro: Awaitable[object]) -> ServiceHealth:
    t0 = time.perf_counter()
    try:
        await coro
    except BackendError as exc:
        return ServiceHealth(name, url, False, None, None, exc.reason)
    return ServiceHealth(name, url, True, 200, round((time.perf_counter() - t0) * 1000, 1), "")


async def _health(stack: Stack) -> list[ServiceHealth]:
    """The backends' own health endpoints (through their configured clients, so auth and
    TLS apply) plus every configured service."""
    from opskit.clients.health import check
    from opskit.config import Service

    s = stack.settings
    core = asyncio.gather(
        _timed("prometheus", f"{s.prometheus.url}/-/healthy", stack.prometheus.healthy()),
        _timed("alertmanager", f"{s.alertmanager.url}/-/healthy", stack.alertmanager.healthy()),
        _timed(
            "elasticsearch",
            f"{s.elasticsearch.url}/_cluster/health",
            stack.elasticsearch.cluster_health(),
        ),
        _timed("grafana", f"{s.grafana.url}/api/health", stack.grafana.health()),
        check(stack.health_http, Service(name="pushgateway", url=f"{s.pushgateway.url}/-/healthy")),
    )
    backends, services = await asyncio.gather(core, stack.services())
    return [*backends, *services]


@click.command()
@json_option
@pass_app
def health(app: App, as_json: bool = False) -> int:
    """Every service's health endpoint, with latency. Exit 2 when any fails."""

    async def go() -> list[ServiceHealth]:
        async with app.stack() as stack:
            return await _health(stack)

    results = run(go())
    if as_json:
        print_json(results)
    else:
        t = table(None, "service", "state", "status", "latency ms", "url / error")
        for r in results:
            state = "down" if not r.ok else "degraded" if r.degraded else "up"
            problem = r.error if not r.ok else r.detail()
            t.add_row(
                r.name,
                styled(state),
                str(r.status_code or "-"),
                f"{r.latency_ms:.0f}" if r.latency_ms is not None else "-",
                esc(f"{r.url}: {problem}" if problem else r.url),
            )
        console().print(t)
    if not all(r.ok for r in results):
        return EXIT_CRITICAL
    return EXIT_WARNING if any(r.degraded for r in results) else EXIT_OK


@click.command()
@json_option
@pass_app
def queues(app: App, as_json: bool = False) -> int:
    """Queue depths (PromQL from config) against their thresholds.

    Exit 0 all below, 1 above a warning threshold, 2 above a critical one."""

    async def go() -> list[QueueDepth]:
        async with app.stack() as stack:
            return await stack.queues()

    depths = run(go())
    if as_json:
        print_json(depths)
    else:
        t = table(None, "queue", "series", "value", "warning", "critical", "state")
        for q in depths:
            t.add_row(
                q.queue,
                esc(q.series),
                number(q.value),
                f"{q.warning:g}",
                f"{q.critical:g}" if q.critical is not None else "-",
                styled(q.state),
            )
        console().print(t)
        for name, rows in _by_queue(depths).items():  # which exporter and query each used
            first = rows[0]
            if first.note:
                console().print(f"{esc(name)}: {esc(first.note)}", soft_wrap=True)
            else:
                source = f"{first.exporter}: " if first.exporter else ""
                console().print(f"{esc(name)}: {esc(source + first.query)}", soft_wrap=True)
    states = {q.state for q in depths}
    return EXIT_CRITICAL if "critical" in states else EXIT_WARNING if "warning" in states else 0


def _by_queue(depths: list[QueueDepth]) -> dict[str, list[QueueDepth]]:
    grouped: dict[str, list[QueueDepth]] = {}
    for q in depths:
        grouped.setdefault(q.queue, []).append(q)
    return grouped
