"""`opskit status`, `opskit health`, `opskit queues`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import click

from opskit.commands.common import App, json_option, pass_app, run
from opskit.errors import BackendError
from opskit.findings import Finding, exit_code
from opskit.models import QueueDepth, ServiceHealth
from opskit.output import console, esc, number, print_json, styled, table
from opskit.stack import Stack, collect
from opskit.summary import Summary, readings_from_status, summarize


async def _status(app: App) -> Summary:
    async with app.stack() as stack:
        return summarize(app.settings.context, readings_from_status(await collect(stack)))


@click.command()
@json_option
@click.option("--context", "contexts", metavar="A[,B...]", help="Context(s): several, one report.")
@click.option("--all-contexts", is_flag=True, help="Every context of the config, one report.")
@pass_app
def status(
    app: App, as_json: bool = False, contexts: str | None = None, all_contexts: bool = False
) -> int:
    """One summary of the whole stack.

    Exit 0 all good, 1 warnings, 2 critical findings, 3 when Prometheus, Alertmanager,
    Elasticsearch or Grafana could not be read (the others are still reported). With
    several contexts: one row each, and the worst context's exit code."""
    from opskit.commands.fleet import fleet_status, several

    names = several(app, contexts, all_contexts)
    if names is not None:
        return fleet_status(app, names, as_json)
    summary = run(_status(app))
    if as_json:
        print_json(summary)
        return summary.exit_code
    out = console()
    out.print(f"[bold]context[/] {esc(summary.context)}")
    from opskit.errorclass import classify, headline
    from opskit.output import Brief

    src = table("Sources", "source", "state", "latency ms", kinds={"state": "error"})
    for name, s in summary.sources.items():
        state = "ok" if s.ok else f"[bold red]{esc(s.error or '')}[/]"
        src.add_row(name, state, f"{s.latency_ms:.0f}")
    out.print(src)
    if summary.targets:
        t = summary.targets
        out.print(
            f"[bold]targets[/] {t.up} up, "
            f"{styled('down') if t.down else '0 down'}"
            f"{'' if not t.down else ' ' + str(t.down)}"
        )
    if summary.alerts:
        a = summary.alerts
        sev = ", ".join(f"{n} {styled(k)}" for k, n in a.by_severity.items())
        out.print(
            f"[bold]alerts[/] {a.firing} firing ({sev or 'none'}), "
            f"{a.silenced} silenced, {a.inhibited} inhibited"
        )
    if summary.elasticsearch:
        e = summary.elasticsearch
        counts = ", ".join(f"{n} {styled(k)}" for k, n in e.indices.items())
        out.print(
            f"[bold]elasticsearch[/] {esc(e.cluster)} {styled(e.status)}, "
            f"{e.nodes} node(s), indices: {counts or 'none'}"
        )
    if summary.grafana:
        out.print(f"[bold]grafana[/] {esc(summary.grafana['version'])}")
    from opskit.summary import member_reason

    for c in summary.clusters:  # one line per clustered backend: its members
        members = ", ".join(
            f"{m.url} {m.detail}".strip() if m.ok else f"{m.url} down ({member_reason(m)})"
            for m in c.members
        )
        state = styled("warning") if c.degraded else styled("ok")
        out.print(
            f"[bold]{c.backend} cluster[/] {c.headline} {state}: {esc(members)}", soft_wrap=True
        )
    if summary.findings:
        ft = table("Findings", "severity", "source", "finding")
        for f in summary.findings:
            finding = esc(f"{f.subject}: {f.summary}")
            # a down target's "down: <Go error>": its class first on a narrow terminal
            problem = f.summary.removeprefix("down: ")
            if f.source in ("targets", "services") and classify(problem).kind != "other":
                brief = f"{f.subject}: {f.summary[: len(f.summary) - len(problem)]}"
                finding = Brief(finding, esc(brief + headline(problem)))
            ft.add_row(styled(f.severity), f.source, finding)
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
    """Every service's health endpoint, with latency; with [tracing], Jaeger's query API,
    the collector's health, its OTLP receivers and its own span metrics against their
    thresholds. Exit 2 when any fails (or is critical), 1 when one is degraded."""

    async def go() -> list[ServiceHealth]:
        async with app.stack() as stack:
            return await _health(stack)

    results = run(go())
    if as_json:
        print_json(results)
    else:
        from opskit.errorclass import headline
        from opskit.output import Brief

        t = table(
            None,
            "service",
            "state",
            "status",
            "latency ms",
            "url / error",
            kinds={"url / error": "text"},
        )
        for r in results:
            state = (
                "down"
                if not r.ok
                else "critical"
                if r.severity == "critical"
                else "degraded"
                if r.degraded
                else "up"
            )
            problem = r.error if not r.ok else r.detail()
            # narrow terminal: the error by its class, or the degraded detail, not the URL
            shown = esc(r.url)
            if problem:
                short = headline(problem) if not r.ok else problem
                shown = Brief(esc(f"{r.url}: {problem}"), esc(short))
            t.add_row(
                r.name,
                styled(state),
                str(r.status_code or "-"),
                f"{r.latency_ms:.0f}" if r.latency_ms is not None else "-",
                shown,
            )
        console().print(t)
    return exit_code(
        Finding(r.level, r.name, r.error or r.detail()) for r in results if r.level != "ok"
    )


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
    return exit_code(Finding(q.state, q.queue, q.series) for q in depths)


def _by_queue(depths: list[QueueDepth]) -> dict[str, list[QueueDepth]]:
    grouped: dict[str, list[QueueDepth]] = {}
    for q in depths:
        grouped.setdefault(q.queue, []).append(q)
    return grouped
