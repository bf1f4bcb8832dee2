"""`opskit backup grafana` and `opskit restore grafana` (docs/grafana-backup.md)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

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
from opskit.config import Settings
from opskit.errors import EXIT_CRITICAL, AuthFailed
from opskit.output import console, esc, human_bytes, print_json, table
from opskit.stack import Stack
from opskit.tasks.backup_store import default_dir, describe_missing, missing_objects, resolve
from opskit.tasks.grafana_backup import GrafanaBackupResult, Progress, backup_grafana
from opskit.tasks.grafana_restore import (
    RestorePlan,
    RestoreResult,
    load_backup,
    parse_folder_map,
    plan_restore,
)

T = TypeVar("T")

org_option = click.option(
    "--org-id",
    type=click.IntRange(min=1),
    default=None,
    help="Organisation to work on (X-Grafana-Org-Id); default: the credentials' own.",
)


def describe_credentials(settings: Settings) -> str:
    cfg = settings.grafana
    if cfg.token is not None:
        return "a service-account token (Bearer)"
    if cfg.username and cfg.password is not None:
        return f"basic auth as user {cfg.username!r}"
    return "no credentials (set GRAFANA_USER/GRAFANA_PASSWORD or grafana.token)"


def with_org(settings: Settings, org_id: int | None) -> Settings:
    if org_id is None:
        return settings
    grafana = settings.grafana.model_copy(update={"org_id": org_id})
    return settings.model_copy(update={"grafana": grafana})


def on_grafana(app: App, settings: Settings, work: Callable[[Stack], Awaitable[T]]) -> T:
    """Run `work` against Grafana; a 401/403 names the credentials that were used."""

    async def go() -> T:
        async with Stack(settings, app.request_log()) as stack:
            return await work(stack)

    try:
        return run(go())
    except AuthFailed as exc:
        raise AuthFailed(
            "grafana", f"{exc.reason} (used {describe_credentials(settings)})"
        ) from None


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on stderr, fed by the task's (phase, done, total) callback."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("grafana: reading folders", total=None)

    def update(phase: str, done: int, total: int) -> None:
        bar.update(task, description=f"grafana: {phase}", completed=done, total=total or None)

    with bar:
        yield update


@click.command("grafana")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to put the backup in (default: [backup] dir, else the XDG data dir).",
)
@org_option
@click.option("--page-size", type=click.IntRange(1, 5000), default=1000, hidden=True)
@json_option
@pass_app
def backup_grafana_cmd(
    app: App, out: Path | None, org_id: int | None, page_size: int, as_json: bool
) -> int:
    """Back up every folder, dashboard and data source (without secrets) of one org.

    Exit 0 complete; 2 finished but incomplete (objects Grafana failed to give are named
    in the manifest's `missing`)."""
    settings = with_org(app.settings, org_id)
    directory = out or default_dir(settings.backup.dir)
    with progress_bar(not as_json) as progress:
        result: GrafanaBackupResult = on_grafana(
            app,
            settings,
            lambda stack: backup_grafana(
                stack.grafana,
                directory,
                progress=progress,
                page_size=page_size,
                url=settings.grafana.url,
            ),
        )
    # An incomplete backup is a critical finding about the backup (2), not a backend that
    # stopped the command (5): the backup ran to the end and is on disk, minus `missing`.
    code = 0 if result.complete else EXIT_CRITICAL
    if as_json:
        print_json({**vars(result), "exit_code": code})
        return code
    c = result.counts
    console().print(
        f"backup [bold]{esc(result.path)}[/]{'' if result.complete else ' [bold]INCOMPLETE[/]'}:"
        f" {c['dashboards']} dashboards, {c['folders']} "
        f"folders, {c['datasources']} data sources from Grafana {esc(result.grafana_version)} "
        f"(org {esc(result.org.name)}), {human_bytes(result.size_bytes)} "
        f"in {result.seconds:.1f}s"
    )
    for m in result.missing:
        print(f"opskit: missing: {describe_missing([m])}", file=sys.stderr)
    if not result.complete:
        print(
            f"opskit: backup incomplete: {len(result.missing)} object(s) could not be read"
            " (listed in its manifest as missing)",
            file=sys.stderr,
        )
    print(f"opskit: note: {result.notes[0]}", file=sys.stderr)
    return code


def plan_json(plan: RestorePlan, missing: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "backup": str(plan.backup),
        "backup_complete": not missing,
        "backup_missing": missing or [],
        "overwrite": plan.overwrite,
        "folder_map": plan.folder_map,
        "folders": [
            {"uid": f.uid, "title": f.title, "parent_uid": f.parent_uid, "action": f.action}
            for f in plan.folders
        ],
        "dashboards": [
            {
                "uid": d.uid,
                "title": d.title,
                "folder_uid": d.folder_uid,
                "action": d.action,
                "outcome": d.outcome,
                "detail": d.detail,
            }
            for d in plan.dashboards
        ],
        "datasources": [
            {"uid": d.uid, "name": d.name, "action": d.action} for d in plan.datasources
        ],
    }


def show_plan(plan: RestorePlan) -> None:
    out = console()
    creating = [f for f in plan.folders if f.action == "create"]
    out.print(
        f"restore from [bold]{esc(plan.backup)}[/]: folders {len(creating)} to create, "
        f"{len(plan.folders) - len(creating)} existing; dashboards "
        + ", ".join(
            f"{plan.count(a)} {label}"
            for a, label in (
                ("create", "to create"),
                ("update", "to overwrite"),
                ("unchanged", "unchanged"),
                ("conflict", "differing (skipped without --overwrite)"),
            )
        )
        + f"; data sources {sum(d.action == 'create' for d in plan.datasources)} to create"
    )
    rows = [d for d in plan.dashboards if d.action != "unchanged"]
    if rows:
        tb = table(None, "action", "uid", "title", "folder")
        for d in rows:
            tb.add_row(d.action, esc(d.uid), esc(d.title), esc(d.folder_uid or "(root)"))
        out.print(tb)


def show_result(result: RestoreResult) -> None:
    c, f, ds = result.counts, result.folders, result.datasources
    console().print(
        f"dashboards: {c['created']} created, {c['updated']} updated, {c['unchanged']} "
        f"unchanged, {c['skipped']} skipped, {c['failed']} failed ({result.verified} verified "
        f"by reading back); folders: {f['created']} created, {f['existing']} existing, "
        f"{f['failed']} failed; data sources: {ds['created']} created, {ds['existing']} "
        f"existing, {ds['failed']} failed"
    )
    for d in result.plan.dashboards:
        if d.outcome == "skipped":
            print(f"opskit: skipped {d.uid} ({d.title}): {d.detail}", file=sys.stderr)
    for line in result.failures:
        print(f"opskit: failed: {line}", file=sys.stderr)


@click.command("grafana")
@click.argument("backup_spec", metavar="BACKUP")
@dry_run_option
@click.option("--overwrite", is_flag=True, help="Replace dashboards that differ from the backup.")
@click.option(
    "--folder-map",
    "folder_maps",
    multiple=True,
    metavar="OLD=NEW",
    help="Restore folder uid OLD's contents into folder NEW (repeatable; NEW=general: root).",
)
@org_option
@yes_option
@json_option
@pass_app
def restore_grafana_cmd(
    app: App,
    backup_spec: str,
    dry_run: bool,
    overwrite: bool,
    folder_maps: tuple[str, ...],
    org_id: int | None,
    yes: bool,
    as_json: bool,
) -> int:
    """Restore a Grafana backup (a path, a name in the backup dir, or `latest`).

    Exit 0 all restored or equal, 1 some skipped as conflicts, 2 some failed."""
    settings = with_org(app.settings, org_id)
    mapping = parse_folder_map(folder_maps)
    path = resolve(backup_spec, default_dir(settings.backup.dir), "grafana")
    loaded = load_backup(path)  # checksums first: a corrupted backup stops here
    if not dry_run:
        writable(app, "restore")
    org = f"org {org_id}" if org_id else "the credentials' org"
    into = f"{settings.grafana.url} ({org})"
    plan = on_grafana(
        app,
        settings,
        lambda stack: plan_restore(stack.grafana, loaded, overwrite, mapping, into=into),
    )
    missing = missing_objects(loaded.manifest)
    if not as_json:
        show_plan(plan)
    if missing:  # restorable, but not everything the source had: say what is not there
        print(
            f"opskit: warning: this backup is incomplete, {len(missing)} object(s) were not"
            f" backed up and will not be restored: {describe_missing(missing, 10)}",
            file=sys.stderr,
        )
    if dry_run:
        if as_json:
            print_json({"dry_run": True, "plan": plan_json(plan, missing)})
        return 0
    confirm(plan, yes)
    result = on_grafana(app, settings, lambda stack: plan.apply(stack.grafana))
    if as_json:
        print_json(
            {
                "dry_run": False,
                "counts": result.counts,
                "folders": result.folders,
                "datasources": result.datasources,
                "verified": result.verified,
                "failures": result.failures,
                "exit_code": result.exit_code,
                "plan": plan_json(plan, missing),
            }
        )
    else:
        show_result(result)
    return result.exit_code
