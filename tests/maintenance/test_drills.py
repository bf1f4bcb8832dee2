"""The quarterly restore drills as maintenance tasks: registered, run against the lab,
published to the Pushgateway, and the lab rule that alerts when none succeeded for a
quarter (checked with promtool's rule unit tests)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from opskit.tasks.maintenance.framework import tasks_for
from tests.conftest import ROOT, Lab, get_json
from tests.es.conftest import create_index, delete_indices, es_request, index_names, path_repo
from tests.maintenance.conftest import Maint, problems, result

RULES = ROOT / "lab" / "config" / "alert_rules.yml"


def test_the_quarterly_list_has_the_drills_after_the_backup() -> None:
    names = [t.name for t in tasks_for("quarterly")]
    assert names[-2:] == ["drill_elasticsearch", "drill_grafana"]
    assert names.index("full_backup") < names.index("drill_elasticsearch")
    assert not any(t.destructive for t in tasks_for("quarterly") if t.name.startswith("drill_"))


def _success(lab: Lab, task: str) -> float | None:
    for g in get_json(f"{lab.pushgateway}/api/v1/metrics")["data"]:
        labels = g["labels"]
        if (labels.get("job"), labels.get("cadence"), labels.get("task")) == (
            "opskit",
            "quarterly",
            task,
        ):
            metric = g.get("opskit_task_last_success_timestamp_seconds")
            return float(metric["metrics"][0]["value"]) if metric else None
    return None


def test_drill_elasticsearch_runs_cleans_up_and_is_published(lab: Lab, maint: Maint) -> None:
    unique = uuid.uuid4().hex[:8]
    index = f"opskit-test-drillm-{unique}"
    repo = f"opskit-test-{unique}"
    prefix = "drill-"  # the task's: the run id keeps the copies of other runs apart
    create_index(lab, index, docs=3)
    env = {"OPSKIT_ELASTICSEARCH_SNAPSHOT_REPOSITORY": repo}
    try:
        es_request(lab, "PUT", f"/_snapshot/{repo}", {"type": "fs", "settings": {"location": repo}})
        answer = es_request(
            lab, "PUT", f"/_snapshot/{repo}/s1?wait_for_completion=true", {"indices": index}
        )
        assert answer["snapshot"]["state"] == "SUCCESS", answer

        dry = result(
            maint.report("quarterly", "--only", "drill_elasticsearch", "--dry-run", **env),
            "drill_elasticsearch",
        )
        assert dry["status"] == "pass" and "would restore" in dry["summary"]

        before = _success(lab, "drill_elasticsearch") or 0.0
        report = maint.report("quarterly", "--only", "drill_elasticsearch", **env)
        res = result(report, "drill_elasticsearch")
        assert res["status"] == "pass", problems(res)
        assert res["data"]["snapshot"] == "s1" and res["data"]["indices"] == {index: "ok"}
        assert res["data"]["cleaned"] == 1
        assert not index_names(lab, f"{prefix}{res['data']['run_id']}-*")
        assert "pushgateway: 1 task(s)" in report["published"]
        assert (_success(lab, "drill_elasticsearch") or 0.0) > before
    finally:
        delete_indices(lab, f"{index}*")
        es_request(lab, "DELETE", f"/_snapshot/{repo}/s1")
        es_request(lab, "DELETE", f"/_snapshot/{repo}")
        shutil.rmtree(path_repo(lab) / repo, ignore_errors=True)


def test_a_drill_that_cannot_run_is_skipped_with_the_reason(maint: Maint) -> None:
    report = maint.report("quarterly", "--only", "drill_grafana", OPSKIT_READ_ONLY="true")
    res = result(report, "drill_grafana")
    assert res["status"] == "skipped"
    assert "read-only" in res["summary"] and "scratch" in res["summary"]


RULE_TEST = """
rule_files:
  - {rules}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      # before the test's t=0: Elasticsearch's drill last succeeded 101 days ago,
      # Grafana's 99 days ago
      - series: '{metric}{{job="opskit",cadence="quarterly",task="drill_elasticsearch"}}'
        values: '-8726400+0x90'
      - series: '{metric}{{job="opskit",cadence="quarterly",task="drill_grafana"}}'
        values: '-8553600+0x90'
    alert_rule_test:
      - eval_time: 30m
        alertname: OpskitDrillNotRunning
        exp_alerts: []  # pending: for 1h
      - eval_time: 61m
        alertname: OpskitDrillNotRunning
        exp_alerts:
          - exp_labels:
              severity: warning
              task: drill_elasticsearch
            exp_annotations:
              summary: "opskit restore drill drill_elasticsearch has not succeeded for {age}"
"""


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus)")
def test_drill_not_running_rule_fires_after_a_quarter(tmp_path: Path) -> None:
    subprocess.run(["promtool", "check", "rules", str(RULES)], check=True, capture_output=True)
    test = tmp_path / "drill_rule_test.yml"
    metric = "opskit_task_last_success_timestamp_seconds"
    test.write_text(RULE_TEST.format(rules=RULES, metric=metric, age="101d 1h 1m 0s"))
    proc = subprocess.run(["promtool", "test", "rules", str(test)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scratch_names_are_recognised_and_only_old_ones_are_leftovers() -> None:
    from datetime import UTC, datetime, timedelta

    from opskit.tasks.drill import is_leftover, new_run_id, parse_scratch_index, scratch_index

    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    run = new_run_id(now)
    assert run.startswith("20260301t120000-") and len(run) == 20
    name = scratch_index("drill-", run, "logs-app-2026.02.28")
    assert name == f"drill-{run}-logs-app-2026.02.28"
    assert parse_scratch_index("drill-", name) == (run, "logs-app-2026.02.28")
    assert parse_scratch_index("drill-", "drill-manual-copy") is None
    assert parse_scratch_index("drill-", "logs-app") is None
    older = new_run_id(now - timedelta(hours=2))
    assert is_leftover(older, run, now) and not is_leftover(run, run, now)
    assert not is_leftover(new_run_id(now - timedelta(minutes=5)), run, now)
