"""Many contexts at once (issue 19): one row per context of what matters at a glance
(targets down, alerts by severity, Elasticsearch health, clusters degraded, freshness),
read concurrently across contexts, a failing context never blocking the others, and every
context's alerts merged (each with its context).

Each context is judged by `opskit.summary.summarize`, the same judgement `opskit status`
and the TUI's Overview use; the fleet's one exit code is `findings.exit_code` over every
context's findings (the worst context wins: 3 unreachable > 2 critical > 1 warning > 0).

Two depths of reading: `read_row` (the fleet row's reads only: Prometheus targets,
Alertmanager alerts, Elasticsearch cluster health, and the clustered backends' members),
what the TUI's Fleet screen polls and `make bench` measures; and `status_row` (the whole
`collect()` of `opskit status`), what `opskit status --context a,b` reports, so each
context's part of the exit code is the one `opskit status --context a` gives alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opskit.config import Settings
from opskit.errorclass import classify
from opskit.errors import EXIT_UNREACHABLE, Unsupported
from opskit.findings import Finding, Severity, exit_code, worst
from opskit.models import Alert, Membership
from opskit.stack import Sourced, Stack, StackStatus, collect, fetch
from opskit.summary import Reading, Summary, SummaryMemo, readings_from_status, summarize

# the sources of a fleet row (opskit.live's names) and the backend each belongs to
ROW_SOURCES: dict[str, str] = {
    "targets": "prometheus",
    "alerts": "alertmanager",
    "cluster": "elasticsearch",
}
STALE_AFTER = 3.0  # a row older than this many refresh intervals is shown as stale


def context_colour(settings: Settings) -> str:
    """The context's colour: its `color`, else red for a prod* context, cyan otherwise
    (the TUI's context bar uses the same rule)."""
    return settings.color or ("red" if settings.context.startswith("prod") else "cyan")


@dataclass(slots=True)
class SourceState:
    """One source of a row: ok, or its error (title: reason) and the error's class."""

    ok: bool
    error: str = ""
    error_class: str = ""  # opskit.errorclass label: "connection refused", "HTTP 503"
    latency_ms: float = 0.0
    last_ok: datetime | None = None  # its last successful read (kept across refreshes)


@dataclass(slots=True)
class FleetAlert:
    """An alert with the context it came from (the merged alerts list)."""

    context: str
    alert: Alert

    @property
    def key(self) -> str:
        return f"{self.context}/{self.alert.fingerprint}"


@dataclass(slots=True)
class FleetRow:
    """One context of the fleet, judged."""

    context: str
    colour: str
    read_only: bool
    sources: dict[str, SourceState]  # backend name -> its state ("prometheus", ...)
    targets_up: int | None  # None: never read
    targets_down: int | None
    alerts: dict[str, int]  # firing alerts by severity
    es_cluster: str | None
    es_status: str | None  # green | yellow | red; None: never read
    clusters: list[Membership]
    findings: list[Finding]
    severity: Severity  # the worst finding's ("critical" when a backend is unreachable)
    exit_code: int
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    latency_ms: float = 0.0  # the context's whole read
    summary: Summary | None = None  # the status summary (`status_row` only)
    # the context could not be read at all: its configuration did not load ("config: ...")
    # or reading it failed unexpectedly; a backend's failure is in `sources` instead
    config_error: str = ""

    @property
    def errors(self) -> dict[str, str]:
        return {name: s.error for name, s in self.sources.items() if not s.ok}

    @property
    def error_classes(self) -> dict[str, str]:
        return {name: s.error_class for name, s in self.sources.items() if not s.ok}

    @property
    def unreachable(self) -> bool:
        return bool(self.config_error) or any(not s.ok for s in self.sources.values())

    @property
    def clusters_degraded(self) -> list[str]:
        """'alertmanager 2/3 peers' for each clustered backend missing a member or
        disagreeing."""
        return [f"{m.backend} {m.headline()}" for m in self.clusters if m.degraded]

    @property
    def error_headline(self) -> str:
        """The first failing source as 'prometheus: connection refused' ('' when none)."""
        if self.config_error:
            return self.config_error
        for name, s in self.sources.items():
            if not s.ok:
                return f"{name}: {s.error_class}"
        return ""

    def freshness(self, now: datetime | None = None, interval: float = 10.0) -> str:
        """'5s ago' for a row whose sources all answered at its last refresh; 'stale'
        when one failed but answered before (its last value is shown), or when the row is
        older than STALE_AFTER refresh intervals; 'unreachable' when one never answered."""
        now = now or datetime.now(UTC)
        if self.unreachable:
            never = self.config_error or any(s.last_ok is None for s in self.sources.values())
            return "unreachable" if never else "stale"
        age = max((now - self.fetched_at).total_seconds(), 0.0)
        if age > STALE_AFTER * max(interval, 1.0):
            return "stale"
        return f"{age:.0f}s ago"

    def to_json(self) -> dict[str, Any]:
        from opskit.models import to_json

        out: dict[str, Any] = {
            "context": self.context,
            "colour": self.colour,
            "read_only": self.read_only,
            "sources": to_json(self.sources),
            "targets": {"up": self.targets_up, "down": self.targets_down},
            "alerts": dict(self.alerts),
            "elasticsearch": {"cluster": self.es_cluster, "status": self.es_status},
            "clusters": to_json(self.clusters),
            "clusters_degraded": self.clusters_degraded,
            "errors": self.errors,
            "error_classes": self.error_classes,
            "findings": to_json(self.findings),
            "severity": self.severity,
            "exit_code": self.exit_code,
            "fetched_at": to_json(self.fetched_at),
            "latency_ms": round(self.latency_ms, 1),
        }
        if self.config_error:
            out["config_error"] = self.config_error
        if self.summary is not None:
            out["summary"] = to_json(self.summary)
        return out


def fleet_exit_code(rows: Iterable[FleetRow]) -> int:
    """One exit code for the fleet by the findings rule, over every context's findings."""
    found = list(rows)
    findings = [f for r in found for f in r.findings]
    return exit_code(findings, unreachable=any(r.unreachable for r in found))


def merged_alerts(rows_alerts: Mapping[str, list[Alert]]) -> list[FleetAlert]:
    """Every context's alerts, each with its context (contexts in the order given)."""
    return [FleetAlert(ctx, a) for ctx, alerts in rows_alerts.items() for a in alerts]


# ------------------------------------------------------------------ judging a context


def judge(
    settings: Settings,
    readings: Mapping[str, Reading],
    clusters: list[Membership],
    states: dict[str, SourceState],
    *,
    full: bool,
    latency_ms: float = 0.0,
    memo: SummaryMemo | None = None,
) -> FleetRow:
    """A row from a context's readings, judged by `summarize` (with `full`, the summary
    of `opskit status` is kept on the row); a degraded cluster is the summary's finding
    too (a warning: readings["clusters"])."""
    summary = summarize(settings.context, readings, memo)
    findings = list(summary.findings)
    unreachable = any(not s.ok for s in states.values())
    severity: Severity = "critical" if unreachable else worst(f.severity for f in findings)
    t, a, es = summary.targets, summary.alerts, summary.elasticsearch
    return FleetRow(
        context=settings.context,
        colour=context_colour(settings),
        read_only=settings.read_only,
        sources=states,
        targets_up=t.up if t else None,
        targets_down=t.down if t else None,
        alerts=dict(a.by_severity) if a else {},
        es_cluster=es.cluster if es else None,
        es_status=es.status if es else None,
        clusters=clusters,
        findings=findings,
        severity=severity,
        exit_code=exit_code(findings, unreachable=unreachable),
        latency_ms=latency_ms,
        summary=summary if full else None,
    )


def _state(src: Sourced[Any], before: SourceState | None) -> SourceState:
    if src.ok or isinstance(src.error, Unsupported):  # not served (VictoriaMetrics): a note
        return SourceState(True, latency_ms=src.latency_ms, last_ok=src.fetched_at)
    assert src.error is not None
    return SourceState(
        False,
        f"{src.error.title}: {src.error.reason}",
        classify(src.error.reason).label,
        src.latency_ms,
        before.last_ok if before else None,
    )


@dataclass
class RowData:
    """The last good value of each source of a context (kept while a source fails)."""

    values: dict[str, Any] = field(default_factory=dict)
    states: dict[str, SourceState] = field(default_factory=dict)
    # the summary's pieces by the identity of each value: an unchanged poll (the clients
    # give the same records again for a byte-identical body) is not counted again
    memo: SummaryMemo = field(default_factory=SummaryMemo)


async def read_row(stack: Stack, last: RowData | None = None) -> tuple[FleetRow, list[Alert]]:
    """A fleet row's reads of one context, concurrently (each source alone), then the
    clustered backends' members; with `last`, a failing source keeps its last value.
    Returns the row and the context's alerts (silenced and inhibited ones too)."""
    t0 = time.perf_counter()
    targets, alerts, cluster = await asyncio.gather(
        fetch(stack.prometheus.targets()),
        fetch(stack.alertmanager.alerts(silenced=True, inhibited=True)),
        fetch(stack.elasticsearch.cluster_health()),
    )
    members = await fetch(stack.memberships())
    sourced: dict[str, Sourced[Any]] = {"targets": targets, "alerts": alerts, "cluster": cluster}
    last = last if last is not None else RowData()
    # the summary's own reading of a collection (queues, indices, Grafana and the services
    # are not read by the fleet: no value, no error)
    st = StackStatus(targets, alerts, Sourced(), cluster, Sourced(), Sourced(), [], members)
    readings = readings_from_status(st)
    for name, src in sourced.items():
        if not src.ok and readings[name].value is None:  # failing: its last value, if any
            readings[name].value = last.values.get(name)
    states = {
        ROW_SOURCES[name]: _state(src, last.states.get(ROW_SOURCES[name]))
        for name, src in sourced.items()
    }
    for name, src in sourced.items():
        if src.ok:
            last.values[name] = src.value
    last.states = states
    clusters = members.value or []
    row = judge(
        stack.settings,
        readings,
        clusters,
        states,
        full=False,
        latency_ms=(time.perf_counter() - t0) * 1000,
        memo=last.memo,
    )
    return row, list(readings["alerts"].value or [])


async def status_row(stack: Stack) -> tuple[FleetRow, list[Alert]]:
    """`opskit status`'s whole collection of one context, as a fleet row (with its
    summary)."""
    t0 = time.perf_counter()
    st = await collect(stack)
    readings = readings_from_status(st)
    states = {
        backend: _state(src, None)
        for backend, src in (
            ("prometheus", st.targets),
            ("alertmanager", st.alerts),
            ("elasticsearch", st.cluster),
            ("grafana", st.grafana),
        )
    }
    row = judge(
        stack.settings,
        readings,
        st.clusters.value or [],
        states,
        full=True,
        latency_ms=(time.perf_counter() - t0) * 1000,
    )
    return row, list(st.alerts.value or [])


def config_row(name: str, error: str, settings: Settings | None = None) -> FleetRow:
    """A context that could not be read at all (its configuration did not load):
    unreachable, with the reason (its colour and read-only flag when it has settings)."""
    colour = context_colour(settings) if settings else "cyan"
    read_only = settings.read_only if settings else False
    row = FleetRow(
        name, colour, read_only, {}, None, None, {}, None, None, [],
        [Finding("critical", name, error, source="config")], "critical", EXIT_UNREACHABLE,
    )  # fmt: skip
    row.config_error = error
    return row


# ------------------------------------------------------------------ the fleet

OnRow = Callable[[FleetRow], None]


class Fleet:
    """A Stack per context, kept open across refreshes; `refresh()` reads every context
    at once. Use as `async with Fleet(settings_by_name) as fleet`."""

    def __init__(
        self,
        contexts: Mapping[str, Settings | str],
        *,
        full: bool = False,
        log: Any = None,
    ) -> None:
        """`contexts`: name -> its settings, or the one-line reason they could not be
        loaded. `full`: `opskit status`'s whole collection per context."""
        self.contexts = dict(contexts)
        self.full = full
        self.stacks: dict[str, Stack] = {
            name: Stack(s, log) for name, s in self.contexts.items() if isinstance(s, Settings)
        }
        self.rows: dict[str, FleetRow] = {}
        self.alerts: dict[str, list[Alert]] = {}
        self._last: dict[str, RowData] = {}

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await asyncio.gather(*(s.aclose() for s in self.stacks.values()))

    async def _one(self, name: str, on_row: OnRow | None) -> FleetRow:
        value = self.contexts[name]
        alerts: list[Alert] = []
        if isinstance(value, str):
            row = config_row(name, value)
        else:
            stack = self.stacks[name]
            try:
                if self.full:
                    row, alerts = await status_row(stack)
                else:
                    row, alerts = await read_row(stack, self._last.setdefault(name, RowData()))
            except Exception as exc:  # a source's reads never raise: one context never
                # takes the fleet down (as opskit.live's polls)
                error = f"error: {type(exc).__name__}: {exc}"[:200]
                row = config_row(name, error, stack.settings)
        self.rows[name] = row
        self.alerts[name] = alerts
        if on_row is not None:
            on_row(row)
        return row

    async def refresh(self, on_row: OnRow | None = None) -> list[FleetRow]:
        """Every context at once; `on_row` is called as each context's row lands (a slow
        context never holds up the others' rows). The rows in the contexts' order."""
        return list(await asyncio.gather(*(self._one(n, on_row) for n in self.contexts)))

    def merged_alerts(self) -> list[FleetAlert]:
        return merged_alerts({n: self.alerts.get(n, []) for n in self.contexts})

    @property
    def exit_code(self) -> int:
        return fleet_exit_code(self.rows[n] for n in self.contexts if n in self.rows)
