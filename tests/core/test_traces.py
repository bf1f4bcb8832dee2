"""Tracing (issue 20) against the lab's real Jaeger v2: a request the test makes to the
email-service is found as a trace with its spans; a failing request shows as an error
trace with the failing span; stopping Jaeger is reported by health, doctor, `opskit
traces` and the Traces screen, and recovers. Parsing edge cases use payloads recorded
from the lab's Jaeger (tests/core/fixtures/)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opskit.clients.jaeger import parse_prometheus_text, parse_trace
from opskit.config import load
from opskit.errors import EXIT_UNREACHABLE
from opskit.models_tracing import Dependency, Trace
from opskit.stack import Stack
from opskit.tracing import (
    dependency_lines,
    judge_collector,
    percentile,
    read_collector,
    service_stats,
)
from tests.conftest import OFFSET, Lab, server_state, wait_for

EMAIL_SERVICE = f"http://127.0.0.1:{5000 + OFFSET}"
FIXTURES = Path(__file__).parent / "fixtures"


def request(path: str, rid: str) -> int:
    req = urllib.request.Request(f"{EMAIL_SERVICE}{path}", headers={"X-Request-Id": rid})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def settings(lab: Lab) -> Any:
    env = lab.env()
    return load(environ=env).settings


def find(lab: Lab, rid: str, timeout: float = 30) -> Trace | None:
    """The email-service trace tagged with our X-Request-Id, through opskit's client."""

    async def look() -> Trace | None:
        async with Stack(settings(lab)) as stack:
            end = datetime.now(UTC) + timedelta(seconds=5)
            found = await stack.jaeger.traces(
                "email-service", end - timedelta(minutes=10), end, 5, tags={"request.id": rid}
            )
            return found[0] if found else None

    result: Trace | None = wait_for(lambda: asyncio.run(look()), timeout=timeout, every=1)
    return result


def test_a_request_is_found_as_a_trace_with_its_spans(lab: Lab) -> None:
    rid = f"opskit-test-{uuid.uuid4().hex[:12]}"
    with server_state("email_service", True):
        wait_for(lambda: request("/health", "warmup") == 200, timeout=30)
        assert request("/api/slow?seconds=0.2", rid) == 200
        trace = find(lab, rid)
    assert trace is not None, "the request never showed up in Jaeger"
    root = trace.spans[0]
    assert (root.service, root.operation, root.kind) == ("email-service", "GET /api/slow", "server")
    assert root.attributes["request.id"] == rid
    assert root.duration_ms >= 200 and not trace.error
    # its child spans: the database query the endpoint makes (psycopg instrumentation)
    children = [s for s in trace.spans if s.parent_id == root.span_id]
    assert children and all(s.depth == 1 for s in children)
    assert any("pg_sleep" in str(s.attributes.get("db.statement", "")) for s in trace.spans)
    # the CLI shows the same trace's span tree
    proc = lab.opskit("traces", "--trace", trace.trace_id, "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["trace_id"] == trace.trace_id
    assert [s["span_id"] for s in shown["spans"]] == [s.span_id for s in trace.spans]
    text = lab.opskit("traces", "--trace", trace.trace_id)
    assert "email-service GET /api/slow" in text.stdout and f"request.id={rid}" in text.stdout


def test_a_failing_request_is_an_error_trace_with_the_failing_span(lab: Lab) -> None:
    rid = f"opskit-fail-{uuid.uuid4().hex[:12]}"
    with server_state("email_service", True):
        wait_for(lambda: request("/health", "warmup") == 200, timeout=30)
        assert request("/api/fail", rid) == 500
        trace = find(lab, rid)
        assert trace is not None, "the failing request never showed up in Jaeger"
        failing = trace.failing_span()
        assert failing is not None and trace.error
        assert (failing.service, failing.operation) == ("email-service", "GET /api/fail")
        assert failing.status == "ERROR" and "simulated failure" in failing.message

        # `opskit traces email-service` lists it among the failing traces, newest first
        def listed() -> dict[str, Any] | None:
            data = lab.opskit_json("traces", "email-service")
            ids = {t["trace_id"]: t for t in data["failing"]}
            return ids.get(trace.trace_id) and data

        data = wait_for(listed, timeout=20, every=1)
    assert data, "the failing trace is not among `opskit traces email-service`'s failing"
    row = next(t for t in data["failing"] if t["trace_id"] == trace.trace_id)
    assert row["errors"] >= 1 and "GET /api/fail" in row["error_message"]
    assert any(s["status"] == "ERROR" for s in row["trace"]["spans"])
    (svc,) = data["services"]
    assert svc["service"] == "email-service" and svc["errors"] >= 1 and svc["requests"] >= 2
    assert 0 < svc["error_rate"] <= 1 and svc["p50_ms"] <= svc["p95_ms"] <= svc["p99_ms"]


def test_health_and_traces_read_the_real_collector(lab: Lab) -> None:
    rows = {r["name"]: r for r in lab.opskit_json("health", ok_codes=(0, 1, 2))}
    for name in ("jaeger", "otel-collector", "otlp-http", "otlp-grpc", "otel-collector metrics"):
        assert rows[name]["ok"], rows[name]
    metrics = rows["otel-collector metrics"]["metrics"]
    assert metrics["accepted"] > 0 and "refused" in metrics and "send_failed" in metrics
    assert metrics["window_s"] == 300  # Prometheus scrapes the lab's Jaeger: a 5m window
    assert rows["otel-collector"]["reported"] == "healthy"
    # the whole view: every service Jaeger knows, and the dependency graph as text
    proc = lab.opskit("traces")
    assert proc.returncode in (0, 1, 2), proc.stderr
    assert "email-service" in proc.stdout and "Dependencies" in proc.stdout


def test_stopping_jaeger_is_reported_everywhere_and_recovers(lab: Lab) -> None:
    from opskit.screens.app import create_app
    from opskit.screens.traces import TracesScreen

    async def tui(check: Any) -> None:
        app = create_app(settings(lab), refresh=2.0)
        async with app.run_test(size=(140, 40)) as pilot:
            app.switch_mode("traces")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, TracesScreen)
            for _ in range(80):
                screen.poll()
                await pilot.pause(0.25)
                if check(app):
                    break
            assert check(app), app.state["traces"]
            assert app.state["targets"].status == "ok"  # the other sources go on

    with server_state("jaeger", False):
        rows = {r["name"]: r for r in lab.opskit_json("health", ok_codes=(2,))}
        assert not rows["jaeger"]["ok"] and "connection refused" in rows["jaeger"]["error"]
        assert not rows["otel-collector"]["ok"] and not rows["otlp-http"]["ok"]
        assert rows["prometheus"]["ok"] and rows["grafana"]["ok"]  # the rest as before
        report = lab.opskit_json("doctor", "--only", "tracing", ok_codes=(EXIT_UNREACHABLE,))
        assert {"jaeger", "otel-collector"} <= set(report["unreachable"])
        proc = lab.opskit("traces")
        assert proc.returncode == EXIT_UNREACHABLE and "jaeger" in proc.stderr
        asyncio.run(tui(lambda app: app.state["traces"].status == "unreachable"))
    wait_for(lambda: lab.opskit("traces").returncode in (0, 1, 2), timeout=30, every=1)
    rows = {r["name"]: r for r in lab.opskit_json("health", ok_codes=(0, 1, 2))}
    assert rows["jaeger"]["ok"] and rows["otel-collector"]["ok"]
    asyncio.run(tui(lambda app: app.state["traces"].status == "ok"))


# ------------------------------------------------------------------ recorded payloads


def test_parse_a_recorded_trace() -> None:
    raw = json.loads((FIXTURES / "jaeger_trace_fail.json").read_text())["data"][0]
    trace = parse_trace(raw)
    assert trace.error and trace.spans[0].depth == 0
    failing = trace.failing_span()
    assert failing is not None and failing.status == "ERROR"
    # a span whose parent is not in the trace (a partial trace) is a root, not lost
    raw["spans"][-1]["references"] = [{"refType": "CHILD_OF", "spanID": "ffffffffffffffff"}]
    partial = parse_trace(raw)
    assert len(partial.spans) == len(trace.spans)


def test_collector_metrics_and_thresholds() -> None:
    text = (FIXTURES / "jaeger_metrics.txt").read_text()
    cfg = load(environ={"XDG_CONFIG_HOME": "/nonexistent"}).settings.tracing
    reading = read_collector(parse_prometheus_text(text), "http://x/metrics")
    assert reading.metrics["accepted"].name == "otelcol_receiver_accepted_spans_total"
    judged = {j.key: j.severity for j in judge_collector(reading, cfg)}
    assert set(judged.values()) <= {"ok", "info"}  # totals only: no window, no alarm
    # old (OpenCensus) names, a window with refusals and a nearly full queue
    old = parse_prometheus_text(
        'otelcol_receiver_refused_spans{receiver="otlp"} 7\n'
        "otelcol_processor_dropped_spans 3\n"
        'otelcol_exporter_queue_size{exporter="otlp/jaeger"} 900\n'
        'otelcol_exporter_queue_capacity{exporter="otlp/jaeger"} 1000\n'
    )
    reading = read_collector(old, "u")
    reading.metrics["refused"].window_increase = 7
    reading.metrics["dropped"].window_increase = 3
    reading.window_s = 300
    judged = {j.key: j for j in judge_collector(reading, cfg)}
    assert judged["refused"].severity == "warning" and "in the last 5m" in judged["refused"].summary
    assert judged["dropped"].severity == "critical"
    assert judged["queue"].severity == "warning" and "90%" in judged["queue"].summary


def test_stats_percentiles_and_the_dependency_graph() -> None:
    assert percentile([], 0.5) != percentile([], 0.5)  # NaN
    assert percentile([1, 2, 3, 4], 0.5) == 2 and percentile([1, 2, 3, 4], 0.99) == 4
    raw = json.loads((FIXTURES / "jaeger_trace_fail.json").read_text())["data"][0]
    trace = parse_trace(raw)
    cfg = load(environ={"XDG_CONFIG_HOME": "/nonexistent"}).settings.tracing
    stats = service_stats(
        trace.service,
        [trace],
        trace.start - timedelta(minutes=1),
        trace.start + timedelta(minutes=1),
        500,
        cfg,
    )
    assert stats.requests == 1 and stats.errors == 1 and stats.state == "critical"
    lines = dependency_lines(
        [
            Dependency("email-service", "celery-worker", 3),
            Dependency("celery-worker", "pg", 2),
            Dependency("celery-beat", "celery-worker", 1),
        ]
    )
    assert lines[0] == "celery-beat" and "└─▶ celery-worker  1 call(s)" in lines[1]
    assert any("pg  2 call(s)" in line for line in lines)
    assert "email-service" in lines and any("(see above)" in line for line in lines)


@pytest.fixture(scope="module", autouse=True)
def _fixtures_exist() -> None:
    assert (FIXTURES / "jaeger_trace_fail.json").is_file()
