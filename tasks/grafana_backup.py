"""Back up Grafana organisations: everything a restore can bring back (format 2).

Layout of a backup directory (see docs/grafana-backup.md):

    grafana-YYYYMMDDTHHMMSSZ/
      manifest.json                 format opskit-grafana-backup/2, Grafana url/version,
                                    orgs [{id, name, counts}], counts (summed), sha256 of
                                    each file, complete/missing, skipped [{org, kind, reason}]
      orgs/<id>/org.json            {id, name, kinds: what was backed up, preferences}
      orgs/<id>/folders.json        [{uid, title, parentUid, permissions}], parents first
      orgs/<id>/dashboards/UID.json {uid, folderUid, dashboard, meta, permissions}
      orgs/<id>/library_panels/UID.json  {uid, name, folderUid, kind, model, meta}
      orgs/<id>/datasources.json    as Grafana returns them: secureJsonFields names the
                                    secret fields that existed, never their values
      orgs/<id>/alerting/{alert_rules,contact_points,policies,mute_timings,templates}.json
      orgs/<id>/teams.json          [{name, email, members: [{login, email}]}]
      orgs/<id>/annotations.json    with --with-annotations

One object that Grafana fails to give (an HTTP 5xx, a bad body, a timeout, after the
client's retries) does not stop the others: the backup is committed with `complete: false`
and that object in `missing`. A kind the credentials may not read (403) is `skipped`, with
the reason. Failures about everything (401, Grafana unreachable, the dashboard search or
the data source list failing) stop it and leave nothing.

Prints nothing; progress goes through a callback.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opskit.clients.grafana import GrafanaClient
from opskit.models_grafana import Org
from opskit.tasks.backup_store import BackupWriter
from opskit.tasks.grafana_state import (
    CONCURRENCY,
    FORMAT_2,
    KINDS,
    OBJECT_ERRORS,
    WRITTEN,
    OrgDump,
    Problem,
    Progress,
    bounded,
    fetch_org,
    folder_tree,
    list_orgs,
    missing_entry,
)

__all__ = [
    "CONCURRENCY",
    "FORMAT",
    "OBJECT_ERRORS",
    "GrafanaBackupResult",
    "Progress",
    "backup_grafana",
    "bounded",
    "dashboard_file",
    "folder_tree",
    "missing_entry",
]

FORMAT = FORMAT_2
SECRETS_NOTE = (
    "Grafana's API never returns data source secrets (passwords, tokens, secureJsonData "
    "values) nor contact points' secure settings: only which secret fields exist "
    "(secureJsonFields, [REDACTED]). A restore takes them from --secrets FILE or the "
    "environment, never from the backup."
)
_SAFE_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
# the manifest's `missing` kinds (format 1 used the singular)
SINGULAR = {
    "folders": "folder", "dashboards": "dashboard", "library_panels": "library_panel",
    "datasources": "datasource", "alert_rules": "alert_rule",
    "contact_points": "contact_point", "policies": "policy", "mute_timings": "mute_timing",
    "templates": "template", "teams": "team", "annotations": "annotation",
    "preferences": "preferences",
}  # fmt: skip


@dataclass
class GrafanaBackupResult:
    path: Path
    name: str
    grafana_version: str
    org: Org  # the first organisation backed up (the credentials' own without --all-orgs)
    counts: dict[str, int]
    size_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=lambda: [SECRETS_NOTE])
    complete: bool = True  # False: some objects could not be read, see `missing`
    missing: list[dict[str, Any]] = field(default_factory=list)  # {org, kind, uid, name, error}
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {org, kind, reason}
    orgs: list[dict[str, Any]] = field(default_factory=list)  # {id, name, counts}


def object_file(kind: str, uid: str) -> str:
    """The file one dashboard or library panel is stored in; uids outside Grafana's
    charset are hashed."""
    if _SAFE_UID.match(uid):
        return f"{kind}/{uid}.json"
    return f"{kind}/x-{hashlib.sha256(uid.encode()).hexdigest()[:24]}.json"


def dashboard_file(uid: str) -> str:
    return object_file("dashboards", uid)


def _files_of(dump: OrgDump) -> dict[str, Any]:
    """relpath (inside orgs/<id>/) -> JSON content."""
    out: dict[str, Any] = {}
    k = dump.kinds
    if "folders" in k:
        out["folders.json"] = list(k["folders"].values())
    for kind in ("dashboards", "library_panels"):
        for uid, item in k.get(kind, {}).items():
            if not item.get(WRITTEN):  # dashboards are written as they arrive
                out[object_file(kind, uid)] = item
    if "datasources" in k:
        out["datasources.json"] = list(k["datasources"].values())
    for kind in ("alert_rules", "contact_points", "mute_timings", "templates"):
        if kind in k:
            out[f"alerting/{kind}.json"] = list(k[kind].values())
    if "policies" in k:
        out["alerting/policies.json"] = k["policies"]["tree"]
    if "teams" in k:
        out["teams.json"] = list(k["teams"].values())
    if "annotations" in k:
        out["annotations.json"] = list(k["annotations"].values())
    org: dict[str, Any] = {"id": dump.id, "name": dump.name, "kinds": list(k)}
    if "preferences" in k:
        org["preferences"] = k["preferences"]["org"]
    if dump.users is not None:
        org["users"] = dump.users
    out["org.json"] = org
    return out


def _missing(problems: list[Problem]) -> list[dict[str, Any]]:
    out = [
        {"org": p["org"], **missing_entry(SINGULAR[p["kind"]], p["key"], p["name"], p["reason"])}
        for p in problems
        if p["status"] == "missing"
    ]
    return sorted(out, key=lambda m: (m["org"], m["kind"], m["uid"]))


def _skipped(problems: list[Problem]) -> list[dict[str, Any]]:
    return [
        {
            "org": p["org"],
            "kind": p["kind"],
            "reason": p["reason"],
            "unavailable": bool(p.get("unavailable")),
        }
        for p in problems
        if p["status"] == "skipped"
    ]


async def backup_grafana(
    client: GrafanaClient,
    directory: Path,
    *,
    progress: Progress | None = None,
    page_size: int = 1000,
    concurrency: int = CONCURRENCY,
    url: str = "",
    all_orgs: bool = False,
    with_annotations: bool = False,
) -> GrafanaBackupResult:
    """Write one backup under `directory`, or nothing: the credentials' organisation, or
    every organisation (`all_orgs`: a server admin's login). A backup that lacks objects
    Grafana failed to give says so in its manifest (`complete: false`, `missing`), one
    that could not read a kind in `skipped`."""
    t0 = time.perf_counter()
    report = progress or (lambda phase, done, total: None)
    health = await client.health()
    if all_orgs:
        orgs = [(o.id, o.name) for o in await client.orgs()]
    else:
        orgs = await list_orgs(client, None)
    dumps: list[OrgDump] = []
    problems: list[Problem] = []
    writer = BackupWriter(directory, "grafana")
    try:
        for org_id, name in orgs:
            report(f"org {name}", 0, 0)
            scoped = client.for_org(org_id) if all_orgs else client

            def sink(kind: str, uid: str, item: dict[str, Any], org_id: int = org_id) -> None:
                writer.write_json(f"orgs/{org_id}/{object_file(kind, uid)}", item)

            dump, found = await fetch_org(
                scoped, org_id, name,
                with_annotations=with_annotations, page_size=page_size,
                concurrency=concurrency, progress=progress, sink=sink,
            )  # fmt: skip
            dumps.append(dump)
            problems += found
        entries: list[dict[str, Any]] = []
        totals: dict[str, int] = {}
        for dump in dumps:
            for rel, data in _files_of(dump).items():
                writer.write_json(f"orgs/{dump.id}/{rel}", data)
            counts = {kind: len(objs) for kind, objs in dump.kinds.items()}
            for kind, n in counts.items():
                totals[kind] = totals.get(kind, 0) + n
            entries.append({"id": dump.id, "name": dump.name, "counts": counts})
        totals = {k: totals[k] for k in KINDS if k in totals}
        missing, skipped = _missing(problems), _skipped(problems)
        first: dict[str, Any] = entries[0] if entries else {"id": 0, "name": ""}
        path = writer.commit(
            {
                "format": FORMAT,
                "grafana": {
                    "url": url,
                    "version": health.version,
                    "org": {"id": first["id"], "name": first["name"]},
                },
                "orgs": entries,
                "counts": totals,
                "complete": not missing,
                "missing": missing,
                "skipped": skipped,
                "with_annotations": with_annotations,
                "secrets_included": False,
                "notes": [SECRETS_NOTE],
            }
        )
    except BaseException:
        writer.discard()
        raise
    return GrafanaBackupResult(
        path,
        writer.name,
        health.version,
        Org(int(first["id"]), str(first["name"])),
        totals,
        writer.size,
        time.perf_counter() - t0,
        complete=not missing,
        missing=missing,
        skipped=skipped,
        orgs=entries,
    )
