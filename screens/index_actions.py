"""Snapshot and delete from the Indices screen, through the same task code as the CLI.

Delete always snapshots the selection first and deletes only after that snapshot is
verified SUCCESS, as `opskit retention ... --snapshot-first` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opskit.errors import OpskitError
from opskit.screens.modals import Confirm

if TYPE_CHECKING:
    from opskit.screens.app import OpskitApp

MAX_LISTED = 25


def _listing(names: list[str]) -> str:
    shown = "\n".join(f"  {n}" for n in names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return shown + (f"\n  ... and {more} more" if more > 0 else "")


def confirm_snapshot(app: OpskitApp, names: list[str]) -> None:
    from opskit.tasks.snapshots import DEFAULT_TEMPLATE, snapshot_name

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
    from opskit.tasks.snapshots import ensure_repository, take_snapshot

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
    repo = app.settings.elasticsearch.snapshot_repository
    plan = (
        f"1. Take a snapshot in repository {repo!r} of:\n{_listing(names)}\n"
        f"2. Only the indices in that snapshot, verified SUCCESS, are DELETED "
        f"({len(names)} selected).\n\n"
        "The same code as `opskit retention ... --snapshot-first` runs this."
    )

    def done(yes: bool | None) -> None:
        if yes:
            app.run_worker(snapshot_then_delete(app, names), group="actions")

    app.push_screen(Confirm(f"Delete {len(names)} index(es)?", plan), done)


async def snapshot_then_delete(app: OpskitApp, names: list[str]) -> None:
    """A one-off snapshot-first delete policy over exactly these indices."""
    from datetime import UTC, datetime

    from opskit.tasks.retention import Decision, PolicyPlan, apply_policy

    if app.stack is None or app.settings.read_only:
        return
    now = datetime.now(UTC)
    plan = PolicyPlan(
        policy="tui",
        pattern=",".join(names),
        action="delete",
        keep="selected",
        timestring=None,
        snapshot_first=True,
        cutoff=now,
        act=[Decision(n, "selected in the TUI") for n in names],
    )
    app.notify(f"snapshot of {len(names)} index(es) started; delete follows if SUCCESS", timeout=4)
    try:
        out = await apply_policy(
            app.stack.elasticsearch, plan, app.settings.elasticsearch.snapshot_repository
        )
    except OpskitError as exc:
        app.notify(f"delete failed: {exc}; nothing deleted", severity="error", timeout=10)
        return
    if out.snapshot_error:
        app.notify(f"{out.snapshot_error}; nothing deleted", severity="error", timeout=10)
    else:
        snap = out.snapshot.name if out.snapshot else "?"
        note = f"; {len(out.failed)} could not be deleted" if out.failed else ""
        app.notify(
            f"deleted {len(out.done)} index(es) after snapshot {snap}{note}",
            severity="warning" if out.failed else "information",
            timeout=8,
        )
    if app.poller is not None:
        app.poller.refresh_now(("indices", "cluster"))
