"""`opskit backup grafana` and `opskit restore grafana` (docs/grafana-backup.md)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from opskit.commands.common import (
    App,
    confirm,
    describe_credentials,
    dry_run_option,
    json_option,
    on_grafana,
    org_option,
    pass_app,
    with_org,
    writable,
    yes_option,
)
from opskit.errors import EXIT_CRITICAL
from opskit.output import console, esc, human_bytes, print_json, table
from opskit.tasks.backup_store import default_dir, describe_missing, missing_objects, resolve
from opskit.tasks.grafana_backup import GrafanaBackupResult, Progress, backup_grafana
from opskit.tasks.grafana_restore import (
    RestorePlan,
    RestoreResult,
    load_backup,
    load_secrets,
    parse_folder_map,
    parse_only,
    plan_restore,
)

T = TypeVar("T")


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
@click.option(
    "--all-orgs", is_flag=True, help="Every organisation (needs a Grafana server admin login)."
)
@click.option("--with-annotations", is_flag=True, help="Back up annotations too.")
@click.option(
    "--archive", is_flag=True, help="Write one .tar.gz (same manifest inside), not a directory."
)
@click.option("--page-size", type=click.IntRange(1, 5000), default=1000, hidden=True)
@json_option
@pass_app
def backup_grafana_cmd(
    app: App,
    out: Path | None,
    org_id: int | None,
    all_orgs: bool,
    with_annotations: bool,
    archive: bool,
    page_size: int,
    as_json: bool,
) -> int:
    """Back up an organisation (or all): folders, dashboards, library panels, data sources
    (without secrets), alerting, teams, preferences, optionally annotations.

    Exit 0 complete; 1 some kinds skipped (the credentials may not read them, named in the
    manifest's `skipped`); 2 finished but incomplete (objects Grafana failed to give are
    named in the manifest's `missing`)."""
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
                all_orgs=all_orgs,
                with_annotations=with_annotations,
            ),
        )
    if archive:  # the committed directory packed into <name>.tar.gz, then removed
        import shutil

        from opskit.tasks.grafana_archive import write_archive

        packed = write_archive(result.path)
        shutil.rmtree(result.path)
        result.path, result.size_bytes = packed, packed.stat().st_size
    # An incomplete backup is a critical finding about the backup (2), not a backend that
    # stopped the command (5): the backup ran to the end and is on disk, minus `missing`.
    # Kinds the credentials may not read are a warning (1): skipped, with the reason.
    forbidden = [sk for sk in result.skipped if not sk.get("unavailable")]
    code = EXIT_CRITICAL if not result.complete else (1 if forbidden else 0)
    if as_json:
        print_json({**vars(result), "exit_code": code})
        return code
    c = result.counts
    orgs = ", ".join(str(o["name"]) for o in result.orgs) or result.org.name
    console().print(
        f"backup [bold]{esc(result.path)}[/]{'' if result.complete else ' [bold]INCOMPLETE[/]'}:"
        f" {c.get('dashboards', 0)} dashboards, {c.get('folders', 0)} "
        f"folders, {c.get('datasources', 0)} data sources"
        + "".join(
            f", {n} {k.replace('_', ' ')}"
            for k, n in c.items()
            if k not in ("dashboards", "folders", "datasources")
        )
        + f" from Grafana {esc(result.grafana_version)} "
        f"(org {esc(orgs)}), {human_bytes(result.size_bytes)} "
        f"in {result.seconds:.1f}s"
    )
    for m in result.missing:
        print(f"opskit: missing: {describe_missing([m])}", file=sys.stderr)
    for sk in result.skipped:
        print(f"opskit: skipped: org {sk['org']} {sk['kind']}: {sk['reason']}", file=sys.stderr)
    if not result.complete:
        print(
            f"opskit: backup incomplete: {len(result.missing)} object(s) could not be read"
            " (listed in its manifest as missing)",
            file=sys.stderr,
        )
    print(f"opskit: note: {result.notes[0]}", file=sys.stderr)
    return code


def plan_json(plan: RestorePlan, missing: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    first = plan.orgs[0] if plan.orgs else None

    def legacy(kind: str) -> list[dict[str, Any]]:
        if first is None:
            return []
        out = []
        for st in plan.of(kind, first):
            row: dict[str, Any] = {"uid": st.key, "action": st.action}
            if kind == "folders":
                row |= {"title": st.title, "parent_uid": str(st.stored.get("parentUid") or "")}
            elif kind == "dashboards":
                row |= {
                    "title": st.title, "folder_uid": str(st.stored.get("folderUid") or ""),
                    "outcome": st.outcome, "detail": st.result or st.detail,
                }  # fmt: skip
            else:
                row |= {"name": st.title}
            out.append(row)
        return out

    return {
        "backup": str(plan.backup),
        "backup_complete": not missing,
        "backup_missing": missing or [],
        "overwrite": plan.overwrite,
        "folder_map": plan.folder_map,
        "orgs": [
            {
                "source": {"id": o.source_id, "name": o.source_name},
                "target": {"id": o.target_id, "name": o.target_name, "create": o.create},
                "notes": o.notes,
            }
            for o in plan.orgs
        ],
        "skipped": plan.skipped,
        "steps": [st.to_json() for st in plan.steps],
        "folders": legacy("folders"),
        "dashboards": legacy("dashboards"),
        "datasources": legacy("datasources"),
    }


def show_plan(plan: RestorePlan) -> None:
    out = console()
    out.print(f"restore from [bold]{esc(plan.backup)}[/]:")
    for org in plan.orgs:
        kinds: dict[str, dict[str, int]] = {}
        for st in org.steps:
            kinds.setdefault(st.kind, {}).setdefault(st.action, 0)
            kinds[st.kind][st.action] += 1
        labels = {
            "create": "to create", "update": "to overwrite", "unchanged": "unchanged",
            "conflict": "differing (skipped without --overwrite)", "skip": "skipped",
        }  # fmt: skip
        head = f"org {esc(org.target_name)}" + (" (to create)" if org.create else "")
        out.print(
            f"  {head}: "
            + "; ".join(
                f"{kind.replace('_', ' ')} "
                + ", ".join(f"{n} {labels[a]}" for a, n in sorted(counts.items()))
                for kind, counts in kinds.items()
            )
        )
        for note in org.notes:
            out.print(f"  note: {esc(note)}")
    rows = [st for st in plan.steps if st.action != "unchanged"]
    if rows:
        tb = table(None, "action", "kind", "key", "name", "detail")
        for st in rows:
            tb.add_row(st.action, st.kind, esc(st.key), esc(st.title), esc(st.detail))
        out.print(tb)


def show_result(result: RestoreResult) -> None:
    parts = []
    for kind, c in result.kinds.items():
        parts.append(
            f"{kind.replace('_', ' ')}: {c['created']} created, {c['updated']} updated, "
            f"{c['unchanged']} unchanged, {c['skipped']} skipped, {c['failed']} failed"
        )
    console().print("; ".join(parts) + f" ({result.verified} verified by reading back)")
    for line in result.skipped:
        print(f"opskit: skipped: {line}", file=sys.stderr)
    for line in result.failures:
        print(f"opskit: failed: {line}", file=sys.stderr)


@click.command("grafana")
@click.argument("backup_spec", metavar="BACKUP")
@dry_run_option
@click.option("--overwrite", is_flag=True, help="Replace objects that differ from the backup.")
@click.option(
    "--folder-map",
    "folder_maps",
    multiple=True,
    metavar="OLD=NEW",
    help="Restore folder uid OLD's contents into folder NEW (repeatable; NEW=general: root).",
)
@click.option(
    "--only",
    "only_specs",
    multiple=True,
    metavar="KIND[:UID,...]",
    help="Restore only this kind (repeatable): folders, dashboards, library_panels, "
    "datasources, alert_rules, contact_points, policies, mute_timings, templates, teams, "
    "annotations, preferences; optionally only these uids (names).",
)
@click.option(
    "--folder",
    "folder_uids",
    multiple=True,
    metavar="UID",
    help="Restore only this folder and what is in it (repeatable).",
)
@click.option("--no-subfolders", is_flag=True, help="With --folder: not its subfolders.")
@click.option(
    "--secrets",
    "secrets_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML or JSON {data source uid or name: {field: value}} (contact points under "
    "[contact_points.UID]); also OPSKIT_GRAFANA_DS_SECRET_<UID>_<FIELD>.",
)
@click.option("--all-orgs", is_flag=True, help="Every organisation of the backup, matched by name.")
@click.option(
    "--source-org",
    type=click.IntRange(min=1),
    default=None,
    help="Which organisation of a multi-organisation backup to restore.",
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
    only_specs: tuple[str, ...],
    folder_uids: tuple[str, ...],
    no_subfolders: bool,
    secrets_file: Path | None,
    all_orgs: bool,
    source_org: int | None,
    org_id: int | None,
    yes: bool,
    as_json: bool,
) -> int:
    """Restore a Grafana backup (a path, a name in the backup dir, or `latest`).

    Exit 0 all restored or equal, 1 some skipped (conflicts, kinds these credentials may
    not write, members or secrets that are not there), 2 some failed, 4 nothing could be
    written (403)."""
    settings = with_org(app.settings, org_id)
    mapping = parse_folder_map(folder_maps)
    only = parse_only(only_specs) or None
    secrets = load_secrets(secrets_file)
    path = resolve(backup_spec, default_dir(settings.backup.dir), "grafana")
    if path.is_file():  # a .tar.gz: unpacked safely and checked, removed when the command ends
        from opskit.tasks.grafana_archive import opened

        path = click.get_current_context().with_resource(opened(path))
    loaded = load_backup(path)  # checksums first: a corrupted backup stops here
    if not dry_run:
        writable(app, "restore")
    org = (
        "all organisations" if all_orgs else (f"org {org_id}" if org_id else "the credentials' org")
    )
    into = f"{settings.grafana.url} ({org})"
    plan = on_grafana(
        app,
        settings,
        lambda stack: plan_restore(
            stack.grafana,
            loaded,
            overwrite,
            mapping,
            into=into,
            all_orgs=all_orgs,
            source_org=source_org,
            only=only,
            folders=list(folder_uids),
            subfolders=not no_subfolders,
            secrets=secrets,
        ),
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
    for sk in loaded.manifest.get("skipped") or []:
        if sk.get("unavailable"):
            continue  # the source Grafana has no such thing: nothing was lost
        print(
            f"opskit: warning: the backup skipped org {sk.get('org')} {sk.get('kind')}: "
            f"{sk.get('reason')}; not restored",
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
                "kinds": result.kinds,
                "verified": result.verified,
                "failures": result.failures,
                "skipped": result.skipped,
                "exit_code": result.exit_code,
                "plan": plan_json(plan, missing),
            }
        )
    else:
        show_result(result)
    if result.exit_code == 4:
        print(
            f"opskit: grafana: 403 Forbidden: nothing could be written "
            f"(used {describe_credentials(settings)})",
            file=sys.stderr,
        )
    return result.exit_code
