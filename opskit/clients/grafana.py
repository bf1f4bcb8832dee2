"""Grafana HTTP API (the parts the core needs; backups extend it).

Answers become the records of opskit.models_grafana, and Grafana's error statuses typed
errors: 404 NotFound (the `find_*` methods answer None instead), 409 Conflict (the
`create_*` methods answer None instead), 412 VersionMismatch; all are BackendErrors.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from opskit.clients.base import HttpBackend
from opskit.errors import BadResponse, NotFound
from opskit.models_grafana import (
    Dashboard,
    Datasource,
    Folder,
    GrafanaHealth,
    Org,
    SavedDashboard,
    SearchHit,
)


class Conflict(BadResponse):
    """409: the uid or name is taken (a folder, a data source)."""

    title = "conflict"


class VersionMismatch(BadResponse):
    """412: the dashboard changed since it was read, or its title is taken in the folder;
    `status` is Grafana's word for which (version-mismatch, name-exists)."""

    title = "version mismatch"

    def __init__(self, backend: str, message: str, status: str = "") -> None:
        super().__init__(backend, message)
        self.status = status


class GrafanaClient(HttpBackend):
    name = "grafana"

    def decode(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 409:
            raise Conflict(self.name, f"HTTP 409: {self.error_text(response)}")
        if status == 412:
            try:
                body = response.json()
            except ValueError:
                body = None
            word = body.get("status") if isinstance(body, dict) else None
            raise VersionMismatch(
                self.name,
                f"HTTP 412: {self.error_text(response)}",
                word if isinstance(word, str) else "",
            )
        return super().decode(response)

    async def health(self) -> GrafanaHealth:
        body = await self.get_json("/api/health")
        return self.parse(
            "health",
            lambda: GrafanaHealth(str(body["version"]), str(body.get("database", ""))),
        )

    async def org(self) -> Org:
        """The signed-in organisation; proves the credentials work."""
        body = await self.get_json("/api/org")
        return self.parse("org", lambda: Org(int(body["id"]), str(body["name"])))

    # Organisations (server admin only): https://grafana.com/docs/grafana/latest/
    # developers/http_api/org/#admin-organization-api

    async def orgs(self) -> list[Org]:
        body = await self.get_json("/api/orgs", {"perpage": 1000})
        return self.parse("orgs", lambda: [Org(int(o["id"]), str(o["name"])) for o in body])

    async def create_org(self, name: str) -> int:
        """Create an organisation; its id."""
        body = await self.send("POST", "/api/orgs", {"name": name})
        return self.parse("create org", lambda: int(body["orgId"]))

    async def delete_org(self, org_id: int) -> None:
        await self.send("DELETE", f"/api/orgs/{org_id}")

    # ------------------------------------------------------------ backup and restore

    async def search_page(self, kind: str, page: int, limit: int) -> list[SearchHit]:
        """One page of `/api/search` (kind: dash-db or dash-folder), pages from 1."""
        body = await self.get_json("/api/search", {"type": kind, "limit": limit, "page": page})
        return self.parse("search", lambda: [_hit(item) for item in body])

    async def search_all(self, kind: str, page_size: int = 1000) -> list[SearchHit]:
        """Every hit of one kind, paging until a short page."""
        hits: list[SearchHit] = []
        page = 1
        while True:
            batch = await self.search_page(kind, page, page_size)
            hits.extend(batch)
            if len(batch) < page_size:
                return hits
            page += 1

    async def dashboard(self, uid: str) -> Dashboard:
        """One dashboard by uid; NotFound when missing."""
        body = await self.get_json(f"/api/dashboards/uid/{quote(uid, safe='')}")
        return self.parse("dashboard", lambda: _dashboard(uid, body))

    async def find_dashboard(self, uid: str) -> Dashboard | None:
        """One dashboard by uid; None when missing."""
        try:
            return await self.dashboard(uid)
        except NotFound:
            return None

    async def save_dashboard(
        self, model: dict[str, Any], folder_uid: str, overwrite: bool, message: str
    ) -> SavedDashboard:
        """Create or replace a dashboard; VersionMismatch (412) when it exists (or its title
        does in the folder) and `overwrite` is off."""
        body = {
            "dashboard": model,
            "folderUid": folder_uid,
            "overwrite": overwrite,
            "message": message,
        }
        result = await self.send("POST", "/api/dashboards/db", body)
        return self.parse(
            "save dashboard",
            lambda: SavedDashboard(
                str(result["uid"]),
                _int(result.get("version")),
                str(result.get("url") or ""),
                str(result.get("folderUid") or ""),
            ),
        )

    async def folders(self, parent_uid: str | None = None, page_size: int = 1000) -> list[Folder]:
        """The direct children of a folder (top level when None), every page."""
        out: list[Folder] = []
        page = 1
        while True:
            params: dict[str, Any] = {"limit": page_size, "page": page}
            if parent_uid:
                params["parentUid"] = parent_uid
            body = await self.get_json("/api/folders", params)
            batch = self.parse("folders", partial(_folders, body, parent_uid))
            out.extend(batch)
            if len(batch) < page_size:
                return out
            page += 1

    async def folder(self, uid: str) -> Folder:
        """One folder by uid; NotFound when missing."""
        body = await self.get_json(f"/api/folders/{quote(uid, safe='')}")
        return self.parse("folder", lambda: _folder(body))

    async def find_folder(self, uid: str) -> Folder | None:
        """One folder by uid; None when missing."""
        try:
            return await self.folder(uid)
        except NotFound:
            return None

    async def create_folder(self, uid: str, title: str, parent_uid: str | None) -> Folder | None:
        """Create a folder; None when Grafana answers 409 (the uid, or the title in that
        parent, exists already)."""
        body: dict[str, Any] = {"uid": uid, "title": title}
        if parent_uid:
            body["parentUid"] = parent_uid
        try:
            result = await self.send("POST", "/api/folders", body)
        except Conflict:
            return None
        return self.parse("create folder", lambda: _folder(result, parent_uid))

    async def datasources(self) -> list[Datasource]:
        body = await self.get_json("/api/datasources")
        return self.parse("datasources", lambda: [_datasource(item) for item in body])

    async def datasource(self, uid: str) -> Datasource:
        """One data source by uid, in full (`raw`: what a backup stores); NotFound when
        missing. Grafana never includes the secrets, only secureJsonFields' names."""
        body = await self.get_json(f"/api/datasources/uid/{quote(uid, safe='')}")
        return self.parse("datasource", lambda: _datasource(body))

    async def create_datasource(self, record: dict[str, Any]) -> Datasource | None:
        """Create a data source; None on 409 (same name or uid exists)."""
        try:
            result = await self.send("POST", "/api/datasources", record)
        except Conflict:
            return None

        def made() -> Datasource:
            answered = result.get("datasource") if isinstance(result, dict) else None
            # Grafana 8+ answers the new data source; older ones only its id and name.
            return _datasource(answered if isinstance(answered, dict) else {**record, **result})

        return self.parse("create datasource", made)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _hit(item: Any) -> SearchHit:
    return SearchHit(
        str(item["uid"]),
        str(item.get("title") or ""),
        str(item.get("type") or ""),
        str(item.get("folderUid") or ""),
    )


def _folder(item: Any, listed_under: str | None = None) -> Folder:
    parent = item.get("parentUid") or listed_under
    return Folder(str(item["uid"]), str(item["title"]), str(parent) if parent else None)


def _folders(body: Any, parent_uid: str | None) -> list[Folder]:
    return [_folder(item, parent_uid) for item in body]


def _dashboard(uid: str, body: Any) -> Dashboard:
    model = dict(body["dashboard"])
    meta = dict(body.get("meta") or {})
    return Dashboard(
        str(model.get("uid") or uid),
        str(model.get("title") or ""),
        str(meta.get("folderUid") or ""),
        _int(meta.get("version", model.get("version"))),
        model,
        meta,
    )


def _datasource(item: Any) -> Datasource:
    raw = dict(item)
    return Datasource(
        str(raw.get("uid") or ""),
        str(raw.get("name") or ""),
        str(raw.get("type") or ""),
        raw.get("isDefault") is True,
        raw,
    )
