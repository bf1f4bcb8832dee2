"""PostgreSQL, Redis and the blackbox exporter in the lab, read through their real exporters
as Prometheus scrapes them. Each test causes a real change (connections held, keys written,
a server stopped) and restores it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable

from tests.conftest import LAB, OFFSET, Lab, get_json, lab_ctl, lab_py, prom_value, promql

PG_MAX_CONNECTIONS = 50  # lab/svc_data.py
REDIS_MAXMEMORY = 64 * 1024 * 1024


def value(lab: Lab, expr: str) -> float | None:
    return prom_value(lab, expr)


def wait_value(
    lab: Lab, expr: str, ok: Callable[[float], bool], timeout: float = 25.0
) -> float | None:
    """Poll until Prometheus' value for expr satisfies ok (scrapes are every 5 s)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = value(lab, expr)
        if last is not None and ok(last):
            return last
        time.sleep(1)
    return last


def test_postgres_exporter_reads_the_lab_postgresql(lab: Lab) -> None:
    assert value(lab, 'pg_up{job="postgres"}') == 1
    assert value(lab, 'pg_settings_max_connections{job="postgres"}') == PG_MAX_CONNECTIONS
    size = value(lab, 'pg_database_size_bytes{job="postgres",datname="emailclient"}')
    assert size is not None and size > 1_000_000
    # the email service's schema, made by seed()
    tables = lab_py("pg", "psql", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert {"emails", "mailboxes"} <= set(tables.split())
    owner = lab_py("pg", "psql", "SELECT tableowner FROM pg_tables WHERE tablename = 'emails'")
    assert owner.strip() == "email_service"


def test_held_connections_raise_the_connection_pool_as_scraped(lab: Lab) -> None:
    used = 'sum(pg_stat_activity_count{job="postgres",datname="emailclient"})'
    before = value(lab, used)
    assert before is not None
    held = 20
    proc = subprocess.Popen(
        [sys.executable, str(LAB / "lab.py"), "pg", "hold-connections", str(held), "25"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        # the test's connections at least (others, e.g. the email-service's pool, may
        # come and go meanwhile)
        during = wait_value(lab, used, lambda v: v >= held)
        assert during is not None and during >= held, (before, during)
        ratio = value(
            lab,
            'sum(pg_stat_activity_count{job="postgres"}) / max(pg_settings_max_connections)',
        )
        assert ratio is not None and ratio >= held / PG_MAX_CONNECTIONS
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    after = wait_value(lab, used, lambda v: v < before + held)
    assert after is not None and after < before + held


def test_keys_written_raise_redis_db_keys(lab: Lab) -> None:
    keys = 'redis_db_keys{job="redis",db="db4"}'
    lab_py("redis", "flush-fill", "--db", "4")
    try:
        assert wait_value(lab, keys, lambda v: v == 0) == 0
        lab_py("redis", "fill", "--db", "4", "--mb", "1")  # 16 keys of 64 KiB
        assert wait_value(lab, keys, lambda v: v >= 16) == 16
        assert value(lab, 'redis_db_keys_expiring{job="redis",db="db4"}') == 16
    finally:
        lab_py("redis", "flush-fill", "--db", "4")
    assert wait_value(lab, keys, lambda v: v == 0) == 0


def test_filling_redis_to_maxmemory_evicts_keys(lab: Lab) -> None:
    assert value(lab, 'redis_memory_max_bytes{job="redis"}') == REDIS_MAXMEMORY
    evicted = 'redis_evicted_keys_total{job="redis"}'
    before = value(lab, evicted)
    assert before is not None
    try:
        assert int(lab_py("redis", "fill").strip()) > 0
        after = wait_value(lab, evicted, lambda v: v > before)
        assert after is not None and after > before
        used = value(lab, 'redis_memory_used_bytes{job="redis"} / redis_memory_max_bytes')
        assert used is not None and used > 0.85  # RedisMemoryHigh's threshold, for real
        # Celery's broker (db 0) keeps its keys: only volatile keys are evicted
        assert value(lab, 'redis_instance_info{job="redis",maxmemory_policy="volatile-lru"}')
    finally:
        lab_py("redis", "flush-fill")
    freed = wait_value(
        lab, 'redis_memory_used_bytes{job="redis"} / redis_memory_max_bytes', lambda v: v < 0.5
    )
    assert freed is not None and freed < 0.5


def test_redis_command_latency_percentiles_are_exported(lab: Lab) -> None:
    lab_py("redis", "cli", "SET", "lab:latency-probe", "1")
    p99 = wait_value(
        lab, 'redis_latency_percentiles_usec{job="redis",cmd="set",quantile="99"}', lambda v: v > 0
    )
    assert p99 is not None and 0 < p99 < 100_000  # microseconds: far below the 100 ms rule
    lab_py("redis", "cli", "DEL", "lab:latency-probe")


def test_blackbox_probe_follows_redis_going_down_and_up(lab: Lab) -> None:
    probe = 'probe_success{job="blackbox-tcp",service="redis"}'
    assert wait_value(lab, probe, lambda v: v == 1) == 1
    try:
        lab_ctl("server", "stop", "redis")
        assert wait_value(lab, probe, lambda v: v == 0) == 0
        assert wait_value(lab, 'redis_up{job="redis"}', lambda v: v == 0) == 0
    finally:
        lab_ctl("server", "start", "redis")
    assert wait_value(lab, probe, lambda v: v == 1) == 1
    assert wait_value(lab, 'redis_up{job="redis"}', lambda v: v == 1) == 1


def test_blackbox_probes_postgresql_and_its_banner_modules_work(lab: Lab) -> None:
    assert value(lab, 'probe_success{job="blackbox-tcp",service="postgresql"}') == 1
    bb = f"http://127.0.0.1:{9115 + OFFSET}"
    target = f"127.0.0.1:{6379 + OFFSET}"
    query = urllib.parse.urlencode({"module": "redis_ping", "target": target})
    with urllib.request.urlopen(f"{bb}/probe?{query}", timeout=10) as resp:
        body = resp.read().decode()
    assert "probe_success 1" in body
    refused = f"127.0.0.1:{2526 + OFFSET}"  # relay_refused: nothing listens
    closed = urllib.parse.urlencode({"module": "tcp_connect", "target": refused})
    with urllib.request.urlopen(f"{bb}/probe?{closed}", timeout=10) as resp:
        assert "probe_success 0" in resp.read().decode()


def test_database_and_cache_rules_are_loaded_against_real_metrics(lab: Lab) -> None:
    groups = {g["name"]: g for g in get_json(f"{lab.prometheus}/api/v1/rules")["data"]["groups"]}
    names = {
        "database": {
            "PostgresDown",
            "PostgresConnectionPoolHigh",
            "PostgresReplicationLag",
            "PostgresLongRunningQuery",
            "PostgresDatabaseSizeLarge",
        },
        "cache": {
            "RedisDown",
            "RedisMemoryHigh",
            "RedisTooManyConnections",
            "RedisKeyEvictions",
            "RedisCommandLatencyHigh",
        },
    }
    for group, expected in names.items():
        rules = {r["name"]: r for r in groups[group]["rules"]}
        assert set(rules) == expected
        assert all(r["health"] == "ok" for r in rules.values())
    # one PostgreSQL, no standby: the replication rule's metric honestly has no data
    assert promql(lab, 'pg_replication_lag{job="postgres"}') == []
    # every other rule's metric exists
    for metric in (
        "pg_up",
        "pg_stat_activity_count",
        "pg_stat_activity_max_tx_duration",
        "pg_database_size_bytes",
        "redis_up",
        "redis_memory_used_bytes",
        "redis_connected_clients",
        "redis_evicted_keys_total",
        "redis_latency_percentiles_usec",
    ):
        assert promql(lab, metric), metric
