"""Built-in defaults: the monitoring README's stack on localhost.

Plain data only (no models), so the schema and the loader can both use it.
"""

from __future__ import annotations

from typing import Any

README_LOG_SOURCES = ["email-service", "celery-worker", "postgresql", "postfix", "dovecot"]

# `[archive] keep`: how long retention's archive snapshots are kept (the monitoring
# README's "archive old logs to cold storage": a year)
DEFAULT_ARCHIVE_KEEP = "365d"

DEFAULT_MIN_VERSIONS = {
    "prometheus": "2.40",
    "alertmanager": "0.25",
    "elasticsearch": "8.0",
    "grafana": "10.0",
}


# With `[tracing] enabled` (the default), the jaeger and otel-collector rows are checked
# through `[tracing]` (the query API, the health extension at its URL), not these URLs.
DEFAULT_SERVICES: list[dict[str, Any]] = [
    {"name": "email-service", "url": "http://localhost:5000/health"},
    {"name": "kibana", "url": "http://localhost:5601/api/status"},
    {"name": "logstash", "url": "http://localhost:9600/"},
    {"name": "jaeger", "url": "http://localhost:16686/"},
    {"name": "otel-collector", "url": "http://localhost:13133/"},
    {"name": "loki", "url": "http://localhost:3100/ready"},
]

# The README's thresholds; queries come from the exporters actually scraped
# (opskit/exporters.py, docs/exporters.md).
DEFAULT_QUEUES: list[dict[str, Any]] = [
    {"name": "celery", "signal": "celery_queue", "warning": 1000},
    {"name": "mail", "signal": "mail_queue", "warning": 100},
]


DEFAULT_BASELINES: dict[str, dict[str, Any]] = {
    # the README's key metrics (PERFORMANCE_BASELINES); absent metrics are reported as
    # "no data" with the metric names and exporters looked for
    "latency_p50": {"signal": "latency_p50", "expected": 0.1, "unit": "s"},
    "latency_p95": {"signal": "latency_p95", "expected": 0.5, "unit": "s"},
    "latency_p99": {"signal": "latency_p99", "expected": 1.5, "unit": "s"},
    "error_rate": {"signal": "error_rate", "expected": 0.01},
    # both Celery exporters call it celery_queue_length (labels differ, max ignores them)
    "queue_depth": {"query": "max(celery_queue_length)", "expected": 500},
    # prometheus-postgres-exporter: pg_stat_activity_max_tx_duration{datname,state}
    "db_query_time": {
        "query": "avg(pg_stat_activity_max_tx_duration)",
        "expected": 1.0,
        "unit": "s",
    },
    # prometheus-redis-exporter: redis_keyspace_hits_total / redis_keyspace_misses_total
    "cache_hit_rate": {
        "query": "sum(rate(redis_keyspace_hits_total[1h])) / (sum(rate(redis_keyspace_hits_total"
        "[1h])) + sum(rate(redis_keyspace_misses_total[1h])))",
        "expected": 0.9,
        "higher_is_better": True,
    },
}


def defaults() -> dict[str, Any]:
    return {
        "prometheus": {"url": "http://localhost:9090"},
        "alertmanager": {"url": "http://localhost:9093"},
        "elasticsearch": {"url": "http://localhost:9200"},
        "grafana": {"url": "http://localhost:3000"},
        "pushgateway": {"url": "http://localhost:9091"},
        "services": [dict(s) for s in DEFAULT_SERVICES],
        "queues": [dict(q) for q in DEFAULT_QUEUES],
        "baselines": {k: dict(v) for k, v in DEFAULT_BASELINES.items()},
    }
