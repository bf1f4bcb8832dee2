"""`opskit retention plan|apply|elasticsearch|prometheus`."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from opskit.commands.common import (
    App,
    confirm,
    dry_run_option,
    json_option,
    pass_app,
    run,
    writable,
    yes_option,
)
from opskit.commands.es_backup import (
    show_snapshot,
    snapshot_progress,
    wait_notice,
    wait_running_option,
    wait_seconds,
)
from opskit.config import RetentionPolicy
from opskit.errors import EXIT_OK, EXIT_WARNING, UsageError
from opskit.output import console, esc, print_json
from opskit.tasks import retention as ret


@click.group()
def retention() -> None:
    """Index retention policies (from config, or one-off) and Prometheus retention."""


def _policies(app: App, names: tuple[str, ...]) -> list[RetentionPolicy]:
    policies = app.settings.retention
    if not policies:
        raise UsageError("no retention policies in the config ([[retention]] tables)")
    known = {p.name for p in policies}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown policy {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return [p for p in policies if not names or p.name in names]


def show_plan(plan: ret.RetentionPlan, dry_run: bool = True) -> None:
    out = console()
    for p in plan.policies:
        first = ", snapshot first" if p.snapshot_first else ""
        age = f"date in name {p.timestring}" if p.timestring else "creation date"
        out.print(
            f"[bold]{esc(p.policy)}[/]: {esc(p.pattern)} {p.action} after {p.keep} "
            f"({age}{first}); cutoff {p.cutoff:%Y-%m-%d %H:%M} UTC"
        )
        verb = f"would {p.action}" if dry_run else p.action
        for d in p.act:
            out.print(f"  {verb}  {esc(d.index)}  {esc(d.reason)}", style="yellow")
        for d in p.skipped:
            out.print(f"  left alone  {esc(d.index)}  {esc(d.reason)}", style="dim")
        out.print(f"  keeps {len(p.kept)} younger index(es)", style="dim")
    if plan.empty:
        out.print("nothing to do")


async def _plan(app: App, policies: list[RetentionPolicy]) -> ret.RetentionPlan:
    async with app.stack() as stack:
        facts = await ret.index_facts(stack.elasticsearch, [p.pattern for p in policies])
    return ret.plan_all(policies, facts, datetime.now(UTC))


@retention.command("plan")
@click.option("--policy", "names", multiple=True, help="Only this policy (repeatable).")
@json_option
@pass_app
def plan_cmd(app: App, names: tuple[str, ...], as_json: bool) -> int:
    """Exactly which indices each policy would act on, and why."""
    plan = run(_plan(app, _policies(app, names)))
    if as_json:
        print_json({"nothing_to_do": plan.empty, **_plan_data(plan)})
    else:
        show_plan(plan)
    return EXIT_OK


def _plan_data(plan: ret.RetentionPlan) -> dict[str, object]:
    return {"now": plan.now, "policies": plan.policies}


def execute(
    app: App,
    policies: list[RetentionPolicy],
    dry_run: bool,
    yes: bool,
    as_json: bool,
    wait_running: str = "5m",
) -> int:
    """Plan, confirm, apply; shared by `apply` and the one-off `elasticsearch` form. A
    snapshot or restore of the indices still running after `wait_running` stops it before
    it deletes or closes anything (exit 75)."""
    wait = wait_seconds(wait_running)
    if not dry_run:
        writable(app, "applying retention")
    repository = app.settings.elasticsearch.snapshot_repository
    location = app.settings.elasticsearch.snapshot_location

    async def go() -> tuple[ret.RetentionPlan, ret.ApplyResult | None]:
        async with app.stack() as stack:
            es = stack.elasticsearch
            facts = await ret.index_facts(es, [p.pattern for p in policies])
            plan = ret.plan_all(policies, facts, datetime.now(UTC), repository, location)
            plan.wait_running, plan.on_wait = wait, wait_notice()
            if dry_run or plan.empty:
                return plan, None
            if not as_json:
                show_plan(plan, dry_run=True)
            confirm(plan, yes)
            with snapshot_progress(not as_json) as on_progress:
                return plan, await plan.apply(es, on_progress)

    plan, result = run(go())
    if as_json:
        print_json(
            {"dry_run": dry_run, "nothing_to_do": plan.empty, **_plan_data(plan), "result": result}
        )
    elif result is None:
        show_plan(plan, dry_run=True)
    else:
        _show_result(result)
    return EXIT_OK if result is None or result.ok else EXIT_WARNING


def _show_result(result: ret.ApplyResult) -> None:
    out = console()
    for o in result.outcomes:
        if not o.planned:
            continue
        if o.snapshot is not None:
            show_snapshot(o.snapshot)
        if o.snapshot_error:
            out.print(f"{esc(o.policy)}: snapshot failed: {esc(o.snapshot_error)}", style="red")
        if o.not_protected:
            out.print(
                f"{esc(o.policy)}: left alone (no verified snapshot): "
                f"{esc(', '.join(o.not_protected))}",
                style="red",
            )
        past = {"delete": "deleted", "close": "closed", "forcemerge": "force-merged"}[o.action]
        out.print(f"{esc(o.policy)}: {past} {len(o.done)} index(es)")
        for index, why in o.failed.items():
            out.print(f"  failed {esc(index)}: {esc(why)}", style="red")


@retention.command("apply")
@click.option("--policy", "names", multiple=True, help="Only this policy (repeatable).")
@wait_running_option
@dry_run_option
@yes_option
@json_option
@pass_app
def apply_cmd(
    app: App, names: tuple[str, ...], wait_running: str, dry_run: bool, yes: bool, as_json: bool
) -> int:
    """Apply the configured policies. Exit 1 when anything planned was not done."""
    return execute(app, _policies(app, names), dry_run, yes, as_json, wait_running)


@retention.command("elasticsearch")
@click.option("--pattern", required=True, help="Index pattern, e.g. 'logs-postfix-*'.")
@click.option("--older-than", required=True, help="Age, e.g. 30d, 2w, 6mo, 1y.")
@click.option(
    "--action",
    type=click.Choice(["delete", "close", "forcemerge"]),
    default="delete",
    show_default=True,
)
@click.option(
    "--timestring",
    default="%Y.%m.%d",
    show_default=True,
    help="Date in the index name; '' to use the creation date.",
)
@click.option("--snapshot-first", is_flag=True, help="Act only on indices in a SUCCESS snapshot.")
@wait_running_option
@dry_run_option
@yes_option
@json_option
@pass_app
def one_off(
    app: App,
    pattern: str,
    older_than: str,
    action: str,
    timestring: str,
    snapshot_first: bool,
    wait_running: str,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> int:
    """One-off retention without a configured policy."""
    from pydantic import ValidationError

    try:
        policy = RetentionPolicy(
            name="one-off",
            pattern=pattern,
            keep=older_than,
            timestring=timestring or None,
            action=action,  # type: ignore[arg-type]
            snapshot_first=snapshot_first,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise UsageError(f"{err['loc'][0]}: {err['msg'].removeprefix('Value error, ')}") from None
    return execute(app, [policy], dry_run, yes, as_json, wait_running)


@retention.command("prometheus")
@click.option("--budget", help="Disk budget, e.g. 50GiB (default: prometheus.disk_budget).")
@json_option
@pass_app
def prometheus_cmd(app: App, budget: str | None, as_json: bool) -> int:
    """Prometheus retention: flags, TSDB size, growth, free disk and the retention that
    fits the disk budget (retention is a start-up flag; this prints the one to set)."""
    from opskit.commands.prom_retention import report

    return report(app, budget, as_json)
