"""What the doctor reports: findings grouped by the monitoring README's troubleshooting
headings. The `--json` shape is these records through `opskit.models.to_json`
(documented in docs/doctor.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opskit.findings import Finding, Severity, worst

if TYPE_CHECKING:
    from opskit.config import Doctor
    from opskit.stack import Stack


# area id -> the README's troubleshooting heading it automates
AREAS: dict[str, str] = {
    "scraping": "Prometheus Not Scraping Metrics",
    "logs": "Kibana Not Showing Logs (logs not arriving)",
    "alerts": "Alerts Not Firing",
    "memory": "High Memory Usage (and load)",
    "tracing": "Traces Missing (OpenTelemetry Collector and Jaeger)",
    "cluster": "Elasticsearch Cluster (nodes, unassigned shards, disk watermarks)",
}


@dataclass(slots=True)
class AreaReport:
    area: str
    title: str
    findings: list[Finding]

    @property
    def worst(self) -> Severity:
        return worst(f.severity for f in self.findings)


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
