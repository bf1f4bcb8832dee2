"""What the doctor reports: findings grouped by the monitoring README's troubleshooting
headings. The `--json` shape is these records through `opskit.models.to_json`
(documented in docs/doctor.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from opskit.errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNREACHABLE, EXIT_WARNING

if TYPE_CHECKING:
    from opskit.config import Doctor
    from opskit.stack import Stack

Level = Literal["ok", "info", "warning", "critical"]
LEVELS: tuple[Level, ...] = ("ok", "info", "warning", "critical")

# area id -> the README's troubleshooting heading it automates
AREAS: dict[str, str] = {
    "scraping": "Prometheus Not Scraping Metrics",
    "logs": "Kibana Not Showing Logs (logs not arriving)",
    "alerts": "Alerts Not Firing",
    "memory": "High Memory Usage (and load)",
}


@dataclass(slots=True)
class Finding:
    """One thing the doctor looked at. `severity` ok/info means nothing to do."""

    check: str  # the check that produced it, e.g. "targets_down"
    severity: Level
    subject: str  # what it is about: a job, index, node, rule, source ("" for the whole)
    summary: str  # one line
    evidence: dict[str, Any]  # the numbers behind it
    source: str  # the API they came from, e.g. "prometheus GET /api/v1/targets"
    action: str = ""  # the next step, one sentence ("" when nothing to do)
    backend_error: str | None = None  # set when the check could not read its backend


@dataclass(slots=True)
class AreaReport:
    area: str
    title: str
    findings: list[Finding]

    @property
    def worst(self) -> Level:
        return max((f.severity for f in self.findings), key=LEVELS.index, default="ok")


@dataclass(slots=True)
class DoctorReport:
    context: str
    generated_at: datetime
    areas: list[AreaReport]
    unreachable: list[str]  # backends a check could not read
    counts: dict[str, int]  # findings per severity
    exit_code: int

    def findings(self, check: str | None = None) -> list[Finding]:
        return [f for a in self.areas for f in a.findings if check is None or f.check == check]


def exit_code(findings: list[Finding]) -> int:
    """3 a backend could not be read, 2 a critical finding, 1 a warning, else 0."""
    if any(f.backend_error for f in findings):
        return EXIT_UNREACHABLE
    if any(f.severity == "critical" for f in findings):
        return EXIT_CRITICAL
    if any(f.severity == "warning" for f in findings):
        return EXIT_WARNING
    return EXIT_OK


class Context:
    """What every check gets: the stack, the thresholds, and shared fetches (two checks
    asking for the same API share one request, and its error)."""

    def __init__(self, stack: Stack, options: Doctor, now: datetime) -> None:
        self.stack = stack
        self.options = options
        self.now = now
        self._cache: dict[str, asyncio.Task[Any]] = {}

    async def once(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self._cache:
            self._cache[key] = asyncio.ensure_future(fetch())
        return await self._cache[key]


@dataclass(frozen=True, slots=True)
class Check:
    area: str
    name: str
    backend: str  # the backend whose failure stops it
    run: Callable[[Context], Awaitable[list[Finding]]]
