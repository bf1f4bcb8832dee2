#!/usr/bin/env python3
"""A double of Grafana 11's HTTP API, for the opskit lab, its tests and its benchmarks.

Grafana itself cannot be installed here, so the lab runs this instead. It answers the
endpoints opskit and grafana-backup-tool use with Grafana 11.x's status codes, JSON shapes
and error bodies, following Grafana's HTTP API reference
(https://grafana.com/docs/grafana/latest/developers/http_api/: the dashboard, folder,
data source, organization, search, user and authentication pages). Standard library only.

    python lab/grafana_double.py --host 127.0.0.1 --port 3000 --state STATE.json \\
        [--admin-user admin --admin-password admin] [--token TOKEN[:ROLE[:ORG_ID]] ...] \\
        [--tokens-file FILE] [--version 11.2.0] [--write-behind MS] [--fsync] [--access-log]

Service-account tokens come from --token (repeatable), --tokens-file (one spec a line) and
the GRAFANA_DOUBLE_TOKENS environment variable (specs separated by commas or whitespace).
A spec is TOKEN, TOKEN:ROLE or TOKEN:ROLE:ORG_ID with ROLE one of Admin (default), Editor,
Viewer, None.

State (orgs, folders, dashboards with their version counters, data sources without their
secrets, the admin password hash) is written to --state with write-temp-then-os.replace
after every mutation, before the response is sent, and loaded at start (--write-behind MS
coalesces the writes instead, for benchmarks; SIGTERM/SIGINT flush). As in Grafana, the
admin password given on the command line only applies when the state is first created.

Lab-only endpoints, not part of Grafana, all behind the admin user's basic auth:
    POST   /__lab/reset   wipe the state back to a fresh install
    GET    /__lab/fault   list pending injected faults
    POST   /__lab/fault   inject a fault: {"path": "/api/search", "method": "GET",
                          "status": 503, "message": "...", "count": 1, "delayMs": 0,
                          "drop": false}
    DELETE /__lab/fault   clear injected faults
    GET    /__lab/stats   request counters
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
Payload = JSON | list[Any] | bytes

STATE_FORMAT = "opskit-grafana-double/1"
DEFAULT_VERSION = "11.2.0"
COMMIT = "opskit-lab-double"
ROLES = ("Admin", "Editor", "Viewer", "None")
UID_RE = re.compile(r"^[a-zA-Z0-9\-_]*$")
MAX_UID = 40
MAX_NESTED_FOLDER_DEPTH = 4
ZERO_TIME = "0001-01-01T00:00:00Z"

VIEWER_PERMS = frozenset({"dashboards:read", "folders:read", "orgs:read"})
EDITOR_PERMS = VIEWER_PERMS | {
    "dashboards:create",
    "dashboards:write",
    "dashboards:delete",
    "folders:create",
    "folders:write",
    "folders:delete",
}
ADMIN_PERMS = EDITOR_PERMS | {
    "datasources:read",
    "datasources:create",
    "datasources:write",
    "datasources:delete",
    "orgs:write",
    "apikeys:read",
    "folders.permissions:read",
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
        dash.refresh_record()
        return dash


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
        }


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

    def to_json(self) -> JSON:
        return {
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "message": self.message,
            "count": self.remaining,
            "delayMs": self.delay_ms,
            "drop": self.drop,
        }


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
        self.orgs = {1: Org(1, "Main Org.", {login: "Admin"})}
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
            self.orgs = {}
            for o in data["orgs"]:
                org = Org(int(o["id"]), o["name"], dict(o["members"]))
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
            if key not in self.auth_cache:
                ok = user in (admin.login, admin.email) and hmac.compare_digest(
                    hash_password(password, admin.salt), admin.password_hash
                )
                if not ok:
                    raise errutil(401, "password-auth.failed", "Invalid username or password")
                self.auth_cache.add(key)
            org_id = requested_org or 1
            org = self.orgs.get(org_id)
            role = org.members.get(admin.login) if org else None
        if role is None:
            # Grafana signs the user in with OrgID -1 ("Org missing") and no role.
            org_id, role = -1, "None"
        return Identity(
            login=admin.login,
            user_id=1,
            org_id=org_id,
            role=role,
            server_admin=True,
            service_account=False,
        )

    # ------------------------------------------------------------------ dispatch

    def handle(self, req: Request) -> tuple[int, Payload]:
        route, params = self._match(req.method, req.path)
        if route is None:
            # Grafana's router answers unknown paths and wrong methods alike.
            return 404, {"message": "Not found"}
        req.params = params
        if route.public:
            return 200, route.handler(self, req, ANONYMOUS)
        ident = self.authenticate(req)
        if route.server_admin and not ident.server_admin:
            raise access_denied(route.perms[0] if route.perms else "server admin")
        if route.perms and not route.server_admin and not any(ident.can(p) for p in route.perms):
            needed = route.perms[0] if len(route.perms) == 1 else "any of " + ", ".join(route.perms)
            raise access_denied(needed)
        return 200, route.handler(self, req, ident)

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
            org = Org(self.next_org_id, name, {ident.login: "Admin"})
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
        admin = self.admin
        if ident.service_account:
            login, email, uid, created = ident.login, "", f"sa{ident.user_id}", ZERO_TIME
        else:
            login, email, uid, created = admin.login, admin.email, admin.uid, admin.created
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
            org.drop_dashboard(dash)
            self.mutated()
        return {"title": dash.title, "message": f"Dashboard {dash.title} deleted", "id": dash.id}

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
            dash.refresh_record()
            if existing is not None:
                org.drop_dashboard(existing)
            org.put_dashboard(dash)
            self.mutated()
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

    def folder_permissions(self, req: Request, ident: Identity) -> Payload:
        """The legacy folder-permission list (`GET /api/folders/:uid/permissions`) with the
        permissions Grafana grants a new folder: Editor edits, Viewer views. The double does
        not model permission changes, so every folder answers these."""
        org = self.require_org(ident)
        with self.lock:
            folder = org.folders.get(req.params["uid"])
            if folder is None:
                raise folder_not_found()
            url = f"/dashboards/f/{folder.uid}/{slugify(folder.title)}"
            return [
                {
                    "folderUid": folder.uid,
                    "created": folder.created,
                    "updated": folder.created,
                    "userId": 0,
                    "userUid": "",
                    "userLogin": "",
                    "userEmail": "",
                    "userAvatarUrl": "",
                    "teamId": 0,
                    "teamUid": "",
                    "teamEmail": "",
                    "teamAvatarUrl": "",
                    "team": "",
                    "role": role,
                    "permission": level,
                    "permissionName": name,
                    "uid": folder.uid,
                    "title": folder.title,
                    "slug": slugify(folder.title),
                    "isFolder": True,
                    "url": url,
                    "inherited": False,
                }
                for role, level, name in (("Editor", 2, "Edit"), ("Viewer", 1, "View"))
            ]

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
            for dash in [d for d in org.dashboards.values() if d.folder_uid in doomed]:
                org.drop_dashboard(dash)
            for uid in doomed:
                gone = org.folders.pop(uid)
                org.folder_ids.pop(gone.id, None)
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

    # ------------------------------------------------------------------ lab-only

    def lab(self, req: Request) -> tuple[int, Payload]:
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
            fault = Fault(
                path=as_str(body.get("path")) or "/",
                method=as_str(body.get("method")).upper() or None,
                status=status if isinstance(status, int) and 100 <= status <= 599 else None,
                message=as_str(body.get("message")) or "injected fault",
                remaining=max(as_int(body.get("count"), 1), 1),
                delay_ms=max(as_int(body.get("delayMs")), 0),
                drop=body.get("drop") is True,
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

    def take_fault(self, method: str, path: str) -> Fault | None:
        if not self.faults:
            return None
        with self.fault_lock:
            for i, fault in enumerate(self.faults):
                if path.startswith(fault.path) and fault.method in (None, method):
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
ROUTES: list[Route] = [
    _route("GET", "/api/health", G.health, public=True),
    _route("GET", "/api/search", G.search),
    _route("GET", "/api/dashboards/tags", G.tags),
    _route("POST", "/api/dashboards/db", G.save_dashboard, "dashboards:create", "dashboards:write"),
    _route("GET", "/api/dashboards/uid/{uid}", G.get_dashboard, "dashboards:read"),
    _route("DELETE", "/api/dashboards/uid/{uid}", G.delete_dashboard, "dashboards:delete"),
    _route("GET", "/api/folders", G.list_folders, "folders:read"),
    _route("POST", "/api/folders", G.create_folder, "folders:create"),
    _route("GET", "/api/folders/id/{id}", G.get_folder_by_id, "folders:read"),
    _route(
        "GET", "/api/folders/{uid}/permissions", G.folder_permissions, "folders.permissions:read"
    ),
    _route("GET", "/api/folders/{uid}", G.get_folder, "folders:read"),
    _route("PUT", "/api/folders/{uid}", G.update_folder, "folders:write"),
    _route("DELETE", "/api/folders/{uid}", G.delete_folder, "folders:delete"),
    _route("POST", "/api/folders/{uid}/move", G.move_folder, "folders:write"),
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
    _route("GET", "/api/auth/keys", G.list_api_keys, "apikeys:read"),
    _route("GET", "/api/org", G.get_org, "orgs:read"),
    _route("GET", "/api/orgs", G.list_orgs, "orgs:read", server_admin=True),
    _route("POST", "/api/orgs", G.create_org, "orgs:create", server_admin=True),
    _route("DELETE", "/api/orgs/{id}", G.delete_org, "orgs:delete", server_admin=True),
    _route("GET", "/api/user", G.get_user),
    _route("PUT", "/api/user/password", G.change_password),
    _route("GET", "/api/frontend/settings", G.frontend_settings),
]


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
        payload: Payload
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
                fault = app.take_fault(method, path)
                if fault is not None:
                    if fault.delay_ms:
                        time.sleep(fault.delay_ms / 1000)
                    if fault.drop:
                        self.close_connection = True
                        return
                if fault is not None and fault.status is not None:
                    status, payload = fault.status, {"message": fault.message}
                else:
                    status, payload = app.handle(req)
        except ApiError as exc:
            status, payload = exc.status, exc.body
        except Exception:
            traceback.print_exc()
            status, payload = 500, {"message": "Internal Server Error"}
        self._send(status, payload, head)

    def _send(self, status: int, payload: Payload, head: bool) -> None:
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
