"""Elasticsearch records beyond the live screens': snapshots, repositories and the index
facts retention plans from. `ElasticsearchClient` parses the API's JSON into these; the
tasks plan over them. Core: imports nothing above opskit.models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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

    @property
    def ok(self) -> bool:
        return self.state == "SUCCESS" and self.shards_failed == 0


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
