"""`opskit drill grafana` against the lab's Grafana double: a fresh backup restored into a
scratch organisation, compared with the backup, and the organisation deleted again."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import GRAFANA_TOKEN, Lab
from tests.grafana.conftest import FOLDERS, GENERATED, Grafana, admin


def orgs(lab: Lab) -> dict[str, int]:
    with admin(lab) as client:
        return {o["name"]: o["id"] for o in client.get("/api/orgs").raise_for_status().json()}


def drill(lab: Lab, path: str, codes: tuple[int, ...] = (0,), **env: str) -> dict[str, Any]:
    proc = lab.opskit("drill", "grafana", "--backup", path, "--json", env=lab.env(**env))
    assert proc.returncode in codes, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    assert report["exit_code"] == proc.returncode
    return report


def test_drill_of_a_fresh_backup_passes_and_the_scratch_org_is_gone(grafana: Grafana) -> None:
    backup = grafana.backup()
    before = orgs(grafana.lab)

    report = drill(grafana.lab, backup["path"])
    assert report["status"] == "pass", report["findings"]
    assert report["org"].startswith("opskit-drill-") and report["org_id"] not in before.values()
    counts = backup["counts"]
    assert counts["dashboards"] >= GENERATED and counts["folders"] >= len(FOLDERS)
    assert report["compared"] == {
        "folders": {"ok": counts["folders"], "differs": 0},
        "dashboards": {"ok": counts["dashboards"], "differs": 0},
        "datasources": {"ok": counts["datasources"], "differs": 0},
    }
    assert report["org_deleted"] is True
    assert orgs(grafana.lab) == before  # the scratch org is gone, nothing else changed


def test_a_dashboard_that_does_not_restore_fails_the_drill(grafana: Grafana) -> None:
    backup = grafana.backup()
    with admin(grafana.lab) as client:
        fault = {"path": "/api/dashboards/db", "method": "POST", "status": 500, "count": 1}
        client.post("/__lab/fault", json=fault).raise_for_status()

    report = drill(grafana.lab, backup["path"], codes=(2,))
    assert report["status"] == "fail"
    assert report["compared"]["dashboards"]["differs"] == 1
    failed = [f for f in report["findings"] if f["severity"] == "critical"]
    assert any("not found in the scratch organisation" in f["summary"] for f in failed), failed
    assert report["org_deleted"] is True
    assert not [n for n in orgs(grafana.lab) if n.startswith("opskit-drill-")]


def test_a_killed_runs_org_is_removed_and_a_token_is_skipped(grafana: Grafana) -> None:
    backup = grafana.backup()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%dt%H%M%S")
    leftover = f"opskit-drill-{yesterday}-beef"
    with admin(grafana.lab) as client:
        client.post("/api/orgs", json={"name": leftover}).raise_for_status()

    report = drill(grafana.lab, backup["path"])
    assert report["removed_leftovers"] == [leftover]
    assert not [n for n in orgs(grafana.lab) if n.startswith("opskit-drill-")]

    # a service-account token cannot create organisations: skipped, with the reason
    # (the token wins over the user and password the lab's environment also has)
    report = drill(grafana.lab, backup["path"], codes=(1,), OPSKIT_GRAFANA_TOKEN=GRAFANA_TOKEN)
    assert report["status"] == "skipped"
    assert "cannot create organisations" in report["skipped"]
    assert report["org_id"] is None
