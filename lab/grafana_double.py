#!/usr/bin/env python3
"""A double of Grafana 11's HTTP API, for the opskit lab, its tests and its benchmarks.

Grafana itself cannot be installed here, so the lab runs this instead. It answers the
endpoints opskit and grafana-backup-tool use with Grafana 11.x's status codes, JSON shapes
and error bodies, following Grafana's HTTP API reference
(https://grafana.com/docs/grafana/latest/developers/http_api/: the dashboard, folder,
data source, organization, search, user, admin, authentication, team, folder and dashboard
permissions, library element, annotations, preferences and alerting provisioning pages; the
ROUTES table at the end lists every endpoint with its page). Standard library only.

    python lab/grafana_double.py --host 127.0.0.1 --port 3000 --state STATE.json \\
        [--admin-user admin --admin-password admin] [--token TOKEN[:ROLE[:ORG_ID]] ...] \\
        [--tokens-file FILE] [--version 11.2.0] [--write-behind MS] [--fsync] [--access-log]

Service-account tokens come from --token (repeatable), --tokens-file (one spec a line) and
the GRAFANA_DOUBLE_TOKENS environment variable (specs separated by commas or whitespace).
A spec is TOKEN, TOKEN:ROLE or TOKEN:ROLE:ORG_ID with ROLE one of Admin (default), Editor,
Viewer, None.

State (orgs and their members, users with password hashes, folders, dashboards with their
version counters, data sources and contact points without their secrets, teams, folder and
dashboard permissions, library elements and their connections, alert rules and groups,
contact points, the notification policy tree, mute timings, templates, annotations, org
preferences) is written to --state with write-temp-then-os.replace
after every mutation, before the response is sent, and loaded at start (--write-behind MS
coalesces the writes instead, for benchmarks; SIGTERM/SIGINT flush). As in Grafana, the
admin password given on the command line only applies when the state is first created.

Lab-only endpoints, not part of Grafana, all behind the admin user's basic auth:
    POST   /__lab/reset   wipe the state back to a fresh install
    GET    /__lab/fault   list pending injected faults
    POST   /__lab/fault   inject a fault: {"path": "/api/search", "method": "GET",
                          "status": 503, "message": "...", "count": 1, "delayMs": 0,
                          "drop": false, "headers": {"Retry-After": "2"},
                          "exact": false, "orgId": null}
                          path matches as a prefix unless "exact"; "orgId" limits it to
                          requests for that org (X-Grafana-Org-Id, default 1)
    DELETE /__lab/fault   clear injected faults
    GET    /__lab/stats   request counters, per "METHOD route-pattern" and "total"
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email.utils
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import traceback
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

JSON = dict[str, Any]
Body = JSON | list[Any] | bytes


class Answer:
    """A handler's answer with a status other than 200 (201, 202, 204)."""

    __slots__ = ("payload", "status")

    def __init__(self, status: int, payload: Body) -> None:
        self.status = status
        self.payload = payload


Payload = Body | Answer

STATE_FORMAT = "opskit-grafana-double/1"
DEFAULT_VERSION = "11.2.0"
COMMIT = "opskit-lab-double"
ROLES = ("Admin", "Editor", "Viewer", "None")
UID_RE = re.compile(r"^[a-zA-Z0-9\-_]*$")
MAX_UID = 40
MAX_NESTED_FOLDER_DEPTH = 4
ZERO_TIME = "0001-01-01T00:00:00Z"
PERMISSION_NAMES = {1: "View", 2: "Edit", 4: "Admin"}
REDACTED = "[REDACTED]"
# Contact point types: (settings of which one is required, secure settings Grafana encrypts
# and never returns), after Grafana's notifier channel configs (pkg/services/ngalert/notifier/
# channels_config).
CONTACT_POINT_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (("addresses",), ()),
    "slack": (("url", "token"), ("url", "token")),
    "webhook": (("url",), ("password", "authorization_credentials")),
    "pagerduty": (("integrationKey",), ("integrationKey",)),
    "teams": (("url",), ()),
    "telegram": (("bottoken",), ("bottoken",)),
    "discord": (("url",), ("url",)),
    "googlechat": (("url",), ("url",)),
    "opsgenie": (("apiKey",), ("apiKey",)),
    "victorops": (("url",), ("url",)),
    "pushover": (("userKey",), ("userKey", "apiToken")),
    "sensugo": (("url",), ("apiKey",)),
    "line": (("token",), ("token",)),
    "threema": (("gateway_id",), ("api_secret",)),
    "webex": (("room_id",), ("bot_token",)),
    "kafka": (("kafkaRestProxy",), ("password",)),
    "oncall": (("url",), ("password", "authorization_credentials")),
    "prometheus-alertmanager": (("url",), ("basicAuthPassword",)),
    "sns": (("topic",), ("access_key", "secret_key")),
}

# The basic roles' permissions, as far as the double models them. Grafana's RBAC grants
# (https://grafana.com/docs/grafana/latest/administration/roles-and-permissions/access-control/
# rbac-fixed-basic-role-definitions/): Viewers read dashboards, library panels, annotations
# and alerting; Editors also write those; org Admins manage data sources, permissions,
# teams, org users and preferences. Server-admin routes (users, orgs) are flagged per route.
VIEWER_PERMS = frozenset(
    {
        "dashboards:read",
        "folders:read",
        "orgs:read",
        "library.panels:read",
        "annotations:read",
        "alert.provisioning:read",
        "orgs.preferences:read",
    }
)
EDITOR_PERMS = VIEWER_PERMS | {
    "dashboards:create",
    "dashboards:write",
    "dashboards:delete",
    "folders:create",
    "folders:write",
    "folders:delete",
    "library.panels:create",
    "library.panels:write",
    "library.panels:delete",
    "annotations:create",
    "annotations:write",
    "annotations:delete",
    "alert.provisioning:write",
}
ADMIN_PERMS = EDITOR_PERMS | {
    "datasources:read",
    "datasources:create",
    "datasources:write",
    "datasources:delete",
    "orgs:write",
    "apikeys:read",
    "folders.permissions:read",
    "folders.permissions:write",
    "dashboards.permissions:read",
    "dashboards.permissions:write",
    "teams:read",
    "teams:create",
    "teams:write",
    "teams:delete",
    "org.users:read",
    "org.users:add",
    "org.users:write",
    "org.users:remove",
    "orgs.preferences:write",
}
ROLE_PERMS: dict[str, frozenset[str]] = {
    "Admin": frozenset(ADMIN_PERMS),
    "Editor": frozenset(EDITOR_PERMS),
    "Viewer": VIEWER_PERMS,
    "None": frozenset(),
}

DS_TYPES: dict[str, tuple[str, str]] = {
    "prometheus": (
        "Prometheus",
        "public/app/plugins/datasource/prometheus/img/prometheus_logo.svg",
    ),
    "elasticsearch": (
        "Elasticsearch",
        "public/app/plugins/datasource/elasticsearch/img/elasticsearch.svg",
    ),
    "alertmanager": ("Alertmanager", "public/app/plugins/datasource/alertmanager/img/logo.svg"),
    "loki": ("Loki", "public/app/plugins/datasource/loki/img/loki_icon.svg"),
    "graphite": ("Graphite", "public/app/plugins/datasource/graphite/img/graphite_logo.png"),
}


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An HTTP error answer, with Grafana's body for it."""

    def __init__(self, status: int, body: JSON) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


def error(code: int, message: str, /, **extra: Any) -> ApiError:
    return ApiError(code, {"message": message, **extra})


def errutil(status: int, message_id: str, message: str) -> ApiError:
    """Grafana's errutil-based errors (authentication) carry these five fields."""
    return ApiError(
        status,
        {
            "extra": None,
            "message": message,
            "messageId": message_id,
            "statusCode": status,
            "traceID": "",
        },
    )


def bad_request() -> ApiError:
    return error(400, "bad request data")


def dashboard_not_found() -> ApiError:
    return error(404, "Dashboard not found")


def folder_not_found() -> ApiError:
    return error(404, "folder not found", status="not-found")


def datasource_not_found() -> ApiError:
    return error(404, "Data source not found")


def contact_point_in_use() -> ApiError:
    return errutil(
        409,
        "alerting.notifications.contact-points.referenced",
        "contact point is currently referenced by a notification policy",
    )


def access_denied(needed: str) -> ApiError:
    return ApiError(
        403,
        {
            "accessErrorId": "ACE" + "".join(secrets.choice("0123456789") for _ in range(10)),
            "message": "You'll need additional permissions to perform this action. "
            f"Permissions needed: {needed}",
            "title": "Access denied",
        },
    )


# --------------------------------------------------------------------------- helpers


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")


def short_uid() -> str:
    """The shape of Grafana 11's generated uids: 14 chars, a letter first."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return secrets.choice("abcdef") + "".join(secrets.choice(alphabet) for _ in range(13))


def check_uid(uid: str) -> None:
    if len(uid) > MAX_UID:
        raise error(400, "uid too long, max 40 characters")
    if not UID_RE.match(uid):
        raise error(400, "uid contains illegal characters")


def as_int(value: Any, default: int = 0) -> int:
    """Grafana's simplejson MustInt: numbers (and numeric strings) count, the rest is 0."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("-")[0].split("."):
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group()) if digits else 0)
    return tuple(parts)


def hash_password(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()


def avatar_url(email: str) -> str:
    return "/avatar/" + hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class TokenSpec:
    token: str
    role: str
    org_id: int

    @classmethod
    def parse(cls, spec: str) -> TokenSpec:
        token, _, rest = spec.strip().partition(":")
        role_text, _, org_text = rest.partition(":")
        role = role_text.strip().capitalize() if role_text.strip() else "Admin"
        if not token:
            raise ValueError(f"empty token in {spec!r}")
        if role not in ROLES:
            raise ValueError(f"token role must be one of {', '.join(ROLES)}, got {role_text!r}")
        try:
            org_id = int(org_text) if org_text.strip() else 1
        except ValueError as exc:
            raise ValueError(f"token org id must be an integer, got {org_text!r}") from exc
        return cls(token, role, org_id)


@dataclass(frozen=True, slots=True)
class Identity:
    login: str
    user_id: int
    org_id: int  # -1 when the user is not a member of the requested org (Grafana's "Org missing")
    role: str
    server_admin: bool
    service_account: bool

    def can(self, permission: str) -> bool:
        return permission in ROLE_PERMS[self.role]

    @property
    def editor(self) -> bool:
        return self.role in ("Admin", "Editor")


@dataclass(slots=True)
class Folder:
    id: int
    uid: str
    title: str
    parent_uid: str | None
    description: str
    version: int
    created: str
    updated: str
    created_by: str
    updated_by: str

    def to_state(self) -> JSON:
        return {
            "id": self.id,
            "uid": self.uid,
            "title": self.title,
            "parentUid": self.parent_uid,
            "description": self.description,
            "version": self.version,
            "created": self.created,
            "updated": self.updated,
            "createdBy": self.created_by,
            "updatedBy": self.updated_by,
        }

    @classmethod
    def from_state(cls, d: JSON) -> Folder:
        return cls(
            d["id"], d["uid"], d["title"], d.get("parentUid"), d.get("description", ""),
            d["version"], d["created"], d["updated"], d["createdBy"], d["updatedBy"],
        )  # fmt: skip


@dataclass(slots=True)
class Dashboard:
    id: int
    uid: str
    title: str
    tags: list[str]
    folder_uid: str | None
    version: int
    created: str
    updated: str
    created_by: str
    updated_by: str
    model_json: str
    record: bytes = b""
    library_uids: tuple[str, ...] = ()

    def refresh_record(self) -> None:
        """The state-file record, cached so persisting 500 dashboards is a string join."""
        meta = dumps(
            {
                "id": self.id,
                "uid": self.uid,
                "folderUid": self.folder_uid,
                "version": self.version,
                "created": self.created,
                "updated": self.updated,
                "createdBy": self.created_by,
                "updatedBy": self.updated_by,
            }
        )
        self.record = (meta[:-1] + ',"model":' + self.model_json + "}").encode()

    @classmethod
    def from_state(cls, d: JSON) -> Dashboard:
        model = d["model"]
        dash = cls(
            d["id"], d["uid"], as_str(model.get("title")), tags_of(model), d.get("folderUid"),
            d["version"], d["created"], d["updated"], d["createdBy"], d["updatedBy"],
            dumps(model),
        )  # fmt: skip
        dash.library_uids = library_panel_uids(model)
        dash.refresh_record()
        return dash


def library_panel_uids(model: JSON) -> tuple[str, ...]:
    """The library panels a dashboard model references, rows' collapsed panels included,
    as Grafana's connectLibraryPanelsRecursively finds them."""
    found: dict[str, None] = {}

    def walk(panels: Any) -> None:
        if not isinstance(panels, list):
            return
        for panel in panels:
            if not isinstance(panel, dict):
                continue
            if panel.get("type") == "row":
                walk(panel.get("panels"))
                continue
            ref = panel.get("libraryPanel")
            if isinstance(ref, dict) and isinstance(ref.get("uid"), str) and ref["uid"]:
                found[ref["uid"]] = None

    walk(model.get("panels"))
    return tuple(found)


def tags_of(model: JSON) -> list[str]:
    tags = model.get("tags")
    if not isinstance(tags, list):
        return []
    return [t for t in tags if isinstance(t, str)]


@dataclass(slots=True)
class DataSource:
    id: int
    uid: str
    name: str
    type: str
    access: str
    url: str
    user: str
    database: str
    basic_auth: bool
    basic_auth_user: str
    with_credentials: bool
    is_default: bool
    json_data: JSON
    secure_fields: list[str]
    version: int
    read_only: bool = False

    def to_state(self) -> JSON:
        return {
            "id": self.id,
            "uid": self.uid,
            "name": self.name,
            "type": self.type,
            "access": self.access,
            "url": self.url,
            "user": self.user,
            "database": self.database,
            "basicAuth": self.basic_auth,
            "basicAuthUser": self.basic_auth_user,
            "withCredentials": self.with_credentials,
            "isDefault": self.is_default,
            "jsonData": self.json_data,
            "secureJsonFields": sorted(self.secure_fields),
            "version": self.version,
            "readOnly": self.read_only,
        }

    @classmethod
    def from_state(cls, d: JSON) -> DataSource:
        return cls(
            d["id"], d["uid"], d["name"], d["type"], d["access"], d["url"], d["user"],
            d["database"], d["basicAuth"], d["basicAuthUser"], d["withCredentials"],
            d["isDefault"], d["jsonData"], list(d["secureJsonFields"]), d["version"],
            d.get("readOnly", False),
        )  # fmt: skip

    def dto(self, org_id: int) -> JSON:
        _, logo = DS_TYPES.get(self.type, (self.type, ""))
        return {
            "id": self.id,
            "uid": self.uid,
            "orgId": org_id,
            "name": self.name,
            "type": self.type,
            "typeLogoUrl": logo,
            "access": self.access,
            "url": self.url,
            "user": self.user,
            "database": self.database,
            "basicAuth": self.basic_auth,
            "basicAuthUser": self.basic_auth_user,
            "withCredentials": self.with_credentials,
            "isDefault": self.is_default,
            "jsonData": self.json_data,
            "secureJsonFields": {name: True for name in sorted(self.secure_fields)},
            "version": self.version,
            "readOnly": self.read_only,
        }

    def list_item(self, org_id: int) -> JSON:
        type_name, logo = DS_TYPES.get(self.type, (self.type, ""))
        return {
            "id": self.id,
            "uid": self.uid,
            "orgId": org_id,
            "name": self.name,
            "type": self.type,
            "typeName": type_name,
            "typeLogoUrl": logo,
            "access": self.access,
            "url": self.url,
            "user": self.user,
            "database": self.database,
            "basicAuth": self.basic_auth,
            "isDefault": self.is_default,
            "jsonData": self.json_data,
            "readOnly": self.read_only,
        }


@dataclass(slots=True)
class Org:
    id: int
    name: str
    members: dict[str, str]
    folders: dict[str, Folder] = field(default_factory=dict)
    dashboards: dict[str, Dashboard] = field(default_factory=dict)
    datasources: dict[str, DataSource] = field(default_factory=dict)
    folder_ids: dict[int, str] = field(default_factory=dict)
    dash_ids: dict[int, str] = field(default_factory=dict)
    # The objects below are kept as the JSON Grafana answers with (plus private fields).
    teams: dict[int, JSON] = field(default_factory=dict)
    folder_acl: dict[str, list[JSON]] = field(default_factory=dict)  # absent: defaults
    dash_acl: dict[str, list[JSON]] = field(default_factory=dict)
    library: dict[str, JSON] = field(default_factory=dict)
    lib_connections: dict[str, dict[str, str]] = field(default_factory=dict)  # dash -> uid: at
    rules: dict[str, JSON] = field(default_factory=dict)
    group_intervals: dict[str, int] = field(default_factory=dict)  # "folder\x00group"
    contact_points: dict[str, JSON] = field(default_factory=dict)
    policy: JSON | None = None  # None: Grafana's default tree
    policy_provenance: str = ""
    mute_timings: dict[str, JSON] = field(default_factory=dict)
    templates: dict[str, JSON] = field(default_factory=dict)
    annotations: dict[int, JSON] = field(default_factory=dict)
    preferences: JSON = field(default_factory=dict)

    def ancestors(self, uid: str | None) -> list[Folder]:
        """Folders above `uid`, root first, `uid` itself last."""
        chain: list[Folder] = []
        seen: set[str] = set()
        while uid and uid in self.folders and uid not in seen:
            seen.add(uid)
            folder = self.folders[uid]
            chain.append(folder)
            uid = folder.parent_uid
        chain.reverse()
        return chain

    def descendants(self, uid: str) -> list[str]:
        found = [uid]
        i = 0
        while i < len(found):
            parent = found[i]
            found.extend(f.uid for f in self.folders.values() if f.parent_uid == parent)
            i += 1
        return found

    def uid_taken(self, uid: str) -> bool:
        return uid in self.folders or uid in self.dashboards

    def new_uid(self) -> str:
        while True:
            uid = short_uid()
            if not self.uid_taken(uid):
                return uid

    def put_dashboard(self, dash: Dashboard) -> None:
        self.dashboards[dash.uid] = dash
        self.dash_ids[dash.id] = dash.uid

    def drop_dashboard(self, dash: Dashboard) -> None:
        self.dashboards.pop(dash.uid, None)
        self.dash_ids.pop(dash.id, None)

    def put_folder(self, folder: Folder) -> None:
        self.folders[folder.uid] = folder
        self.folder_ids[folder.id] = folder.uid

    def meta_state(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "members": self.members,
            "folders": [f.to_state() for f in self.folders.values()],
            "datasources": [d.to_state() for d in self.datasources.values()],
            "teams": list(self.teams.values()),
            "folderAcl": self.folder_acl,
            "dashboardAcl": self.dash_acl,
            "libraryElements": list(self.library.values()),
            "libraryConnections": self.lib_connections,
            "alertRules": list(self.rules.values()),
            "ruleGroupIntervals": self.group_intervals,
            "contactPoints": list(self.contact_points.values()),
            "policy": self.policy,
            "policyProvenance": self.policy_provenance,
            "muteTimings": list(self.mute_timings.values()),
            "templates": list(self.templates.values()),
            "annotations": list(self.annotations.values()),
            "preferences": self.preferences,
        }

    def load_extras(self, o: JSON) -> None:
        """The objects added with issue 16; a state file written before has none of them."""
        self.teams = {int(t["id"]): t for t in o.get("teams", [])}
        self.folder_acl = dict(o.get("folderAcl", {}))
        self.dash_acl = dict(o.get("dashboardAcl", {}))
        self.library = {e["uid"]: e for e in o.get("libraryElements", [])}
        self.lib_connections = dict(o.get("libraryConnections", {}))
        self.rules = {r["uid"]: r for r in o.get("alertRules", [])}
        self.group_intervals = dict(o.get("ruleGroupIntervals", {}))
        if "contactPoints" in o:
            self.contact_points = {c["uid"]: c for c in o["contactPoints"]}
        else:
            self.contact_points = default_contact_points()
        self.policy = o.get("policy")
        self.policy_provenance = o.get("policyProvenance", "")
        self.mute_timings = {m["name"]: m for m in o.get("muteTimings", [])}
        self.templates = {t["name"]: t for t in o.get("templates", [])}
        self.annotations = {int(a["id"]): a for a in o.get("annotations", [])}
        self.preferences = dict(o.get("preferences", {}))


DEFAULT_RECEIVER = "grafana-default-email"


def default_contact_points() -> dict[str, JSON]:
    """A fresh org's Alertmanager configuration has one receiver, an email placeholder."""
    uid = short_uid()
    return {
        uid: {
            "uid": uid,
            "name": DEFAULT_RECEIVER,
            "type": "email",
            "settings": {"addresses": "<example@email.com>"},
            "disableResolveMessage": False,
            "provenance": "",
        }
    }


def default_policy() -> JSON:
    return {"receiver": DEFAULT_RECEIVER, "group_by": ["grafana_folder", "alertname"]}


def new_org(org_id: int, name: str, members: dict[str, str]) -> Org:
    org = Org(org_id, name, members)
    org.contact_points = default_contact_points()
    return org


@dataclass(slots=True)
class User:
    """A user other than the initial admin (POST /api/admin/users)."""

    id: int
    uid: str
    login: str
    email: str
    name: str
    salt: str
    password_hash: str
    created: str
    is_admin: bool = False

    def to_state(self) -> JSON:
        return {
            "id": self.id,
            "uid": self.uid,
            "login": self.login,
            "email": self.email,
            "name": self.name,
            "salt": self.salt,
            "passwordHash": self.password_hash,
            "created": self.created,
            "isAdmin": self.is_admin,
        }

    @classmethod
    def from_state(cls, d: JSON) -> User:
        return cls(
            int(d["id"]), d["uid"], d["login"], d["email"], d.get("name", ""), d["salt"],
            d["passwordHash"], d["created"], d.get("isAdmin", False),
        )  # fmt: skip


@dataclass(slots=True)
class AdminUser:
    login: str
    email: str
    salt: str
    password_hash: str
    created: str
    uid: str

    def to_state(self) -> JSON:
        return {
            "id": 1,
            "uid": self.uid,
            "login": self.login,
            "email": self.email,
            "salt": self.salt,
            "passwordHash": self.password_hash,
            "created": self.created,
        }


@dataclass(slots=True)
class Fault:
    path: str
    method: str | None
    status: int | None
    message: str
    remaining: int
    delay_ms: int
    drop: bool
    headers: dict[str, str] = field(default_factory=dict)
    exact: bool = False
    org_id: int | None = None

    def to_json(self) -> JSON:
        return {
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "message": self.message,
            "count": self.remaining,
            "delayMs": self.delay_ms,
            "drop": self.drop,
            "headers": self.headers,
            "exact": self.exact,
            "orgId": self.org_id,
        }

    def matches(self, method: str, path: str, org_id: int) -> bool:
        if self.method not in (None, method):
            return False
        if self.org_id is not None and self.org_id != org_id:
            return False
        return path == self.path if self.exact else path.startswith(self.path)


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return [v for v in self.query.get(name, []) if v != ""]

    def json(self) -> Any:
        if not self.body.strip():
            raise bad_request()
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request() from exc

    def json_object(self) -> JSON:
        data = self.json()
        if not isinstance(data, dict):
            raise bad_request()
        return data


Handler = Callable[["GrafanaDouble", Request, Identity], Payload]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    perms: tuple[str, ...] = ()  # any of these; empty: signed-in is enough
    public: bool = False
    server_admin: bool = False


# --------------------------------------------------------------------------- the double


class GrafanaDouble:
    """Grafana's state and behaviour, independent of HTTP plumbing."""

    def __init__(
        self,
        state_path: Path,
        admin_user: str,
        admin_password: str,
        tokens: Iterable[TokenSpec],
        version: str,
        fsync: bool = False,
        write_behind_ms: int = 0,
    ) -> None:
        self.state_path = state_path
        self.initial_admin = (admin_user, admin_password)
        self.version = version
        # Grafana 11.3 dropped the unique-title constraints (grafana/grafana#90687).
        self.unique_titles = version_tuple(version) < (11, 3)
        self.fsync = fsync
        self.write_behind = write_behind_ms / 1000
        self.dirty = threading.Event()
        self.closing = threading.Event()
        self.writer: threading.Thread | None = None
        self.tokens: dict[str, TokenSpec] = {t.token: t for t in tokens}
        self.lock = threading.RLock()
        self.write_lock = threading.Lock()
        self.generation = 0
        self.written_generation = 0
        self.auth_cache: set[str] = set()
        self.faults: list[Fault] = []
        self.fault_lock = threading.Lock()
        self.stats: dict[str, int] = {}
        self.stats_lock = threading.Lock()
        self.orgs: dict[int, Org] = {}
        self.admin = self._new_admin(admin_user, admin_password)
        self.users: dict[int, User] = {}
        self.counters: dict[str, int] = {}
        self.next_id = 1
        self.next_ds_id = 1
        self.next_org_id = 2
        if state_path.exists():
            self._load()
        else:
            self._reset_locked()
            self.persist()
        if write_behind_ms > 0:
            self.writer = threading.Thread(target=self._writer_loop, daemon=True)
            self.writer.start()

    # ------------------------------------------------------------------ state

    @staticmethod
    def _new_admin(login: str, password: str) -> AdminUser:
        salt = secrets.token_hex(8)
        return AdminUser(
            login=login,
            email="admin@localhost",
            salt=salt,
            password_hash=hash_password(password, salt),
            created=now_iso(),
            uid=short_uid(),
        )

    def _reset_locked(self) -> None:
        login, password = self.initial_admin
        self.admin = self._new_admin(login, password)
        self.orgs = {1: new_org(1, "Main Org.", {login: "Admin"})}
        self.users = {}
        self.counters = {}
        self.next_id = 1
        self.next_ds_id = 1
        self.next_org_id = 2
        self.auth_cache.clear()

    def _load(self) -> None:
        try:
            data = json.loads(self.state_path.read_text())
            if data.get("format") != STATE_FORMAT:
                raise ValueError(f"unknown state format {data.get('format')!r}")
            admin = data["admin"]
            self.admin = AdminUser(
                admin["login"], admin["email"], admin["salt"], admin["passwordHash"],
                admin["created"], admin["uid"],
            )  # fmt: skip
            self.next_id = int(data["nextId"])
            self.next_ds_id = int(data["nextDatasourceId"])
            self.next_org_id = int(data["nextOrgId"])
            self.users = {int(u["id"]): User.from_state(u) for u in data.get("users", [])}
            self.counters = {k: int(v) for k, v in data.get("counters", {}).items()}
            self.orgs = {}
            for o in data["orgs"]:
                org = Org(int(o["id"]), o["name"], dict(o["members"]))
                org.load_extras(o)
                for f in o["folders"]:
                    org.put_folder(Folder.from_state(f))
                for d in o["datasources"]:
                    ds = DataSource.from_state(d)
                    org.datasources[ds.uid] = ds
                for d in o["dashboards"]:
                    org.put_dashboard(Dashboard.from_state(d))
                self.orgs[org.id] = org
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"grafana-double: cannot load state {self.state_path}: {exc}") from exc

    def _snapshot_locked(self) -> tuple[int, list[bytes]]:
        self.generation += 1
        head = {
            "format": STATE_FORMAT,
            "grafanaVersion": self.version,
            "nextId": self.next_id,
            "nextDatasourceId": self.next_ds_id,
            "nextOrgId": self.next_org_id,
            "admin": self.admin.to_state(),
            "users": [u.to_state() for u in self.users.values()],
            "counters": self.counters,
        }
        parts = [dumps(head)[:-1].encode(), b',"orgs":[']
        for i, org in enumerate(self.orgs.values()):
            if i:
                parts.append(b",")
            parts.append(dumps(org.meta_state())[:-1].encode())
            parts.append(b',"dashboards":[')
            parts.append(b",".join([d.record for d in org.dashboards.values()]))
            parts.append(b"]}")
        parts.append(b"]}\n")
        return self.generation, parts

    def persist(self) -> None:
        """Write the state file (atomically) if nothing newer has been written already."""
        with self.lock:
            generation, parts = self._snapshot_locked()
        self._write(generation, parts)

    def _write(self, generation: int, parts: list[bytes]) -> None:
        with self.write_lock:
            if generation <= self.written_generation:
                return
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_name(self.state_path.name + ".tmp")
            with open(tmp, "wb") as fh:
                fh.write(b"".join(parts))
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, self.state_path)
            self.written_generation = generation

    def mutated(self) -> None:
        """Called with self.lock held at the end of a mutation.

        By default the state file is written before the response goes out: snapshot under
        the lock (cheap: a list of cached byte strings), write outside it. With
        --write-behind the writer thread coalesces mutations instead.
        """
        if self.writer is not None:
            self.dirty.set()
            return
        generation, parts = self._snapshot_locked()
        self.lock.release()
        try:
            self._write(generation, parts)
        finally:
            self.lock.acquire()

    def _writer_loop(self) -> None:
        while not self.closing.is_set():
            self.dirty.wait()
            self.dirty.clear()
            self.persist()
            self.closing.wait(self.write_behind)

    def close(self) -> None:
        """Flush: the final state is on disk when this returns."""
        self.closing.set()
        self.dirty.set()
        if self.writer is not None:
            self.writer.join()
        self.persist()

    def take_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def take(self, counter: str) -> int:
        """The next id of a sequence of its own (users start at 2: the admin is 1)."""
        value = self.counters.get(counter, 2 if counter == "user" else 1)
        self.counters[counter] = value + 1
        return value

    # ------------------------------------------------------------------ auth

    def authenticate(self, req: Request) -> Identity:
        requested_org = 0
        for raw in (req.arg("targetOrgId"), req.headers.get("x-grafana-org-id", "")):
            try:
                value = int(raw)
            except ValueError:
                continue
            if value > 0:
                requested_org = value
                break
        auth = req.headers.get("authorization", "").strip()
        scheme, _, credentials = auth.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and credentials.strip():
            return self._token_identity(credentials.strip(), requested_org)
        if scheme == "basic" and credentials.strip():
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise errutil(
                    400, "basic-auth.invalid-header", "Invalid Basic Auth Header"
                ) from exc
            user, sep, password = decoded.partition(":")
            if not sep:
                raise errutil(400, "basic-auth.invalid-header", "Invalid Basic Auth Header")
            if user == "api_key":
                return self._token_identity(password, requested_org)
            return self._user_identity(user, password, requested_org)
        raise errutil(401, "auth.unauthorized", "Unauthorized")

    def _token_identity(self, token: str, requested_org: int) -> Identity:
        spec = self.tokens.get(token)
        if spec is None:
            raise errutil(401, "api-key.invalid", "Invalid API key")
        if requested_org and requested_org != spec.org_id:
            raise errutil(
                401,
                "api-key.organization-mismatch",
                "API key does not belong to the requested organization",
            )
        org_id, role = spec.org_id, spec.role
        if org_id not in self.orgs:
            org_id, role = -1, "None"
        index = list(self.tokens).index(token)
        return Identity(
            login=f"sa-{spec.org_id}-lab-{spec.role.lower()}",
            user_id=1000 + index,
            org_id=org_id,
            role=role,
            server_admin=False,
            service_account=True,
        )

    def _user_identity(self, user: str, password: str, requested_org: int) -> Identity:
        key = hashlib.sha256(f"{user}\0{password}".encode()).hexdigest()
        with self.lock:
            admin = self.admin
            login, user_id, server_admin = admin.login, 1, True
            salt, password_hash = admin.salt, admin.password_hash
            if user not in (admin.login, admin.email):
                other = self.find_user(user)
                if other is None:
                    raise errutil(401, "password-auth.failed", "Invalid username or password")
                login, user_id, server_admin = other.login, other.id, other.is_admin
                salt, password_hash = other.salt, other.password_hash
            if key not in self.auth_cache:
                if not hmac.compare_digest(hash_password(password, salt), password_hash):
                    raise errutil(401, "password-auth.failed", "Invalid username or password")
                self.auth_cache.add(key)
            org_id = requested_org or self.home_org(login)
            org = self.orgs.get(org_id)
            role = org.members.get(login) if org else None
        if role is None:
            # A user who is not a member of the requested org (X-Grafana-Org-Id) is signed in
            # with OrgID -1 ("Org missing") and no role: Grafana's FetchSyncedUserHook
            # (pkg/services/authn/authnimpl/sync) resolves the user with GetSignedInUser for
            # that org, whose store sets OrgID -1 / "Org missing" when there is no org_user
            # row. Role-gated endpoints then answer 403, searches come back empty.
            org_id, role = -1, "None"
        return Identity(
            login=login,
            user_id=user_id,
            org_id=org_id,
            role=role,
            server_admin=server_admin,
            service_account=False,
        )

    def find_user(self, login_or_email: str) -> User | None:
        for u in self.users.values():
            if login_or_email in (u.login, u.email):
                return u
        return None

    def home_org(self, login: str) -> int:
        """The user's current org: the first one they belong to (the admin: Main Org.)."""
        if 1 in self.orgs and login in self.orgs[1].members:
            return 1
        for org in self.orgs.values():
            if login in org.members:
                return org.id
        return 1

    # ------------------------------------------------------------------ dispatch

    def handle(self, req: Request) -> tuple[int, Body]:
        route, params = self._match(req.method, req.path)
        if route is None:
            # Grafana's router answers unknown paths and wrong methods alike.
            return 404, {"message": "Not found"}
        req.params = params
        if route.public:
            return self._answer(route.handler(self, req, ANONYMOUS))
        ident = self.authenticate(req)
        if route.server_admin and not ident.server_admin:
            raise access_denied(route.perms[0] if route.perms else "server admin")
        if route.perms and not route.server_admin and not any(ident.can(p) for p in route.perms):
            needed = route.perms[0] if len(route.perms) == 1 else "any of " + ", ".join(route.perms)
            raise access_denied(needed)
        return self._answer(route.handler(self, req, ident))

    @staticmethod
    def _answer(result: Payload) -> tuple[int, Body]:
        if isinstance(result, Answer):
            return result.status, result.payload
        return 200, result

    @staticmethod
    def _match(method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in ROUTES:
            if route.method != method:
                continue
            m = route.pattern.match(path)
            if m is not None:
                return route, {k: unquote(v) for k, v in m.groupdict().items()}
        return None, {}

    def count(self, req: Request) -> None:
        route, _ = self._match(req.method, req.path)
        key = f"{req.method} {route.pattern.pattern if route else req.path}"
        with self.stats_lock:
            self.stats[key] = self.stats.get(key, 0) + 1
            self.stats["total"] = self.stats.get("total", 0) + 1

    def org_of(self, ident: Identity) -> Org | None:
        return self.orgs.get(ident.org_id)

    def require_org(self, ident: Identity) -> Org:
        org = self.orgs.get(ident.org_id)
        if org is None:
            raise access_denied("orgs:read")
        return org

    # ------------------------------------------------------------------ health, org, user

    def health(self, req: Request, ident: Identity) -> Payload:
        return {"commit": COMMIT, "database": "ok", "version": self.version}

    def get_org(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        return {
            "id": org.id,
            "name": org.name,
            "address": {
                "address1": "",
                "address2": "",
                "city": "",
                "zipCode": "",
                "state": "",
                "country": "",
            },
        }

    def list_orgs(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            orgs = sorted(self.orgs.values(), key=lambda o: o.name)
            return [{"id": o.id, "name": o.name} for o in orgs]

    def create_org(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        name = as_str(body.get("name")).strip()
        if not name:
            raise bad_request()
        with self.lock:
            if any(o.name == name for o in self.orgs.values()):
                raise error(409, "Organization name taken")
            # As in Grafana, the creator becomes the new org's Admin (CreateOrg's
            # AddOrgUser with RoleAdmin).
            org = new_org(self.next_org_id, name, {ident.login: "Admin"})
            self.next_org_id += 1
            self.orgs[org.id] = org
            self.mutated()
        return {"message": "Organization created", "orgId": org.id}

    def delete_org(self, req: Request, ident: Identity) -> Payload:
        try:
            org_id = int(req.params["id"])
        except ValueError as exc:
            raise error(400, "orgId is invalid") from exc
        if org_id == ident.org_id:
            raise error(400, "Can not delete org for current user")
        with self.lock:
            if org_id not in self.orgs:
                raise error(404, "Failed to delete organization. ID not found")
            del self.orgs[org_id]
            self.mutated()
        return {"message": "Organization deleted"}

    def get_user(self, req: Request, ident: Identity) -> Payload:
        if not ident.service_account:
            with self.lock:
                user = self._user_by_id(ident.user_id)
            if user is not None:
                return self._profile(user, ident.org_id)
        login, email, uid, created = ident.login, "", f"sa{ident.user_id}", ZERO_TIME
        return {
            "id": ident.user_id,
            "uid": uid,
            "email": email,
            "name": login,
            "login": login,
            "theme": "",
            "orgId": ident.org_id,
            "isGrafanaAdmin": ident.server_admin,
            "isDisabled": False,
            "isExternal": False,
            "isExternallySynced": False,
            "isGrafanaAdminExternallySynced": False,
            "authLabels": [],
            "updatedAt": created,
            "createdAt": created,
            "avatarUrl": "/avatar/"
            + hashlib.md5(email.encode(), usedforsecurity=False).hexdigest(),
            "isProvisioned": False,
        }

    def change_password(self, req: Request, ident: Identity) -> Payload:
        if ident.service_account:
            raise error(400, "Not a valid user")
        body = req.json_object()
        old, new = as_str(body.get("oldPassword")), as_str(body.get("newPassword"))
        with self.lock:
            admin = self.admin
            if not hmac.compare_digest(hash_password(old, admin.salt), admin.password_hash):
                raise error(401, "Invalid old password")
            if len(new) < 4:
                raise error(400, "New password is too short")
            admin.salt = secrets.token_hex(8)
            admin.password_hash = hash_password(new, admin.salt)
            self.auth_cache.clear()
            self.mutated()
        return {"message": "User password changed"}

    def frontend_settings(self, req: Request, ident: Identity) -> Payload:
        org = self.org_of(ident)
        sources: JSON = {}
        default = ""
        if org is not None:
            for ds in org.datasources.values():
                sources[ds.name] = {
                    "id": ds.id,
                    "uid": ds.uid,
                    "type": ds.type,
                    "name": ds.name,
                    "url": f"/api/datasources/proxy/uid/{ds.uid}",
                    "isDefault": ds.is_default,
                }
                if ds.is_default:
                    default = ds.name
        return {
            "buildInfo": {
                "version": self.version,
                "commit": COMMIT,
                "edition": "Open Source",
                "env": "production",
                "latestVersion": "",
                "hasUpdate": False,
                "hideVersion": False,
            },
            "datasources": sources,
            "defaultDatasource": default,
            "featureToggles": {"nestedFolders": True},
        }

    # ------------------------------------------------------------------ search

    def search(self, req: Request, ident: Identity) -> Payload:
        org = self.org_of(ident)
        if org is None or not ident.can("dashboards:read") or req.arg("starred") == "true":
            return []
        limit = as_int(req.arg("limit"), 0)
        if limit < 1:
            limit = 1000
        limit = min(limit, 5000)
        page = max(as_int(req.arg("page"), 1), 1)
        query = req.arg("query").lower()
        kind = req.arg("type")
        tags = set(req.args("tag"))
        folder_uids = set(req.args("folderUIDs"))
        for raw in req.args("folderIds"):
            fid = as_int(raw, -1)
            if fid == 0:
                folder_uids.add("general")
            elif fid in org.folder_ids:
                folder_uids.add(org.folder_ids[fid])
            else:
                folder_uids.add("\0missing")
        uids = set(req.args("dashboardUIDs")) | set(req.args("dashboardUID"))
        ids = {as_int(v, -1) for v in req.args("dashboardIds")}

        def parent_ok(parent: str | None) -> bool:
            # "general" is the root: items whose folder_uid is NULL, subfolders included.
            return not folder_uids or (parent or "general") in folder_uids

        with self.lock:
            rows: list[tuple[str, int, Folder | Dashboard]] = []
            if kind in ("", "dash-folder") and not tags:
                for f in org.folders.values():
                    if query and query not in f.title.lower():
                        continue
                    if (uids and f.uid not in uids) or (ids and f.id not in ids):
                        continue
                    if parent_ok(f.parent_uid):
                        rows.append((f.title, f.id, f))
            if kind in ("", "dash-db"):
                for d in org.dashboards.values():
                    if query and query not in d.title.lower():
                        continue
                    if (uids and d.uid not in uids) or (ids and d.id not in ids):
                        continue
                    if tags and not tags.issubset(d.tags):
                        continue
                    if parent_ok(d.folder_uid):
                        rows.append((d.title, d.id, d))
            # SQL orders by title (binary collation) and pages; Grafana then re-sorts the
            # page: folders first, then case-insensitive title.
            rows.sort(key=lambda r: (r[0], r[1]))
            window = rows[(page - 1) * limit : page * limit]
            hits = [self._hit(org, item) for _, _, item in window]
        hits.sort(key=lambda h: (h["type"] != "dash-folder", h["title"].lower()))
        return hits

    def _hit(self, org: Org, item: Folder | Dashboard) -> JSON:
        slug = slugify(item.title)
        if isinstance(item, Folder):
            hit: JSON = {
                "id": item.id,
                "uid": item.uid,
                "orgId": org.id,
                "title": item.title,
                "uri": f"db/{slug}",
                "url": f"/dashboards/f/{item.uid}/{slug}",
                "slug": "",
                "type": "dash-folder",
                "tags": [],
                "isStarred": False,
            }
            parent_uid = item.parent_uid
        else:
            hit = {
                "id": item.id,
                "uid": item.uid,
                "orgId": org.id,
                "title": item.title,
                "uri": f"db/{slug}",
                "url": f"/d/{item.uid}/{slug}",
                "slug": "",
                "type": "dash-db",
                "tags": sorted(item.tags),
                "isStarred": False,
            }
            parent_uid = item.folder_uid
        parent = org.folders.get(parent_uid) if parent_uid else None
        if parent is not None:
            hit["folderId"] = parent.id
            hit["folderUid"] = parent.uid
            hit["folderTitle"] = parent.title
            hit["folderUrl"] = f"/dashboards/f/{parent.uid}/{slugify(parent.title)}"
        hit["sortMeta"] = 0
        hit["isDeleted"] = False
        return hit

    # ------------------------------------------------------------------ dashboards

    def get_dashboard(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            dash = org.dashboards.get(req.params["uid"])
            if dash is None:
                raise dashboard_not_found()
            folder = org.folders.get(dash.folder_uid) if dash.folder_uid else None
            slug = slugify(dash.title)
            editor = ident.editor
            meta: JSON = {
                "type": "db",
                "canSave": editor,
                "canEdit": editor,
                "canAdmin": ident.role == "Admin",
                "canStar": True,
                "canDelete": editor,
                "slug": slug,
                "url": f"/d/{dash.uid}/{slug}",
                "expires": ZERO_TIME,
                "created": dash.created,
                "updated": dash.updated,
                "updatedBy": dash.updated_by,
                "createdBy": dash.created_by,
                "version": dash.version,
                "hasAcl": False,
                "isFolder": False,
                "folderId": folder.id if folder else 0,
                "folderUid": folder.uid if folder else "",
                "folderTitle": folder.title if folder else "General",
                "folderUrl": f"/dashboards/f/{folder.uid}/{slugify(folder.title)}"
                if folder
                else "",
                "provisioned": False,
                "provisionedExternalId": "",
                "annotationsPermissions": {
                    "dashboard": {"canAdd": editor, "canEdit": editor, "canDelete": editor},
                    "organization": {"canAdd": editor, "canEdit": editor, "canDelete": editor},
                },
            }
            model_json = dash.model_json
        return ('{"dashboard":' + model_json + ',"meta":' + dumps(meta) + "}").encode()

    def delete_dashboard(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            dash = org.dashboards.get(req.params["uid"])
            if dash is None:
                raise dashboard_not_found()
            self._forget_dashboard(org, dash)
            self.mutated()
        return {"title": dash.title, "message": f"Dashboard {dash.title} deleted", "id": dash.id}

    @staticmethod
    def _forget_dashboard(org: Org, dash: Dashboard) -> None:
        """A dashboard's delete takes its permissions, connections and annotations along."""
        org.drop_dashboard(dash)
        org.dash_acl.pop(dash.uid, None)
        org.lib_connections.pop(dash.uid, None)
        for aid in [i for i, a in org.annotations.items() if a["dashboardUID"] == dash.uid]:
            del org.annotations[aid]
        if org.preferences.get("homeDashboardUID") == dash.uid:
            org.preferences["homeDashboardUID"] = ""

    def tags(self, req: Request, ident: Identity) -> Payload:
        org = self.org_of(ident)
        counts: dict[str, int] = {}
        if org is not None:
            with self.lock:
                for d in org.dashboards.values():
                    for t in set(d.tags):
                        counts[t] = counts.get(t, 0) + 1
        return [{"term": t, "count": c} for t, c in sorted(counts.items())]

    def save_dashboard(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        raw = body.get("dashboard")
        model: JSON = dict(raw) if isinstance(raw, dict) else {}
        overwrite = body.get("overwrite") is True
        message = body.get("message")
        if isinstance(message, str) and len(message) > 500:
            raise error(400, "message too long, max 500 characters")
        title = as_str(model.get("title"))
        if not title.strip():
            raise error(400, "Dashboard title cannot be empty", status="empty-name")
        uid = as_str(model.get("uid"))
        if uid:
            check_uid(uid)
        dash_id = as_int(model.get("id"))
        version = as_int(model.get("version"))
        folder_uid = as_str(body.get("folderUid"))
        folder_id = as_int(body.get("folderId"))
        org = self.require_org(ident)
        with self.lock:
            folder: Folder | None = None
            if folder_uid:
                folder = org.folders.get(folder_uid)
                if folder is None:
                    raise error(400, "folder not found")
            elif folder_id:
                fuid = org.folder_ids.get(folder_id)
                if fuid is None:
                    raise error(400, "folder not found")
                folder = org.folders[fuid]
            parent = folder.uid if folder else None
            if uid and uid in org.folders:
                raise error(400, "Dashboard cannot be changed to a folder")

            by_id: Dashboard | None = None
            if dash_id:
                if dash_id in org.folder_ids:
                    raise error(400, "Dashboard cannot be changed to a folder")
                found = org.dash_ids.get(dash_id)
                if found is None:
                    raise error(404, "Dashboard not found", status="not-found")
                by_id = org.dashboards[found]
                uid = uid or by_id.uid
            by_uid = org.dashboards.get(uid) if uid else None
            if by_id is not None and by_uid is not None and by_id is not by_uid:
                raise error(400, "A dashboard with the same uid already exists")
            existing = by_id or by_uid
            if existing is not None and version != existing.version:
                if not overwrite:
                    raise error(
                        412,
                        "The dashboard has been changed by someone else",
                        status="version-mismatch",
                    )
                version = existing.version

            if self.unique_titles:
                clash = self._title_clash(org, title, parent)
                if clash is not None and clash is not existing:
                    if isinstance(clash, Folder):
                        raise error(
                            400, "Dashboard name cannot be the same as folder", status="name-match"
                        )
                    if not overwrite:
                        raise error(
                            412,
                            "A dashboard with the same name in the folder already exists",
                            status="name-exists",
                        )
                    existing, uid, version = clash, clash.uid, clash.version

            stamp = now_iso()
            if existing is not None:
                new_id, new_uid, new_version = existing.id, existing.uid, existing.version + 1
                created, created_by = existing.created, existing.created_by
            else:
                new_id, new_uid, new_version = self.take_id(), uid or org.new_uid(), 1
                created, created_by = stamp, ident.login
            model["id"] = new_id
            model["uid"] = new_uid
            model["version"] = new_version
            dash = Dashboard(
                new_id, new_uid, title, tags_of(model), parent, new_version, created, stamp,
                created_by, ident.login, dumps(model),
            )  # fmt: skip
            dash.library_uids = library_panel_uids(model)
            dash.refresh_record()
            if existing is not None:
                org.drop_dashboard(existing)
            org.put_dashboard(dash)
            connected = self._connect_library_panels(org, dash)
            self.mutated()
        if not connected:
            # Grafana 11's postDashboard connects library panels after storing the
            # dashboard: a missing element fails the request, the dashboard stays saved.
            raise error(500, "Error while connecting library panels")
        slug = slugify(title)
        return {
            "id": new_id,
            "uid": new_uid,
            "url": f"/d/{new_uid}/{slug}",
            "status": "success",
            "version": new_version,
            "slug": slug,
            "folderUid": parent or "",
        }

    @staticmethod
    def _title_clash(org: Org, title: str, parent: str | None) -> Folder | Dashboard | None:
        for f in org.folders.values():
            if f.parent_uid == parent and f.title == title:
                return f
        for d in org.dashboards.values():
            if d.folder_uid == parent and d.title == title:
                return d
        return None

    # ------------------------------------------------------------------ folders

    def _folder_dto(self, org: Org, folder: Folder, ident: Identity, nested: bool = True) -> JSON:
        editor = ident.editor
        dto: JSON = {
            "id": folder.id,
            "uid": folder.uid,
            "orgId": org.id,
            "title": folder.title,
            "url": f"/dashboards/f/{folder.uid}/{slugify(folder.title)}" if nested else "",
            "hasAcl": False,
            "canSave": editor,
            "canEdit": editor,
            "canAdmin": ident.role == "Admin",
            "canDelete": editor,
            "createdBy": folder.created_by,
            "created": folder.created,
            "updatedBy": folder.updated_by,
            "updated": folder.updated,
            "version": folder.version,
        }
        if folder.description:
            dto["description"] = folder.description
        if nested and folder.parent_uid:
            dto["parentUid"] = folder.parent_uid
            dto["parents"] = [
                self._folder_dto(org, p, ident, nested=False)
                for p in org.ancestors(folder.parent_uid)
            ]
        return dto

    def list_api_keys(self, req: Request, ident: Identity) -> Payload:
        # Grafana 11 migrated every API key to a service account: the legacy list is empty.
        return []

    def list_folders(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        limit = as_int(req.arg("limit"), 0)
        if limit < 1:
            limit = 1000
        page = max(as_int(req.arg("page"), 1), 1)
        parent = req.arg("parentUid") or None
        with self.lock:
            children = sorted(
                (f for f in org.folders.values() if f.parent_uid == parent),
                key=lambda f: (f.title, f.id),
            )
            window = children[(page - 1) * limit : page * limit]
            out = []
            for f in window:
                item: JSON = {"id": f.id, "uid": f.uid, "title": f.title}
                if f.parent_uid:
                    item["parentUid"] = f.parent_uid
                out.append(item)
        return out

    def get_folder(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            folder = org.folders.get(req.params["uid"])
            if folder is None:
                raise folder_not_found()
            return self._folder_dto(org, folder, ident)

    def get_folder_by_id(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            uid = org.folder_ids.get(as_int(req.params["id"], -1))
            if uid is None:
                raise folder_not_found()
            return self._folder_dto(org, org.folders[uid], ident)

    def _check_folder_title(self, org: Org, title: str, parent: str | None, me: str) -> None:
        if not self.unique_titles:
            return
        clash = self._title_clash(org, title, parent)
        if clash is None or clash.uid == me:
            return
        if isinstance(clash, Folder):
            raise error(409, "a folder with the same name already exists in the current location")
        raise error(400, "Folder name cannot be the same as one of its dashboards")

    @staticmethod
    def _check_depth(org: Org, parent: str | None, moving: str | None = None) -> None:
        if not parent:
            return
        chain = org.ancestors(parent)
        if moving is not None and any(f.uid == moving for f in chain):
            raise error(400, "Circular reference detected")
        height = 0
        if moving is not None:
            below = org.descendants(moving)
            height = max(len(org.ancestors(u)) - len(org.ancestors(moving)) for u in below)
        if len(chain) + height >= MAX_NESTED_FOLDER_DEPTH + 1:
            raise error(400, "Maximum nested folder depth reached")

    def create_folder(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        title = as_str(body.get("title")).strip()
        if not title:
            raise error(400, "folder title cannot be empty")
        uid = as_str(body.get("uid")).strip()
        if uid:
            check_uid(uid)
        parent = as_str(body.get("parentUid")) or None
        description = as_str(body.get("description"))
        org = self.require_org(ident)
        with self.lock:
            if parent is not None and parent not in org.folders:
                raise folder_not_found()
            if uid and org.uid_taken(uid):
                raise error(409, "a folder/dashboard with the same uid already exists")
            self._check_folder_title(org, title, parent, "")
            self._check_depth(org, parent)
            stamp = now_iso()
            folder = Folder(
                self.take_id(), uid or org.new_uid(), title, parent, description, 1, stamp, stamp,
                ident.login, ident.login,
            )  # fmt: skip
            org.put_folder(folder)
            self.mutated()
            return self._folder_dto(org, folder, ident)

    def update_folder(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        org = self.require_org(ident)
        with self.lock:
            folder = org.folders.get(req.params["uid"])
            if folder is None:
                raise folder_not_found()
            overwrite = body.get("overwrite") is True
            if not overwrite and as_int(body.get("version")) != folder.version:
                raise error(
                    412, "the folder has been changed by someone else", status="version-mismatch"
                )
            title = folder.title
            if "title" in body:
                title = as_str(body.get("title")).strip()
                if not title:
                    raise error(400, "folder title cannot be empty")
            self._check_folder_title(org, title, folder.parent_uid, folder.uid)
            folder.title = title
            if isinstance(body.get("description"), str):
                folder.description = body["description"]
            folder.version += 1
            folder.updated = now_iso()
            folder.updated_by = ident.login
            self.mutated()
            return self._folder_dto(org, folder, ident)

    def move_folder(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        org = self.require_org(ident)
        with self.lock:
            folder = org.folders.get(req.params["uid"])
            if folder is None:
                raise folder_not_found()
            parent = as_str(body.get("parentUid")) or None
            if parent == folder.uid:
                raise error(400, "folder cannot be parent of itself")
            if parent is not None and parent not in org.folders:
                raise folder_not_found()
            self._check_depth(org, parent, moving=folder.uid)
            self._check_folder_title(org, folder.title, parent, folder.uid)
            folder.parent_uid = parent
            folder.version += 1
            folder.updated = now_iso()
            folder.updated_by = ident.login
            self.mutated()
            return self._folder_dto(org, folder, ident)

    def delete_folder(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            folder = org.folders.get(req.params["uid"])
            if folder is None:
                raise folder_not_found()
            doomed = set(org.descendants(folder.uid))
            doomed_dashboards = [d for d in org.dashboards.values() if d.folder_uid in doomed]
            elements = {u for u, e in org.library.items() if e["folderUid"] in doomed}
            gone_dash = {d.uid for d in doomed_dashboards}
            if any(
                dash_uid not in gone_dash and elements & set(uses)
                for dash_uid, uses in org.lib_connections.items()
            ):
                raise error(400, "folder contains library elements that are linked in use")
            for dash in doomed_dashboards:
                self._forget_dashboard(org, dash)
            for uid in elements:
                del org.library[uid]
            # Grafana deletes a folder's alert rules with it (the UI's forceDeleteRules).
            for uid in [u for u, r in org.rules.items() if r["folderUID"] in doomed]:
                rule = org.rules.pop(uid)
                self._drop_empty_group(org, rule["folderUID"], rule["ruleGroup"])
            for uid in doomed:
                gone = org.folders.pop(uid)
                org.folder_ids.pop(gone.id, None)
                org.folder_acl.pop(uid, None)
            self.mutated()
        return {"message": "Folder deleted", "id": folder.id}

    # ------------------------------------------------------------------ data sources

    def list_datasources(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            items = sorted(org.datasources.values(), key=lambda d: d.name.lower())
            return [d.list_item(org.id) for d in items]

    def _find_ds(self, org: Org, req: Request) -> DataSource:
        if "uid" in req.params:
            ds = org.datasources.get(req.params["uid"])
        elif "name" in req.params:
            ds = next((d for d in org.datasources.values() if d.name == req.params["name"]), None)
        else:
            wanted = as_int(req.params["id"], -1)
            ds = next((d for d in org.datasources.values() if d.id == wanted), None)
        if ds is None:
            raise datasource_not_found()
        return ds

    def get_datasource(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            return self._find_ds(org, req).dto(org.id)

    def get_datasource_id(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            return {"id": self._find_ds(org, req).id}

    @staticmethod
    def _ds_fields(body: JSON) -> JSON:
        secure = body.get("secureJsonData")
        secure_names = [k for k, v in secure.items() if v] if isinstance(secure, dict) else []
        for legacy in ("password", "basicAuthPassword"):
            if as_str(body.get(legacy)):
                secure_names.append(legacy)
        json_data = body.get("jsonData")
        return {
            "type": as_str(body.get("type")),
            "access": as_str(body.get("access")) or "proxy",
            "url": as_str(body.get("url")),
            "user": as_str(body.get("user")),
            "database": as_str(body.get("database")),
            "basic_auth": body.get("basicAuth") is True,
            "basic_auth_user": as_str(body.get("basicAuthUser")),
            "with_credentials": body.get("withCredentials") is True,
            "is_default": body.get("isDefault") is True,
            "json_data": json_data if isinstance(json_data, dict) else {},
            "secure": secure_names,
        }

    def create_datasource(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        name = as_str(body.get("name")).strip()
        if not name:
            raise bad_request()
        uid = as_str(body.get("uid")).strip()
        if uid:
            check_uid(uid)
        fields = self._ds_fields(body)
        org = self.require_org(ident)
        with self.lock:
            if any(d.name == name for d in org.datasources.values()):
                raise error(409, "data source with the same name already exists")
            if uid and uid in org.datasources:
                raise error(409, "data source with the same uid already exists")
            while not uid or uid in org.datasources:
                uid = short_uid()
            ds = DataSource(
                self.next_ds_id, uid, name, fields["type"], fields["access"], fields["url"],
                fields["user"], fields["database"], fields["basic_auth"],
                fields["basic_auth_user"], fields["with_credentials"], fields["is_default"],
                fields["json_data"], sorted(set(fields["secure"])), 1,
            )  # fmt: skip
            self.next_ds_id += 1
            if ds.is_default:
                for other in org.datasources.values():
                    other.is_default = False
            org.datasources[uid] = ds
            self.mutated()
            return {"datasource": ds.dto(org.id), "id": ds.id, "message": "Datasource added",
                    "name": ds.name}  # fmt: skip

    def update_datasource(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        org = self.require_org(ident)
        with self.lock:
            ds = self._find_ds(org, req)
            name = as_str(body.get("name")).strip() or ds.name
            if any(d.name == name and d is not ds for d in org.datasources.values()):
                raise error(409, "data source with the same name already exists")
            sent_version = as_int(body.get("version"))
            if sent_version and ds.version > sent_version:
                raise error(409, "Datasource has already been updated by someone else. "
                                 "Please reload and try again")  # fmt: skip
            new_uid = as_str(body.get("uid")).strip() or ds.uid
            if new_uid != ds.uid:
                check_uid(new_uid)
                if new_uid in org.datasources:
                    raise error(409, "data source with the same uid already exists")
            fields = self._ds_fields(body)
            org.datasources.pop(ds.uid)
            ds.uid, ds.name = new_uid, name
            ds.type = fields["type"] or ds.type
            ds.access, ds.url = fields["access"], fields["url"]
            ds.user, ds.database = fields["user"], fields["database"]
            ds.basic_auth, ds.basic_auth_user = fields["basic_auth"], fields["basic_auth_user"]
            ds.with_credentials, ds.is_default = fields["with_credentials"], fields["is_default"]
            ds.json_data = fields["json_data"]
            ds.secure_fields = sorted(set(ds.secure_fields) | set(fields["secure"]))
            ds.version += 1
            if ds.is_default:
                for other in org.datasources.values():
                    other.is_default = False
            org.datasources[ds.uid] = ds
            self.mutated()
            return {"datasource": ds.dto(org.id), "id": ds.id, "message": "Datasource updated",
                    "name": ds.name}  # fmt: skip

    def delete_datasource(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            ds = self._find_ds(org, req)
            org.datasources.pop(ds.uid)
            self.mutated()
        if "id" in req.params:
            return {"message": "Data source deleted"}
        return {"message": "Data source deleted", "id": ds.id}

    # ------------------------------------------------------------------ users
    # https://grafana.com/docs/grafana/latest/developers/http_api/user/ (users, lookup),
    # .../http_api/admin/ (POST /api/admin/users), .../http_api/org/ (org users, orgs by id
    # and name). Users other than the initial admin live in self.users; an org's members
    # map login -> role.

    def _admin_view(self) -> User:
        a = self.admin
        return User(1, a.uid, a.login, a.email, a.login, a.salt, a.password_hash, a.created, True)

    def _all_users(self) -> list[User]:
        return [self._admin_view(), *self.users.values()]

    def _user_by_id(self, user_id: int) -> User | None:
        if user_id == 1:
            return self._admin_view()
        return self.users.get(user_id)

    def _user_by_login(self, login_or_email: str) -> User | None:
        a = self.admin
        if login_or_email in (a.login, a.email):
            return self._admin_view()
        return self.find_user(login_or_email)

    def _profile(self, u: User, org_id: int) -> JSON:
        return {
            "id": u.id,
            "uid": u.uid,
            "email": u.email,
            "name": u.name,
            "login": u.login,
            "theme": "",
            "orgId": org_id,
            "isGrafanaAdmin": u.is_admin,
            "isDisabled": False,
            "isExternal": False,
            "isExternallySynced": False,
            "isGrafanaAdminExternallySynced": False,
            "authLabels": [],
            "updatedAt": u.created,
            "createdAt": u.created,
            "avatarUrl": avatar_url(u.email),
            "isProvisioned": False,
        }

    @staticmethod
    def _user_list_item(u: User) -> JSON:
        return {
            "id": u.id,
            "uid": u.uid,
            "name": u.name,
            "login": u.login,
            "email": u.email,
            "avatarUrl": avatar_url(u.email),
            "isAdmin": u.is_admin,
            "isDisabled": False,
            "lastSeenAt": u.created,
            "lastSeenAtAge": "10 years",
            "authLabels": [],
            "isProvisioned": False,
        }

    def _users_matching(self, req: Request) -> list[User]:
        query = req.arg("query").lower()
        users = sorted(self._all_users(), key=lambda u: u.login)
        if query:
            users = [
                u for u in users
                if query in u.login.lower() or query in u.email.lower() or query in u.name.lower()
            ]  # fmt: skip
        return users

    def list_users(self, req: Request, ident: Identity) -> Payload:
        per_page = as_int(req.arg("perpage"), 1000) or 1000
        page = max(as_int(req.arg("page"), 1), 1)
        with self.lock:
            users = self._users_matching(req)
            return [self._user_list_item(u) for u in users[(page - 1) * per_page : page * per_page]]

    def search_users(self, req: Request, ident: Identity) -> Payload:
        per_page = as_int(req.arg("perpage"), 1000) or 1000
        page = max(as_int(req.arg("page"), 1), 1)
        with self.lock:
            users = self._users_matching(req)
            window = users[(page - 1) * per_page : page * per_page]
            return {
                "totalCount": len(users),
                "users": [self._user_list_item(u) for u in window],
                "page": page,
                "perPage": per_page,
            }

    def lookup_user(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            u = self._user_by_login(req.arg("loginOrEmail"))
            if u is None:
                raise error(404, "user not found")
            return self._profile(u, self.home_org(u.login))

    def get_user_by_id(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            u = self._user_by_id(as_int(req.params["id"], -1))
            if u is None:
                raise error(404, "user not found")
            return self._profile(u, self.home_org(u.login))

    def get_user_orgs(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            u = self._user_by_id(as_int(req.params["id"], -1))
            if u is None:
                raise error(404, "user not found")
            return [
                {"orgId": o.id, "name": o.name, "role": o.members[u.login]}
                for o in sorted(self.orgs.values(), key=lambda o: o.name)
                if u.login in o.members
            ]

    def create_user(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        email = as_str(body.get("email")).strip()
        login = as_str(body.get("login")).strip() or email
        name = as_str(body.get("name"))
        password = as_str(body.get("password"))
        if not login:
            raise bad_request()
        if len(password) < 4:
            raise errutil(400, "password.password-policy-too-short", "New password is too short")
        with self.lock:
            taken = self._user_by_login(login) or (self._user_by_login(email) if email else None)
            if taken is not None:
                raise error(412, f"User with email '{email}' or username '{login}' already exists")
            salt = secrets.token_hex(8)
            user = User(
                self.take("user"), short_uid(), login, email, name, salt,
                hash_password(password, salt), now_iso(),
            )  # fmt: skip
            self.users[user.id] = user
            # auto_assign_org (on by default): the new user joins the given or the main org
            # with auto_assign_org_role, Viewer.
            org = self.orgs.get(as_int(body.get("OrgId") or body.get("orgId"), 1))
            if org is not None:
                org.members[login] = "Viewer"
            self.mutated()
            return {"id": user.id, "uid": user.uid, "message": "User created"}

    # -- org membership

    def _org_by_param(self, req: Request) -> Org:
        org = self.orgs.get(as_int(req.params["id"], -1))
        if org is None:
            raise error(404, "Organization not found")
        return org

    def _org_user_rows(self, org: Org) -> list[JSON]:
        rows: list[JSON] = []
        for login, role in org.members.items():
            u = self._user_by_login(login)
            if u is None:
                continue
            rows.append(
                {
                    "orgId": org.id,
                    "userId": u.id,
                    "uid": u.uid,
                    "email": u.email,
                    "name": u.name,
                    "avatarUrl": avatar_url(u.email),
                    "login": u.login,
                    "role": role,
                    "lastSeenAt": u.created,
                    "lastSeenAtAge": "10 years",
                    "accessControl": None,
                    "authLabels": [],
                    "isDisabled": False,
                    "isExternallySynced": False,
                    "isProvisioned": False,
                }
            )
        rows.sort(key=lambda r: r["login"])
        return rows

    def org_users(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self._org_by_param(req) if "id" in req.params else self.require_org(ident)
            return self._org_user_rows(org)

    def org_users_lookup(self, req: Request, ident: Identity) -> Payload:
        query = req.arg("query").lower()
        limit = as_int(req.arg("limit"), 0)
        with self.lock:
            org = self.require_org(ident)
            rows = [
                {"userId": r["userId"], "uid": r["uid"], "login": r["login"],
                 "avatarUrl": r["avatarUrl"]}
                for r in self._org_user_rows(org)
                if not query or query in r["login"].lower() or query in r["email"].lower()
                or query in r["name"].lower()
            ]  # fmt: skip
        return rows[:limit] if limit > 0 else rows

    def add_org_user(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        role = as_str(body.get("role"))
        if role not in ROLES:
            raise error(400, "Invalid role specified")
        with self.lock:
            org = self._org_by_param(req) if "id" in req.params else self.require_org(ident)
            u = self._user_by_login(as_str(body.get("loginOrEmail")))
            if u is None:
                raise error(404, "User not found")
            if u.login in org.members:
                raise error(409, "User is already member of this organization", userId=u.id)
            org.members[u.login] = role
            self.auth_cache.clear()
            self.mutated()
            return {"message": "User added to organization", "userId": u.id}

    def update_org_user(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        role = as_str(body.get("role"))
        if role not in ROLES:
            raise error(400, "Invalid role specified")
        with self.lock:
            org = self._org_by_param(req) if "id" in req.params else self.require_org(ident)
            u = self._user_by_id(as_int(req.params["userId"], -1))
            if u is None or u.login not in org.members:
                raise error(404, "User not found")
            admins = [m for m, r in org.members.items() if r == "Admin"]
            if admins == [u.login] and role != "Admin":
                raise error(400, "Cannot change role so that there is no organization admin left")
            org.members[u.login] = role
            self.mutated()
            return {"message": "Organization user updated"}

    def remove_org_user(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self._org_by_param(req) if "id" in req.params else self.require_org(ident)
            u = self._user_by_id(as_int(req.params["userId"], -1))
            if u is None or u.login not in org.members:
                raise error(404, "User not found")
            admins = [m for m, r in org.members.items() if r == "Admin"]
            if admins == [u.login]:
                raise error(400, "Cannot remove last organization admin")
            del org.members[u.login]
            for team in org.teams.values():
                team["members"].pop(str(u.id), None)
            self.mutated()
            return {"message": "User removed from organization"}

    # -- orgs by id and name

    @staticmethod
    def _org_dto(org: Org) -> JSON:
        return {
            "id": org.id,
            "name": org.name,
            "address": {"address1": "", "address2": "", "city": "", "zipCode": "", "state": "",
                        "country": ""},
        }  # fmt: skip

    def get_org_by_id(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            return self._org_dto(self._org_by_param(req))

    def get_org_by_name(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            for org in self.orgs.values():
                if org.name == req.params["name"]:
                    return self._org_dto(org)
        raise error(404, "Organization not found")

    def update_org(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        name = as_str(body.get("name")).strip()
        if not name:
            raise bad_request()
        with self.lock:
            org = self._org_by_param(req) if "id" in req.params else self.require_org(ident)
            if any(o.name == name and o is not org for o in self.orgs.values()):
                raise error(400, "Organization name taken")
            org.name = name
            self.mutated()
        return {"message": "Organization updated"}

    # ------------------------------------------------------------------ teams
    # https://grafana.com/docs/grafana/latest/developers/http_api/team/ . Teams are per org;
    # their ids come from one sequence, as Grafana's team table's.

    def _team_dto(self, org: Org, team: JSON) -> JSON:
        return {
            "id": team["id"],
            "uid": team["uid"],
            "orgId": org.id,
            "name": team["name"],
            "email": team["email"],
            "avatarUrl": avatar_url(team["email"] or team["name"]),
            "memberCount": len(team["members"]),
            "permission": 0,
            "accessControl": None,
        }

    def _team(self, org: Org, req: Request) -> JSON:
        team = org.teams.get(as_int(req.params["id"], -1))
        if team is None:
            raise error(404, "Team not found")
        return team

    def search_teams(self, req: Request, ident: Identity) -> Payload:
        per_page = as_int(req.arg("perpage"), 1000) or 1000
        page = max(as_int(req.arg("page"), 1), 1)
        query = req.arg("query").lower()
        name = req.arg("name")
        with self.lock:
            org = self.require_org(ident)
            teams = sorted(org.teams.values(), key=lambda t: (t["name"].lower(), t["id"]))
            if query:
                teams = [t for t in teams if query in t["name"].lower()]
            if name:
                teams = [t for t in teams if t["name"] == name]
            window = teams[(page - 1) * per_page : page * per_page]
            return {
                "totalCount": len(teams),
                "teams": [self._team_dto(org, t) for t in window],
                "page": page,
                "perPage": per_page,
            }

    def create_team(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        name = as_str(body.get("name")).strip()
        if not name:
            raise bad_request()
        with self.lock:
            org = self.require_org(ident)
            if any(t["name"] == name for t in org.teams.values()):
                raise error(409, "Team name taken")
            stamp = now_iso()
            team: JSON = {
                "id": self.take("team"), "uid": short_uid(), "name": name,
                "email": as_str(body.get("email")), "created": stamp, "updated": stamp,
                "members": {},
            }  # fmt: skip
            org.teams[team["id"]] = team
            self.mutated()
            return {"message": "Team created", "teamId": team["id"], "uid": team["uid"]}

    def get_team(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            return self._team_dto(org, self._team(org, req))

    def update_team(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        with self.lock:
            org = self.require_org(ident)
            team = self._team(org, req)
            name = as_str(body.get("name")).strip() or team["name"]
            if any(t["name"] == name and t is not team for t in org.teams.values()):
                raise error(409, "Team name taken")
            team["name"] = name
            if isinstance(body.get("email"), str):
                team["email"] = body["email"]
            team["updated"] = now_iso()
            self.mutated()
        return {"message": "Team updated"}

    def delete_team(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            team = org.teams.pop(as_int(req.params["id"], -1), None)
            if team is None:
                raise error(404, "Failed to delete Team. ID not found")
            for acl in (*org.folder_acl.values(), *org.dash_acl.values()):
                acl[:] = [item for item in acl if item.get("teamId") != team["id"]]
            self.mutated()
        return {"message": "Team deleted"}

    def team_members(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            team = self._team(org, req)
            rows = []
            for user_id, permission in team["members"].items():
                u = self._user_by_id(int(user_id))
                if u is None:
                    continue
                rows.append(
                    {
                        "orgId": org.id,
                        "teamId": team["id"],
                        "teamUid": team["uid"],
                        "userId": u.id,
                        "userUid": u.uid,
                        "auth_module": "",
                        "email": u.email,
                        "name": u.name,
                        "login": u.login,
                        "avatarUrl": avatar_url(u.email),
                        "labels": [],
                        "permission": permission,
                    }
                )
            rows.sort(key=lambda r: r["login"])
            return rows

    def add_team_member(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        user_id = as_int(body.get("userId"))
        with self.lock:
            org = self.require_org(ident)
            team = self._team(org, req)
            u = self._user_by_id(user_id)
            if u is None:
                raise error(404, "User not found")
            if str(u.id) in team["members"]:
                raise error(400, "User is already added to this team")
            team["members"][str(u.id)] = 0
            self.mutated()
        return {"message": "Member added to Team"}

    def remove_team_member(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            team = self._team(org, req)
            if team["members"].pop(req.params["userId"], None) is None:
                raise error(404, "Team member not found")
            self.mutated()
        return {"message": "Team Member removed"}

    # ------------------------------------------------------------------ permissions
    # The legacy ACL endpoints, still served by Grafana 11 on top of RBAC managed permissions:
    # https://grafana.com/docs/grafana/latest/developers/http_api/folder_permissions/ and
    # .../http_api/dashboard_permissions/ . A new folder, and a new dashboard in the General
    # folder, get Grafana's defaults (Editor: Edit, Viewer: View); a dashboard in a folder has
    # none of its own and lists its folders' as inherited. POST replaces the object's own list
    # ("removes existing permissions if they're not included in the request").

    @staticmethod
    def _default_acl(created: str) -> list[JSON]:
        return [
            {"role": "Editor", "permission": 2, "created": created, "updated": created},
            {"role": "Viewer", "permission": 1, "created": created, "updated": created},
        ]

    def _folder_acl(self, org: Org, folder: Folder) -> list[JSON]:
        acl = org.folder_acl.get(folder.uid)
        return acl if acl is not None else self._default_acl(folder.created)

    def _dash_acl(self, org: Org, dash: Dashboard) -> list[JSON]:
        acl = org.dash_acl.get(dash.uid)
        if acl is not None:
            return acl
        return [] if dash.folder_uid else self._default_acl(dash.created)

    def _acl_item(self, org: Org, item: JSON, target: Folder | Dashboard, inherited: bool) -> JSON:
        user = self._user_by_id(as_int(item.get("userId"))) if item.get("userId") else None
        team = org.teams.get(as_int(item.get("teamId"))) if item.get("teamId") else None
        is_folder = isinstance(target, Folder)
        slug = slugify(target.title)
        out: JSON = {}
        if is_folder:
            out["folderUid"] = target.uid
        else:
            out["dashboardId"] = target.id
            out["folderUid"] = target.folder_uid or ""  # type: ignore[union-attr]
        out.update(
            {
                "created": item.get("created", ZERO_TIME),
                "updated": item.get("updated", ZERO_TIME),
                "userId": user.id if user else 0,
                "userUid": user.uid if user else "",
                "userLogin": user.login if user else "",
                "userEmail": user.email if user else "",
                "userAvatarUrl": avatar_url(user.email) if user else "",
                "teamId": team["id"] if team else 0,
                "teamUid": team["uid"] if team else "",
                "teamEmail": team["email"] if team else "",
                "teamAvatarUrl": avatar_url(team["email"] or team["name"]) if team else "",
                "team": team["name"] if team else "",
            }
        )
        if item.get("role"):
            out["role"] = item["role"]
        level = as_int(item.get("permission"))
        out.update(
            {
                "permission": level,
                "permissionName": PERMISSION_NAMES.get(level, ""),
                "uid": target.uid,
                "title": target.title,
                "slug": slug,
                "isFolder": is_folder,
                "url": f"/dashboards/f/{target.uid}/{slug}" if is_folder
                else f"/d/{target.uid}/{slug}",
                "inherited": inherited,
            }
        )  # fmt: skip
        return out

    def folder_permissions(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            folder = org.folders.get(req.params["uid"])
            if folder is None:
                raise folder_not_found()
            return [self._acl_item(org, i, folder, False) for i in self._folder_acl(org, folder)]

    def dashboard_permissions(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        with self.lock:
            dash = org.dashboards.get(req.params["uid"])
            if dash is None:
                raise dashboard_not_found()
            out = []
            for folder in org.ancestors(dash.folder_uid):
                out += [self._acl_item(org, i, folder, True) for i in self._folder_acl(org, folder)]
            out += [self._acl_item(org, i, dash, False) for i in self._dash_acl(org, dash)]
            return out

    def _acl_from_body(self, org: Org, req: Request, target: Callable[[], object]) -> list[JSON]:
        """Grafana's order: bind and validatePermissionsUpdate (400), find the folder or
        dashboard (404), then SetPermissions."""
        body = req.json_object()
        items = body.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise bad_request()
        for item in items:
            user_id, team_id = as_int(item.get("userId")), as_int(item.get("teamId"))
            # validatePermissionsUpdate, with Grafana's two messages the other way round.
            if user_id > 0 and team_id > 0:
                raise error(400, "team and user permissions cannot have an associated role")
            if (user_id > 0 or team_id > 0) and item.get("role") is not None:
                raise error(400, "permissions cannot have both a user and team")
        target()
        stamp = now_iso()
        acl: list[JSON] = []
        for item in items:
            user_id, team_id = as_int(item.get("userId")), as_int(item.get("teamId"))
            role, level = item.get("role"), as_int(item.get("permission"))
            # What SetPermissions refuses (an unknown user or team, a level or role it does
            # not know) surfaces as Grafana's 500 "Failed to create permission".
            valid = level in PERMISSION_NAMES and (
                (user_id > 0 and self._user_by_id(user_id) is not None)
                or (team_id > 0 and team_id in org.teams)
                or (user_id <= 0 and team_id <= 0 and role in ("Viewer", "Editor", "Admin"))
            )
            if not valid:
                raise error(500, "Failed to create permission")
            entry: JSON = {"permission": level, "created": stamp, "updated": stamp}
            if user_id > 0:
                entry["userId"] = user_id
            elif team_id > 0:
                entry["teamId"] = team_id
            else:
                entry["role"] = role
            acl.append(entry)
        return acl

    def update_folder_permissions(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        uid = req.params["uid"]

        def target() -> Folder:
            folder = org.folders.get(uid)
            if folder is None:
                raise folder_not_found()
            return folder

        with self.lock:
            org.folder_acl[uid] = self._acl_from_body(org, req, target)
            self.mutated()
        return {"message": "Folder permissions updated"}

    def update_dashboard_permissions(self, req: Request, ident: Identity) -> Payload:
        org = self.require_org(ident)
        uid = req.params["uid"]

        def target() -> Dashboard:
            dash = org.dashboards.get(uid)
            if dash is None:
                raise dashboard_not_found()
            return dash

        with self.lock:
            org.dash_acl[uid] = self._acl_from_body(org, req, target)
            self.mutated()
        return {"message": "Dashboard permissions updated"}

    # ------------------------------------------------------------------ library elements
    # https://grafana.com/docs/grafana/latest/developers/http_api/library_element/ ; errors
    # and statuses from pkg/services/libraryelements (model.go, api.go toLibraryElementError).
    # A dashboard saved with a panel {"libraryPanel": {"uid": U}} connects to U. As in
    # Grafana 11's postDashboard, connecting happens after the dashboard is stored: when an
    # element is missing the dashboard stays saved (its panel keeps only the reference, so
    # the UI shows it as not found) and the answer is 500 "Error while connecting library
    # panels"; the dashboard's previous connections stay (the transaction rolls back).

    def _connections_of(self, org: Org, uid: str) -> list[tuple[Dashboard, str]]:
        out = []
        for dash_uid, elements in org.lib_connections.items():
            if uid in elements and dash_uid in org.dashboards:
                out.append((org.dashboards[dash_uid], elements[uid]))
        out.sort(key=lambda c: c[0].id)
        return out

    def _lib_user(self, user_id: int, name: str) -> JSON:
        u = self._user_by_id(user_id)
        return {
            "id": user_id,
            "name": u.login if u else name,
            "avatarUrl": avatar_url(u.email if u else ""),
        }

    def _lib_dto(self, org: Org, e: JSON) -> JSON:
        folder = org.folders.get(e["folderUid"]) if e["folderUid"] else None
        return {
            "id": e["id"],
            "orgId": org.id,
            "folderId": folder.id if folder else 0,
            "folderUid": e["folderUid"],
            "uid": e["uid"],
            "name": e["name"],
            "kind": e["kind"],
            "type": e["type"],
            "description": e["description"],
            "model": e["model"],
            "version": e["version"],
            "meta": {
                "folderName": folder.title if folder else "General",
                "folderUid": e["folderUid"],
                "connectedDashboards": len(self._connections_of(org, e["uid"])),
                "created": e["created"],
                "updated": e["updated"],
                "createdBy": self._lib_user(e["createdBy"], e["createdByName"]),
                "updatedBy": self._lib_user(e["updatedBy"], e["updatedByName"]),
            },
        }

    def _lib_element(self, org: Org, uid: str) -> JSON:
        e = org.library.get(uid)
        if e is None:
            raise error(404, "library element could not be found")
        return e

    @staticmethod
    def _lib_folder(org: Org, body: JSON, current: str) -> str:
        if "folderUid" in body and body["folderUid"] is not None:
            folder_uid = as_str(body["folderUid"])
        elif as_int(body.get("folderId"), -1) >= 0 and "folderId" in body:
            fid = as_int(body.get("folderId"))
            folder_uid = org.folder_ids.get(fid, "\0missing") if fid else ""
        else:
            return current
        if folder_uid in ("", "general"):
            return ""
        if folder_uid not in org.folders:
            raise error(400, "failed to get folder")
        return folder_uid

    @staticmethod
    def _lib_name_taken(org: Org, name: str, folder_uid: str, kind: int, me: str) -> bool:
        return any(
            e["name"] == name and e["folderUid"] == folder_uid and e["kind"] == kind
            and e["uid"] != me
            for e in org.library.values()
        )  # fmt: skip

    @staticmethod
    def _sync_model(e: JSON) -> None:
        """syncFieldsWithModel: type and description go both ways between model and row."""
        model = e["model"]
        if isinstance(model.get("type"), str):
            e["type"] = model["type"]
        else:
            model["type"] = e["type"]
        if isinstance(model.get("description"), str):
            e["description"] = model["description"]
        else:
            model["description"] = e["description"]
        if e["kind"] == 2:
            model["name"] = e["name"]

    def list_library_elements(self, req: Request, ident: Identity) -> Payload:
        per_page = as_int(req.arg("perPage"), 100) or 100
        page = max(as_int(req.arg("page"), 1), 1)
        text = req.arg("searchString").lower()
        kind = as_int(req.arg("kind"))
        types = {t for t in req.arg("typeFilter").split(",") if t}
        exclude = req.arg("excludeUid")
        folder_uids = {u for u in req.arg("folderFilterUIDs").split(",") if u}
        folder_ids = {as_int(i, -1) for i in req.arg("folderFilter").split(",") if i}
        with self.lock:
            org = self.require_org(ident)
            for fid in folder_ids:
                folder_uids.add(org.folder_ids.get(fid, "\0missing") if fid else "general")
            found = []
            for e in org.library.values():
                if text and text not in e["name"].lower() and text not in e["description"].lower():
                    continue
                if (kind and e["kind"] != kind) or (types and e["type"] not in types):
                    continue
                if exclude and e["uid"] == exclude:
                    continue
                if folder_uids and (e["folderUid"] or "general") not in folder_uids:
                    continue
                found.append(e)
            found.sort(
                key=lambda e: e["name"].lower(), reverse=req.arg("sortDirection") == "alpha-desc"
            )
            window = found[(page - 1) * per_page : page * per_page]
            return {
                "result": {
                    "totalCount": len(found),
                    "elements": [self._lib_dto(org, e) for e in window],
                    "page": page,
                    "perPage": per_page,
                }
            }

    def get_library_element(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            return {"result": self._lib_dto(org, self._lib_element(org, req.params["uid"]))}

    def get_library_elements_by_name(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            found = [e for e in org.library.values() if e["name"] == req.params["name"]]
            if not found:
                raise error(404, "library element could not be found")
            return {"result": [self._lib_dto(org, e) for e in found]}

    def create_library_element(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        kind = as_int(body.get("kind"))
        if not kind:
            raise bad_request()
        if kind not in (1, 2):
            raise error(400, "the element kind is not supported")
        name = as_str(body.get("name"))
        model = body.get("model")
        if not isinstance(model, dict):
            raise bad_request()
        uid = as_str(body.get("uid"))
        if uid:
            check_uid(uid)
        with self.lock:
            org = self.require_org(ident)
            folder_uid = self._lib_folder(org, body, "")
            if (uid and uid in org.library) or self._lib_name_taken(
                org, name, folder_uid, kind, ""
            ):
                raise error(400, "library element with that name already exists")
            while not uid or uid in org.library:
                uid = short_uid()
            stamp = now_iso()
            e: JSON = {
                "id": self.take("libraryElement"), "uid": uid, "folderUid": folder_uid,
                "name": name, "kind": kind, "type": "", "description": "", "model": dict(model),
                "version": 1, "created": stamp, "updated": stamp, "createdBy": ident.user_id,
                "createdByName": ident.login, "updatedBy": ident.user_id,
                "updatedByName": ident.login,
            }  # fmt: skip
            self._sync_model(e)
            org.library[uid] = e
            self.mutated()
            return {"result": self._lib_dto(org, e)}

    def patch_library_element(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        kind = as_int(body.get("kind"))
        version = as_int(body.get("version"))
        if not kind or not version:
            raise bad_request()  # binding:"Required" on kind and version
        if kind not in (1, 2):
            raise error(400, "the element kind is not supported")
        with self.lock:
            org = self.require_org(ident)
            e = self._lib_element(org, req.params["uid"])
            if e["version"] != version:
                raise error(412, "the library element has been changed by someone else")
            folder_uid = self._lib_folder(org, body, e["folderUid"])
            name = as_str(body.get("name")) or e["name"]
            new_uid = as_str(body.get("uid")) or e["uid"]
            if new_uid != e["uid"]:
                check_uid(new_uid)
                if new_uid in org.library:
                    raise error(400, "library element with that name already exists")
            if self._lib_name_taken(org, name, folder_uid, kind, e["uid"]):
                raise error(400, "library element with that name already exists")
            if isinstance(body.get("model"), dict):
                e["model"] = dict(body["model"])
            old_uid = e["uid"]
            e.update(folderUid=folder_uid, name=name, kind=kind, uid=new_uid,
                     version=e["version"] + 1, updated=now_iso(), updatedBy=ident.user_id,
                     updatedByName=ident.login)  # fmt: skip
            self._sync_model(e)
            if new_uid != old_uid:
                del org.library[old_uid]
                org.library[new_uid] = e
            self.mutated()
            return {"result": self._lib_dto(org, e)}

    def delete_library_element(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            e = self._lib_element(org, req.params["uid"])
            if self._connections_of(org, e["uid"]):
                raise error(403, "the library element has connections")
            del org.library[e["uid"]]
            self.mutated()
        return {"message": "Library element deleted", "id": e["id"]}

    def library_element_connections(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            e = self._lib_element(org, req.params["uid"])
            return {
                "result": [
                    {
                        "id": e["id"] * 100_000 + dash.id,
                        "kind": 1,
                        "elementId": e["id"],
                        "connectionId": dash.id,
                        "connectionUid": dash.uid,
                        "created": created,
                        "createdBy": self._lib_user(e["createdBy"], e["createdByName"]),
                    }
                    for dash, created in self._connections_of(org, e["uid"])
                ]
            }

    def _connect_library_panels(self, org: Org, dash: Dashboard) -> bool:
        """ConnectLibraryPanelsForDashboard; False when an element is missing."""
        if any(uid not in org.library for uid in dash.library_uids):
            return False
        if not dash.library_uids:
            org.lib_connections.pop(dash.uid, None)
            return True
        before = org.lib_connections.get(dash.uid, {})
        stamp = now_iso()
        org.lib_connections[dash.uid] = {u: before.get(u, stamp) for u in dash.library_uids}
        return True

    # ------------------------------------------------------------------ alerting provisioning
    # https://grafana.com/docs/grafana/latest/developers/http_api/alerting_provisioning/ :
    # alert rules and rule groups (ProvisionedAlertRule, AlertRuleGroup), contact points
    # (EmbeddedContactPoint), the notification policy tree (Route), mute timings and
    # templates. Writes mark objects with provenance "api" unless the request carries the
    # X-Disable-Provenance header (any value), as Grafana's determineProvenance does.
    # Validation failures answer 400 {"message": "invalid object specification: ..."} like
    # Grafana's ErrValidation; secure contact point settings come back as "[REDACTED]"
    # (the double keeps only the fact that they are set, never the secret).

    @staticmethod
    def _provenance(req: Request) -> str:
        return "" if "x-disable-provenance" in req.headers else "api"

    @staticmethod
    def _invalid(detail: str) -> ApiError:
        return error(400, f"invalid object specification: {detail}")

    def _rule_from_body(self, org: Org, body: JSON, req: Request, uid: str) -> JSON:
        title = as_str(body.get("title")).strip()
        if not title:
            raise self._invalid("title is required")
        folder_uid = as_str(body.get("folderUID"))
        if not folder_uid:
            raise self._invalid("folderUID must be set")
        if folder_uid not in org.folders:
            raise self._invalid(f"folder with UID '{folder_uid}' does not exist")
        group = as_str(body.get("ruleGroup")).strip()
        if not group:
            raise self._invalid("rule group name is required")
        data = body.get("data")
        if not isinstance(data, list) or not data or not all(isinstance(q, dict) for q in data):
            raise self._invalid("no queries or expressions are found")
        refs = []
        for q in data:
            ref = as_str(q.get("refId"))
            ds = as_str(q.get("datasourceUid"))
            if not ref:
                raise self._invalid("a query has no refId")
            if ds not in ("__expr__", "-100") and ds not in org.datasources:
                raise self._invalid(f"failed to build query '{ref}': data source not found")
            refs.append(ref)
        condition = as_str(body.get("condition"))
        if condition not in refs:
            raise self._invalid(
                f"condition {condition} does not exist, must be one of [{' '.join(refs)}]"
            )
        no_data = as_str(body.get("noDataState")) or "NoData"
        exec_err = as_str(body.get("execErrState")) or "Error"
        if no_data not in ("Alerting", "NoData", "OK", "KeepLast"):
            raise self._invalid(f"unknown noDataState {no_data!r}")
        if exec_err not in ("Alerting", "Error", "OK", "KeepLast"):
            raise self._invalid(f"unknown execErrState {exec_err!r}")
        duration = body.get("for", "0s")
        if not isinstance(duration, str) or not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+|0", duration):
            raise self._invalid(f"invalid duration {duration!r}")
        labels = body.get("labels") if isinstance(body.get("labels"), dict) else {}
        annotations = body.get("annotations") if isinstance(body.get("annotations"), dict) else {}
        rule: JSON = {
            "id": 0,
            "uid": uid,
            "orgID": org.id,
            "folderUID": folder_uid,
            "ruleGroup": group,
            "title": title,
            "condition": condition,
            "data": data,
            "updated": now_iso(),
            "noDataState": no_data,
            "execErrState": exec_err,
            "for": duration,
            "annotations": annotations,
            "labels": labels,
            "provenance": self._provenance(req),
            "isPaused": body.get("isPaused") is True,
        }
        settings = body.get("notification_settings")
        if isinstance(settings, dict):
            receiver = as_str(settings.get("receiver"))
            if receiver not in self._receiver_names(org):
                raise self._invalid(f"receiver '{receiver}' does not exist")
            rule["notification_settings"] = settings
        return rule

    @staticmethod
    def _group_key(folder_uid: str, group: str) -> str:
        return f"{folder_uid}\0{group}"

    def _store_rule(self, org: Org, rule: JSON, existing: JSON | None) -> None:
        rule["id"] = existing["id"] if existing else self.take("alertRule")
        key = self._group_key(rule["folderUID"], rule["ruleGroup"])
        org.group_intervals.setdefault(key, 60)
        org.rules[rule["uid"]] = rule
        if existing is not None:
            self._drop_empty_group(org, existing["folderUID"], existing["ruleGroup"])

    @staticmethod
    def _drop_empty_group(org: Org, folder_uid: str, group: str) -> None:
        if not any(r["folderUID"] == folder_uid and r["ruleGroup"] == group
                   for r in org.rules.values()):  # fmt: skip
            org.group_intervals.pop(f"{folder_uid}\0{group}", None)

    def list_alert_rules(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            return sorted(org.rules.values(), key=lambda r: r["id"])

    def get_alert_rule(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            rule = org.rules.get(req.params["uid"])
            if rule is None:
                raise error(404, "could not find alert rule")
            return rule

    def create_alert_rule(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        uid = as_str(body.get("uid"))
        if uid:
            check_uid(uid)
        with self.lock:
            org = self.require_org(ident)
            if uid and uid in org.rules:
                raise error(409, "conflicting alert rule found: rule UID under the same "
                                 "organisation should be unique")  # fmt: skip
            rule = self._rule_from_body(org, body, req, uid or short_uid())
            self._store_rule(org, rule, None)
            self.mutated()
            return Answer(201, rule)

    def update_alert_rule(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        with self.lock:
            org = self.require_org(ident)
            existing = org.rules.get(req.params["uid"])
            if existing is None:
                raise error(404, "could not find alert rule")
            rule = self._rule_from_body(org, body, req, existing["uid"])
            self._store_rule(org, rule, existing)
            self.mutated()
            return rule

    def delete_alert_rule(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            rule = org.rules.pop(req.params["uid"], None)
            if rule is not None:
                self._drop_empty_group(org, rule["folderUID"], rule["ruleGroup"])
                self.mutated()
        return Answer(204, b"")

    def _group_dto(self, org: Org, folder_uid: str, group: str) -> JSON:
        rules = sorted(
            (
                r
                for r in org.rules.values()
                if r["folderUID"] == folder_uid and r["ruleGroup"] == group
            ),
            key=lambda r: r["id"],
        )
        return {
            "title": group,
            "folderUid": folder_uid,
            "interval": org.group_intervals.get(self._group_key(folder_uid, group), 60),
            "rules": rules,
        }

    def get_rule_group(self, req: Request, ident: Identity) -> Payload:
        folder_uid, group = req.params["folderUid"], req.params["group"]
        with self.lock:
            org = self.require_org(ident)
            if self._group_key(folder_uid, group) not in org.group_intervals:
                raise error(404, "rule group does not exist")
            return self._group_dto(org, folder_uid, group)

    def put_rule_group(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        folder_uid, group = req.params["folderUid"], req.params["group"]
        interval = as_int(body.get("interval"))
        if interval <= 0 or interval % 10:
            raise self._invalid(
                f"rule evaluation interval ({interval} second) should be positive number that "
                "is multiple of the base interval of 10 seconds"
            )
        rules = body.get("rules", [])
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise bad_request()
        with self.lock:
            org = self.require_org(ident)
            if folder_uid not in org.folders:
                raise self._invalid(f"folder with UID '{folder_uid}' does not exist")
            built = []
            for r in rules:
                uid = as_str(r.get("uid")) or short_uid()
                check_uid(uid)
                built.append(self._rule_from_body(
                    org, {**r, "folderUID": folder_uid, "ruleGroup": group}, req, uid
                ))  # fmt: skip
            keep = {r["uid"] for r in built}
            for uid in [u for u, r in org.rules.items()
                        if r["folderUID"] == folder_uid and r["ruleGroup"] == group
                        and u not in keep]:  # fmt: skip
                del org.rules[uid]
            for rule in built:
                self._store_rule(org, rule, org.rules.get(rule["uid"]))
            key = self._group_key(folder_uid, group)
            if built:
                org.group_intervals[key] = interval
            else:
                org.group_intervals.pop(key, None)
            self.mutated()
            return self._group_dto(org, folder_uid, group)

    def export_alert_rules(self, req: Request, ident: Identity) -> Payload:
        """The file-provisioning shape, JSON only (Grafana also speaks YAML and HCL)."""
        folders = set(req.args("folderUid"))
        group_filter = req.arg("group")
        rule_uids = set(req.args("ruleUid"))
        with self.lock:
            org = self.require_org(ident)
            groups: dict[tuple[str, str], list[JSON]] = {}
            for r in sorted(org.rules.values(), key=lambda r: r["id"]):
                if (folders and r["folderUID"] not in folders) or (
                    rule_uids and r["uid"] not in rule_uids
                ):
                    continue
                if group_filter and r["ruleGroup"] != group_filter:
                    continue
                groups.setdefault((r["folderUID"], r["ruleGroup"]), []).append(r)
            out = []
            for (folder_uid, group), rules in groups.items():
                seconds = org.group_intervals.get(self._group_key(folder_uid, group), 60)
                out.append(
                    {
                        "orgId": org.id,
                        "name": group,
                        "folder": org.folders[folder_uid].title,
                        "interval": f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s",
                        "rules": [
                            {k: r[k] for k in ("uid", "title", "condition", "data", "noDataState",
                                               "execErrState", "for", "annotations", "labels",
                                               "isPaused") if k in r}
                            for r in rules
                        ],
                    }
                )  # fmt: skip
            return {"apiVersion": 1, "groups": out}

    # -- contact points

    def _receiver_names(self, org: Org) -> set[str]:
        return {c["name"] for c in org.contact_points.values()}

    def _policy(self, org: Org) -> JSON:
        return org.policy if org.policy is not None else default_policy()

    def _referenced_receivers(self, org: Org) -> set[str]:
        names: set[str] = set()

        def walk(route: Any) -> None:
            if not isinstance(route, dict):
                return
            if isinstance(route.get("receiver"), str) and route["receiver"]:
                names.add(route["receiver"])
            for child in route.get("routes") or []:
                walk(child)

        walk(self._policy(org))
        for r in org.rules.values():
            settings = r.get("notification_settings")
            if isinstance(settings, dict) and isinstance(settings.get("receiver"), str):
                names.add(settings["receiver"])
        return names

    def _contact_point_from_body(
        self, body: JSON, req: Request, uid: str, old: JSON | None
    ) -> JSON:
        name = as_str(body.get("name")).strip()
        if not name:
            raise self._invalid("name must be specified")
        kind = as_str(body.get("type"))
        if kind not in CONTACT_POINT_TYPES:
            raise self._invalid(f"notifier {kind!r} is not supported")
        settings = body.get("settings")
        if not isinstance(settings, dict):
            raise self._invalid("settings should not be empty")
        settings = dict(settings)
        secure = CONTACT_POINT_TYPES[kind][1]
        previous = old["settings"] if old is not None and old["type"] == kind else {}
        for key in secure:
            value = settings.get(key)
            if value == REDACTED:
                # Grafana keeps the stored secret when the redacted placeholder comes back.
                if key in previous:
                    settings[key] = REDACTED
                else:
                    settings.pop(key)
            elif value:
                settings[key] = REDACTED
        required = CONTACT_POINT_TYPES[kind][0]
        if required and not any(settings.get(k) for k in required):
            raise self._invalid(f"could not find {' or '.join(required)} in settings")
        return {
            "uid": uid,
            "name": name,
            "type": kind,
            "settings": settings,
            "disableResolveMessage": body.get("disableResolveMessage") is True,
            "provenance": self._provenance(req),
        }

    def list_contact_points(self, req: Request, ident: Identity) -> Payload:
        name = req.arg("name")
        with self.lock:
            org = self.require_org(ident)
            points = sorted(org.contact_points.values(), key=lambda c: (c["name"], c["uid"]))
            return [c for c in points if not name or c["name"] == name]

    def create_contact_point(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        uid = as_str(body.get("uid"))
        if uid:
            check_uid(uid)
        with self.lock:
            org = self.require_org(ident)
            if uid and uid in org.contact_points:
                raise self._invalid(f"receiver with UID '{uid}' already exists")
            point = self._contact_point_from_body(body, req, uid or short_uid(), None)
            org.contact_points[point["uid"]] = point
            self.mutated()
            return Answer(202, point)

    def update_contact_point(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        with self.lock:
            org = self.require_org(ident)
            old = org.contact_points.get(req.params["uid"])
            if old is None:
                raise error(404, "contact point not found")
            point = self._contact_point_from_body(body, req, old["uid"], old)
            if point["name"] != old["name"]:
                others = [c for c in org.contact_points.values()
                          if c["name"] == old["name"] and c is not old]  # fmt: skip
                if not others and old["name"] in self._referenced_receivers(org):
                    raise contact_point_in_use()
            org.contact_points[old["uid"]] = point
            self.mutated()
        return Answer(202, {"message": "contactpoint updated"})

    def delete_contact_point(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            point = org.contact_points.get(req.params["uid"])
            if point is not None:
                others = [c for c in org.contact_points.values()
                          if c["name"] == point["name"] and c is not point]  # fmt: skip
                if not others and point["name"] in self._referenced_receivers(org):
                    raise contact_point_in_use()
                del org.contact_points[point["uid"]]
                self.mutated()
        return Answer(202, {"message": "contactpoint deleted"})

    # -- notification policies

    def get_policies(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            tree = dict(self._policy(org))
            if org.policy_provenance:
                tree["provenance"] = org.policy_provenance
            return tree

    def put_policies(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        body.pop("provenance", None)
        with self.lock:
            org = self.require_org(ident)
            names = self._receiver_names(org)
            timings = set(org.mute_timings)
            if not as_str(body.get("receiver")):
                raise self._invalid("root route must specify a default receiver")

            def check(route: Any) -> None:
                if not isinstance(route, dict):
                    raise bad_request()
                receiver = route.get("receiver")
                if receiver and receiver not in names:
                    raise self._invalid(f"receiver '{receiver}' does not exist")
                for key in ("mute_time_intervals", "active_time_intervals"):
                    for timing in route.get(key) or []:
                        if timing not in timings:
                            raise self._invalid(f"mute time interval '{timing}' does not exist")
                for child in route.get("routes") or []:
                    check(child)

            check(body)
            org.policy = body
            org.policy_provenance = self._provenance(req)
            self.mutated()
        return Answer(202, {"message": "policies updated"})

    def reset_policies(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            org.policy, org.policy_provenance = None, ""
            if DEFAULT_RECEIVER not in self._receiver_names(org):
                org.contact_points.update(default_contact_points())
            self.mutated()
        return Answer(202, {"message": "policies resetted"})

    # -- mute timings

    @staticmethod
    def _with_version(obj: JSON, *keys: str) -> JSON:
        digest = hashlib.md5(dumps([obj.get(k) for k in keys]).encode(), usedforsecurity=False)
        return {**obj, "version": digest.hexdigest()[:16]}

    def _timing_in_use(self, org: Org, name: str) -> bool:
        def walk(route: Any) -> bool:
            if not isinstance(route, dict):
                return False
            for key in ("mute_time_intervals", "active_time_intervals"):
                if name in (route.get(key) or []):
                    return True
            return any(walk(child) for child in route.get("routes") or [])

        return walk(self._policy(org))

    def _timing_from_body(self, body: JSON, req: Request) -> JSON:
        name = as_str(body.get("name")).strip()
        if not name:
            raise self._invalid("missing name")
        intervals = body.get("time_intervals", [])
        if not isinstance(intervals, list) or not all(isinstance(i, dict) for i in intervals):
            raise self._invalid("time_intervals must be a list")
        return {"name": name, "time_intervals": intervals, "provenance": self._provenance(req)}

    def list_mute_timings(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            return [self._with_version(m, "time_intervals")
                    for _, m in sorted(org.mute_timings.items())]  # fmt: skip

    def get_mute_timing(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            timing = org.mute_timings.get(req.params["name"])
            if timing is None:
                raise errutil(404, "alerting.notifications.time-intervals.notFound",
                              "Time interval not found")  # fmt: skip
            return self._with_version(timing, "time_intervals")

    def create_mute_timing(self, req: Request, ident: Identity) -> Payload:
        timing = self._timing_from_body(req.json_object(), req)
        with self.lock:
            org = self.require_org(ident)
            if timing["name"] in org.mute_timings:
                raise errutil(
                    400, "alerting.notifications.time-intervals.nameExists",
                    "Time interval with this name already exists. Use a different name or "
                    "update existing one.",
                )  # fmt: skip
            org.mute_timings[timing["name"]] = timing
            self.mutated()
            return Answer(201, self._with_version(timing, "time_intervals"))

    def update_mute_timing(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        with self.lock:
            org = self.require_org(ident)
            name = req.params["name"]
            if name not in org.mute_timings:
                raise errutil(404, "alerting.notifications.time-intervals.notFound",
                              "Time interval not found")  # fmt: skip
            timing = self._timing_from_body({**body, "name": name}, req)
            org.mute_timings[name] = timing
            self.mutated()
            return Answer(202, self._with_version(timing, "time_intervals"))

    def delete_mute_timing(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            name = req.params["name"]
            if name in org.mute_timings:
                if self._timing_in_use(org, name):
                    raise errutil(
                        409,
                        "alerting.notifications.time-intervals.used",
                        "Time interval is used by one or many notification policies",
                    )
                del org.mute_timings[name]
                self.mutated()
        return Answer(204, b"")

    # -- templates

    def list_templates(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            return [self._with_version(t, "template") for _, t in sorted(org.templates.items())]

    def get_template(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            template = org.templates.get(req.params["name"])
            if template is None:
                raise errutil(
                    404, "alerting.notifications.templates.notFound", "Template not found"
                )
            return self._with_version(template, "template")

    def put_template(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        text = as_str(body.get("template"))
        name = req.params["name"]
        if not text.strip():
            raise self._invalid("template must have content")
        if text.count("{{") != text.count("}}"):
            raise self._invalid(f"template: {name}: unclosed action")
        with self.lock:
            org = self.require_org(ident)
            template = {"name": name, "template": text, "provenance": self._provenance(req)}
            org.templates[name] = template
            self.mutated()
            return Answer(202, self._with_version(template, "template"))

    def delete_template(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            if org.templates.pop(req.params["name"], None) is not None:
                self.mutated()
        return Answer(204, b"")

    # ------------------------------------------------------------------ annotations
    # https://grafana.com/docs/grafana/latest/developers/http_api/annotations/ . Times are
    # epoch milliseconds; a query matches annotations overlapping [from, to], newest first.

    def _annotation_dto(self, a: JSON) -> JSON:
        return {
            "id": a["id"],
            "alertId": 0,
            "alertName": "",
            "dashboardId": a["dashboardId"],
            "dashboardUID": a["dashboardUID"] or None,
            "panelId": a["panelId"],
            "userId": a["userId"],
            "newState": "",
            "prevState": "",
            "created": a["created"],
            "updated": a["updated"],
            "time": a["time"],
            "timeEnd": a["timeEnd"],
            "text": a["text"],
            "tags": a["tags"],
            "login": a["login"],
            "email": a["email"],
            "avatarUrl": avatar_url(a["email"]),
            "data": a.get("data", {}),
        }

    def list_annotations(self, req: Request, ident: Identity) -> Payload:
        start = as_int(req.arg("from"), 0)
        end = as_int(req.arg("to"), 0)
        limit = as_int(req.arg("limit"), 100) or 100
        dash_uid = req.arg("dashboardUID")
        dash_id = as_int(req.arg("dashboardId"))
        panel_id = as_int(req.arg("panelId"))
        kind = req.arg("type")
        tags = set(req.args("tags"))
        match_any = req.arg("matchAny") == "true"
        if kind == "alert":
            return []  # the double has no alert-state annotations
        with self.lock:
            org = self.require_org(ident)
            found = []
            for a in org.annotations.values():
                if start and a["timeEnd"] < start:
                    continue
                if end and a["time"] > end:
                    continue
                if (dash_uid and a["dashboardUID"] != dash_uid) or (
                    dash_id and a["dashboardId"] != dash_id
                ):
                    continue
                if panel_id and a["panelId"] != panel_id:
                    continue
                if tags:
                    have = set(a["tags"])
                    if not (have & tags if match_any else tags <= have):
                        continue
                found.append(a)
            found.sort(key=lambda a: (a["time"], a["id"]), reverse=True)
            return [self._annotation_dto(a) for a in found[:limit]]

    def _annotation(self, org: Org, req: Request) -> JSON:
        a = org.annotations.get(as_int(req.params["id"], -1))
        if a is None:
            raise error(404, "Annotation not found")
        return a

    @staticmethod
    def _tags(value: Any) -> list[str]:
        return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []

    def create_annotation(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        text = as_str(body.get("text"))
        if not text:
            raise error(400, "Failed to save annotation")
        with self.lock:
            org = self.require_org(ident)
            dash_uid = as_str(body.get("dashboardUID"))
            dash_id = as_int(body.get("dashboardId"))
            if dash_uid:
                dash = org.dashboards.get(dash_uid)
                if dash is None:
                    raise error(400, "Invalid dashboard UID in annotation request")
                dash_id = dash.id
            elif dash_id:
                found = org.dash_ids.get(dash_id)
                if found is None:
                    raise error(400, "Invalid dashboard ID in annotation request")
                dash_uid = found
            moment = as_int(body.get("time")) or int(time.time() * 1000)
            user = self._user_by_id(ident.user_id)
            stamp = int(time.time() * 1000)
            a: JSON = {
                "id": self.take("annotation"), "dashboardUID": dash_uid, "dashboardId": dash_id,
                "panelId": as_int(body.get("panelId")), "time": moment,
                "timeEnd": as_int(body.get("timeEnd")) or moment, "text": text,
                "tags": self._tags(body.get("tags")), "userId": ident.user_id,
                "login": ident.login, "email": user.email if user else "", "created": stamp,
                "updated": stamp,
                "data": body["data"] if isinstance(body.get("data"), dict) else {},
            }  # fmt: skip
            org.annotations[a["id"]] = a
            self.mutated()
        return {"message": "Annotation added", "id": a["id"]}

    def update_annotation(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        patch = req.method == "PATCH"
        with self.lock:
            org = self.require_org(ident)
            a = self._annotation(org, req)
            if not patch or "text" in body:
                a["text"] = as_str(body.get("text"))
            if not patch or "tags" in body:
                a["tags"] = self._tags(body.get("tags"))
            if as_int(body.get("time")):
                a["time"] = as_int(body.get("time"))
                a["timeEnd"] = max(a["timeEnd"], a["time"])
            if as_int(body.get("timeEnd")):
                a["timeEnd"] = as_int(body.get("timeEnd"))
            if isinstance(body.get("data"), dict):
                a["data"] = body["data"]
            a["updated"] = int(time.time() * 1000)
            self.mutated()
        return {"message": "Annotation patched" if patch else "Annotation updated"}

    def delete_annotation(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            a = self._annotation(org, req)
            del org.annotations[a["id"]]
            self.mutated()
        return {"message": "Annotation deleted"}

    # ------------------------------------------------------------------ org preferences
    # https://grafana.com/docs/grafana/latest/developers/http_api/preferences/

    def get_org_preferences(self, req: Request, ident: Identity) -> Payload:
        with self.lock:
            org = self.require_org(ident)
            p = org.preferences
            home = org.dashboards.get(p.get("homeDashboardUID", ""))
            return {
                "theme": p.get("theme", ""),
                "homeDashboardId": home.id if home else 0,
                "homeDashboardUID": p.get("homeDashboardUID", ""),
                "timezone": p.get("timezone", ""),
                "weekStart": p.get("weekStart", ""),
                "locale": p.get("locale", ""),
                "language": p.get("language", ""),
                "navbar": {"bookmarkUrls": None},
                "queryHistory": {"homeTab": ""},
            }

    def update_org_preferences(self, req: Request, ident: Identity) -> Payload:
        body = req.json_object()
        patch = req.method == "PATCH"
        with self.lock:
            org = self.require_org(ident)
            prefs = dict(org.preferences) if patch else {}
            for key in ("theme", "timezone", "weekStart", "locale", "language"):
                if key in body or not patch:
                    prefs[key] = as_str(body.get(key))
            if prefs.get("theme") not in ("", "light", "dark", "system"):
                raise error(400, "Invalid theme")
            if "homeDashboardUID" in body or "homeDashboardId" in body or not patch:
                home_uid = as_str(body.get("homeDashboardUID"))
                home_id = as_int(body.get("homeDashboardId"))
                if not home_uid and home_id:
                    home_uid = org.dash_ids.get(home_id, "\0missing")
                if home_uid and home_uid not in org.dashboards:
                    raise error(404, "Dashboard not found")
                prefs["homeDashboardUID"] = home_uid
            org.preferences = prefs
            self.mutated()
        return {"message": "Preferences updated"}

    # ------------------------------------------------------------------ lab-only

    def lab(self, req: Request) -> tuple[int, Body]:
        auth = req.headers.get("authorization", "")
        scheme, _, credentials = auth.partition(" ")
        try:
            user, _, password = base64.b64decode(credentials).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        admin = self.admin
        if (
            scheme.lower() != "basic"
            or user != admin.login
            or not hmac.compare_digest(hash_password(password, admin.salt), admin.password_hash)
        ):
            return 401, {"message": "lab endpoints need the admin user's basic auth"}
        key = (req.method, req.path)
        if key == ("POST", "/__lab/reset"):
            with self.lock:
                self._reset_locked()
                self.mutated()
            with self.fault_lock:
                self.faults.clear()
            return 200, {"message": "lab state reset"}
        if key == ("GET", "/__lab/fault"):
            with self.fault_lock:
                return 200, [f.to_json() for f in self.faults]
        if key == ("DELETE", "/__lab/fault"):
            with self.fault_lock:
                self.faults.clear()
            return 200, {"message": "faults cleared"}
        if key == ("POST", "/__lab/fault"):
            body = req.json_object()
            status = body.get("status")
            raw_headers = body.get("headers")
            headers: JSON = raw_headers if isinstance(raw_headers, dict) else {}
            fault = Fault(
                path=as_str(body.get("path")) or "/",
                method=as_str(body.get("method")).upper() or None,
                status=status if isinstance(status, int) and 100 <= status <= 599 else None,
                message=as_str(body.get("message")) or "injected fault",
                remaining=max(as_int(body.get("count"), 1), 1),
                delay_ms=max(as_int(body.get("delayMs")), 0),
                drop=body.get("drop") is True,
                headers={str(k): str(v) for k, v in headers.items()},
                exact=body.get("exact") is True,
                org_id=as_int(body.get("orgId")) or None,
            )
            if fault.status is None and not fault.drop and not fault.delay_ms:
                return 400, {"message": "a fault needs a status, delayMs or drop"}
            with self.fault_lock:
                self.faults.append(fault)
            return 200, {"message": "fault added", "fault": fault.to_json()}
        if key == ("GET", "/__lab/stats"):
            with self.stats_lock:
                return 200, dict(self.stats)
        return 404, {"message": "Not found"}

    def take_fault(self, method: str, path: str, org_header: str = "") -> Fault | None:
        if not self.faults:
            return None
        org_id = as_int(org_header, 0) or 1
        with self.fault_lock:
            for i, fault in enumerate(self.faults):
                if fault.matches(method, path, org_id):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        del self.faults[i]
                    return fault
        return None


ANONYMOUS = Identity("", 0, 0, "None", False, False)


def _route(
    method: str, pattern: str, handler: Handler, *perms: str, public: bool = False,
    server_admin: bool = False,
) -> Route:  # fmt: skip
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
    return Route(method, regex, handler, perms, public, server_admin)


G = GrafanaDouble
# Every Grafana endpoint the double answers. perms: the RBAC action(s) needed, any of them
# (see ROLE_PERMS for which basic role has which); server_admin: Grafana server admins only
# (the admin user; service-account tokens never are). Each group cites its doc page.
ROUTES: list[Route] = [
    _route("GET", "/api/health", G.health, public=True),
    # .../http_api/folder_dashboard_search/
    _route("GET", "/api/search", G.search),
    # .../http_api/dashboard/
    _route("GET", "/api/dashboards/tags", G.tags),
    _route("POST", "/api/dashboards/db", G.save_dashboard, "dashboards:create", "dashboards:write"),
    _route("GET", "/api/dashboards/uid/{uid}", G.get_dashboard, "dashboards:read"),
    _route("DELETE", "/api/dashboards/uid/{uid}", G.delete_dashboard, "dashboards:delete"),
    # .../http_api/dashboard_permissions/
    _route("GET", "/api/dashboards/uid/{uid}/permissions", G.dashboard_permissions,
           "dashboards.permissions:read"),
    _route("POST", "/api/dashboards/uid/{uid}/permissions", G.update_dashboard_permissions,
           "dashboards.permissions:write"),
    # .../http_api/folder/
    _route("GET", "/api/folders", G.list_folders, "folders:read"),
    _route("POST", "/api/folders", G.create_folder, "folders:create"),
    _route("GET", "/api/folders/id/{id}", G.get_folder_by_id, "folders:read"),
    # .../http_api/folder_permissions/
    _route("GET", "/api/folders/{uid}/permissions", G.folder_permissions,
           "folders.permissions:read"),
    _route("POST", "/api/folders/{uid}/permissions", G.update_folder_permissions,
           "folders.permissions:write"),
    _route("GET", "/api/folders/{uid}", G.get_folder, "folders:read"),
    _route("PUT", "/api/folders/{uid}", G.update_folder, "folders:write"),
    _route("DELETE", "/api/folders/{uid}", G.delete_folder, "folders:delete"),
    _route("POST", "/api/folders/{uid}/move", G.move_folder, "folders:write"),
    # .../http_api/data_source/
    _route("GET", "/api/datasources", G.list_datasources, "datasources:read"),
    _route("POST", "/api/datasources", G.create_datasource, "datasources:create"),
    _route("GET", "/api/datasources/uid/{uid}", G.get_datasource, "datasources:read"),
    _route("PUT", "/api/datasources/uid/{uid}", G.update_datasource, "datasources:write"),
    _route("DELETE", "/api/datasources/uid/{uid}", G.delete_datasource, "datasources:delete"),
    _route("GET", "/api/datasources/name/{name}", G.get_datasource, "datasources:read"),
    _route("DELETE", "/api/datasources/name/{name}", G.delete_datasource, "datasources:delete"),
    _route("GET", "/api/datasources/id/{name}", G.get_datasource_id, "datasources:read"),
    _route("GET", "/api/datasources/{id}", G.get_datasource, "datasources:read"),
    _route("DELETE", "/api/datasources/{id}", G.delete_datasource, "datasources:delete"),
    # .../http_api/auth/
    _route("GET", "/api/auth/keys", G.list_api_keys, "apikeys:read"),
    # .../http_api/org/ (current org, org users; admin orgs API)
    _route("GET", "/api/org", G.get_org, "orgs:read"),
    _route("PUT", "/api/org", G.update_org, "orgs:write"),
    _route("GET", "/api/org/users", G.org_users, "org.users:read"),
    _route("GET", "/api/org/users/lookup", G.org_users_lookup, "org.users:read"),
    _route("POST", "/api/org/users", G.add_org_user, "org.users:add"),
    _route("PATCH", "/api/org/users/{userId}", G.update_org_user, "org.users:write"),
    _route("DELETE", "/api/org/users/{userId}", G.remove_org_user, "org.users:remove"),
    # .../http_api/preferences/
    _route("GET", "/api/org/preferences", G.get_org_preferences, "orgs.preferences:read"),
    _route("PUT", "/api/org/preferences", G.update_org_preferences, "orgs.preferences:write"),
    _route("PATCH", "/api/org/preferences", G.update_org_preferences, "orgs.preferences:write"),
    _route("GET", "/api/orgs", G.list_orgs, "orgs:read", server_admin=True),
    _route("POST", "/api/orgs", G.create_org, "orgs:create", server_admin=True),
    _route("GET", "/api/orgs/name/{name}", G.get_org_by_name, "orgs:read", server_admin=True),
    _route("GET", "/api/orgs/{id}", G.get_org_by_id, "orgs:read", server_admin=True),
    _route("PUT", "/api/orgs/{id}", G.update_org, "orgs:write", server_admin=True),
    _route("DELETE", "/api/orgs/{id}", G.delete_org, "orgs:delete", server_admin=True),
    _route("GET", "/api/orgs/{id}/users", G.org_users, "org.users:read", server_admin=True),
    _route("POST", "/api/orgs/{id}/users", G.add_org_user, "org.users:add", server_admin=True),
    _route("PATCH", "/api/orgs/{id}/users/{userId}", G.update_org_user, "org.users:write",
           server_admin=True),
    _route("DELETE", "/api/orgs/{id}/users/{userId}", G.remove_org_user, "org.users:remove",
           server_admin=True),
    # .../http_api/user/ and .../http_api/admin/
    _route("GET", "/api/user", G.get_user),
    _route("PUT", "/api/user/password", G.change_password),
    _route("GET", "/api/users", G.list_users, "users:read", server_admin=True),
    _route("GET", "/api/users/search", G.search_users, "users:read", server_admin=True),
    _route("GET", "/api/users/lookup", G.lookup_user, "users:read", server_admin=True),
    _route("GET", "/api/users/{id}", G.get_user_by_id, "users:read", server_admin=True),
    _route("GET", "/api/users/{id}/orgs", G.get_user_orgs, "users:read", server_admin=True),
    _route("POST", "/api/admin/users", G.create_user, "users:create", server_admin=True),
    # .../http_api/team/
    _route("GET", "/api/teams/search", G.search_teams, "teams:read"),
    _route("POST", "/api/teams", G.create_team, "teams:create"),
    _route("GET", "/api/teams/{id}", G.get_team, "teams:read"),
    _route("PUT", "/api/teams/{id}", G.update_team, "teams:write"),
    _route("DELETE", "/api/teams/{id}", G.delete_team, "teams:delete"),
    _route("GET", "/api/teams/{id}/members", G.team_members, "teams:read"),
    _route("POST", "/api/teams/{id}/members", G.add_team_member, "teams:write"),
    _route("DELETE", "/api/teams/{id}/members/{userId}", G.remove_team_member, "teams:write"),
    # .../http_api/library_element/
    _route("GET", "/api/library-elements", G.list_library_elements, "library.panels:read"),
    _route("POST", "/api/library-elements", G.create_library_element, "library.panels:create"),
    _route("GET", "/api/library-elements/name/{name}", G.get_library_elements_by_name,
           "library.panels:read"),
    _route("GET", "/api/library-elements/{uid}", G.get_library_element, "library.panels:read"),
    _route("PATCH", "/api/library-elements/{uid}", G.patch_library_element,
           "library.panels:write"),
    _route("DELETE", "/api/library-elements/{uid}", G.delete_library_element,
           "library.panels:delete"),
    _route("GET", "/api/library-elements/{uid}/connections", G.library_element_connections,
           "library.panels:read"),
    # .../http_api/annotations/
    _route("GET", "/api/annotations", G.list_annotations, "annotations:read"),
    _route("POST", "/api/annotations", G.create_annotation, "annotations:create"),
    _route("PUT", "/api/annotations/{id}", G.update_annotation, "annotations:write"),
    _route("PATCH", "/api/annotations/{id}", G.update_annotation, "annotations:write"),
    _route("DELETE", "/api/annotations/{id}", G.delete_annotation, "annotations:delete"),
    # .../http_api/alerting_provisioning/
    _route("GET", "/api/v1/provisioning/alert-rules", G.list_alert_rules,
           "alert.provisioning:read"),
    _route("POST", "/api/v1/provisioning/alert-rules", G.create_alert_rule,
           "alert.provisioning:write"),
    _route("GET", "/api/v1/provisioning/alert-rules/export", G.export_alert_rules,
           "alert.provisioning:read"),
    _route("GET", "/api/v1/provisioning/alert-rules/{uid}", G.get_alert_rule,
           "alert.provisioning:read"),
    _route("PUT", "/api/v1/provisioning/alert-rules/{uid}", G.update_alert_rule,
           "alert.provisioning:write"),
    _route("DELETE", "/api/v1/provisioning/alert-rules/{uid}", G.delete_alert_rule,
           "alert.provisioning:write"),
    _route("GET", "/api/v1/provisioning/folder/{folderUid}/rule-groups/{group}",
           G.get_rule_group, "alert.provisioning:read"),
    _route("PUT", "/api/v1/provisioning/folder/{folderUid}/rule-groups/{group}",
           G.put_rule_group, "alert.provisioning:write"),
    _route("GET", "/api/v1/provisioning/contact-points", G.list_contact_points,
           "alert.provisioning:read"),
    _route("POST", "/api/v1/provisioning/contact-points", G.create_contact_point,
           "alert.provisioning:write"),
    _route("PUT", "/api/v1/provisioning/contact-points/{uid}", G.update_contact_point,
           "alert.provisioning:write"),
    _route("DELETE", "/api/v1/provisioning/contact-points/{uid}", G.delete_contact_point,
           "alert.provisioning:write"),
    _route("GET", "/api/v1/provisioning/policies", G.get_policies, "alert.provisioning:read"),
    _route("PUT", "/api/v1/provisioning/policies", G.put_policies, "alert.provisioning:write"),
    _route("DELETE", "/api/v1/provisioning/policies", G.reset_policies,
           "alert.provisioning:write"),
    _route("GET", "/api/v1/provisioning/mute-timings", G.list_mute_timings,
           "alert.provisioning:read"),
    _route("POST", "/api/v1/provisioning/mute-timings", G.create_mute_timing,
           "alert.provisioning:write"),
    _route("GET", "/api/v1/provisioning/mute-timings/{name}", G.get_mute_timing,
           "alert.provisioning:read"),
    _route("PUT", "/api/v1/provisioning/mute-timings/{name}", G.update_mute_timing,
           "alert.provisioning:write"),
    _route("DELETE", "/api/v1/provisioning/mute-timings/{name}", G.delete_mute_timing,
           "alert.provisioning:write"),
    _route("GET", "/api/v1/provisioning/templates", G.list_templates, "alert.provisioning:read"),
    _route("GET", "/api/v1/provisioning/templates/{name}", G.get_template,
           "alert.provisioning:read"),
    _route("PUT", "/api/v1/provisioning/templates/{name}", G.put_template,
           "alert.provisioning:write"),
    _route("DELETE", "/api/v1/provisioning/templates/{name}", G.delete_template,
           "alert.provisioning:write"),
    _route("GET", "/api/frontend/settings", G.frontend_settings),
]  # fmt: skip


# --------------------------------------------------------------------------- HTTP


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: GrafanaDouble, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log
        super().__init__(address, RequestHandler)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server
    EXTRA_HEADERS: ClassVar[str] = (
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "X-Frame-Options: deny\r\n"
        "X-Xss-Protection: 1; mode=block\r\n"
    )

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("GET", head=True)

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str, head: bool = False) -> None:
        app = self.server.app
        status: int
        payload: Body
        extra_headers: dict[str, str] = {}
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, {"message": "bad request data"}, head)
            return
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        req = Request(
            method=method,
            path=path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            if path.startswith("/__lab/"):
                status, payload = app.lab(req)
            else:
                app.count(req)
                fault = app.take_fault(method, path, req.headers.get("x-grafana-org-id", ""))
                if fault is not None:
                    if fault.delay_ms:
                        time.sleep(fault.delay_ms / 1000)
                    if fault.drop:
                        self.close_connection = True
                        return
                if fault is not None and fault.status is not None:
                    status, payload = fault.status, {"message": fault.message}
                    extra_headers = fault.headers
                else:
                    status, payload = app.handle(req)
        except ApiError as exc:
            status, payload = exc.status, exc.body
        except Exception:
            traceback.print_exc()
            status, payload = 500, {"message": "Internal Server Error"}
        self._send(status, payload, head, extra_headers)

    def _send(
        self, status: int, payload: Body, head: bool, headers: dict[str, str] | None = None
    ) -> None:
        body = payload if isinstance(payload, bytes) else dumps(payload).encode()
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = (
            f"HTTP/1.1 {status} {phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{self.EXTRA_HEADERS}"
            f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
        )
        for name, value in (headers or {}).items():
            lines += f"{name}: {value}\r\n"
        if self.close_connection:
            lines += "Connection: close\r\n"
        data = (lines + "\r\n").encode("latin-1") + (b"" if head else body)
        self.wfile.write(data)
        if self.server.access_log:
            self.log_request(status, len(body))


# --------------------------------------------------------------------------- CLI


def load_tokens(args: argparse.Namespace) -> list[TokenSpec]:
    specs: list[str] = list(args.token or [])
    if args.tokens_file:
        for line in Path(args.tokens_file).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                specs.append(line)
    specs.extend(re.split(r"[\s,]+", os.environ.get("GRAFANA_DOUBLE_TOKENS", "").strip()))
    return [TokenSpec.parse(s) for s in specs if s.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A double of Grafana 11's HTTP API for the lab.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000, help="0 picks a free port")
    p.add_argument("--state", required=True, type=Path, help="JSON state file")
    p.add_argument("--admin-user", default="admin")
    p.add_argument("--admin-password", default="admin", help="only used for a new state file")
    p.add_argument(
        "--token", action="append", metavar="TOKEN[:ROLE[:ORG_ID]]",
        help="a service-account token; repeatable",
    )  # fmt: skip
    p.add_argument("--tokens-file", help="one TOKEN[:ROLE[:ORG_ID]] a line")
    p.add_argument("--version", default=DEFAULT_VERSION, help="Grafana version to emulate")
    p.add_argument("--fsync", action="store_true", help="fsync the state file on every write")
    p.add_argument(
        "--write-behind", type=int, default=0, metavar="MS",
        help="coalesce state writes, at most one per MS milliseconds, instead of writing "
        "before each mutating response (benchmarks); flushed on SIGTERM/SIGINT",
    )  # fmt: skip
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        tokens = load_tokens(args)
    except (OSError, ValueError) as exc:
        print(f"grafana-double: {exc}", file=sys.stderr)
        return 2
    app = GrafanaDouble(
        args.state.resolve(), args.admin_user, args.admin_password, tokens, args.version,
        fsync=args.fsync, write_behind_ms=args.write_behind,
    )  # fmt: skip
    try:
        server = Server((args.host, args.port), app, args.access_log)
    except OSError as exc:
        print(f"grafana-double: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(
        f"grafana-double {args.version} listening on http://{host}:{port} (state {args.state})",
        flush=True,
    )
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    app.close()  # waits for any write in flight, then writes the final state
    print("grafana-double stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
