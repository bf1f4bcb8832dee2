"""Snapshot and delete from the Indices screen, through the same task code as the CLI.

Delete always snapshots the selection first and deletes only after that snapshot is
verified SUCCESS, as `opskit retention ... --snapshot-first` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opskit.errors import OpskitError
from screens.modals import Confirm

if TYPE_CHECKING:
    from screens.app import OpskitApp

MAX_LISTED = 25


def _listing(names: list[str]) -> str:
    shown = "\n".join(f"  {n}" for n in names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return shown + (f"\n  ... and {more} more" if more > 0 else "")


def confirm_snapshot(app: OpskitApp, names: list[str]) -> None:
    from tasks.snapshots import DEFAULT_TEMPLATE, snapshot_name

    repo = app.settings.elasticsearch.snapshot_repository
    snap = snapshot_name(DEFAULT_TEMPLATE)
    plan = (
        f"Take snapshot {snap} in repository {repo!r} of {len(names)} index(es):\n"
        f"{_listing(names)}\n\nNothing is deleted."
    )

    def done(yes: bool | None) -> None:
        if yes:
            app.run_worker(snapshot(app, names, snap), group="actions")

    app.push_screen(Confirm("Snapshot these indices?", plan), done)


async def snapshot(app: OpskitApp, names: list[str], snap: str) -> bool:
    """Take and verify a snapshot; True only when it finished SUCCESS."""
    from tasks.snapshots import ensure_repository, take_snapshot

    if app.stack is None or app.settings.read_only:
        return False
    es = app.stack.elasticsearch
    cfg = app.settings.elasticsearch
    app.notify(f"snapshot {snap}: started", timeout=3)
    try:
        await ensure_repository(es, cfg.snapshot_repository, cfg.snapshot_location)
        info = await take_snapshot(es, cfg.snapshot_repository, snap, names)
    except OpskitError as exc:
        app.notify(f"snapshot {snap} failed: {exc}", severity="error", timeout=10)
        return False
    if info.state != "SUCCESS":
        app.notify(f"snapshot {snap} finished {info.state}", severity="error", timeout=10)
        return False
    app.notify(f"snapshot {snap}: SUCCESS ({len(names)} indices)", timeout=5)
    return True


def confirm_delete(app: OpskitApp, names: list[str]) -> None:
    from tasks.snapshots import DEFAULT_TEMPLATE, snapshot_name

    repo = app.settings.elasticsearch.snapshot_repository
    snap = snapshot_name(DEFAULT_TEMPLATE)
    plan = (
        f"1. Take snapshot {snap} in repository {repo!r} of:\n{_listing(names)}\n"
        f"2. Only if it finishes SUCCESS, DELETE these {len(names)} index(es).\n\n"
        "Restore later with: opskit restore elasticsearch " + snap
    )

    def done(yes: bool | None) -> None:
        if yes:
            app.run_worker(snapshot_then_delete(app, names, snap), group="actions")

    app.push_screen(Confirm(f"Delete {len(names)} index(es)?", plan), done)


async def snapshot_then_delete(app: OpskitApp, names: list[str], snap: str) -> None:
    from tasks.retention import delete_indices

    if not await snapshot(app, names, snap) or app.stack is None:
        app.notify("nothing deleted", severity="warning")
        return
    try:
        result = await delete_indices(app.stack.elasticsearch, names)
    except OpskitError as exc:
        app.notify(f"delete failed: {exc}", severity="error", timeout=10)
        return
    app.notify(
        f"deleted {len(result.deleted)} index(es); {len(result.failed)} could not be deleted",
        timeout=6,
    )
    if app.poller is not None:
        app.poller.refresh_now(("indices", "cluster"))
