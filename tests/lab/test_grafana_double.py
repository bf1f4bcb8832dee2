"""The lab's Grafana double against Grafana 11's documented HTTP API behaviour.

Every test starts its own double (lab/grafana_double.py) on a free port with a fresh state
file, talks to it over HTTP with httpx, and stops it. The expected bodies come from Grafana's HTTP
API reference, as named at the top of lab/grafana_double.py.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOUBLE = ROOT / "lab" / "grafana_double.py"
ADMIN = ("admin", "admin")
ADMIN_TOKEN = "glsa_labAdminToken_0001"
VIEWER_TOKEN = "glsa_labViewerToken_0002"
EDITOR_TOKEN = "glsa_labEditorToken_0003"
HIT_KEYS = {
    "id", "uid", "orgId", "title", "uri", "url", "slug", "type", "tags", "isStarred",
    "sortMeta", "isDeleted",
}  # fmt: skip
FOLDER_KEYS = {"folderId", "folderUid", "folderTitle", "folderUrl"}


@dataclass
class Grafana:
    url: str
    proc: subprocess.Popen[str]
    state: Path

    def client(self, auth: tuple[str, str] | None = ADMIN, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth, headers=headers, timeout=10)

    def bearer(self, token: str, **headers: str) -> httpx.Client:
        return self.client(None, Authorization=f"Bearer {token}", **headers)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


Spawn = Callable[..., Grafana]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    started: list[Grafana] = []

    def _spawn(*extra: str, state: Path | None = None, password: str = "admin") -> Grafana:
        state = state or tmp_path / "grafana" / "state.json"
        env = {k: v for k, v in os.environ.items() if k != "GRAFANA_DOUBLE_TOKENS"}
        cmd = [
            sys.executable, str(DOUBLE), "--host", "127.0.0.1", "--port", "0",
            "--state", str(state), "--admin-user", "admin", "--admin-password", password,
            "--token", ADMIN_TOKEN, "--token", f"{VIEWER_TOKEN}:Viewer",
            "--token", f"{EDITOR_TOKEN}:editor", *extra,
        ]  # fmt: skip
        stderr = open(tmp_path / f"stderr-{len(started)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        stderr.close()
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline() if ready else ""
        match = re.search(r"http://[\d.]+:\d+", line)
        if match is None:
            proc.kill()
            proc.wait()
            log = (tmp_path / f"stderr-{len(started)}.log").read_text()
            pytest.fail(f"grafana double did not start: {line!r}\n{log}")
        g = Grafana(match.group(), proc, state)
        started.append(g)
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(g.url + "/api/health", timeout=1).status_code == 200:
                    return g
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("grafana double never answered /api/health")
            time.sleep(0.05)

    yield _spawn
    for g in started:
        g.stop()


@pytest.fixture
def grafana(spawn: Spawn) -> Grafana:
    return spawn()


def save(
    c: httpx.Client, title: str, folder: str = "", uid: str | None = None, **extra: Any
) -> httpx.Response:
    model: dict[str, Any] = {"id": None, "title": title}
    if uid is not None:
        model["uid"] = uid
    model.update(extra.pop("model", {}))
    return c.post("/api/dashboards/db", json={"dashboard": model, "folderUid": folder, **extra})


def ok(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json()


# --------------------------------------------------------------------------- auth


def test_health_answers_without_auth(grafana: Grafana) -> None:
    resp = httpx.get(grafana.url + "/api/health")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"commit", "database", "version"}
    assert body["database"] == "ok"
    assert body["version"] == "11.2.0"


def test_version_flag_is_reported(spawn: Spawn) -> None:
    g = spawn("--version", "11.1.4")
    assert httpx.get(g.url + "/api/health").json()["version"] == "11.1.4"


def test_no_credentials_is_401_with_grafanas_body(grafana: Grafana) -> None:
    for path in ("/api/search", "/api/dashboards/uid/x", "/api/folders", "/api/datasources"):
        resp = httpx.get(grafana.url + path)
        assert resp.status_code == 401, path
        assert resp.json() == {
            "extra": None,
            "message": "Unauthorized",
            "messageId": "auth.unauthorized",
            "statusCode": 401,
            "traceID": "",
        }


def test_wrong_password_and_unknown_token_are_401(grafana: Grafana) -> None:
    with grafana.client(("admin", "wrong")) as c:
        resp = c.get("/api/search")
    assert resp.status_code == 401
    assert resp.json()["message"] == "Invalid username or password"
    assert resp.json()["messageId"] == "password-auth.failed"
    with grafana.bearer("glsa_notAToken") as c:
        resp = c.get("/api/search")
    assert resp.status_code == 401
    assert resp.json()["message"] == "Invalid API key"
    assert resp.json()["messageId"] == "api-key.invalid"


def test_bearer_token_reads_and_writes(grafana: Grafana) -> None:
    with grafana.bearer(ADMIN_TOKEN) as c:
        saved = ok(save(c, "Made by token", uid="by-token"))
        assert saved["uid"] == "by-token"
        assert [h["uid"] for h in ok(c.get("/api/search"))] == ["by-token"]
        meta = ok(c.get("/api/dashboards/uid/by-token"))["meta"]
    assert meta["createdBy"] != "admin"
    assert meta["createdBy"] == meta["updatedBy"]
    # Grafana also takes a token as the password of the user "api_key".
    with grafana.client(("api_key", ADMIN_TOKEN)) as c:
        assert c.get("/api/search").status_code == 200


def test_viewer_token_reads_but_every_write_is_403(grafana: Grafana) -> None:
    with grafana.client() as admin:
        ok(admin.post("/api/folders", json={"uid": "f", "title": "F"}))
        ok(save(admin, "Readable", uid="readable"))
    with grafana.bearer(VIEWER_TOKEN) as c:
        assert [h["uid"] for h in ok(c.get("/api/search", params={"type": "dash-db"}))] == [
            "readable"
        ]
        meta = ok(c.get("/api/dashboards/uid/readable"))["meta"]
        assert meta["canSave"] is False and meta["canEdit"] is False
        ok(c.get("/api/folders/f"))
        writes = {
            ("POST", "/api/dashboards/db"): "any of dashboards:create, dashboards:write",
            ("DELETE", "/api/dashboards/uid/readable"): "dashboards:delete",
            ("POST", "/api/folders"): "folders:create",
            ("PUT", "/api/folders/f"): "folders:write",
            ("DELETE", "/api/folders/f"): "folders:delete",
            ("POST", "/api/datasources"): "datasources:create",
            ("GET", "/api/datasources"): "datasources:read",
        }
        for (method, path), needed in writes.items():
            resp = c.request(method, path, json={"dashboard": {"title": "x"}, "title": "x"})
            assert resp.status_code == 403, (method, path, resp.text)
            body = resp.json()
            assert body["title"] == "Access denied"
            assert body["message"] == (
                "You'll need additional permissions to perform this action. "
                f"Permissions needed: {needed}"
            )
            assert re.fullmatch(r"ACE\d{10}", body["accessErrorId"])
    with grafana.client() as admin:
        assert ok(admin.get("/api/dashboards/uid/readable"))["dashboard"]["title"] == "Readable"


def test_editor_token_writes_dashboards_but_not_datasources(grafana: Grafana) -> None:
    with grafana.bearer(EDITOR_TOKEN) as c:
        ok(c.post("/api/folders", json={"uid": "ed", "title": "Editors"}))
        ok(save(c, "By editor", folder="ed"))
        assert c.get("/api/datasources").status_code == 403


# --------------------------------------------------------------------------- dashboards


def test_create_get_update_increments_version_and_keeps_uid(grafana: Grafana) -> None:
    with grafana.client() as c:
        ok(c.post("/api/folders", json={"uid": "team", "title": "Team"}))
        model = {"tags": ["prod"], "panels": [{"id": 1, "type": "stat"}]}
        first = ok(save(c, "Production Overview", folder="team", uid="prod-overview", model=model))
        assert first == {
            "id": first["id"],
            "uid": "prod-overview",
            "url": "/d/prod-overview/production-overview",
            "status": "success",
            "version": 1,
            "slug": "production-overview",
            "folderUid": "team",
        }
        got = ok(c.get("/api/dashboards/uid/prod-overview"))
        dash, meta = got["dashboard"], got["meta"]
        assert (dash["id"], dash["uid"], dash["version"]) == (first["id"], "prod-overview", 1)
        assert dash["panels"] == [{"id": 1, "type": "stat"}]
        assert meta["version"] == 1
        assert meta["folderUid"] == "team" and meta["folderTitle"] == "Team"
        assert meta["url"] == "/d/prod-overview/production-overview"
        assert meta["slug"] == "production-overview"
        assert meta["canSave"] is True and meta["provisioned"] is False
        for key in ("type", "created", "updated", "createdBy", "updatedBy", "folderId",
                    "folderUrl"):  # fmt: skip
            assert key in meta, key

        dash["title"] = "Production Overview v2"
        second = ok(c.post("/api/dashboards/db", json={"dashboard": dash, "folderUid": "team"}))
        assert (second["id"], second["uid"], second["version"]) == (first["id"], "prod-overview", 2)
        assert second["slug"] == "production-overview-v2"
        got = ok(c.get("/api/dashboards/uid/prod-overview"))
        assert got["dashboard"]["title"] == "Production Overview v2"
        assert got["dashboard"]["version"] == got["meta"]["version"] == 2

        # Updating without folderUid moves the dashboard to the root, as documented.
        third = ok(c.post("/api/dashboards/db", json={"dashboard": got["dashboard"]}))
        assert third["version"] == 3 and third["folderUid"] == ""
        meta = ok(c.get("/api/dashboards/uid/prod-overview"))["meta"]
        assert meta["folderUid"] == "" and meta["folderTitle"] == "General"


def test_uid_is_generated_when_absent(grafana: Grafana) -> None:
    with grafana.client() as c:
        a = ok(save(c, "No uid A"))
        b = ok(save(c, "No uid B", model={"uid": None}))
        assert re.fullmatch(r"[a-z0-9]{14}", a["uid"]) and re.fullmatch(r"[a-z0-9]{14}", b["uid"])
        assert a["uid"] != b["uid"] and a["id"] != b["id"]
        assert ok(c.get(f"/api/dashboards/uid/{a['uid']}"))["dashboard"]["title"] == "No uid A"


def test_stale_version_is_412_version_mismatch_unless_overwrite(grafana: Grafana) -> None:
    with grafana.client() as c:
        ok(save(c, "Contended", uid="contended"))
        ok(save(c, "Contended", uid="contended", model={"version": 1}))  # now version 2
        for model in ({"version": 1}, {}):  # stale, and no version at all
            resp = save(c, "Contended", uid="contended", model=model)
            assert resp.status_code == 412
            assert resp.json() == {
                "message": "The dashboard has been changed by someone else",
                "status": "version-mismatch",
            }
        assert ok(c.get("/api/dashboards/uid/contended"))["meta"]["version"] == 2
        forced = ok(save(c, "Contended", uid="contended", model={"version": 1}, overwrite=True))
        assert forced["version"] == 3


def test_same_title_in_same_folder_is_412_name_exists(grafana: Grafana) -> None:
    with grafana.client() as c:
        ok(c.post("/api/folders", json={"uid": "a", "title": "A"}))
        ok(c.post("/api/folders", json={"uid": "b", "title": "B"}))
        original = ok(save(c, "Twin", folder="a", uid="twin-1"))
        resp = save(c, "Twin", folder="a", uid="twin-2")
        assert resp.status_code == 412
        assert resp.json() == {
            "message": "A dashboard with the same name in the folder already exists",
            "status": "name-exists",
        }
        assert c.get("/api/dashboards/uid/twin-2").status_code == 404
        ok(save(c, "Twin", folder="b", uid="twin-3"))  # another folder: fine
        # overwrite takes over the existing dashboard (its id, uid and version), as Grafana does
        taken = ok(save(c, "Twin", folder="a", uid="twin-2", overwrite=True))
        assert (taken["uid"], taken["id"], taken["version"]) == ("twin-1", original["id"], 2)
        # a dashboard may not take a sibling folder's title
        resp = save(c, "A")
        assert resp.status_code == 400
        assert resp.json() == {
            "message": "Dashboard name cannot be the same as folder",
            "status": "name-match",
        }


def test_title_uniqueness_is_gone_from_grafana_11_3(spawn: Spawn) -> None:
    g = spawn("--version", "11.3.0")
    with g.client() as c:
        ok(save(c, "Twin", uid="twin-1"))
        assert ok(save(c, "Twin", uid="twin-2"))["uid"] == "twin-2"
        ok(c.post("/api/folders", json={"uid": "f1", "title": "Same"}))
        ok(c.post("/api/folders", json={"uid": "f2", "title": "Same"}))


def test_save_errors(grafana: Grafana) -> None:
    with grafana.client() as c:
        resp = save(c, "Lost", folder="no-such-folder")
        assert (resp.status_code, resp.json()) == (400, {"message": "folder not found"})
        resp = c.post("/api/dashboards/db", content=b"{not json")
        assert (resp.status_code, resp.json()) == (400, {"message": "bad request data"})
        resp = save(c, "   ")
        assert resp.status_code == 400
        assert resp.json() == {"message": "Dashboard title cannot be empty", "status": "empty-name"}
        resp = save(c, "Bad uid", uid="has spaces")
        assert (resp.status_code, resp.json()) == (
            400,
            {"message": "uid contains illegal characters"},
        )
        resp = save(c, "Long uid", uid="x" * 41)
        assert (resp.status_code, resp.json()) == (
            400,
            {"message": "uid too long, max 40 characters"},
        )
        resp = save(c, "Unknown id", model={"id": 999})
        assert resp.status_code == 404
        assert resp.json() == {"message": "Dashboard not found", "status": "not-found"}
        assert c.get("/api/search").json() == []


def test_legacy_folder_id_is_accepted(grafana: Grafana) -> None:
    with grafana.client() as c:
        folder = ok(c.post("/api/folders", json={"uid": "legacy", "title": "Legacy"}))
        saved = ok(c.post("/api/dashboards/db", json={"dashboard": {"title": "Old client"},
                                                      "folderId": folder["id"]}))  # fmt: skip
        assert saved["folderUid"] == "legacy"


def test_get_and_delete_by_uid(grafana: Grafana) -> None:
    with grafana.client() as c:
        resp = c.get("/api/dashboards/uid/nope")
        assert (resp.status_code, resp.json()) == (404, {"message": "Dashboard not found"})
        saved = ok(save(c, "Doomed Board", uid="doomed"))
        assert ok(c.delete("/api/dashboards/uid/doomed")) == {
            "title": "Doomed Board",
            "message": "Dashboard Doomed Board deleted",
            "id": saved["id"],
        }
        assert c.get("/api/dashboards/uid/doomed").status_code == 404
        assert c.delete("/api/dashboards/uid/doomed").status_code == 404


# --------------------------------------------------------------------------- search


def test_search_pages_with_limit_and_sorts_by_title(grafana: Grafana) -> None:
    titles = ["delta", "Alpha", "charlie", "Bravo", "echo", "Foxtrot", "golf"]
    with grafana.client() as c:
        for t in titles:
            ok(save(c, t))
        pages = [
            ok(c.get("/api/search", params={"type": "dash-db", "limit": 3, "page": p}))
            for p in (1, 2, 3, 4)
        ]
        assert [len(p) for p in pages] == [3, 3, 1, 0]
        seen = [h["title"] for p in pages for h in p]
        assert sorted(seen) == sorted(titles) and len(set(seen)) == len(titles)
        for p in pages:  # each page is in case-insensitive title order
            assert [h["title"] for h in p] == sorted((h["title"] for h in p), key=str.lower)
        everything = ok(c.get("/api/search"))  # default limit 1000
        assert [h["title"] for h in everything] == sorted(titles, key=str.lower)
        assert len(ok(c.get("/api/search", params={"limit": 0}))) == len(titles)


def test_search_type_filter_and_folders_first(grafana: Grafana) -> None:
    with grafana.client() as c:
        ok(c.post("/api/folders", json={"uid": "zf", "title": "Zulu folder"}))
        ok(save(c, "Alpha board", folder="zf"))
        ok(save(c, "Beta board"))
        assert [h["type"] for h in ok(c.get("/api/search"))] == [
            "dash-folder", "dash-db", "dash-db",
        ]  # fmt: skip
        folders = ok(c.get("/api/search", params={"type": "dash-folder"}))
        assert [(h["uid"], h["type"]) for h in folders] == [("zf", "dash-folder")]
        assert set(folders[0]) == HIT_KEYS
        assert folders[0]["url"] == "/dashboards/f/zf/zulu-folder"
        boards = ok(c.get("/api/search", params={"type": "dash-db"}))
        assert {h["type"] for h in boards} == {"dash-db"} and len(boards) == 2


def test_search_filters_folder_uids_query_tags_and_uids(grafana: Grafana) -> None:
    with grafana.client() as c:
        ok(c.post("/api/folders", json={"uid": "fa", "title": "Folder A"}))
        ok(c.post("/api/folders", json={"uid": "fb", "title": "Folder B"}))
        ok(c.post("/api/folders", json={"uid": "fa-sub", "title": "Sub", "parentUid": "fa"}))
        ok(save(c, "CPU in A", folder="fa", uid="a1", model={"tags": ["infra", "cpu"]}))
        ok(save(c, "Memory in A", folder="fa", uid="a2", model={"tags": ["infra"]}))
        ok(save(c, "CPU in B", folder="fb", uid="b1", model={"tags": ["cpu"]}))
        ok(save(c, "Root board", uid="r1"))

        def uids(**params: Any) -> list[str]:
            return sorted(h["uid"] for h in ok(c.get("/api/search", params=params)))

        assert uids(folderUIDs="fa", type="dash-db") == ["a1", "a2"]
        assert uids(folderUIDs="fa") == ["a1", "a2", "fa-sub"]  # subfolders live in their parent
        assert uids(folderUIDs=["fa", "fb"], type="dash-db") == ["a1", "a2", "b1"]
        assert uids(folderUIDs="general") == ["fa", "fb", "r1"]
        assert uids(query="cpu") == ["a1", "b1"]  # case-insensitive substring
        assert uids(query="CPU IN a") == ["a1"]
        assert uids(tag="cpu") == ["a1", "b1"]
        assert uids(tag=["cpu", "infra"]) == ["a1"]  # all tags must match
        assert uids(dashboardUIDs=["a2", "r1"]) == ["a2", "r1"]
        hit = ok(c.get("/api/search", params={"dashboardUIDs": "a1"}))[0]
        assert set(hit) == HIT_KEYS | FOLDER_KEYS
        assert hit["tags"] == ["cpu", "infra"]
        assert (hit["folderUid"], hit["folderTitle"]) == ("fa", "Folder A")
        assert hit["folderUrl"] == "/dashboards/f/fa/folder-a"
        assert hit["url"] == "/d/a1/cpu-in-a" and hit["uri"] == "db/cpu-in-a"
        assert ok(c.get("/api/search", params={"starred": "true"})) == []


# --------------------------------------------------------------------------- folders


def test_folder_uid_conflict_is_409_and_title_conflict_is_409(grafana: Grafana) -> None:
    with grafana.client() as c:
        created = ok(c.post("/api/folders", json={"uid": "ops", "title": "Ops"}))
        assert (created["uid"], created["title"], created["version"]) == ("ops", "Ops", 1)
        assert created["url"] == "/dashboards/f/ops/ops"
        resp = c.post("/api/folders", json={"uid": "ops", "title": "Other"})
        assert resp.status_code == 409
        assert resp.json() == {"message": "a folder/dashboard with the same uid already exists"}
        resp = c.post("/api/folders", json={"uid": "ops2", "title": "Ops"})
        assert resp.status_code == 409
        assert resp.json() == {
            "message": "a folder with the same name already exists in the current location"
        }
        ok(c.post("/api/folders", json={"uid": "parent", "title": "Parent"}))
        ok(c.post("/api/folders", json={"uid": "ops3", "title": "Ops", "parentUid": "parent"}))
        resp = c.post("/api/folders", json={"title": "  "})
        assert (resp.status_code, resp.json()) == (400, {"message": "folder title cannot be empty"})
        resp = c.get("/api/folders/missing")
        assert resp.status_code == 404
        assert resp.json() == {"message": "folder not found", "status": "not-found"}


def test_nested_folders_parents_listing_and_cascading_delete(grafana: Grafana) -> None:
    with grafana.client() as c:
        top = ok(c.post("/api/folders", json={"uid": "top", "title": "Top"}))
        ok(c.post("/api/folders", json={"uid": "mid", "title": "Mid", "parentUid": "top"}))
        leaf = ok(c.post("/api/folders", json={"uid": "leaf", "title": "Leaf",
                                                "parentUid": "mid"}))  # fmt: skip
        assert "parentUid" not in top and "parents" not in top
        assert leaf["parentUid"] == "mid"
        assert [p["uid"] for p in leaf["parents"]] == ["top", "mid"]
        got = ok(c.get("/api/folders/leaf"))
        assert [(p["uid"], p["title"]) for p in got["parents"]] == [("top", "Top"), ("mid", "Mid")]
        assert ok(c.get(f"/api/folders/id/{leaf['id']}"))["uid"] == "leaf"
        ok(c.post("/api/folders", json={"uid": "other", "title": "Other"}))
        assert [f["uid"] for f in ok(c.get("/api/folders"))] == ["other", "top"]
        assert ok(c.get("/api/folders", params={"parentUid": "top"})) == [
            {"id": got["parents"][1]["id"], "uid": "mid", "title": "Mid", "parentUid": "top"}
        ]
        assert [f["uid"] for f in ok(c.get("/api/folders", params={"limit": 1, "page": 2}))] == [
            "top"
        ]
        ok(save(c, "Deep board", folder="leaf", uid="deep"))
        ok(save(c, "Kept board", folder="other", uid="kept"))
        deleted = ok(c.delete("/api/folders/top", params={"forceDeleteRules": "false"}))
        assert deleted == {"message": "Folder deleted", "id": top["id"]}
        for uid in ("top", "mid", "leaf"):
            assert c.get(f"/api/folders/{uid}").status_code == 404
        assert c.get("/api/dashboards/uid/deep").status_code == 404
        assert c.get("/api/dashboards/uid/kept").status_code == 200
        assert c.post("/api/folders", json={"title": "X", "parentUid": "top"}).status_code == 404


def test_folder_update_checks_version(grafana: Grafana) -> None:
    with grafana.client() as c:
        ok(c.post("/api/folders", json={"uid": "f", "title": "Before"}))
        resp = c.put("/api/folders/f", json={"title": "After", "version": 7})
        assert resp.status_code == 412
        assert resp.json() == {
            "message": "the folder has been changed by someone else",
            "status": "version-mismatch",
        }
        updated = ok(c.put("/api/folders/f", json={"title": "After", "version": 1}))
        assert (updated["title"], updated["version"]) == ("After", 2)
        assert (
            ok(c.put("/api/folders/f", json={"title": "Forced", "overwrite": True}))["version"] == 3
        )
        assert ok(c.get("/api/folders/f"))["title"] == "Forced"


# --------------------------------------------------------------------------- data sources


def test_datasources_conflict_lookup_and_never_leak_secrets(grafana: Grafana) -> None:
    secret = "s3cret-value-9931"
    body = {
        "name": "Prometheus",
        "uid": "prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": "http://127.0.0.1:9090",
        "basicAuth": True,
        "basicAuthUser": "prom",
        "isDefault": True,
        "jsonData": {"httpMethod": "POST"},
        "secureJsonData": {"basicAuthPassword": secret},
    }
    with grafana.client() as c:
        created = c.post("/api/datasources", json=body)
        added = ok(created)
        assert added["message"] == "Datasource added" and added["name"] == "Prometheus"
        ds = added["datasource"]
        assert ds["secureJsonFields"] == {"basicAuthPassword": True}
        assert "secureJsonData" not in ds
        assert (ds["uid"], ds["type"], ds["isDefault"], ds["version"]) == (
            "prometheus", "prometheus", True, 1,
        )  # fmt: skip
        texts = [created.text]
        for path in ("/api/datasources/uid/prometheus", "/api/datasources/name/Prometheus",
                     f"/api/datasources/{added['id']}"):  # fmt: skip
            resp = c.get(path)
            assert ok(resp)["id"] == added["id"], path
            assert ok(resp)["secureJsonFields"] == {"basicAuthPassword": True}
            texts.append(resp.text)
        listing = c.get("/api/datasources")
        assert [d["name"] for d in ok(listing)] == ["Prometheus"]
        assert ok(listing)[0]["typeName"] == "Prometheus"
        texts.append(listing.text)
        assert ok(c.get("/api/datasources/id/Prometheus")) == {"id": added["id"]}

        dup = c.post("/api/datasources", json={**body, "uid": "other"})
        assert dup.status_code == 409
        assert dup.json() == {"message": "data source with the same name already exists"}
        dup = c.post("/api/datasources", json={**body, "name": "Other"})
        assert dup.status_code == 409
        assert dup.json() == {"message": "data source with the same uid already exists"}

        change = {**body, "url": "http://prom:9090", "secureJsonData": {}}
        updated = ok(c.put("/api/datasources/uid/prometheus", json=change))
        assert updated["message"] == "Datasource updated"
        assert updated["datasource"]["version"] == 2
        assert updated["datasource"]["secureJsonFields"] == {"basicAuthPassword": True}
        texts.append(json.dumps(updated))

        assert secret not in "".join(texts)
        assert secret not in grafana.state.read_text()

        assert ok(c.delete("/api/datasources/uid/prometheus")) == {
            "message": "Data source deleted",
            "id": added["id"],
        }
        resp = c.get("/api/datasources/uid/prometheus")
        assert (resp.status_code, resp.json()) == (404, {"message": "Data source not found"})


# --------------------------------------------------------------------------- orgs


def test_org_header_keeps_orgs_apart(grafana: Grafana) -> None:
    with grafana.client() as c:
        created = ok(c.post("/api/orgs", json={"name": "Second"}))
        assert created == {"message": "Organization created", "orgId": 2}
        assert c.post("/api/orgs", json={"name": "Second"}).status_code == 409
        ok(save(c, "Only in org one", uid="shared-uid"))
    with grafana.client(**{"X-Grafana-Org-Id": "2"}) as c2:
        assert ok(c2.get("/api/org"))["name"] == "Second"
        assert ok(c2.get("/api/search")) == []
        assert c2.get("/api/dashboards/uid/shared-uid").status_code == 404
        ok(save(c2, "Only in org two", uid="shared-uid"))  # uids are per org
        ok(c2.post("/api/datasources", json={"name": "Org2 DS", "type": "prometheus"}))
        assert [h["title"] for h in ok(c2.get("/api/search"))] == ["Only in org two"]
    with grafana.client() as c:
        assert ok(c.get("/api/org")) == {
            "id": 1,
            "name": "Main Org.",
            "address": {"address1": "", "address2": "", "city": "", "zipCode": "", "state": "",
                        "country": ""},
        }  # fmt: skip
        assert [h["title"] for h in ok(c.get("/api/search"))] == ["Only in org one"]
        assert ok(c.get("/api/datasources")) == []
    # A service-account token belongs to its org and is refused for another one.
    with grafana.bearer(ADMIN_TOKEN, **{"X-Grafana-Org-Id": "2"}) as t:
        resp = t.get("/api/search")
        assert resp.status_code == 401
        assert resp.json()["messageId"] == "api-key.organization-mismatch"
        assert resp.json()["message"] == "API key does not belong to the requested organization"
    # A user outside the org is signed in without a role there ("Org missing").
    with grafana.client(**{"X-Grafana-Org-Id": "99"}) as c99:
        assert ok(c99.get("/api/search")) == []
        assert ok(c99.get("/api/user"))["orgId"] == -1
        assert save(c99, "Nowhere").status_code == 403
    # Service accounts cannot create orgs.
    with grafana.bearer(ADMIN_TOKEN) as t:
        assert t.post("/api/orgs", json={"name": "Third"}).status_code == 403


# --------------------------------------------------------------------------- persistence


def test_state_survives_a_restart(spawn: Spawn) -> None:
    g = spawn()
    with g.client() as c:
        ok(c.post("/api/folders", json={"uid": "kept", "title": "Kept"}))
        first = ok(save(c, "Survivor", folder="kept", uid="survivor"))
        ok(save(c, "Survivor", folder="kept", uid="survivor", model={"version": 1}))
        ok(c.post("/api/datasources", json={"name": "Prometheus", "uid": "prometheus",
                                             "type": "prometheus"}))  # fmt: skip
        ok(c.post("/api/orgs", json={"name": "Second"}))
        assert ok(c.put("/api/user/password", json={"oldPassword": "admin",
                                                    "newPassword": "n3w-pass",
                                                    "confirmNew": "n3w-pass"})) == {
            "message": "User password changed"
        }  # fmt: skip
    assert g.stop() == 0
    state = json.loads(g.state.read_text())
    assert not list(g.state.parent.glob("*.tmp"))
    assert [d["uid"] for d in state["orgs"][0]["dashboards"]] == ["survivor"]

    # As in Grafana, --admin-password only applies to a new state: the changed one stays.
    again = spawn(state=g.state, password="admin")
    assert httpx.get(again.url + "/api/search", auth=ADMIN).status_code == 401
    with again.client(("admin", "n3w-pass")) as c:
        got = ok(c.get("/api/dashboards/uid/survivor"))
        assert (got["dashboard"]["version"], got["meta"]["folderUid"]) == (2, "kept")
        assert ok(save(c, "Survivor", folder="kept", uid="survivor",
                       model={"version": 2}))["version"] == 3  # fmt: skip
        fresh = ok(save(c, "Newcomer"))
        assert fresh["id"] > first["id"] and fresh["id"] != ok(c.get("/api/folders/kept"))["id"]
        assert ok(c.get("/api/datasources/uid/prometheus"))["name"] == "Prometheus"
        assert [o["name"] for o in ok(c.get("/api/orgs"))] == ["Main Org.", "Second"]


def test_write_behind_mode_flushes_on_sigterm(spawn: Spawn, tmp_path: Path) -> None:
    state = tmp_path / "wb" / "state.json"
    g = spawn("--write-behind", "5000", state=state)
    with g.client() as c:
        ok(save(c, "Written", uid="written"))
        deadline = time.monotonic() + 5
        while "written" not in state.read_text():  # the first write goes out at once
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ok(save(c, "Buffered", uid="buffered"))
    assert "buffered" not in state.read_text()  # then at most one write per 5 s
    assert g.stop() == 0
    assert "buffered" in state.read_text()
    again = spawn(state=state)
    with again.client() as c:
        ok(c.get("/api/dashboards/uid/buffered"))
        ok(c.get("/api/dashboards/uid/written"))


def test_corrupt_state_refuses_to_start(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{ not json")
    proc = subprocess.run(
        [sys.executable, str(DOUBLE), "--port", "0", "--state", str(state)],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "cannot load state" in proc.stderr


# --------------------------------------------------------------------------- misc


def test_unknown_routes_are_404_not_found(grafana: Grafana) -> None:
    with grafana.client() as c:
        for method, path in (("GET", "/api/nope"), ("PATCH", "/api/dashboards/db"),
                             ("GET", "/api/dashboards/uid/a/b/c")):  # fmt: skip
            resp = c.request(method, path)
            assert (resp.status_code, resp.json()) == (404, {"message": "Not found"}), path
    assert httpx.get(grafana.url + "/api/nope").status_code == 404


def test_user_and_frontend_settings(grafana: Grafana) -> None:
    with grafana.client() as c:
        user = ok(c.get("/api/user"))
        assert (user["login"], user["orgId"], user["isGrafanaAdmin"]) == ("admin", 1, True)
        ok(c.post("/api/datasources", json={"name": "P", "type": "prometheus", "isDefault": True}))
        settings = ok(c.get("/api/frontend/settings"))
        assert settings["buildInfo"]["version"] == "11.2.0"
        assert settings["defaultDatasource"] == "P"


def test_concurrent_requests_stay_consistent(grafana: Grafana) -> None:
    with grafana.client() as c:
        ok(save(c, "Hot", uid="hot"))
    errors: list[str] = []

    def worker(n: int) -> None:
        with grafana.client() as c:
            for i in range(10):
                r1 = save(c, "Hot", uid="hot", overwrite=True)
                r2 = save(c, f"Board {n}-{i}")
                r3 = c.get("/api/search", params={"limit": 5000})
                if {r1.status_code, r2.status_code, r3.status_code} != {200}:
                    errors.append(f"{r1.status_code} {r2.status_code} {r3.status_code}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with grafana.client() as c:
        assert ok(c.get("/api/dashboards/uid/hot"))["meta"]["version"] == 81
        hits = ok(c.get("/api/search", params={"limit": 5000}))
        assert len(hits) == 81 and len({h["id"] for h in hits}) == 81
    assert len(json.loads(grafana.state.read_text())["orgs"][0]["dashboards"]) == 81


def test_lab_reset_and_fault_injection(grafana: Grafana) -> None:
    with grafana.client() as c:
        ok(save(c, "Before reset"))
        with grafana.bearer(ADMIN_TOKEN) as t:
            assert t.post("/__lab/reset").status_code == 401  # lab endpoints: admin basic only
        assert ok(c.post("/__lab/reset")) == {"message": "lab state reset"}
        assert ok(c.get("/api/search")) == []
        ok(c.post("/__lab/fault", json={"path": "/api/search", "status": 503, "count": 2,
                                        "message": "database is locked"}))  # fmt: skip
        for _ in range(2):
            resp = c.get("/api/search")
            assert (resp.status_code, resp.json()) == (503, {"message": "database is locked"})
        assert c.get("/api/search").status_code == 200
        ok(c.post("/__lab/fault", json={"path": "/api/health", "drop": True}))
        with pytest.raises(httpx.TransportError):
            httpx.get(grafana.url + "/api/health")
        assert httpx.get(grafana.url + "/api/health").status_code == 200
        assert ok(c.get("/__lab/stats"))["total"] >= 5


# --------------------------------------------------------------------------- grafana-backup-tool


def test_api_keys_list_is_empty_for_admins_and_403_for_viewers(grafana: Grafana) -> None:
    # grafana-backup-tool's auth check: Grafana 11 migrated API keys to service accounts
    with grafana.bearer(ADMIN_TOKEN) as c:
        assert ok(c.get("/api/auth/keys")) == []
    with grafana.bearer(VIEWER_TOKEN) as c:
        resp = c.get("/api/auth/keys")
        assert resp.status_code == 403
        assert "apikeys:read" in resp.json()["message"]


def test_folder_permissions_list_grafanas_defaults(grafana: Grafana) -> None:
    with grafana.bearer(ADMIN_TOKEN) as c:
        ok(c.post("/api/folders", json={"uid": "perm", "title": "Perm Folder"}))
        perms = ok(c.get("/api/folders/perm/permissions"))
        assert [(p["role"], p["permission"], p["permissionName"]) for p in perms] == [
            ("Editor", 2, "Edit"),
            ("Viewer", 1, "View"),
        ]
        assert all(p["uid"] == "perm" and p["isFolder"] and p["title"] == "Perm Folder"
                   for p in perms)  # fmt: skip
        missing = c.get("/api/folders/nope/permissions")
        assert missing.status_code == 404
        assert missing.json()["message"] == "folder not found"
    with grafana.bearer(EDITOR_TOKEN) as c:
        assert c.get("/api/folders/perm/permissions").status_code == 403


# --------------------------------------------------------------------------- issue 16: the rest
# These tests share one double (module scope) and reset it before each test: spawning a
# double per test would double the file's runtime.


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Grafana]:
    tmp = tmp_path_factory.mktemp("shared-grafana")
    state = tmp / "state.json"
    env = {k: v for k, v in os.environ.items() if k != "GRAFANA_DOUBLE_TOKENS"}
    cmd = [
        sys.executable,
        str(DOUBLE),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--state",
        str(state),
        "--token",
        ADMIN_TOKEN,
        "--token",
        f"{VIEWER_TOKEN}:Viewer",
        "--token",
        f"{EDITOR_TOKEN}:editor",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    match = re.search(r"http://[\d.]+:\d+", proc.stdout.readline() if ready else "")
    assert match, "shared grafana double did not start"
    g = Grafana(match.group(), proc, state)
    yield g
    g.stop()


@pytest.fixture
def g(shared: Grafana) -> Grafana:
    with shared.client() as c:
        ok(c.post("/__lab/reset"))
    return shared


def test_users_org_membership_and_orgs(g: Grafana) -> None:
    with g.client() as c:
        created = ok(
            c.post(
                "/api/admin/users",
                json={
                    "name": "Alice",
                    "email": "alice@example.com",
                    "login": "alice",
                    "password": "pw-alice",
                },
            )
        )
        assert created["message"] == "User created" and created["id"] == 2
        dup = c.post("/api/admin/users", json={"login": "alice", "password": "whatever"})
        assert dup.status_code == 412 and "already exists" in dup.json()["message"]
        short = c.post("/api/admin/users", json={"login": "bob", "password": "x"})
        assert short.status_code == 400
        assert [u["login"] for u in ok(c.get("/api/users"))] == ["admin", "alice"]
        assert ok(c.get("/api/users", params={"perpage": 1, "page": 2}))[0]["login"] == "alice"
        found = ok(c.get("/api/users/lookup", params={"loginOrEmail": "alice@example.com"}))
        assert (found["id"], found["login"], found["name"], found["isGrafanaAdmin"]) == (
            2,
            "alice",
            "Alice",
            False,
        )
        missing = c.get("/api/users/lookup", params={"loginOrEmail": "nobody"})
        assert (missing.status_code, missing.json()) == (404, {"message": "user not found"})
        # auto_assign_org: new users join the main org as Viewers
        rows = ok(c.get("/api/org/users"))
        assert [(r["login"], r["role"], r["userId"]) for r in rows] == [
            ("admin", "Admin", 1),
            ("alice", "Viewer", 2),
        ]
        assert ok(c.get("/api/org/users/lookup", params={"query": "ali"}))[0]["login"] == "alice"
        # a new org: its creator is its Admin
        assert ok(c.post("/api/orgs", json={"name": "Staging"}))["orgId"] == 2
        assert [(r["login"], r["role"]) for r in ok(c.get("/api/orgs/2/users"))] == [
            ("admin", "Admin")
        ]
        added = ok(c.post("/api/orgs/2/users", json={"loginOrEmail": "alice", "role": "Editor"}))
        assert added == {"message": "User added to organization", "userId": 2}
        again = c.post("/api/orgs/2/users", json={"loginOrEmail": "alice", "role": "Editor"})
        assert again.status_code == 409
        assert again.json()["message"] == "User is already member of this organization"
        assert c.post(
            "/api/org/users", json={"loginOrEmail": "ghost", "role": "Viewer"}
        ).json() == {"message": "User not found"}
        bad_role = c.post("/api/org/users", json={"loginOrEmail": "alice", "role": "Boss"})
        assert (bad_role.status_code, bad_role.json()["message"]) == (400, "Invalid role specified")
        assert ok(c.get("/api/users/2/orgs")) == [
            {"orgId": 1, "name": "Main Org.", "role": "Viewer"},
            {"orgId": 2, "name": "Staging", "role": "Editor"},
        ]
        assert ok(c.get("/api/orgs/2"))["name"] == "Staging"
        assert ok(c.get("/api/orgs/name/Staging"))["id"] == 2
        assert c.get("/api/orgs/name/Nope").json() == {"message": "Organization not found"}
        assert c.get("/api/orgs/99").status_code == 404
        assert c.put("/api/orgs/2", json={"name": "Main Org."}).status_code == 400
        assert ok(c.put("/api/orgs/2", json={"name": "Stage"})) == {
            "message": "Organization updated"
        }
        assert ok(c.patch("/api/org/users/2", json={"role": "Editor"}))["message"] == (
            "Organization user updated"
        )
        last = c.patch("/api/org/users/1", json={"role": "Viewer"})
        assert last.status_code == 400  # the last admin cannot be demoted
    # the new user signs in with basic auth, with the role of the org asked for
    with g.client(("alice", "pw-alice")) as a:
        me = ok(a.get("/api/user"))
        assert (me["login"], me["orgId"]) == ("alice", 1)
        assert a.get("/api/users").status_code == 403  # server admins only
        assert save(a, "Alice was here").status_code == 200  # Editor in org 1 now
    with g.client(("alice", "pw-alice"), **{"X-Grafana-Org-Id": "2"}) as a2:
        assert ok(a2.get("/api/org"))["name"] == "Stage"
    with g.client() as c:
        ok(c.delete("/api/orgs/2/users/2"))
    with g.client(("alice", "pw-alice"), **{"X-Grafana-Org-Id": "2"}) as a2:
        # no longer a member: signed in with OrgID -1 ("Org missing"), no role
        assert ok(a2.get("/api/user"))["orgId"] == -1
        assert a2.get("/api/org").status_code == 403
    with g.bearer(ADMIN_TOKEN) as t:  # service accounts are never server admins
        assert t.get("/api/users").status_code == 403
        assert (
            t.post("/api/admin/users", json={"login": "x", "password": "xxxx"}).status_code == 403
        )


def test_teams_are_per_org_with_members(g: Grafana) -> None:
    with g.client() as c:
        uid2 = ok(c.post("/api/admin/users", json={"login": "bob", "password": "pw-bob"}))["id"]
        created = ok(c.post("/api/teams", json={"name": "oncall", "email": "oncall@example.com"}))
        assert created["message"] == "Team created" and created["teamId"] == 1
        taken = c.post("/api/teams", json={"name": "oncall"})
        assert (taken.status_code, taken.json()) == (409, {"message": "Team name taken"})
        ok(c.post("/api/teams", json={"name": "dba"}))
        page = ok(c.get("/api/teams/search", params={"perpage": 1, "page": 2}))
        assert (page["totalCount"], page["page"], page["perPage"]) == (2, 2, 1)
        assert [t["name"] for t in page["teams"]] == ["oncall"]
        hit = ok(c.get("/api/teams/search", params={"name": "oncall"}))["teams"][0]
        assert set(hit) >= {
            "id",
            "orgId",
            "name",
            "email",
            "avatarUrl",
            "memberCount",
            "permission",
        }
        assert ok(c.post("/api/teams/1/members", json={"userId": 1})) == {
            "message": "Member added to Team"
        }
        ok(c.post("/api/teams/1/members", json={"userId": uid2}))
        dup = c.post("/api/teams/1/members", json={"userId": uid2})
        assert (dup.status_code, dup.json()) == (
            400,
            {"message": "User is already added to this team"},
        )
        assert c.post("/api/teams/1/members", json={"userId": 999}).status_code == 404
        assert [m["login"] for m in ok(c.get("/api/teams/1/members"))] == ["admin", "bob"]
        assert ok(c.get("/api/teams/1"))["memberCount"] == 2
        assert ok(c.delete(f"/api/teams/1/members/{uid2}")) == {"message": "Team Member removed"}
        assert c.delete(f"/api/teams/1/members/{uid2}").status_code == 404
        assert ok(c.put("/api/teams/2", json={"name": "dbas", "email": "d@example.com"})) == {
            "message": "Team updated"
        }
        assert c.put("/api/teams/2", json={"name": "oncall"}).status_code == 409
        assert ok(c.delete("/api/teams/2")) == {"message": "Team deleted"}
        assert c.get("/api/teams/2").json() == {"message": "Team not found"}
        ok(c.post("/api/orgs", json={"name": "Other"}))
    with g.client(**{"X-Grafana-Org-Id": "2"}) as c2:
        assert ok(c2.get("/api/teams/search"))["totalCount"] == 0
        assert c2.get("/api/teams/1").status_code == 404
        ok(c2.post("/api/teams", json={"name": "oncall"}))  # names are per org
    for token in (VIEWER_TOKEN, EDITOR_TOKEN):
        with g.bearer(token) as v:
            assert v.get("/api/teams/search").status_code == 403
            assert v.post("/api/teams", json={"name": "x"}).status_code == 403


def test_folder_and_dashboard_permissions_replace_and_inherit(g: Grafana) -> None:
    with g.client() as c:
        ok(c.post("/api/folders", json={"uid": "ops", "title": "Ops"}))
        ok(save(c, "In ops", folder="ops", uid="in-ops"))
        ok(save(c, "At root", uid="at-root"))
        team = ok(c.post("/api/teams", json={"name": "oncall"}))["teamId"]
        user = ok(
            c.post(
                "/api/admin/users",
                json={"login": "carol", "email": "carol@example.com", "password": "pw-carol"},
            )
        )["id"]
        items = [
            {"role": "Viewer", "permission": 1},
            {"teamId": team, "permission": 2},
            {"userId": user, "permission": 4},
        ]
        assert ok(c.post("/api/folders/ops/permissions", json={"items": items})) == {
            "message": "Folder permissions updated"
        }
        got = ok(c.get("/api/folders/ops/permissions"))
        assert [
            (
                p.get("role"),
                p["teamId"],
                p["team"],
                p["userId"],
                p["userLogin"],
                p["userEmail"],
                p["permission"],
                p["permissionName"],
            )
            for p in got
        ] == [
            ("Viewer", 0, "", 0, "", "", 1, "View"),
            (None, team, "oncall", 0, "", "", 2, "Edit"),
            (None, 0, "", user, "carol", "carol@example.com", 4, "Admin"),
        ]
        assert "role" not in got[1]
        # POST replaces the whole list: Editor's default entry is gone, the Viewer one too now
        ok(
            c.post(
                "/api/folders/ops/permissions", json={"items": [{"teamId": team, "permission": 1}]}
            )
        )
        assert [
            (p["teamId"], p["permission"]) for p in ok(c.get("/api/folders/ops/permissions"))
        ] == [(team, 1)]
        # a dashboard in a folder has nothing of its own and shows the folder's as inherited
        dash = ok(c.get("/api/dashboards/uid/in-ops/permissions"))
        assert [(p["teamId"], p["inherited"], p["uid"]) for p in dash] == [(team, True, "ops")]
        ok(
            c.post(
                "/api/dashboards/uid/in-ops/permissions",
                json={"items": [{"userId": user, "permission": 2}]},
            )
        )
        dash = ok(c.get("/api/dashboards/uid/in-ops/permissions"))
        assert [(p["userId"], p["teamId"], p["inherited"]) for p in dash] == [
            (0, team, True),
            (user, 0, False),
        ]
        root = ok(c.get("/api/dashboards/uid/at-root/permissions"))
        assert [(p["role"], p["permission"], p["inherited"]) for p in root] == [
            ("Editor", 2, False),
            ("Viewer", 1, False),
        ]
        # Grafana's validatePermissionsUpdate: 400, with its two messages as Grafana has them
        both = c.post(
            "/api/folders/ops/permissions",
            json={"items": [{"userId": user, "teamId": team, "permission": 1}]},
        )
        assert (both.status_code, both.json()["message"]) == (
            400,
            "team and user permissions cannot have an associated role",
        )
        with_role = c.post(
            "/api/folders/ops/permissions",
            json={"items": [{"teamId": team, "role": "Viewer", "permission": 1}]},
        )
        assert with_role.status_code == 400
        assert c.post("/api/folders/ops/permissions", json={"nope": 1}).status_code == 400
        # an unknown team or level fails in SetPermissions, Grafana's 500; the list stays
        for item in ({"teamId": 999, "permission": 1}, {"role": "Viewer", "permission": 3}):
            resp = c.post("/api/folders/ops/permissions", json={"items": [item]})
            assert (resp.status_code, resp.json()) == (
                500,
                {"message": "Failed to create permission"},
            )
        assert len(ok(c.get("/api/folders/ops/permissions"))) == 1
        assert c.get("/api/folders/nope/permissions").status_code == 404
        missing = c.post("/api/dashboards/uid/nope/permissions", json={"items": []})
        assert (missing.status_code, missing.json()) == (404, {"message": "Dashboard not found"})
        # deleting the team takes its entries along
        ok(c.delete(f"/api/teams/{team}"))
        assert ok(c.get("/api/folders/ops/permissions")) == []
    for token in (VIEWER_TOKEN, EDITOR_TOKEN):
        with g.bearer(token) as v:
            assert v.get("/api/dashboards/uid/at-root/permissions").status_code == 403
            assert v.post("/api/folders/ops/permissions", json={"items": []}).status_code == 403


def _library_panel_dashboard(uid: str, lib_uid: str, name: str = "CPU") -> dict[str, Any]:
    return {
        "uid": uid,
        "title": f"Board {uid}",
        "panels": [
            {
                "id": 1,
                "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
                "libraryPanel": {"uid": lib_uid, "name": name},
            },
            {"id": 2, "type": "row", "panels": []},
        ],
    }


def test_library_panels_versions_connections_and_broken_references(g: Grafana) -> None:
    with g.client() as c:
        ok(c.post("/api/folders", json={"uid": "ops", "title": "Ops"}))
        body = {
            "uid": "cpu-lib",
            "folderUid": "ops",
            "name": "CPU",
            "kind": 1,
            "model": {"type": "timeseries", "title": "CPU", "description": "node cpu"},
        }
        lib = ok(c.post("/api/library-elements", json=body))["result"]
        assert (lib["uid"], lib["version"], lib["type"], lib["description"], lib["folderUid"]) == (
            "cpu-lib",
            1,
            "timeseries",
            "node cpu",
            "ops",
        )
        assert lib["meta"]["folderName"] == "Ops" and lib["meta"]["connectedDashboards"] == 0
        dup = c.post("/api/library-elements", json={**body, "uid": "other"})
        assert (dup.status_code, dup.json()) == (
            400,
            {"message": "library element with that name already exists"},
        )
        ok(c.post("/api/library-elements", json={**body, "uid": "cpu-root", "folderUid": ""}))
        assert (
            c.post(
                "/api/library-elements", json={**body, "uid": "x", "folderUid": "nope"}
            ).status_code
            == 400
        )
        assert (
            c.post("/api/library-elements", json={**body, "kind": 3, "uid": "y"}).status_code == 400
        )
        # search, by name
        found = ok(c.get("/api/library-elements", params={"searchString": "cpu", "perPage": 1}))
        assert (found["result"]["totalCount"], len(found["result"]["elements"])) == (2, 1)
        only_ops = ok(c.get("/api/library-elements", params={"folderFilterUIDs": "ops"}))
        assert [e["uid"] for e in only_ops["result"]["elements"]] == ["cpu-lib"]
        assert len(ok(c.get("/api/library-elements/name/CPU"))["result"]) == 2
        assert c.get("/api/library-elements/name/None").status_code == 404
        gone = c.get("/api/library-elements/nope")
        assert (gone.status_code, gone.json()) == (
            404,
            {"message": "library element could not be found"},
        )
        # PATCH needs the current version: a stale one is 412
        patched = ok(
            c.patch(
                "/api/library-elements/cpu-lib",
                json={"kind": 1, "version": 1, "name": "CPU usage", "model": {"type": "stat"}},
            )
        )["result"]
        assert (patched["version"], patched["name"], patched["type"]) == (2, "CPU usage", "stat")
        stale = c.patch(
            "/api/library-elements/cpu-lib", json={"kind": 1, "version": 1, "name": "x"}
        )
        assert (stale.status_code, stale.json()) == (
            412,
            {"message": "the library element has been changed by someone else"},
        )
        assert c.patch("/api/library-elements/cpu-lib", json={"kind": 1}).status_code == 400
        # a dashboard using it connects to it; a connected element cannot be deleted
        ok(
            c.post(
                "/api/dashboards/db",
                json={"dashboard": _library_panel_dashboard("uses", "cpu-lib")},
            )
        )
        conns = ok(c.get("/api/library-elements/cpu-lib/connections"))["result"]
        assert [(x["connectionUid"], x["kind"]) for x in conns] == [("uses", 1)]
        assert (
            ok(c.get("/api/library-elements/cpu-lib"))["result"]["meta"]["connectedDashboards"] == 1
        )
        refused = c.delete("/api/library-elements/cpu-lib")
        assert (refused.status_code, refused.json()) == (
            403,
            {"message": "the library element has connections"},
        )
        # a dashboard referencing a missing element is stored, but the save answers 500
        broken = c.post(
            "/api/dashboards/db",
            json={"dashboard": _library_panel_dashboard("broken", "missing-lib")},
        )
        assert (broken.status_code, broken.json()) == (
            500,
            {"message": "Error while connecting library panels"},
        )
        got = ok(c.get("/api/dashboards/uid/broken"))["dashboard"]["panels"][0]
        assert got == {
            "id": 1,
            "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
            "libraryPanel": {"uid": "missing-lib", "name": "CPU"},
        }
        # once the element exists, saving again connects
        ok(c.post("/api/library-elements", json={**body, "uid": "missing-lib", "name": "Late"}))
        resaved = c.post(
            "/api/dashboards/db",
            json={"dashboard": {**_library_panel_dashboard("broken", "missing-lib"), "version": 1}},
        )
        assert resaved.status_code == 200
        assert len(ok(c.get("/api/library-elements/missing-lib/connections"))["result"]) == 1
        # deleting the dashboard releases the element
        ok(c.delete("/api/dashboards/uid/uses"))
        assert ok(c.delete("/api/library-elements/cpu-lib"))["message"] == "Library element deleted"
    with g.bearer(VIEWER_TOKEN) as v:
        assert ok(v.get("/api/library-elements"))["result"]["totalCount"] == 2
        assert v.post("/api/library-elements", json={**body, "uid": "v"}).status_code == 403
        assert v.delete("/api/library-elements/cpu-root").status_code == 403
    with g.bearer(EDITOR_TOKEN) as e:
        assert (
            ok(e.delete("/api/library-elements/cpu-root"))["message"] == "Library element deleted"
        )


def _rule(
    folder: str, uid: str = "", group: str = "email", ds: str = "prometheus"
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "title": f"Email down {uid}",
        "folderUID": folder,
        "ruleGroup": group,
        "condition": "B",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": ds,
                "model": {"expr": 'up{job="email-service"}', "refId": "A"},
            },
            {
                "refId": "B",
                "datasourceUid": "__expr__",
                "model": {
                    "type": "threshold",
                    "expression": "A",
                    "refId": "B",
                    "conditions": [{"evaluator": {"type": "lt", "params": [1]}}],
                },
            },
        ],
        "for": "5m",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "down"},
        "noDataState": "NoData",
        "execErrState": "Error",
    }
    if uid:
        rule["uid"] = uid
    return rule


def test_alert_rules_and_rule_groups(g: Grafana) -> None:
    with g.client() as c:
        ok(c.post("/api/folders", json={"uid": "alerts", "title": "Alerts"}))
        ok(
            c.post(
                "/api/datasources",
                json={"name": "Prometheus", "uid": "prometheus", "type": "prometheus"},
            )
        )
        created = c.post("/api/v1/provisioning/alert-rules", json=_rule("alerts", "r1"))
        assert created.status_code == 201
        rule = created.json()
        assert (rule["uid"], rule["orgID"], rule["provenance"], rule["folderUID"]) == (
            "r1",
            1,
            "api",
            "alerts",
        )
        assert set(rule) >= {
            "id",
            "uid",
            "orgID",
            "folderUID",
            "ruleGroup",
            "title",
            "condition",
            "data",
            "updated",
            "noDataState",
            "execErrState",
            "for",
            "annotations",
            "labels",
            "provenance",
            "isPaused",
        }
        unprov = c.post(
            "/api/v1/provisioning/alert-rules",
            json=_rule("alerts", "r2"),
            headers={"X-Disable-Provenance": "true"},
        )
        assert (unprov.status_code, unprov.json()["provenance"]) == (201, "")
        assert (
            c.post("/api/v1/provisioning/alert-rules", json=_rule("alerts", "r1")).status_code
            == 409
        )
        no_folder = c.post("/api/v1/provisioning/alert-rules", json=_rule("nope", "r3"))
        assert no_folder.status_code == 400
        assert no_folder.json()["message"].startswith("invalid object specification")
        no_ds = c.post("/api/v1/provisioning/alert-rules", json=_rule("alerts", "r4", ds="gone"))
        assert no_ds.status_code == 400 and "data source" in no_ds.json()["message"]
        bad_cond = c.post(
            "/api/v1/provisioning/alert-rules", json={**_rule("alerts"), "condition": "Z"}
        )
        assert bad_cond.status_code == 400
        assert [r["uid"] for r in ok(c.get("/api/v1/provisioning/alert-rules"))] == ["r1", "r2"]
        assert c.get("/api/v1/provisioning/alert-rules/nope").status_code == 404
        updated = ok(
            c.put(
                "/api/v1/provisioning/alert-rules/r1",
                json={**_rule("alerts", "r1"), "title": "Renamed"},
            )
        )
        assert (updated["title"], updated["id"]) == ("Renamed", rule["id"])
        assert (
            c.put("/api/v1/provisioning/alert-rules/nope", json=_rule("alerts")).status_code == 404
        )
        group = ok(c.get("/api/v1/provisioning/folder/alerts/rule-groups/email"))
        assert (group["title"], group["folderUid"], group["interval"]) == ("email", "alerts", 60)
        assert [r["uid"] for r in group["rules"]] == ["r1", "r2"]
        # PUT on a group sets its interval and its rules: r2 is left out, so it goes
        put = ok(
            c.put(
                "/api/v1/provisioning/folder/alerts/rule-groups/email",
                json={"interval": 120, "rules": [_rule("alerts", "r1"), _rule("x", "r5")]},
            )
        )
        assert put["interval"] == 120 and [r["uid"] for r in put["rules"]] == ["r1", "r5"]
        assert put["rules"][1]["folderUID"] == "alerts"
        assert c.get("/api/v1/provisioning/alert-rules/r2").status_code == 404
        bad_interval = c.put(
            "/api/v1/provisioning/folder/alerts/rule-groups/email",
            json={"interval": 15, "rules": []},
        )
        assert bad_interval.status_code == 400
        assert c.get("/api/v1/provisioning/folder/alerts/rule-groups/nope").status_code == 404
        export = ok(c.get("/api/v1/provisioning/alert-rules/export", params={"format": "json"}))
        assert export["apiVersion"] == 1
        assert [(x["name"], x["folder"], x["interval"]) for x in export["groups"]] == [
            ("email", "Alerts", "2m")
        ]
        assert c.delete("/api/v1/provisioning/alert-rules/r5").status_code == 204
    with g.bearer(VIEWER_TOKEN) as v:
        assert len(ok(v.get("/api/v1/provisioning/alert-rules"))) == 1
        assert v.post("/api/v1/provisioning/alert-rules", json=_rule("alerts")).status_code == 403
        assert v.delete("/api/v1/provisioning/alert-rules/r1").status_code == 403
    with g.client() as c:  # a folder's rules go with it
        ok(c.delete("/api/folders/alerts"))
        assert ok(c.get("/api/v1/provisioning/alert-rules")) == []


def test_contact_points_policies_mute_timings_and_templates(g: Grafana) -> None:
    with g.client() as c:
        # a fresh org has Grafana's default receiver and policy tree
        default = ok(c.get("/api/v1/provisioning/contact-points"))
        assert [(p["name"], p["type"]) for p in default] == [("grafana-default-email", "email")]
        assert ok(c.get("/api/v1/provisioning/policies"))["receiver"] == "grafana-default-email"
        body = {
            "uid": "oncall-slack",
            "name": "oncall",
            "type": "slack",
            "settings": {
                "url": "https://hooks.slack.example/T000/B000/XXXX",
                "recipient": "#oncall",
            },
        }
        created = c.post("/api/v1/provisioning/contact-points", json=body)
        assert created.status_code == 202
        assert created.json()["settings"]["url"] == "[REDACTED]"
        listed = ok(c.get("/api/v1/provisioning/contact-points", params={"name": "oncall"}))
        assert listed == [
            {
                "uid": "oncall-slack",
                "name": "oncall",
                "type": "slack",
                "settings": {"url": "[REDACTED]", "recipient": "#oncall"},
                "disableResolveMessage": False,
                "provenance": "api",
            }
        ]
        assert "hooks.slack.example" not in g.state.read_text()  # secrets are never kept
        missing = c.post(
            "/api/v1/provisioning/contact-points",
            json={"name": "x", "type": "slack", "settings": {}},
        )
        assert missing.status_code == 400
        assert (
            c.post(
                "/api/v1/provisioning/contact-points",
                json={"name": "x", "type": "carrier-pigeon", "settings": {}},
            ).status_code
            == 400
        )
        # PUT with the redacted placeholder keeps the secret
        upd = c.put(
            "/api/v1/provisioning/contact-points/oncall-slack",
            json={**body, "settings": {"url": "[REDACTED]", "recipient": "#ops"}},
        )
        assert (upd.status_code, upd.json()) == (202, {"message": "contactpoint updated"})
        assert c.put("/api/v1/provisioning/contact-points/nope", json=body).status_code == 404
        # mute timings
        timing = {"name": "weekends", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]}
        made = c.post("/api/v1/provisioning/mute-timings", json=timing)
        assert made.status_code == 201 and made.json()["provenance"] == "api"
        dup = c.post("/api/v1/provisioning/mute-timings", json=timing)
        assert dup.status_code == 400
        assert dup.json()["messageId"] == "alerting.notifications.time-intervals.nameExists"
        assert ok(c.get("/api/v1/provisioning/mute-timings/weekends"))["name"] == "weekends"
        assert c.get("/api/v1/provisioning/mute-timings/nope").status_code == 404
        assert (
            c.put(
                "/api/v1/provisioning/mute-timings/weekends", json={"time_intervals": []}
            ).status_code
            == 202
        )
        # the policy tree: receivers and mute timings must exist
        tree = {
            "receiver": "grafana-default-email",
            "group_by": ["alertname"],
            "routes": [
                {
                    "receiver": "oncall",
                    "object_matchers": [["severity", "=", "critical"]],
                    "mute_time_intervals": ["weekends"],
                }
            ],
        }
        bad = c.put(
            "/api/v1/provisioning/policies", json={**tree, "routes": [{"receiver": "ghost"}]}
        )
        assert bad.status_code == 400 and "ghost" in bad.json()["message"]
        put = c.put(
            "/api/v1/provisioning/policies", json=tree, headers={"X-Disable-Provenance": "1"}
        )
        assert (put.status_code, put.json()) == (202, {"message": "policies updated"})
        got = ok(c.get("/api/v1/provisioning/policies"))
        assert got["routes"][0]["receiver"] == "oncall" and "provenance" not in got
        # in use: neither the contact point nor the mute timing can go
        in_use = c.delete("/api/v1/provisioning/contact-points/oncall-slack")
        assert in_use.status_code == 409
        assert in_use.json()["messageId"] == "alerting.notifications.contact-points.referenced"
        assert c.delete("/api/v1/provisioning/mute-timings/weekends").status_code == 409
        reset = c.delete("/api/v1/provisioning/policies")
        assert (reset.status_code, reset.json()) == (202, {"message": "policies resetted"})
        assert c.delete("/api/v1/provisioning/mute-timings/weekends").status_code == 204
        assert c.delete("/api/v1/provisioning/contact-points/oncall-slack").status_code == 202
        # templates
        put_t = c.put(
            "/api/v1/provisioning/templates/oncall.title",
            json={"template": '{{ define "oncall.title" }}[{{ .Status }}]{{ end }}'},
        )
        assert put_t.status_code == 202 and put_t.json()["name"] == "oncall.title"
        assert [t["name"] for t in ok(c.get("/api/v1/provisioning/templates"))] == ["oncall.title"]
        assert (
            c.put("/api/v1/provisioning/templates/bad", json={"template": "{{ define"}).status_code
            == 400
        )
        assert c.get("/api/v1/provisioning/templates/nope").status_code == 404
        assert c.delete("/api/v1/provisioning/templates/oncall.title").status_code == 204
        assert ok(c.get("/api/v1/provisioning/templates")) == []
    with g.bearer(VIEWER_TOKEN) as v:
        assert v.get("/api/v1/provisioning/contact-points").status_code == 200
        assert v.put("/api/v1/provisioning/policies", json=tree).status_code == 403
        assert v.post("/api/v1/provisioning/mute-timings", json=timing).status_code == 403
    with g.client(**{"X-Grafana-Org-Id": "2"}) as c2:
        assert c2.get("/api/v1/provisioning/contact-points").status_code == 403  # no org 2 yet


def test_annotations_and_org_preferences(g: Grafana) -> None:
    with g.client() as c:
        ok(save(c, "Annotated", uid="annotated"))
        first = ok(
            c.post(
                "/api/annotations",
                json={
                    "dashboardUID": "annotated",
                    "panelId": 1,
                    "time": 1000,
                    "timeEnd": 2000,
                    "tags": ["deploy", "v1"],
                    "text": "Deployed",
                },
            )
        )
        assert first == {"message": "Annotation added", "id": 1}
        ok(c.post("/api/annotations", json={"time": 5000, "tags": ["incident"], "text": "Outage"}))
        assert c.post("/api/annotations", json={"time": 1}).status_code == 400
        assert (
            c.post("/api/annotations", json={"dashboardUID": "nope", "text": "x"}).status_code
            == 400
        )
        everything = ok(c.get("/api/annotations"))
        assert [a["text"] for a in everything] == ["Outage", "Deployed"]  # newest first
        assert everything[1]["dashboardUID"] == "annotated" and everything[1]["dashboardId"] > 0
        assert [
            a["id"] for a in ok(c.get("/api/annotations", params={"from": 1500, "to": 3000}))
        ] == [1]
        assert [
            a["id"] for a in ok(c.get("/api/annotations", params={"tags": ["deploy", "v1"]}))
        ] == [1]
        assert [
            a["id"] for a in ok(c.get("/api/annotations", params={"dashboardUID": "annotated"}))
        ] == [1]
        assert len(ok(c.get("/api/annotations", params={"limit": 1}))) == 1
        assert ok(c.get("/api/annotations", params={"type": "alert"})) == []
        assert ok(c.patch("/api/annotations/1", json={"text": "Deployed v2"})) == {
            "message": "Annotation patched"
        }
        assert ok(c.get("/api/annotations", params={"dashboardUID": "annotated"}))[0]["tags"] == [
            "deploy",
            "v1",
        ]
        assert ok(c.put("/api/annotations/1", json={"text": "Replaced", "time": 1000})) == {
            "message": "Annotation updated"
        }
        replaced = ok(c.get("/api/annotations", params={"dashboardUID": "annotated"}))[0]
        assert (replaced["text"], replaced["tags"]) == ("Replaced", [])
        assert c.put("/api/annotations/99", json={"text": "x"}).json() == {
            "message": "Annotation not found"
        }
        assert ok(c.delete("/api/annotations/2")) == {"message": "Annotation deleted"}
        assert c.delete("/api/annotations/2").status_code == 404
        # preferences
        prefs = ok(c.get("/api/org/preferences"))
        assert (
            prefs["theme"],
            prefs["homeDashboardUID"],
            prefs["timezone"],
            prefs["weekStart"],
        ) == ("", "", "", "")
        assert ok(
            c.put(
                "/api/org/preferences",
                json={
                    "theme": "dark",
                    "timezone": "utc",
                    "homeDashboardUID": "annotated",
                    "weekStart": "monday",
                },
            )
        ) == {"message": "Preferences updated"}
        ok(c.patch("/api/org/preferences", json={"theme": "light"}))
        prefs = ok(c.get("/api/org/preferences"))
        assert (
            prefs["theme"],
            prefs["timezone"],
            prefs["homeDashboardUID"],
            prefs["weekStart"],
        ) == ("light", "utc", "annotated", "monday")
        assert prefs["homeDashboardId"] > 0
        assert c.put("/api/org/preferences", json={"theme": "purple"}).status_code == 400
        assert c.patch("/api/org/preferences", json={"homeDashboardUID": "nope"}).status_code == 404
        # a dashboard's delete takes its annotations along
        ok(c.delete("/api/dashboards/uid/annotated"))
        assert ok(c.get("/api/annotations")) == []
    with g.bearer(VIEWER_TOKEN) as v:
        assert v.get("/api/org/preferences").status_code == 200
        assert v.put("/api/org/preferences", json={"theme": "dark"}).status_code == 403
        assert v.post("/api/annotations", json={"text": "x"}).status_code == 403
    with g.bearer(EDITOR_TOKEN) as e:
        assert ok(e.post("/api/annotations", json={"text": "editor"}))["id"] == 3


def test_faults_target_one_object_one_org_and_send_headers(g: Grafana) -> None:
    with g.client() as c:
        before = ok(c.get("/__lab/stats"))  # counters are not reset with the state
        ok(save(c, "A", uid="a"))
        ok(save(c, "Ab", uid="ab"))
        ok(
            c.post(
                "/__lab/fault",
                json={
                    "path": "/api/dashboards/uid/a",
                    "exact": True,
                    "status": 403,
                    "message": "Access denied",
                },
            )
        )
        assert c.get("/api/dashboards/uid/ab").status_code == 200  # not a prefix match
        assert c.get("/api/dashboards/uid/a").status_code == 403
        assert c.get("/api/dashboards/uid/a").status_code == 200  # count 1 by default
        ok(
            c.post(
                "/__lab/fault",
                json={
                    "path": "/api/library-elements",
                    "method": "GET",
                    "status": 429,
                    "message": "Too Many Requests",
                    "headers": {"Retry-After": "2"},
                    "count": 2,
                },
            )
        )
        limited = c.get("/api/library-elements")
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
        assert c.get("/api/library-elements").status_code == 429
        assert c.get("/api/library-elements").status_code == 200
        ok(c.post("/api/orgs", json={"name": "Two"}))
        ok(c.post("/__lab/fault", json={"path": "/api/search", "status": 500, "orgId": 2}))
        assert c.get("/api/search").status_code == 200
        assert c.get("/api/search", headers={"X-Grafana-Org-Id": "2"}).status_code == 500
        pending = ok(c.get("/__lab/fault"))
        assert pending == []
        stats = ok(c.get("/__lab/stats"))
        for key, count in (
            ("GET ^/api/library-elements$", 3),
            ("GET ^/api/dashboards/uid/(?P<uid>[^/]+)$", 3),
        ):
            assert stats[key] - before.get(key, 0) == count


def test_new_objects_survive_a_restart_and_old_state_files_load(spawn: Spawn) -> None:
    first = spawn()
    with first.client() as c:
        ok(c.post("/api/folders", json={"uid": "ops", "title": "Ops"}))
        ok(
            c.post(
                "/api/datasources", json={"name": "P", "uid": "prometheus", "type": "prometheus"}
            )
        )
        ok(c.post("/api/admin/users", json={"login": "dave", "password": "pw-dave"}))
        team = ok(c.post("/api/teams", json={"name": "oncall"}))["teamId"]
        ok(c.post("/api/teams/1/members", json={"userId": 2}))
        ok(
            c.post(
                "/api/folders/ops/permissions", json={"items": [{"teamId": team, "permission": 2}]}
            )
        )
        ok(
            c.post(
                "/api/library-elements",
                json={
                    "uid": "lib",
                    "folderUid": "ops",
                    "name": "L",
                    "kind": 1,
                    "model": {"type": "stat"},
                },
            )
        )
        ok(c.post("/api/dashboards/db", json={"dashboard": _library_panel_dashboard("d", "lib")}))
        assert (
            c.post("/api/v1/provisioning/alert-rules", json=_rule("ops", "r1")).status_code == 201
        )
        cps = ok(c.get("/api/v1/provisioning/contact-points"))
        assert c.post("/api/v1/provisioning/mute-timings", json={"name": "m"}).status_code == 201
        assert c.put("/api/v1/provisioning/templates/t", json={"template": "x"}).status_code == 202
        ok(c.post("/api/annotations", json={"text": "kept", "time": 1}))
        ok(c.put("/api/org/preferences", json={"theme": "dark"}))
    assert first.stop() == 0
    again = spawn(state=first.state)
    with again.client() as c:
        assert ok(c.get("/api/users/lookup", params={"loginOrEmail": "dave"}))["id"] == 2
        assert ok(c.get("/api/teams/1"))["memberCount"] == 1
        assert ok(c.get("/api/folders/ops/permissions"))[0]["team"] == "oncall"
        assert len(ok(c.get("/api/library-elements/lib/connections"))["result"]) == 1
        assert c.delete("/api/library-elements/lib").status_code == 403
        assert ok(c.get("/api/v1/provisioning/alert-rules/r1"))["folderUID"] == "ops"
        assert ok(c.get("/api/v1/provisioning/folder/ops/rule-groups/email"))["interval"] == 60
        assert ok(c.get("/api/v1/provisioning/contact-points")) == cps  # same default uid
        assert ok(c.get("/api/v1/provisioning/mute-timings/m"))["name"] == "m"
        assert ok(c.get("/api/v1/provisioning/templates/t"))["template"] == "x"
        assert ok(c.get("/api/annotations"))[0]["text"] == "kept"
        assert ok(c.get("/api/org/preferences"))["theme"] == "dark"
        # ids keep counting after a restart
        assert ok(c.post("/api/teams", json={"name": "second"}))["teamId"] == 2
        assert (
            ok(c.post("/api/admin/users", json={"login": "erin", "password": "pw-erin"}))["id"] == 3
        )
    assert again.stop() == 0
    # a state file written before these objects existed still loads, with the defaults
    state = json.loads(first.state.read_text())
    for key in ("users", "counters"):
        state.pop(key)
    for org in state["orgs"]:
        for key in [
            k
            for k in org
            if k not in ("id", "name", "members", "folders", "datasources", "dashboards")
        ]:
            org.pop(key)
    first.state.write_text(json.dumps(state))
    old = spawn(state=first.state)
    with old.client() as c:
        assert ok(c.get("/api/teams/search"))["totalCount"] == 0
        assert [p["name"] for p in ok(c.get("/api/v1/provisioning/contact-points"))] == [
            "grafana-default-email"
        ]
        assert ok(c.get("/api/dashboards/uid/d"))["dashboard"]["uid"] == "d"
