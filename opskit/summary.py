"""The status summary: the collected state of the stack judged once. `opskit status`
prints it and the TUI's overview renders it; neither recomputes counts of its own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opskit.errors import EXIT_OK
from opskit.findings import Finding, Severity, exit_code
from opskit.models import Alert, ClusterHealth, Index, QueueDepth, ServiceHealth, Target
from opskit.output import number

if TYPE_CHECKING:
    from opskit.live import LiveState
    from opskit.stack import StackStatus

BACKENDS = ("prometheus", "alertmanager", "elasticsearch", "grafana")


@dataclass(slots=True)
class Reading:
    """One source's latest answer (None when it has none) and its error, if any."""

    value: Any = None
    error: str | None = None  # "<title>: <reason>"
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class SourceSummary:
    ok: bool
    error: str | None
    latency_ms: float


@dataclass(slots=True)
class DownTarget:
    job: str
    instance: str
    last_error: str


@dataclass(slots=True)
class TargetSummary:
    total: int
    up: int
    down: int
    down_targets: list[DownTarget]


@dataclass(slots=True)
class AlertSummary:
    firing: int
    by_severity: dict[str, int]
    silenced: int
    inhibited: int
    top: list[Alert] = field(default_factory=list)  # firing, critical first

    @property
    def suppressed(self) -> int:
        return self.silenced + self.inhibited


@dataclass(slots=True)
class ElasticsearchSummary:
    cluster: str
    status: str
    nodes: int
    unassigned_shards: int
    indices: dict[str, int]  # by health; "closed" for closed ones


@dataclass(slots=True)
class Summary:
    context: str
    sources: dict[str, SourceSummary]
    targets: TargetSummary | None
    alerts: AlertSummary | None
    queues: list[QueueDepth] | None
    elasticsearch: ElasticsearchSummary | None
    grafana: dict[str, Any] | None
    services: list[ServiceHealth]
    findings: list[Finding] = field(default_factory=list)
    exit_code: int = EXIT_OK


def readings_from_status(st: StackStatus) -> dict[str, Reading]:
    """`opskit status`'s one collection, as readings."""

    def r(src: Any) -> Reading:
        error = f"{src.error.title}: {src.error.reason}" if src.error else None
        return Reading(src.value, error, src.latency_ms)

    return {
        "targets": r(st.targets),
        "alerts": r(st.alerts),
        "queues": r(st.queues),
        "cluster": r(st.cluster),
        "indices": r(st.indices),
        "grafana": r(st.grafana),
        "services": Reading(st.services),
    }


def readings_from_live(state: LiveState) -> dict[str, Reading]:
    """The TUI's live state (last good values are kept while a source is failing)."""
    out: dict[str, Reading] = {}
    for name in ("targets", "alerts", "queues", "cluster", "indices", "grafana", "services"):
        src = state[name]
        error = f"{src.error_title or 'error'}: {src.error}" if src.error else None
        out[name] = Reading(src.value, error, src.latency_ms)
    return out


def summarize(context: str, readings: Mapping[str, Reading]) -> Summary:
    """Judge the readings: counts, findings and the exit code of `opskit status`."""
    findings: list[Finding] = []

    def add(severity: Severity, source: str, subject: str, summary: str) -> None:
        findings.append(Finding(severity, subject, summary, source=source))

    sources: dict[str, SourceSummary] = {}
    for backend, key in zip(BACKENDS, ("targets", "alerts", "cluster", "grafana"), strict=True):
        src = readings[key]
        sources[backend] = SourceSummary(src.ok, src.error, round(src.latency_ms, 1))
        if src.error:
            add("critical", backend, backend, src.error)

    targets = None
    target_list: list[Target] | None = readings["targets"].value
    if target_list is not None:
        down = [t for t in target_list if t.health != "up"]
        targets = TargetSummary(
            len(target_list),
            len(target_list) - len(down),
            len(down),
            [DownTarget(t.job, t.instance, t.last_error) for t in down],
        )
        for t in down:
            add("critical", "targets", f"{t.job} {t.instance}", f"down: {t.last_error}")

    alerts = None
    alert_list: list[Alert] | None = readings["alerts"].value
    if alert_list is not None:
        firing = [a for a in alert_list if a.state == "active"]
        alerts = AlertSummary(
            len(firing),
            dict(sorted(Counter(a.severity for a in firing).items())),
            sum(a.silenced for a in alert_list),
            sum(a.inhibited for a in alert_list),
            sorted(firing, key=lambda a: a.severity != "critical"),
        )
        for a in firing:
            summary = f"firing {a.annotations.get('summary', '')}".strip()
            level: Severity = "critical" if a.severity == "critical" else "warning"
            add(level, "alerts", a.alertname, summary)

    queues_src = readings["queues"]
    if queues_src.error and readings["targets"].ok:
        add("warning", "queues", "queues", queues_src.error)
    depths: list[QueueDepth] | None = queues_src.value
    for q in depths or []:
        if q.note:  # no value: say what was looked for
            add("warning", "queues", q.queue, f"no data ({q.note})")
        elif q.state != "ok":
            limit = q.critical if q.state == "critical" and q.critical else q.warning
            add(q.state, "queues", q.queue, f"{q.series}: {number(q.value)} > {limit:g}")

    es = None
    health: ClusterHealth | None = readings["cluster"].value
    if health is not None:
        index_list: list[Index] = readings["indices"].value or []
        es = ElasticsearchSummary(
            health.cluster_name,
            health.status,
            health.number_of_nodes,
            health.unassigned_shards,
            dict(sorted(Counter(i.health or "closed" for i in index_list).items())),
        )
        if health.status in ("red", "yellow"):
            severity: Severity = "critical" if health.status == "red" else "warning"
            add(severity, "elasticsearch", health.cluster_name, f"health is {health.status}")

    services: list[ServiceHealth] = readings["services"].value or []
    for svc in services:
        if not svc.ok:
            add("critical", "services", svc.name, svc.error)
        elif svc.degraded:
            add(svc.level, "services", svc.name, svc.detail())

    unreachable = any(not s.ok for s in sources.values())
    return Summary(
        context,
        sources,
        targets,
        alerts,
        depths,
        es,
        readings["grafana"].value,
        services,
        findings,
        exit_code(findings, unreachable=unreachable),
    )
