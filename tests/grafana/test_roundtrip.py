"""Format 2 (issue 16): every kind, two organisations, backed up, wiped, restored, and
compared through the API with tasks.grafana_state (what `opskit diff grafana` compares);
a second restore writes nothing. Failure cases against the double's real answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from opskit.clients.grafana import GrafanaClient
from opskit.tasks.grafana_state import KINDS, OrgState, backup_state, live_state
from tests.conftest import GRAFANA_PASSWORD, GRAFANA_USER
from tests.grafana.conftest import Grafana, admin, model, save

SECRET = "s3cr3t-Basic-Auth-pw"  # a data source secret: never in a backup or an output
SECRET_DS = {
    "uid": "es-logs", "name": "ES logs", "type": "elasticsearch", "access": "proxy",
    "url": "http://127.0.0.1:9200", "basicAuth": True, "basicAuthUser": "reader",
    "jsonData": {"index": "logs-*", "timeField": "@timestamp"},
    "secureJsonData": {"basicAuthPassword": SECRET},
}  # fmt: skip


def live(grafana: Grafana, annotations: bool = True) -> dict[str, OrgState]:
    """Every organisation's normalized state, by organisation name."""

    async def go() -> dict[str, OrgState]:
        http = httpx.AsyncClient(
            base_url=grafana.lab.grafana, auth=(GRAFANA_USER, GRAFANA_PASSWORD), timeout=30
        )
        client = GrafanaClient(http)
        try:
            names = {o.id: o.name for o in await client.orgs()}
            states, problems = await live_state(
                client, orgs=list(names), with_annotations=annotations
            )
        finally:
            await client.aclose()
        assert [p for p in problems if not p.get("unavailable")] == [], problems
        return {names[i]: s for i, s in states.items()}

    return asyncio.run(go())


def in_backup(path: str | Path) -> dict[str, OrgState]:
    meta = json.loads((Path(path) / "manifest.json").read_text())
    names = {o["id"]: o["name"] for o in meta["orgs"]}
    return {names[i]: s for i, s in backup_state(Path(path)).items()}


def differences(want: dict[str, OrgState], got: dict[str, OrgState]) -> list[str]:
    out = []
    for org in sorted(set(want) | set(got)):
        w, g = want.get(org, {}), got.get(org, {})
        for kind in KINDS:
            wk, gk = w.get(kind, {}), g.get(kind, {})
            for key in sorted(set(wk) | set(gk)):
                if wk.get(key) != gk.get(key):
                    out.append(f"{org} {kind} {key}: {wk.get(key)!r} != {gk.get(key)!r}"[:400])
    return out


def uses_library_panels(state: dict[str, OrgState]) -> list[tuple[str, str, str]]:
    """(org, dashboard, library panel) for every dashboard panel that is a library panel."""
    return [
        (org, uid, str(p["libraryPanel"]["uid"]))
        for org, s in state.items()
        for uid, d in s.get("dashboards", {}).items()
        for p in d["model"].get("panels") or []
        if isinstance(p.get("libraryPanel"), dict)
    ]


def add_extras(grafana: Grafana) -> None:
    """What the demo seed lacks for a full round trip: a data source with a secret, a
    dashboard with its own permissions, a user permission on a folder."""
    with admin(grafana.lab) as client:
        client.post("/api/datasources", json=SECRET_DS).raise_for_status()
        save(client, model("perm-dash", "With permissions"), "t-top")
        user = client.get("/api/users/lookup", params={"loginOrEmail": "ops-engineer"}).json()
        items = [{"role": "Viewer", "permission": 1}, {"userId": user["id"], "permission": 4}]
        client.post(
            "/api/dashboards/uid/perm-dash/permissions", json={"items": items}
        ).raise_for_status()


def wipe_keeping_users(grafana: Grafana) -> None:
    """An empty Grafana that has the users (a restore never creates users)."""
    grafana.wipe()


def stats(grafana: Grafana) -> dict[str, int]:
    with admin(grafana.lab) as client:
        return dict(client.get("/__lab/stats").json())


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def writes(d: dict[str, int]) -> int:
    return sum(v for k, v in d.items() if k.split(" ")[0] in ("POST", "PUT", "PATCH", "DELETE"))


def secrets_file(tmp: Path) -> Path:
    path = tmp / "secrets.toml"
    path.write_text(f'["es-logs"]\nbasicAuthPassword = "{SECRET}"\n')
    return path


def test_every_kind_of_two_orgs_round_trips_and_a_second_restore_writes_nothing(
    grafana: Grafana, tmp_path: Path
) -> None:
    add_extras(grafana)
    before = live(grafana)
    assert set(before) == {"Main Org.", "Staging"}
    main = before["Main Org."]
    for kind in KINDS:  # the seed has at least one of every kind
        assert main.get(kind), f"seed lacks {kind}"
    assert before["Staging"]["dashboards"]
    # same-title dashboards in different folders, a dashboard using a library panel
    assert main["dashboards"]["same-a"]["folderUid"] != main["dashboards"]["same-b"]["folderUid"]
    assert uses_library_panels(before), "no dashboard uses a library panel"

    t0 = stats(grafana)
    result = grafana.backup("--all-orgs", "--with-annotations")
    backup_requests = delta(t0, stats(grafana))
    assert result["complete"] is True and result["skipped"] == []
    path = result["path"]
    assert differences(in_backup(path), before) == []  # the backup holds what Grafana has
    for file in Path(path).rglob("*"):
        if file.is_file():
            assert SECRET not in file.read_text(), file
    ds = json.loads((Path(path) / "orgs/1/datasources.json").read_text())
    assert next(d for d in ds if d["uid"] == "es-logs")["secureJsonFields"] == {
        "basicAuthPassword": True
    }

    wipe_keeping_users(grafana)
    code, dry, err = grafana.restore(path, "--all-orgs", "--dry-run")
    assert code == 0, err
    steps = dry["plan"]["steps"]
    assert {s["kind"] for s in steps} == set(KINDS)
    assert [o["target"]["create"] for o in dry["plan"]["orgs"]] == [False, True]
    assert live(grafana)["Main Org."].get("dashboards") == {}  # the dry run wrote nothing

    secrets = secrets_file(tmp_path)
    t1 = stats(grafana)
    code, body, err = grafana.restore(path, "--all-orgs", "--yes", "--secrets", str(secrets))
    restore_requests = delta(t1, stats(grafana))
    assert code == 0, (err, body and body["failures"], body and body["skipped"])
    assert SECRET not in err and SECRET not in json.dumps(body)
    after = live(grafana)
    assert differences(in_backup(path), after) == []
    with admin(grafana.lab) as client:
        got = client.get("/api/datasources/uid/es-logs").json()
    assert got["secureJsonFields"] == {"basicAuthPassword": True}

    # a second restore: everything equal, nothing written
    t2 = stats(grafana)
    code, body, err = grafana.restore(path, "--all-orgs", "--yes", "--secrets", str(secrets))
    again = delta(t2, stats(grafana))
    assert code == 0, err
    assert writes(again) == 0, again
    assert all(s["action"] == "unchanged" for s in body["plan"]["steps"]), [
        s for s in body["plan"]["steps"] if s["action"] != "unchanged"
    ]
    assert differences(in_backup(path), live(grafana)) == []
    print(
        f"\nrequests: backup {sum(backup_requests.values())}, restore into empty "
        f"{sum(restore_requests.values())} ({writes(restore_requests)} writes), second "
        f"restore {sum(again.values())} (0 writes)"
    )


def test_secrets_not_supplied_are_reported_and_the_rest_restored(grafana: Grafana) -> None:
    add_extras(grafana)
    path = grafana.backup()["path"]
    wipe_keeping_users(grafana)
    code, body, err = grafana.restore(path, "--yes", "--only", "datasources")
    assert code == 1, err
    assert any("es-logs" in s and "basicAuthPassword" in s for s in body["skipped"])
    with admin(grafana.lab) as client:
        got = client.get("/api/datasources/uid/es-logs").json()
    assert got["url"] == SECRET_DS["url"] and not got.get("secureJsonFields")
    # from the environment, into the data source restored without it
    env = grafana.lab.env(OPSKIT_GRAFANA_DS_SECRET_ES_LOGS_BASICAUTHPASSWORD=SECRET)
    code, body, err = grafana.restore(path, "--yes", "--only", "datasources", env=env)
    assert code == 1 and "--overwrite" in json.dumps(body["plan"]["steps"]), err
    code, body, err = grafana.restore(
        path, "--yes", "--only", "datasources", "--overwrite", env=env
    )
    assert code == 0, err
    assert SECRET not in err + json.dumps(body)
    with admin(grafana.lab) as client:
        got = client.get("/api/datasources/uid/es-logs").json()
    assert got["secureJsonFields"] == {"basicAuthPassword": True}


def test_selective_restore_of_one_folder_and_one_kind(grafana: Grafana) -> None:
    with admin(grafana.lab) as client:  # a dashboard using the seed's library panel
        board = model("lib-user", "Uses a library panel", 1)
        board["panels"].append(
            {"id": 9, "gridPos": {"h": 8, "w": 12, "x": 0, "y": 8},
             "libraryPanel": {"uid": "opskit-node-load", "name": "Node load (1m)"}}
        )  # fmt: skip
        save(client, board, "t-other")
    path = grafana.backup()["path"]
    wipe_keeping_users(grafana)
    code, dry, err = grafana.restore(path, "--dry-run", "--folder", "t-mid")
    assert code == 0, err
    planned = {(s["kind"], s["key"]) for s in dry["plan"]["steps"]}
    # t-mid and its subfolder, the folder above it (needed), their dashboards, nothing else
    assert {k for k, _ in planned} <= {"folders", "dashboards", "library_panels", "alert_rules"}
    assert {key for kind, key in planned if kind == "folders"} == {"t-top", "t-mid", "t-leaf"}
    code, body, err = grafana.restore(path, "--yes", "--folder", "t-mid", "--no-subfolders")
    assert code == 0, err
    now = live(grafana)["Main Org."]
    assert set(now["folders"]) == {"t-top", "t-mid"}
    assert {d["folderUid"] for d in now["dashboards"].values()} == {"t-mid"}
    assert now["teams"] == {} and now["mute_timings"] == {}

    code, body, err = grafana.restore(path, "--yes", "--only", "dashboards:lib-user")
    # its folder came along, without the team permission: teams were not restored
    assert code == 1, err
    assert body["skipped"] == [
        "folder email-client (Email Client): team oncall does not exist: permission left out"
    ]
    now = live(grafana)["Main Org."]
    # the library panel it uses and its folder came with it
    assert "lib-user" in now["dashboards"] and "opskit-node-load" in now["library_panels"]
    assert {"email-client", "t-other"} <= set(now["folders"])  # the panel's, the dashboard's
    assert "email-service-overview" not in now["dashboards"]


def test_403_on_one_kind_is_skipped_and_500_on_one_object_fails_the_rest_restored(
    grafana: Grafana,
) -> None:
    path = grafana.backup()["path"]
    wipe_keeping_users(grafana)
    with admin(grafana.lab) as client:
        for fault in (
            {"path": "/api/v1/provisioning/contact-points", "method": "POST", "status": 403,
             "count": 100},
            {"path": "/api/dashboards/db", "method": "POST", "status": 500, "count": 1},
        ):  # fmt: skip
            client.post("/__lab/fault", json=fault).raise_for_status()
    code, body, err = grafana.restore(path, "--yes")
    with admin(grafana.lab) as client:
        client.delete("/__lab/fault").raise_for_status()
    assert code == 2, err
    kinds = body["kinds"]
    assert (
        kinds["contact_points"]["skipped"]
        == kinds["contact_points"]["created"]
        + len([s for s in body["skipped"] if "contact_point" in s])
        or kinds["contact_points"]["skipped"] >= 1
    )
    assert kinds["dashboards"]["failed"] == 1 and "HTTP 500" in body["failures"][0]
    assert any("403" in s for s in body["skipped"])
    # everything else is there; a second restore completes it
    code, body, err = grafana.restore(path, "--yes")
    assert code == 0, (err, body["failures"], body["skipped"])
    assert differences(in_backup(path), live(grafana, annotations=False)) == []


def test_backup_with_a_kind_forbidden_says_skipped_and_exits_1(grafana: Grafana) -> None:
    with admin(grafana.lab) as client:
        fault = {"path": "/api/teams/search", "method": "GET", "status": 403, "count": 100}
        client.post("/__lab/fault", json=fault).raise_for_status()
    proc = grafana.lab.opskit("backup", "grafana", "--out", str(grafana.tmp), "--json")
    with admin(grafana.lab) as client:
        client.delete("/__lab/fault").raise_for_status()
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert [(s["kind"], "403" in s["reason"]) for s in result["skipped"]] == [("teams", True)]
    meta = json.loads((Path(result["path"]) / "manifest.json").read_text())
    assert meta["skipped"][0]["kind"] == "teams" and meta["complete"] is True
    assert not (Path(result["path"]) / "orgs/1/teams.json").exists()
    # a restore of it says the kind is not in the backup, and restores the rest
    wipe_keeping_users(grafana)
    code, body, err = grafana.restore(result["path"], "--yes")
    assert code == 1, err  # the folder permission of the team that is not there: left out
    assert "skipped org 1 teams" in err
    assert any("team oncall does not exist" in s for s in body["skipped"]), body["skipped"]
    assert body["failures"] == [] and body["kinds"]["dashboards"]["created"] > 60


def test_conflicts_412_409_are_reported_not_overwritten(grafana: Grafana) -> None:
    path = grafana.backup()["path"]
    with admin(grafana.lab) as client:
        # same title in the same folder under another uid: 412 name-exists on create
        client.delete("/api/dashboards/uid/same-a").raise_for_status()
        save(client, model("other-uid", "Same Title"), "t-leaf")
        # a changed library panel and mute timing: conflicts without --overwrite
        lib = client.get("/api/library-elements/opskit-node-load").json()["result"]
        client.patch(
            "/api/library-elements/opskit-node-load",
            json={"name": "Renamed", "kind": 1, "model": lib["model"],
                  "folderUid": lib["folderUid"], "version": lib["version"]},
        ).raise_for_status()  # fmt: skip
    code, body, err = grafana.restore(path, "--yes")
    assert code == 2, err  # the name-exists dashboard could not be written
    outcome = {(s["kind"], s["key"]): s for s in body["plan"]["steps"]}
    assert outcome[("dashboards", "same-a")]["outcome"] == "failed"
    assert "name-exists" in outcome[("dashboards", "same-a")]["result"]
    assert outcome[("library_panels", "opskit-node-load")]["action"] == "conflict"
    with admin(grafana.lab) as client:
        lib = client.get("/api/library-elements/opskit-node-load").json()["result"]
    assert lib["name"] == "Renamed"  # not overwritten
    code, body, err = grafana.restore(path, "--yes", "--overwrite", "--only", "library_panels")
    assert code == 0, err
    with admin(grafana.lab) as client:
        lib = client.get("/api/library-elements/opskit-node-load").json()["result"]
    assert lib["name"] != "Renamed"


@pytest.mark.parametrize("fmt", ["1"])
def test_format_1_backups_stay_restorable(grafana: Grafana, tmp_path: Path, fmt: str) -> None:
    """A format-1 backup (the flat layout) is restored as one organisation."""
    from opskit.tasks.backup_store import BackupWriter

    src = Path(grafana.backup()["path"]) / "orgs" / "1"
    writer = BackupWriter(tmp_path / "old", "grafana")
    folders = json.loads((src / "folders.json").read_text())
    writer.write_json("folders.json", [{k: f[k] for k in ("uid", "title", "parentUid")}
                                       for f in folders])  # fmt: skip
    writer.write_json("datasources.json", json.loads((src / "datasources.json").read_text()))
    n = 0
    for file in sorted((src / "dashboards").glob("*.json")):
        item: dict[str, Any] = json.loads(file.read_text())
        item.pop("permissions", None)
        writer.write_json(f"dashboards/{file.name}", item)
        n += 1
    old = writer.commit(
        {"format": f"opskit-grafana-backup/{fmt}", "grafana": {"org": {"id": 1, "name": "x"}},
         "counts": {"dashboards": n}, "complete": True, "missing": []}
    )  # fmt: skip
    wipe_keeping_users(grafana)
    code, body, err = grafana.restore(str(old), "--yes")
    assert code in (0, 1), (err, body and body["failures"])
    assert body["counts"]["created"] == n and body["counts"]["failed"] == 0
    now = live(grafana)["Main Org."]
    assert set(now["dashboards"]) == {f.stem for f in (src / "dashboards").glob("*.json")}
