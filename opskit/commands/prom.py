"""`opskit targets`, `opskit rules`, `opskit prometheus reload`."""

from __future__ import annotations

import click

from opskit.commands.common import App, json_option, pass_app, run, writable
from opskit.errors import EXIT_OK, EXIT_WARNING
from opskit.findings import Finding, exit_code
from opskit.models import Rule, Target
from opskit.output import ago, console, esc, print_json, styled, table


@click.command()
@click.option("--down", is_flag=True, help="Only targets that are not up.")
@click.option("--job", "jobs", multiple=True, help="Only this job (repeatable).")
@json_option
@pass_app
def targets(app: App, down: bool, jobs: tuple[str, ...], as_json: bool) -> int:
    """Scrape targets, down ones first. Exit 2 (critical) when any shown target is down.
    With HA replicas (`[prometheus] urls`), one row per real target and a "replicas"
    column with each replica's view of it ("a up, b down")."""

    async def go() -> list[Target]:
        async with app.stack() as stack:
            return await stack.prometheus.targets()

    rows = run(go())
    if jobs:
        rows = [t for t in rows if t.job in jobs]
    if down:
        rows = [t for t in rows if t.health != "up"]
    rows.sort(key=lambda t: (t.health == "up", t.job, t.instance))
    if as_json:
        print_json(rows)
    else:
        clustered = any(t.replicas for t in rows)
        columns = ["job", "instance", "health", "last scrape", "duration ms", "last error"]
        if clustered:
            columns.insert(3, "replicas")
        tb = table(None, *columns, kinds={"replicas": "short"})
        for t in rows:
            cells = [
                esc(t.job),
                esc(t.instance),
                styled(t.health),
                ago(t.last_scrape),
                f"{t.last_scrape_duration * 1000:.1f}",
                esc(t.last_error),
            ]
            if clustered:
                cells.insert(3, replicas_cell(t))
            tb.add_row(*cells)
        console().print(tb)
    # a down target is critical, as in `opskit status`
    return exit_code(
        Finding("critical", f"{t.job} {t.instance}", t.last_error) for t in rows if t.health != "up"
    )


def replicas_cell(t: Target) -> str:
    """'a up, b down': each replica's health of the target, styled ("-": none answered)."""
    return ", ".join(f"{esc(n)} {styled(h)}" for n, h in t.replicas.items()) or "-"


@click.command()
@click.option("--firing", is_flag=True, help="Only alerting rules that are firing or pending.")
@click.option("--unhealthy", is_flag=True, help="Only rules whose evaluation fails.")
@json_option
@pass_app
def rules(app: App, firing: bool, unhealthy: bool, as_json: bool) -> int:
    """Alerting and recording rules with state and health. Exit 1 when any is unhealthy."""

    async def go() -> list[Rule]:
        async with app.stack() as stack:
            return await stack.prometheus.rules()

    rows = run(go())
    if firing:
        rows = [r for r in rows if r.state in ("firing", "pending")]
    if unhealthy:
        rows = [r for r in rows if r.health == "err"]
    if as_json:
        print_json(rows)
    else:
        tb = table(None, "group", "rule", "type", "state", "health", "active#", "error")
        for r in rows:
            state = {"firing": "[bold red]firing[/]", "pending": "[yellow]pending[/]"}.get(
                r.state, r.state or "-"
            )
            tb.add_row(
                esc(r.group),
                esc(r.name),
                r.type,
                state,
                styled("ok") if r.health == "ok" else styled("critical"),
                str(r.active_alerts),
                esc(r.last_error),
            )
        console().print(tb)
    return EXIT_WARNING if any(r.health == "err" for r in rows) else EXIT_OK


@click.group()
def prometheus() -> None:
    """Prometheus admin actions."""


@prometheus.command()
@pass_app
def reload(app: App) -> int:
    """Reload Prometheus's configuration and rules (POST /-/reload; needs
    --web.enable-lifecycle). With HA replicas, every replica is reloaded."""
    writable(app, "reload")

    async def go() -> None:
        async with app.stack() as stack:
            await stack.prometheus.reload()

    run(go())
    n = len(app.settings.prometheus.members)
    where = f" on all {n} replicas" if n > 1 else ""
    console().print(f"prometheus: configuration reloaded{where}")
    return EXIT_OK
