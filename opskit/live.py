"""Live state for the TUI: one polling loop per source, each standing alone.

A loop schedules its next poll when the last one finishes (polls never overlap; a slow
server only slows its own cadence), backs off with a cap while its backend fails, and
keeps the last good data. Screens read `LiveState`; they never call HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from opskit.errorclass import headline
from opskit.errors import BackendError
from opskit.models import Membership
from opskit.stack import Stack, grafana_summary, series_name

log = logging.getLogger(__name__)

SourceName = Literal[
    "targets", "alerts", "silences", "queues", "cluster", "indices", "services", "grafana"
]
SOURCES: tuple[SourceName, ...] = (
    "targets", "alerts", "silences", "queues", "cluster", "indices", "services", "grafana",
)  # fmt: skip
# sources a screen polls while it is shown (not the poller, not recorded): the Traces
# screen's Jaeger overview, every TRACES_EVERY seconds at most
ON_DEMAND: tuple[str, ...] = ("traces",)
TRACES_EVERY = 15.0
BACKEND_OF: dict[str, str] = {
    "traces": "jaeger",
    "targets": "prometheus",
    "queues": "prometheus",
    "alerts": "alertmanager",
    "silences": "alertmanager",
    "cluster": "elasticsearch",
    "indices": "elasticsearch",
    "services": "services",
    "grafana": "grafana",
}
HISTORY_WINDOW = 3600.0  # seconds of queue history kept: the last hour
HISTORY = 720  # at most this many samples per series (an hour at the default 5 s)
HISTORY_STEP = HISTORY_WINDOW / HISTORY  # the backfill's query_range step
BACKFILL_TRIES = 3  # a series whose backfill failed this often is left to live samples
BACKFILL_TIMEOUT = 5.0  # seconds the first queues poll may wait for its history
# the source whose poll also reads a clustered backend's members (LiveState.clusters)
MEMBERSHIP_OF = {"alerts": "alertmanager", "targets": "prometheus"}
MAX_BACKOFF = 60.0
# the email-service signals the Queues screen plots beside the queue depth
PLOT_SIGNALS = ("latency_p50", "latency_p95", "latency_p99", "error_rate")
Point = tuple[float, float]  # (unix time, value)


@dataclass
class SourceState:
    """ok, stale since T (last good data kept), or unreachable (never had data)."""

    name: str
    value: Any = None
    error: str | None = None
    error_title: str = ""
    last_ok: datetime | None = None
    failing_since: datetime | None = None
    latency_ms: float = 0.0
    failures: int = 0

    @property
    def status(self) -> Literal["loading", "ok", "stale", "unreachable"]:
        if self.error is None:
            return "ok" if self.last_ok else "loading"
        return "stale" if self.value is not None else "unreachable"

    def banner(self) -> str:
        """The panel's error line: 'unreachable since HH:MM:SS: <reason>'."""
        if self.error is None or self.failing_since is None:
            return ""
        since = self.failing_since.astimezone().strftime("%H:%M:%S")
        return f"{BACKEND_OF[self.name]} unreachable since {since}: {self.error}"

    def headline(self) -> str:
        """The banner with the error's class instead of its raw text, for one-line
        displays: 'prometheus unreachable since HH:MM:SS: connection refused'."""
        if self.error is None or self.failing_since is None:
            return ""
        since = self.failing_since.astimezone().strftime("%H:%M:%S")
        return f"{BACKEND_OF[self.name]} unreachable since {since}: {headline(self.error)}"


@dataclass
class LiveState:
    sources: dict[str, SourceState] = field(
        default_factory=lambda: {name: SourceState(name) for name in (*SOURCES, *ON_DEMAND)}
    )
    # per "queue series": the values (what sparklines draw) and, index for index, their
    # unix times; the last hour from Prometheus first, then this session's polls
    queue_history: dict[str, deque[float]] = field(default_factory=dict)
    queue_times: dict[str, deque[float]] = field(default_factory=dict)
    # the email-service signals over the last hour (PLOT_SIGNALS), name -> points
    signal_history: dict[str, list[Point]] = field(default_factory=dict)
    # the clustered backends' members ("alertmanager", "prometheus" -> Membership), read
    # after each alerts / targets poll (not a source: recordings do not hold them)
    clusters: dict[str, Membership] = field(default_factory=dict)
    paused: bool = False

    def __getitem__(self, name: str) -> SourceState:
        return self.sources[name]

    def record_queues(self, depths: list[Any], at: float | None = None) -> None:
        now = time.time() if at is None else at
        for q in depths:
            self.append_queue(f"{q.queue} {q.series}", now, q.value)

    def append_queue(self, key: str, at: float, value: float) -> None:
        values = self.queue_history.setdefault(key, deque(maxlen=HISTORY))
        times = self.queue_times.setdefault(key, deque(maxlen=HISTORY))
        if len(times) != len(values):  # values set without times (older callers)
            times.clear()
            times.extend(math.nan for _ in values)
        if times and not math.isnan(times[-1]):
            at = max(at, times[-1])  # a clock step back never reorders the series
        values.append(value)
        times.append(at)
        while times and not math.isnan(times[0]) and times[0] < at - HISTORY_WINDOW:
            times.popleft()
            values.popleft()

    def queue_points(self, key: str) -> list[Point]:
        """The series' (time, value) points, oldest first."""
        values = self.queue_history.get(key, ())
        times = self.queue_times.get(key, ())
        if len(times) != len(values):
            return []
        return list(zip(times, values, strict=True))

    def backfill_queue(self, key: str, points: Iterable[Point]) -> None:
        """Put Prometheus's history of a series before the samples polled since."""
        merged = merge_history(points, self.queue_points(key))
        self.queue_history[key] = deque((v for _, v in merged), maxlen=HISTORY)
        self.queue_times[key] = deque((t for t, _ in merged), maxlen=HISTORY)


def merge_history(
    backfill: Iterable[Point], live: Sequence[Point], window: float = HISTORY_WINDOW,
    limit: int = HISTORY,
) -> list[Point]:  # fmt: skip
    """Backfilled points older than the first live sample, then the live samples: sorted
    by time, one point per time, within `window` of the newest, at most `limit`."""
    first_live = live[0][0] if live else math.inf
    older = sorted({t: v for t, v in backfill if t < first_live}.items())
    merged = [*older, *live]
    if not merged:
        return []
    newest = merged[-1][0]
    return [p for p in merged if p[0] >= newest - window][-limit:]


async def queue_history(
    stack: Stack, depths: Sequence[Any], end: datetime | None = None
) -> dict[str, list[Point]]:
    """The last hour of each queue series from Prometheus: one query_range per queue query
    (a query's series matched to the live ones by their labels), about HISTORY points."""
    end = end or datetime.now(UTC)
    start = end - timedelta(seconds=HISTORY_WINDOW)
    by_query: dict[tuple[str, str], set[str]] = {}
    for q in depths:
        if q.query and not math.isnan(q.value):
            by_query.setdefault((q.queue, q.query), set()).add(q.series)
    found: dict[str, list[Point]] = {}
    ranges = await asyncio.gather(
        *(stack.prometheus.query_range(expr, start, end, HISTORY_STEP) for _, expr in by_query)
    )
    for ((queue, _), wanted), series in zip(by_query.items(), ranges, strict=True):
        for labels, points in series:
            name = series_name(labels)
            if name in wanted:
                found[f"{queue} {name}"] = [(t, v) for t, v in points if not math.isnan(v)]
    return found


async def signal_history(
    stack: Stack, names: Sequence[str] = PLOT_SIGNALS, end: datetime | None = None,
    points: int = 120,
) -> dict[str, list[Point]]:  # fmt: skip
    """The last hour of each signal (one series each; a signal no exporter gives is left
    out), through the Detector, for the Queues screen's plots."""
    end = end or datetime.now(UTC)
    start = end - timedelta(seconds=HISTORY_WINDOW)

    async def one(name: str) -> list[Point] | None:
        found = await stack.resolve(None, name)
        if found.query is None:
            return None
        series = await stack.prometheus.query_range(
            found.query, start, end, HISTORY_WINDOW / points
        )
        return [(t, v) for t, v in series[0][1] if not math.isnan(v)] if series else []

    got = await asyncio.gather(*(one(n) for n in names))
    return {n: pts for n, pts in zip(names, got, strict=True) if pts is not None}


async def poll_into(src: SourceState, fetch: Callable[[], Awaitable[Any]]) -> bool:
    """One poll of `fetch` into `src`: the value, or the error with the last good value
    kept; its latency either way. True when it succeeded."""
    t0 = time.perf_counter()
    try:
        value = await fetch()
    except BackendError as exc:
        Poller._failed(src, exc.title, exc.reason)
        ok = False
    except Exception as exc:  # never let one source take the app down
        Poller._failed(src, "error", f"{type(exc).__name__}: {exc}"[:200])
        ok = False
    else:
        src.value = value
        src.error = None
        src.failing_since = None
        src.failures = 0
        src.last_ok = datetime.now(UTC)
        ok = True
    src.latency_ms = (time.perf_counter() - t0) * 1000
    return ok


def changed(before: str, src: SourceState) -> bool:
    """A state change worth a notification: not the first successful load."""
    return src.status != before and not (before == "loading" and src.status == "ok")


async def poll_source(state: LiveState, name: str, fetch: Callable[[], Awaitable[Any]]) -> bool:
    """One poll of an on-demand source (ON_DEMAND), with the poller's semantics: the
    last good value kept while it fails. True when its status changed."""
    src = state[name]
    before = src.status
    await poll_into(src, fetch)
    return changed(before, src)


Fetcher = Callable[[], Awaitable[Any]]
OnChange = Callable[[str, bool], None]  # (source, whether its status changed)


def fetchers(stack: Stack) -> dict[str, Fetcher]:
    return {
        "targets": stack.prometheus.targets,
        "alerts": lambda: stack.alertmanager.alerts(silenced=True, inhibited=True),
        "silences": stack.alertmanager.silences,
        "queues": stack.queues,
        "cluster": stack.elasticsearch.cluster_health,
        "indices": stack.elasticsearch.indices,
        "services": stack.services,
        "grafana": lambda: grafana_summary(stack),
    }


class Poller:
    def __init__(self, stack: Stack, state: LiveState, interval: float,
                 on_change: OnChange) -> None:  # fmt: skip
        self.stack = stack
        self.state = state
        self.interval = interval
        self.on_change = on_change
        self._wake: dict[str, asyncio.Event] = {name: asyncio.Event() for name in SOURCES}
        self._fetchers = fetchers(stack)
        self._forced: set[str] = set()
        self._history: Callable[[Sequence[Any]], Awaitable[dict[str, list[Point]]]] = (
            lambda depths: queue_history(stack, depths)
        )
        self.backfill_enabled = True  # the last hour from Prometheus on the first poll
        self._backfilled: set[str] = set()
        self._backfill_failures: dict[str, int] = {}

    async def run(self) -> None:
        await asyncio.gather(*(self._loop(name) for name in SOURCES))

    def refresh_now(self, names: tuple[str, ...] = SOURCES) -> None:
        for name in names:
            self._forced.add(name)
            self._wake[name].set()

    async def poll_once(self, name: str) -> None:
        src = self.state[name]
        before = src.status
        if await poll_into(src, self._fetchers[name]) and name == "queues":
            self.state.record_queues(src.value)
            await self.backfill(src.value)
        if name in MEMBERSHIP_OF:
            await self.read_membership(MEMBERSHIP_OF[name])
        self.on_change(name, changed(before, src))

    async def read_membership(self, backend: str) -> None:
        """A clustered backend's members and disagreements, as its last read found them,
        into `state.clusters` (nothing for a one-server backend); never raising."""
        if len(getattr(self.stack.settings, backend).members) < 2:
            return
        try:
            membership = await getattr(self.stack, backend).read_membership()
        except Exception as exc:  # the source's own poll says what failed
            log.warning("%s membership: %s", backend, exc)
            return
        self.state.clusters[backend] = membership

    async def backfill(self, depths: Sequence[Any]) -> None:
        """On the first successful queues poll (and for series that appear later), put the
        last hour from Prometheus before the live samples. Bounded in time and never
        raising: history is a nicety, the live samples come regardless."""
        todo = [
            q
            for q in depths
            if (key := f"{q.queue} {q.series}") not in self._backfilled
            and self._backfill_failures.get(key, 0) < BACKFILL_TRIES
            and q.query
            and not math.isnan(q.value)
        ]
        if not todo or not self.backfill_enabled:
            return
        keys = [f"{q.queue} {q.series}" for q in todo]
        try:
            found = await asyncio.wait_for(self._history(todo), BACKFILL_TIMEOUT)
        except Exception as exc:
            log.warning("queue history backfill failed: %s", exc)
            for key in keys:
                self._backfill_failures[key] = self._backfill_failures.get(key, 0) + 1
            return
        for key in keys:
            self._backfilled.add(key)
            if found.get(key):
                self.state.backfill_queue(key, found[key])

    @staticmethod
    def _failed(src: SourceState, title: str, reason: str) -> None:
        src.error_title = title
        src.error = reason
        src.failures += 1
        if src.failing_since is None:
            src.failing_since = datetime.now(UTC)

    def delay(self, name: str) -> float:
        failures = self.state[name].failures
        if not failures:
            return self.interval
        return float(min(self.interval * 2 ** (failures - 1), MAX_BACKOFF))

    async def _loop(self, name: str) -> None:
        while True:
            if not self.state.paused or name in self._forced:
                self._forced.discard(name)
                await self.poll_once(name)
            wake = self._wake[name]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.delay(name))
            wake.clear()
