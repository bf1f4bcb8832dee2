"""What the common exporters call the things the monitoring README asks about.

A *signal* is one thing an operator watches (Celery queue depth, Postfix's mail queue,
request latency). Exporters of the same service name it differently (two Celery
exporters label queues `queue_name` and `queue`; the Flask exporter prefixes `flask_`), so
each signal lists its variants, most common first, and opskit uses the first whose
metric is present in Prometheus. Sources are in docs/exporters.md; each variant names the
exporter and version it was read from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from opskit.models import Sample


class Querier(Protocol):
    """What detection needs of Prometheus (the client satisfies it; the core's config
    imports this module, so it must not import the clients)."""

    async def query(self, expr: str) -> Sequence[Sample]: ...


APP = 'job="email-service"'  # the README's Flask service, as its scrape job names it
# prometheus-flask-exporter always exports flask_exporter_info; its request series only
# exist once a request was served, and only the histogram is in older history
FLASK_PROBE = (
    '{__name__=~"flask_exporter_info|flask_http_request_duration_seconds_bucket",' + APP + "}"
)


@dataclass(frozen=True, slots=True)
class Variant:
    exporter: str  # who exposes it, with the version the names were read from
    probe: str  # a selector that is non-empty only when this exporter is scraped
    query: str  # the PromQL opskit runs for the signal


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    what: str  # one line for "no data" messages
    variants: tuple[Variant, ...]

    def looked_for(self) -> str:
        """`probe (exporter)` for every variant: what a "no data" message names."""
        return "; ".join(f"{v.probe} ({v.exporter})" for v in self.variants)


def _quantile(q: float) -> tuple[Variant, ...]:
    rate = "sum by (le) (rate({metric}{{" + APP + "}}[5m]))"
    return (
        Variant(
            "prometheus-flask-exporter 0.23 (Flask, GunicornPrometheusMetrics)",
            FLASK_PROBE,
            f"histogram_quantile({q:g}, "
            + rate.format(metric="flask_http_request_duration_seconds_bucket")
            + ")",
        ),
        Variant(
            "prometheus_client histogram http_request_duration_seconds (starlette-exporter, "
            "custom instrumentation)",
            f"http_request_duration_seconds_bucket{{{APP}}}",
            f"histogram_quantile({q:g}, "
            + rate.format(metric="http_request_duration_seconds_bucket")
            + ")",
        ),
        Variant(
            "prometheus_client summary http_request_duration_seconds with quantiles",
            f'http_request_duration_seconds{{{APP},quantile="{q:g}"}}',
            f'max(http_request_duration_seconds{{{APP},quantile="{q:g}"}})',
        ),
    )


def _error_rate(metric: str, exporter: str, probe: str = "") -> Variant:
    sel = f"{metric}{{{APP}"
    return Variant(
        exporter,
        probe or f"{metric}{{{APP}}}",
        f'sum(rate({sel},status=~"5.."}}[5m])) / sum(rate({sel}}}[5m]))',
    )


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal(
            "celery_queue",
            "Celery queue length per queue",
            (
                Variant(
                    "danihodovic/celery-exporter 0.11 (PyPI prometheus-exporter-celery)",
                    'celery_queue_length{queue_name!=""}',
                    "sum by (queue_name) (celery_queue_length)",
                ),
                Variant(
                    "celery_redis_prometheus / kalibrr celery-prometheus",
                    'celery_queue_length{queue!=""}',
                    "sum by (queue) (celery_queue_length)",
                ),
                Variant(
                    "OvalMoney celery-exporter 1.x (PyPI celery-exporter): tasks not yet "
                    "started, per queue",
                    "celery_tasks_total",
                    'sum by (queue) (celery_tasks_total{state=~"PENDING|RECEIVED"})',
                ),
            ),
        ),
        Signal(
            "mail_queue",
            "Postfix mail queue (all queues)",
            (
                Variant(
                    "kumina/postfix_exporter 0.3 (Debian prometheus-postfix-exporter) and the "
                    "hsn723/postfix_exporter fork",
                    "postfix_showq_message_size_bytes_count",
                    "sum(postfix_showq_message_size_bytes_count)",
                ),
            ),
        ),
        Signal("latency_p50", "email-service request latency P50", _quantile(0.5)),
        Signal("latency_p95", "email-service request latency P95", _quantile(0.95)),
        Signal("latency_p99", "email-service request latency P99", _quantile(0.99)),
        Signal(
            "error_rate",
            "email-service share of 5xx responses",
            (
                _error_rate(
                    "flask_http_request_total", "prometheus-flask-exporter 0.23", FLASK_PROBE
                ),
                _error_rate("http_requests_total", "prometheus_client http_requests_total"),
            ),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Resolved:
    """The query a signal resolved to, or why it did not."""

    signal: str
    query: str | None
    exporter: str | None
    looked_for: str


class Detector:
    """Resolves signals against one Prometheus, remembering the answer for `ttl` seconds
    (the TUI polls every few seconds; which exporter is scraped changes rarely)."""

    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Resolved]] = {}

    async def resolve(self, prom: Querier, name: str, lookback: str | None = None) -> Resolved:
        """`lookback` (a PromQL duration such as "30d"): an exporter scraped at any time in
        that window counts, for reports over history; without it, only one scraped now."""
        signal = SIGNALS[name]
        now = time.monotonic()
        key = f"{name}@{lookback or ''}"
        cached = self._cache.get(key)
        if cached and now - cached[0] < self.ttl and cached[1].query is not None:
            return cached[1]

        def probe(v: Variant) -> str:
            return (
                f"count(last_over_time({v.probe}[{lookback}]))" if lookback else f"count({v.probe})"
            )

        found = await asyncio.gather(*(prom.query(probe(v)) for v in signal.variants))
        for variant, samples in zip(signal.variants, found, strict=True):
            if any(s.value > 0 for s in samples):
                result = Resolved(name, variant.query, variant.exporter, signal.looked_for())
                break
        else:
            result = Resolved(name, None, None, signal.looked_for())
        self._cache[key] = (now, result)
        return result
