"""A maintenance run as a whole: exit codes, reports, history, Pushgateway metrics,
Alertmanager alerts, the lock, and import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from opskit.errors import EXIT_USAGE
from tests.conftest import ROOT, Lab, get_json
from tests.maintenance.conftest import Maint, result


def _group(lab: Lab, cadence: str, task: str) -> dict[str, float]:
    for g in get_json(f"{lab.pushgateway}/api/v1/metrics")["data"]:
        labels = g["labels"]
        if (labels.get("job"), labels.get("cadence"), labels.get("task")) == (
            "opskit",
            cadence,
            task,
        ):
            return {
                k: float(v["metrics"][0]["value"])
                for k, v in g.items()
                if k.startswith("opskit_task_")
            }
    return {}


def test_outcome_is_published_and_a_failure_keeps_the_last_success(lab: Lab, maint: Maint) -> None:
    report = maint.report("quarterly", "--only", "versions")
    assert report["exit_code"] == 0 and "pushgateway: 1 task(s)" in report["published"]
    first = _group(lab, "quarterly", "versions")
    assert first["opskit_task_status"] == 0
    success = first["opskit_task_last_success_timestamp_seconds"]
    assert success == first["opskit_task_last_run_timestamp_seconds"]

    # Elasticsearch unreachable: the task is `unreachable`, exit 3, the success stays
    report = maint.report(
        "quarterly", "--only", "versions", OPSKIT_ELASTICSEARCH_URL="http://127.0.0.1:9"
    )
    assert report["exit_code"] == 3
    assert result(report, "versions")["status"] == "unreachable"
    after = _group(lab, "quarterly", "versions")
    assert after["opskit_task_status"] == 3
    assert after["opskit_task_last_success_timestamp_seconds"] == success
    assert after["opskit_task_last_run_timestamp_seconds"] > success


def test_an_unreachable_backend_does_not_stop_the_other_tasks(maint: Maint) -> None:
    report = maint.report("weekly", OPSKIT_GRAFANA_URL="http://127.0.0.1:9")
    statuses = {r["task"]: r["status"] for r in report["results"]}
    assert statuses["dashboards"] == "unreachable"
    assert statuses["log_ingestion"] == "pass"
    assert statuses["alert_patterns"] in ("pass", "warn")
    assert report["exit_code"] == 3


def test_failures_are_posted_to_alertmanager_and_resolved(lab: Lab, maint: Maint) -> None:
    maint.configure('[maintenance]\nalert_on_failure = true\nmin_versions = { grafana = "99" }\n')
    maint.report("quarterly", "--only", "versions")
    alerts = get_json(
        f"{lab.alertmanager}/api/v2/alerts?filter=alertname%3DOpskitMaintenanceFailed"
    )
    mine = [a for a in alerts if a["labels"]["task"] == "versions"]
    # a warning is not a failure: posted, but already resolved (not active)
    assert not mine
    maint.report("quarterly", "--only", "versions", OPSKIT_ELASTICSEARCH_URL="http://127.0.0.1:9")
    alerts = get_json(
        f"{lab.alertmanager}/api/v2/alerts?filter=alertname%3DOpskitMaintenanceFailed"
    )
    mine = [a for a in alerts if a["labels"]["task"] == "versions"]
    assert mine and mine[0]["labels"]["severity"] == "warning"  # unreachable
    maint.report("quarterly", "--only", "versions")  # passes again: resolved
    alerts = get_json(
        f"{lab.alertmanager}/api/v2/alerts?filter=alertname%3DOpskitMaintenanceFailed"
    )
    assert not [a for a in alerts if a["labels"]["task"] == "versions"]


def test_reports_by_suffix_history_and_list(maint: Maint, tmp_path: Path) -> None:
    for suffix in ("md", "html", "json"):
        out = tmp_path / f"report.{suffix}"
        proc = maint.run("maintenance", "quarterly", "--only", "versions", "--report", str(out))
        assert proc.returncode == 0, proc.stderr
        text = out.read_text()
        assert "versions" in text
        if suffix == "json":
            assert json.loads(text)["cadence"] == "quarterly"
        elif suffix == "html":
            assert text.startswith("<!doctype html>")
        else:
            assert text.startswith("# opskit quarterly maintenance")
    proc = maint.run("maintenance", "weekly", "--report", str(tmp_path / "r.pdf"))
    assert proc.returncode == EXIT_USAGE and "unknown suffix '.pdf'" in proc.stderr
    assert "Traceback" not in proc.stderr
    stored = list((maint.state / "opskit" / "reports" / "quarterly").glob("*.json"))
    assert len(stored) == 3

    proc = maint.run("maintenance", "list", "--json")
    rows = {(r["cadence"], r["task"]): r for r in json.loads(proc.stdout)}
    assert rows[("quarterly", "versions")]["last_status"] == "pass"
    assert rows[("weekly", "dashboards")]["last_run"] is None
    assert rows[("weekly", "alert_patterns")]["cron"] == "0 6 * * 1"
    proc = maint.run("maintenance", "list")
    assert "versions" in proc.stdout and "never" in proc.stdout


def test_unknown_task_is_one_line(maint: Maint) -> None:
    proc = maint.run("maintenance", "weekly", "--only", "nope")
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr.strip().count("\n") == 0 and "unknown task 'nope'" in proc.stderr


def test_dry_run_is_not_published_nor_kept(maint: Maint) -> None:
    report = maint.report("quarterly", "--only", "versions", "--dry-run")
    assert report["published"] is None and report["dry_run"] is True
    assert not (maint.state / "opskit" / "reports").exists()


def test_a_second_run_refuses_while_the_lock_is_held(maint: Maint) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\nfrom tasks.locking import exclusive\n"
            "with exclusive(Path(sys.argv[1]), 'test'):\n print('held', flush=True)\n"
            " time.sleep(30)\n",
            str(maint.state / "opskit" / "maintenance.lock"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        proc = maint.run("maintenance", "quarterly", "--only", "versions", "--wait", "0.5")
        assert proc.returncode == 75
        assert "another opskit maintenance run is running" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    proc = maint.run("maintenance", "quarterly", "--only", "versions")
    assert proc.returncode == 0, proc.stderr


def test_cron_paths_never_import_textual(maint: Maint) -> None:
    code = (
        "import sys\n"
        "from opskit.cli import cli\n"
        "for args in (['maintenance', 'weekly', '--dry-run', '--only', 'disk_usage'],\n"
        "             ['maintenance', 'list'], ['schedule', 'crontab'], ['schedule', 'systemd']):\n"
        "    cli.main(args=args, prog_name='opskit', standalone_mode=False)\n"
        "import opskit.tasks.maintenance.runner, opskit.tasks.scheduler\n"
        "from opskit.tasks.maintenance.framework import tasks_for\n"
        "for c in ('weekly', 'monthly', 'quarterly'): tasks_for(c)\n"
        "print('TEXTUAL', any(m == 'textual' or m.startswith('textual.') for m in sys.modules))\n"
    )
    env = {**maint.env(), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "TEXTUAL False"
