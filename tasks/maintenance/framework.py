"""The maintenance task framework: a registry of checks per cadence (weekly, monthly,
quarterly), the records they return, and the runner that turns a check's findings, or
the backend error that stopped it, into a status. Tasks print nothing."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from opskit.errors import (
    BackendError,
    BackendUnreachable,
    OpskitError,
    Unsupported,
    UsageError,
)
from opskit.findings import Finding, Severity, worst
from opskit.findings import exit_code as findings_exit_code
from opskit.when import CADENCES

if TYPE_CHECKING:
    from opskit.config import Settings
    from opskit.stack import Stack

Status = Literal["pass", "warn", "fail", "unreachable", "skipped"]
# modules that register each cadence's tasks, imported on first use
MODULES: dict[str, tuple[str, ...]] = {
    "weekly": ("opskit.tasks.maintenance.weekly", "opskit.tasks.maintenance.dashboards"),
    "monthly": ("opskit.tasks.maintenance.monthly", "opskit.tasks.maintenance.performance"),
    "quarterly": (
        "opskit.tasks.maintenance.backup",
        "opskit.tasks.maintenance.security",
        "opskit.tasks.maintenance.capacity",
        "opskit.tasks.maintenance.versions",
        "opskit.tasks.maintenance.drills",
    ),
}


@dataclass(slots=True)
class Outcome:
    """What a task function returns; the runner derives the status from the findings."""

    findings: list[Finding] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    unreachable: list[str] = field(default_factory=list)  # backends a part could not reach

    def add(self, severity: Severity, subject: str, summary: str, **evidence: Any) -> None:
        self.findings.append(Finding(severity, subject, summary, evidence=evidence))


class Skip(Exception):
    """Raised by a task that has nothing to do here (e.g. nothing configured)."""


@dataclass(slots=True)
class TaskResult:
    task: str
    cadence: str
    title: str
    status: Status
    summary: str
    findings: list[Finding]
    data: dict[str, Any]
    duration: float  # seconds
    started_at: datetime
    error: str | None = None  # why it could not finish (a backend, a bug)


@dataclass(slots=True)
class RunReport:
    cadence: str
    context: str
    started_at: datetime
    finished_at: datetime
    dry_run: bool
    results: list[TaskResult]
    exit_code: int
    published: str | None = None  # what happened to the Pushgateway / Alertmanager push
    report_path: str | None = None  # where the history copy was stored


class TaskContext:
    """What every task gets: the stack, the settings, the run's options, and shared
    fetches (two tasks asking the same thing share one request)."""

    def __init__(
        self,
        stack: Stack,
        settings: Settings,
        now: datetime | None = None,
        *,
        dry_run: bool = False,
        apply: bool = True,
        config_path: Path | None = None,
        env_file: Path | None = None,
    ) -> None:
        self.stack = stack
        self.settings = settings
        self.options = settings.maintenance
        self.now = now or datetime.now(UTC)
        self.dry_run = dry_run
        self.apply = apply  # destructive tasks act only when True (--yes or confirmed)
        self.config_path = config_path
        self.env_file = env_file
        self.note: Callable[[str], None] = lambda text: None
        self._cache: dict[str, asyncio.Task[Any]] = {}

    async def once(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self._cache:
            self._cache[key] = asyncio.ensure_future(fetch())
        return await self._cache[key]


TaskFn = Callable[[TaskContext], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Task:
    cadence: str
    name: str
    title: str
    reads: str  # the backends and APIs it reads, for `maintenance list` and the docs
    run: TaskFn
    destructive: bool = False
    seq: int = 0  # registration order within its module


REGISTRY: dict[str, dict[str, Task]] = {c: {} for c in CADENCES}


def task(
    cadence: str, name: str, title: str, reads: str, destructive: bool = False
) -> Callable[[TaskFn], TaskFn]:
    """Register a task function under a cadence."""

    def register(fn: TaskFn) -> TaskFn:
        seq = len(REGISTRY[cadence])
        REGISTRY[cadence][name] = Task(cadence, name, title, reads, fn, destructive, seq)
        return fn

    return register


def tasks_for(cadence: str) -> list[Task]:
    if cadence not in CADENCES:
        raise UsageError(f"unknown cadence {cadence!r} (one of: {', '.join(CADENCES)})")
    modules = MODULES[cadence]
    for module in modules:
        importlib.import_module(module)
    # the order of MODULES, then of definition, whatever imported a module first
    return sorted(
        REGISTRY[cadence].values(), key=lambda t: (modules.index(t.run.__module__), t.seq)
    )


def select(tasks: list[Task], only: Iterable[str] = (), skip: Iterable[str] = ()) -> list[Task]:
    """The tasks `--only` / `--skip` leave; an unknown name is a usage error."""
    only, skip = list(only), list(skip)
    known = {t.name for t in tasks}
    for name in [*only, *skip]:
        if name not in known:
            raise UsageError(f"unknown task {name!r} (tasks: {', '.join(sorted(known))})")
    return [t for t in tasks if (not only or t.name in only) and t.name not in skip]


def status_of(findings: list[Finding]) -> Status:
    """A task's status from its worst finding: critical fails it, a warning warns."""
    return {"critical": "fail", "warning": "warn"}.get(worst(f.severity for f in findings), "pass")  # type: ignore[return-value]


async def run_task(t: Task, ctx: TaskContext) -> TaskResult:
    """Run one task; a backend it cannot reach makes it `unreachable`, any other error
    `fail`, and neither stops the run."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    error: str | None = None
    try:
        outcome = await t.run(ctx)
        status: Status = "unreachable" if outcome.unreachable else status_of(outcome.findings)
    except Skip as exc:
        outcome, status = Outcome(summary=str(exc)), "skipped"
    except Unsupported as exc:  # e.g. VictoriaMetrics has no rules API without vmalert
        outcome, status = Outcome(summary=f"skipped: {exc.reason}"), "skipped"
    except BackendUnreachable as exc:
        error = str(exc)
        outcome = Outcome(summary=f"could not reach {exc.backend}")
        outcome.findings.append(Finding("critical", exc.backend, error, backend_error=error))
        status = "unreachable"
    except (BackendError, OpskitError) as exc:
        error = str(exc)
        outcome = Outcome(summary=error)
        outcome.add("critical", getattr(exc, "backend", t.name), error)
        status = "fail"
    except Exception as exc:  # a bug in one task must not end the run
        error = f"internal error: {type(exc).__name__}: {exc}"[:300]
        outcome = Outcome(summary=error)
        outcome.add("critical", t.name, error)
        status = "fail"
    return TaskResult(
        task=t.name,
        cadence=t.cadence,
        title=t.title,
        status=status,
        summary=outcome.summary or _summary(outcome.findings),
        findings=outcome.findings,
        data=outcome.data,
        duration=round(time.perf_counter() - t0, 3),
        started_at=started,
        error=error,
    )


def _summary(findings: list[Finding]) -> str:
    problems = [f for f in findings if f.actionable]
    if not problems:
        if len(findings) == 1:
            return f"{findings[0].subject}: {findings[0].summary}"
        return f"{len(findings)} checked, no problems" if findings else "ok"
    first = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{first.subject}: {first.summary}{more}"


def exit_code(results: list[TaskResult]) -> int:
    """The one rule of opskit.findings over every task's findings; a task that could not
    reach its backend counts as unreachable (3)."""
    return findings_exit_code(
        (f for r in results for f in r.findings),
        unreachable=any(r.status == "unreachable" for r in results),
    )


async def run_cadence(
    cadence: str,
    ctx: TaskContext,
    selected: list[Task],
    on_start: Callable[[Task], None] | None = None,
    on_done: Callable[[TaskResult], None] | None = None,
) -> RunReport:
    """Run the selected tasks one after another (a full backup should not compete with
    the checks for the cluster), reporting progress through the callbacks."""
    started = datetime.now(UTC)
    results = []
    for t in selected:
        if on_start is not None:
            on_start(t)
        result = await run_task(t, ctx)
        results.append(result)
        if on_done is not None:
            on_done(result)
    return RunReport(
        cadence=cadence,
        context=ctx.settings.context,
        started_at=started,
        finished_at=datetime.now(UTC),
        dry_run=ctx.dry_run,
        results=results,
        exit_code=exit_code(results),
    )
