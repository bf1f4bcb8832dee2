"""Live state for the TUI: one polling loop per source, each standing alone.

A loop schedules its next poll when the last one finishes (polls never overlap; a slow
server only slows its own cadence), backs off with a cap while its backend fails, and
keeps the last good data. Screens read `LiveState`; they never call HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from opskit.errors import BackendError
from opskit.stack import Stack, grafana_summary

SourceName = Literal[
    "targets", "alerts", "silences", "queues", "cluster", "indices", "services", "grafana"
]
SOURCES: tuple[SourceName, ...] = (
    "targets", "alerts", "silences", "queues", "cluster", "indices", "services", "grafana",
)  # fmt: skip
BACKEND_OF: dict[str, str] = {
    "targets": "prometheus",
    "queues": "prometheus",
    "alerts": "alertmanager",
    "silences": "alertmanager",
    "cluster": "elasticsearch",
    "indices": "elasticsearch",
    "services": "services",
    "grafana": "grafana",
}
HISTORY = 60  # queue samples kept for sparklines
MAX_BACKOFF = 60.0


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


@dataclass
class LiveState:
    sources: dict[str, SourceState] = field(
        default_factory=lambda: {name: SourceState(name) for name in SOURCES}
    )
    queue_history: dict[str, deque[float]] = field(default_factory=dict)
    paused: bool = False

    def __getitem__(self, name: str) -> SourceState:
        return self.sources[name]

    def record_queues(self, depths: list[Any]) -> None:
        for q in depths:
            key = f"{q.queue} {q.series}"
            self.queue_history.setdefault(key, deque(maxlen=HISTORY)).append(q.value)


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

    async def run(self) -> None:
        await asyncio.gather(*(self._loop(name) for name in SOURCES))

    def refresh_now(self, names: tuple[str, ...] = SOURCES) -> None:
        for name in names:
            self._forced.add(name)
            self._wake[name].set()

    async def poll_once(self, name: str) -> None:
        src = self.state[name]
        before = src.status
        t0 = time.perf_counter()
        try:
            value = await self._fetchers[name]()
        except BackendError as exc:
            self._failed(src, exc.title, exc.reason)
        except Exception as exc:  # never let one source take the app down
            self._failed(src, "error", f"{type(exc).__name__}: {exc}"[:200])
        else:
            src.value = value
            src.error = None
            src.failing_since = None
            src.failures = 0
            src.last_ok = datetime.now(UTC)
            if name == "queues":
                self.state.record_queues(value)
        src.latency_ms = (time.perf_counter() - t0) * 1000
        # a state change worth a notification: not the first successful load
        changed = src.status != before and not (before == "loading" and src.status == "ok")
        self.on_change(name, changed)

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
