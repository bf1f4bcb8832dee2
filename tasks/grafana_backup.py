"""Back up one Grafana organisation: folders (nested), dashboards, data sources.

Layout of a backup directory (see docs/grafana-backup.md):

    grafana-YYYYMMDDTHHMMSSZ/
      manifest.json          format, Grafana version and org, counts, sha256 of each file,
                             complete (false when an object could not be read) and
                             missing [{kind, uid, name, error}]
      folders.json           [{uid, title, parentUid}], parents before children
      datasources.json       data sources as Grafana returns them: never their secrets
      dashboards/UID.json    {uid, folderUid, dashboard: full model, meta: {...}}

One object that Grafana fails to give (an HTTP 5xx, a bad body, a timeout, after the
client's retries) does not stop the others: the backup is finished and committed with
`complete: false` and that object in `missing`. Failures that concern every object (401/403,
Grafana unreachable, the search or the data source list failing) stop it and leave nothing.

Prints nothing; progress goes through a callback.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from opskit.clients.grafana import GrafanaClient
from opskit.errors import BackendTimeout, BadResponse, NotFound
from opskit.models_grafana import Datasource, Org
from opskit.tasks.backup_store import BackupWriter

FORMAT = "opskit-grafana-backup/1"
CONCURRENCY = 8
SECRETS_NOTE = (
    "Grafana's API never returns data source secrets (passwords, tokens, secureJsonData "
    "values): only the names of the secret fields, in secureJsonFields. Re-enter them after "
    "a restore."
)
_SAFE_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")

Progress = Callable[[str, int, int], None]  # (phase, done, total)
T = TypeVar("T")
# what makes one object missing rather than stopping the backup: Grafana answered for it,
# with an error (after the client's retries) or something unreadable, or not in time
OBJECT_ERRORS = (BadResponse, BackendTimeout)


@dataclass
class GrafanaBackupResult:
    path: Path
    name: str
    grafana_version: str
    org: Org
    counts: dict[str, int]
    size_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=lambda: [SECRETS_NOTE])
    complete: bool = True  # False: some objects could not be read, see `missing`
    missing: list[dict[str, str]] = field(default_factory=list)  # {kind, uid, name, error}


def missing_entry(kind: str, uid: str, name: str, error: BaseException | str) -> dict[str, str]:
    """One object a backup lacks: its kind (dashboard, datasource, folder), uid, name and
    the error Grafana gave for it."""
    return {"kind": kind, "uid": uid, "name": name, "error": str(error)[:300]}


def dashboard_file(uid: str) -> str:
    """The file a dashboard is stored in; uids outside Grafana's charset are hashed."""
    if _SAFE_UID.match(uid):
        return f"dashboards/{uid}.json"
    return f"dashboards/x-{hashlib.sha256(uid.encode()).hexdigest()[:24]}.json"


async def bounded(
    items: Iterable[T], fn: Callable[[T], Awaitable[Any]], limit: int = CONCURRENCY
) -> list[Any]:
    """`fn` over every item, at most `limit` at a time; the first error cancels the rest."""
    sem = asyncio.Semaphore(limit)

    async def one(item: T) -> Any:
        async with sem:
            return await fn(item)

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(one(item)) for item in items]
    except BaseExceptionGroup as group:
        raise _first(group) from None
    return [t.result() for t in tasks]


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def folder_tree(
    client: GrafanaClient, missing: list[dict[str, str]] | None = None
) -> list[dict[str, Any]]:
    """Every folder as {uid, title, parentUid} (the folders.json entries), level by level
    (parents first); parentUid is the folder it was listed under, None at the top. A folder
    whose subfolders cannot be listed goes into `missing` (when given; else it raises)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    level: list[str | None] = [None]
    titles: dict[str | None, str] = {None: "(top level)"}

    async def children_of(parent: str | None) -> list[Any]:
        try:
            return await client.folders(parent)
        except OBJECT_ERRORS as exc:
            if missing is None:
                raise
            missing.append(
                missing_entry(
                    "folder", parent or "", titles.get(parent, ""), f"subfolders not listed: {exc}"
                )
            )
            return []

    while level:
        children = await bounded(level, children_of)
        parents, level = level, []
        for parent, items in zip(parents, children, strict=True):
            for item in items:
                if item.uid in seen:
                    continue
                seen.add(item.uid)
                titles[item.uid] = item.title
                out.append({"uid": item.uid, "title": item.title, "parentUid": parent})
                level.append(item.uid)
    return out


async def backup_grafana(
    client: GrafanaClient,
    directory: Path,
    *,
    progress: Progress | None = None,
    page_size: int = 1000,
    concurrency: int = CONCURRENCY,
    url: str = "",
) -> GrafanaBackupResult:
    """Write one backup under `directory`, or nothing. A backup that lacks objects
    Grafana failed to give says so in its manifest (`complete: false`, `missing`)."""
    t0 = time.perf_counter()
    report = progress or (lambda phase, done, total: None)
    health, org = await asyncio.gather(client.health(), client.org())
    missing: list[dict[str, str]] = []
    report("folders", 0, 0)
    folders = await folder_tree(client, missing)
    hits = await client.search_all("dash-db", page_size)
    uids = list(dict.fromkeys(hit.uid for hit in hits))
    folder_of_hit = {h.uid: h.folder_uid for h in hits}
    title_of_hit = {h.uid: h.title for h in hits}
    listed = await client.datasources()

    async def datasource(ds: Datasource) -> Datasource | None:
        try:
            return await client.datasource(ds.uid)
        except NotFound:  # deleted since the list
            return None
        except OBJECT_ERRORS as exc:
            missing.append(missing_entry("datasource", ds.uid, ds.name, exc))
            return None

    fetched = await bounded([ds for ds in listed if ds.uid], datasource, concurrency)
    datasources: list[Datasource] = [ds for ds in fetched if ds is not None]

    writer = BackupWriter(directory, "grafana")
    try:
        writer.write_json("folders.json", folders)
        writer.write_json("datasources.json", [ds.raw for ds in datasources])
        done = 0
        vanished: list[str] = []
        report("dashboards", 0, len(uids))

        async def fetch(uid: str) -> None:
            nonlocal done
            try:
                got = await client.find_dashboard(uid)
            except OBJECT_ERRORS as exc:
                missing.append(missing_entry("dashboard", uid, title_of_hit.get(uid, ""), exc))
                return
            if got is None:  # deleted since the search: nothing to back up
                vanished.append(uid)
                return
            writer.write_json(
                dashboard_file(uid),
                {
                    "uid": uid,
                    "folderUid": got.folder_uid or folder_of_hit.get(uid, ""),
                    "dashboard": got.model,
                    "meta": {k: got.meta.get(k) for k in ("version", "updated", "folderTitle")},
                },
            )
            done += 1
            report("dashboards", done, len(uids))

        await bounded(uids, fetch, concurrency)
        counts = {
            "folders": len(folders),
            "dashboards": done,  # written: neither vanished nor missing
            "datasources": len(datasources),
        }
        path = writer.commit(
            {
                "format": FORMAT,
                "grafana": {
                    "url": url,
                    "version": health.version,
                    "org": {"id": org.id, "name": org.name},
                },
                "counts": counts,
                "complete": not missing,
                "missing": sorted(missing, key=lambda m: (m["kind"], m["uid"])),
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
        org,
        counts,
        writer.size,
        time.perf_counter() - t0,
        complete=not missing,
        missing=sorted(missing, key=lambda m: (m["kind"], m["uid"])),
    )
