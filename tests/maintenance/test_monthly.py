"""The monthly tasks against the lab."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Lab, get_json
from tests.maintenance.conftest import Maint, problems, result
from tests.maintenance.test_weekly import delete_indices, make_index


def test_threshold_review_finds_the_flapping_alert(maint: Maint) -> None:
    res = result(maint.report("monthly", "--only", "alert_thresholds"), "alert_thresholds")
    found = problems(res)
    assert any(p.startswith("HighRequestLatency: flapping") for p in found), found
    rules = {r["rule"]: r for r in res["data"]["rules"]}
    assert rules["HighRequestLatency"]["firings"] >= 40
    assert rules["OutOfMemory"]["op"] == "<" and rules["OutOfMemory"]["threshold"] == 5
    never = {f["subject"] for f in res["findings"] if f["summary"].startswith("never fired")}
    assert "OutOfMemory" in never  # nothing in the lab or the tests provokes it
    # "never fired" agrees with Prometheus' ALERTS (other tests stop a Celery worker, so
    # whether CeleryWorkerOffline fired in the window depends on their timing)
    assert all(rules[name]["firings"] == 0 for name in never), never
    assert len(never) >= 2, never

    maint.configure("[maintenance]\nflapping_episodes = 1000\n")
    res = result(maint.report("monthly", "--only", "alert_thresholds"), "alert_thresholds")
    assert not any("flapping" in p for p in problems(res))


def test_performance_against_baselines_and_absent_metrics(maint: Maint) -> None:
    maint.configure(
        "[baselines.latency_p50]\nenabled = false\n"
        "[baselines.latency_p95]\nenabled = false\n[baselines.latency_p99]\nenabled = false\n"
        "[baselines.error_rate]\nenabled = false\n[baselines.queue_depth]\nenabled = false\n"
        "[baselines.db_query_time]\nenabled = false\n[baselines.cache_hit_rate]\nenabled = false\n"
        '[baselines.targets_up]\nquery = "min(up{job=\\"prometheus\\"})"\nexpected = 1\n'
        "higher_is_better = true\n"
        '[baselines.absent]\nquery = "avg(opskit_test_no_such_metric)"\nexpected = 1\n'
    )
    res = result(maint.report("monthly", "--only", "performance"), "performance")
    assert res["status"] == "warn"
    assert problems(res) == ["absent: no data: avg(opskit_test_no_such_metric) returned nothing"]
    assert res["data"]["baselines"]["targets_up"]["value"] == 1


def test_default_baselines_read_the_backfilled_latency(maint: Maint) -> None:
    res = result(maint.report("monthly", "--only", "performance"), "performance")
    rows = res["data"]["baselines"]
    assert 0.05 < rows["latency_p50"]["value"] < 0.2
    assert "prometheus-flask-exporter" in rows["latency_p50"]["exporter"]
    assert "flask_http_request_duration_seconds_bucket" in rows["latency_p99"]["query"]
    # redis_exporter's keyspace counters, backfilled at a 93 % hit rate and live since
    assert 0.3 < rows["cache_hit_rate"]["value"] <= 1


def test_archive_logs_plans_in_dry_run_and_acts_after_a_verified_snapshot(
    lab: Lab, maint: Maint, unique: str
) -> None:
    prefix = f"opskit-test-archive-{unique}"
    old = datetime.now(UTC).date() - timedelta(days=40)
    young = datetime.now(UTC).date() - timedelta(days=1)
    maint.configure(
        f'[[retention]]\nname = "test"\npattern = "{prefix}-*"\nkeep = "30d"\n'
        "snapshot_first = true\n"
    )
    names = [f"{prefix}-{old:%Y.%m.%d}", f"{prefix}-{young:%Y.%m.%d}"]
    try:
        for name in names:
            make_index(lab, name, 3)
        res = result(maint.report("monthly", "--only", "archive_logs", "--dry-run"), "archive_logs")
        assert res["data"]["planned"] == {"test": [names[0]]}
        assert get_json(f"{lab.elasticsearch}/_cat/indices/{prefix}-*?format=json&h=index")

        # no --yes and no terminal: planned, not applied, and said so
        res = result(maint.report("monthly", "--only", "archive_logs"), "archive_logs")
        assert res["status"] == "warn" and "not applied" in problems(res)[0]
        left = get_json(f"{lab.elasticsearch}/_cat/indices/{prefix}-*?format=json&h=index")
        assert len(left) == 2

        res = result(maint.report("monthly", "--only", "archive_logs", "--yes"), "archive_logs")
        assert res["status"] == "pass", problems(res)
        assert res["data"]["done"] == {"test": [names[0]]}
        left = get_json(f"{lab.elasticsearch}/_cat/indices/{prefix}-*?format=json&h=index")
        assert [r["index"] for r in left] == [names[1]]
        snaps = get_json(f"{lab.elasticsearch}/_snapshot/backup/retention-test-*")["snapshots"]
        assert any(names[0] in s["indices"] and s["state"] == "SUCCESS" for s in snaps)
    finally:
        delete_indices(lab, f"{prefix}-*")
        for s in get_json(f"{lab.elasticsearch}/_snapshot/backup/_all")["snapshots"]:
            if any(i.startswith(prefix) for i in s["indices"]):
                get_json(f"{lab.elasticsearch}/_snapshot/backup/{s['snapshot']}", method="DELETE")


def test_prometheus_retention_review_reads_the_lab(maint: Maint) -> None:
    res = result(maint.report("monthly", "--only", "prometheus_retention"), "prometheus_retention")
    assert res["status"] in ("pass", "warn")
    report = res["data"]["report"]
    assert report["flag_retention_time"] == "60d"  # the lab's flag
    assert report["retention_time"] in ("60d", "8w4d")  # runtimeinfo's spelling of it
    assert any("flag: 60d" in f["summary"] for f in res["findings"]), res["findings"]
