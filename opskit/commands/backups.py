"""`opskit backups list|prune`: the local backups (Grafana) under the backup directory."""

from __future__ import annotations

from pathlib import Path

import click

from opskit.commands.common import (
    App,
    confirm,
    dry_run_option,
    json_option,
    pass_app,
    run,
    yes_option,
)
from opskit.output import console, esc, human_bytes, print_json, table, warn
from opskit.tasks.backup_store import (
    PruneResult,
    default_dir,
    describe_missing,
    list_backups,
    prune_plan,
)

dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    help="Backup directory (default: [backup] dir, else the XDG data dir).",
)


@click.group()
def backups() -> None:
    """List and prune local backups."""


@backups.command("list")
@dir_option
@json_option
@pass_app
def list_cmd(app: App, directory: Path | None, as_json: bool) -> int:
    """Complete backups, oldest first (interrupted leftovers are named separately)."""
    listing = list_backups(directory or default_dir(app.settings.backup.dir))
    if as_json:
        print_json(
            {
                "directory": listing.directory,
                "backups": [
                    {
                        "name": b.name,
                        "path": b.path,
                        "kind": b.kind,
                        "created": b.created,
                        "counts": b.counts,
                        "size_bytes": b.size_bytes,
                        "complete": b.complete,
                        "missing": b.missing,
                    }
                    for b in listing.backups
                ],
                "incomplete": listing.incomplete,
            }
        )
        return 0
    tb = table(
        f"backups in {listing.directory}", "name", "kind", "created", "counts", "size", "complete"
    )
    for b in listing.backups:
        counts = ", ".join(f"{v} {k}" for k, v in b.counts.items())
        shown = "yes" if b.complete else f"INCOMPLETE: {len(b.missing)} missing"
        tb.add_row(esc(b.name), b.kind, b.created, counts, human_bytes(b.size_bytes), shown)
    console().print(tb)
    for b in listing.backups:
        if not b.complete:
            warn(f"{b.name}: incomplete backup, lacks {describe_missing(b.missing)}")
    for path in listing.incomplete:
        warn(f"{path}: incomplete (an interrupted backup); safe to delete")
    return 0


@backups.command("prune")
@click.option(
    "--keep-last", type=click.IntRange(min=1), required=True, help="Backups to keep per kind."
)
@dry_run_option
@yes_option
@dir_option
@json_option
@pass_app
def prune_cmd(
    app: App, keep_last: int, dry_run: bool, yes: bool, directory: Path | None, as_json: bool
) -> int:
    """Delete all but the newest N complete backups of each kind."""
    plan = prune_plan(directory or default_dir(app.settings.backup.dir), keep_last)
    if not as_json:
        for change in plan.changes():
            console().print(f"{'would delete' if dry_run else 'delete'} {esc(change.target)}")
        console().print(f"keep {len(plan.keep)}, delete {len(plan.delete)}")
    result: PruneResult = plan.dry_run()
    if not plan.empty and not dry_run:
        confirm(plan, yes)
        result = run(plan.apply(plan.directory))
    if as_json:
        print_json(result)
    return 0
