"""`opskit backups list|prune`: the local backups (Grafana) under the backup directory."""

from __future__ import annotations

from pathlib import Path

import click

from opskit.commands.common import App, json_option, pass_app
from opskit.output import console, esc, human_bytes, print_json, table, warn
from opskit.tasks.backup_store import default_dir, list_backups, prune_apply, prune_plan

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
                    }
                    for b in listing.backups
                ],
                "incomplete": listing.incomplete,
            }
        )
        return 0
    tb = table(f"backups in {listing.directory}", "name", "kind", "created", "counts", "size")
    for b in listing.backups:
        counts = ", ".join(f"{v} {k}" for k, v in b.counts.items())
        tb.add_row(esc(b.name), b.kind, b.created, counts, human_bytes(b.size_bytes))
    console().print(tb)
    for path in listing.incomplete:
        warn(f"{path}: incomplete (an interrupted backup); safe to delete")
    return 0


@backups.command("prune")
@click.option(
    "--keep-last", type=click.IntRange(min=1), required=True, help="Backups to keep per kind."
)
@click.option("--dry-run", is_flag=True, help="Show what would be deleted.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@dir_option
@json_option
@pass_app
def prune_cmd(
    app: App, keep_last: int, dry_run: bool, yes: bool, directory: Path | None, as_json: bool
) -> int:
    """Delete all but the newest N complete backups of each kind."""
    plan = prune_plan(directory or default_dir(app.settings.backup.dir), keep_last)
    if not as_json:
        for name in plan.deleted:
            console().print(f"{'would delete' if dry_run else 'delete'} {esc(name)}")
        console().print(f"keep {len(plan.kept)}, delete {len(plan.deleted)}")
    result = plan
    if plan.deleted and not dry_run:
        if not yes:
            click.confirm(f"Delete {len(plan.deleted)} backups?", abort=True, err=True)
        result = prune_apply(plan)
    if as_json:
        print_json(result)
    return 0
