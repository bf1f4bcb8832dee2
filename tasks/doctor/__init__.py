"""`opskit doctor`: the monitoring README's troubleshooting guide, walked against the live
stack. `run_doctor(stack)` is what the CLI and the TUI call; it prints nothing.

Every check runs concurrently; a check whose backend cannot be read becomes a finding
(`backend_error`) and the others still run."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from opskit.errors import BackendError, Unsupported, UsageError
from opskit.findings import SEVERITIES, Finding, exit_code
from opskit.tasks.doctor import alerts, cluster, logs, memory, scraping, tracing
from opskit.tasks.doctor.model import AREAS, AreaReport, Check, Context, DoctorReport

if TYPE_CHECKING:
    from opskit.config import Doctor
    from opskit.stack import Stack

CHECKS: list[Check] = [
    Check("scraping", "targets_down", "prometheus", scraping.targets_down),
    Check("scraping", "slow_scrapes", "prometheus", scraping.slow_scrapes),
    Check("scraping", "config_reload", "prometheus", scraping.config_reload),
    Check("scraping", "rule_evaluation", "prometheus", scraping.recording_rule_failures),
    Check("logs", "cluster_health", "elasticsearch", logs.cluster_status),
    Check("logs", "unassigned_shards", "elasticsearch", logs.unassigned_shards),
    Check("logs", "todays_indices", "elasticsearch", logs.todays_indices),
    Check("logs", "log_pipeline", "services", logs.log_pipeline),
    Check("alerts", "alert_rule_errors", "prometheus", alerts.alert_rule_errors),
    Check("alerts", "never_evaluated", "prometheus", alerts.never_evaluated),
    Check("alerts", "alertmanager_connection", "prometheus", alerts.alertmanager_connection),
    Check("alerts", "alertmanager_cluster", "alertmanager", alerts.alertmanager_cluster),
    Check("alerts", "firing_not_delivered", "prometheus", alerts.firing_not_delivered),
    Check("memory", "es_heap", "elasticsearch", memory.es_heap),
    Check("memory", "prometheus_cardinality", "prometheus", memory.prometheus_cardinality),
    Check("memory", "shards_per_node", "elasticsearch", memory.shards_per_node),
    Check("tracing", "collector_spans", "otel-collector", tracing.collector_spans),
    Check("tracing", "exporter_to_jaeger", "otel-collector", tracing.exporter_to_jaeger),
    Check("tracing", "jaeger_query", "jaeger", tracing.jaeger_query),
    Check("tracing", "services_silent", "jaeger", tracing.services_silent),
    Check("cluster", "cluster_nodes", "elasticsearch", cluster.cluster_nodes),
    Check("cluster", "unassigned_by_cause", "elasticsearch", cluster.unassigned_by_cause),
    Check("cluster", "disk_watermarks", "elasticsearch", cluster.disk_watermarks),
]

__all__ = ["AREAS", "CHECKS", "DoctorReport", "Finding", "run_doctor"]


async def _run(check: Check, ctx: Context) -> list[Finding]:
    try:
        return await check.run(ctx)
    except Unsupported as exc:  # the backend answers but lacks the endpoint (VictoriaMetrics)
        return [
            Finding(
                check=check.name,
                severity="info",
                subject=exc.backend,
                summary=f"not checked: {exc.reason}",
                evidence={"backend": exc.backend, "unsupported": exc.reason},
                source=exc.backend,
            )
        ]
    except BackendError as exc:
        return [
            Finding(
                check=check.name,
                severity="critical",
                subject=exc.backend,
                summary=f"could not run: {exc.backend} {exc.title}: {exc.reason}",
                evidence={"backend": exc.backend, "error": exc.title},
                source=exc.backend,
                action=f"Make {exc.backend} reachable (is it running? is its URL, TLS and "
                "authentication right in the config?) and run the doctor again.",
                backend_error=exc.title,
            )
        ]


async def run_doctor(
    stack: Stack, only: str | None = None, options: Doctor | None = None
) -> DoctorReport:
    """Run the checks of one area (`only`) or all, concurrently, and judge them."""
    if only is not None and only not in AREAS:
        raise UsageError(f"unknown area {only!r} (areas: {', '.join(AREAS)})")
    ctx = Context(stack, options or stack.settings.doctor, datetime.now(UTC))
    chosen = [c for c in CHECKS if only is None or c.area == only]
    results = await asyncio.gather(*(_run(c, ctx) for c in chosen))
    areas: list[AreaReport] = []
    for area, title in AREAS.items():
        found = [f for c, fs in zip(chosen, results, strict=True) if c.area == area for f in fs]
        if only is None or area == only:
            areas.append(AreaReport(area, title, found))
    everything = [f for a in areas for f in a.findings]
    counts = Counter(f.severity for f in everything)
    return DoctorReport(
        context=stack.settings.context,
        generated_at=ctx.now,
        areas=areas,
        unreachable=sorted({f.subject for f in everything if f.backend_error}),
        counts={level: counts.get(level, 0) for level in SEVERITIES},
        exit_code=exit_code(everything),
    )
