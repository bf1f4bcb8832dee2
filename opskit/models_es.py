"""Elasticsearch records beyond the live screens': snapshots, repositories and the index
facts retention plans from. `ElasticsearchClient` parses the API's JSON into these; the
tasks plan over them. Core: imports nothing above opskit.models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
