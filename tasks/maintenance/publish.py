"""A run's outcome, published where the stack can watch it: one Pushgateway group per
task (`job=opskit, cadence, task`) with three gauges, and, when
`maintenance.alert_on_failure` is on, an Alertmanager alert per failed task (resolved
when the task passes again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from opskit.errors import BackendError
from opskit.tasks.maintenance.framework import RunReport, TaskResult

if TYPE_CHECKING:
    from opskit.config import Settings
    from opskit.stack import Stack

STATUS_VALUE = {"pass": 0, "warn": 1, "fail": 2, "unreachable": 3}
SUCCESS = ("pass", "warn")  # the task ran to the end; warnings are findings
ALERTNAME = "OpskitMaintenanceFailed"
HELP = {
    "opskit_task_last_run_timestamp_seconds": "When the opskit maintenance task last ran.",
    "opskit_task_last_success_timestamp_seconds": "When it last ran to the end (pass or warn).",
    "opskit_task_status": "Last outcome: 0 pass, 1 warn, 2 fail, 3 backend unreachable.",
}


def exposition(result: TaskResult, finished: datetime) -> str:
    """Pure: the text-format body for one task (no success gauge after a failure, so a
    POST keeps the last success pushed before)."""
    values = {
        "opskit_task_last_run_timestamp_seconds": finished.timestamp(),
        "opskit_task_status": float(STATUS_VALUE[result.status]),
    }
    if result.status in SUCCESS:
        values["opskit_task_last_success_timestamp_seconds"] = finished.timestamp()
    lines = []
    for name, value in values.items():
        lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge", f"{name} {value:.3f}"]
    return "\n".join(lines) + "\n"


def alert_for(result: TaskResult, context: str, now: datetime, hold: timedelta) -> dict[str, Any]:
    """Pure: the Alertmanager alert for a task's outcome; a passing task's ends now."""
    failed = result.status not in SUCCESS
    return {
        "labels": {
            "alertname": ALERTNAME,
            "task": result.task,
            "cadence": result.cadence,
            "context": context,
            "severity": "critical" if result.status == "fail" else "warning",
        },
        "annotations": {
            "summary": f"opskit {result.cadence} task {result.task}: {result.status}",
            "description": result.summary[:500],
        },
        "startsAt": result.started_at.isoformat(),
        "endsAt": (now + hold if failed else now).isoformat(),
    }


async def publish(stack: Stack, settings: Settings, report: RunReport) -> str:
    """Push every task's outcome; returns one line on what happened (never raises for a
    backend: publishing must not turn a good run into a failed one)."""
    opts = settings.maintenance
    ran = [r for r in report.results if r.status != "skipped"]
    notes = []
    if opts.publish:
        try:
            for r in ran:
                grouping = {"cadence": r.cadence, "task": r.task}
                body = exposition(r, report.finished_at)
                await stack.pushgateway.push(opts.pushgateway_job, grouping, body)
            notes.append(f"pushgateway: {len(ran)} task(s)")
        except BackendError as exc:
            notes.append(f"pushgateway: not published ({exc})")
    if opts.alert_on_failure and ran:
        now = datetime.now(UTC)
        alerts = [alert_for(r, report.context, now, opts.alert_hold) for r in ran]
        try:
            await stack.alertmanager.post_alerts(alerts)
            failed = sum(r.status not in SUCCESS for r in ran)
            notes.append(f"alertmanager: {failed} failure alert(s)")
        except BackendError as exc:
            notes.append(f"alertmanager: not posted ({exc})")
    return "; ".join(notes) or "not published (maintenance.publish = false)"
