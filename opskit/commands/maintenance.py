"""`opskit maintenance weekly|monthly|quarterly|list`: the README's maintenance
checklists run against the live stack (docs/maintenance.md). Never imports textual."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from opskit.commands.common import App, ask, pass_app
from opskit.output import console, esc, print_json, table
from opskit.when import CADENCES

if TYPE_CHECKING:
    from rich.console import Console

    from opskit.tasks.maintenance.framework import RunReport, Task, TaskResult

COLOR = {
    "pass": "green",
    "warn": "yellow",
    "fail": "bold red",
    "unreachable": "bold magenta",
    "skipped": "dim",
}


def mark(status: str) -> str:
    return f"[{COLOR.get(status, 'white')}]{status}[/]"


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def summary_table(report: RunReport) -> None:
    out = console()
    t = table(
        f"{report.cadence} maintenance" + (" (dry run)" if report.dry_run else ""),
        "task",
        "status",
        "summary",
        "seconds",
    )
    for r in report.results:
        t.add_row(esc(r.task), mark(r.status), esc(r.summary), f"{r.duration:.1f}")
    out.print(t)
    problems = [(r, f) for r in report.results for f in r.findings if f.actionable]
    for r, f in problems:
        out.print(f"  {mark(f.severity)} {esc(r.task)}: {esc(f.subject)}: {esc(f.summary)}")
    if report.published:
        out.print(f"[dim]published: {esc(report.published)}[/]")
    if report.report_path:
        out.print(f"[dim]report kept in {esc(report.report_path)}[/]")


def _apply_destructive(selected: list[Task], dry_run: bool, yes: bool) -> bool:
    """Whether destructive tasks may act: --yes, or a yes at the terminal. With no
    terminal and no --yes (cron) they plan only; the run says so and reports them as a
    warning ("not applied"), the other tasks run as usual."""
    destructive = [t.name for t in selected if t.destructive]
    if dry_run or not destructive:
        return not dry_run
    answer = ask(
        f"{', '.join(destructive)} will act as configured (e.g. delete old indices). Go on?", yes
    )
    if answer is None:
        print(
            f"opskit: {', '.join(destructive)}: plan only (no terminal; pass --yes to apply)",
            file=sys.stderr,
        )
    return bool(answer)


def cadence_command(cadence: str) -> click.Command:
    @click.command(name=cadence)
    @click.option("--only", multiple=True, metavar="TASK", help="Run only this task (repeatable).")
    @click.option("--skip", multiple=True, metavar="TASK", help="Leave this task out (repeatable).")
    @click.option(
        "--dry-run", is_flag=True, help="Read and plan only: nothing created, deleted or published."
    )
    @click.option(
        "--report",
        "report_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Also write the report here: .md, .json or .html.",
    )
    @click.option("--yes", is_flag=True, help="Let destructive tasks act without asking (cron).")
    @click.option(
        "--wait",
        type=click.FloatRange(min=0),
        default=0.0,
        help="Seconds to wait for another maintenance run to finish (default: refuse at once).",
    )
    @click.option("--json", "as_json", is_flag=True, help="The run report as JSON on stdout.")
    @pass_app
    def command(
        app: App,
        only: tuple[str, ...],
        skip: tuple[str, ...],
        dry_run: bool,
        report_file: Path | None,
        yes: bool,
        wait: float,
        as_json: bool,
    ) -> int:
        from opskit.tasks.maintenance.framework import select, tasks_for
        from opskit.tasks.maintenance.reports import format_for, write_report
        from opskit.tasks.maintenance.runner import execute

        if report_file is not None:
            format_for(report_file)
        selected = select(tasks_for(cadence), only, skip)
        apply = _apply_destructive(selected, dry_run, yes)
        err = _stderr()

        def started(t: Task) -> None:
            err.print(f"[dim]…[/] {esc(t.name)}: {esc(t.title)}")

        def done(r: TaskResult) -> None:
            err.print(f"  {mark(r.status)} {esc(r.task)} ({r.duration:.1f}s)")

        report = execute(
            app.settings,
            cadence,
            selected=selected,
            dry_run=dry_run,
            apply=apply,
            lock_wait=wait,
            config_path=app.loaded().path,
            env_file=app.env_file,
            log=app.request_log(),
            on_start=started,
            on_done=done,
        )
        if report_file is not None:
            write_report(report, report_file)
        if as_json:
            print_json(report)
        else:
            summary_table(report)
        return report.exit_code

    command.help = (
        f"Run the {cadence} maintenance checklist against the stack.\n\n"
        "Exit 0 all passed, 1 warnings, 2 failures, 3 a backend unreachable (the other "
        "tasks still run), 75 another maintenance run holds the lock."
    )
    return command


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def list_tasks(app: App, as_json: bool) -> int:
    """Every task by cadence, with when it last ran and how it ended."""
    from opskit.tasks.maintenance.framework import tasks_for
    from opskit.tasks.maintenance.reports import last_results, reports_dir
    from opskit.when import parse_when

    settings = app.settings
    last = last_results(reports_dir(settings))
    rows = []
    for cadence in CADENCES:
        when = parse_when(cadence, getattr(settings.schedule, cadence))
        for t in tasks_for(cadence):
            r = last.get((cadence, t.name), {})
            rows.append(
                {
                    "cadence": cadence,
                    "task": t.name,
                    "title": t.title,
                    "reads": t.reads,
                    "destructive": t.destructive,
                    "schedule": getattr(settings.schedule, cadence),
                    "cron": when.cron(),
                    "last_run": r.get("started_at"),
                    "last_status": r.get("status"),
                    "last_summary": r.get("summary"),
                }
            )
    if as_json:
        print_json(rows)
        return 0
    grid = table(
        None,
        *("cadence", "task", "title", "schedule", "last run", "status", "summary"),
        kinds={"title": "text"},
    )
    for row in rows:
        status = row["last_status"]
        grid.add_row(
            row["cadence"],
            row["task"],
            esc(row["title"]),
            esc(row["schedule"]),
            esc(str(row["last_run"] or "never")[:19].replace("T", " ")),
            mark(str(status)) if status else "-",
            esc(row["last_summary"] or ""),
        )
    console().print(grid)
    return 0


@click.group(name="maintenance")
def maintenance() -> None:
    """The README's weekly, monthly and quarterly maintenance checklists."""


for _cadence in CADENCES:
    maintenance.add_command(cadence_command(_cadence))
maintenance.add_command(list_tasks)
