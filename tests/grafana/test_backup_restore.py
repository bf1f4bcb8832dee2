"""`opskit backup grafana`, `opskit restore grafana`, `opskit backups`, against the lab's
Grafana double (real HTTP, real files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from opskit.errors import EXIT_DATA, EXIT_DECLINED, EXIT_USAGE
from tests.conftest import ROOT, Lab
from tests.grafana.conftest import GENERATED, Grafana, admin, model, on_terminal, save, state

VIEWER_TOKEN = "glsa_opskitLabViewerToken_0123456789"  # lab/lab.py GRAFANA_VIEWER_TOKEN
TOTAL = GENERATED + 4  # generated + two same-title + the demo seed's two


def manifest(path: str | Path) -> dict:  # type: ignore[type-arg]
    return json.loads((Path(path) / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_backup_wipe_restore_gives_back_everything(grafana: Grafana) -> None:
    before = state(grafana.lab)
    assert len(before["dashboards"]) == TOTAL
    result = grafana.backup()
    counts = result["counts"]
    assert (counts["folders"], counts["dashboards"], counts["datasources"]) == (5, TOTAL, 1)
    meta = manifest(result["path"])
    assert meta["format"] == "opskit-grafana-backup/2"
    assert meta["grafana"]["version"] == "11.2.0" and meta["secrets_included"] is False
    assert "never returns data source secrets" in meta["notes"][0]
    assert [o["id"] for o in meta["orgs"]] == [1]
    dashboards = [f for f in meta["files"] if f.startswith("orgs/1/dashboards/")]
    assert len(dashboards) == TOTAL
    org_dir = Path(result["path"]) / "orgs" / "1"
    folders = json.loads((org_dir / "folders.json").read_text())
    leaf = next(f for f in folders if f["uid"] == "t-leaf")
    assert (leaf["title"], leaf["parentUid"]) == ("Mail", "t-mid")
    order = [f["uid"] for f in folders]
    assert order.index("t-top") < order.index("t-mid") < order.index("t-leaf")

    grafana.wipe()
    code, body, err = grafana.restore(result["path"], "--yes")
    assert code == 0, err
    assert body["counts"] == {
        "created": TOTAL, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 0
    }  # fmt: skip
    written = sum(c["created"] + c["updated"] for c in body["kinds"].values())
    assert body["verified"] == written and written > TOTAL  # every kind, read back
    assert body["folders"]["created"] == 5 and body["datasources"]["created"] == 1
    after = state(grafana.lab)
    assert after == before
    assert after["dashboards"]["same-a"][1] == "t-leaf"
    assert after["dashboards"]["same-b"][1] == "t-other"
    with admin(grafana.lab) as client:
        ds = client.get("/api/datasources/uid/prometheus").json()
    assert ds["url"] and ds["isDefault"] is True

    # Restoring again changes nothing: everything is equal.
    code, body, _ = grafana.restore(result["path"], "--yes")
    assert code == 0 and body["counts"]["unchanged"] == TOTAL and body["verified"] == 0


def test_backup_pages_through_search(grafana: Grafana) -> None:
    with admin(grafana.lab) as client:
        before = client.get("/__lab/stats").json()
    result = grafana.backup("--page-size", "7")
    with admin(grafana.lab) as client:
        after = client.get("/__lab/stats").json()
    assert result["counts"]["dashboards"] == TOTAL
    searches = after["GET ^/api/search$"] - before.get("GET ^/api/search$", 0)
    assert searches == TOTAL // 7 + 1
    names = {p.name for p in (Path(result["path"]) / "orgs" / "1" / "dashboards").iterdir()}
    assert len(names) == TOTAL and "gen-059.json" in names


def test_changed_dashboards_skipped_without_overwrite_replaced_with_it(grafana: Grafana) -> None:
    before = state(grafana.lab)
    path = grafana.backup()["path"]
    with admin(grafana.lab) as client:
        for uid in ("gen-001", "gen-002", "same-a"):
            changed = model(uid, f"Changed {uid}", 1)
            save(client, changed, None)
        for uid in ("gen-010", "gen-011"):
            client.delete(f"/api/dashboards/uid/{uid}").raise_for_status()
    changed_state = state(grafana.lab)

    code, plan, _ = grafana.restore(path, "--dry-run")
    assert code == 0 and plan["dry_run"] is True
    actions = {d["uid"]: d["action"] for d in plan["plan"]["dashboards"]}
    assert actions["gen-001"] == "conflict" and actions["gen-010"] == "create"
    assert state(grafana.lab) == changed_state  # a dry run writes nothing

    code, body, err = grafana.restore(path, "--yes")
    assert code == 1, err
    assert body["counts"] == {
        "created": 2, "updated": 0, "unchanged": TOTAL - 5, "skipped": 3, "failed": 0
    }  # fmt: skip
    now = state(grafana.lab)
    assert now["dashboards"]["gen-001"] == changed_state["dashboards"]["gen-001"]
    assert now["dashboards"]["gen-010"] == before["dashboards"]["gen-010"]

    code, body, err = grafana.restore(path, "--yes", "--overwrite")
    assert code == 0, err
    assert body["counts"]["updated"] == 3 and body["counts"]["unchanged"] == TOTAL - 3
    assert body["verified"] == 3
    assert state(grafana.lab) == before


def test_restore_asks_and_a_no_writes_nothing(grafana: Grafana) -> None:
    path = grafana.backup()["path"]
    grafana.wipe()
    proc = on_terminal(grafana.lab, "restore", "grafana", path, answer="n\n")
    assert proc.returncode == EXIT_DECLINED, proc.stderr
    assert "Grafana restore into" in proc.stderr and "nothing changed" in proc.stderr
    assert "64 to create" in " ".join(proc.stdout.split())
    assert state(grafana.lab) == {"folders": {}, "dashboards": {}}


def test_restore_without_a_terminal_or_yes_refuses(grafana: Grafana) -> None:
    path = grafana.backup()["path"]
    grafana.wipe()
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", "restore", "grafana", path],
        env=grafana.lab.env(), input="y\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE and "--yes" in proc.stderr, proc.stderr
    assert "64 to create" in " ".join(proc.stdout.split())  # the plan is shown first
    assert state(grafana.lab) == {"folders": {}, "dashboards": {}}


def test_corrupted_file_stops_before_anything_is_written(grafana: Grafana) -> None:
    path = Path(grafana.backup()["path"])
    target = path / "orgs" / "1" / "dashboards" / "gen-030.json"
    target.write_text(target.read_text().replace("Generated 030", "Generated 03O"))
    grafana.wipe()
    with admin(grafana.lab) as client:
        before = client.get("/__lab/stats").json()["total"]
    code, body, err = grafana.restore(str(path), "--yes")
    assert code == EXIT_DATA and body is None
    assert (
        "orgs/1/dashboards/gen-030.json: sha256 mismatch" in err and "nothing was restored" in err
    )
    with admin(grafana.lab) as client:
        assert client.get("/__lab/stats").json()["total"] == before  # not one request
    assert state(grafana.lab) == {"folders": {}, "dashboards": {}}


def test_killed_backup_leaves_no_complete_backup(grafana: Grafana, tmp_path: Path) -> None:
    out = tmp_path / "backups"
    earlier = Path(grafana.backup(out=out)["path"])
    earlier_manifest = manifest(earlier)
    with admin(grafana.lab) as client:
        fault = {"path": "/api/dashboards/uid/", "method": "GET", "delayMs": 400, "count": 1000}
        client.post("/__lab/fault", json=fault).raise_for_status()
    proc = subprocess.Popen(
        [sys.executable, "-m", "opskit", "backup", "grafana", "--out", str(out)],
        env=grafana.lab.env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        partial: list[Path] = []
        while time.monotonic() < deadline:
            partial = [p for p in out.glob(".grafana-*.partial-*") if list(p.glob("orgs/*/*"))]
            if partial:
                break
            time.sleep(0.05)
        assert partial, "the backup never started writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert [p for p in out.iterdir() if not p.name.startswith(".")] == [earlier]
    assert not (partial[0] / "manifest.json").exists()
    with admin(grafana.lab) as client:
        client.delete("/__lab/fault").raise_for_status()

    listed = grafana.lab.opskit_json("backups", "list", "--dir", str(out))
    assert [b["name"] for b in listed["backups"]] == [earlier.name]
    assert listed["incomplete"] == [str(partial[0])]
    assert manifest(earlier) == earlier_manifest
    code, _body, err = grafana.restore(str(earlier), "--dry-run")  # checksums verified
    assert code == 0, err


def test_wrong_password_is_401_and_viewer_token_is_403(grafana: Grafana) -> None:
    env = grafana.lab.env(GRAFANA_PASSWORD="s3cr3t-Wrong-pw")
    proc = grafana.lab.opskit("backup", "grafana", "--out", str(grafana.tmp), env=env)
    assert proc.returncode == 4
    assert "401" in proc.stderr and "basic auth as user 'admin'" in proc.stderr
    assert "s3cr3t" not in proc.stderr
    assert list(grafana.tmp.iterdir()) == []

    path = grafana.backup()["path"]
    viewer = grafana.lab.env(OPSKIT_GRAFANA_TOKEN=VIEWER_TOKEN)
    viewer.pop("GRAFANA_USER")
    viewer.pop("GRAFANA_PASSWORD")
    grafana.wipe()
    code, _, err = grafana.restore(path, "--yes", env=viewer)
    assert code == 4 and "403" in err and "service-account token" in err
    assert VIEWER_TOKEN not in err
    assert state(grafana.lab) == {"folders": {}, "dashboards": {}}


def test_org_id_restores_into_another_org(grafana: Grafana) -> None:
    with admin(grafana.lab) as client:
        org_id = client.post("/api/orgs", json={"name": "opskit-test-org"}).json()["orgId"]
    main = state(grafana.lab)
    path = grafana.backup()["path"]
    code, body, err = grafana.restore(path, "--yes", "--org-id", str(org_id))
    assert code == 0, err
    assert body["counts"]["created"] == TOTAL
    assert state(grafana.lab, org_id) == main
    assert state(grafana.lab) == main  # org 1 untouched
    other = grafana.backup("--org-id", str(org_id))
    assert manifest(other["path"])["grafana"]["org"] == {"id": org_id, "name": "opskit-test-org"}


def test_folder_map_moves_a_tree(grafana: Grafana) -> None:
    path = grafana.backup()["path"]
    grafana.wipe()
    with admin(grafana.lab) as client:
        client.post("/api/folders", json={"uid": "restored", "title": "Restored"})
    code, _body, err = grafana.restore(path, "--yes", "--folder-map", "t-top=restored")
    assert code == 0, err
    now = state(grafana.lab)
    assert "t-top" not in now["folders"]
    assert now["folders"]["t-mid"] == ("Services", "restored")
    assert now["dashboards"]["gen-001"][1] == "restored"  # gen-001 was in t-top
    code, _, err = grafana.restore(path, "--dry-run", "--folder-map", "t-top=nowhere")
    assert code == EXIT_USAGE and "nowhere" in err


def test_backups_list_and_prune(grafana: Grafana, tmp_path: Path) -> None:
    out = tmp_path / "many"
    names = [Path(grafana.backup(out=out)["path"]).name for _ in range(3)]
    listed = grafana.lab.opskit_json("backups", "list", "--dir", str(out))
    assert [b["name"] for b in listed["backups"]] == names
    assert listed["backups"][0]["counts"]["dashboards"] == TOTAL

    dry = grafana.lab.opskit_json(
        "backups", "prune", "--keep-last", "1", "--dry-run", "--dir", str(out)
    )
    assert dry["deleted"] == names[:2] and len(list(out.iterdir())) == 3
    prune = ("backups", "prune", "--keep-last", "1", "--dir", str(out))
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", *prune],
        env=grafana.lab.env(), input="y\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE and "--yes" in proc.stderr, proc.stderr
    assert len(list(out.iterdir())) == 3
    proc = on_terminal(grafana.lab, *prune, answer="n\n")
    assert proc.returncode == EXIT_DECLINED and "2 changes" in proc.stderr, proc.stderr
    assert len(list(out.iterdir())) == 3
    done = grafana.lab.opskit_json(
        "backups", "prune", "--keep-last", "1", "--yes", "--dir", str(out)
    )
    assert done["dry_run"] is False and done["deleted"] == names[:2]
    assert [p.name for p in out.iterdir()] == [names[2]]


def test_default_backup_dir_is_xdg_data_or_config(
    grafana: Grafana, lab: Lab, tmp_path: Path
) -> None:
    proc = lab.opskit("backup", "grafana", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"].startswith(str(lab.home / "data" / "opskit" / "backups"))
    config = tmp_path / "opskit.toml"
    config.write_text(f'[backup]\ndir = "{tmp_path / "configured"}"\n')
    proc = lab.opskit("--config", str(config), "backup", "grafana", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"].startswith(str(tmp_path / "configured"))


def test_backup_path_never_imports_textual() -> None:
    code = (
        "import sys; import opskit.commands.backup, opskit.commands.backups, "
        "opskit.tasks.grafana_restore; assert 'textual' not in sys.modules, 'textual imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_failed_save_is_counted_and_exits_2(grafana: Grafana) -> None:
    path = grafana.backup()["path"]
    with admin(grafana.lab) as client:
        for uid in ("gen-020", "gen-021"):
            client.delete(f"/api/dashboards/uid/{uid}").raise_for_status()
        fault = {"path": "/api/dashboards/db", "method": "POST", "status": 500, "count": 1}
        client.post("/__lab/fault", json=fault).raise_for_status()
    code, body, err = grafana.restore(path, "--yes")
    assert code == 2
    assert body["counts"]["created"] == 1 and body["counts"]["failed"] == 1
    assert "HTTP 500" in body["failures"][0], err
