"""Kibana Not Showing Logs: cluster health, unassigned shards with Elasticsearch's own
explanation, today's index per log source and whether it grows, Logstash and Kibana."""

from __future__ import annotations

import asyncio
from typing import Any

from opskit.clients.health import check as check_service
from opskit.errors import BadResponse, NotFound
from opskit.findings import Finding, Severity
from opskit.models import ClusterHealth, Shard
from opskit.tasks.doctor.model import Context

HEALTH_API = "elasticsearch GET /_cluster/health"
SHARDS_API = "elasticsearch GET /_cat/shards + GET /_cluster/allocation/explain"
COUNT_API = "elasticsearch GET /_cat/indices + GET /<index>/_count"
EXPLAINED = 5  # allocation explanations asked for at most; the rest are counted

# allocation decider -> the next step
DECIDER_ACTIONS = {
    "filter": "Remove or correct the index.routing.allocation.* filter on {index} so a node "
    "matches it, or delete the index.",
    "same_shard": "Set number_of_replicas to 0 on {index} (a single-node cluster cannot "
    "hold replicas) or add a node.",
    "disk_threshold": "Free disk space on the data nodes (or delete old indices) so the disk "
    "watermarks allow {index}'s shard.",
    "max_retry": "Fix the cause in the explanation, then POST _cluster/reroute?retry_failed=true.",
    "shards_limit": "Lower the shard count (README: reduce shard count) or raise the "
    "per-node shard limit for {index}.",
}
PIPELINE_ACTIONS = {
    "logstash": "Start Logstash and read its errors (README: `docker-compose logs logstash "
    "| grep -i error`); without it no log reaches Elasticsearch.",
    "kibana": "Start Kibana (it needs Elasticsearch) and check its logs; the logs are in "
    "Elasticsearch but nobody can see them.",
}


async def cluster_health(ctx: Context) -> ClusterHealth:
    health: ClusterHealth = await ctx.once("health", ctx.stack.elasticsearch.cluster_health)
    return health


async def cluster_status(ctx: Context) -> list[Finding]:
    h = await cluster_health(ctx)
    severity: Severity = {"green": "ok", "yellow": "warning"}.get(h.status, "critical")  # type: ignore[assignment]
    evidence = {
        "status": h.status,
        "nodes": h.number_of_nodes,
        "active_shards": h.active_shards,
        "unassigned_shards": h.unassigned_shards,
        "initializing_shards": h.initializing_shards,
        "active_shards_percent": h.active_shards_percent,
    }
    meaning = {
        "green": "every shard is assigned",
        "yellow": "all primaries assigned, some replicas are not",
        "red": "some primary shards are unassigned: their indices cannot take logs",
    }.get(h.status, "unknown status")
    return [
        Finding(
            check="cluster_health",
            severity=severity,
            subject=h.cluster_name,
            summary=f"cluster {h.cluster_name} is {h.status}: {meaning}",
            evidence=evidence,
            source=HEALTH_API,
            action=""
            if severity == "ok"
            else "See the unassigned shards below for Elasticsearch's own explanation of each.",
        )
    ]


async def _explain(ctx: Context, shard: Shard) -> dict[str, Any]:
    try:
        return await ctx.stack.elasticsearch.allocation_explain(
            shard.index, shard.shard, shard.primary
        )
    except (BadResponse, NotFound) as exc:  # assigned meanwhile, or deleted
        return {"allocate_explanation": f"no explanation: {exc.reason}"}


def _deciders(explain: dict[str, Any]) -> list[dict[str, str]]:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for node in explain.get("node_allocation_decisions") or []:
        for d in node.get("deciders") or []:
            if d.get("decision") == "NO":
                key = (str(d.get("decider")), str(d.get("explanation")))
                seen.setdefault(key, {"decider": key[0], "explanation": key[1]})
    return list(seen.values())


def _shard_finding(shard: Shard, explain: dict[str, Any]) -> Finding:
    deciders = _deciders(explain)
    kind = "primary" if shard.primary else "replica"
    first = deciders[0] if deciders else None
    why = first["explanation"] if first else str(explain.get("allocate_explanation", ""))
    template = DECIDER_ACTIONS.get(first["decider"] if first else "", "")
    action = (
        template.format(index=shard.index)
        if template
        else (
            f"Follow Elasticsearch's explanation for {shard.index}: "
            f"{explain.get('allocate_explanation', 'see _cluster/allocation/explain')}"
        )
    )
    return Finding(
        check="unassigned_shards",
        severity="critical" if shard.primary else "warning",
        subject=f"{shard.index}[{shard.shard}]",
        summary=f"{kind} shard {shard.shard} of {shard.index} is unassigned: {why}",
        evidence={
            "index": shard.index,
            "shard": shard.shard,
            "primary": shard.primary,
            "unassigned_reason": shard.unassigned_reason,
            "can_allocate": explain.get("can_allocate"),
            "allocate_explanation": explain.get("allocate_explanation"),
            "deciders": deciders,
        },
        source=SHARDS_API,
        action=action,
    )


async def unassigned_shards(ctx: Context) -> list[Finding]:
    h = await cluster_health(ctx)
    if h.unassigned_shards == 0:
        return [
            Finding(
                check="unassigned_shards",
                severity="ok",
                subject="",
                summary="no unassigned shards",
                evidence={"unassigned": 0},
                source=HEALTH_API,
            )
        ]
    shards: list[Shard] = await ctx.once("shards", ctx.stack.elasticsearch.shards)
    unassigned = sorted(
        (s for s in shards if s.state == "UNASSIGNED"), key=lambda s: (not s.primary, s.index)
    )
    explained = unassigned[:EXPLAINED]
    explains = await asyncio.gather(*(_explain(ctx, s) for s in explained))
    findings = [_shard_finding(s, e) for s, e in zip(explained, explains, strict=True)]
    if len(unassigned) > EXPLAINED:
        rest = unassigned[EXPLAINED:]
        findings.append(
            Finding(
                check="unassigned_shards",
                severity="critical" if any(s.primary for s in rest) else "warning",
                subject="",
                summary=f"{len(rest)} more unassigned shard(s) not explained here",
                evidence={"more": len(rest), "indices": sorted({s.index for s in rest})[:20]},
                source=SHARDS_API,
                action="Run `GET _cluster/allocation/explain` for each, "
                "after fixing the ones above.",
            )
        )
    return findings


def index_name(pattern: str, source: str, ctx: Context) -> str:
    return ctx.now.strftime(pattern).replace("{source}", source)


async def _count(ctx: Context, index: str) -> int | str:
    try:
        return await ctx.stack.elasticsearch.count(index)
    except (BadResponse, NotFound) as exc:
        return exc.reason


async def todays_indices(ctx: Context) -> list[Finding]:
    """Today's index (UTC) per log source exists, and its doc count grows over growth_wait."""
    opts = ctx.options
    names = {s: index_name(opts.log_index, s, ctx) for s in opts.log_sources}
    wildcard = index_name(opts.log_index, "*", ctx)
    existing = {i.name for i in await ctx.stack.elasticsearch.indices(wildcard)}
    present = [n for n in names.values() if n in existing]
    wait = opts.growth_wait.total_seconds()
    before = await asyncio.gather(*(_count(ctx, n) for n in present))
    await asyncio.sleep(wait)
    after = await asyncio.gather(*(_count(ctx, n) for n in present))
    counts = dict(zip(present, zip(before, after, strict=True), strict=True))
    findings: list[Finding] = []
    for source, name in names.items():
        if name not in counts:
            findings.append(
                Finding(
                    check="todays_indices",
                    severity="critical",
                    subject=source,
                    summary=f"{source}: no index {name} for today (UTC)",
                    evidence={"index": name, "exists": False},
                    source=COUNT_API,
                    action=f"Check that Logstash receives {source}'s logs and writes them to "
                    f"{opts.log_index} (README: check indices were created).",
                )
            )
            continue
        n0, n1 = counts[name]
        evidence: dict[str, Any] = {
            "index": name,
            "exists": True,
            "docs_before": n0,
            "docs_after": n1,
            "wait_seconds": wait,
        }
        if isinstance(n0, str) or isinstance(n1, str):
            error = n1 if isinstance(n1, str) else n0
            findings.append(
                Finding(
                    check="todays_indices",
                    severity="critical",
                    subject=source,
                    summary=f"{source}: {name} exists but cannot be searched: {error}",
                    evidence=evidence,
                    source=COUNT_API,
                    action=f"Fix {name}'s health first (see unassigned shards).",
                )
            )
        elif n1 > n0:
            findings.append(
                Finding(
                    check="todays_indices",
                    severity="ok",
                    subject=source,
                    summary=f"{source}: {name} grew by {n1 - n0} docs in {wait:g}s",
                    evidence=evidence,
                    source=COUNT_API,
                )
            )
        else:
            findings.append(
                Finding(
                    check="todays_indices",
                    severity="warning",
                    subject=source,
                    summary=f"{source}: {name} holds {n1} docs and got none in {wait:g}s",
                    evidence=evidence,
                    source=COUNT_API,
                    action=f"Check that {source} still logs and that Logstash ships it "
                    "(README: `docker-compose logs logstash`); a quiet source may be fine.",
                )
            )
    return findings


async def log_pipeline(ctx: Context) -> list[Finding]:
    """Logstash and Kibana health endpoints, from the configured services."""
    services = {s.name: s for s in ctx.stack.settings.enabled_services}
    findings: list[Finding] = []
    wanted = [n for n in PIPELINE_ACTIONS if n in services]
    results = await asyncio.gather(
        *(check_service(ctx.stack.health_http, services[n]) for n in wanted)
    )
    for name, r in zip(wanted, results, strict=True):
        evidence = {
            "url": r.url,
            "status_code": r.status_code,
            "latency_ms": r.latency_ms,
            "error": r.error or None,
        }
        source = f"{name} GET {r.url}"
        if r.ok:
            findings.append(
                Finding(
                    check="log_pipeline",
                    severity="ok",
                    subject=name,
                    summary=f"{name} answers ({r.status_code})",
                    evidence=evidence,
                    source=source,
                )
            )
        else:
            findings.append(
                Finding(
                    check="log_pipeline",
                    severity="critical",
                    subject=name,
                    summary=f"{name} health endpoint fails: {r.error}",
                    evidence=evidence,
                    source=source,
                    action=PIPELINE_ACTIONS[name],
                )
            )
    for name in PIPELINE_ACTIONS:
        if name not in services:
            findings.append(
                Finding(
                    check="log_pipeline",
                    severity="info",
                    subject=name,
                    summary=f"{name} is not configured (services)",
                    evidence={},
                    source="config services",
                    action=f"Add {name}'s health URL under [[services]] to check it.",
                )
            )
    return findings
