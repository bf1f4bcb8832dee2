"""Typed records of the README's Distributed Tracing: Jaeger's traces and spans, the
per-service figures opskit computes from them, the dependency graph, and the
OpenTelemetry Collector's own metrics. `opskit.models.to_json` gives their `--json`
shapes (docs/cli.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opskit.findings import Severity


@dataclass(slots=True)
class Span:
    span_id: str
    parent_id: str  # "" for a root span (or a parent outside the trace)
    service: str
    operation: str
    start: datetime
    duration_ms: float
    status: str  # ERROR | OK | UNSET (OTel's status; Jaeger's `error` tag counts as ERROR)
    kind: str  # server | client | producer | consumer | internal | ""
    attributes: dict[str, Any] = field(default_factory=dict)  # the span's tags
    message: str = ""  # the error's description or exception message, when failing
    depth: int = 0  # in the span tree (0: a root)

    @property
    def error(self) -> bool:
        return self.status == "ERROR"


@dataclass(slots=True)
class Trace:
    trace_id: str
    service: str  # the root span's service
    operation: str  # the root span's operation
    start: datetime
    duration_ms: float
    spans: list[Span]  # in tree order: each span followed by its children, by start
    errors: int  # failing spans
    services: list[str]  # every service with a span in it

    @property
    def error(self) -> bool:
        return self.errors > 0

    def failing_span(self) -> Span | None:
        """The deepest failing span (where the error began), else None."""
        failing = [s for s in self.spans if s.error]
        return max(failing, key=lambda s: s.depth) if failing else None


@dataclass(slots=True)
class TraceSummary:
    """A trace in a list: what the tables show; `trace` holds the spans (for Enter)."""

    trace_id: str
    service: str
    operation: str
    start: datetime
    duration_ms: float
    spans: int
    errors: int
    error_message: str  # the failing span's `service operation: message`
    trace: Trace | None = None


@dataclass(slots=True)
class ServiceStats:
    """One service's requests over the window, from its entry spans (the spans of the
    service whose parent is in another service or absent: the requests it served)."""

    service: str
    requests: int
    errors: int
    rate_per_s: float  # requests / the seconds the traces cover
    error_rate: float  # errors / requests (NaN with no requests)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    covered_s: float  # the seconds the counted traces cover (the window unless truncated)
    truncated: bool  # the trace limit was reached: the figures are of the newest traces
    last_trace: datetime | None
    state: Severity  # the error rate against tracing.error_rate_warning/critical
    error: str = ""  # why this service's traces could not be read


@dataclass(slots=True)
class Dependency:
    parent: str
    child: str
    calls: int


@dataclass(slots=True)
class TracesOverview:
    """What `opskit traces` prints and the Traces screen shows."""

    start: datetime
    end: datetime
    services: list[ServiceStats]
    slowest: list[TraceSummary]  # slowest first
    failing: list[TraceSummary]  # newest first
    dependencies: list[Dependency]
    dependencies_source: str  # "jaeger /api/dependencies" | "the traces above" | ""
    jaeger_url: str


@dataclass(slots=True)
class CollectorMetric:
    """One of the collector's own metrics: the name it had (of the variants looked for),
    its total since the collector started, and its increase over the window when
    Prometheus scrapes the collector."""

    key: str  # accepted | refused | dropped | send_failed | enqueue_failed | sent | queue
    name: str  # the metric name found ("" when none of the variants is exported)
    total: float  # counter total (gauges: the current value)
    window_increase: float | None = None  # None: Prometheus has no series of it
    capacity: float | None = None  # the queue's capacity (queue only)
    labels: dict[str, str] = field(default_factory=dict)  # the fullest queue's labels


@dataclass(slots=True)
class CollectorJudgement:
    key: str
    severity: Severity
    summary: str


@dataclass(slots=True)
class CollectorReading:
    url: str
    metrics: dict[str, CollectorMetric]
    window_s: float | None  # the window of `window_increase` (None: totals only)
    judgements: list[CollectorJudgement] = field(default_factory=list)
    looked_for: str = ""  # the variants looked for, for "not exported" messages


@dataclass(slots=True)
class IncidentTraces:
    """The traces of the alert's service around its start: failing first, then slowest."""

    service: str  # the Jaeger service searched ("" when none matched the alert)
    start: datetime
    end: datetime
    traces: list[TraceSummary]
    errors: int  # failing traces among those read
    read: int  # traces read in the window
    jaeger_url: str
    note: str = ""  # why nothing was searched

    def link(self, trace_id: str) -> str:
        """The trace in Jaeger's UI."""
        return f"{self.jaeger_url.rstrip('/')}/trace/{trace_id}"
