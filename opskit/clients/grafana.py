"""Grafana HTTP API (the parts the core needs; backups extend it)."""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from opskit.clients.base import HttpBackend


class GrafanaClient(HttpBackend):
    name = "grafana"

    async def health(self) -> dict[str, Any]:
        body = await self.get_json("/api/health")
        return self.parse(
            "health",
            lambda: {"version": str(body["version"]), "database": str(body.get("database", ""))},
        )

    async def org(self) -> dict[str, Any]:
        """The signed-in organisation; proves the credentials work."""
        body = await self.get_json("/api/org")
        return self.parse("org", lambda: {"id": int(body["id"]), "name": str(body["name"])})

    # ------------------------------------------------------------ backup and restore

    async def search_page(self, kind: str, page: int, limit: int) -> list[dict[str, Any]]:
        """One page of `/api/search` (kind: dash-db or dash-folder), pages from 1."""
        body = await self.get_json("/api/search", {"type": kind, "limit": limit, "page": page})
        return self.parse("search", partial(_dicts, body))

    async def search_all(self, kind: str, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every hit of one kind, paging until a short page."""
        hits: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = await self.search_page(kind, page, page_size)
            hits.extend(batch)
            if len(batch) < page_size:
                return hits
            page += 1

    async def dashboard(self, uid: str) -> dict[str, Any]:
        """`{"dashboard": model, "meta": {...}}`; NotFound when missing."""
        body = await self.get_json(f"/api/dashboards/uid/{quote(uid, safe='')}")
        return self.parse(
            "dashboard",
            lambda: {"dashboard": dict(body["dashboard"]), "meta": dict(body.get("meta") or {})},
        )

    async def save_dashboard(
        self, model: dict[str, Any], folder_uid: str, overwrite: bool, message: str
    ) -> dict[str, Any]:
        body = {
            "dashboard": model,
            "folderUid": folder_uid,
            "overwrite": overwrite,
            "message": message,
        }
        result = await self.send("POST", "/api/dashboards/db", body)
        return self.parse("save dashboard", lambda: dict(result))

    async def folders(
        self, parent_uid: str | None = None, page_size: int = 1000
    ) -> list[dict[str, Any]]:
        """The direct children of a folder (top level when None), every page."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            params: dict[str, Any] = {"limit": page_size, "page": page}
            if parent_uid:
                params["parentUid"] = parent_uid
            body = await self.get_json("/api/folders", params)
            batch = self.parse("folders", partial(_dicts, body))
            out.extend(batch)
            if len(batch) < page_size:
                return out
            page += 1

    async def folder(self, uid: str) -> dict[str, Any]:
        body = await self.get_json(f"/api/folders/{quote(uid, safe='')}")
        return self.parse("folder", lambda: dict(body))

    async def create_folder(
        self, uid: str, title: str, parent_uid: str | None
    ) -> dict[str, Any] | None:
        """Create a folder; None when Grafana answers 409 (it exists already)."""
        body: dict[str, Any] = {"uid": uid, "title": title}
        if parent_uid:
            body["parentUid"] = parent_uid
        return await self._create("/api/folders", body)

    async def datasources(self) -> list[dict[str, Any]]:
        body = await self.get_json("/api/datasources")
        return self.parse("datasources", partial(_dicts, body))

    async def datasource(self, uid: str) -> dict[str, Any]:
        body = await self.get_json(f"/api/datasources/uid/{quote(uid, safe='')}")
        return self.parse("datasource", lambda: dict(body))

    async def create_datasource(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Create a data source; None on 409 (same name or uid exists)."""
        return await self._create("/api/datasources", record)

    async def _create(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = await self.http.post(path, json=body)
        except httpx.TransportError as exc:
            raise self.transport_error(exc) from exc
        if response.status_code == 409:
            return None
        result = self.decode(response)
        return self.parse(path, lambda: dict(result))


def _dicts(body: Any) -> list[dict[str, Any]]:
    return [dict(item) for item in body]
