"""Each lab server answers through its real API with the demo data lab/up loads."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import (
    GRAFANA_PASSWORD,
    GRAFANA_USER,
    LAB,
    OFFSET,
    Lab,
    get_json,
    promql,
    server_state,
    wait_for,
)

LOG_SOURCES = ["email-service", "celery-worker", "postgresql", "postfix", "dovecot"]


README_JOBS = {
    "prometheus",
    "alertmanager",
    "node",
    "pushgateway",
    "email-service",
    "celery",
    "postgres",
    "redis",
    "postfix",
    "dovecot",
    "blackbox-http",
    "blackbox-tcp",
}


def test_prometheus_scrapes_the_readme_jobs_and_one_is_really_down(lab: Lab) -> None:
    """Every service the README lists is scraped through its exporter; the standing
    incident (tests/conftest.py) has stopped the email-service for real."""

    def scraped() -> list[dict[str, Any]]:
        targets = get_json(f"{lab.prometheus}/api/v1/targets")["data"]["activeTargets"]
        known = [t for t in targets if t["health"] != "unknown"]
        # a test before this one may have just put the stopped email-service back
        email = [t for t in known if t["labels"]["job"] == "email-service"]
        return known if email and email[0]["health"] == "down" else []

    targets = wait_for(scraped, timeout=30)
    by_job = {t["labels"]["job"]: t for t in targets}
    assert set(by_job) >= README_JOBS
    for job in README_JOBS - {"email-service", "blackbox-http"}:
        assert by_job[job]["health"] == "up", by_job[job]
    down = by_job["email-service"]
    assert down["health"] == "down"
    assert "connection refused" in down["lastError"]
    for url in (t["scrapeUrl"] for t in targets):
        assert url.startswith("http://127.0.0.1:")


def test_demo_alerts_fire_and_reach_alertmanager(lab: Lab) -> None:
    def firing() -> set[str]:
        alerts = get_json(f"{lab.prometheus}/api/v1/alerts")["data"]["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}

    names = wait_for(
        lambda: {"EmailServiceDown", "MailQueueHigh"} <= firing() and firing(),
        timeout=90,
    )
    assert names, f"expected demo alerts firing, got {firing()}"

    def in_alertmanager() -> set[str]:
        return {a["labels"]["alertname"] for a in get_json(f"{lab.alertmanager}/api/v2/alerts")}

    seen = wait_for(lambda: {"EmailServiceDown", "MailQueueHigh"} <= in_alertmanager(), 60)
    assert seen, in_alertmanager()


def test_thirty_days_of_backfilled_history(lab: Lab) -> None:
    now = datetime.now(UTC)
    # under the live exporters' names (lab/backfill.py)
    for expr in (
        'postfix_showq_message_size_bytes_count{job="postfix",queue="deferred"}',
        'celery_queue_length{job="celery",queue_name="default"}',
        'flask_http_request_total{job="email-service",status="500"}',
    ):
        old = promql(lab, expr, now - timedelta(days=28))
        assert old and float(old[0]["value"][1]) >= 0, expr
    flaps = promql(
        lab, 'changes(count_over_time(ALERTS{alertname="HighRequestLatency"}[10m])[2d:5m])'
    )
    assert flaps, "no HighRequestLatency history"
    fs = promql(
        lab, 'node_filesystem_avail_bytes{instance="monitoring-2:9100"}', now - timedelta(days=2)
    )
    assert fs, "no backfilled filesystem trend"
    retention = get_json(f"{lab.prometheus}/api/v1/status/flags")["data"]
    assert retention["storage.tsdb.retention.time"] == "60d"


def test_node_exporter_serves_filesystems(lab: Lab) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{lab.node_exporter}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert "node_filesystem_avail_bytes{" in text


def test_elasticsearch_is_real_8_with_45_days_of_daily_indices(lab: Lab) -> None:
    info = get_json(lab.elasticsearch)
    assert info["version"]["number"].startswith("8.")
    health = get_json(f"{lab.elasticsearch}/_cluster/health")
    assert health["status"] == "green"
    rows = get_json(f"{lab.elasticsearch}/_cat/indices/logs-*?format=json&h=index,docs.count")
    names = {r["index"] for r in rows}
    today = datetime.now(UTC).date()
    for source in LOG_SOURCES:
        for day in (0, 10, 44):
            assert f"logs-{source}-{today - timedelta(days=day):%Y.%m.%d}" in names
    assert all(int(r["docs.count"]) > 0 for r in rows if r["index"] in names)
    repo = get_json(f"{lab.elasticsearch}/_snapshot/backup")
    assert repo["backup"]["type"] == "fs"


def test_grafana_double_has_the_readme_dashboards(lab: Lab) -> None:
    auth = (GRAFANA_USER, GRAFANA_PASSWORD)
    hits = get_json(f"{lab.grafana}/api/search?type=dash-db", auth=auth)
    uids = {h["uid"] for h in hits}
    assert {"email-service-overview", "system-resources"} <= uids
    dash = get_json(f"{lab.grafana}/api/dashboards/uid/email-service-overview", auth=auth)
    exprs = [t["expr"] for p in dash["dashboard"]["panels"] for t in p.get("targets", [])]
    assert exprs and all(e.strip() for e in exprs)
    assert dash["meta"]["folderUid"]
    sources = get_json(f"{lab.grafana}/api/datasources", auth=auth)
    assert any(s["type"] == "prometheus" for s in sources)


def test_up_twice_is_harmless_and_status_agrees(lab: Lab) -> None:
    """`up` on a running lab starts what is missing (the email-service the standing
    incident stopped) and touches nothing else."""
    env = {"OPSKIT_LAB_PORT_OFFSET": str(OFFSET), "PATH": "/usr/bin:/bin"}
    with server_state("email_service", running=True):

        def healthy() -> str | None:
            # every server healthy (status exits 0); a server of the lab's own traffic or
            # a worker may be between two health checks for a moment
            proc = subprocess.run(
                [sys.executable, str(LAB / "lab.py"), "status", "--json"],
                capture_output=True,
                text=True,
                env=env,
            )
            return proc.stdout if proc.returncode == 0 else None

        before = wait_for(healthy, timeout=60)
        assert before is not None, "the lab did not become healthy"
        _up_again(env, before)


def _up_again(env: dict[str, str], before: str) -> None:
    again = subprocess.run(
        [sys.executable, str(LAB / "lab.py"), "up", "--no-install"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    after = subprocess.run(
        [sys.executable, str(LAB / "lab.py"), "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert before == after  # same pids, all healthy
