"""Maintenance reports: Markdown, JSON or HTML chosen by the file's suffix, and the
history kept in the reports directory (one JSON file per run, per cadence) that
`opskit maintenance list` reads."""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opskit.errors import UsageError
from opskit.models import to_json
from opskit.tasks.maintenance.framework import RunReport

if TYPE_CHECKING:
    from opskit.config import Settings

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".html": "html",
    ".htm": "html",
}
MARK = {
    "pass": "PASS",
    "warn": "WARN",
    "fail": "FAIL",
    "unreachable": "UNREACHABLE",
    "skipped": "SKIP",
}


def format_for(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise UsageError(f"--report {path}: unknown suffix {path.suffix!r} (one of {known})")
    return fmt


def as_json(report: RunReport) -> str:
    return json.dumps(to_json(report), indent=2, default=str, allow_nan=False) + "\n"


def as_markdown(report: RunReport) -> str:
    dry = " (dry run)" if report.dry_run else ""
    lines = [
        f"# opskit {report.cadence} maintenance{dry}",
        "",
        f"Context `{report.context}`, {report.started_at:%Y-%m-%d %H:%M:%S} UTC,"
        f" exit code {report.exit_code}.",
        "",
        "| task | status | summary | seconds |",
        "|---|---|---|---|",
    ]
    for r in report.results:
        summary = r.summary.replace("|", "\\|")
        lines.append(f"| {r.task} | {MARK[r.status]} | {summary} | {r.duration:.1f} |")
    for r in report.results:
        lines += ["", f"## {r.title} (`{r.task}`): {MARK[r.status]}", ""]
        lines += [f"- **{f.severity}** {f.subject}: {f.summary}" for f in r.findings] or [
            "- nothing"
        ]
    return "\n".join(lines) + "\n"


def as_html(report: RunReport) -> str:
    e = html.escape
    rows = "".join(
        f"<tr class='{r.status}'><td>{e(r.task)}</td><td>{MARK[r.status]}</td>"
        f"<td>{e(r.summary)}</td><td>{r.duration:.1f}</td></tr>"
        for r in report.results
    )
    sections = "".join(
        f"<h2>{e(r.title)} <small>{MARK[r.status]}</small></h2><ul>"
        + "".join(
            f"<li class='{f.severity}'><b>{e(f.severity)}</b> {e(f.subject)}: {e(f.summary)}</li>"
            for f in r.findings
        )
        + "</ul>"
        for r in report.results
    )
    title = f"opskit {e(report.cadence)} maintenance" + (" (dry run)" if report.dry_run else "")
    style = (
        "body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}"
        ".fail,.unreachable{color:#b00}.warn{color:#a60}.pass{color:#070}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body><h1>{title}</h1>"
        f"<p>context {e(report.context)}, {report.started_at:%Y-%m-%d %H:%M:%S} UTC,"
        f" exit code {report.exit_code}</p><table><tr><th>task</th><th>status</th>"
        f"<th>summary</th><th>seconds</th></tr>{rows}</table>{sections}</body></html>\n"
    )


RENDER = {"json": as_json, "markdown": as_markdown, "html": as_html}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: RunReport, path: Path) -> None:
    _atomic_write(path, RENDER[format_for(path)](report))


def reports_dir(settings: Settings) -> Path:
    configured = settings.maintenance.reports_dir
    if configured is not None:
        return configured.expanduser()
    from opskit.config import state_path

    return state_path() / "reports"


def store(report: RunReport, directory: Path, keep: int) -> Path:
    """Keep the run in the history (newest `keep` per cadence); returns its path."""
    folder = directory / report.cadence
    path = folder / f"{report.started_at:%Y%m%dT%H%M%S%fZ}.json"
    _atomic_write(path, as_json(report))
    for old in sorted(folder.glob("*.json"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


def history(directory: Path) -> list[dict[str, Any]]:
    """Every stored run, newest first; unreadable files are skipped."""
    runs = []
    for path in directory.glob("*/*.json"):
        try:
            runs.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(runs, key=lambda r: str(r.get("started_at", "")), reverse=True)


def last_results(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(cadence, task) -> that task's most recent stored result."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for run in history(directory):
        for r in run.get("results") or []:
            out.setdefault((str(r.get("cadence")), str(r.get("task"))), r)
    return out
