"""`opskit drill elasticsearch`, `opskit drill grafana`: restore drills (docs/drills.md).

Each restores a backup into scratch space (indices under a prefix, an organisation),
compares what came back, deletes the scratch objects and reports; the exit code is the
one rule of opskit.findings: 0 all restored as expected, 1 warnings (a live index that
changed since the snapshot, a drill skipped), 2 a restore that failed or differs."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from opskit.commands.common import App, json_option, pass_app, run, writable
from opskit.errors import UsageError
from opskit.models import to_json
from opskit.output import console, esc, print_json, table

if TYPE_CHECKING:
    from opskit.findings import Finding
    from opskit.tasks.drill import EsDrillReport, GrafanaDrillReport

STYLE = {"ok": "green", "pass": "green", "mismatch": "yellow", "warn": "yellow",
         "warning": "yellow", "failed": "bold red", "fail": "bold red",
         "critical": "bold red", "skipped": "dim"}  # fmt: skip


def _styled(text: str) -> str:
    style = STYLE.get(text)
    return f"[{style}]{esc(text)}[/]" if style else esc(text)


def _note(enabled: bool) -> Any:
    if not enabled:
        return None
    return lambda text: print(f"opskit: drill: {text}", file=sys.stderr)


def _show_findings(findings: list[Finding]) -> None:
    out = console()
    for f in findings:
        if f.actionable:
            out.print(f"{_styled(f.severity)} {esc(f.subject)}: {esc(f.summary)}")


def _json(report: EsDrillReport | GrafanaDrillReport) -> dict[str, Any]:
    body: dict[str, Any] = to_json(report)
    return {**body, "status": report.status, "exit_code": report.exit_code}


grace_option = click.option(
    "--leftover-grace",
    default="1h",
    show_default=True,
    help="Scratch objects of an earlier drill older than this are removed first "
    "(younger ones may belong to a drill still running elsewhere).",
)


def _grace(text: str) -> timedelta:
    from opskit.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--leftover-grace: {exc}") from None


@click.group()
def drill() -> None:
    """Restore drills: prove the backups restore, in scratch space only."""


@drill.command("elasticsearch")
@click.option(
    "--repository", help="Snapshot repository (default: elasticsearch.snapshot_repository)."
)
@click.option("--snapshot", "snapshot", help="Drill this snapshot (default: the newest SUCCESS).")
@click.option("--sample", type=int, help="Restore a random sample of N indices (default: all).")
@click.option("--prefix", default="drill-", show_default=True, help="Scratch index prefix.")
@grace_option
@json_option
@pass_app
def drill_elasticsearch_cmd(
    app: App,
    repository: str | None,
    snapshot: str | None,
    sample: int | None,
    prefix: str,
    leftover_grace: str,
    as_json: bool,
) -> int:
    """Restore a snapshot under a scratch prefix, compare documents and mappings with the
    live indices, delete the copies. Exit 0 ok, 1 mismatches, 2 failures, 3 unreachable."""
    from opskit.tasks.drill import check_prefix, drill_elasticsearch

    check_prefix(prefix)
    writable(app, "a restore drill (it writes scratch indices)")
    repo = repository or app.settings.elasticsearch.snapshot_repository

    async def go() -> EsDrillReport:
        async with app.stack() as stack:
            return await drill_elasticsearch(
                stack.elasticsearch, repo, snapshot=snapshot, sample=sample, prefix=prefix,
                grace=_grace(leftover_grace), note=_note(not as_json),
            )  # fmt: skip

    report = run(go())
    if as_json:
        print_json(_json(report))
        return report.exit_code
    out = console()
    if report.snapshot:
        out.print(
            f"drill of {esc(report.repository)}:{esc(report.snapshot)} "
            f"(run {esc(report.run_id)}, scratch {esc(report.prefix + report.run_id)}-*)"
        )
    if report.checks:
        tb = table(None, "index", "status", "health", "restored docs", "live docs", "mapping")
        for c in report.checks:
            live = "-" if c.docs_live is None else str(c.docs_live)
            restored = "-" if c.docs_restored is None else str(c.docs_restored)
            tb.add_row(
                esc(c.index), _styled(c.status), c.health or "-", restored, live, c.mapping or "-"
            )
        out.print(tb)
    _show_findings(report.findings)
    cleaned = f"{len(report.cleaned)} scratch index(es) deleted"
    out.print(f"{_styled(report.status)}: {cleaned}")
    return report.exit_code


@drill.command("grafana")
@click.option(
    "--backup", "backup_spec", default="latest", show_default=True,
    help="A backup: a path, a name in the backup dir, or latest.",
)  # fmt: skip
@grace_option
@json_option
@pass_app
def drill_grafana_cmd(app: App, backup_spec: str, leftover_grace: str, as_json: bool) -> int:
    """Restore a local Grafana backup into a scratch organisation, compare it with the
    backup, delete the organisation. Exit 0 ok, 1 skipped (no server admin) or warnings,
    2 differences or failures, 3 unreachable."""
    from opskit.tasks.drill import drill_grafana

    writable(app, "a restore drill (it writes a scratch organisation)")

    async def go() -> GrafanaDrillReport:
        async with app.stack() as stack:
            return await drill_grafana(
                stack.grafana,
                app.settings,
                backup_spec,
                log=stack.log,
                grace=_grace(leftover_grace),
                note=_note(not as_json),
            )

    report = run(go())
    if as_json:
        print_json(_json(report))
        return report.exit_code
    out = console()
    if report.skipped:
        out.print(f"skipped: {esc(report.skipped)}", style="yellow")
        return report.exit_code
    if report.backup:
        out.print(f"drill of {esc(report.backup)} in organisation {esc(report.org or '-')}")
    for kind, counts in report.compared.items():
        total = counts["ok"] + counts["differs"]
        out.print(f"  {kind}: {counts['ok']}/{total} as in the backup")
    _show_findings(report.findings)
    gone = "deleted" if report.org_deleted else "NOT deleted"
    if report.org:
        out.print(f"{_styled(report.status)}: scratch organisation {esc(report.org)} {gone}")
    return report.exit_code
