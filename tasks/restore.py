"""Restore indices from an Elasticsearch snapshot, never over an open index by surprise.

`plan_restore` is pure: which snapshot indices are restored under which names, and which
of those names are open indices today (conflicts). `restore` closes conflicting indices
only when told to, restores, waits for the shards to recover and counts documents.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opskit.errors import UsageError
from opskit.tasks.batches import batches, index_states
from opskit.tasks.snapshots import get_snapshot

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient


@dataclass
class RestoreTarget:
    source: str  # the index in the snapshot
    target: str  # the name it is restored as
    existing: str | None  # "open" | "close" when an index of that name exists


@dataclass
class RestorePlan:
    repository: str
    snapshot: str
    targets: list[RestoreTarget]

    @property
    def conflicts(self) -> list[RestoreTarget]:
        return [t for t in self.targets if t.existing == "open"]


@dataclass
class RestoredIndex:
    index: str
    source: str
    docs: int
    health: str


@dataclass
class RestoreResult:
    repository: str
    snapshot: str
    closed_before: list[str]
    indices: list[RestoredIndex]


def java_replacement(replacement: str) -> str:
    """Elasticsearch's `$1` replacement syntax as Python's `\\g<1>`."""
    return re.sub(r"\$(\d+)", r"\\g<\1>", replacement.replace("\\", "\\\\"))


def plan_restore(
    repository: str,
    snapshot: str,
    snapshot_indices: list[str],
    patterns: list[str],
    existing: dict[str, str],
    rename_pattern: str | None = None,
    rename_replacement: str | None = None,
) -> RestorePlan:
    chosen = [
        i
        for i in snapshot_indices
        if not patterns or any(fnmatch.fnmatchcase(i, p) for p in patterns)
    ]
    if not chosen:
        wanted = ", ".join(patterns) or "*"
        raise UsageError(f"snapshot {snapshot!r} has no index matching {wanted}")
    rename = None
    if rename_pattern is not None:
        try:
            rename = re.compile(rename_pattern)
        except re.error as exc:
            raise UsageError(f"bad --rename-pattern {rename_pattern!r}: {exc}") from None
    targets = []
    for source in chosen:
        target = source
        if rename is not None:
            target = rename.sub(java_replacement(rename_replacement or ""), source)
        targets.append(RestoreTarget(source, target, existing.get(target)))
    return RestorePlan(repository, snapshot, targets)


async def prepare_restore(
    es: ElasticsearchClient,
    repository: str,
    snapshot: str,
    patterns: list[str],
    rename_pattern: str | None = None,
    rename_replacement: str | None = None,
) -> RestorePlan:
    info = await get_snapshot(es, repository, snapshot)
    first = plan_restore(
        repository, snapshot, info.indices, patterns, {}, rename_pattern, rename_replacement
    )
    existing = await index_states(es, [t.target for t in first.targets])
    return plan_restore(
        repository, snapshot, info.indices, patterns, existing, rename_pattern, rename_replacement
    )


async def restore(
    es: ElasticsearchClient,
    plan: RestorePlan,
    rename_pattern: str | None = None,
    rename_replacement: str | None = None,
    include_global_state: bool = False,
    close_existing: bool = False,
) -> RestoreResult:
    """Restore the plan's indices; open conflicts are closed first only with
    `close_existing` (else UsageError). Waits for recovery, then counts documents."""
    conflicts = [t.target for t in plan.conflicts]
    if conflicts and not close_existing:
        raise UsageError(
            f"would restore over open index(es) {', '.join(conflicts)}: rename "
            "(--rename-pattern/--rename-replacement) or close them first (--yes)"
        )
    for batch in batches(conflicts):
        await es.call(es.es.indices.close, index=",".join(batch), expand_wildcards="none")
    kwargs: dict[str, str] = {}
    if rename_pattern is not None:
        kwargs = {
            "rename_pattern": rename_pattern,
            "rename_replacement": rename_replacement or "",
        }
    await es.call(
        es.es.snapshot.restore,
        repository=plan.repository,
        snapshot=plan.snapshot,
        indices=",".join(t.source for t in plan.targets),
        include_global_state=include_global_state,
        wait_for_completion=True,
        **kwargs,
    )
    targets = [t.target for t in plan.targets]
    for batch in batches(targets):
        await es.call(
            es.es.cluster.health,
            index=",".join(batch),
            wait_for_status="yellow",
            wait_for_no_initializing_shards=True,
            timeout="120s",
        )
    counted: dict[str, tuple[int, str]] = {}
    for batch in batches(targets):
        rows = await es.call(
            es.es.cat.indices, index=",".join(batch), format="json", h="index,docs.count,health"
        )
        counted.update(
            {str(r["index"]): (int(r["docs.count"] or 0), str(r["health"])) for r in rows}
        )
    indices = [
        RestoredIndex(t.target, t.source, *counted.get(t.target, (0, "missing")))
        for t in plan.targets
    ]
    return RestoreResult(plan.repository, plan.snapshot, conflicts, indices)
