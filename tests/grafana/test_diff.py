"""`opskit diff grafana`: the live double against a backup; exit 0 when nothing differs,
1 when something does, naming exactly what (down to the panel's field)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opskit.tasks.grafana_archive import write_archive
from tests.conftest import Lab
from tests.grafana.conftest import Grafana, admin, model, save


def backup(lab: Lab, out: Path) -> Path:
    proc = lab.opskit("backup", "grafana", "--out", str(out), "--json")
    assert proc.returncode in (0, 1), proc.stderr  # 1: kinds this double lacks, skipped
    return Path(json.loads(proc.stdout)["path"])


def diff(lab: Lab, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    proc = lab.opskit("diff", "grafana", *args, "--json", env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def dashboards(body: Any) -> dict[str, Any]:
    (org,) = body["orgs"]
    kinds: dict[str, Any] = org["kinds"]
    return kinds["dashboards"]


def test_nothing_then_exactly_one_panel_title(grafana: Grafana, lab: Lab, tmp_path: Path) -> None:
    path = backup(lab, tmp_path)
    code, body, _ = diff(lab, str(path))
    assert (code, body["differs"]) == (0, False), body
    assert dashboards(body)["unchanged"] == 64

    with admin(lab) as client:
        got = client.get("/api/dashboards/uid/gen-003").raise_for_status().json()
        got["dashboard"]["panels"][1]["title"] = "renamed by the test"
        save(client, got["dashboard"], got["meta"]["folderUid"])
    code, body, _ = diff(lab, str(path))
    assert code == 1 and body["differs"] is True
    d = dashboards(body)
    (changed,) = d["changed"]
    assert changed["key"] == "gen-003"
    assert changed["fields"] == [
        {"path": "panels[id=2].title", "change": "changed", "before": "panel 1",
         "after": "renamed by the test"}
    ]  # fmt: skip
    assert changed["panels"] == [
        {"id": 2, "title": "renamed by the test", "change": "changed", "fields": ["title"]}
    ]
    assert body["counts"]["changed"] == 1 and not d["added"] and not d["removed"]

    # the same from the single-file form, and for people
    archive = write_archive(path)
    code, from_archive, _ = diff(lab, str(archive))
    assert code == 1 and dashboards(from_archive)["changed"] == d["changed"]
    proc = lab.opskit("diff", "grafana", str(archive))
    assert proc.returncode == 1
    assert 'panels[id=2].title: "panel 1" -> "renamed by the test"' in proc.stdout


def test_added_and_removed_against_the_latest(grafana: Grafana, lab: Lab, tmp_path: Path) -> None:
    env = lab.env(XDG_DATA_HOME=str(tmp_path / "data"))
    proc = lab.opskit("backup", "grafana", "--json", env=env)  # into the default directory
    assert proc.returncode in (0, 1), proc.stderr
    with admin(lab) as client:
        client.delete("/api/dashboards/uid/gen-010").raise_for_status()
        save(client, model("brand-new", "Brand New"), "t-other")
        client.post("/api/folders", json={"uid": "new-f", "title": "New Folder"})
    code, body, _ = diff(lab, env=env)  # no BACKUP: the latest
    assert code == 1
    assert body["backup"] == json.loads(proc.stdout)["path"]
    d = dashboards(body)
    assert [a["key"] for a in d["added"]] == ["brand-new"]
    assert d["removed"] == [{"key": "gen-010", "name": "Generated 010"}]
    assert not d["changed"]
    (org,) = body["orgs"]
    assert [a["key"] for a in org["kinds"]["folders"]["added"]] == ["new-f"]
    assert body["counts"] == {**body["counts"], "added": 2, "removed": 1, "changed": 0}
