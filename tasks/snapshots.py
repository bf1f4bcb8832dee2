"""Elasticsearch snapshots: repository, take and wait, list, delete, prune.

Planning (`plan_prune`) is pure; the async functions talk to Elasticsearch through
`ElasticsearchClient.call`, return records and print nothing. Progress goes to an
optional callback so a front end can draw it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opskit.errors import BackendError, NotFound, OpskitError, UsageError
from opskit.periods import Period

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient

FINISHED = ("SUCCESS", "PARTIAL", "FAILED", "INCOMPATIBLE")
DEFAULT_TEMPLATE = "opskit-%Y.%m.%d-%H%M%S"


@dataclass
class SnapshotInfo:
    name: str
    repository: str
    state: str  # IN_PROGRESS | SUCCESS | PARTIAL | FAILED | INCOMPATIBLE
    start: datetime | None
    end: datetime | None
    indices: list[str]
    shards_total: int
    shards_failed: int
    failures: list[str] = field(default_factory=list)
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "SUCCESS" and self.shards_failed == 0


@dataclass
class SnapshotProgress:
    name: str
    state: str
    shards_done: int
    shards_total: int
    bytes_done: int
    bytes_total: int


@dataclass
class RepositoryInfo:
    name: str
    type: str
    location: str | None
    registered_now: bool
    verified_nodes: list[str]


ProgressFn = Callable[[SnapshotProgress], None]


def _millis(value: object) -> datetime | None:
    return datetime.fromtimestamp(int(str(value)) / 1000, UTC) if value else None


def _snapshot(repository: str, s: dict[str, Any]) -> SnapshotInfo:
    shards = s.get("shards") or {}
    return SnapshotInfo(
        name=str(s["snapshot"]),
        repository=repository,
        state=str(s.get("state", "")),
        start=_millis(s.get("start_time_in_millis")),
        end=_millis(s.get("end_time_in_millis")),
        indices=sorted(str(i) for i in s.get("indices", [])),
        shards_total=int(shards.get("total", 0)),
        shards_failed=int(shards.get("failed", 0)),
        failures=[
            f"{f.get('index')}[{f.get('shard_id')}]: {f.get('reason')}"
            for f in s.get("failures", [])
        ],
        reason=s.get("reason"),
    )


def snapshot_name(template: str, now: datetime | None = None) -> str:
    """The template expanded with strftime (UTC); Elasticsearch wants lower case."""
    name = (now or datetime.now(UTC)).strftime(template).lower()
    bad = set(name) & set(' "*\\<|,>/?#')
    if not name or bad or name.startswith(("_", "-")):
        raise UsageError(f"bad snapshot name {name!r} (from template {template!r})")
    return name


# ------------------------------------------------------------------ repository


async def path_repo(es: ElasticsearchClient) -> list[str]:
    """Every node's `path.repo` setting (where fs repositories may live)."""
    body = await es.call(es.es.nodes.info, metric="settings", filter_path="nodes.*.settings.path")
    out: list[str] = []
    for node in (body.get("nodes") or {}).values():
        value = node.get("settings", {}).get("path", {}).get("repo", [])
        out.extend([value] if isinstance(value, str) else value)
    return sorted(set(out))


async def ensure_repository(
    es: ElasticsearchClient, name: str, location: str | None
) -> RepositoryInfo:
    """Register the fs repository if missing, then verify it on every node."""
    registered_now = False
    try:
        body = await es.call(es.es.snapshot.get_repository, name=name)
    except NotFound:
        where = location or name
        try:
            await es.call(
                es.es.snapshot.create_repository,
                name=name,
                repository={"type": "fs", "settings": {"location": where}},
            )
        except BackendError as exc:
            if "path.repo" in exc.reason + str(getattr(exc.__cause__, "body", "")):
                roots = ", ".join(await path_repo(es)) or "(not set)"
                raise OpskitError(
                    f"repository {name!r}: location {where!r} is outside the node's path.repo "
                    f"(path.repo = {roots}); add it to `path.repo` in elasticsearch.yml "
                    "or choose a location under it (elasticsearch.snapshot_location)"
                ) from None
            raise
        registered_now = True
        body = await es.call(es.es.snapshot.get_repository, name=name)
    repo = body.get(name, {})
    verified = await es.call(es.es.snapshot.verify_repository, name=name)
    nodes = [str(n.get("name", k)) for k, n in (verified.get("nodes") or {}).items()]
    return RepositoryInfo(
        name=name,
        type=str(repo.get("type", "")),
        location=(repo.get("settings") or {}).get("location"),
        registered_now=registered_now,
        verified_nodes=nodes,
    )


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
    kwargs: dict[str, Any] = {}
    names = list(indices or [])
    if names:
        kwargs["indices"] = ",".join(names)
    await es.call(
        es.es.snapshot.create,
        repository=repository,
        snapshot=name,
        wait_for_completion=False,
        include_global_state=include_global_state,
        partial=partial,
        **kwargs,
    )


async def get_snapshot(es: ElasticsearchClient, repository: str, name: str) -> SnapshotInfo:
    body = await es.call(es.es.snapshot.get, repository=repository, snapshot=name)
    return es.parse("snapshot", lambda: _snapshot(repository, body["snapshots"][0]))


async def progress(es: ElasticsearchClient, repository: str, name: str) -> SnapshotProgress:
    body = await es.call(es.es.snapshot.status, repository=repository, snapshot=name)

    def parse() -> SnapshotProgress:
        s = body["snapshots"][0]
        shards, stats = s.get("shards_stats", {}), s.get("stats", {})
        total = int(stats.get("incremental", {}).get("size_in_bytes", 0))
        done = int(stats.get("processed", {}).get("size_in_bytes", 0))
        return SnapshotProgress(
            name=name,
            state=str(s.get("state", "")),
            shards_done=int(shards.get("done", 0)) + int(shards.get("failed", 0)),
            shards_total=int(shards.get("total", 0)),
            bytes_done=total if s.get("state") == "SUCCESS" else done,
            bytes_total=total,
        )

    return es.parse("snapshot status", parse)


async def wait_snapshot(
    es: ElasticsearchClient,
    repository: str,
    name: str,
    on_progress: ProgressFn | None = None,
    poll: float = 0.5,
) -> SnapshotInfo:
    """Poll until the snapshot has finished; its final state, read back from the repository."""
    while True:
        info = await get_snapshot(es, repository, name)
        if on_progress is not None:
            with contextlib.suppress(NotFound):
                on_progress(await progress(es, repository, name))
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
    body = await es.call(es.es.snapshot.get, repository=repository, snapshot="_all")
    snaps = es.parse("snapshots", lambda: [_snapshot(repository, s) for s in body["snapshots"]])
    return sorted(snaps, key=lambda s: (s.start or datetime.min.replace(tzinfo=UTC), s.name))


async def delete_snapshots(es: ElasticsearchClient, repository: str, names: list[str]) -> None:
    """Delete snapshots by exact name, a few per request (short URLs)."""
    from opskit.tasks.batches import batches

    for batch in batches(names):
        await es.call(es.es.snapshot.delete, repository=repository, snapshot=",".join(batch))


# ------------------------------------------------------------------ prune (pure)


@dataclass
class PruneDecision:
    name: str
    state: str
    start: datetime | None
    keep: bool
    reasons: list[str]


@dataclass
class PrunePlan:
    repository: str
    keep: list[PruneDecision]
    delete: list[PruneDecision]


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
