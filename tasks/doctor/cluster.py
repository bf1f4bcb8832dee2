"""Elasticsearch Cluster (multi-node, issue 19): the nodes there are, why shard copies are
unassigned (grouped by cause, with Elasticsearch's allocation explanation of one copy of
each group: a node that left, the delay before its replicas are rebuilt elsewhere), and
each node's disk against the cluster's effective watermarks.

Sources: `GET _cat/nodes` + `_nodes/stats/jvm,fs` + `_cat/allocation`
(https://www.elastic.co/guide/en/elasticsearch/reference/8.14/cat-nodes.html), `_cat/shards`
`unassigned.reason/at/details`, `_cluster/allocation/explain` (`can_allocate`
`allocation_delayed`, `configured_delay_in_millis`, `remaining_delay_in_millis`:
https://www.elastic.co/guide/en/elasticsearch/reference/8.14/cluster-allocation-explain.html),
`index.unassigned.node_left.delayed_timeout` (default 1m: https://www.elastic.co/guide/en/
elasticsearch/reference/8.14/delayed-allocation.html) and the disk watermarks (defaults
85% / 90% / 95%: https://www.elastic.co/guide/en/elasticsearch/reference/8.14/
modules-cluster.html#disk-based-shard-allocation)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opskit.errors import BackendError
from opskit.findings import Finding, Severity
from opskit.models import EsNode
from opskit.models_es import AllocationExplanation, DiskSettings, ShardCopy, roles_text
from opskit.tasks.doctor.model import Context

NODES_API = "elasticsearch GET /_cat/nodes + /_nodes/stats/jvm,fs + /_cat/allocation"
UNASSIGNED_API = "elasticsearch GET /_cat/shards + GET /_cluster/allocation/explain"
DISK_API = "elasticsearch GET /_nodes/stats/fs + GET /_cluster/settings?include_defaults"
DELAY_SETTING = "index.unassigned.node_left.delayed_timeout"
GROUPS_EXPLAINED = 10  # allocation explanations asked for at most (one per group)
NODE_LEFT = re.compile(r"node_left\s*\[([^\]]+)\]")


async def nodes(ctx: Context) -> list[EsNode]:
    found: list[EsNode] = await ctx.once("es_nodes", ctx.stack.elasticsearch.nodes)
    return found


async def unassigned(ctx: Context) -> list[ShardCopy]:
    found: list[ShardCopy] = await ctx.once(
        "es_unassigned", ctx.stack.elasticsearch.unassigned_copies
    )
    return found


def left_node(details: str | None) -> str | None:
    """The node id of `node_left [<id>]` (an unassigned copy's details), or None."""
    found = NODE_LEFT.search(details or "")
    return found.group(1).strip() if found else None


def node_label(node_id: str, present: dict[str, str]) -> str:
    """A node id as a person reads it: its name when the cluster still knows it, else the
    id (Elasticsearch forgets a departed node's name; its copies keep only the id)."""
    name = present.get(node_id)
    return f"node {name} ({node_id[:8]})" if name else f"node {node_id}"


def seconds_text(ms: int) -> str:
    seconds = max(0, round(ms / 1000))
    if seconds < 120:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"


@dataclass
class Group:
    """Unassigned copies of one cause: primary or replica, the reason, the node that left."""

    primary: bool
    reason: str
    left: str | None  # node id from `node_left [<id>]`
    copies: list[ShardCopy] = field(default_factory=list)
    explanation: AllocationExplanation | None = None
    error: str = ""

    @property
    def since(self) -> datetime | None:
        times = [c.unassigned_at for c in self.copies if c.unassigned_at is not None]
        return min(times) if times else None


def group_copies(copies: list[ShardCopy]) -> list[Group]:
    """By (primary, reason, node that left), primaries first, then the largest group."""
    groups: dict[tuple[bool, str, str | None], Group] = {}
    for c in copies:
        key = (c.primary, c.unassigned_reason or "unknown", left_node(c.unassigned_details))
        groups.setdefault(key, Group(*key)).copies.append(c)
    return sorted(groups.values(), key=lambda g: (not g.primary, -len(g.copies), g.reason))


def group_summary(g: Group, present: dict[str, str]) -> str:
    """ "7 replica copies unassigned since 12:03: NODE_LEFT (node X left); allocation
    delayed 48s more (index.unassigned.node_left.delayed_timeout 1m)"."""
    kind = "primary" if g.primary else "replica"
    n = len(g.copies)
    since = g.since.astimezone().strftime("%H:%M") if g.since else "?"
    text = f"{n} {kind} cop{'y' if n == 1 else 'ies'} unassigned since {since}: {g.reason}"
    if g.left:
        text += f" ({node_label(g.left, present)} left)"
    e = g.explanation
    if e is not None:
        if e.can_allocate == "allocation_delayed" and e.remaining_delay_ms is not None:
            configured = f" {seconds_text(e.configured_delay_ms)}" if e.configured_delay_ms else ""
            text += (
                f"; allocation delayed {seconds_text(e.remaining_delay_ms)} more "
                f"({DELAY_SETTING}{configured})"
            )
        elif e.can_allocate:
            text += f"; can_allocate {e.can_allocate}"
    return text


def group_action(g: Group, present: dict[str, str]) -> str:
    e = g.explanation
    if g.left and (e is None or e.can_allocate == "allocation_delayed"):
        who = node_label(g.left, present)
        return (
            f"Start {who} again: its copies recover in place. If it is gone for good, "
            f"Elasticsearch rebuilds the replicas on the other nodes once {DELAY_SETTING} "
            "has passed (or set it to 0 on the indices to start now)."
        )
    if g.left and g.primary:
        return (
            f"Bring {node_label(g.left, present)} back: it held the only copy of these "
            "primaries; without it their indices stay red."
        )
    if e is not None and e.explanation:
        return f"Follow Elasticsearch's explanation: {e.explanation}"
    return "Run `GET _cluster/allocation/explain` for one of these copies."


async def _explain(ctx: Context, g: Group) -> None:
    first = g.copies[0]
    try:
        g.explanation = await ctx.stack.elasticsearch.explain_shard(
            first.index, first.shard, first.primary
        )
    except BackendError as exc:  # assigned meanwhile, or deleted
        g.error = exc.reason


def _decisions(e: AllocationExplanation | None) -> list[dict[str, Any]]:
    if e is None:
        return []
    return [{"node": n.node, "decision": n.decision, "deciders": n.explanations} for n in e.nodes]


async def unassigned_by_cause(ctx: Context) -> list[Finding]:
    """Unassigned shard copies grouped by cause, each group explained."""
    copies, present_nodes = await asyncio.gather(unassigned(ctx), nodes(ctx))
    present = {n.id: n.name for n in present_nodes}
    # names of nodes seen before (this session's client), the present ones' over them
    known = {**ctx.stack.elasticsearch.node_names, **present}
    if not copies:
        return [
            Finding(
                check="unassigned_by_cause",
                severity="ok",
                subject="",
                summary="every shard copy is assigned",
                evidence={"unassigned": 0},
                source=UNASSIGNED_API,
            )
        ]
    groups = group_copies(copies)
    await asyncio.gather(*(_explain(ctx, g) for g in groups[:GROUPS_EXPLAINED]))
    findings = []
    for g in groups:
        e = g.explanation
        severity: Severity = "critical" if g.primary else "warning"
        findings.append(
            Finding(
                check="unassigned_by_cause",
                severity=severity,
                subject=f"{g.reason}" + (f" {known.get(g.left, g.left)}" if g.left else ""),
                summary=group_summary(g, known),
                evidence={
                    "copies": len(g.copies),
                    "primary": g.primary,
                    "reason": g.reason,
                    "node_left_id": g.left,
                    "node_left_name": known.get(g.left) if g.left else None,
                    "since": g.since.isoformat() if g.since else None,
                    "shards": [f"{c.index}[{c.shard}]" for c in g.copies[:20]],
                    "can_allocate": e.can_allocate if e else None,
                    "allocate_explanation": e.explanation if e else None,
                    "configured_delay_ms": e.configured_delay_ms if e else None,
                    "remaining_delay_ms": e.remaining_delay_ms if e else None,
                    "node_decisions": _decisions(e),
                    "explain_error": g.error or None,
                    "nodes_now": sorted(present.values()),
                },
                source=UNASSIGNED_API,
                action=group_action(g, known),
            )
        )
    return findings


async def cluster_nodes(ctx: Context) -> list[Finding]:
    """The nodes that answer, their roles and the elected master; a node that left (its
    copies say `node_left`) is named. The number of nodes there should be is not known
    to Elasticsearch, so it is not guessed."""
    found, copies = await asyncio.gather(nodes(ctx), unassigned(ctx))
    present = {n.id: n.name for n in found}
    master = next((n.name for n in found if n.master), None)
    gone = sorted(
        {i for c in copies if (i := left_node(c.unassigned_details)) and i not in present}
    )
    known = {**ctx.stack.elasticsearch.node_names, **present}
    names = ", ".join(n.name + (" (elected master)" if n.master else "") for n in found)
    summary = f"{len(found)} node(s): {names or 'none'}"
    if gone:
        summary += "; " + ", ".join(node_label(i, known) for i in gone) + " left the cluster"
    if master is None:
        summary += "; no elected master"
    return [
        Finding(
            check="cluster_nodes",
            severity="critical" if master is None else "warning" if gone else "ok",
            subject=f"{len(found)} nodes",
            summary=summary,
            evidence={
                "nodes": [
                    {
                        "name": n.name,
                        "id": n.id,
                        "roles": roles_text(n.role_names) or n.roles,
                        "master": n.master,
                        "shards": n.shards,
                    }
                    for n in found
                ],
                "elected_master": master,
                "left": gone,
                "left_names": [known[i] for i in gone if i in known],
            },
            source=NODES_API,
            action=""
            if not gone and master is not None
            else "Start the node that left (see the unassigned copies below for what waits "
            "on it); without an elected master the cluster answers nothing.",
        )
    ]


def disk_severity(pct: float, marks: dict[str, float | None]) -> tuple[Severity, str]:
    """The worst watermark a disk at `pct` used is at or over, as (severity, name)."""
    flood, high, low = (marks.get(k) for k in ("flood_stage", "high", "low"))
    if flood is not None and pct >= flood:
        return "critical", "flood_stage"
    if high is not None and pct >= high:
        return "warning", "high"
    if low is not None and pct >= low:
        return "warning", "low"
    return "ok", ""


MEANING = {
    "flood_stage": "its indices are made read-only (index.blocks.read_only_allow_delete)",
    "high": "Elasticsearch moves shards away from it",
    "low": "no new replica is allocated to it",
}


async def disk_watermarks(ctx: Context) -> list[Finding]:
    """Each node's disk used against the cluster's effective low / high / flood_stage
    watermarks; a note when the disk threshold decider is disabled (nothing enforces
    them then: a node fills up until writes fail)."""
    es = ctx.stack.elasticsearch
    found, settings = await asyncio.gather(nodes(ctx), es.disk_settings())
    settings_: DiskSettings = settings
    raw = {w.name: w.raw for w in settings_.watermarks}
    findings: list[Finding] = []
    if not settings_.threshold_enabled:
        findings.append(
            Finding(
                check="disk_watermarks",
                severity="info",
                subject="threshold_enabled",
                summary="the disk threshold decider is disabled "
                "(cluster.routing.allocation.disk.threshold_enabled=false): the watermarks "
                f"({raw.get('low')} / {raw.get('high')} / {raw.get('flood_stage')}) are "
                "not enforced",
                evidence={
                    "threshold_enabled": False,
                    "watermarks": raw,
                    "from": settings_.source,
                },
                source=DISK_API,
                action="",
            )
        )
    for n in found:
        total = n.disk_total_bytes
        pct = (
            100 * n.disk_used_bytes / total
            if n.disk_used_bytes is not None and total
            else n.disk_used_percent
        )
        if pct is None:
            continue
        marks = {w.name: w.threshold_percent(total) for w in settings_.watermarks}
        severity, crossed = disk_severity(pct, marks)
        if not settings_.threshold_enabled and severity != "ok":
            severity = "warning" if crossed == "flood_stage" else "info"
        at = "  ".join(f"{k} {v:.1f}%" for k, v in marks.items() if v is not None)
        summary = f"{n.name}: disk {pct:.1f}% used (watermarks {at})"
        if crossed:
            summary += f": over {crossed}" + (
                f", {MEANING[crossed]}" if settings_.threshold_enabled else " (not enforced)"
            )
        findings.append(
            Finding(
                check="disk_watermarks",
                severity=severity,
                subject=n.name,
                summary=summary,
                evidence={
                    "used_percent": round(pct, 2),
                    "used_bytes": n.disk_used_bytes,
                    "total_bytes": total,
                    "watermarks": raw,
                    "thresholds_percent": {k: round(v, 2) for k, v in marks.items() if v},
                    "threshold_enabled": settings_.threshold_enabled,
                    "crossed": crossed or None,
                },
                source=DISK_API,
                action=""
                if severity in ("ok", "info")
                else f"Free disk on {n.name} (delete or snapshot-and-delete old indices: "
                "`opskit retention`), or add disk or nodes.",
            )
        )
    return findings
