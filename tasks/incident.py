"""The incident view (issue 17): everything an operator woken by an alert needs, on one
page. `incident(stack, key)` gathers each part concurrently and each part fails on its
own (a `Sourced`: its value or its error):

- alert: the alert as Alertmanager has it (every instance of that alertname, or the one
  fingerprint), its silences, what inhibits it and what it inhibits; when Alertmanager no
  longer has it, as Prometheus last saw it in `ALERTS` over the history window
- history: its episodes from `ALERTS{alertname=...}` over the history window
- targets: the scrape targets its `job` and `instance` labels name, with `up` over the
  metrics window
- rule: the alerting rule (PromQL, `for`, labels), the current value of the expression
  (its left-hand side when it is `X > N` style) and that expression over the window
- logs: the service's log sources (its `service` or `job` label, LOG_SOURCES_OF)
  from `log_before` before the alert started until now: errors and warnings first,
  identical messages grouped with a count, newest first
- queues: the queue depths, when the alert is about a queue
- dashboards: Grafana dashboards whose panel queries name its job or a metric of its rule
- traces: the traces of its service in Jaeger around its start (`[tracing]
  incident_before`/`incident_after`), failing first, then the slowest (tasks.traces)

The screen loads the parts one by one with the same functions (`find_alert`, then
`alert_history`, `alert_targets`, ...). Prints nothing.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from opskit.durations import format_duration
from opskit.errors import BackendError, NotFound
from opskit.exporters import SIGNALS
from opskit.models import (
    Alert,
    AlertHistory,
    DashboardLink,
    Episode,
    IncidentAlert,
    IncidentLogs,
    LogGroup,
    LogRecord,
    Points,
    QueueDepth,
    Rule,
    RuleEvidence,
    Series,
    TargetEvidence,
    to_json,
)
from opskit.models_tracing import IncidentTraces
from opskit.stack import Sourced, fetch
from opskit.tasks.maintenance.promql import _NUMBER, _top_level_ops, split_threshold
from opskit.tasks.maintenance.weekly import index_glob
from opskit.tasks.traces import incident_traces

if TYPE_CHECKING:
    from opskit.stack import Stack

# An alert's `service` or `job` label -> the log sources (the `<source>` of the
# `logs-<source>-*` indices, config doctor.log_index) that hold that service's logs.
# A label value that is itself one of the configured doctor.log_sources maps to itself.
LOG_SOURCES_OF: dict[str, tuple[str, ...]] = {
    "email-service": ("email-service",),
    "celery": ("celery-worker",),
    "celery-worker": ("celery-worker",),
    "celery-beat": ("celery-worker",),
    "postgres": ("postgresql",),
    "postgresql": ("postgresql",),
    "postfix": ("postfix",),
    "dovecot": ("dovecot",),
}
LOG_BEFORE = timedelta(minutes=15)  # logs from this long before the alert started
LOG_WINDOWS = (
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
)
HISTORY_WINDOWS = (timedelta(hours=24), timedelta(days=7))
PROBLEM_LEVELS = ["ERROR", "CRITICAL", "FATAL", "WARNING", "WARN"]
LEVEL_RANK = {"CRITICAL": 0, "FATAL": 0, "ERROR": 0, "WARNING": 1, "WARN": 1}
MAX_DASHBOARDS = 100
MAX_SERIES = 20
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}


# ------------------------------------------------------------------ the incident


@dataclass
class Incident:
    """Each part as a value or its error; a part is None when it was not gathered (no
    such alert)."""

    key: str
    generated_at: datetime
    alert: Sourced[IncidentAlert]
    history: Sourced[AlertHistory] | None = None
    targets: Sourced[list[TargetEvidence]] | None = None
    rule: Sourced[RuleEvidence | None] | None = None
    logs: Sourced[IncidentLogs] | None = None
    queues: Sourced[list[QueueDepth] | None] | None = None
    dashboards: Sourced[list[DashboardLink]] | None = None
    traces: Sourced[IncidentTraces] | None = None
    windows: dict[str, timedelta] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.alert.value is not None

    def exit_code(self) -> int:
        """0 found (even resolved), 6 no such alert, else the Alertmanager error's code
        (3 unreachable)."""
        if self.alert.error is not None:
            return self.alert.error.exit_code
        return 0

    def parts(self) -> dict[str, Sourced[Any] | None]:
        return {
            "alert": self.alert,
            "history": self.history,
            "targets": self.targets,
            "rule": self.rule,
            "logs": self.logs,
            "queues": self.queues,
            "dashboards": self.dashboards,
            "traces": self.traces,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "generated_at": to_json(self.generated_at),
            "found": self.found,
            "windows": to_json(self.windows),
            **{name: part_json(part) for name, part in self.parts().items()},
            "exit_code": self.exit_code(),
        }


def part_json(part: Sourced[Any] | None) -> dict[str, Any] | None:
    """`{ok, error, latency_ms, value}`; None for a part not gathered."""
    if part is None:
        return None
    return {
        "ok": part.ok,
        "error": str(part.error) if part.error is not None else None,
        "latency_ms": round(part.latency_ms, 1),
        "value": to_json(part.value),
    }


async def incident(
    stack: Stack,
    key: str,
    since: timedelta = timedelta(hours=2),
    history: timedelta = timedelta(hours=24),
    log_before: timedelta = LOG_BEFORE,
) -> Incident:
    """The incident view of the alert `key` (an alertname or a fingerprint). `since`:
    the metrics window (targets' `up`, the rule's expression); `history`: the firing
    history's window; `log_before`: logs from this long before the alert started."""
    now = datetime.now(UTC)
    alert = await locate(stack, key, history)
    found = Incident(
        key,
        now,
        alert,
        windows={"since": since, "history": history, "log_before": log_before},
    )
    subject = alert.value
    if subject is None:
        return found
    traces = asyncio.ensure_future(fetch(incident_traces(stack, subject)))
    (
        found.history,
        found.targets,
        found.rule,
        found.logs,
        found.queues,
        found.dashboards,
    ) = await asyncio.gather(
        fetch(alert_history(stack, subject.alertname, history, active=active_since(subject))),
        fetch(alert_targets(stack, subject, since)),
        fetch(alert_rule(stack, subject, since)),
        fetch(alert_logs(stack, subject, log_before)),
        fetch(alert_queues(stack, subject)),
        fetch(alert_dashboards(stack, subject)),
    )
    found.traces = await traces
    return found


async def locate(stack: Stack, key: str, history: timedelta) -> Sourced[IncidentAlert]:
    """The alert part. When Alertmanager fails, Prometheus' `ALERTS` may still know the
    alert: the part keeps Alertmanager's error and that value, so the others can run."""
    part = await fetch(find_alert(stack, key, history))
    if part.error is not None and not isinstance(part.error, NotFound):
        try:
            part.value = await _from_history(stack, key, history)
        except BackendError:
            part.value = None
    return part


# ------------------------------------------------------------------ the alert


async def find_alert(stack: Stack, key: str, history: timedelta) -> IncidentAlert:
    """The alert by fingerprint or alertname from Alertmanager (silenced and inhibited
    too), else from the `ALERTS` history; NotFound when neither has it."""
    alerts = await stack.alertmanager.alerts()
    matching = [a for a in alerts if a.fingerprint == key] or [
        a for a in alerts if a.alertname == key
    ]
    if matching:
        silences = await stack.alertmanager.silences()
        return _from_alertmanager(matching, alerts, silences)
    try:
        return await _from_history(stack, key, history)
    except NotFound:
        raise NotFound(
            "alertmanager",
            f"no alert {key!r}: not firing, and not in the last {format_duration(history)} of "
            "Prometheus' ALERTS",
        ) from None


def _from_alertmanager(
    matching: list[Alert], every: list[Alert], silences: list[Any]
) -> IncidentAlert:
    rank = {"active": 0, "suppressed": 1, "unprocessed": 2}
    matching.sort(
        key=lambda a: (rank.get(a.state, 9), (a.starts_at or datetime.max.replace(tzinfo=UTC)))
    )
    first = matching[0]
    names = {a.fingerprint: a.alertname for a in every}
    fingerprints = {a.fingerprint for a in matching}
    silence_ids = {s for a in matching for s in a.silenced_by}
    inhibitors = sorted({f for a in matching for f in a.inhibited_by})
    starts = [a.starts_at for a in matching if a.starts_at is not None]
    return IncidentAlert(
        alertname=first.alertname,
        fingerprint=first.fingerprint,
        state="firing" if first.state == "active" else "suppressed",
        severity=first.severity,
        labels=dict(first.labels),
        annotations=dict(first.annotations),
        summary=first.annotations.get("summary", ""),
        description=first.annotations.get("description", ""),
        runbook_url=first.annotations.get("runbook_url", ""),
        starts_at=min(starts) if starts else None,
        source="alertmanager",
        instances=matching,
        silences=[s for s in silences if s.id in silence_ids],
        inhibited_by=[{"fingerprint": f, "alertname": names.get(f, "")} for f in inhibitors],
        inhibits=[
            {"fingerprint": a.fingerprint, "alertname": a.alertname}
            for a in every
            if fingerprints & set(a.inhibited_by)
        ],
    )


async def _from_history(stack: Stack, alertname: str, window: timedelta) -> IncidentAlert:
    past = await alert_history(stack, alertname, window)
    if not past.episodes:
        raise NotFound("prometheus", f"no ALERTS{{alertname={_quote(alertname)}}}")
    last = past.episodes[-1]
    labels = {"alertname": alertname, **last.labels}
    return IncidentAlert(
        alertname=alertname,
        fingerprint="",
        state="firing" if last.ongoing else "resolved",
        severity=labels.get("severity", "none"),
        labels=labels,
        annotations={},
        summary="",
        description="",
        runbook_url="",
        starts_at=last.start,
        source="history",
        instances=[],
        silences=[],
        inhibited_by=[],
        inhibits=[],
    )


# ------------------------------------------------------------------ history


def _step(window: timedelta, points: int) -> float:
    return max(15.0, math.ceil(window.total_seconds() / points))


def active_since(subject: IncidentAlert) -> datetime | None:
    """When the alert, active in Alertmanager now, started: the history's ongoing episode
    even before the range query's sampling has seen it."""
    if subject.source == "alertmanager" and subject.state in ("firing", "suppressed"):
        return subject.starts_at
    return None


async def alert_history(
    stack: Stack,
    alertname: str,
    window: timedelta,
    now: datetime | None = None,
    active: datetime | None = None,
) -> AlertHistory:
    """Firing episodes of `ALERTS{alertname=...}` over the window, oldest first. Pending
    time counts separately. (`ALERTS_FOR_STATE` holds the same episodes' active-since
    times; the range query of `ALERTS` is enough to draw them.) `active`: the start of
    the alert Alertmanager has active now; a range query sampled every `step` seconds
    may not have seen an episode that began less than a step ago, and Alertmanager's
    word makes it ongoing."""
    end = now or datetime.now(UTC)
    start = end - window
    step = _step(window, 2000)
    expr = f"ALERTS{{alertname={_quote(alertname)}}}"
    matrix = await stack.prometheus.query_range(expr, start, end, step)
    firing = [(labels, pts) for labels, pts in matrix if labels.get("alertstate") == "firing"]
    pending = [pts for labels, pts in matrix if labels.get("alertstate") == "pending"]
    shown = _distinguishing([labels for labels, _ in firing])
    episodes: list[Episode] = []
    for labels, points in firing:
        for first, last in _runs([t for t, _ in points], step):
            ongoing = last >= end.timestamp() - 2 * step
            stop = end.timestamp() if ongoing else last
            episodes.append(
                Episode(
                    _at(first),
                    _at(stop),
                    max(stop - first, 0.0),
                    ongoing,
                    {k: labels[k] for k in shown if k in labels},
                )
            )
    episodes.sort(key=lambda e: e.start)
    if active is not None and active >= start:
        with_active(episodes, active, end, step)
    pending_seconds = sum(
        last - first + step for pts in pending for first, last in _runs([t for t, _ in pts], step)
    )
    return AlertHistory(
        start=start,
        end=end,
        step=step,
        episodes=episodes,
        fired=len(episodes),
        firing_seconds=sum(e.duration for e in episodes),
        pending_seconds=pending_seconds,
    )


def with_active(episodes: list[Episode], active: datetime, end: datetime, step: float) -> None:
    """Make the episode of an alert active since `active` ongoing until `end`: the last
    episode when it reaches to within two steps of `active`, else a new one."""
    if any(e.ongoing for e in episodes):
        return
    last = episodes[-1] if episodes else None
    if last is not None and last.end.timestamp() >= active.timestamp() - 2 * step:
        last.end, last.ongoing = end, True  # the same episode, seen until just now
        last.duration = max((end - last.start).total_seconds(), 0.0)
    else:
        episodes.append(Episode(active, end, max((end - active).total_seconds(), 0.0), True, {}))


def _runs(times: list[float], step: float) -> list[tuple[float, float]]:
    """Contiguous runs of sample times (a gap over 1.5 steps starts a new run)."""
    runs: list[tuple[float, float]] = []
    for t in sorted(times):
        if runs and t - runs[-1][1] <= 1.5 * step:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def _distinguishing(label_sets: list[dict[str, str]]) -> list[str]:
    """The labels an episode keeps: the series' own, without those ALERTS adds."""
    return sorted({k for ls in label_sets for k in ls} - {"__name__", "alertstate", "alertname"})


# ------------------------------------------------------------------ targets


async def alert_targets(
    stack: Stack, alert: IncidentAlert, since: timedelta, now: datetime | None = None
) -> list[TargetEvidence]:
    """The scrape targets the alert's `job` (and `instance`) labels name, with `up` over
    the window. [] when the alert has no job label."""
    wanted = {
        (ls["job"], ls.get("instance"))
        for ls in [a.labels for a in alert.instances] or [alert.labels]
        if ls.get("job")
    }
    if not wanted:
        return []
    jobs = sorted({job for job, _ in wanted})
    end = now or datetime.now(UTC)
    step = _step(since, 240)
    targets, ups = await asyncio.gather(
        stack.prometheus.targets(),
        asyncio.gather(
            *(
                stack.prometheus.query_range(f"up{{job={_quote(job)}}}", end - since, end, step)
                for job in jobs
            )
        ),
    )
    up_of: dict[tuple[str, str], Points] = {}
    for matrix in ups:
        for labels, points in matrix:
            up_of[(labels.get("job", ""), labels.get("instance", ""))] = points
    found = []
    for t in targets:
        instance = t.labels.get("instance", t.instance)
        if not any(t.job == job and inst in (None, instance) for job, inst in wanted):
            continue
        points = up_of.get((t.job, instance), [])
        values = [v for _, v in points if not math.isnan(v)]
        found.append(
            TargetEvidence(
                job=t.job,
                instance=instance,
                scrape_url=t.scrape_url,
                health=t.health,
                last_error=t.last_error,
                last_scrape=t.last_scrape,
                last_scrape_duration=t.last_scrape_duration,
                up=points,
                up_ratio=sum(1 for v in values if v == 1) / len(values) if values else None,
            )
        )
    found.sort(key=lambda e: (e.health == "up", e.job, e.instance))
    return found


# ------------------------------------------------------------------ the rule


async def _rules_named(stack: Stack, alertname: str) -> list[Rule]:
    rules = await stack.prometheus.rules()
    return [r for r in rules if r.type == "alerting" and r.name == alertname]


def _best_rule(rules: list[Rule], labels: dict[str, str]) -> Rule | None:
    fitting = [r for r in rules if all(labels.get(k) == v for k, v in r.labels.items())]
    chosen = fitting or rules
    return chosen[0] if chosen else None


async def _rule_query(stack: Stack, alert: IncidentAlert) -> str:
    """The alert's rule expression, "" when Prometheus has no such rule or fails."""
    try:
        rule = _best_rule(await _rules_named(stack, alert.alertname), alert.labels)
    except BackendError:
        return ""
    return rule.query if rule is not None else ""


def threshold_of(expr: str) -> dict[str, Any] | None:
    """`{lhs, op, value}` for `X > N` style expressions (and `X == N`), else None."""
    found = split_threshold(expr)
    if found is not None:
        return {"lhs": found.lhs, "op": found.op, "value": found.value}
    text = " ".join(expr.split())
    ops = _top_level_ops(text)
    if len(ops) == 1 and ops[0][1] in ("==", "!="):
        pos, op = ops[0]
        lhs, rhs = text[:pos].strip(), text[pos + len(op) :].strip()
        m = _NUMBER.fullmatch(rhs)
        if m and lhs and not re.search(r"\b(and|or|unless)\b", lhs):
            return {"lhs": lhs, "op": op, "value": float(m[1])}
    return None


async def alert_rule(
    stack: Stack, alert: IncidentAlert, since: timedelta, now: datetime | None = None
) -> RuleEvidence | None:
    """The alerting rule behind the alert with its expression now and over the window;
    None when Prometheus has no alerting rule of that name."""
    rule = _best_rule(await _rules_named(stack, alert.alertname), alert.labels)
    if rule is None:
        return None
    threshold = threshold_of(rule.query)
    plotted = str(threshold["lhs"]) if threshold else rule.query
    end = now or datetime.now(UTC)
    step = _step(since, 240)
    current, matrix = await asyncio.gather(
        stack.prometheus.query(plotted),
        stack.prometheus.query_range(plotted, end - since, end, step),
    )
    return RuleEvidence(
        group=rule.group,
        file=rule.file,
        name=rule.name,
        query=rule.query,
        duration=rule.duration,
        labels=rule.labels,
        health=rule.health,
        last_error=rule.last_error,
        state=rule.state,
        threshold=threshold,
        plotted=plotted,
        current=current[:MAX_SERIES],
        series=[Series(labels, points) for labels, points in matrix[:MAX_SERIES]],
        start=end - since,
        end=end,
        step=step,
    )


# ------------------------------------------------------------------ logs


def log_sources(labels: dict[str, str], configured: Iterable[str] = ()) -> list[str]:
    """The log sources of the alert's service: its `service` label, else its `job`
    label, through LOG_SOURCES_OF (or itself when it is a configured source)."""
    known = set(configured)
    for name in (labels.get("service"), labels.get("job")):
        if not name:
            continue
        if name in LOG_SOURCES_OF:
            return list(LOG_SOURCES_OF[name])
        if name in known:
            return [name]
    return []


def group_logs(records: Iterable[LogRecord]) -> list[LogGroup]:
    """Identical messages (same level and service) as one group with a count; errors
    and warnings first, then the most recently seen first."""
    groups: dict[tuple[str, str, str], LogGroup] = {}
    for r in records:
        k = (r.level.upper(), r.service, r.message)
        g = groups.get(k)
        if g is None:
            groups[k] = LogGroup(r.level.upper(), r.message, 1, r.timestamp, r.timestamp, r.service)
            continue
        g.count += 1
        if r.timestamp is not None:
            if g.first is None or r.timestamp < g.first:
                g.first = r.timestamp
            if g.last is None or r.timestamp > g.last:
                g.last = r.timestamp
    epoch = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(groups.values(), key=lambda g: g.last or epoch, reverse=True)
    return sorted(ordered, key=lambda g: LEVEL_RANK.get(g.level, 2))


async def alert_logs(
    stack: Stack,
    alert: IncidentAlert,
    before: timedelta = LOG_BEFORE,
    now: datetime | None = None,
    problems: int = 500,
    others: int = 200,
) -> IncidentLogs:
    """The service's logs from `before` before the alert started until now: the newest
    `problems` errors and warnings and the newest `others` other lines, grouped."""
    end = now or datetime.now(UTC)
    start = (alert.starts_at or end) - before
    doctor = stack.settings.doctor
    sources = log_sources(alert.labels, doctor.log_sources)
    if not sources:
        service = alert.labels.get("service") or alert.labels.get("job") or "(none)"
        return IncidentLogs(
            [], [], start, end, 0, [], note=f"no log source known for service/job {service}"
        )
    patterns = [index_glob(doctor.log_index, s) for s in sources]
    es = stack.elasticsearch
    bad, rest = await asyncio.gather(
        es.search_logs(patterns, start, end, levels=PROBLEM_LEVELS, size=problems),
        es.search_logs(patterns, start, end, exclude_levels=PROBLEM_LEVELS, size=others),
    )
    return IncidentLogs(
        sources,
        patterns,
        start,
        end,
        bad.total + rest.total,
        group_logs([*bad.records, *rest.records]),
    )


# ------------------------------------------------------------------ queues


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (pure, approximate: functions,
    keywords, label matchers, ranges and grouping clauses left out)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names: set[str] = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[m.start() - 1] if m.start() else " "
        if before.isdigit() or before in ".$":
            continue
        if text[m.end() :].lstrip().startswith("(") or m[0].lower() in _PROMQL_WORDS:
            continue
        names.add(m[0])
    return names


QUEUE_SIGNALS = ("celery_queue", "mail_queue")
QUEUE_METRICS = {
    name
    for signal in QUEUE_SIGNALS
    for v in SIGNALS[signal].variants
    for name in metric_names(v.query) | metric_names(v.probe)
}


def about_queue(alertname: str, expr: str) -> bool:
    return "queue" in alertname.lower() or bool(metric_names(expr) & QUEUE_METRICS)


async def alert_queues(stack: Stack, alert: IncidentAlert) -> list[QueueDepth] | None:
    """The queue depths when the alert is about a queue (its name or its rule's metrics):
    those whose query shares a metric with the rule when any do, else all; None when
    the alert is not about a queue."""
    expr = await _rule_query(stack, alert)
    if not about_queue(alert.alertname, expr):
        return None
    depths = await stack.queues()
    metrics = metric_names(expr)
    related = [d for d in depths if metric_names(d.query) & metrics]
    return related or depths


# ------------------------------------------------------------------ dashboards


def _exprs(model: Any) -> list[tuple[str, str]]:
    """(panel title, expr) of every query in a dashboard model (rows' panels too)."""
    found: list[tuple[str, str]] = []

    def walk(node: Any, title: str) -> None:
        if isinstance(node, dict):
            title = str(node.get("title") or title) if "targets" in node else title
            for k, v in node.items():
                if k == "expr" and isinstance(v, str):
                    found.append((title, v))
                else:
                    walk(v, title)
        elif isinstance(node, list):
            for item in node:
                walk(item, title)

    walk(model.get("panels") if isinstance(model, dict) else model, "")
    return found


def _names_job(expr: str, job: str) -> bool:
    for op, value in re.findall(r'\bjob\s*(=~|=)\s*"([^"]*)"', expr):
        if op == "=" and value == job:
            return True
        if op == "=~":
            try:
                if re.fullmatch(value, job):
                    return True
            except re.error:
                continue
    return False


def dashboard_matches(
    model: dict[str, Any], jobs: set[str], metrics: set[str]
) -> tuple[list[str], list[str]]:
    """(reasons, panel titles) a dashboard shows the jobs or metrics; pure."""
    reasons: set[str] = set()
    panels: list[str] = []
    for title, expr in _exprs(model):
        hit = {f"job={j}" for j in jobs if _names_job(expr, j)}
        hit |= {f"metric {m}" for m in metric_names(expr) & metrics}
        if hit:
            reasons |= hit
            if title and title not in panels:
                panels.append(title)
    return sorted(reasons), panels


async def alert_dashboards(stack: Stack, alert: IncidentAlert) -> list[DashboardLink]:
    """Grafana dashboards whose panel queries name the alert's job or a metric of its
    rule; link = the Grafana URL + the dashboard's URL."""
    expr = await _rule_query(stack, alert)
    metrics = metric_names(expr)
    jobs = {
        ls["job"] for ls in [a.labels for a in alert.instances] or [alert.labels] if "job" in ls
    }
    if not jobs and not metrics:
        return []
    hits = await stack.grafana.search_all("dash-db")
    boards = await asyncio.gather(
        *(stack.grafana.find_dashboard(h.uid) for h in hits[:MAX_DASHBOARDS])
    )
    base = stack.settings.grafana.url.rstrip("/")
    links = []
    for board in boards:
        if board is None:
            continue
        reasons, panels = dashboard_matches(board.model, jobs, metrics)
        if reasons:
            path = str(board.meta.get("url") or f"/d/{board.uid}")
            links.append(DashboardLink(board.uid, board.title, base + path, reasons, panels))
    links.sort(key=lambda d: (-len(d.matched), d.title))
    return links


# ------------------------------------------------------------------ helpers


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def widen(window: timedelta, windows: tuple[timedelta, ...]) -> timedelta:
    """The next window of the cycle (the TUI's `l` and `h` keys)."""
    later = [w for w in windows if w > window]
    return later[0] if later else windows[0]
