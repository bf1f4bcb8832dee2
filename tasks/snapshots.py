"""Elasticsearch snapshots: repository, take and wait, list, delete, prune.

Planning (`plan_prune`, `protect_last_copies`, `sole_copies`) is pure; the async
functions orchestrate `ElasticsearchClient` calls, return records and print nothing.
Progress goes to an optional callback so a front end can draw it. `PrunePlan` and
`DeletePlan` are the destructive paths' plans.

Two kinds of snapshot (from their metadata, `opskit_metadata`): ordinary backups, thinned
by the tiers, and archives (retention's snapshot-first snapshots), kept for their own
window. Before any snapshot is deleted, last-copy protection keeps every SUCCESS snapshot
whose deletion would leave one of its indices nowhere: not in the cluster, not in any
SUCCESS snapshot that stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opskit.durations import format_duration
from opskit.errors import EXIT_BUSY, BackendError, NotFound, OpskitError, UsageError
from opskit.models_es import (
    KIND_ARCHIVE,
    KIND_BACKUP,
    RepositoryInfo,
    SnapshotInfo,
    SnapshotProgress,
)
from opskit.periods import Period, parse_period
from opskit.plan import Change, Plan
from opskit.tasks.batches import batches

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient

FINISHED = ("SUCCESS", "PARTIAL", "FAILED", "INCOMPATIBLE")
DEFAULT_TEMPLATE = "opskit-%Y.%m.%d-%H%M%S"

ARCHIVE_KEEP = "365d"  # the [archive] keep default (opskit.config.defaults has the same)
WAIT_RUNNING = 300.0  # seconds a destructive path waits for a running snapshot/restore

ProgressFn = Callable[[SnapshotProgress], None]
# what is running (one line each), seconds waited, seconds allowed
WaitFn = Callable[[list[str], float, float], None]


class StillRunning(OpskitError):
    """A snapshot or restore touching what we would change is still running after the
    allowed wait: nothing was changed; try again later (exit 75, EX_TEMPFAIL)."""

    exit_code = EXIT_BUSY
    title = "busy"


class RedIndices(OpskitError):
    """The indices to snapshot include red ones: Elasticsearch would refuse the snapshot.
    Exit 1, as for a snapshot that failed."""

    exit_code = 1
    title = "red indices"

    def __init__(self, indices: list[str]) -> None:
        super().__init__(red_message(indices))
        self.indices = indices


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
    metadata: dict[str, Any] | None = None,
) -> None:
    """Start a snapshot without waiting. Other snapshots running is fine (ES 8 runs them
    concurrently). Without `partial`, red indices among those it would take stop it with
    `RedIndices` (which, and the choices) rather than Elasticsearch's 500."""
    patterns = snapshot_patterns(indices)
    if not partial:
        await refuse_red(es, patterns)
    try:
        await es.create_snapshot(
            repository, name, patterns, include_global_state, partial, metadata
        )
    except BackendError as exc:
        if partial or "primary shard" not in exc.reason:
            raise
        await refuse_red(es, patterns)  # turned red since the check: say which
        raise


def snapshot_patterns(indices: Iterable[str] | None) -> list[str]:
    """The index patterns as given; only exclusions (`-logs-x*`) exclude from all (`*`)."""
    patterns = [p for p in (indices or []) if p]
    if patterns and all(p.startswith("-") for p in patterns):
        patterns = ["*", *patterns]
    return patterns


async def refuse_red(es: ElasticsearchClient, patterns: list[str]) -> None:
    """RedIndices when any index the patterns select is red."""
    try:
        red = await es.red_indices(patterns)
    except NotFound:  # an exactly named index is missing: the snapshot will say so
        return
    if red:
        raise RedIndices(red)


def red_message(red: list[str]) -> str:
    shown = ", ".join(red[:10]) + (f" and {len(red) - 10} more" if len(red) > 10 else "")
    excl = " ".join(f"--indices '-{i}'" for i in red[:3])
    return (
        f"cannot snapshot: {len(red)} red index(es) (unassigned primary shards): {shown}; "
        f"either --partial (snapshot the rest, ends PARTIAL) or leave them out with "
        f"--indices patterns or exclusions, e.g. {excl}"
    )


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
    metadata: dict[str, Any] | None = None,
) -> SnapshotInfo:
    await start_snapshot(es, repository, name, indices, include_global_state, partial, metadata)
    return await wait_snapshot(es, repository, name, on_progress)


# ------------------------------------------------------------------ running work


async def running_work(
    es: ElasticsearchClient,
    indices: Collection[str] = (),
    snapshots: Collection[tuple[str, str]] = (),
) -> list[str]:
    """What is running now that touches these indices or these (repository, snapshot)s:
    snapshots copying one of the indices or being one of the snapshots, restores into one
    of the indices or from one of the snapshots. One line each; empty when nothing."""
    wanted, snaps = set(indices), set(snapshots)
    out: list[str] = []
    if not wanted and not snaps:
        return out
    for r in await es.running_snapshots():
        touching = sorted(set(r.indices) & wanted)
        if touching:
            out.append(f"snapshot {r.repository}:{r.name} is copying {_few(touching)}")
        elif (r.repository, r.name) in snaps:
            out.append(f"snapshot {r.repository}:{r.name} is still running")
    restores: dict[tuple[str, str], list[str]] = {}
    for rr in await es.running_restores():
        if rr.index in wanted or (rr.repository, rr.snapshot) in snaps:
            restores.setdefault((rr.repository, rr.snapshot), []).append(rr.index)
    for (repo, snap), into in sorted(restores.items()):
        out.append(f"restore from {repo}:{snap} into {_few(sorted(into))} is running")
    return out


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


async def wait_until_idle(
    es: ElasticsearchClient,
    indices: Collection[str] = (),
    snapshots: Collection[tuple[str, str]] = (),
    wait: float = WAIT_RUNNING,
    on_wait: WaitFn | None = None,
    poll: float = 1.0,
) -> None:
    """Return once nothing running touches the indices/snapshots (`running_work`); after
    `wait` seconds of waiting, StillRunning naming what runs. `on_wait` hears each poll."""
    started = time.monotonic()
    while True:
        busy = await running_work(es, indices, snapshots)
        if not busy:
            return
        waited = time.monotonic() - started
        if waited >= wait:
            more = f" (and {len(busy) - 1} more)" if len(busy) > 1 else ""
            after = f" after waiting {format_duration(waited)}" if wait > 0 else ""
            raise StillRunning(
                f"{busy[0]}{more}{after}: nothing changed; try again later "
                "or wait longer with --wait-running"
            )
        if on_wait is not None:
            on_wait(busy, waited, wait)
        await asyncio.sleep(max(0.05, min(poll, wait - waited)))


# ------------------------------------------------------------------ list, delete


async def list_snapshots(es: ElasticsearchClient, repository: str) -> list[SnapshotInfo]:
    """The repository's snapshots, oldest first."""
    snaps = await es.snapshots(repository)
    return sorted(snaps, key=lambda s: (s.start or datetime.min.replace(tzinfo=UTC), s.name))


async def cluster_indices(es: ElasticsearchClient) -> set[str]:
    """Every index in the cluster, closed, hidden and system ones included."""
    return set(await es.index_states(["*"]))


async def delete_snapshots(es: ElasticsearchClient, repository: str, names: list[str]) -> None:
    """Delete snapshots by exact name, a few per request (short URLs)."""
    for batch in batches(names):
        await es.delete_snapshots(repository, batch)


class DeletePlan(Plan["ElasticsearchClient", list[str]]):
    """`opskit snapshots delete NAMES`: exactly these snapshots, nothing else. Given the
    repository's `snapshots` and the `cluster`'s index names, a named snapshot holding the
    last copy of an index is kept (`protected`) unless `lose_last_copies`; then the
    changes name the indices lost."""

    def __init__(
        self,
        repository: str,
        names: list[str],
        snapshots: list[SnapshotInfo] | None = None,
        cluster: Collection[str] = (),
        lose_last_copies: bool = False,
        wait_running: float = WAIT_RUNNING,
        on_wait: WaitFn | None = None,
    ) -> None:
        if any(set(n) & set("*?,") for n in names):
            raise UsageError("snapshot names must be exact (no wildcards or commas)")
        self.repository = repository
        self.wait_running = wait_running
        self.on_wait = on_wait
        self.protected: dict[str, list[str]] = {}
        self.lost: dict[str, list[str]] = {}
        named = list(dict.fromkeys(names))
        if snapshots is not None:
            verdict = protect_last_copies(snapshots, named, cluster, lose_last_copies)
            self.protected, self.lost = verdict.protected, verdict.lost
        self.names = [n for n in named if n not in self.protected]

    @property
    def title(self) -> str:
        return f"snapshot delete in {self.repository}"

    def changes(self) -> list[Change]:
        return [Change("delete", f"snapshot {n}", _lost_reason("named", self.lost.get(n)))
                for n in self.names]  # fmt: skip

    def kept(self) -> list[Change]:
        return [Change("keep", f"snapshot {n}", last_copy_reason(idx))
                for n, idx in self.protected.items()]  # fmt: skip

    async def apply(self, target: ElasticsearchClient, progress: Any = None) -> list[str]:
        """Wait for running snapshots/restores of these snapshots, then delete them."""
        await wait_until_idle(
            target, snapshots=[(self.repository, n) for n in self.names],
            wait=self.wait_running, on_wait=self.on_wait,
        )  # fmt: skip
        await delete_snapshots(target, self.repository, self.names)
        return list(self.names)


# ------------------------------------------------------------------ last copies (pure)


def last_copy_reason(indices: list[str]) -> str:
    return f"last copy of {', '.join(indices)}"


def _lost_reason(base: str, lost: list[str] | None) -> str:
    return f"{base}; LAST COPY of {', '.join(lost)}" if lost else base


@dataclass
class LastCopies:
    """`protect_last_copies`' verdict over the candidates: `deletable` (in the order
    given), `protected` snapshot -> the indices only it would still hold, and with
    `lose_last_copies`, `lost` snapshot -> the indices deleting it loses (each index once,
    under the newest deleted snapshot holding it)."""

    deletable: list[str] = field(default_factory=list)
    protected: dict[str, list[str]] = field(default_factory=dict)
    lost: dict[str, list[str]] = field(default_factory=dict)


def _newest_first(snapshots: Iterable[SnapshotInfo]) -> list[SnapshotInfo]:
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(snapshots, key=lambda s: (s.start or epoch, s.name), reverse=True)


def protect_last_copies(
    snapshots: list[SnapshotInfo],
    candidates: Collection[str],
    cluster: Collection[str],
    lose_last_copies: bool = False,
) -> LastCopies:
    """Pure. Which candidate snapshots may go without any index ending up nowhere: not in
    the `cluster` (every index, closed and hidden included) and in no SUCCESS snapshot
    that stays. Candidates are taken newest first, so of several copies the newest is the
    one kept. Only SUCCESS snapshots count as copies (FAILED, PARTIAL, in progress never
    do), so deleting one of those never loses anything."""
    present = set(cluster)
    wanted = set(candidates)
    held: Counter[str] = Counter()
    for s in snapshots:
        if s.state == "SUCCESS" and s.name not in wanted:
            held.update(set(s.indices))
    verdict = LastCopies()
    order = [s for s in _newest_first(snapshots) if s.name in wanted]
    known = {s.name for s in order}
    for s in order:
        lost = sorted(i for i in set(s.indices) if i not in present and not held[i])
        if s.state != "SUCCESS" or not lost:
            verdict.deletable.append(s.name)
        elif lose_last_copies:
            verdict.deletable.append(s.name)
            verdict.lost[s.name] = lost
            present.update(lost)  # named once: under the newest snapshot that held it
        else:
            verdict.protected[s.name] = lost
            held.update(set(s.indices))
    verdict.deletable += [n for n in candidates if n not in known]  # unknown: ES will say
    return verdict


def sole_copies(snapshots: list[SnapshotInfo], cluster: Collection[str]) -> dict[str, list[str]]:
    """Pure. Per SUCCESS snapshot, the indices of which it holds the only copy (in no
    other SUCCESS snapshot and not in the cluster); snapshots holding none are absent."""
    present = set(cluster)
    held: Counter[str] = Counter()
    for s in snapshots:
        if s.state == "SUCCESS":
            held.update(set(s.indices))
    out: dict[str, list[str]] = {}
    for s in snapshots:
        if s.state != "SUCCESS":
            continue
        only = sorted(i for i in set(s.indices) if i not in present and held[i] == 1)
        if only:
            out[s.name] = only
    return out


# ------------------------------------------------------------------ prune (pure)


@dataclass
class PruneDecision:
    name: str
    state: str
    start: datetime | None
    keep: bool
    reasons: list[str]
    kind: str = KIND_BACKUP
    # kept: the indices only it still holds; deleted (--lose-last-copies): those lost
    last_copy: list[str] = field(default_factory=list)


@dataclass
class PrunePlan(Plan["ElasticsearchClient", list[str]]):
    repository: str
    keep: list[PruneDecision]
    delete: list[PruneDecision]
    wait_running: float = field(default=WAIT_RUNNING, compare=False)
    on_wait: WaitFn | None = field(default=None, compare=False, repr=False)

    @property
    def title(self) -> str:
        return f"snapshot prune in {self.repository}"

    def changes(self) -> list[Change]:
        return [
            Change("delete", f"snapshot {d.name}", _lost_reason(d.state, d.last_copy))
            for d in self.delete
        ]

    def kept(self) -> list[Change]:
        return [Change("keep", f"snapshot {d.name}", ", ".join(d.reasons)) for d in self.keep]

    async def apply(self, target: ElasticsearchClient, progress: Any = None) -> list[str]:
        """Wait for running snapshots/restores of the planned snapshots, then delete them;
        their names."""
        names = [d.name for d in self.delete]
        await wait_until_idle(
            target, snapshots=[(self.repository, n) for n in names],
            wait=self.wait_running, on_wait=self.on_wait,
        )  # fmt: skip
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
    *,
    cluster: Collection[str] = (),
    archive_keep: Period | None = None,
    lose_last_copies: bool = False,
) -> PrunePlan:
    """Pure. Ordinary backups are thinned in tiers as restic and borg do it: the
    daily/weekly/monthly tiers keep the newest SUCCESS backup of each of the last N
    days/ISO weeks/months that have one, `keep_last` the N newest finished backups.
    Archives (retention's snapshots) are kept while younger than `archive_keep` (default
    365d), whatever the tiers say; the tiers never keep an archive. Never deleted: the
    newest SUCCESS snapshot of each kind and any snapshot in progress; with `older_than`,
    only snapshots (of either kind) started before that are candidates at all. Then
    last-copy protection (`protect_last_copies`, against the `cluster`'s index names)
    keeps any candidate whose deletion would lose an index, unless `lose_last_copies`."""
    if not (keep_last or keep_daily or keep_weekly or keep_monthly or older_than):
        raise UsageError("say what to keep: --keep-last/-daily/-weekly/-monthly or --older-than")
    window = archive_keep or parse_period(ARCHIVE_KEEP)
    newest_first = _newest_first(snapshots)
    reasons: dict[str, list[str]] = {s.name: [] for s in newest_first}
    for s in newest_first:
        if s.state == "IN_PROGRESS":
            reasons[s.name].append("in progress")
    backups = [s for s in newest_first if s.kind != KIND_ARCHIVE]
    archives = [s for s in newest_first if s.kind == KIND_ARCHIVE]

    success = [s for s in backups if s.state == "SUCCESS"]
    if success:
        reasons[success[0].name].append("newest SUCCESS")
    finished = [s for s in backups if s.state != "IN_PROGRESS"]
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

    archived = [s for s in archives if s.state == "SUCCESS"]
    if archived:
        reasons[archived[0].name].append("newest SUCCESS archive")
    archive_cutoff = window.before(now)
    for s in archives:
        if s.start is None or s.start >= archive_cutoff:
            reasons[s.name].append(f"archive, younger than {window}")

    if older_than is not None:
        cutoff = older_than.before(now)
        for s in newest_first:
            if s.start is None or s.start >= cutoff:
                reasons[s.name].append(f"younger than {older_than}")

    candidates = [s.name for s in newest_first if not reasons[s.name]]
    verdict = protect_last_copies(snapshots, candidates, cluster, lose_last_copies)
    for name, indices in verdict.protected.items():
        reasons[name].append(last_copy_reason(indices))
    # what each kept snapshot is then the only copy of, whichever rule kept it
    staying = [s for s in newest_first if reasons[s.name]]
    only = sole_copies(staying, cluster)
    for name, indices in only.items():
        if name not in verdict.protected:
            reasons[name].append(last_copy_reason(indices))
    decisions = [
        PruneDecision(
            s.name, s.state, s.start, bool(reasons[s.name]), reasons[s.name], s.kind,
            only.get(s.name) or verdict.lost.get(s.name) or [],
        )
        for s in newest_first
    ]  # fmt: skip
    return PrunePlan(
        repository,
        keep=[d for d in decisions if d.keep],
        delete=[d for d in decisions if not d.keep],
    )
