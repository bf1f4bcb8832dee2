"""`opskit export grafana DIR`: the monitoring README's provisioning layout, stable to the
byte, dashboards with the same title in different folders kept apart, renames followed,
stale files only reported unless --prune, data source secrets never written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.conftest import Lab
from tests.grafana.conftest import Grafana, admin, save

DASH = "grafana/dashboards"


def export(lab: Lab, directory: Path, *args: str) -> tuple[int, Any]:
    proc = lab.opskit("export", "grafana", str(directory), *args, "--json")
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """relpath -> (sha256, mtime_ns) of every file."""
    return {
        p.relative_to(directory).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_layout_stable_renames_and_prune(grafana: Grafana, lab: Lab, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    code, body = export(lab, repo)
    assert code == 0, body
    files = snapshot(repo)
    dashboards = [f for f in files if f.startswith(DASH)]
    assert len(dashboards) == 64  # 60 generated + 2 same-title + the README's 2
    # the README's dashboards, as its "save to grafana/dashboards/" names them
    assert f"{DASH}/Email Client/email-service-overview.json" in files
    # nested folders as nested directories; the same title in two folders: two files
    assert f"{DASH}/Team/Services/Mail/same-title.json" in files
    assert f"{DASH}/Other/same-title.json" in files
    assert f"{DASH}/generated-000.json" in files  # the root (General)
    assert "grafana/provisioning/dashboards/opskit.yml" in files
    assert "grafana/provisioning/datasources/datasources.yml" in files

    raw = (repo / DASH / "Other/same-title.json").read_text()
    model = json.loads(raw)
    assert model["uid"] == "same-b"
    assert "id" not in model and "version" not in model and "iteration" not in model
    assert raw == json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    provider = (repo / "grafana/provisioning/dashboards/opskit.yml").read_text()
    assert "foldersFromFilesStructure: true" in provider

    # an unchanged Grafana: not one byte, not one mtime changes; a backup exports the same
    code, again = export(lab, repo)
    assert code == 0 and again["written"] == [] and len(again["unchanged"]) == len(files)
    assert snapshot(repo) == files
    backup = grafana.lab.opskit("backup", "grafana", "--out", str(tmp_path / "b"), "--json")
    assert backup.returncode in (0, 1), backup.stderr
    code, from_backup = export(lab, repo, "--from", json.loads(backup.stdout)["path"])
    assert code == 0 and from_backup["written"] == [] and snapshot(repo) == files

    # a rename moves the file; a deleted dashboard's file is reported, kept, then pruned
    with admin(lab) as client:
        got = client.get("/api/dashboards/uid/gen-001").raise_for_status().json()
        got["dashboard"]["title"] = "Renamed One"
        save(client, got["dashboard"], got["meta"]["folderUid"])
        client.delete("/api/dashboards/uid/gen-002").raise_for_status()
    old = f"{DASH}/Team/generated-001.json"
    assert old in files
    code, body = export(lab, repo)
    assert body["written"] == [f"{DASH}/Team/renamed-one.json"]
    assert body["renamed"] == {old: f"{DASH}/Team/renamed-one.json"}
    gone = f"{DASH}/Team/Services/generated-002.json"
    assert body["stale"] == [gone] and (repo / gone).exists() and not (repo / old).exists()
    code, body = export(lab, repo, "--prune", "--dry-run")
    assert body["removed"] == [gone] and (repo / gone).exists()
    code, body = export(lab, repo, "--prune")
    assert body["removed"] == [gone] and not (repo / gone).exists()
    changed = {k for k, v in snapshot(repo).items() if files.get(k) != v}
    assert changed == {f"{DASH}/Team/renamed-one.json"}


def test_datasource_secrets_are_references(grafana: Grafana, lab: Lab, tmp_path: Path) -> None:
    with admin(lab) as client:
        client.post(
            "/api/datasources",
            json={
                "name": "Logs ES", "uid": "logs-es", "type": "elasticsearch", "access": "proxy",
                "url": "http://es:9200", "basicAuth": True, "basicAuthUser": "elastic",
                "jsonData": {"index": "logs-*", "timeField": "@timestamp"},
                "secureJsonData": {"basicAuthPassword": "s3cret-value"},
            },
        ).raise_for_status()  # fmt: skip
    code, body = export(lab, tmp_path, "--folder", "t-other")
    assert code == 0
    written = [f for f in body["written"] if f.startswith(DASH)]
    assert f"{DASH}/Other/same-title.json" in written and len(written) == 13
    assert all(f.startswith(f"{DASH}/Other/") for f in written)  # that folder only
    text = (tmp_path / "grafana/provisioning/datasources/datasources.yml").read_text()
    assert "s3cret-value" not in text
    assert 'basicAuthPassword: "$GRAFANA_DS_LOGS_ES_BASIC_AUTH_PASSWORD"' in text
    assert text.startswith("# Written by") and "\napiVersion: 1\ndatasources:\n" in text
    assert 'name: "Logs ES"' in text and 'index: "logs-*"' in text
