"""`opskit diff grafana` and `opskit export grafana` (docs/grafana-backup.md): what changed
in the live Grafana since a backup, and Grafana as provisioning files for a repository."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TypeVar

import click

from opskit.commands.common import (
    App,
    dry_run_option,
    json_option,
    on_grafana,
    org_option,
    pass_app,
    with_org,
)
from opskit.config import Settings
from opskit.errors import EXIT_CRITICAL, UsageError
from opskit.output import console, esc, print_json, warn
from opskit.stack import Stack
from opskit.tasks.backup_store import default_dir, read_manifest, resolve, verify_checksums
from opskit.tasks.grafana_archive import archive_name, opened
from opskit.tasks.grafana_diff import GrafanaDiff, OrgState, diff_json, diff_states
from opskit.tasks.grafana_export import (
    DEFAULT_DASHBOARDS_PATH,
    ExportResult,
    apply_export,
    plan_export,
    source_from_state,
)
from opskit.tasks.grafana_state import Problem, backup_state, live_state

T = TypeVar("T")
EXPORT_KINDS = ("folders", "dashboards", "datasources")


def read_backup(spec: str, settings: Settings) -> tuple[Path, dict[int, OrgState]]:
    """A backup (path, name, `latest`; a directory or a .tar.gz) as state, after checking
    every file against its manifest (an archive is checked as it is unpacked)."""
    from opskit.tasks.grafana_restore import CorruptBackup

    path = resolve(spec, default_dir(settings.backup.dir), "grafana")
    with opened(path) as directory:
        if directory == path:
            problems = verify_checksums(directory, read_manifest(directory))
            if problems:
                raise CorruptBackup(f"{path}: {'; '.join(problems[:3])}")
        try:
            return path, backup_state(directory)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptBackup(f"{path}: unreadable: {exc!r}"[:300]) from None


# ------------------------------------------------------------------ diff


@click.group()
def diff() -> None:
    """What changed in a backend since a backup."""


def _drop_unread(
    before: dict[int, OrgState], after: dict[int, OrgState], problems: list[Problem]
) -> list[str]:
    """Take what the live read could not see out of both sides (so it is not reported as
    removed); what was left out, for people."""
    notes = []
    for p in problems:
        org, kind, key = int(p.get("org") or 0), str(p.get("kind")), str(p.get("key") or "")
        if p.get("status") == "skipped" or not key:
            for side in (before, after):
                side.get(org, {}).pop(kind, None)
            notes.append(f"org {org} {kind}: not compared ({p.get('reason')})")
        else:
            for side in (before, after):
                side.get(org, {}).get(kind, {}).pop(key, None)
            notes.append(f"org {org} {kind} {key}: not compared ({p.get('reason')})")
    return notes


def show_diff(result: GrafanaDiff, backup: Path, into: str, notes: list[str]) -> None:
    out = console()
    c = result.counts()
    out.print(
        f"live Grafana {esc(into)} against backup [bold]{esc(archive_name(backup))}[/]: "
        f"{c['changed']} changed, {c['added']} added, {c['removed']} removed "
        f"({c['unchanged']} unchanged)"
    )
    for org in result.orgs:
        if not org.differs:
            continue
        if org.presence != "both":
            where = "only live" if org.presence == "added" else "only in the backup"
            out.print(f"org {org.org_id}: {where}")
        for kind, kd in org.kinds.items():
            if not kd.differs:
                continue
            out.print(f"org {org.org_id} {kind}:")
            for r in kd.added:
                out.print(f"  + {esc(r.key)} ({esc(r.name)})")
            for r in kd.removed:
                out.print(f"  - {esc(r.key)} ({esc(r.name)})")
            for ch in kd.changed:
                out.print(f"  ~ {esc(ch.key)} ({esc(ch.name)})")
                for p in ch.panels:
                    fields = f": {', '.join(p.fields)}" if p.fields else ""
                    title = esc(json.dumps(p.title))
                    out.print(f"      panel {p.id} {title} {p.change}{esc(fields)}")
                for f in ch.fields:
                    shown = {
                        "added": f"added {json.dumps(f.after)}",
                        "removed": f"removed (was {json.dumps(f.before)})",
                    }.get(f.change, f"{json.dumps(f.before)} -> {json.dumps(f.after)}")
                    out.print(f"      {esc(f.path)}: {esc(shown)}")
                if ch.more_fields:
                    out.print(f"      (+{ch.more_fields} more differences)")
    for note in notes:
        warn(note)


@diff.command("grafana")
@click.argument("backup_spec", metavar="[BACKUP]", default="latest")
@org_option
@click.option("--all-orgs", is_flag=True, help="Every organisation (needs a server admin).")
@click.option(
    "--max-fields",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="Differences shown per object.",
)
@json_option
@pass_app
def diff_grafana_cmd(
    app: App,
    backup_spec: str,
    org_id: int | None,
    all_orgs: bool,
    max_fields: int,
    as_json: bool,
) -> int:
    """What changed in the live Grafana since a backup (default: the latest).

    Objects added, removed and changed per kind and org; for a dashboard the panels and
    the fields that differ. Exit 0 nothing differs, 1 something does, 2 some objects could
    not be read (nothing else differs)."""
    if org_id is not None and all_orgs:
        raise UsageError("--org-id and --all-orgs exclude each other")
    path, before = read_backup(backup_spec, app.settings)
    kinds = sorted({k for org in before.values() for k in org})
    annotations = "annotations" in kinds
    settings = with_org(app.settings, org_id)

    async def live(stack: Stack) -> tuple[dict[int, OrgState], list[Problem]]:
        client = stack.grafana
        if all_orgs or (org_id is None and len(before) > 1):
            ids = sorted(o.id for o in await client.orgs())
            return await live_state(client, orgs=ids, with_annotations=annotations, kinds=kinds)
        return await live_state(client, orgs=None, with_annotations=annotations, kinds=kinds)

    after, problems = on_grafana(app, settings, live)
    if not all_orgs and len(after) == 1 and (org_id is not None or len(before) == 1):
        # one org each side: the backup's (or --org-id's) against the signed-in one, which
        # may have another id (a backup restored into another org)
        (live_id,) = after
        want = org_id if org_id is not None and org_id in before else next(iter(before))
        before = {live_id: before[want]} if want in before else {}
    notes = _drop_unread(before, after, problems)
    result = diff_states(before, after, max_fields)
    code = 1 if result.differs else (EXIT_CRITICAL if problems else 0)
    if as_json:
        print_json(
            {"backup": str(path), **diff_json(result), "not_compared": problems,
             "exit_code": code}
        )  # fmt: skip
    else:
        org = f"org {org_id}" if org_id else "the credentials' org"
        into = "all orgs" if all_orgs else org
        show_diff(result, path, f"{settings.grafana.url} ({into})", notes)
    return code


# ------------------------------------------------------------------ export


@click.group()
def export() -> None:
    """Export a backend's configuration as files for a repository."""


@export.command("grafana")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--from",
    "from_spec",
    metavar="BACKUP",
    default="live",
    show_default=True,
    help="A backup (path, name, latest; directory or .tar.gz), or `live`.",
)
@org_option
@click.option("--folder", "folder_uid", metavar="UID", help="Only this folder (and below).")
@click.option(
    "--dashboards-path",
    default=DEFAULT_DASHBOARDS_PATH,
    show_default=True,
    help="Where Grafana sees DIR/grafana/dashboards (the provider's options.path).",
)
@click.option("--prune", is_flag=True, help="Remove files of dashboards that no longer exist.")
@dry_run_option
@json_option
@pass_app
def export_grafana_cmd(
    app: App,
    directory: Path,
    from_spec: str,
    org_id: int | None,
    folder_uid: str | None,
    dashboards_path: str,
    prune: bool,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Write dashboards, the dashboard provider and the data sources in the monitoring
    README's provisioning layout under DIRECTORY/grafana/.

    Stable files (sorted keys, no ids or versions): an unchanged Grafana changes no byte."""
    if from_spec == "live":
        settings = with_org(app.settings, org_id)

        async def live(stack: Stack) -> tuple[dict[int, OrgState], list[Problem]]:
            return await live_state(stack.grafana, orgs=None, kinds=EXPORT_KINDS)

        states, problems = on_grafana(app, settings, live)
        source_name = f"{settings.grafana.url}"
    else:
        path, states = read_backup(from_spec, app.settings)
        problems = []
        source_name = str(path)
        if org_id is not None:
            if org_id not in states:
                raise UsageError(f"{path}: no org {org_id} in this backup ({sorted(states)})")
            states = {org_id: states[org_id]}
        elif len(states) > 1:
            raise UsageError(f"{path}: several orgs {sorted(states)}: choose one with --org-id")
    if not states:
        raise UsageError("nothing to export")
    ((org, state),) = states.items()
    source = source_from_state(org, state)
    if folder_uid is not None and folder_uid not in {f["uid"] for f in source.folders}:
        raise UsageError(f"--folder {folder_uid}: no such folder")
    plan = plan_export(source, directory, dashboards_path, folder_uid)
    result: ExportResult = apply_export(plan, source, prune=prune, dry_run=dry_run)
    code = EXIT_CRITICAL if problems else 0
    if as_json:
        print_json({"source": source_name, "org_id": org, **vars(result),
                    "problems": problems, "exit_code": code})  # fmt: skip
        return code
    verb = "would write" if dry_run else "wrote"
    for rel in result.written:
        console().print(f"{verb} {esc(rel)}")
    for old, new in result.renamed.items():
        console().print(f"{'would move' if dry_run else 'moved'} {esc(old)} -> {esc(new)}")
    console().print(
        f"export of {esc(source_name)} (org {org}) into {esc(directory)}: {result.dashboards} "
        f"dashboards, {result.datasources} data sources; {len(result.written)} files "
        f"{'to write' if dry_run else 'written'}, {len(result.unchanged)} unchanged"
    )
    for rel in result.stale:
        if prune:
            console().print(f"{'would remove' if dry_run else 'removed'} {esc(rel)} (stale)")
        else:
            warn(f"{rel}: its dashboard no longer exists (remove with --prune)")
    for p in problems:
        print(f"opskit: not exported: {p.get('kind')} {p.get('key')}: {p.get('reason')}",
              file=sys.stderr)  # fmt: skip
    return code
