"""A Grafana backup that meets one object Grafana fails to give (issue 15): it finishes
the rest, says in its manifest that it is incomplete and what is missing, exits 2, is
listed as incomplete, and a restore from it warns in its plan."""

from __future__ import annotations

import json
from pathlib import Path

from opskit.errors import EXIT_CRITICAL
from opskit.tasks.backup_store import is_complete, missing_objects, prune_plan
from tests.grafana.conftest import Grafana, admin, state
from tests.grafana.test_backup_restore import TOTAL, manifest

BROKEN = "gen-030"


def fail_always(grafana: Grafana, path: str) -> None:
    with admin(grafana.lab) as client:
        fault = {"path": path, "method": "GET", "status": 500, "count": 1000}
        client.post("/__lab/fault", json=fault).raise_for_status()


def clear_faults(grafana: Grafana) -> None:
    with admin(grafana.lab) as client:
        client.delete("/__lab/fault").raise_for_status()


def test_one_failing_dashboard_gives_an_incomplete_backup_that_says_so(
    grafana: Grafana, tmp_path: Path
) -> None:
    out = tmp_path / "backups"
    env = grafana.lab.env(OPSKIT_GRAFANA_RETRIES="0")
    fail_always(grafana, f"/api/dashboards/uid/{BROKEN}")
    proc = grafana.lab.opskit("backup", "grafana", "--out", str(out), "--json", env=env)
    clear_faults(grafana)
    assert proc.returncode == EXIT_CRITICAL, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result["complete"] is False and result["exit_code"] == EXIT_CRITICAL
    assert [(m["kind"], m["uid"]) for m in result["missing"]] == [("dashboard", BROKEN)]
    assert "HTTP 500" in result["missing"][0]["error"]
    assert result["missing"][0]["name"] == "Generated 030"
    assert result["counts"]["dashboards"] == TOTAL - 1  # the rest was finished

    meta = manifest(result["path"])
    assert meta["complete"] is False and meta["missing"] == result["missing"]
    assert not is_complete(meta) and missing_objects(meta) == result["missing"]
    written = {p.name for p in (Path(result["path"]) / "orgs" / "1" / "dashboards").iterdir()}
    assert len(written) == TOTAL - 1 and f"{BROKEN}.json" not in written

    # listed as a backup, marked incomplete; not among the interrupted leftovers
    listed = grafana.lab.opskit_json("backups", "list", "--dir", str(out))
    assert [b["name"] for b in listed["backups"]] == [result["name"]]
    assert listed["backups"][0]["complete"] is False
    assert listed["backups"][0]["missing"][0]["uid"] == BROKEN
    assert listed["incomplete"] == []
    proc = grafana.lab.opskit("backups", "list", "--dir", str(out))
    assert proc.returncode == 0 and "INCOMPLETE: 1 missing" in proc.stdout, proc.stdout
    assert BROKEN in proc.stderr

    # the restore plan says what is missing, and restores the rest
    grafana.wipe()
    code, plan, err = grafana.restore(result["path"], "--dry-run")
    assert code == 0, err
    assert plan["plan"]["backup_complete"] is False
    assert plan["plan"]["backup_missing"][0]["uid"] == BROKEN
    assert "incomplete" in err and BROKEN in err
    code, body, err = grafana.restore(result["path"], "--yes")
    assert code == 0, err
    assert body["counts"]["created"] == TOTAL - 1 and "incomplete" in err
    assert BROKEN not in state(grafana.lab)["dashboards"]


def test_a_failing_datasource_is_missing_and_human_output_names_it(
    grafana: Grafana, tmp_path: Path
) -> None:
    env = grafana.lab.env(OPSKIT_GRAFANA_RETRIES="0")
    fail_always(grafana, "/api/datasources/uid/prometheus")
    proc = grafana.lab.opskit("backup", "grafana", "--out", str(tmp_path), env=env)
    clear_faults(grafana)
    assert proc.returncode == EXIT_CRITICAL, proc.stderr
    assert "INCOMPLETE" in proc.stdout
    assert "missing: datasource prometheus" in proc.stderr and "HTTP 500" in proc.stderr
    (path,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    meta = manifest(path)
    assert meta["counts"]["datasources"] == 0 and meta["counts"]["dashboards"] == TOTAL
    assert [m["kind"] for m in meta["missing"]] == ["datasource"]


def test_complete_backup_says_complete_and_prune_keeps_the_newest_complete(
    grafana: Grafana, tmp_path: Path
) -> None:
    out = tmp_path / "backups"
    good = grafana.backup(out=out)
    assert good["complete"] is True and good["missing"] == [] and good["exit_code"] == 0
    assert manifest(good["path"])["complete"] is True
    env = grafana.lab.env(OPSKIT_GRAFANA_RETRIES="0")
    fail_always(grafana, f"/api/dashboards/uid/{BROKEN}")
    proc = grafana.lab.opskit("backup", "grafana", "--out", str(out), "--json", env=env)
    clear_faults(grafana)
    assert proc.returncode == EXIT_CRITICAL, proc.stderr
    bad = json.loads(proc.stdout)
    # keeping the newest one only would leave nothing but a backup that lacks a dashboard
    plan = prune_plan(out, 1)
    assert plan.keep == [good["name"], bad["name"]] and plan.delete == []
    assert "newest complete" in plan.kept()[0].reason
