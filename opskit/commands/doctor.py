"""`opskit doctor`: the README's troubleshooting guide, automated (docs/doctor.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from opskit.commands.common import App, pass_app, run
from opskit.findings import SEVERITIES
from opskit.output import console, esc, print_json, styled

if TYPE_CHECKING:
    from opskit.findings import Finding
    from opskit.tasks.doctor import DoctorReport

AREA_NAMES = ("scraping", "logs", "alerts", "memory", "tracing", "cluster")
MARK = {
    "ok": "[green]ok[/]",
    "info": "[cyan]info[/]",
    "warning": "[yellow]warning[/]",
    "critical": "[bold red]critical[/]",
}


def _evidence(f: Finding) -> str:
    def scalar(v: object) -> bool:
        return isinstance(v, int | float | str)

    numbers = ", ".join(
        f"{k}={v if scalar(v) else ','.join(map(str, v))}"
        for k, v in f.evidence.items()
        if scalar(v) or (isinstance(v, list) and v and all(map(scalar, v)))
    )
    return f"[dim]evidence ({esc(f.source)}): {esc(numbers)}[/]"


def render(report: DoctorReport, verbose: bool) -> None:
    """Findings under the README's headings: problems first, passed checks with -v."""
    from rich.table import Table

    out = console()
    out.print(f"[bold]context[/] {esc(report.context)}")
    for area in report.areas:
        out.print(f"\n[bold underline]{esc(area.title)}[/]  {styled(area.worst)}")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=9, no_wrap=True)
        grid.add_column()
        shown = [f for f in area.findings if verbose or f.severity not in ("ok", "info")]
        failed: dict[str, list[Finding]] = {}
        for f in shown:
            if f.backend_error:
                failed.setdefault(f.summary, []).append(f)
        for summary, fs in failed.items():  # one row per unreadable backend, not per check
            checks = ", ".join(f.check for f in fs)
            grid.add_row(
                MARK["critical"],
                f"{esc(summary)}\n[dim]checks not run: {checks}[/]\n-> {esc(fs[0].action)}",
            )
        shown = [f for f in shown if not f.backend_error]
        for f in sorted(shown, key=lambda f: -SEVERITIES.index(f.severity)):
            lines = [f"[bold]{esc(f.check)}[/]: {esc(f.summary)}", _evidence(f)]
            if f.action:
                lines.append(f"-> {esc(f.action)}")
            grid.add_row(MARK[f.severity], "\n".join(lines))
        if grid.row_count:
            out.print(grid)
        hidden = sum(f.severity in ("ok", "info") for f in area.findings) if not verbose else 0
        if hidden:
            out.print(f"  [dim]{hidden} finding(s) ok or informational (-v shows them)[/]")
        not_served: dict[str, list[str]] = {}  # what the backend lacks (errors.Unsupported)
        for f in area.findings if not verbose else ():
            if "unsupported" in f.evidence:
                not_served.setdefault(str(f.evidence["unsupported"]), []).append(f.check)
        for reason, names in not_served.items():
            out.print(f"  [yellow]not checked ({', '.join(names)}): {esc(reason)}[/]")
    c = report.counts
    out.print(
        f"\n{c['critical']} critical, {c['warning']} warning(s), {c['ok'] + c['info']} ok"
        + (f"; could not read: {', '.join(report.unreachable)}" if report.unreachable else "")
    )


@click.command()
@click.option("--only", type=click.Choice(AREA_NAMES), help="Run one area's checks only.")
@click.option(
    "--wait",
    "growth_wait",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds between the two doc counts of today's log indices (doctor.growth_wait).",
)
@click.option("-v", "--verbose", is_flag=True, help="Also show the checks that passed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def doctor(
    app: App, only: str | None, growth_wait: float | None, verbose: bool, as_json: bool
) -> int:
    """Walk the monitoring README's troubleshooting guide against the live stack.

    Exit 0 nothing wrong, 1 warnings, 2 problems, 3 a backend could not be read (the
    other checks still run and are reported)."""
    from datetime import timedelta

    from opskit.tasks.doctor import run_doctor

    options = app.settings.doctor
    if growth_wait is not None:
        options = options.model_copy(update={"growth_wait": timedelta(seconds=growth_wait)})

    async def go() -> DoctorReport:
        async with app.stack() as stack:
            return await run_doctor(stack, only, options)

    report = run(go())
    if as_json:
        print_json(report)
    else:
        render(report, verbose)
    return report.exit_code
