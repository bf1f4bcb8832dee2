"""The stack as opskit sees it: one object holding a client per backend, built lazily,
and the concurrent collection every front end (status, TUI) shares."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from opskit.config import Queue, Settings
from opskit.errors import BackendError
from opskit.findings import Severity
from opskit.models import (
    Alert,
    ClusterHealth,
    Index,
    Membership,
    QueueDepth,
    ServiceHealth,
    Target,
)

if TYPE_CHECKING:
    import httpx

    from opskit.clients.alertmanager import AlertmanagerClient
    from opskit.clients.elasticsearch import ElasticsearchClient
    from opskit.clients.grafana import GrafanaClient
    from opskit.clients.jaeger import CollectorMetricsClient, JaegerClient
    from opskit.clients.prometheus import PrometheusClient
    from opskit.clients.pushgateway import PushgatewayClient
    from opskit.exporters import Detector, Resolved
    from opskit.http import RequestLog
    from opskit.models_tracing import CollectorReading, TracesOverview

T = TypeVar("T")
# [tracing] rows of `services()`; they replace [[services]] entries of the same name
TRACING_ROWS = ("jaeger", "otel-collector", "otlp-http", "otlp-grpc", "otel-collector metrics")


class Stack:
    """Clients for one context's backends; use as `async with Stack(settings) as stack`."""

    def __init__(self, settings: Settings, log: RequestLog | None = None) -> None:
        self.settings = settings
        self.log = log
        self._opened: list[Any] = []

    async def __aenter__(self) -> Stack:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._opened:
            await client.aclose()
        self._opened.clear()

    def _keep(self, client: T) -> T:
        self._opened.append(client)
        return client

    @cached_property
    def prometheus(self) -> PrometheusClient:
        """One Prometheus (or VictoriaMetrics); with several `urls`, the HA replicas as
        one (`PrometheusReplicas`: the same methods, merged answers)."""
        from opskit.clients.prometheus import PrometheusClient
        from opskit.http import build_http

        cfg = self.settings.prometheus
        if len(cfg.members) > 1:
            from opskit.clients.prom_replicas import PrometheusReplicas

            clients = [
                PrometheusClient(build_http("prometheus", cfg.model_copy(update={"url": u}),
                                            self.log), cfg.retries, cfg.flavor)
                for u in cfg.members
            ]  # fmt: skip
            return self._keep(PrometheusReplicas(clients, cfg))
        return self._keep(
            PrometheusClient(build_http("prometheus", cfg, self.log), cfg.retries, cfg.flavor)
        )

    @cached_property
    def alertmanager(self) -> AlertmanagerClient:
        """One Alertmanager; with several `urls`, the gossip cluster as one
        (`AlertmanagerCluster`: the same methods, de-duplicated answers)."""
        from opskit.clients.alertmanager import AlertmanagerClient
        from opskit.http import build_http

        cfg = self.settings.alertmanager
        if len(cfg.members) > 1:
            from opskit.clients.am_cluster import AlertmanagerCluster

            clients = [
                AlertmanagerClient(build_http("alertmanager", cfg.model_copy(update={"url": u}),
                                              self.log), cfg.retries)
                for u in cfg.members
            ]  # fmt: skip
            return self._keep(AlertmanagerCluster(clients, cfg))
        return self._keep(
            AlertmanagerClient(build_http("alertmanager", cfg, self.log), cfg.retries)
        )

    async def memberships(self) -> list[Membership]:
        """The clustered backends' members, read now (none for one-server backends)."""
        clustered = [
            getattr(self, name)
            for name in ("alertmanager", "prometheus")
            if len(self.settings.backend(name).members) > 1  # type: ignore[attr-defined]
        ]
        return list(await asyncio.gather(*(c.read_membership() for c in clustered)))

    @cached_property
    def grafana(self) -> GrafanaClient:
        from opskit.clients.grafana import GrafanaClient
        from opskit.http import build_http

        cfg = self.settings.grafana
        headers = {"X-Grafana-Org-Id": str(cfg.org_id)} if cfg.org_id else None
        return self._keep(GrafanaClient(build_http("grafana", cfg, self.log, headers), cfg.retries))

    @cached_property
    def pushgateway(self) -> PushgatewayClient:
        from opskit.clients.pushgateway import PushgatewayClient
        from opskit.http import build_http

        cfg = self.settings.pushgateway
        return self._keep(PushgatewayClient(build_http("pushgateway", cfg, self.log), cfg.retries))

    @cached_property
    def elasticsearch(self) -> ElasticsearchClient:
        from opskit.clients.elasticsearch import ElasticsearchClient
        from opskit.http import build_elasticsearch

        cfg = self.settings.elasticsearch
        if self.log is not None:
            _log_elastic_transport()
        return self._keep(ElasticsearchClient(build_elasticsearch(cfg, self.log), cfg.url))

    @cached_property
    def health_http(self) -> httpx.AsyncClient:
        from opskit.http import build_health_http

        return self._keep(build_health_http(self.log))

    async def services(self) -> list[ServiceHealth]:
        """Every configured service's health endpoint, then (with `[tracing] enabled`)
        Jaeger's query API, the collector's health, OTLP receivers and metrics."""
        from opskit.clients.health import check

        tracing = self.settings.tracing.enabled
        services = [
            s for s in self.settings.enabled_services if not (tracing and s.name in TRACING_ROWS)
        ]
        plain = asyncio.gather(*(check(self.health_http, s) for s in services))
        rows, traced = await asyncio.gather(plain, self.tracing_health())
        return [*rows, *traced]

    @cached_property
    def jaeger(self) -> JaegerClient:
        from opskit.clients.jaeger import JaegerClient
        from opskit.http import build_http

        cfg = self.settings.tracing.jaeger()
        return self._keep(JaegerClient(build_http("jaeger", cfg, self.log), cfg.retries))

    @cached_property
    def collector_metrics(self) -> CollectorMetricsClient:
        from opskit.clients.jaeger import CollectorMetricsClient
        from opskit.http import build_health_http

        return self._keep(CollectorMetricsClient(build_health_http(self.log), 1))

    async def collector(self) -> CollectorReading:
        """The collector's own metrics, over `metrics_window` when Prometheus scrapes
        them, judged against `[tracing]`'s thresholds."""
        from opskit.tracing import judge_collector, read_collector, window_increases

        cfg = self.settings.tracing
        scrape = await self.collector_metrics.scrape(cfg.otel_metrics_url)
        reading = read_collector(scrape, cfg.otel_metrics_url)
        await window_increases(
            self.prometheus, reading, cfg.metrics_window, cfg.prometheus_selector
        )
        judge_collector(reading, cfg)
        return reading

    async def tracing_health(self) -> list[ServiceHealth]:
        """The tracing rows (none when `[tracing] enabled = false`); never raises."""
        from opskit.clients.jaeger import collector_health, otlp_http_health, tcp_health

        cfg = self.settings.tracing
        if not cfg.enabled:
            return []
        seconds = min(cfg.timeout.total_seconds(), 5.0)
        checks: list[Awaitable[ServiceHealth]] = [
            self.jaeger.health(),
            collector_health(self.health_http, cfg.otel_health_url, seconds),
            otlp_http_health(self.health_http, cfg.otlp_url, seconds),
            self._collector_row(),
        ]
        if cfg.otlp_grpc_url:
            checks.append(tcp_health("otlp-grpc", cfg.otlp_grpc_url, seconds))
        return list(await asyncio.gather(*checks))

    async def _collector_row(self) -> ServiceHealth:
        from opskit.tracing import collector_row

        url = self.settings.tracing.otel_metrics_url
        t0 = time.perf_counter()
        try:
            reading = await self.collector()
        except BackendError as exc:
            return ServiceHealth("otel-collector metrics", url, False, None, None, exc.reason)
        return collector_row(reading, round((time.perf_counter() - t0) * 1000, 1))

    async def traces(
        self, service: str | None = None, window: timedelta | None = None
    ) -> TracesOverview:
        """The Traces view: per service figures, slowest and failing traces, the
        dependency graph, over `[tracing] window`."""
        from opskit.tracing import overview

        return await overview(self.jaeger, self.settings.tracing, service, window=window)

    async def queues(self) -> list[QueueDepth]:
        queues = self.settings.enabled_queues
        results = await asyncio.gather(*(self._queue(q) for q in queues))
        return [depth for group in results for depth in group]

    @cached_property
    def detector(self) -> Detector:
        from opskit.exporters import Detector

        return Detector()

    async def resolve(
        self, query: str | None, signal: str | None, lookback: str | None = None
    ) -> Resolved:
        """A written query as is; a signal through the exporters Prometheus scrapes (now,
        or at any time within `lookback`)."""
        from opskit.exporters import Resolved

        if signal is None:
            return Resolved("", query, None, "")
        return await self.detector.resolve(self.prometheus, signal, lookback)

    async def _queue(self, queue: Queue) -> list[QueueDepth]:
        def empty(note: str, query: str = "", exporter: str = "") -> list[QueueDepth]:
            return [
                QueueDepth(
                    queue.name,
                    "(no data)",
                    math.nan,
                    queue.warning,
                    queue.critical,
                    "warning",
                    query,
                    exporter,
                    note,
                )
            ]

        try:
            found = await self.resolve(queue.query, queue.signal)
            if found.query is None:
                return empty(f"no exporter found: looked for {found.looked_for}")
            samples = await self.prometheus.query(found.query)
        except BackendError as exc:  # same class (same exit code), naming the queue
            raise type(exc)(exc.backend, f"queue {queue.name!r}: {exc.reason}") from exc
        exporter = found.exporter or ""
        if not samples:
            return empty(f"the query returned no series: {found.query}", found.query, exporter)
        return [
            QueueDepth(
                queue.name,
                series_name(s.labels),
                s.value,
                queue.warning,
                queue.critical,
                queue_state(s.value, queue),
                found.query,
                exporter,
            )
            for s in samples
        ]


def _log_elastic_transport() -> None:
    import logging
    import sys

    logger = logging.getLogger("elastic_transport.transport")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[elasticsearch] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def series_name(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k not in ("job", "instance", "__name__")}
    return ",".join(f'{k}="{v}"' for k, v in sorted(shown.items())) or "total"


def queue_state(value: float, queue: Queue) -> Severity:
    if math.isnan(value):
        return "warning"
    if queue.critical is not None and value > queue.critical:
        return "critical"
    if value > queue.warning:
        return "warning"
    return "ok"


# ------------------------------------------------------------------ concurrent collection


@dataclass
class Sourced(Generic[T]):
    """A source's latest answer or its error, with when and how long it took."""

    value: T | None = None
    error: BackendError | None = None
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


async def fetch(coro: Awaitable[T]) -> Sourced[T]:
    t0 = time.perf_counter()
    try:
        value = await coro
    except BackendError as exc:
        return Sourced(error=exc, latency_ms=(time.perf_counter() - t0) * 1000)
    return Sourced(value=value, latency_ms=(time.perf_counter() - t0) * 1000)


@dataclass
class StackStatus:
    targets: Sourced[list[Target]]
    alerts: Sourced[list[Alert]]
    queues: Sourced[list[QueueDepth]]
    cluster: Sourced[ClusterHealth]
    indices: Sourced[list[Index]]
    grafana: Sourced[dict[str, Any]]
    services: list[ServiceHealth]
    # the clustered backends' members (Alertmanager peers, Prometheus replicas)
    clusters: Sourced[list[Membership]] = field(default_factory=lambda: Sourced(value=[]))


async def grafana_summary(stack: Stack) -> dict[str, Any]:
    health, org = await asyncio.gather(stack.grafana.health(), stack.grafana.org())
    return {"version": health.version, "database": health.database, "org": org}


async def collect(stack: Stack) -> StackStatus:
    """Everything `opskit status` and the overview show, fetched concurrently; a failing
    source never blocks the others."""
    services = asyncio.ensure_future(stack.services())
    targets, alerts, queues, cluster, indices, grafana = await asyncio.gather(
        fetch(stack.prometheus.targets()),
        fetch(stack.alertmanager.alerts()),
        fetch(stack.queues()),
        fetch(stack.elasticsearch.cluster_health()),
        fetch(stack.elasticsearch.indices()),
        fetch(grafana_summary(stack)),
    )
    # after the reads: a cluster's membership says what those reads found of each member
    clusters = await fetch(stack.memberships())
    return StackStatus(targets, alerts, queues, cluster, indices, grafana, await services, clusters)
