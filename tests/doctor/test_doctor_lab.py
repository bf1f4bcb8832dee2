"""`opskit doctor` against the lab, with each problem made for real (lab/faults.py), found
with the right classification, and gone from the report once removed.

The lab's normal state is not clean (a down email-service target, no Kibana or Logstash),
so these tests assert on specific findings, not on "no findings"."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from opskit.errors import EXIT_USAGE
from tests.conftest import LAB, OFFSET, Lab, get_json

Report = dict[str, Any]


def lab_fault(action: str, name: str) -> None:
    subprocess.run(
        [sys.executable, str(LAB / "lab.py"), "fault", action, name],
        check=True,
        capture_output=True,
        env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)},
    )


@contextmanager
def fault(name: str) -> Iterator[None]:
    lab_fault("add", name)
    try:
        yield
    finally:
        lab_fault("remove", name)


def doctor(lab: Lab, area: str, *extra: str, env: dict[str, str] | None = None) -> Report:
    proc = lab.opskit("doctor", "--only", area, "--wait", "0.2", "--json", *extra, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    import json

    report: Report = json.loads(proc.stdout)
    assert report["exit_code"] == proc.returncode
    return report


def findings(report: Report, check: str) -> list[dict[str, Any]]:
    return [f for a in report["areas"] for f in a["findings"] if f["check"] == check]


def wait_for(lab: Lab, area: str, ok: Callable[[Report], bool], timeout: float = 40) -> Report:
    """Run the doctor until `ok(report)`; fail with the last report."""
    deadline = time.monotonic() + timeout
    while True:
        report = doctor(lab, area)
        if ok(report):
            return report
        assert time.monotonic() < deadline, report
        time.sleep(1)


def down_job(report: Report, job: str) -> dict[str, Any] | None:
    return next((f for f in findings(report, "targets_down") if f["subject"] == job), None)


def test_refused_and_unresolvable_targets_are_classified(lab: Lab) -> None:
    with fault("refused-target"), fault("dns-target"):
        report = wait_for(
            lab,
            "scraping",
            lambda r: bool(down_job(r, "opskit-fault-refused") and down_job(r, "opskit-fault-dns")),
        )
        refused = down_job(report, "opskit-fault-refused")
        dns = down_job(report, "opskit-fault-dns")
        assert refused and dns
        assert refused["severity"] == "critical"
        assert refused["evidence"]["error_class"] == "connection refused"
        assert refused["evidence"]["instances"][0]["instance"] == "127.0.0.1:1"
        assert "connection refused" in refused["evidence"]["instances"][0]["last_error"]
        assert dns["evidence"]["error_class"] == "dns"
        assert "no-such-host.invalid" in dns["summary"]
        assert "DNS" in dns["action"] and "prometheus.yml" in dns["action"]
        assert refused["source"] == "prometheus GET /api/v1/targets"
        assert report["exit_code"] == 2
    report = wait_for(
        lab,
        "scraping",
        lambda r: not down_job(r, "opskit-fault-refused") and not down_job(r, "opskit-fault-dns"),
    )
    # the lab's own down target is still reported, with its class
    baseline = down_job(report, "email-service")
    assert baseline and baseline["evidence"]["error_class"] == "connection refused"


def test_unassignable_shard_turns_the_cluster_red_and_is_explained(lab: Lab) -> None:
    with fault("red-index"):
        report = wait_for(
            lab, "logs", lambda r: findings(r, "cluster_health")[0]["evidence"]["status"] == "red"
        )
        health = findings(report, "cluster_health")[0]
        assert health["severity"] == "critical"
        assert health["evidence"]["unassigned_shards"] >= 1
        shard = next(
            f
            for f in findings(report, "unassigned_shards")
            if f["subject"].startswith("opskit-fault")
        )
        assert shard["subject"] == "opskit-fault-unassigned[0]"
        assert shard["severity"] == "critical"
        assert shard["evidence"]["primary"] is True
        assert shard["evidence"]["can_allocate"] == "no"
        deciders = shard["evidence"]["deciders"]
        assert deciders[0]["decider"] == "filter"
        assert "no-such-node" in deciders[0]["explanation"]
        assert "allocation filter" in shard["action"] or "allocation.*" in shard["action"]
        assert "_cluster/allocation/explain" in shard["source"]
    report = wait_for(lab, "logs", lambda r: findings(r, "cluster_health")[0]["severity"] == "ok")
    assert [f["severity"] for f in findings(report, "unassigned_shards")] == ["ok"]
    assert get_json(f"{lab.elasticsearch}/_cluster/health")["status"] == "green"


def _rule(report: Report, check: str, name: str) -> dict[str, Any] | None:
    return next((f for f in findings(report, check) if f["subject"] == name), None)


def test_rules_failing_at_evaluation_are_found_in_both_areas(lab: Lab) -> None:
    with fault("bad-rule"):
        alerts = wait_for(
            lab, "alerts", lambda r: bool(_rule(r, "alert_rule_errors", "OpskitFaultBadRegex"))
        )
        bad = _rule(alerts, "alert_rule_errors", "OpskitFaultBadRegex")
        assert bad and bad["severity"] == "critical"
        assert "invalid regular expression" in bad["evidence"]["last_error"]
        assert bad["evidence"]["group"] == "opskit-fault"
        scraping = wait_for(
            lab,
            "scraping",
            lambda r: bool(_rule(r, "rule_evaluation", "opskit:fault_many_to_many")),
        )
        rec = _rule(scraping, "rule_evaluation", "opskit:fault_many_to_many")
        assert rec and "many-to-many" in rec["evidence"]["last_error"]
        # the lab's own rules still evaluate: only the broken ones are reported
        assert all(
            f["subject"].startswith(("Opskit", "opskit"))
            for f in findings(alerts, "alert_rule_errors")
        )
    alerts = wait_for(
        lab, "alerts", lambda r: [f["severity"] for f in findings(r, "alert_rule_errors")] == ["ok"]
    )
    scraping = doctor(lab, "scraping")
    assert [f["severity"] for f in findings(scraping, "rule_evaluation")] == ["ok"]


def _severity(report: Report, check: str) -> str:
    return str(findings(report, check)[0]["severity"])


def test_prometheus_without_alertmanager(lab: Lab) -> None:
    with fault("no-alertmanager"):
        report = wait_for(
            lab, "alerts", lambda r: _severity(r, "alertmanager_connection") == "critical"
        )
        conn = findings(report, "alertmanager_connection")[0]
        assert conn["evidence"]["active"] == []
        assert "alerting.alertmanagers" in conn["action"]
        # once Alertmanager's copies expire (endsAt ~20s in the lab), the firing alerts
        # are in Prometheus only
        report = wait_for(
            lab,
            "alerts",
            lambda r: bool(_rule(r, "firing_not_delivered", "EmailServiceDown")),
            timeout=60,
        )
        missing = _rule(report, "firing_not_delivered", "EmailServiceDown")
        assert missing and missing["severity"] == "critical"
        assert missing["evidence"]["firing_in_prometheus"] >= 1
    report = wait_for(
        lab,
        "alerts",
        lambda r: (
            _severity(r, "alertmanager_connection") == "ok"
            and _severity(r, "firing_not_delivered") == "ok"
        ),
        timeout=60,
    )
    assert findings(report, "alertmanager_connection")[0]["evidence"]["active"]


def _es(lab: Lab, method: str, path: str, body: Any = None) -> Any:
    return get_json(f"{lab.elasticsearch}/{path}", method=method, body=body)


def test_todays_index_missing_quiet_and_growing(lab: Lab) -> None:
    today = datetime.now(UTC).strftime("%Y.%m.%d")
    prefix = "opskit-test-doctor"
    config = lab.home / "doctor.toml"
    config.write_text(
        "[doctor]\n"
        'log_sources = ["growing", "quiet", "missing"]\n'
        f'log_index = "{prefix}-{{source}}-%Y.%m.%d"\n'
    )
    names = f"{prefix}-growing-{today},{prefix}-quiet-{today}"
    _es(lab, "DELETE", f"{names}?ignore_unavailable=true")  # a crashed earlier run's
    for source in ("growing", "quiet"):
        _es(lab, "PUT", f"{prefix}-{source}-{today}", {"settings": {"number_of_replicas": 0}})
        _es(lab, "POST", f"{prefix}-{source}-{today}/_doc?refresh=true", {"message": "first"})
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            _es(lab, "POST", f"{prefix}-growing-{today}/_doc", {"message": "more"})
            time.sleep(0.2)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        proc = lab.opskit(
            "doctor",
            "--only",
            "logs",
            "--wait",
            "2",
            "--json",
            env=lab.env(OPSKIT_CONFIG=str(config)),
        )
    finally:
        stop.set()
        writer.join()
        _es(lab, "DELETE", names)
    import json

    report = json.loads(proc.stdout)
    by_source = {f["subject"]: f for f in findings(report, "todays_indices")}
    assert by_source["growing"]["severity"] == "ok"
    assert (
        by_source["growing"]["evidence"]["docs_after"]
        > by_source["growing"]["evidence"]["docs_before"]
    )
    assert by_source["quiet"]["severity"] == "warning"
    assert (
        by_source["quiet"]["evidence"]["docs_before"]
        == by_source["quiet"]["evidence"]["docs_after"]
        == 1
    )
    assert by_source["missing"]["severity"] == "critical"
    assert by_source["missing"]["evidence"] == {
        "index": f"{prefix}-missing-{today}",
        "exists": False,
    }


def test_baseline_report_and_an_unreachable_backend(lab: Lab) -> None:
    proc = lab.opskit("doctor", "--wait", "0.2")
    assert proc.returncode == 2, proc.stderr
    for heading in (
        "Prometheus Not Scraping Metrics",
        "Kibana Not Showing Logs",
        "Alerts Not Firing",
        "High Memory Usage",
    ):
        assert heading in proc.stdout
    assert "email-service" in proc.stdout and "logstash" in proc.stdout

    # nothing listens on port 1: Prometheus is unreachable, Elasticsearch checks still run
    env = lab.env(OPSKIT_PROMETHEUS_URL="http://127.0.0.1:1", OPSKIT_PROMETHEUS_RETRIES="0")
    report = doctor(lab, "memory", env=env)
    assert report["exit_code"] == 3
    assert report["unreachable"] == ["prometheus"]
    card = findings(report, "prometheus_cardinality")[0]
    assert card["backend_error"] == "unreachable" and "connection refused" in card["summary"]
    heap = findings(report, "es_heap")
    assert heap and all(f["backend_error"] is None for f in heap)
    assert heap[0]["evidence"]["heap_max_bytes"] > 0

    assert lab.opskit("doctor", "--only", "nope").returncode == EXIT_USAGE
