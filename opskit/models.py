"""Typed records the clients return and everything else consumes.

`to_json` gives the documented `--json` shape (docs/cli.md): datetimes as ISO 8601 UTC,
field names as below.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from opskit.findings import Severity


def to_json(value: Any) -> Any:
    """Records, lists and dicts of them as plain JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN: "no data" is null
    return value


@dataclass(slots=True)
class Target:
    job: str
    instance: str
    scrape_url: str
    health: str  # up | down | unknown
    last_scrape: datetime | None
    last_scrape_duration: float  # seconds
    last_error: str
    scrape_interval: str
    scrape_timeout: str
    labels: dict[str, str] = field(default_factory=dict)
    # HA replicas (`PrometheusReplicas`): replica name -> its health of this target
    # ("up" | "down" | "unknown" | "absent": that replica does not scrape it), and the
    # replicas' scrape errors; both empty for a single Prometheus
    replicas: dict[str, str] = field(default_factory=dict)
    replica_errors: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.job}|{self.scrape_url}"


@dataclass(slots=True)
class Alert:
    fingerprint: str
    alertname: str
    severity: str
    state: str  # active | suppressed | unprocessed
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    updated_at: datetime | None
    generator_url: str
    silenced_by: list[str]
    inhibited_by: list[str]
    receivers: list[str]

    @property
    def silenced(self) -> bool:
        return bool(self.silenced_by)

    @property
    def inhibited(self) -> bool:
        return bool(self.inhibited_by)


@dataclass(slots=True)
class Silence:
    id: str
    state: str  # active | pending | expired
    matchers: list[str]
    starts_at: datetime | None
    ends_at: datetime | None
    created_by: str
    comment: str


@dataclass(slots=True)
class Rule:
    group: str
    file: str
    name: str
    type: str  # alerting | recording
    query: str
    health: str  # ok | err | unknown
    last_error: str
    state: str  # firing | pending | inactive ("" for recording rules)
    duration: float  # the rule's `for`, seconds
    labels: dict[str, str]
    active_alerts: int
    last_evaluation: datetime | None
    evaluation_time: float
    group_interval: float = 0.0  # seconds between the group's evaluations


@dataclass(slots=True)
class PromAlert:
    """An alert as Prometheus holds it (`/api/v1/alerts`), before Alertmanager."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # pending | firing
    active_at: datetime | None
    value: str


@dataclass(slots=True)
class TsdbStatus:
    head_series: int
    top_metrics: list[tuple[str, int]]  # metric name, series count; most first


@dataclass(slots=True)
class Shard:
    index: str
    shard: int
    primary: bool
    state: str  # STARTED | UNASSIGNED | INITIALIZING | RELOCATING
    node: str | None
    unassigned_reason: str | None


@dataclass(slots=True)
class NodeHeap:
    node: str
    heap_used_bytes: int
    heap_max_bytes: int
    heap_used_percent: float


@dataclass(slots=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(slots=True)
class Index:
    name: str
    health: str  # green | yellow | red | "" for closed
    status: str  # open | close
    docs_count: int
    store_size_bytes: int
    primaries: int
    replicas: int
    creation_date: datetime | None
    uuid: str


@dataclass(slots=True)
class ClusterHealth:
    cluster_name: str
    status: str
    number_of_nodes: int
    number_of_data_nodes: int
    active_primary_shards: int
    active_shards: int
    relocating_shards: int
    initializing_shards: int
    unassigned_shards: int
    number_of_pending_tasks: int
    active_shards_percent: float


@dataclass(slots=True)
class EsNode:
    name: str
    ip: str
    roles: str
    master: bool
    heap_percent: int | None
    ram_percent: int | None
    cpu_percent: int | None
    load_1m: float | None
    disk_used_percent: float | None
    version: str
    # issue 19 (multi-node): full role names (`_nodes/stats` `roles`), heap and disk in
    # bytes (`jvm.mem`, `fs.total`), shard copies on the node (`_cat/allocation`)
    id: str = ""
    role_names: list[str] = field(default_factory=list)
    heap_used_bytes: int | None = None
    heap_max_bytes: int | None = None
    disk_used_bytes: int | None = None
    disk_total_bytes: int | None = None
    shards: int | None = None


@dataclass(slots=True)
class Member:
    """One server of a clustered backend (an Alertmanager peer, a Prometheus replica) as
    the last read of it found it."""

    url: str
    ok: bool
    error: str = ""  # the reason it failed (BackendError.reason), when not ok
    latency_ms: float = 0.0
    name: str = ""  # the peer's name from /api/v2/status, the replica label's value
    detail: str = ""  # one line: "ready, 3 peers", "version 2.42.0"


@dataclass(slots=True)
class Membership:
    """A clustered backend's members and what they disagree on (`opskit.clients`'s
    AlertmanagerCluster and PrometheusReplicas give one after each read)."""

    backend: str  # "alertmanager" | "prometheus"
    members: list[Member]
    disagreements: list[str] = field(default_factory=list)  # one sentence each

    @property
    def up(self) -> list[Member]:
        return [m for m in self.members if m.ok]

    @property
    def down(self) -> list[Member]:
        return [m for m in self.members if not m.ok]

    @property
    def degraded(self) -> bool:
        """Some member down or a disagreement, with at least one member answering."""
        return bool(self.up) and bool(self.down or self.disagreements)

    def headline(self) -> str:
        """'2/3 peers' (Alertmanager) or '1/2 replicas' (Prometheus)."""
        noun = "peers" if self.backend == "alertmanager" else "replicas"
        return f"{len(self.up)}/{len(self.members)} {noun}"


@dataclass(slots=True)
class QueueDepth:
    queue: str  # the configured queue name
    series: str  # the series' labels, e.g. queue_name="default"
    value: float
    warning: float
    critical: float | None
    state: Severity
    query: str = ""  # the PromQL run ("" when a signal found no exporter)
    exporter: str = ""  # which exporter a signal resolved to ("" for a written query)
    note: str = ""  # why there is no value: what was looked for


@dataclass(slots=True)
class ServiceHealth:
    name: str
    url: str
    ok: bool
    status_code: int | None
    latency_ms: float | None
    error: str
    # what a JSON health body says of itself ("healthy", "degraded", "unhealthy"; "" when
    # the body is not such JSON) and of each dependency it checks
    reported: str = ""
    checks: dict[str, str] = field(default_factory=dict)
    # the numbers behind the row (the collector's spans accepted, refused, ...), and a
    # judgement of them: "warning" or "critical" over a threshold, "" for none
    metrics: dict[str, float] = field(default_factory=dict)
    severity: str = ""

    @property
    def degraded(self) -> bool:
        """Answering, but saying that it or a dependency is not healthy (or its metrics
        are over a threshold)."""
        bad = {k for k, v in self.checks.items() if v.lower() not in HEALTHY_WORDS}
        return self.ok and (
            bool(bad)
            or self.reported.lower() not in ("", *HEALTHY_WORDS)
            or self.severity in ("warning", "critical")
        )

    @property
    def level(self) -> Severity:
        """How bad: critical when down or judged critical, warning when degraded."""
        if not self.ok or self.severity == "critical":
            return "critical"
        return "warning" if self.degraded else "ok"

    def detail(self) -> str:
        """`degraded: redis unhealthy, smtp unhealthy`, or "" (a check whose value is a
        sentence, such as the collector's "12 spans refused in the last 5m", as is)."""
        bad = [
            v if " " in v else f"{k} {v}"
            for k, v in self.checks.items()
            if v.lower() not in HEALTHY_WORDS
        ]
        if not bad and not self.degraded:
            return ""
        head = self.reported or "degraded"
        return f"{head}: {', '.join(bad)}" if bad else head


HEALTHY_WORDS = ("healthy", "ok", "up", "pass", "green", "listening")


# ------------------------------------------------------------------ the incident view
# (opskit.tasks.incident; `opskit incident`, the TUI's incident screen)

Points = list[tuple[float, float]]  # (unix seconds, value)


@dataclass(slots=True)
class Series:
    labels: dict[str, str]
    points: Points


@dataclass(slots=True)
class LogRecord:
    """One log document of a `logs-<source>-*` index (lab/shipper.py's fields)."""

    timestamp: datetime | None
    level: str  # ERROR | WARNING | INFO | DEBUG | ""
    message: str
    service: str
    host: str
    index: str


@dataclass(slots=True)
class LogHits:
    """The newest matching documents and how many matched in all."""

    total: int
    records: list[LogRecord]


@dataclass(slots=True)
class LogGroup:
    """Identical messages of one level grouped: how often, first and last seen."""

    level: str
    message: str
    count: int
    first: datetime | None
    last: datetime | None
    service: str


@dataclass(slots=True)
class IncidentLogs:
    sources: list[str]  # the log sources searched (index name part)
    indices: list[str]  # the index patterns searched
    start: datetime
    end: datetime
    matched: int  # documents in the window
    groups: list[LogGroup]  # errors and warnings first, then newest first
    note: str = ""  # why nothing was searched


@dataclass(slots=True)
class IncidentAlert:
    """The alert as Alertmanager has it (every instance of it), or as Prometheus last
    saw it in `ALERTS` when Alertmanager has it no more (source "history")."""

    alertname: str
    fingerprint: str
    state: str  # firing | suppressed | resolved
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    summary: str
    description: str
    runbook_url: str
    starts_at: datetime | None
    source: str  # alertmanager | history
    instances: list[Alert]
    silences: list[Silence]
    inhibited_by: list[dict[str, str]]  # {fingerprint, alertname}
    inhibits: list[dict[str, str]]  # {fingerprint, alertname}: what this alert inhibits


@dataclass(slots=True)
class Episode:
    start: datetime
    end: datetime  # the last time seen firing (now when ongoing)
    duration: float  # seconds
    ongoing: bool
    labels: dict[str, str]  # the series' distinguishing labels


@dataclass(slots=True)
class AlertHistory:
    start: datetime
    end: datetime
    step: float  # seconds
    episodes: list[Episode]  # oldest first
    fired: int  # episodes in the window
    firing_seconds: float
    pending_seconds: float


@dataclass(slots=True)
class TargetEvidence:
    job: str
    instance: str
    scrape_url: str
    health: str
    last_error: str
    last_scrape: datetime | None
    last_scrape_duration: float
    up: Points  # `up` over the window: [unix seconds, value]
    up_ratio: float | None  # share of the window's samples with up == 1


@dataclass(slots=True)
class RuleEvidence:
    group: str
    file: str
    name: str
    query: str
    duration: float  # `for`, seconds
    labels: dict[str, str]
    health: str
    last_error: str
    state: str
    threshold: dict[str, Any] | None  # {lhs, op, value} for `X > N` style expressions
    plotted: str  # the expression shown: the threshold's left-hand side, else the query
    current: list[Sample]
    series: list[Series]  # the plotted expression over the window
    start: datetime
    end: datetime
    step: float


@dataclass(slots=True)
class DashboardLink:
    uid: str
    title: str
    url: str
    matched: list[str]  # why: `job=email-service`, `metric up`
    panels: list[str]  # the titles of the panels that matched
