"""Elasticsearch records beyond the live screens': snapshots, repositories and the index
facts retention plans from. `ElasticsearchClient` parses the API's JSON into these; the
tasks plan over them. Core: imports nothing above opskit.models (and opskit.output's
byte sizes for the nodes' rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opskit.output import human_bytes

if TYPE_CHECKING:
    from opskit.models import EsNode

# snapshot metadata opskit writes (`{"opskit": {"kind": ..., "policy": ...}}`)
KIND_BACKUP = "backup"  # ordinary backups, and every snapshot without opskit metadata
KIND_ARCHIVE = "archive"  # retention's snapshot-first snapshots: the last copy of old data


def opskit_metadata(kind: str, policy: str | None = None) -> dict[str, Any]:
    """The `metadata` opskit puts on a snapshot it takes."""
    mark: dict[str, Any] = {"kind": kind}
    if policy is not None:
        mark["policy"] = policy
    return {"opskit": mark}


@dataclass
class SnapshotInfo:
    name: str
    repository: str
    state: str  # IN_PROGRESS | SUCCESS | PARTIAL | FAILED | INCOMPATIBLE
    start: datetime | None
    end: datetime | None
    indices: list[str]
    shards_total: int
    shards_failed: int
    failures: list[str] = field(default_factory=list)
    reason: str | None = None
    # "backup" | "archive": from the snapshot's metadata; other tools' snapshots are backups
    kind: str = KIND_BACKUP
    policy: str | None = None  # the retention policy of an archive
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == "SUCCESS" and self.shards_failed == 0


def kind_of(metadata: object) -> tuple[str, str | None]:
    """(kind, policy) from a snapshot's metadata; anything not opskit's is a backup."""
    mark = metadata.get("opskit") if isinstance(metadata, dict) else None
    if isinstance(mark, dict) and mark.get("kind") == KIND_ARCHIVE:
        policy = mark.get("policy")
        return KIND_ARCHIVE, str(policy) if policy is not None else None
    return KIND_BACKUP, None


@dataclass
class RunningSnapshot:
    """A snapshot in progress (`GET _snapshot/_status`) and the indices it is copying."""

    repository: str
    name: str
    state: str
    indices: list[str]


@dataclass
class RunningRestore:
    """An index being recovered from a snapshot (`GET _recovery?active_only=true`)."""

    index: str
    repository: str
    snapshot: str


@dataclass
class SnapshotProgress:
    name: str
    state: str
    shards_done: int
    shards_total: int
    bytes_done: int
    bytes_total: int


@dataclass
class Repository:
    """A registered snapshot repository, as `GET _snapshot/<name>` reports it."""

    name: str
    type: str
    location: str | None


@dataclass
class RepositoryInfo:
    """A repository made sure of: registered (now or before) and verified on `verified_nodes`."""

    name: str
    type: str
    location: str | None
    registered_now: bool
    verified_nodes: list[str]


@dataclass(frozen=True)
class IndexFacts:
    """What the retention planner needs about one index."""

    name: str
    status: str  # open | close
    created: datetime | None
    hidden: bool = False
    system: bool = False
    data_stream: str | None = None


@dataclass(frozen=True)
class IndexSettings:
    """The settings of one index that explain where its shards go and what it accepts
    (`GET <index>/_settings?flat_settings=true`)."""

    name: str
    number_of_shards: int | None
    number_of_replicas: int | None
    created: datetime | None
    ilm_policy: str | None  # index.lifecycle.name
    auto_expand_replicas: str | None = None
    routing: dict[str, str] = field(default_factory=dict)  # index.routing.allocation.*
    blocks: dict[str, str] = field(default_factory=dict)  # index.blocks.*


@dataclass(frozen=True)
class ShardCopy:
    """One copy of one shard as `_cat/shards` lists it, with its size."""

    index: str
    shard: int
    primary: bool
    state: str  # STARTED | UNASSIGNED | INITIALIZING | RELOCATING
    node: str | None
    docs: int | None
    store_bytes: int | None
    unassigned_reason: str | None = None
    unassigned_details: str | None = None
    unassigned_at: datetime | None = None  # `unassigned.at`: when it became unassigned


@dataclass(frozen=True)
class NodeDecision:
    """One node's answer in an allocation explanation: its decision and, for each decider
    that said no (or throttle), its explanation."""

    node: str
    decision: str  # yes | no | throttle | worse_balance | ...
    explanations: list[str] = field(default_factory=list)  # "decider: explanation"


@dataclass(frozen=True)
class AllocationExplanation:
    """`_cluster/allocation/explain` for one shard copy, the parts a person reads."""

    index: str
    shard: int
    primary: bool
    current_state: str
    can_allocate: str  # yes | no | throttled | awaiting_info | ... ("" when assigned)
    explanation: str  # allocate_explanation (or the move/remain explanation)
    unassigned_reason: str | None = None
    nodes: list[NodeDecision] = field(default_factory=list)
    unassigned_at: datetime | None = None  # unassigned_info.at
    unassigned_details: str | None = None  # unassigned_info.details: "node_left [<id>]"
    # a replica whose node left waits `index.unassigned.node_left.delayed_timeout` for it
    # (can_allocate "allocation_delayed"): configured_delay_in_millis, remaining_delay_in_millis
    configured_delay_ms: int | None = None
    remaining_delay_ms: int | None = None


# `_nodes/stats` role names in the order a person reads them (docs: "Node roles",
# https://www.elastic.co/guide/en/elasticsearch/reference/8.14/modules-node.html)
ROLE_ORDER = (
    "master", "voting_only", "data", "data_content", "data_hot", "data_warm", "data_cold",
    "data_frozen", "ingest", "ml", "transform", "remote_cluster_client",
)  # fmt: skip
DATA_TIERS = frozenset(r for r in ROLE_ORDER if r.startswith("data_"))


def ordered_roles(roles: list[str]) -> list[str]:
    """Role names in ROLE_ORDER, unknown ones after, sorted."""
    rank = {r: n for n, r in enumerate(ROLE_ORDER)}
    return sorted(roles, key=lambda r: (rank.get(r, len(rank)), r))


def roles_text(roles: list[str]) -> str:
    """ "master, data, ingest": full names; the data tiers a generic `data` node holds
    anyway are folded into "data (all tiers)" when it has them all; a node with no role is
    "coordinating only"."""
    names = ordered_roles(roles)
    if not names:
        return "coordinating only"
    if "data" in names and set(names) >= DATA_TIERS:
        names = [("data (all tiers)" if r == "data" else r) for r in names if r not in DATA_TIERS]
    return ", ".join(names)


@dataclass(frozen=True)
class Watermark:
    """One disk watermark as set (`85%`, `0.85` or free bytes `500mb`), parsed."""

    name: str  # low | high | flood_stage
    raw: str
    used_percent: float | None  # a percentage or ratio: the used share it stands for
    free_bytes: int | None  # an absolute value: the free space it stands for
    max_headroom_bytes: int | None = None  # the `.max_headroom` (percent watermarks only)

    def threshold_percent(self, total_bytes: int | None) -> float | None:
        """The used percentage of a disk of `total_bytes` at which this watermark is
        crossed, as the disk threshold decider computes it: a percentage, unless the
        max_headroom (free space) is less than what it leaves free; an absolute value is
        free space."""
        if self.used_percent is not None:
            if not total_bytes or not self.max_headroom_bytes:
                return self.used_percent
            free = min(total_bytes * (100 - self.used_percent) / 100, self.max_headroom_bytes)
            return 100 * (1 - free / total_bytes)
        if self.free_bytes is not None and total_bytes:
            return max(0.0, 100 * (1 - self.free_bytes / total_bytes))
        return None


@dataclass(frozen=True)
class DiskSettings:
    """The cluster's effective disk allocation settings (`GET _cluster/settings?
    include_defaults=true&flat_settings=true`, transient over persistent over defaults):
    `cluster.routing.allocation.disk.threshold_enabled` and the three watermarks."""

    threshold_enabled: bool
    watermarks: list[Watermark]  # low, high, flood_stage
    source: dict[str, str] = field(default_factory=dict)  # setting -> the layer it came from


def _of(used: int | None, total: int | None, pct: float | None) -> str:
    """ "312MiB / 1.0GiB (30%)": used of total, with the percentage."""
    if used is None or total is None:
        return f"{pct:.0f}%" if pct is not None else "-"
    share = pct if pct is not None else (100 * used / total if total else 0.0)
    return f"{human_bytes(used)} / {human_bytes(total)} ({share:.0f}%)"


NODE_HEADERS = ("node", "roles", "master", "heap used", "disk used", "shards", "ip", "version")


def node_cells(n: EsNode) -> tuple[str, ...]:
    """One node's row in `opskit cluster` and the TUI's nodes view: name, roles in full,
    elected master, heap and disk used of total, shard copies, ip, version."""
    heap_pct = float(n.heap_percent) if n.heap_percent is not None else None
    return (
        n.name,
        roles_text(n.role_names) if n.role_names else n.roles,
        "elected" if n.master else "",
        _of(n.heap_used_bytes, n.heap_max_bytes, heap_pct),
        _of(n.disk_used_bytes, n.disk_total_bytes, n.disk_used_percent),
        str(n.shards) if n.shards is not None else "-",
        n.ip,
        n.version,
    )
