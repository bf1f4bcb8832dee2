"""Back up one Grafana organisation: folders (nested), dashboards, data sources.

Layout of a backup directory (see docs/grafana-backup.md):

    grafana-YYYYMMDDTHHMMSSZ/
      manifest.json          format, Grafana version and org, counts, sha256 of each file
      folders.json           [{uid, title, parentUid}], parents before children
      datasources.json       data sources as Grafana returns them: never their secrets
      dashboards/UID.json    {uid, folderUid, dashboard: full model, meta: {...}}

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


async def folder_tree(client: GrafanaClient) -> list[dict[str, Any]]:
    """Every folder as {uid, title, parentUid} (the folders.json entries), level by level
    (parents first); parentUid is the folder it was listed under, None at the top."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    level: list[str | None] = [None]
    while level:
        children = await bounded(level, client.folders)
        parents, level = level, []
        for parent, items in zip(parents, children, strict=True):
            for item in items:
                if item.uid in seen:
                    continue
                seen.add(item.uid)
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
    """Write one complete backup under `directory`, or nothing that looks complete."""
    t0 = time.perf_counter()
    report = progress or (lambda phase, done, total: None)
    health, org = await asyncio.gather(client.health(), client.org())
    report("folders", 0, 0)
    folders = await folder_tree(client)
    hits = await client.search_all("dash-db", page_size)
    uids = list(dict.fromkeys(hit.uid for hit in hits))
    folder_of_hit = {h.uid: h.folder_uid for h in hits}
    listed = await client.datasources()
    datasources: list[Datasource] = await bounded(
        [ds.uid for ds in listed if ds.uid], client.datasource, concurrency
    )

    writer = BackupWriter(directory, "grafana")
    try:
        writer.write_json("folders.json", folders)
        writer.write_json("datasources.json", [ds.raw for ds in datasources])
        done = 0
        vanished: list[str] = []
        report("dashboards", 0, len(uids))

        async def fetch(uid: str) -> None:
            nonlocal done
            got = await client.find_dashboard(uid)
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
            "dashboards": len(uids) - len(vanished),
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
    )
