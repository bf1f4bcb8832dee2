"""`opskit backup elasticsearch`, `opskit restore elasticsearch`, `opskit snapshots ...`."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

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
from opskit.durations import format_duration, parse_duration
from opskit.errors import EXIT_OK, EXIT_WARNING, UsageError
from opskit.models import to_json
from opskit.models_es import (
    KIND_BACKUP,
    RepositoryInfo,
    SnapshotInfo,
    SnapshotProgress,
    opskit_metadata,
)
from opskit.output import console, esc, human_bytes, print_json, table, warn
from opskit.periods import parse_period
from opskit.tasks import restore as restoring
from opskit.tasks import snapshots as snaps

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient
    from opskit.plan import Plan

EXIT_SNAPSHOT_FAILED = 1

repository_option = click.option(
    "--repository", help="Snapshot repository (default: elasticsearch.snapshot_repository)."
)
wait_running_option = click.option(
    "--wait-running",
    "wait_running",
    default="5m",
    show_default=True,
    metavar="DURATION",
    help="Wait this long for a running snapshot or restore of the same indices or "
    "snapshots, then refuse (exit 75); 0: refuse at once.",
)
lose_last_copies_option = click.option(
    "--lose-last-copies",
    is_flag=True,
    help="Delete even a snapshot holding the last copy of an index (the index is lost).",
)


def wait_seconds(text: str) -> float:
    """`--wait-running` in seconds; `0` (or 0s) means do not wait."""
    if re.fullmatch(r"0+(ms|s|m|h|d)?", text.strip()):
        return 0.0
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--wait-running: {exc}") from None


def wait_notice() -> snaps.WaitFn:
    """Waiting for running work, on stderr: when what runs changes, and every 10s."""
    last: dict[str, object] = {"what": None, "at": 0.0}

    def notice(busy: list[str], waited: float, allowed: float) -> None:
        now = time.monotonic()
        if busy == last["what"] and now - float(str(last["at"])) < 10:
            return
        last.update(what=list(busy), at=now)
        more = f" (and {len(busy) - 1} more)" if len(busy) > 1 else ""
        print(
            f"opskit: waiting: {busy[0]}{more} "
            f"({format_duration(waited)} of {format_duration(allowed)})",
            file=sys.stderr,
            flush=True,
        )

    return notice


@contextmanager
def snapshot_progress(enabled: bool) -> Iterator[snaps.ProgressFn | None]:
    """A rich progress bar on stderr fed by snapshot status; nothing when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[shards]} shards  {task.fields[bytes]}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(p: SnapshotProgress) -> None:
            if p.name not in tasks:
                tasks[p.name] = bar.add_task(f"snapshot {p.name}", total=None, shards="", bytes="")
            size = f"{human_bytes(p.bytes_done)}/{human_bytes(p.bytes_total)}"
            bar.update(
                tasks[p.name],
                completed=p.shards_done,
                total=p.shards_total or None,
                shards=f"{p.shards_done}/{p.shards_total}",
                bytes=size,
            )

        yield update


def _repository(app: App, given: str | None) -> str:
    return given or app.settings.elasticsearch.snapshot_repository


def show_changes(plan: Plan[Any, Any]) -> None:
    """The plan's changes, before the question."""
    out = console()
    for change in plan.changes():
        out.print(f"would {esc(change.line())}", style="yellow")


def show_snapshot(info: SnapshotInfo) -> None:
    out = console()
    colour = "green" if info.ok else "bold red"
    took = f" in {(info.end - info.start).total_seconds():.1f}s" if info.end and info.start else ""
    out.print(
        f"snapshot [bold]{esc(info.repository)}:{esc(info.name)}[/] [{colour}]{info.state}[/]"
        f"{took}: {len(info.indices)} indices, {info.shards_total} shards, "
        f"{info.shards_failed} failed"
    )
    for failure in info.failures:
        out.print(f"  failed shard {esc(failure)}", style="red")
    if info.reason:
        out.print(f"  reason: {esc(info.reason)}", style="red")


@click.command("elasticsearch")
@repository_option
@click.option(
    "--indices", "indices", multiple=True, help="Index pattern (repeatable; default all)."
)
@click.option(
    "--name",
    "template",
    default=snaps.DEFAULT_TEMPLATE,
    show_default=True,
    help="Snapshot name; strftime fields are filled in (UTC).",
)
@click.option("--no-wait", is_flag=True, help="Start the snapshot and return.")
@click.option("--partial", is_flag=True, help="Allow a partial snapshot (unavailable shards).")
@click.option("--include-global-state", is_flag=True, help="Also snapshot cluster state.")
@json_option
@pass_app
def backup_elasticsearch(
    app: App,
    repository: str | None,
    indices: tuple[str, ...],
    template: str,
    no_wait: bool,
    partial: bool,
    include_global_state: bool,
    as_json: bool,
) -> int:
    """Take a snapshot (registering and verifying the repository first) and wait for it.
    Exit 0 on SUCCESS; 1 on PARTIAL, FAILED or INCOMPATIBLE, and when red indices stop it
    (it names them: --partial, or leave them out with --indices '-NAME')."""
    repo = _repository(app, repository)
    name = snaps.snapshot_name(template)
    location = app.settings.elasticsearch.snapshot_location

    async def go() -> tuple[RepositoryInfo, SnapshotInfo | None]:
        async with app.stack() as stack:
            es = stack.elasticsearch
            repo_info = await snaps.ensure_repository(es, repo, location)
            mark = opskit_metadata(KIND_BACKUP)
            if no_wait:
                await snaps.start_snapshot(
                    es, repo, name, indices, include_global_state, partial, mark
                )
                return repo_info, None
            with snapshot_progress(not as_json) as on_progress:
                info = await snaps.take_snapshot(
                    es, repo, name, indices, include_global_state, partial, on_progress, mark
                )
            return repo_info, info

    repo_info, info = run(go())
    if as_json:
        print_json({"repository": repo_info, "snapshot": info, "started": name})
    else:
        if repo_info.registered_now:
            console().print(f"registered repository {esc(repo)} at {esc(repo_info.location)}")
        if info is None:
            console().print(f"snapshot {esc(repo)}:{esc(name)} started")
        else:
            show_snapshot(info)
    return EXIT_OK if info is None or info.ok else EXIT_SNAPSHOT_FAILED


# ------------------------------------------------------------------ snapshots


@click.group()
def snapshots() -> None:
    """List, delete and prune Elasticsearch snapshots."""


@snapshots.command("list")
@repository_option
@json_option
@pass_app
def snapshots_list(app: App, repository: str | None, as_json: bool) -> int:
    """Snapshots in the repository, oldest first: kind (backup or archive) and the indices
    each holds the last copy of (in no other SUCCESS snapshot, not in the cluster)."""
    repo = _repository(app, repository)

    async def go() -> tuple[list[SnapshotInfo], set[str]]:
        async with app.stack() as stack:
            es = stack.elasticsearch
            return await snaps.list_snapshots(es, repo), await snaps.cluster_indices(es)

    rows, cluster = run(go())
    only = snaps.sole_copies(rows, cluster)
    if as_json:
        print_json([{**to_json(s), "last_copy": only.get(s.name, [])} for s in rows])
        return EXIT_OK
    tb = table(
        None, "snapshot", "kind", "state", "started", "indices#", "shards#", "failed#",
        "last copy of",
    )  # fmt: skip
    for s in rows:
        started = f"{s.start:%Y-%m-%d %H:%M:%S}" if s.start else "-"
        kind = f"{s.kind} ({s.policy})" if s.policy else s.kind
        tb.add_row(
            esc(s.name), esc(kind), s.state, started, str(len(s.indices)), str(s.shards_total),
            str(s.shards_failed), esc(", ".join(only.get(s.name, [])) or "-"),
        )  # fmt: skip
    console().print(tb)
    console().print(f"{len(rows)} snapshots in {esc(repo)}", style="dim")
    return EXIT_OK


@snapshots.command("delete")
@click.argument("names", nargs=-1, required=True)
@repository_option
@lose_last_copies_option
@wait_running_option
@yes_option
@json_option
@pass_app
def snapshots_delete(
    app: App,
    names: tuple[str, ...],
    repository: str | None,
    lose_last_copies: bool,
    wait_running: str,
    yes: bool,
    as_json: bool,
) -> int:
    """Delete snapshots by exact name. Refuses (exit 64) to delete a snapshot holding the
    last copy of an index unless --lose-last-copies."""
    writable(app, "deleting snapshots")
    repo = _repository(app, repository)
    snaps.DeletePlan(repo, list(names))  # exact names, before any request
    wait = wait_seconds(wait_running)

    async def go() -> snaps.DeletePlan:
        async with app.stack() as stack:
            es = stack.elasticsearch
            found = await snaps.list_snapshots(es, repo)
            cluster = await snaps.cluster_indices(es)
            plan = snaps.DeletePlan(
                repo, list(names), found, cluster, lose_last_copies, wait, wait_notice()
            )
            if plan.protected:
                first, indices = next(iter(plan.protected.items()))
                more = len(plan.protected) - 1
                raise UsageError(
                    f"snapshot {first} holds the last copy of {', '.join(indices)} (not in "
                    "the cluster, in no other SUCCESS snapshot)"
                    + (f", and {more} more named snapshot(s) do too" if more else "")
                    + ": nothing deleted; --lose-last-copies deletes it anyway"
                )
            if not (yes or as_json):
                show_changes(plan)
            confirm(plan, yes)
            await plan.apply(es)
            return plan

    plan = run(go())
    if as_json:
        print_json({"repository": repo, "deleted": plan.names, "lost": plan.lost})
    else:
        console().print(f"deleted {len(plan.names)} snapshot(s) from {esc(repo)}")
        for name, lost in plan.lost.items():
            warn(f"deleted {name}: the last copy of {', '.join(lost)}")
    return EXIT_OK


@snapshots.command("prune")
@repository_option
@click.option("--keep-last", type=click.IntRange(0), default=0, help="Keep the N newest.")
@click.option("--keep-daily", type=click.IntRange(0), default=0, help="Newest of each of N days.")
@click.option("--keep-weekly", type=click.IntRange(0), default=0, help="Newest of N ISO weeks.")
@click.option("--keep-monthly", type=click.IntRange(0), default=0, help="Newest of N months.")
@click.option("--older-than", help="Only snapshots older than this are candidates (e.g. 90d).")
@lose_last_copies_option
@wait_running_option
@dry_run_option
@yes_option
@json_option
@pass_app
def snapshots_prune(
    app: App,
    repository: str | None,
    keep_last: int,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
    older_than: str | None,
    lose_last_copies: bool,
    wait_running: str,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> int:
    """Thin backups out by tiers; keep archives (retention's snapshots) for [archive] keep.
    Never deletes the newest SUCCESS snapshot of each kind, one in progress, nor one
    holding the last copy of an index (unless --lose-last-copies)."""
    repo = _repository(app, repository)
    try:
        period = parse_period(older_than) if older_than else None
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}") from None
    archive_keep = parse_period(app.settings.archive.keep)
    wait = wait_seconds(wait_running)
    if not dry_run:
        writable(app, "pruning snapshots")

    async def plan_it(es: ElasticsearchClient) -> snaps.PrunePlan:
        found = await snaps.list_snapshots(es, repo)
        cluster = await snaps.cluster_indices(es)
        plan = snaps.plan_prune(
            repo, found, datetime.now(UTC), keep_last, keep_daily, keep_weekly, keep_monthly,
            period, cluster=cluster, archive_keep=archive_keep,
            lose_last_copies=lose_last_copies,
        )  # fmt: skip
        plan.wait_running, plan.on_wait = wait, wait_notice()
        return plan

    async def go() -> snaps.PrunePlan:
        async with app.stack() as stack:
            plan = await plan_it(stack.elasticsearch)
            if plan.empty or dry_run:
                return plan
            if not (yes or as_json):
                show_changes(plan)
            confirm(plan, yes)
            await plan.apply(stack.elasticsearch)
            return plan

    plan = run(go())
    if as_json:
        print_json({"dry_run": dry_run, **_plan_json(plan)})
        return EXIT_OK
    out = console()
    for d in plan.keep:
        out.print(f"keep    {esc(d.name)}  {d.kind}  {d.state}  ({esc(', '.join(d.reasons))})")
    verb = "would delete" if dry_run else "deleted"
    for d in plan.delete:
        lost = f"  LAST COPY of {esc(', '.join(d.last_copy))}" if d.last_copy else ""
        out.print(f"{verb}  {esc(d.name)}  {d.kind}  {d.state}{lost}", style="yellow")
    if not plan.delete:
        out.print("nothing to do")
    return EXIT_OK


def _plan_json(plan: snaps.PrunePlan) -> dict[str, object]:
    return {"repository": plan.repository, "keep": plan.keep, "delete": plan.delete}


# ------------------------------------------------------------------ restore


@click.command("elasticsearch")
@click.argument("snapshot")
@repository_option
@click.option("--indices", "patterns", multiple=True, help="Index pattern (repeatable).")
@click.option("--rename-pattern", help="Regex on index names, e.g. '(.+)'.")
@click.option("--rename-replacement", help="Replacement, e.g. 'restored-$1'.")
@click.option("--include-global-state", is_flag=True, help="Also restore cluster state.")
@click.option("--dry-run", is_flag=True, help="Show what would be restored, and conflicts.")
@click.option("--yes", is_flag=True, help="Close open indices that would be overwritten.")
@wait_running_option
@json_option
@pass_app
def restore_elasticsearch(
    app: App,
    snapshot: str,
    repository: str | None,
    patterns: tuple[str, ...],
    rename_pattern: str | None,
    rename_replacement: str | None,
    include_global_state: bool,
    dry_run: bool,
    yes: bool,
    wait_running: str,
    as_json: bool,
) -> int:
    """Restore indices from a snapshot; refuses to overwrite an open index unless renamed or
    --yes (closes it first). Waits for recovery and reports doc counts."""
    if (rename_pattern is None) != (rename_replacement is None):
        raise UsageError("--rename-pattern and --rename-replacement go together")
    repo = _repository(app, repository)
    wait = wait_seconds(wait_running)
    if not dry_run:
        writable(app, "restoring a snapshot")

    async def go() -> restoring.RestorePlan | restoring.RestoreResult:
        async with app.stack() as stack:
            es = stack.elasticsearch
            plan = await restoring.prepare_restore(
                es, repo, snapshot, list(patterns), rename_pattern, rename_replacement,
                include_global_state,
            )  # fmt: skip
            if dry_run:
                return plan
            plan.wait_running, plan.on_wait = wait, wait_notice()
            if plan.conflicts:  # restoring over an open index is the destructive part
                if not (yes or as_json):
                    _show_restore_plan(plan)
                confirm(plan, yes)
            return await plan.apply(es)

    result = run(go())
    if as_json:
        if isinstance(result, restoring.RestorePlan):
            print_json(
                {"repository": result.repository, "snapshot": result.snapshot,
                 "targets": result.targets}
            )  # fmt: skip
        else:
            print_json(result)
        return EXIT_OK
    out = console()
    if isinstance(result, restoring.RestorePlan):
        _show_restore_plan(result)
        if result.conflicts:
            warn("open indices would be overwritten: rename, or --yes to close them first")
            return EXIT_WARNING
        return EXIT_OK
    for name in result.closed_before:
        out.print(f"closed {esc(name)} before restoring over it")
    tb = table(None, "index", "from", "health", "docs")
    for i in result.indices:
        tb.add_row(esc(i.index), esc(i.source), i.health, str(i.docs))
    out.print(tb)
    return EXIT_OK


def _show_restore_plan(plan: restoring.RestorePlan) -> None:
    out = console()
    for t in plan.targets:
        note = f"  (exists, {t.existing})" if t.existing else ""
        out.print(f"would restore {esc(t.source)} as {esc(t.target)}{note}")
