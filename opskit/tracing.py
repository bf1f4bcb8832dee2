"""The README's Distributed Tracing, judged: the OpenTelemetry Collector's own metrics
(with the metric names each Collector version gives them, probed in order like
`opskit.exporters`), the thresholds an operator alerts on, and the per-service figures
computed from Jaeger's traces. Pure functions plus orchestration over the clients it is
given (`opskit.stack` wires them); no I/O of its own.

Thresholds (docs/configuration.md, `[tracing]`), after the Collector's own
monitoring guide (docs/monitoring.md of open-telemetry/opentelemetry-collector):

- spans dropped (processor `dropped`, exporter `enqueue_failed`: the queue was full):
  data lost, critical when any in the window;
- spans refused by a receiver (memory_limiter back-pressure, bad payloads): the
  senders are told to retry, warning when any in the window;
- spans the exporter failed to send (Jaeger unreachable from the collector): warning
  (retried from the queue, lost when the queue fills);
- the exporter queue at `queue_warning_ratio` of its capacity: warning; full: critical.

Counters are judged on their increase over `metrics_window` when Prometheus scrapes the
collector (the lab's does); otherwise on their totals since the collector started,
which is only informational (a refusal last week is not an incident now).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from opskit.errors import BackendError
from opskit.findings import Severity, worst
from opskit.models import ServiceHealth
from opskit.models_tracing import (
    CollectorJudgement,
    CollectorMetric,
    CollectorReading,
    Dependency,
    ServiceStats,
    Trace,
    TracesOverview,
    TraceSummary,
)

if TYPE_CHECKING:
    from opskit.clients.jaeger import JaegerClient
    from opskit.config import Tracing
    from opskit.exporters import Querier

Scrape = dict[str, list[tuple[dict[str, str], float]]]


@dataclass(frozen=True, slots=True)
class CollectorSignal:
    key: str
    what: str
    names: tuple[str, ...]  # the variants, newest Collector versions first
    gauge: bool = False


# Names read from the Collector's source and a running Jaeger v2 (1.76, Collector
# 0.13x): the OTel Go SDK's Prometheus exporter adds `_total` to counters; Collectors
# before 0.94 (OpenCensus) exported them without it. `otelcol_processor_dropped_spans`
# is gone from newer processors (their refusals show as the receiver's `refused`).
COLLECTOR_SIGNALS: dict[str, CollectorSignal] = {
    s.key: s
    for s in (
        CollectorSignal(
            "accepted",
            "spans accepted",
            ("otelcol_receiver_accepted_spans_total", "otelcol_receiver_accepted_spans"),
        ),
        CollectorSignal(
            "refused",
            "spans refused",
            ("otelcol_receiver_refused_spans_total", "otelcol_receiver_refused_spans"),
        ),
        CollectorSignal(
            "failed",
            "spans a receiver failed to process",
            ("otelcol_receiver_failed_spans_total", "otelcol_receiver_failed_spans"),
        ),
        CollectorSignal(
            "dropped",
            "spans dropped",
            (
                "otelcol_processor_dropped_spans_total",
                "otelcol_processor_dropped_spans",
                "otelcol_processor_refused_spans_total",
                "otelcol_processor_refused_spans",
            ),
        ),
        CollectorSignal(
            "enqueue_failed",
            "spans dropped: exporter queue full",
            (
                "otelcol_exporter_enqueue_failed_spans_total",
                "otelcol_exporter_enqueue_failed_spans",
            ),
        ),
        CollectorSignal(
            "send_failed",
            "spans the exporter failed to send",
            ("otelcol_exporter_send_failed_spans_total", "otelcol_exporter_send_failed_spans"),
        ),
        CollectorSignal(
            "sent",
            "spans exported",
            ("otelcol_exporter_sent_spans_total", "otelcol_exporter_sent_spans"),
        ),
        CollectorSignal("queue", "exporter queue", ("otelcol_exporter_queue_size",), True),
    )
}
QUEUE_CAPACITY = "otelcol_exporter_queue_capacity"


def looked_for() -> str:
    return "; ".join(f"{s.key}: {' | '.join(s.names)}" for s in COLLECTOR_SIGNALS.values())


def _traces_only(labels: dict[str, str]) -> bool:
    """Queue series of other signals (newer Collectors label them) are not ours."""
    kind = labels.get("data_type") or labels.get("otel_signal") or "traces"
    return kind in ("traces", "spans")


def read_collector(scrape: Scrape, url: str) -> CollectorReading:
    """The first variant present of each signal, summed over its series (the queue: the
    fullest exporter queue of traces, with its capacity)."""
    metrics: dict[str, CollectorMetric] = {}
    for signal in COLLECTOR_SIGNALS.values():
        name = next((n for n in signal.names if n in scrape), "")
        if not name:
            continue
        series = scrape[name]
        if signal.key != "queue":
            metrics[signal.key] = CollectorMetric(signal.key, name, sum(v for _, v in series))
            continue
        capacity = {_queue_key(lbl): v for lbl, v in scrape.get(QUEUE_CAPACITY, [])}
        best: CollectorMetric | None = None
        for labels, value in series:
            if not _traces_only(labels):
                continue
            cap = capacity.get(_queue_key(labels))
            ratio = value / cap if cap else 0.0
            if best is None or ratio > (best.total / best.capacity if best.capacity else 0.0):
                best = CollectorMetric("queue", name, value, None, cap, dict(labels))
        if best is not None:
            metrics["queue"] = best
    return CollectorReading(url, metrics, None, looked_for=looked_for())


def _queue_key(labels: dict[str, str]) -> tuple[str, str]:
    return labels.get("exporter", ""), labels.get("data_type", "")


async def window_increases(
    prom: Querier, reading: CollectorReading, window: timedelta, selector: str = ""
) -> None:
    """Each counter's increase over `window` from Prometheus (when it scrapes the
    collector), into `reading`; Prometheus failing leaves the totals."""
    counters = [m for m in reading.metrics.values() if m.key != "queue"]
    if not counters:
        return
    seconds = int(window.total_seconds())
    sel = f"{{{selector}}}" if selector else ""

    async def one(m: CollectorMetric) -> float | None:
        samples = await prom.query(f"sum(increase({m.name}{sel}[{seconds}s]))")
        return samples[0].value if samples and not math.isnan(samples[0].value) else None

    try:
        found = await asyncio.gather(*(one(m) for m in counters))
    except BackendError:
        return
    for m, value in zip(counters, found, strict=True):
        m.window_increase = value
    if any(v is not None for v in found):
        reading.window_s = float(seconds)


def judge_collector(reading: CollectorReading, cfg: Tracing) -> list[CollectorJudgement]:
    """The thresholds of the module docstring, one judgement per signal present."""
    out: list[CollectorJudgement] = []
    windowed = reading.window_s is not None
    span = _span(reading.window_s)

    def amount(m: CollectorMetric) -> tuple[float, str]:
        if windowed and m.window_increase is not None:
            return m.window_increase, f"in the last {span}"
        return m.total, "since the collector started"

    rules: tuple[tuple[str, Severity], ...] = (
        ("dropped", "critical"),
        ("enqueue_failed", "critical"),
        ("refused", "warning"),
        ("failed", "warning"),
        ("send_failed", "warning"),
    )
    for key, level in rules:
        m = reading.metrics.get(key)
        if m is None:
            continue
        value, when = amount(m)
        severity: Severity = "ok"
        if value > 0:
            severity = level if windowed and m.window_increase is not None else "info"
        what = COLLECTOR_SIGNALS[key].what
        out.append(CollectorJudgement(key, severity, f"{_n(value)} {what} {when}"))
    q = reading.metrics.get("queue")
    if q is not None:
        if q.capacity:
            ratio = q.total / q.capacity
            severity = (
                "critical"
                if ratio >= 1
                else "warning"
                if ratio >= cfg.queue_warning_ratio
                else "ok"
            )
            exporter = q.labels.get("exporter", "")
            summary = (
                f"exporter queue {exporter} {_n(q.total)}/{_n(q.capacity)} "
                f"({ratio:.0%}, warning at {cfg.queue_warning_ratio:.0%})"
            ).replace("  ", " ")
        else:
            severity, summary = "ok", f"exporter queue {_n(q.total)} (no capacity exported)"
        out.append(CollectorJudgement("queue", severity, summary))
    reading.judgements = out
    return out


def collector_row(reading: CollectorReading, latency_ms: float | None) -> ServiceHealth:
    """The collector's metrics as a row of `opskit health` and the Services screen: the
    numbers in `metrics`, each signal over its threshold in `checks`."""
    numbers: dict[str, float] = {}
    for m in reading.metrics.values():
        numbers[m.key] = m.total
        if m.window_increase is not None:
            numbers[f"{m.key}_window"] = m.window_increase
        if m.capacity is not None:
            numbers["queue_capacity"] = m.capacity
    if reading.window_s is not None:
        numbers["window_s"] = reading.window_s
    if not reading.metrics:
        checks = {"span metrics": "not exported"}
        level: Severity = "warning"
    else:
        level = worst(j.severity for j in reading.judgements)
        checks = {
            j.key.replace("_", " "): j.summary
            for j in reading.judgements
            if j.severity in ("warning", "critical")
        }
    flagged = level if level in ("warning", "critical") else ""
    return ServiceHealth(
        "otel-collector metrics",
        reading.url,
        True,
        200,
        latency_ms,
        "",
        flagged,
        checks,
        numbers,
        flagged,
    )


def _n(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


# ------------------------------------------------------------------ traces, judged


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (what Jaeger's own latency tables use); NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def entry_spans(trace: Trace, service: str) -> list[Any]:
    """The spans through which `service` was asked to do something: its spans whose
    parent is absent or in another service (a Flask request, a Celery task run)."""
    by_id = {s.span_id: s for s in trace.spans}
    return [
        s
        for s in trace.spans
        if s.service == service
        and (not s.parent_id or s.parent_id not in by_id or by_id[s.parent_id].service != service)
    ]


def service_stats(
    service: str,
    traces: Sequence[Trace],
    start: datetime,
    end: datetime,
    limit: int,
    cfg: Tracing,
    oldest: datetime | None = None,
) -> ServiceStats:
    entries = [s for t in traces for s in entry_spans(t, service) if start <= s.start <= end]
    truncated = len(traces) >= limit
    since = max(start, oldest or start)  # Jaeger's store may hold less than the window
    if truncated and entries:  # the newest `limit` traces: the rate over what they cover
        since = min(s.start for s in entries)
    covered = max((end - since).total_seconds(), 1.0)
    errors = sum(s.error for s in entries)
    durations = [s.duration_ms for s in entries]
    requests = len(entries)
    error_rate = errors / requests if requests else math.nan
    state: Severity = "ok"
    if requests and error_rate >= cfg.error_rate_critical:
        state = "critical"
    elif requests and error_rate >= cfg.error_rate_warning:
        state = "warning"
    return ServiceStats(
        service=service,
        requests=requests,
        errors=errors,
        rate_per_s=requests / covered if covered else math.nan,
        error_rate=error_rate,
        p50_ms=percentile(durations, 0.5),
        p95_ms=percentile(durations, 0.95),
        p99_ms=percentile(durations, 0.99),
        covered_s=round(covered, 1),
        truncated=truncated,
        last_trace=max((t.start for t in traces), default=None),
        state=state,
    )


def summarize_trace(trace: Trace, keep: bool = True) -> TraceSummary:
    failing = trace.failing_span()
    message = ""
    if failing is not None:
        message = f"{failing.service} {failing.operation}"
        if failing.message:
            message += f": {failing.message}"
    return TraceSummary(
        trace.trace_id,
        trace.service,
        trace.operation,
        trace.start,
        trace.duration_ms,
        len(trace.spans),
        trace.errors,
        message,
        trace if keep else None,
    )


def dependencies_from(traces: Iterable[Trace]) -> list[Dependency]:
    """Calls between services as the traces show them (a span whose parent is in
    another service), for a Jaeger whose storage computes no dependencies."""
    calls: dict[tuple[str, str], int] = {}
    for t in traces:
        by_id = {s.span_id: s for s in t.spans}
        for s in t.spans:
            parent = by_id.get(s.parent_id)
            if parent is not None and parent.service and s.service and parent.service != s.service:
                key = (parent.service, s.service)
                calls[key] = calls.get(key, 0) + 1
    return [Dependency(p, c, n) for (p, c), n in sorted(calls.items())]


def dependency_lines(deps: Sequence[Dependency]) -> list[str]:
    """The dependency graph as text: each calling service with the services it calls
    below it, and theirs below them (a service reached twice is marked, not repeated)."""
    children: dict[str, list[Dependency]] = {}
    for d in deps:
        children.setdefault(d.parent, []).append(d)
    called = {d.child for d in deps}
    roots = sorted({d.parent for d in deps} - called) or sorted({d.parent for d in deps})[:1]
    lines: list[str] = []
    shown: set[str] = set()

    def walk(name: str, prefix: str, seen: tuple[str, ...]) -> None:
        kids = sorted(children.get(name, []), key=lambda d: d.child)
        for i, d in enumerate(kids):
            last = i == len(kids) - 1
            branch = "└─▶ " if last else "├─▶ "
            again = d.child in seen or (d.child in shown and d.child in children)
            mark = " (see above)" if again else ""
            lines.append(f"{prefix}{branch}{d.child}  {d.calls} call(s){mark}")
            if not again:
                shown.add(d.child)
                walk(d.child, prefix + ("    " if last else "│   "), (*seen, d.child))

    for root in roots:
        lines.append(root)
        shown.add(root)
        walk(root, "", (root,))
    for d in deps:  # cycles with no root: make sure every edge is drawn once
        if d.parent not in shown:
            lines.append(d.parent)
            shown.add(d.parent)
            walk(d.parent, "", (d.parent,))
    return lines


async def overview(
    jaeger: JaegerClient,
    cfg: Tracing,
    service: str | None = None,
    end: datetime | None = None,
    window: timedelta | None = None,
) -> TracesOverview:
    """Per service (or the one `service`) the window's figures, the slowest and the
    failing traces (with their spans), and the dependency graph. A service whose traces
    cannot be read says so in its row; Jaeger itself unreachable raises."""
    end = end or datetime.now(UTC)
    window = window or cfg.window
    start = end - window
    names = [service] if service else await jaeger.services()
    names = [n for n in names if n != "jaeger-all-in-one" or service]

    async def one(name: str) -> tuple[list[Trace], list[Trace], str]:
        try:
            traces, failing = await asyncio.gather(
                jaeger.traces(name, start, end, cfg.limit),
                # older failing traces than the `limit` newest: Jaeger v1 storages (ES,
                # Cassandra, Badger) store the `error` tag; Jaeger v2's memory store does
                # not match it (found on 1.76), and there the failing are among the newest
                jaeger.traces(name, start, end, cfg.slowest, tags={"error": "true"}),
            )
        except BackendError as exc:
            if service:
                raise
            return [], [], f"{exc.title}: {exc.reason}"
        return traces, failing, ""

    read = await asyncio.gather(*(one(n) for n in names))
    # the rates are over the time Jaeger's traces cover: from the oldest trace read (a
    # store younger than the window, or one evicting old traces, holds less)
    starts = [t.start for traces, _, _ in read for t in traces if t.start >= start]
    oldest = min(starts) if starts else None
    results: list[tuple[ServiceStats, list[Trace], list[Trace]]] = []
    for name, (traces, bad, error) in zip(names, read, strict=True):
        stats = service_stats(name, traces, start, end, cfg.limit, cfg, oldest)
        stats.error = error
        results.append((stats, traces, bad))
    every: dict[str, Trace] = {}
    failing: dict[str, Trace] = {}
    for _, traces, bad in results:
        for t in traces:
            every[t.trace_id] = t
            if t.error:
                failing[t.trace_id] = t
        for t in bad:
            failing[t.trace_id] = t
            every.setdefault(t.trace_id, t)
    slowest = sorted(every.values(), key=lambda t: -t.duration_ms)[: cfg.slowest]
    newest_failing = sorted(failing.values(), key=lambda t: t.start, reverse=True)[: cfg.slowest]
    source = "jaeger /api/dependencies"
    try:
        deps = await jaeger.dependencies(end, window.total_seconds())
    except BackendError:
        deps = []
    deps = [d for d in deps if d.parent != d.child]  # calls within a service are no edge
    if service:
        deps = [d for d in deps if service in (d.parent, d.child)]
    if not deps:
        deps = dependencies_from(every.values())
        source = "the traces above" if deps else ""
    return TracesOverview(
        start,
        end,
        [r[0] for r in results],
        [summarize_trace(t) for t in slowest],
        [summarize_trace(t) for t in newest_failing],
        deps,
        source,
        cfg.jaeger_url,
    )


# ------------------------------------------------------------------ text shared by the CLI
# and the TUI


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 100:.1f}"


def tree_lines(t: Trace, attributes: bool = True) -> list[tuple[str, str, bool]]:
    """(span line, attribute line, failing) per span, indented by depth."""
    out = []
    for s in t.spans:
        pad = "  " * s.depth
        status = s.status + (f": {s.message}" if s.message else "")
        line = f"{pad}{s.service} {s.operation}  {ms(s.duration_ms)} ms  {status}"
        if s.kind:
            line += f"  [{s.kind}]"
        attrs = ""
        if attributes and s.attributes:
            attrs = pad + "  " + attribute_text(s.attributes)
        out.append((line, attrs[:400], s.error))
    return out


HIDDEN = ("otel.scope.", "otel.library.", "otel.status_code", "error")


def attribute_text(attributes: dict[str, object]) -> str:
    """`key=value ...`, sorted, whitespace collapsed, the instrumentation's own noise
    (otel.scope.*) and what the status already says left out."""
    return " ".join(
        f"{k}={' '.join(str(v).split())}"
        for k, v in sorted(attributes.items())
        if not k.startswith(HIDDEN)
    )
