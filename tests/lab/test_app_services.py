"""The lab's email-service, Celery and celery-exporter (lab/svc_app.py) measured for real:
each test causes a change with the real services and reads it back from the exporters and
Prometheus. The traffic generator is stopped while a test counts, and started again."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import (
    OFFSET,
    Lab,
    get_json,
    lab_ctl,
    lab_py,
    prom_value,
    server_state,
    wait_for,
)

EMAIL_SERVICE = f"http://127.0.0.1:{5000 + OFFSET}"
CELERY_EXPORTER = f"http://127.0.0.1:{9808 + OFFSET}"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(url: str, metric: str, /, **labels: str) -> float:
    """The sum of `metric`'s samples at a /metrics endpoint whose labels include `labels`."""
    with urllib.request.urlopen(url, timeout=30) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m or m.group(1) != metric:
            continue
        have = dict(LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


@contextmanager
def stopped(*servers: str) -> Iterator[None]:
    """Stop lab servers for the block; start them again (in reverse) whatever happens."""
    try:
        for name in servers:
            lab_ctl("server", "stop", name)
        yield
    finally:
        for name in reversed(servers):
            lab_ctl("server", "start", name)


@pytest.fixture(scope="module", autouse=True)
def email_service_running(lab: Lab) -> Iterator[None]:
    """The test lab's standing incident stops the email-service (tests/conftest.py);
    this module measures it running."""
    del lab
    with server_state("email_service", running=True):
        yield


def health() -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{EMAIL_SERVICE}/health", timeout=15) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_health_reports_the_service_and_its_four_dependencies_healthy(lab: Lab) -> None:
    status, body = health()
    assert status == 200, body
    assert body["status"] == "healthy", body
    assert body["service"] == "email-service"
    assert body["version"]
    assert body["uptime_seconds"] > 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body["timestamp"])
    assert set(body["checks"]) == {"database", "redis", "smtp", "imap"}
    for name, check in body["checks"].items():
        assert check["status"] == "healthy", (name, check)
        assert 0 <= check["latency_ms"] < 5000, (name, check)
    assert body["checks"]["database"]["server_version"].startswith("15.")
    assert body["checks"]["smtp"]["banner"].startswith("220 ")
    assert "Dovecot" in body["checks"]["imap"]["banner"]


def test_health_answers_503_unhealthy_while_postgresql_is_down(lab: Lab) -> None:
    with stopped("postgres"):
        status, body = health()
        assert status == 503, body
        assert body["status"] == "unhealthy"
        assert body["checks"]["database"]["status"] == "unhealthy"
        assert body["checks"]["redis"]["status"] == "healthy"
    assert wait_for(lambda: health()[0] == 200, timeout=30), health()


def test_enqueued_tasks_raise_the_reports_queue_length_by_exactly_n(lab: Lab) -> None:
    n = 25
    with stopped("traffic", "celery_worker_reports"):
        # the worker said goodbye: the exporter marks it offline
        assert wait_for(
            lambda: (
                scrape(f"{CELERY_EXPORTER}/metrics", "celery_worker_up", hostname="worker-reports")
                == 0.0
            )
        )

        def length() -> float:
            return scrape(f"{CELERY_EXPORTER}/metrics", "celery_queue_length", queue_name="reports")

        before = length()
        out = lab_py("celery", "enqueue", "reports", str(n))
        assert f"enqueued {n} generate_report on reports" in out
        assert wait_for(lambda: length() == before + n), (before, length())
        expr = 'celery_queue_length{job="celery",queue_name="reports"}'
        assert wait_for(lambda: prom_value(lab, expr) == before + n), prom_value(lab, expr)
    # the worker is back and consumes: the exporter sees it up again
    assert wait_for(
        lambda: (
            scrape(f"{CELERY_EXPORTER}/metrics", "celery_worker_up", hostname="worker-reports")
            == 1.0
        )
    )


def test_caused_500s_raise_flask_http_request_total_by_exactly_n(lab: Lab) -> None:
    n = 7
    metrics = f"{EMAIL_SERVICE}/metrics"
    expr = 'sum(flask_http_request_total{job="email-service",status="500"})'
    with stopped("traffic"):
        before = scrape(metrics, "flask_http_request_total", status="500")
        # Prometheus has caught up with the quiet service before we count
        assert wait_for(lambda: prom_value(lab, expr) == before), (prom_value(lab, expr), before)
        out = lab_py("app", "errors", str(n))
        assert f"{n} of {n} requests answered 500" in out
        assert scrape(metrics, "flask_http_request_total", status="500") == before + n
        assert wait_for(lambda: prom_value(lab, expr) == before + n), prom_value(lab, expr)
        histogram = 'sum(flask_http_request_duration_seconds_count{path="/api/fail",status="500"})'
        assert (prom_value(lab, histogram) or 0) >= n


def test_stopping_the_email_service_turns_its_target_down_and_back_up(lab: Lab) -> None:
    def target_health() -> str:
        targets = get_json(f"{lab.prometheus}/api/v1/targets")["data"]["activeTargets"]
        found = [t["health"] for t in targets if t["labels"]["job"] == "email-service"]
        assert len(found) == 1, found
        return str(found[0])

    assert wait_for(lambda: target_health() == "up"), target_health()
    with stopped("email_service"):
        assert wait_for(lambda: target_health() == "down"), target_health()
        assert prom_value(lab, 'up{job="email-service"}') == 0.0
    assert wait_for(lambda: target_health() == "up"), target_health()
    assert wait_for(lambda: prom_value(lab, 'up{job="email-service"}') == 1.0)


def test_beat_sends_heartbeats_that_the_exporter_counts(lab: Lab) -> None:
    def sent() -> float:
        return scrape(f"{CELERY_EXPORTER}/metrics", "celery_task_sent_total", name="heartbeat")

    before = sent()
    assert wait_for(lambda: sent() > before, timeout=40), (before, sent())
    assert scrape(f"{CELERY_EXPORTER}/metrics", "celery_worker_up", hostname="worker-default") == 1
