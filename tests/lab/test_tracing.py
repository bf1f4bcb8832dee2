"""The lab's distributed tracing (lab/svc_tracing.py, lab/apps/emailsvc/tracing.py) for
real: requests this test makes to the email-service are found in Jaeger v2's query API
as traces across email-service -> Celery -> PostgreSQL/Redis, a failing one as an error
trace, and Jaeger stopped and started again leaves the services running and exporting.
Each request carries an X-Request-Id that the email-service puts on its server span
(`request.id`), so the test finds its own traces among the traffic generator's."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import (
    OFFSET,
    STATE,
    Lab,
    get_json,
    lab_ctl,
    lab_py,
    prom_value,
    server_state,
    wait_for,
)

EMAIL_SERVICE = f"http://127.0.0.1:{5000 + OFFSET}"
JAEGER = f"http://127.0.0.1:{16686 + OFFSET}"
Span = dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def services_running(lab: Lab) -> Iterator[None]:
    """The standing incident stops the email-service (tests/conftest.py); traces need it."""
    del lab
    with server_state("email_service", running=True), server_state("jaeger", running=True):
        yield


def call(method: str, path: str, body: Any = None) -> tuple[int, Any, str, float]:
    """One request with a fresh X-Request-Id: (status, JSON body, request id, seconds)."""
    rid = f"opskit-test-{uuid.uuid4().hex[:12]}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(EMAIL_SERVICE + path, data=data, method=method)
    req.add_header("X-Request-Id", rid)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw or b"null"), rid, time.monotonic() - t0


def find_trace(
    rid: str, complete: Callable[[list[Span]], bool] = bool, timeout: float = 30
) -> tuple[dict[str, Any], list[Span]]:
    """The trace whose email-service span has request.id `rid`, once `complete(spans)`;
    each span gets `service` (its process's service.name) and `tagmap`."""

    def look() -> tuple[dict[str, Any], list[Span]] | None:
        query = urllib.parse.urlencode(
            {
                "service": "email-service",
                "tags": json.dumps({"request.id": rid}),
                "lookback": "1h",
                "limit": "5",
            }
        )
        found = get_json(f"{JAEGER}/api/traces?{query}")["data"] or []
        if not found:
            return None
        trace = found[0]
        spans = trace["spans"]
        for span in spans:
            span["service"] = trace["processes"][span["processID"]]["serviceName"]
            span["tagmap"] = {t["key"]: t["value"] for t in span["tags"]}
        return (trace, spans) if complete(spans) else None

    result = wait_for(look, timeout=timeout, every=0.5)
    assert result, f"no complete trace with request.id={rid} in Jaeger after {timeout}s"
    return result  # type: ignore[no-any-return]


def one(spans: list[Span], service: str, name: str) -> Span:
    matching = [s for s in spans if s["service"] == service and s["operationName"] == name]
    assert matching, (service, name, sorted((s["service"], s["operationName"]) for s in spans))
    return matching[0]


def parent(span: Span) -> str | None:
    refs = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def has_worker_run(task: str) -> Callable[[list[Span]], bool]:
    return lambda spans: any(
        s["service"] == "celery-worker" and s["operationName"] == f"run/{task}" for s in spans
    )


def _services() -> list[str]:
    return list(get_json(f"{JAEGER}/api/services")["data"] or [])


def test_lab_env_names_the_tracing_endpoints_and_they_answer(lab: Lab) -> None:
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in lab_py("env").splitlines()
    )
    assert exports["OPSKIT_JAEGER_URL"] == JAEGER
    assert exports["OPSKIT_OTEL_HEALTH_URL"] == f"http://127.0.0.1:{13133 + OFFSET}/status"
    assert exports["OPSKIT_OTEL_METRICS_URL"] == f"http://127.0.0.1:{8888 + OFFSET}/metrics"
    assert exports["OPSKIT_OTLP_URL"] == f"http://127.0.0.1:{4318 + OFFSET}"
    health = get_json(exports["OPSKIT_OTEL_HEALTH_URL"])
    assert health["healthy"] is True and health["status"] == "StatusOK", health
    services = wait_for(
        lambda: {"email-service", "celery-worker"} <= set(_services()) and _services(), 30
    )
    assert services, _services()
    with urllib.request.urlopen(exports["OPSKIT_OTEL_METRICS_URL"], timeout=10) as resp:
        text = resp.read().decode()
    assert "otelcol_receiver_accepted_spans_total{" in text
    # Prometheus scrapes the collector's own metrics as job `jaeger`
    up = wait_for(lambda: prom_value(lab, 'up{job="jaeger"}'), timeout=30)
    assert up == 1.0
    accepted = wait_for(
        lambda: prom_value(
            lab,
            'sum(otelcol_receiver_accepted_spans_total{job="jaeger",receiver="otlp",'
            'transport="http"})',
        ),
        timeout=30,
    )
    assert accepted and accepted > 0


def test_a_request_is_one_trace_across_email_service_celery_postgres_and_redis() -> None:
    status, body, rid, _ = call(
        "POST", "/api/emails", {"recipient": "alice@emailclient.test", "subject": "traced"}
    )
    assert status == 202, body
    trace, spans = find_trace(rid, has_worker_run("send_email"))

    server = one(spans, "email-service", "POST /api/emails")
    assert parent(server) is None  # the trace's root
    assert server["tagmap"]["span.kind"] == "server"
    assert server["tagmap"]["http.status_code"] == 202
    assert server["tagmap"]["email.id"] == body["id"]
    insert = one(spans, "email-service", "INSERT")
    assert insert["tagmap"]["db.system"] == "postgresql"
    assert parent(insert) == server["spanID"]
    publish = one(spans, "email-service", "apply_async/send_email")
    assert publish["tagmap"]["span.kind"] == "producer"
    assert parent(publish) == server["spanID"]
    lpush = one(spans, "email-service", "LPUSH")  # the message onto the broker's queue
    assert lpush["tagmap"]["db.system"] == "redis"
    assert parent(lpush) == publish["spanID"]

    run = one(spans, "celery-worker", "run/send_email")
    assert run["tagmap"]["span.kind"] == "consumer"
    assert parent(run) == publish["spanID"]  # the context came in the task's headers
    assert run["tagmap"]["email.id"] == body["id"]
    worker_db = [s for s in spans if s["service"] == "celery-worker" and parent(s) == run["spanID"]]
    assert {s["operationName"] for s in worker_db} >= {"SELECT", "UPDATE"}
    assert all(s["tagmap"]["db.system"] == "postgresql" for s in worker_db)
    assert {s["tagmap"]["span.kind"] for s in worker_db} == {"client"}
    assert all(s["traceID"] == trace["traceID"] for s in spans)

    # the same trace is found from the worker's side by the email's id
    query = urllib.parse.urlencode(
        {"service": "celery-worker", "tags": json.dumps({"email.id": str(body["id"])})}
    )
    by_email = get_json(f"{JAEGER}/api/traces?{query}&lookback=1h")["data"]
    assert [t["traceID"] for t in by_email] == [trace["traceID"]]


def test_a_failing_request_is_an_error_trace_and_a_slow_one_a_slow_trace() -> None:
    status, _, rid, _ = call("GET", "/api/fail")
    assert status == 500
    _, spans = find_trace(rid)
    failing = one(spans, "email-service", "GET /api/fail")
    assert failing["tagmap"]["error"] is True
    assert failing["tagmap"]["otel.status_code"] == "ERROR"
    assert failing["tagmap"]["http.status_code"] == 500
    events = [{f["key"]: f["value"] for f in log["fields"]} for log in failing["logs"]]
    exc = [e for e in events if e.get("event") == "exception"]
    assert exc, events
    assert exc[0]["exception.type"].endswith("SimulatedFailure")
    assert "simulated failure" in exc[0]["exception.message"]
    assert "Traceback" in exc[0]["exception.stacktrace"]

    status, _, rid, _ = call("GET", "/api/slow?seconds=1.2")
    assert status == 200
    _, spans = find_trace(rid)
    slow = one(spans, "email-service", "GET /api/slow")
    query = one(spans, "email-service", "SELECT")  # SELECT pg_sleep(1.2)
    assert parent(query) == slow["spanID"]
    assert query["duration"] >= 1_200_000 and slow["duration"] >= query["duration"]  # µs
    assert "error" not in slow["tagmap"]


def _pids() -> dict[str, int]:
    servers = json.loads(lab_py("status", "--json"))["servers"]
    return {s["name"]: s["pid"] for s in servers}


def _log_lines(offsets: dict[str, int], needle: str) -> int:
    """Lines containing `needle` written to the services' logs since `offsets`."""
    count = 0
    for name, start in offsets.items():
        with (STATE / "logs" / f"{name}.log").open("rb") as fh:
            fh.seek(start)
            count += sum(1 for line in fh if needle.encode() in line)
    return count


def test_jaeger_stopped_and_started_again_the_services_run_on_and_export_again() -> None:
    names = ("email_service", "celery_worker")
    before = _pids()
    offsets = {n: (STATE / "logs" / f"{n}.log").stat().st_size for n in names}
    lab_ctl("server", "stop", "jaeger")
    try:
        # requests do not wait for the exporter (its export timeout is 2 s): the spans
        # are dropped, not queued forever
        times = []
        for _ in range(6):
            status, body, _, seconds = call(
                "POST", "/api/emails", {"recipient": "bob@emailclient.test"}
            )
            assert status == 202, body
            times.append(seconds)
        assert sorted(times)[len(times) // 2] < 1.0 and max(times) < 5.0, times
        failing = wait_for(
            lambda: _log_lines(offsets, "trace export to ") > 0, timeout=15, every=0.5
        )
        assert failing, "no process said that its trace export fails"
    finally:
        lab_ctl("server", "start", "jaeger")
    after = _pids()
    for name in ("email_service", "celery_worker", "celery_worker_reports", "celery_beat"):
        assert after[name] == before[name], f"{name} was restarted"

    status, body, rid, _ = call("POST", "/api/emails", {"recipient": "alice@emailclient.test"})
    assert status == 202, body
    _, spans = find_trace(rid, has_worker_run("send_email"), timeout=30)
    assert one(spans, "email-service", "POST /api/emails")["tagmap"]["email.id"] == body["id"]
    # one line per process when exports start failing, one when they work again: bounded
    resumed = wait_for(lambda: _log_lines(offsets, "works again") > 0, timeout=15)
    assert resumed
    # (no reminder within 10 minutes): 2 Gunicorn workers + 2 prefork children here
    assert _log_lines(offsets, "trace export to ") <= 2 * 4
