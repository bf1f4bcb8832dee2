"""The status summary: the collected state of the stack judged once. `opskit status`
prints it and the TUI's overview renders it; neither recomputes counts of its own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from opskit.errors import EXIT_OK, Unsupported
from opskit.findings import Finding, Severity, exit_code
from opskit.models import (
    Alert,
    ClusterHealth,
    Index,
    Member,
    Membership,
    QueueDepth,
    ServiceHealth,
    Target,
)
from opskit.output import number

if TYPE_CHECKING:
    from opskit.live import LiveState
    from opskit.stack import StackStatus

T = TypeVar("T")
BACKENDS = ("prometheus", "alertmanager", "elasticsearch", "grafana")


@dataclass(slots=True)
class Reading:
    """One source's latest answer (None when it has none) and its error, if any."""

    value: Any = None
    error: str | None = None  # "<title>: <reason>"
    latency_ms: float = 0.0
    note: str | None = None  # the backend does not serve this source (errors.Unsupported)

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
class ClusterSummary:
    """A clustered backend (Alertmanager peers, Prometheus replicas): '2/3 peers', each
    member, and what they disagree on (the `--json` shape of `clusters`)."""

    backend: str
    headline: str  # "2/3 peers", "1/2 replicas"
    degraded: bool
    members: list[Member]
    disagreements: list[str]


def cluster_summary(m: Membership) -> ClusterSummary:
    return ClusterSummary(m.backend, m.headline(), m.degraded, m.members, m.disagreements)


def member_reason(member: Member) -> str:
    """Why a member is down, without its URL again (the client's reasons start with it)."""
    return member.error.removeprefix(f"{member.url}: ").removeprefix(f"{member.url}/: ") or (
        "no answer"
    )


def cluster_line(m: Membership) -> str:
    """'2/3 peers; http://... down: connection refused' (the finding's text)."""
    down = "; ".join(f"{d.url} down: {member_reason(d)}" for d in m.down)
    return f"{m.headline()}; {down}" if down else m.headline()


def _cluster_findings(clusters: list[Membership]) -> list[Finding]:
    """A member down or a disagreement is a warning, never an outage: the cluster still
    answers (every member down is the backend's own source error)."""
    findings = []
    for m in clusters:
        if not m.up:
            continue
        subject = f"{m.backend} cluster"
        if m.down:
            findings.append(Finding("warning", subject, cluster_line(m), source=m.backend))
        for sentence in m.disagreements:
            findings.append(Finding("warning", subject, sentence, source=m.backend))
    return findings


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
    clusters: list[ClusterSummary] = field(default_factory=list)


def readings_from_status(st: StackStatus) -> dict[str, Reading]:
    """`opskit status`'s one collection, as readings."""

    def r(src: Any) -> Reading:
        if isinstance(src.error, Unsupported):  # answered, but does not serve it: a note
            return Reading(src.value, None, src.latency_ms, note=src.error.reason)
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
        "clusters": r(st.clusters),
    }


def readings_from_live(state: LiveState) -> dict[str, Reading]:
    """The TUI's live state (last good values are kept while a source is failing)."""
    out: dict[str, Reading] = {}
    for name in ("targets", "alerts", "queues", "cluster", "indices", "grafana", "services"):
        src = state[name]
        if src.error and src.error_title == Unsupported.title:  # a note, not an outage
            out[name] = Reading(src.value, None, src.latency_ms, note=src.error)
            continue
        error = f"{src.error_title or 'error'}: {src.error}" if src.error else None
        out[name] = Reading(src.value, error, src.latency_ms)
    out["clusters"] = Reading(list(getattr(state, "clusters", {}).values()))
    return out


class SummaryMemo:
    """`summarize`'s per-source pieces (counts and findings), remembered by the identity
    of the source's value: the TUI judges the stack on every render, and a render after
    one source's poll recomputes only that source's piece. The pieces are shared between
    the summaries made with one memo; they are not to be changed."""

    def __init__(self) -> None:
        self._parts: dict[str, tuple[tuple[Any, ...], Any]] = {}
        self.builds: Counter[str] = Counter()  # pieces computed, by name (for tests)

    def get(self, name: str, values: tuple[Any, ...], build: Callable[[], T]) -> T:
        hit = self._parts.get(name)
        if (
            hit is not None
            and len(hit[0]) == len(values)
            and all(a is b for a, b in zip(hit[0], values, strict=True))
        ):
            return cast(T, hit[1])
        result = build()
        self.builds[name] += 1
        self._parts[name] = (values, result)  # holds the values: their ids stay theirs
        return result


@dataclass(slots=True)
class Tally:
    """The summary's counts, without its judgement (findings, exit code): what the TUI's
    overview draws."""

    targets: TargetSummary | None
    alerts: AlertSummary | None
    queues: list[QueueDepth] | None
    elasticsearch: ElasticsearchSummary | None
    grafana: dict[str, Any] | None
    services: list[ServiceHealth]


def _target_summary(target_list: list[Target] | None) -> TargetSummary | None:
    if target_list is None:
        return None
    down = [DownTarget(t.job, t.instance, t.last_error) for t in target_list if t.health != "up"]
    return TargetSummary(len(target_list), len(target_list) - len(down), len(down), down)


def _alert_summary(alert_list: list[Alert] | None) -> AlertSummary | None:
    if alert_list is None:
        return None
    critical: list[Alert] = []
    others: list[Alert] = []  # firing, not critical
    by_severity: dict[str, int] = {}
    silenced = inhibited = 0
    for a in alert_list:  # one pass
        if a.state == "active":
            (critical if a.severity == "critical" else others).append(a)
            by_severity[a.severity] = by_severity.get(a.severity, 0) + 1
        silenced += a.silenced
        inhibited += a.inhibited
    return AlertSummary(
        len(critical) + len(others),
        dict(sorted(by_severity.items())),
        silenced,
        inhibited,
        critical + others,  # critical first, each in the order given
    )


def _elasticsearch_summary(
    health: ClusterHealth | None, index_list: list[Index] | None
) -> ElasticsearchSummary | None:
    if health is None:
        return None
    return ElasticsearchSummary(
        health.cluster_name,
        health.status,
        health.number_of_nodes,
        health.unassigned_shards,
        dict(sorted(Counter(i.health or "closed" for i in index_list or []).items())),
    )


def tally(readings: Mapping[str, Reading], memo: SummaryMemo | None = None) -> Tally:
    """The counts `summarize` judges (the same objects, with the same `memo`); a source
    whose value is the one of the memo's last call is not counted again."""
    memo = memo if memo is not None else SummaryMemo()
    targets = readings["targets"].value
    alerts = readings["alerts"].value
    health, indices = readings["cluster"].value, readings["indices"].value
    return Tally(
        memo.get("targets", (targets,), lambda: _target_summary(targets)),
        memo.get("alerts", (alerts,), lambda: _alert_summary(alerts)),
        readings["queues"].value,
        memo.get(
            "elasticsearch", (health, indices), lambda: _elasticsearch_summary(health, indices)
        ),
        readings["grafana"].value,
        readings["services"].value or [],
    )


def _target_findings(targets: TargetSummary | None) -> list[Finding]:
    return [
        Finding("critical", f"{t.job} {t.instance}", f"down: {t.last_error}", source="targets")
        for t in (targets.down_targets if targets else ())
    ]


def _alert_findings(alert_list: list[Alert] | None) -> list[Finding]:
    findings = []
    for a in alert_list or ():
        if a.state != "active":
            continue
        summary = f"firing {a.annotations.get('summary', '')}".strip()
        level: Severity = "critical" if a.severity == "critical" else "warning"
        findings.append(Finding(level, a.alertname, summary, source="alerts"))
    return findings


def _services_findings(services: list[ServiceHealth]) -> list[Finding]:
    findings = []
    for svc in services:
        if not svc.ok:
            findings.append(Finding("critical", svc.name, svc.error, source="services"))
        elif svc.degraded:
            findings.append(Finding(svc.level, svc.name, svc.detail(), source="services"))
    return findings


def summarize(
    context: str, readings: Mapping[str, Reading], memo: SummaryMemo | None = None
) -> Summary:
    """Judge the readings: counts, findings and the exit code of `opskit status`. With a
    `memo`, a source whose value is the same object as last time is not judged again."""
    memo = memo if memo is not None else SummaryMemo()
    counts = tally(readings, memo)
    findings: list[Finding] = []

    def add(severity: Severity, source: str, subject: str, summary: str) -> None:
        findings.append(Finding(severity, subject, summary, source=source))

    sources: dict[str, SourceSummary] = {}
    for backend, key in zip(BACKENDS, ("targets", "alerts", "cluster", "grafana"), strict=True):
        src = readings[key]
        sources[backend] = SourceSummary(src.ok, src.error, round(src.latency_ms, 1))
        if src.error:
            add("critical", backend, backend, src.error)
        elif src.note:  # e.g. VictoriaMetrics serves no targets: say so, not "0 targets"
            add("info", backend, key, src.note)

    targets = counts.targets
    findings.extend(memo.get("targets!", (targets,), lambda: _target_findings(targets)))
    alert_list: list[Alert] | None = readings["alerts"].value
    findings.extend(memo.get("alerts!", (alert_list,), lambda: _alert_findings(alert_list)))

    queues_src = readings["queues"]
    if queues_src.error and readings["targets"].ok:
        add("warning", "queues", "queues", queues_src.error)
    for q in counts.queues or []:
        if q.note:  # no value: say what was looked for
            add("warning", "queues", q.queue, f"no data ({q.note})")
        elif q.state != "ok":
            limit = q.critical if q.state == "critical" and q.critical else q.warning
            add(q.state, "queues", q.queue, f"{q.series}: {number(q.value)} > {limit:g}")

    es = counts.elasticsearch
    if es is not None and es.status in ("red", "yellow"):
        severity: Severity = "critical" if es.status == "red" else "warning"
        add(severity, "elasticsearch", es.cluster, f"health is {es.status}")

    services = counts.services
    findings.extend(memo.get("services!", (services,), lambda: _services_findings(services)))
    clusters_src = readings.get("clusters")
    clusters: list[Membership] = (clusters_src.value if clusters_src else None) or []
    findings.extend(_cluster_findings(clusters))

    unreachable = any(not s.ok for s in sources.values())
    return Summary(
        context,
        sources,
        counts.targets,
        counts.alerts,
        counts.queues,
        es,
        counts.grafana,
        services,
        findings,
        exit_code(findings, unreachable=unreachable),
        [cluster_summary(m) for m in clusters],
    )
