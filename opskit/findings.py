"""The one judgement model: a `Finding`, one severity scale, and one rule from findings
to an exit code. `opskit status`, the doctor, the maintenance tasks and the TUI all
judge with these (docs/cli.md has the exit-code table)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from opskit.errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNREACHABLE, EXIT_WARNING

Severity = Literal["ok", "info", "warning", "critical"]
# in rising order; ok and info mean nothing to do
SEVERITIES: tuple[Severity, ...] = ("ok", "info", "warning", "critical")


@dataclass(slots=True)
class Finding:
    """One thing looked at and judged."""

    severity: Severity
    subject: str  # what it is about: a job, index, queue, alert, source ("" for the whole)
    summary: str  # one line, no secrets
    source: str = ""  # where it came from: "targets", "prometheus GET /api/v1/targets"
    check: str = ""  # the check that produced it, e.g. "targets_down"
    evidence: dict[str, Any] = field(default_factory=dict)  # the numbers behind it
    action: str = ""  # the next step, one sentence ("" when nothing to do)
    backend_error: str | None = None  # set when the check could not read its backend

    @property
    def actionable(self) -> bool:
        return self.severity in ("warning", "critical")


def worst(severities: Iterable[Severity]) -> Severity:
    return max(severities, key=SEVERITIES.index, default="ok")


def exit_code(findings: Iterable[Finding], *, unreachable: bool = False) -> int:
    """3 a backend could not be read, 2 a critical finding, 1 a warning, else 0."""
    found = list(findings)
    if unreachable or any(f.backend_error for f in found):
        return EXIT_UNREACHABLE
    return {"critical": EXIT_CRITICAL, "warning": EXIT_WARNING}.get(
        worst(f.severity for f in found), EXIT_OK
    )
