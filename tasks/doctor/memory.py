"""High Memory Usage (and load): Elasticsearch heap per node, Prometheus head series and
the metrics with the most series, shards per node against a ceiling."""

from __future__ import annotations

from collections import Counter

from opskit.errors import BackendError
from opskit.findings import Finding, Severity
from opskit.models import Shard
from opskit.tasks.doctor.model import Context

HEAP_API = "elasticsearch GET /_nodes/stats/jvm"
TSDB_API = "prometheus GET /api/v1/status/tsdb"
SHARDS_API = "elasticsearch GET /_cat/shards + GET /_cluster/settings"
TOP = 10


async def es_heap(ctx: Context) -> list[Finding]:
    opts = ctx.options
    findings: list[Finding] = []
    for n in await ctx.stack.elasticsearch.heap():
        pct = n.heap_used_percent
        severity: Severity = (
            "critical"
            if pct >= opts.heap_critical_percent
            else "warning"
            if pct >= opts.heap_warning_percent
            else "ok"
        )
        findings.append(
            Finding(
                check="es_heap",
                severity=severity,
                subject=n.node,
                summary=f"{n.node}: JVM heap {pct:.0f}% used "
                f"({n.heap_used_bytes / 2**20:.0f} of {n.heap_max_bytes / 2**20:.0f} MiB)",
                evidence={
                    "heap_used_percent": pct,
                    "heap_used_bytes": n.heap_used_bytes,
                    "heap_max_bytes": n.heap_max_bytes,
                    "warning_percent": opts.heap_warning_percent,
                    "critical_percent": opts.heap_critical_percent,
                },
                source=HEAP_API,
                action=""
                if severity == "ok"
                else "Give Elasticsearch more heap (ES_JAVA_OPTS, at most half the RAM) or "
                "reduce its load: fewer shards, shorter retention (README: High Memory Usage).",
            )
        )
    return findings


async def prometheus_cardinality(ctx: Context) -> list[Finding]:
    opts = ctx.options
    tsdb = await ctx.stack.prometheus.tsdb_status(TOP)
    top = [{"metric": m, "series": n} for m, n in tsdb.top_metrics]
    # VictoriaMetrics has no head block: its /api/v1/status/tsdb counts today's series
    try:
        vm = await ctx.stack.prometheus.flavor() == "victoriametrics"
    except BackendError:  # the probe's server down (an HA replica): the words only
        vm = False
    where = "series today (VictoriaMetrics)" if vm else "series in the head block"
    findings: list[Finding] = []
    head: Severity = "warning" if tsdb.head_series >= opts.head_series_warning else "ok"
    findings.append(
        Finding(
            check="prometheus_head_series",
            severity=head,
            subject="prometheus",
            summary=f"{tsdb.head_series} {where}; most series: "
            + ", ".join(f"{m} {n}" for m, n in tsdb.top_metrics[:3]),
            evidence={
                "head_series": tsdb.head_series,
                "warning_at": opts.head_series_warning,
                "top_metrics": top,
            },
            source=TSDB_API,
            action=""
            if head == "ok"
            else "Drop unused series with metric_relabel_configs or shorten retention "
            "(README: reduce retention, high cardinality metrics).",
        )
    )
    for metric, count in tsdb.top_metrics:
        if count >= opts.metric_series_warning:
            findings.append(
                Finding(
                    check="high_cardinality",
                    severity="warning",
                    subject=metric,
                    summary=f"metric {metric} has {count} series",
                    evidence={"series": count, "warning_at": opts.metric_series_warning},
                    source=TSDB_API,
                    action="Add a metric_relabel_configs rule dropping the high-cardinality "
                    f"labels of {metric} (README common issue 2).",
                )
            )
    return findings


async def shards_per_node(ctx: Context) -> list[Finding]:
    es = ctx.stack.elasticsearch
    shards: list[Shard] = await ctx.once("shards", es.shards)
    ceiling = ctx.options.shard_ceiling or await es.max_shards_per_node()
    where = "shard_ceiling" if ctx.options.shard_ceiling else "cluster.max_shards_per_node"
    per_node = Counter(s.node for s in shards if s.node)
    warn_at = ctx.options.shard_warning_ratio * ceiling
    findings: list[Finding] = []
    for node, count in sorted(per_node.items()):
        severity: Severity = (
            "critical" if count >= ceiling else "warning" if count >= warn_at else "ok"
        )
        findings.append(
            Finding(
                check="shards_per_node",
                severity=severity,
                subject=node,
                summary=f"{node}: {count} shards of a ceiling of {ceiling} ({where})",
                evidence={
                    "shards": count,
                    "ceiling": ceiling,
                    "ceiling_from": where,
                    "warning_ratio": ctx.options.shard_warning_ratio,
                },
                source=SHARDS_API,
                action=""
                if severity == "ok"
                else "Reduce the shard count (README: slow Elasticsearch): fewer shards per "
                "index, shrink or delete old daily indices, or add nodes.",
            )
        )
    return findings
