"""Traces (issue 20): what `opskit traces` and the incident view ask of Jaeger. The
per-service figures, slowest and failing traces and the dependency graph are computed in
`opskit.tracing` (the live Traces screen polls the same function through the stack);
this module adds one trace by id and the traces around an alert. Prints nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from opskit.models_tracing import IncidentTraces, Trace, TracesOverview
from opskit.tracing import summarize_trace

if TYPE_CHECKING:
    from opskit.models import IncidentAlert
    from opskit.stack import Stack

MAX_INCIDENT_TRACES = 20
# an alert label -> the Jaeger service names it may mean (the lab's and the README's)
SERVICES_OF: dict[str, tuple[str, ...]] = {
    "celery": ("celery-worker", "celery"),
    "celery-worker": ("celery-worker", "celery"),
    "email-service": ("email-service",),
}


async def overview(
    stack: Stack, service: str | None = None, window: timedelta | None = None
) -> TracesOverview:
    return await stack.traces(service, window)


async def trace(stack: Stack, trace_id: str) -> Trace:
    return await stack.jaeger.trace(trace_id)


def alert_service(labels: dict[str, str], known: list[str]) -> str:
    """The Jaeger service an alert is about: its `service`, `job` or `app` label as is
    when Jaeger knows it, else a known alias (SERVICES_OF); "" when none matches."""
    for key in ("service", "service_name", "job", "app"):
        value = labels.get(key, "")
        if not value:
            continue
        for name in (value, *SERVICES_OF.get(value, ())):
            if name in known:
                return name
    return ""


async def incident_traces(
    stack: Stack,
    alert: IncidentAlert,
    before: timedelta | None = None,
    after: timedelta | None = None,
    now: datetime | None = None,
) -> IncidentTraces:
    """The traces of the alert's service from `before` before its start to `after`
    after it (or now): failing first (newest first), then the slowest."""
    from datetime import UTC

    cfg = stack.settings.tracing
    before = before or cfg.incident_before
    after = after or cfg.incident_after
    end_now = now or datetime.now(UTC)
    began = alert.starts_at or end_now
    start, end = began - before, min(began + after, end_now)
    if not cfg.enabled:
        return IncidentTraces("", start, end, [], 0, 0, cfg.jaeger_url, "tracing is disabled")
    known = await stack.jaeger.services()
    service = alert_service(alert.labels, known)
    if not service:
        label = alert.labels.get("service") or alert.labels.get("job") or "(none)"
        return IncidentTraces(
            "", start, end, [], 0, 0, cfg.jaeger_url,
            f"Jaeger has no traces of service/job {label} (it knows: {', '.join(known) or 'none'})",
        )  # fmt: skip
    found = await stack.jaeger.traces(service, start, end, cfg.limit)
    failing = await stack.jaeger.traces(
        service, start, end, MAX_INCIDENT_TRACES, tags={"error": "true"}
    )
    by_id = {t.trace_id: t for t in [*found, *failing]}
    errors = sorted((t for t in by_id.values() if t.error), key=lambda t: t.start, reverse=True)
    slow = sorted((t for t in by_id.values() if not t.error), key=lambda t: -t.duration_ms)
    chosen = [*errors, *slow][:MAX_INCIDENT_TRACES]
    return IncidentTraces(
        service,
        start,
        end,
        [summarize_trace(t) for t in chosen],
        len(errors),
        len(by_id),
        cfg.jaeger_url,
        "" if by_id else f"no traces of {service} in the window",
    )
