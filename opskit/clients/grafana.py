"""Grafana HTTP API (the parts the core needs; backups extend it).

Answers become the records of opskit.models_grafana, and Grafana's error statuses typed
errors: 404 NotFound (the `find_*` methods answer None instead), 409 Conflict (the
`create_*` methods answer None instead), 412 VersionMismatch, 403 Forbidden (an
AuthFailed: these credentials lack one permission); all are BackendErrors.

`for_org(N)` is the same client (the same httpx connection pool) signed in to another
organisation: every request carries `X-Grafana-Org-Id: N`. A 429 is waited out
(Retry-After, capped) and retried a bounded number of times, for reads and writes alike;
writes are retried on nothing else.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from opskit.clients.base import RETRY_STATUS, HttpBackend, Params
from opskit.errors import AuthFailed, BadResponse, NotFound
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


class Forbidden(AuthFailed):
    """403: the credentials are valid but lack the permission for this one thing (a kind
    of object, one folder); a backup or restore skips it and says why."""

    title = "forbidden"


RATE_LIMIT_RETRIES = 4
MAX_RETRY_AFTER = 5.0


def retry_after(response: httpx.Response, attempt: int) -> float:
    """Seconds to wait after a 429: Retry-After (seconds), capped; else a short backoff."""
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.2 * (2**attempt)
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


class GrafanaClient(HttpBackend):
    name = "grafana"

    def __init__(
        self,
        http: httpx.AsyncClient,
        retries: int = 2,
        org_id: int | None = None,
        shared: bool = False,
    ) -> None:
        super().__init__(http, retries)
        self.org_id = org_id
        self.shared = shared  # borrowed pool: closing this client leaves it open

    def for_org(self, org_id: int | None) -> GrafanaClient:
        """This client, signed in to organisation `org_id` (None: the credentials' own)."""
        return GrafanaClient(self.http, self.retries, org_id, shared=True)

    async def aclose(self) -> None:
        if not self.shared:
            await super().aclose()

    def _headers(self) -> dict[str, str] | None:
        return {"X-Grafana-Org-Id": str(self.org_id)} if self.org_id else None

    async def _get(self, path: str, params: Params) -> httpx.Response:
        delay = 0.2
        limited = 0
        attempt = 0
        while True:
            last = attempt >= self.retries
            try:
                response = await self.http.get(path, params=params, headers=self._headers())
            except httpx.DecodingError as exc:
                raise self.undecodable(exc) from exc
            except httpx.TransportError as exc:
                if last:
                    raise self.transport_error(exc) from exc
            else:
                if response.status_code == 429 and limited < RATE_LIMIT_RETRIES:
                    await asyncio.sleep(retry_after(response, limited))
                    limited += 1
                    continue
                if response.status_code not in RETRY_STATUS or last:
                    return response
            attempt += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def send(
        self, method: str, path: str, json_body: Any = None, params: Params = None
    ) -> Any:
        """A write: retried only on 429 (after Retry-After), never on a timeout or 5xx."""
        limited = 0
        while True:
            try:
                response = await self.http.request(
                    method, path, json=json_body, params=params, headers=self._headers()
                )
            except httpx.DecodingError as exc:
                raise self.undecodable(exc) from exc
            except httpx.TransportError as exc:
                raise self.transport_error(exc) from exc
            if response.status_code == 429 and limited < RATE_LIMIT_RETRIES:
                await asyncio.sleep(retry_after(response, limited))
                limited += 1
                continue
            return self.decode(response)

    def decode(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 403:
            raise Forbidden(
                self.name,
                f"403 Forbidden: these credentials lack permission ({self.error_text(response)})",
            )
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

    async def update_folder(self, uid: str, title: str) -> None:
        """Rename a folder (overwrite: whatever its version)."""
        body = {"title": title, "overwrite": True}
        await self.send("PUT", f"/api/folders/{quote(uid, safe='')}", body)

    async def move_folder(self, uid: str, parent_uid: str | None) -> None:
        body = {"parentUid": parent_uid or ""}
        await self.send("POST", f"/api/folders/{quote(uid, safe='')}/move", body)

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

    async def update_datasource(self, uid: str, record: dict[str, Any]) -> None:
        await self.send("PUT", f"/api/datasources/uid/{quote(uid, safe='')}", record)

    # -------------------------------------------- the rest of an organisation (format 2)
    # Plain dicts: these are the payloads a backup stores and a restore sends back.
    # https://grafana.com/docs/grafana/latest/developers/http_api/

    async def _list(self, what: str, path: str, params: Params = None) -> list[dict[str, Any]]:
        body = await self.get_json(path, params)
        return self.parse(what, lambda: [dict(item) for item in body])

    async def _object(self, what: str, path: str, params: Params = None) -> dict[str, Any]:
        body = await self.get_json(path, params)
        return self.parse(what, lambda: dict(body))

    async def folder_permissions(self, uid: str) -> list[dict[str, Any]]:
        return await self._list("permissions", f"/api/folders/{quote(uid, safe='')}/permissions")

    async def set_folder_permissions(self, uid: str, items: list[dict[str, Any]]) -> None:
        """Replace every permission of the folder (`items`: role/teamId/userId + permission)."""
        path = f"/api/folders/{quote(uid, safe='')}/permissions"
        await self.send("POST", path, {"items": items})

    async def dashboard_permissions(self, uid: str) -> list[dict[str, Any]]:
        path = f"/api/dashboards/uid/{quote(uid, safe='')}/permissions"
        return await self._list("permissions", path)

    async def set_dashboard_permissions(self, uid: str, items: list[dict[str, Any]]) -> None:
        path = f"/api/dashboards/uid/{quote(uid, safe='')}/permissions"
        await self.send("POST", path, {"items": items})

    async def library_panels(self, page_size: int = 100) -> list[dict[str, Any]]:
        """Every library panel (kind 1), every page."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"kind": 1, "perPage": page_size, "page": page}
            body = await self.get_json("/api/library-elements", params)
            total, batch = self.parse("library elements", partial(_elements, body))
            out.extend(batch)
            if len(batch) < page_size or (isinstance(total, int) and len(out) >= total):
                return out
            page += 1

    async def find_library_panel(self, uid: str) -> dict[str, Any] | None:
        try:
            body = await self.get_json(f"/api/library-elements/{quote(uid, safe='')}")
        except NotFound:
            return None
        return self.parse("library element", lambda: dict(body["result"]))

    async def create_library_panel(self, element: dict[str, Any]) -> dict[str, Any]:
        body = await self.send("POST", "/api/library-elements", element)
        return self.parse("library element", lambda: dict(body["result"]))

    async def update_library_panel(self, uid: str, element: dict[str, Any]) -> dict[str, Any]:
        body = await self.send("PATCH", f"/api/library-elements/{quote(uid, safe='')}", element)
        return self.parse("library element", lambda: dict(body["result"]))

    # alerting: the provisioning API (rules, contact points, policies, mute timings,
    # templates); X-Disable-Provenance keeps what a restore writes editable in the UI

    async def alert_rules(self) -> list[dict[str, Any]]:
        return await self._list("alert rules", "/api/v1/provisioning/alert-rules")

    def _group_path(self, folder_uid: str, group: str) -> str:
        return (
            f"/api/v1/provisioning/folder/{quote(folder_uid, safe='')}"
            f"/rule-groups/{quote(group, safe='')}"
        )

    async def rule_group(self, folder_uid: str, group: str) -> dict[str, Any]:
        return await self._object("rule group", self._group_path(folder_uid, group))

    async def put_rule_group(self, folder_uid: str, group: str, body: dict[str, Any]) -> None:
        await self._provisioning("PUT", self._group_path(folder_uid, group), body)

    async def create_alert_rule(self, rule: dict[str, Any]) -> None:
        await self._provisioning("POST", "/api/v1/provisioning/alert-rules", rule)

    async def contact_points(self) -> list[dict[str, Any]]:
        return await self._list("contact points", "/api/v1/provisioning/contact-points")

    async def create_contact_point(self, point: dict[str, Any]) -> None:
        await self._provisioning("POST", "/api/v1/provisioning/contact-points", point)

    async def update_contact_point(self, uid: str, point: dict[str, Any]) -> None:
        path = f"/api/v1/provisioning/contact-points/{quote(uid, safe='')}"
        await self._provisioning("PUT", path, point)

    async def policies(self) -> dict[str, Any]:
        return await self._object("notification policies", "/api/v1/provisioning/policies")

    async def put_policies(self, tree: dict[str, Any]) -> None:
        await self._provisioning("PUT", "/api/v1/provisioning/policies", tree)

    async def mute_timings(self) -> list[dict[str, Any]]:
        return await self._list("mute timings", "/api/v1/provisioning/mute-timings")

    async def create_mute_timing(self, timing: dict[str, Any]) -> None:
        await self._provisioning("POST", "/api/v1/provisioning/mute-timings", timing)

    async def update_mute_timing(self, name: str, timing: dict[str, Any]) -> None:
        path = f"/api/v1/provisioning/mute-timings/{quote(name, safe='')}"
        await self._provisioning("PUT", path, timing)

    async def templates(self) -> list[dict[str, Any]]:
        body = await self.get_json("/api/v1/provisioning/templates")
        return self.parse("templates", lambda: [dict(item) for item in body or []])

    async def put_template(self, name: str, body: dict[str, Any]) -> None:
        path = f"/api/v1/provisioning/templates/{quote(name, safe='')}"
        await self._provisioning("PUT", path, body)

    async def _provisioning(self, method: str, path: str, body: Any) -> Any:
        limited = 0
        while True:
            try:
                response = await self.http.request(
                    method, path, json=body,
                    headers={**(self._headers() or {}), "X-Disable-Provenance": "true"},
                )  # fmt: skip
            except httpx.DecodingError as exc:
                raise self.undecodable(exc) from exc
            except httpx.TransportError as exc:
                raise self.transport_error(exc) from exc
            if response.status_code == 429 and limited < RATE_LIMIT_RETRIES:
                await asyncio.sleep(retry_after(response, limited))
                limited += 1
                continue
            return self.decode(response)

    # teams and users

    async def teams(self, page_size: int = 1000) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"perpage": page_size, "page": page}
            body = await self.get_json("/api/teams/search", params)
            batch = self.parse("teams", partial(_dicts, body, "teams"))
            out.extend(batch)
            if len(batch) < page_size:
                return out
            page += 1

    async def team_members(self, team_id: int) -> list[dict[str, Any]]:
        return await self._list("team members", f"/api/teams/{team_id}/members")

    async def create_team(self, name: str, email: str) -> int | None:
        """The new team's id; None on 409 (the name is taken)."""
        try:
            body = await self.send("POST", "/api/teams", {"name": name, "email": email})
        except Conflict:
            return None
        return self.parse("create team", lambda: int(body["teamId"]))

    async def update_team(self, team_id: int, name: str, email: str) -> None:
        await self.send("PUT", f"/api/teams/{team_id}", {"name": name, "email": email})

    async def add_team_member(self, team_id: int, user_id: int) -> None:
        await self.send("POST", f"/api/teams/{team_id}/members", {"userId": user_id})

    async def remove_team_member(self, team_id: int, user_id: int) -> None:
        await self.send("DELETE", f"/api/teams/{team_id}/members/{user_id}")

    async def org_users(self) -> list[dict[str, Any]]:
        """The users of the organisation (userId, login, email): to match team members."""
        return await self._list("org users", "/api/org/users")

    async def add_org_user(self, login_or_email: str, role: str) -> bool:
        """Make an existing user a member of the organisation; False when there is no such
        user (404) or it is a member already (409). Never creates a user."""
        try:
            await self.send(
                "POST", "/api/org/users", {"loginOrEmail": login_or_email, "role": role}
            )
        except (NotFound, Conflict):
            return False
        return True

    # annotations and preferences

    async def annotations(self, limit: int = 5000) -> list[dict[str, Any]]:
        params = {"limit": limit, "type": "annotation"}
        return await self._list("annotations", "/api/annotations", params)

    async def create_annotation(self, body: dict[str, Any]) -> None:
        await self.send("POST", "/api/annotations", body)

    async def preferences(self) -> dict[str, Any]:
        return await self._object("preferences", "/api/org/preferences")

    async def put_preferences(self, body: dict[str, Any]) -> None:
        await self.send("PUT", "/api/org/preferences", body)


def _elements(body: Any) -> tuple[Any, list[dict[str, Any]]]:
    result = dict(body["result"])
    return result.get("totalCount"), [dict(e) for e in result.get("elements") or []]


def _dicts(body: Any, key: str) -> list[dict[str, Any]]:
    return [dict(item) for item in body[key]]


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
