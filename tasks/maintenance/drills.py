"""Quarterly restore drills (opskit.tasks.drill): the newest SUCCESS snapshot restored
under a scratch prefix and compared with the live indices; the newest local Grafana
backup restored into a scratch organisation and compared with the backup. Registered
after full_backup, so they drill what it just made. Published like every task, so the
lab rule OpskitDrillNotRunning fires when no drill has succeeded for 100 days.

A drill that cannot run (a read-only context, credentials that cannot create an
organisation) is `skipped` with the reason: it pushes no success, so it is never silent."""

from __future__ import annotations

from opskit.tasks.maintenance.framework import Outcome, Skip, TaskContext, task


def _writable(ctx: TaskContext) -> None:
    if ctx.settings.read_only:
        raise Skip(f"context {ctx.settings.context!r} is read-only: the drill writes scratch data")


@task(
    "quarterly",
    "drill_elasticsearch",
    "Restore drill: Elasticsearch snapshot",
    "Elasticsearch snapshot API (newest SUCCESS snapshot of elasticsearch.snapshot_repository), "
    "restored as drill-<run>-<index>, _count and _mapping of the copies and the live indices",
)
async def drill_elasticsearch(ctx: TaskContext) -> Outcome:
    from opskit.tasks.drill import DEFAULT_PREFIX
    from opskit.tasks.drill import drill_elasticsearch as drill

    repository = ctx.settings.elasticsearch.snapshot_repository
    if ctx.dry_run:
        out = Outcome()
        out.add(
            "info",
            "elasticsearch",
            f"would restore the newest SUCCESS snapshot of {repository} as "
            f"{DEFAULT_PREFIX}<run>-<index>, compare, and delete the copies",
        )
        return out
    _writable(ctx)
    report = await drill(ctx.stack.elasticsearch, repository, note=ctx.note)
    out = Outcome(findings=list(report.findings))
    out.data = {
        "repository": report.repository,
        "snapshot": report.snapshot,
        "run_id": report.run_id,
        "indices": {c.index: c.status for c in report.checks},
        "cleaned": len(report.cleaned),
        "removed_leftovers": report.removed_leftovers,
    }
    return out


@task(
    "quarterly",
    "drill_grafana",
    "Restore drill: Grafana backup",
    "the newest local Grafana backup ([backup] dir); Grafana /api/orgs (server admin), "
    "the backup restored into organisation opskit-drill-<run> and read back",
)
async def drill_grafana(ctx: TaskContext) -> Outcome:
    from opskit.tasks.drill import drill_grafana as drill

    if ctx.dry_run:
        out = Outcome()
        out.add(
            "info",
            "grafana",
            "would restore the newest Grafana backup into a scratch organisation, "
            "compare, and delete it",
        )
        return out
    _writable(ctx)
    report = await drill(ctx.stack.grafana, ctx.settings, log=ctx.stack.log, note=ctx.note)
    if report.skipped:
        raise Skip(f"drill skipped: {report.skipped}")
    out = Outcome(findings=list(report.findings))
    out.data = {
        "backup": report.backup,
        "org": report.org,
        "org_deleted": report.org_deleted,
        "compared": report.compared,
        "removed_leftovers": report.removed_leftovers,
    }
    return out
