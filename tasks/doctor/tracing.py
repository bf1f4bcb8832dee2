"""Traces missing (the README's Distributed Tracing: OpenTelemetry Collector + Jaeger):
spans refused or dropped by the collector, an exporter that cannot deliver to Jaeger,
Jaeger's query API, and services that stopped sending traces. Thresholds are
`[tracing]`'s (opskit.tracing explains them)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from opskit.durations import format_duration
from opskit.findings import Finding, Severity
from opskit.models_tracing import CollectorReading
from opskit.tasks.doctor.model import Context

METRICS_API = "otel-collector GET /metrics"
SERVICES_API = "jaeger GET /api/services + /api/traces"

ACTIONS = {
    "refused": "The collector refuses spans when its memory_limiter is over its limit or "
    "payloads are bad: give it memory (or lower the senders' rate), and read its log for "
    "the receiver's errors.",
    "failed": "A receiver failed to process spans: read the collector's log for the error.",
    "dropped": "Spans were lost in a processor: read the collector's log, check its "
    "memory_limiter and batch settings.",
    "enqueue_failed": "The exporter's sending queue was full and spans were dropped: Jaeger "
    "is too slow or unreachable from the collector; raise sending_queue.queue_size only "
    "once Jaeger keeps up.",
    "send_failed": "The collector's exporter cannot deliver to Jaeger: is Jaeger running "
    "and reachable from the collector at the exporter's endpoint (4317 OTLP/gRPC)? Its "
    "log names the error.",
    "queue": "The exporter's queue is filling: Jaeger is not keeping up or not reachable; "
    "once full, new spans are dropped.",
}


async def _reading(ctx: Context) -> CollectorReading:
    reading: CollectorReading = await ctx.once("collector", ctx.stack.collector)
    return reading


def _disabled(check: str) -> list[Finding]:
    return [
        Finding(
            check=check,
            severity="info",
            subject="tracing",
            summary="tracing is disabled ([tracing] enabled = false)",
            source="config",
        )
    ]


def _finding(check: str, reading: CollectorReading, key: str) -> Finding | None:
    judged = next((j for j in reading.judgements if j.key == key), None)
    if judged is None:
        return None
    m = reading.metrics[key]
    evidence: dict[str, object] = {"metric": m.name, "total": m.total}
    if m.window_increase is not None:
        evidence["window_increase"] = round(m.window_increase, 2)
        evidence["window_s"] = reading.window_s or 0
    if m.capacity is not None:
        evidence["capacity"] = m.capacity
    if m.labels.get("exporter"):
        evidence["exporter"] = m.labels["exporter"]
    return Finding(
        check=check,
        severity=judged.severity,
        subject="otel-collector",
        summary=judged.summary,
        evidence=evidence,
        source=METRICS_API + (" + prometheus increase()" if m.window_increase is not None else ""),
        action=ACTIONS[key] if judged.severity in ("warning", "critical") else "",
    )


async def collector_spans(ctx: Context) -> list[Finding]:
    """Spans refused, failed or dropped by the collector."""
    if not ctx.stack.settings.tracing.enabled:
        return _disabled("collector_spans")
    reading = await _reading(ctx)
    found = [_finding("collector_spans", reading, k) for k in ("refused", "failed", "dropped")]
    out = [f for f in found if f is not None]
    if not reading.metrics:
        out.append(
            Finding(
                check="collector_spans",
                severity="warning",
                subject="otel-collector",
                summary="the collector exports none of the span metrics looked for",
                evidence={"looked_for": reading.looked_for},
                source=METRICS_API,
                action="Enable the collector's own metrics (service::telemetry::metrics, "
                "level normal or detailed) and check [tracing] otel_metrics_url.",
            )
        )
    return out


async def exporter_to_jaeger(ctx: Context) -> list[Finding]:
    """The exporter's failures, its queue, and spans accepted but none exported."""
    if not ctx.stack.settings.tracing.enabled:
        return _disabled("exporter_to_jaeger")
    reading = await _reading(ctx)
    found = [
        _finding("exporter_to_jaeger", reading, k)
        for k in ("send_failed", "enqueue_failed", "queue")
    ]
    out = [f for f in found if f is not None]
    accepted, sent = reading.metrics.get("accepted"), reading.metrics.get("sent")
    if (
        accepted is not None
        and sent is not None
        and accepted.window_increase
        and accepted.window_increase > 0
        and not sent.window_increase
    ):
        out.append(
            Finding(
                check="exporter_to_jaeger",
                severity="critical",
                subject="otel-collector",
                summary=f"{accepted.window_increase:.0f} spans accepted and none exported in the "
                "window",
                evidence={"accepted": accepted.window_increase, "sent": 0},
                source=METRICS_API + " + prometheus increase()",
                action=ACTIONS["send_failed"],
            )
        )
    return out


async def jaeger_query(ctx: Context) -> list[Finding]:
    """Jaeger's query API answers (a failure is this check's backend error)."""
    cfg = ctx.stack.settings.tracing
    if not cfg.enabled:
        return _disabled("jaeger_query")
    services = await ctx.once("jaeger_services", ctx.stack.jaeger.services)
    return [
        Finding(
            check="jaeger_query",
            severity="ok",
            subject="jaeger",
            summary=f"Jaeger's query API answers: {len(services)} service(s) with traces",
            evidence={"services": list(services), "url": cfg.jaeger_url},
            source="jaeger GET /api/services",
        )
    ]


async def services_silent(ctx: Context) -> list[Finding]:
    """A service with traces in `[tracing] window` but none in the last `silent_after`
    stopped sending them; one of `[tracing] services` Jaeger never saw never started."""
    cfg = ctx.stack.settings.tracing
    if not cfg.enabled:
        return _disabled("services_silent")
    jaeger = ctx.stack.jaeger
    known: list[str] = await ctx.once("jaeger_services", jaeger.services)
    names = sorted({*known, *cfg.services} - {"jaeger"})
    recent_from = ctx.now - cfg.silent_after
    window_from = ctx.now - cfg.window

    async def one(name: str) -> Finding:
        recent = await jaeger.traces(name, recent_from, ctx.now, 1)
        if recent:
            return Finding(
                check="services_silent",
                severity="ok",
                subject=name,
                summary=f"{name} sends traces (one in the last {_span(cfg.silent_after)})",
                evidence={"last_trace": recent[0].start.isoformat()},
                source=SERVICES_API,
            )
        earlier = await jaeger.traces(name, window_from, ctx.now, 1) if name in known else []
        last: datetime | None = earlier[0].start if earlier else None
        severity: Severity = "warning"
        if last is not None:
            summary = (
                f"{name} stopped sending traces: none in the last {_span(cfg.silent_after)}, "
                f"the last at {last.strftime('%H:%M:%S')} UTC"
            )
        elif name in known:
            summary = f"{name} sent no traces in the last {_span(cfg.window)}"
        else:
            summary = f"{name} ([tracing] services) never sent a trace to this Jaeger"
        return Finding(
            check="services_silent",
            severity=severity,
            subject=name,
            summary=summary,
            evidence={
                "last_trace": last.isoformat() if last else None,
                "silent_after_s": cfg.silent_after.total_seconds(),
                "window_s": cfg.window.total_seconds(),
            },
            source=SERVICES_API,
            action=f"Is {name} running and serving requests? Check its OTel exporter "
            "endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, 4318/4317) reaches the collector, and the "
            "collector's refused/dropped spans above.",
        )

    return list(await asyncio.gather(*(one(n) for n in names)))


def _span(value: timedelta) -> str:
    return format_duration(value)
