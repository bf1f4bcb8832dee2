"""Quarterly full backup: an Elasticsearch snapshot (read back from the repository and
verified SUCCESS with no failed shard) and a Grafana backup (manifest checksums verified
on disk). The two parts are independent: one failing does not stop the other."""

from __future__ import annotations

from opskit.errors import BackendUnreachable, OpskitError
from opskit.tasks.maintenance.framework import Outcome, TaskContext, task

SNAPSHOT_TEMPLATE = "maintenance-%Y.%m.%d-%H%M%S"


async def snapshot_part(ctx: TaskContext, out: Outcome) -> None:
    from opskit.models_es import KIND_BACKUP, opskit_metadata
    from opskit.tasks.snapshots import ensure_repository, snapshot_name, take_snapshot

    cfg = ctx.settings.elasticsearch
    indices = ctx.options.backup_indices
    what = ", ".join(indices) if indices else "every index"
    if ctx.dry_run:
        name = snapshot_name(SNAPSHOT_TEMPLATE, ctx.now)
        out.add(
            "info", "elasticsearch", f"would snapshot {what} as {cfg.snapshot_repository}/{name}"
        )
        return
    es = ctx.stack.elasticsearch
    await ensure_repository(es, cfg.snapshot_repository, cfg.snapshot_location)
    name = snapshot_name(SNAPSHOT_TEMPLATE)
    ctx.note(f"snapshot {name}")
    mark = opskit_metadata(KIND_BACKUP)
    info = await take_snapshot(es, cfg.snapshot_repository, name, indices or None, metadata=mark)
    out.data["snapshot"] = {
        "repository": info.repository,
        "name": info.name,
        "state": info.state,
        "indices": len(info.indices),
        "shards_total": info.shards_total,
        "shards_failed": info.shards_failed,
    }
    if info.ok:
        out.add(
            "info",
            "elasticsearch",
            f"snapshot {name}: SUCCESS, {len(info.indices)} indices, {info.shards_total} shards",
        )
    else:
        detail = "; ".join(info.failures[:3]) or info.reason or ""
        out.add("critical", "elasticsearch", f"snapshot {name} ended {info.state} {detail}".strip())


async def grafana_part(ctx: TaskContext, out: Outcome) -> None:
    from opskit.tasks.backup_store import (
        default_dir,
        describe_missing,
        read_manifest,
        verify_checksums,
    )
    from opskit.tasks.grafana_backup import backup_grafana

    directory = default_dir(ctx.settings.backup.dir)
    if ctx.dry_run:
        out.add("info", "grafana", f"would back up Grafana to {directory}")
        return
    ctx.note("grafana backup")
    result = await backup_grafana(ctx.stack.grafana, directory, url=ctx.settings.grafana.url)
    problems = verify_checksums(result.path, read_manifest(result.path))
    out.data["grafana"] = {"path": str(result.path), "counts": result.counts}
    if problems:
        out.add("critical", "grafana", f"backup {result.name} does not verify: {problems[0]}")
    elif not result.complete:
        missing = describe_missing(result.missing)
        out.add("critical", "grafana", f"backup {result.name} incomplete: {missing}")
    else:
        counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
        out.add("info", "grafana", f"backup {result.name} verified ({counts})")


@task(
    "quarterly",
    "full_backup",
    "Full backup (Elasticsearch snapshot, Grafana)",
    "Elasticsearch snapshot API (repository elasticsearch.snapshot_repository); Grafana API",
)
async def full_backup(ctx: TaskContext) -> Outcome:
    out = Outcome()
    for backend, part in (("elasticsearch", snapshot_part), ("grafana", grafana_part)):
        try:
            await part(ctx, out)
        except BackendUnreachable as exc:
            out.unreachable.append(backend)
            out.add("critical", backend, str(exc))
        except OpskitError as exc:
            out.add("critical", backend, f"backup failed: {exc}")
    return out
