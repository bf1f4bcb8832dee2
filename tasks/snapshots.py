"""Elasticsearch snapshots: repository, take and wait, list, delete, prune.

Planning (`plan_prune`) is pure; the async functions orchestrate `ElasticsearchClient`
calls, return records and print nothing. Progress goes to an optional callback so a
front end can draw it. `PrunePlan` and `DeletePlan` are the destructive paths' plans.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opskit.errors import NotFound, UsageError
from opskit.models_es import RepositoryInfo, SnapshotInfo, SnapshotProgress
from opskit.periods import Period
from opskit.plan import Change, Plan
from opskit.tasks.batches import batches

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient

FINISHED = ("SUCCESS", "PARTIAL", "FAILED", "INCOMPATIBLE")
DEFAULT_TEMPLATE = "opskit-%Y.%m.%d-%H%M%S"

ProgressFn = Callable[[SnapshotProgress], None]


def snapshot_name(template: str, now: datetime | None = None) -> str:
    """The template expanded with strftime (UTC); Elasticsearch wants lower case."""
    name = (now or datetime.now(UTC)).strftime(template).lower()
    bad = set(name) & set(' "*\\<|,>/?#')
    if not name or bad or name.startswith(("_", "-")):
        raise UsageError(f"bad snapshot name {name!r} (from template {template!r})")
    return name


# ------------------------------------------------------------------ repository


async def ensure_repository(
    es: ElasticsearchClient, name: str, location: str | None
) -> RepositoryInfo:
    """Register the fs repository if missing, then verify it on every node."""
    registered_now = False
    try:
        repo = await es.repository(name)
    except NotFound:
        await es.create_fs_repository(name, location or name)
        registered_now = True
        repo = await es.repository(name)
    nodes = await es.verify_repository(name)
    return RepositoryInfo(repo.name, repo.type, repo.location, registered_now, nodes)


# ------------------------------------------------------------------ take and wait


async def start_snapshot(
    es: ElasticsearchClient,
    repository: str,
    name: str,
    indices: Iterable[str] | None = None,
    include_global_state: bool = False,
    partial: bool = False,
) -> None:
    """Start a snapshot without waiting. Other snapshots running is fine (ES 8 runs them
    concurrently)."""
    await es.create_snapshot(repository, name, list(indices or []), include_global_state, partial)


async def wait_snapshot(
    es: ElasticsearchClient,
    repository: str,
    name: str,
    on_progress: ProgressFn | None = None,
    poll: float = 0.5,
) -> SnapshotInfo:
    """Poll until the snapshot has finished; its final state, read back from the repository."""
    while True:
        info = await es.snapshot(repository, name)
        if on_progress is not None:
            with contextlib.suppress(NotFound):
                on_progress(await es.snapshot_progress(repository, name))
        if info.state in FINISHED:
            return info
        await asyncio.sleep(poll)


async def take_snapshot(
    es: ElasticsearchClient,
    repository: str,
    name: str,
    indices: Iterable[str] | None = None,
    include_global_state: bool = False,
    partial: bool = False,
    on_progress: ProgressFn | None = None,
) -> SnapshotInfo:
    await start_snapshot(es, repository, name, indices, include_global_state, partial)
    return await wait_snapshot(es, repository, name, on_progress)


# ------------------------------------------------------------------ list, delete


async def list_snapshots(es: ElasticsearchClient, repository: str) -> list[SnapshotInfo]:
    """The repository's snapshots, oldest first."""
    snaps = await es.snapshots(repository)
    return sorted(snaps, key=lambda s: (s.start or datetime.min.replace(tzinfo=UTC), s.name))


async def delete_snapshots(es: ElasticsearchClient, repository: str, names: list[str]) -> None:
    """Delete snapshots by exact name, a few per request (short URLs)."""
    for batch in batches(names):
        await es.delete_snapshots(repository, batch)


class DeletePlan(Plan["ElasticsearchClient", list[str]]):
    """`opskit snapshots delete NAMES`: exactly these snapshots, nothing else."""

    def __init__(self, repository: str, names: list[str]) -> None:
        if any(set(n) & set("*?,") for n in names):
            raise UsageError("snapshot names must be exact (no wildcards or commas)")
        self.repository = repository
        self.names = list(names)

    @property
    def title(self) -> str:
        return f"snapshot delete in {self.repository}"

    def changes(self) -> list[Change]:
        return [Change("delete", f"snapshot {n}", "named") for n in self.names]

    async def apply(self, target: ElasticsearchClient, progress: Any = None) -> list[str]:
        await delete_snapshots(target, self.repository, self.names)
        return list(self.names)


# ------------------------------------------------------------------ prune (pure)


@dataclass
class PruneDecision:
    name: str
    state: str
    start: datetime | None
    keep: bool
    reasons: list[str]


@dataclass
class PrunePlan(Plan["ElasticsearchClient", list[str]]):
    repository: str
    keep: list[PruneDecision]
    delete: list[PruneDecision]

    @property
    def title(self) -> str:
        return f"snapshot prune in {self.repository}"

    def changes(self) -> list[Change]:
        return [Change("delete", f"snapshot {d.name}", d.state) for d in self.delete]

    def kept(self) -> list[Change]:
        return [Change("keep", f"snapshot {d.name}", ", ".join(d.reasons)) for d in self.keep]

    async def apply(self, target: ElasticsearchClient, progress: Any = None) -> list[str]:
        """Delete the planned snapshots; their names."""
        names = [d.name for d in self.delete]
        await delete_snapshots(target, self.repository, names)
        return names


def plan_prune(
    repository: str,
    snapshots: list[SnapshotInfo],
    now: datetime,
    keep_last: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    keep_monthly: int = 0,
    older_than: Period | None = None,
) -> PrunePlan:
    """Tiered thinning as restic and borg do it. Daily/weekly/monthly tiers keep the newest
    SUCCESS snapshot of each of the last N days/ISO weeks/months that have one. Never
    deleted: the newest SUCCESS snapshot and any snapshot still in progress; with
    `older_than`, only snapshots started before that are candidates at all."""
    if not (keep_last or keep_daily or keep_weekly or keep_monthly or older_than):
        raise UsageError("say what to keep: --keep-last/-daily/-weekly/-monthly or --older-than")
    epoch = datetime.min.replace(tzinfo=UTC)
    newest_first = sorted(snapshots, key=lambda s: (s.start or epoch, s.name), reverse=True)
    reasons: dict[str, list[str]] = {s.name: [] for s in newest_first}
    for s in newest_first:
        if s.state == "IN_PROGRESS":
            reasons[s.name].append("in progress")
    success = [s for s in newest_first if s.state == "SUCCESS"]
    if success:
        reasons[success[0].name].append("newest SUCCESS")
    finished = [s for s in newest_first if s.state != "IN_PROGRESS"]
    for s in finished[:keep_last]:
        reasons[s.name].append("last")
    tiers: list[tuple[str, int, Callable[[datetime], object]]] = [
        ("daily", keep_daily, lambda d: d.date()),
        ("weekly", keep_weekly, lambda d: d.isocalendar()[:2]),
        ("monthly", keep_monthly, lambda d: (d.year, d.month)),
    ]
    for label, count, bucket in tiers:
        seen: set[object] = set()
        for s in success:
            if len(seen) >= count or s.start is None:
                break
            key = bucket(s.start)
            if key not in seen:
                seen.add(key)
                reasons[s.name].append(label)
    if older_than is not None:
        cutoff = older_than.before(now)
        for s in newest_first:
            if s.start is None or s.start >= cutoff:
                reasons[s.name].append(f"younger than {older_than}")
    decisions = [
        PruneDecision(s.name, s.state, s.start, bool(reasons[s.name]), reasons[s.name])
        for s in newest_first
    ]
    return PrunePlan(
        repository,
        keep=[d for d in decisions if d.keep],
        delete=[d for d in decisions if not d.keep],
    )
