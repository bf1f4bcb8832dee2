"""One maintenance run from start to finish, shared by `opskit maintenance` and the
scheduler: take the lock, run the tasks, publish the outcome, keep the report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from opskit.tasks.locking import exclusive
from opskit.tasks.maintenance.framework import (
    RunReport,
    Task,
    TaskContext,
    TaskResult,
    run_cadence,
    tasks_for,
)
from opskit.tasks.maintenance.publish import publish
from opskit.tasks.maintenance.reports import reports_dir, store

if TYPE_CHECKING:
    from opskit.config import Settings
    from opskit.http import RequestLog


def lock_path() -> Path:
    from opskit.config import state_path

    return state_path() / "maintenance.lock"


def execute(
    settings: Settings,
    cadence: str,
    *,
    selected: list[Task] | None = None,
    dry_run: bool = False,
    apply: bool = True,
    lock_wait: float = 0.0,
    config_path: Path | None = None,
    env_file: Path | None = None,
    log: RequestLog | None = None,
    on_start: Callable[[Task], None] | None = None,
    on_done: Callable[[TaskResult], None] | None = None,
) -> RunReport:
    """Run a cadence under the maintenance lock (never two runs interleaved). A dry run
    neither publishes nor enters the history."""
    from opskit.stack import Stack

    chosen = selected if selected is not None else tasks_for(cadence)

    async def go() -> RunReport:
        async with Stack(settings, log) as stack:
            ctx = TaskContext(
                stack,
                settings,
                dry_run=dry_run,
                apply=apply and not dry_run and not settings.read_only,
                config_path=config_path,
                env_file=env_file,
            )
            report = await run_cadence(cadence, ctx, chosen, on_start, on_done)
            if not dry_run:
                report.published = await publish(stack, settings, report)
            return report

    with exclusive(lock_path(), "opskit maintenance run", lock_wait):
        report = asyncio.run(go())
        if not dry_run:
            path = store(report, reports_dir(settings), settings.maintenance.keep_reports)
            report.report_path = str(path)
    return report
