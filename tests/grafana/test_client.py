"""The Grafana client against the lab's double: typed records, and Grafana's error
statuses mapped once (404 NotFound or None, 409 Conflict or None, 412 VersionMismatch).
Backups keep storing Grafana's own answers: the files are checked against them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from opskit.clients.grafana import GrafanaClient, VersionMismatch
from opskit.errors import NotFound
from opskit.models_grafana import Dashboard, Datasource, Folder, GrafanaHealth, SearchHit
from opskit.tasks.grafana_backup import dashboard_file
from tests.conftest import GRAFANA_PASSWORD, GRAFANA_USER
from tests.grafana.conftest import Grafana, admin, model

T = TypeVar("T")


def call(grafana: Grafana, fn: Callable[[GrafanaClient], Awaitable[T]]) -> T:
    async def go() -> T:
        http = httpx.AsyncClient(
            base_url=grafana.lab.grafana, auth=(GRAFANA_USER, GRAFANA_PASSWORD), timeout=30
        )
        client = GrafanaClient(http, retries=0)
        try:
            return await fn(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_reads_are_typed_records(grafana: Grafana) -> None:
    health = call(grafana, lambda c: c.health())
    assert isinstance(health, GrafanaHealth) and health.version == "11.2.0"
    org = call(grafana, lambda c: c.org())
    assert org.id == 1 and org.name

    hits = call(grafana, lambda c: c.search_all("dash-db", 7))  # several pages
    assert all(isinstance(h, SearchHit) for h in hits)
    by_uid = {h.uid: h for h in hits}
    assert by_uid["gen-001"].folder_uid == "t-top" and by_uid["gen-000"].folder_uid == ""
    assert by_uid["gen-001"].title == "Generated 001" and by_uid["gen-001"].type == "dash-db"

    dash = call(grafana, lambda c: c.dashboard("gen-003"))
    assert isinstance(dash, Dashboard)
    assert (dash.uid, dash.title, dash.folder_uid) == ("gen-003", "Generated 003", "t-leaf")
    assert dash.version >= 1 and dash.model["title"] == "Generated 003"
    assert call(grafana, lambda c: c.find_dashboard("no-such-uid")) is None
    with pytest.raises(NotFound):
        call(grafana, lambda c: c.dashboard("no-such-uid"))

    children = call(grafana, lambda c: c.folders("t-top"))
    assert children == [Folder("t-mid", "Services", "t-top")]
    assert call(grafana, lambda c: c.folder("t-leaf")) == Folder("t-leaf", "Mail", "t-mid")
    assert call(grafana, lambda c: c.find_folder("no-such-folder")) is None

    sources = call(grafana, lambda c: c.datasources())
    assert all(isinstance(d, Datasource) for d in sources)
    prom = next(d for d in sources if d.uid == "prometheus")
    assert prom.type == "prometheus" and prom.is_default and prom.raw["uid"] == "prometheus"


def test_writes_map_409_and_412(grafana: Grafana) -> None:
    # 412: the dashboard exists and overwrite is off
    body = model("gen-010", "Generated 010")
    with pytest.raises(VersionMismatch) as caught:
        call(grafana, lambda c: c.save_dashboard(body, "", False, "test"))
    assert caught.value.status == "version-mismatch" and "HTTP 412" in caught.value.reason
    saved = call(grafana, lambda c: c.save_dashboard(body, "t-other", True, "test"))
    assert saved.uid == "gen-010" and saved.folder_uid == "t-other" and saved.version >= 2

    # 409: the folder uid is taken, the data source name too
    assert call(grafana, lambda c: c.create_folder("t-top", "Team", None)) is None
    made = call(grafana, lambda c: c.create_folder("t-new", "New", "t-top"))
    assert made == Folder("t-new", "New", "t-top")
    record = {"name": "Prometheus", "type": "prometheus", "url": "http://x", "access": "proxy"}
    assert call(grafana, lambda c: c.create_datasource(record)) is None
    created = call(grafana, lambda c: c.create_datasource({**record, "name": "Other"}))
    assert created is not None and created.name == "Other" and created.uid


def test_backup_files_hold_grafanas_answers(grafana: Grafana) -> None:
    """The on-disk format (2, one directory per organisation): data sources and dashboard
    models exactly as Grafana answers them; folders as {uid, title, parentUid,
    permissions}."""
    path = Path(grafana.backup()["path"]) / "orgs" / "1"
    with admin(grafana.lab) as client:
        listed = client.get("/api/datasources").json()
        want_ds = [client.get(f"/api/datasources/uid/{d['uid']}").json() for d in listed]
        got = client.get("/api/dashboards/uid/gen-007").json()
    assert json.loads((path / "datasources.json").read_text()) == want_ds
    stored: dict[str, Any] = json.loads((path / dashboard_file("gen-007")).read_text())
    stored.pop("permissions", None)  # when this Grafana has them: tests/grafana/test_kinds
    assert stored == {
        "uid": "gen-007",
        "folderUid": got["meta"]["folderUid"],
        "dashboard": got["dashboard"],
        "meta": {k: got["meta"].get(k) for k in ("version", "updated", "folderTitle")},
    }
    raw = (path / dashboard_file("gen-007")).read_text()
    reread = json.loads(raw)
    assert raw == json.dumps(reread, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    folders = json.loads((path / "folders.json").read_text())
    top = next(f for f in folders if f["uid"] == "t-top")
    assert (top["title"], top["parentUid"]) == ("Team", None)
    assert all(set(f) <= {"uid", "title", "parentUid", "permissions"} for f in folders)
