"""Snapshot and delete from the Indices screen, through the same task code as the CLI.

Delete always snapshots the selection first and deletes only after that snapshot is
verified SUCCESS, as `opskit retention ... --snapshot-first` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from opskit.errors import OpskitError
from opskit.screens.modals import Confirm

if TYPE_CHECKING:
    from opskit.config import Settings
    from opskit.live import Poller
    from opskit.plan import Plan
    from opskit.stack import Stack
    from opskit.tasks.retention import RetentionPlan

MAX_LISTED = 25


class ActionHost(Protocol):
    """What these actions use of the app (OpskitApp), so this module need not import it."""

    settings: Settings
    stack: Stack | None
    poller: Poller | None

    def notify(self, message: str, *, severity: Any = ..., timeout: float | None = ...) -> None: ...

    def run_worker(self, work: Any, *, group: str = ...) -> Any: ...

    def push_screen(self, screen: Any, callback: Any = ...) -> Any: ...


def _listing(names: list[str]) -> str:
    shown = "\n".join(f"  {n}" for n in names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return shown + (f"\n  ... and {more} more" if more > 0 else "")


def confirm_snapshot(app: ActionHost, names: list[str]) -> None:
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


async def snapshot(app: ActionHost, names: list[str], snap: str) -> bool:
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


def changes_text(plan: Plan[Any, Any]) -> str:
    """The plan's changes, one a line, at most MAX_LISTED of them."""
    lines = [f"  {c.line()}" for c in plan.changes()]
    more = len(lines) - MAX_LISTED
    return "\n".join(lines[:MAX_LISTED]) + (f"\n  ... and {more} more" if more > 0 else "")


def confirm_delete(app: ActionHost, names: list[str]) -> None:
    """Show the snapshot-first delete plan's changes; apply it on Yes."""
    from datetime import UTC, datetime

    from opskit.tasks.retention import plan_selected_delete

    cfg = app.settings.elasticsearch
    plan = plan_selected_delete(
        names, datetime.now(UTC), cfg.snapshot_repository, cfg.snapshot_location
    )
    text = (
        f"{changes_text(plan)}\n\n"
        f"Only the indices in that snapshot, verified SUCCESS, are DELETED "
        f"({len(names)} selected).\n"
        "The same code as `opskit retention ... --snapshot-first` runs this."
    )

    def done(yes: bool | None) -> None:
        if yes:
            app.run_worker(snapshot_then_delete(app, plan), group="actions")

    app.push_screen(Confirm(f"Delete {len(names)} index(es)?", text), done)


async def snapshot_then_delete(app: ActionHost, plan: RetentionPlan) -> None:
    """Apply the one-off snapshot-first delete plan of `confirm_delete`."""
    if app.stack is None or app.settings.read_only or plan.empty:
        return
    count = sum(len(p.act) for p in plan.policies)
    app.notify(f"snapshot of {count} index(es) started; delete follows if SUCCESS", timeout=4)
    try:
        result = await plan.apply(app.stack.elasticsearch)
    except OpskitError as exc:
        app.notify(f"delete failed: {exc}; nothing deleted", severity="error", timeout=10)
        return
    out = result.outcomes[0]
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
