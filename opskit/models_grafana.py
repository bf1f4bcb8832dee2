"""Typed records the Grafana client returns (opskit.clients.grafana).

A dashboard's model and a data source as Grafana returns it stay plain dicts (`model`,
`raw`): they are the payloads a backup stores byte for byte and a restore sends back;
the records name the few fields the tasks decide on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class GrafanaHealth:
    version: str
    database: str = ""


@dataclass(frozen=True, slots=True)
class Org:
    """An organisation (`/api/org`: the one the credentials sign in to)."""

    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Folder:
    uid: str
    title: str
    parent_uid: str | None = None  # nested folders; None at the top level


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One `/api/search` hit: a dashboard (type dash-db) or a folder (dash-folder)."""

    uid: str
    title: str
    type: str
    folder_uid: str = ""  # "" in the root (General)


@dataclass(slots=True)
class Dashboard:
    """`/api/dashboards/uid/UID`: the model as stored, and what `meta` says of it."""

    uid: str
    title: str
    folder_uid: str  # "" in the root
    version: int
    model: dict[str, Any] = field(repr=False)  # the payload: backed up and restored as is
    meta: dict[str, Any] = field(repr=False, default_factory=dict)  # as Grafana sent it


@dataclass(frozen=True, slots=True)
class SavedDashboard:
    """What `POST /api/dashboards/db` answers."""

    uid: str
    version: int
    url: str = ""
    folder_uid: str = ""


@dataclass(slots=True)
class Datasource:
    uid: str
    name: str
    type: str
    is_default: bool = False
    raw: dict[str, Any] = field(repr=False, default_factory=dict)  # as Grafana returns it
