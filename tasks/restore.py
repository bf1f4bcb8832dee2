"""Restore indices from an Elasticsearch snapshot, never over an open index by surprise.

`plan_restore` is pure: which snapshot indices are restored under which names, and which
of those names are open indices today (conflicts). The `RestorePlan` lists closing the
conflicts among its changes, so the command asks before it (or refuses without --yes);
`restore` waits for any running snapshot or restore touching the snapshot or the target
indices, closes the conflicts, restores, waits for the shards to recover and counts
documents.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opskit.errors import NotFound, UsageError
from opskit.plan import Change, Plan
from opskit.tasks.batches import batches, index_states
from opskit.tasks.snapshots import WAIT_RUNNING, WaitFn, wait_until_idle

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient


@dataclass
class RestoreTarget:
    source: str  # the index in the snapshot
    target: str  # the name it is restored as
    existing: str | None  # "open" | "close" when an index of that name exists


@dataclass
class RestorePlan(Plan["ElasticsearchClient", "RestoreResult"]):
    repository: str
    snapshot: str
    targets: list[RestoreTarget]
    rename_pattern: str | None = None
    rename_replacement: str | None = None
    include_global_state: bool = False
    wait_running: float = field(default=WAIT_RUNNING, compare=False)
    on_wait: WaitFn | None = field(default=None, compare=False, repr=False)

    @property
    def conflicts(self) -> list[RestoreTarget]:
        return [t for t in self.targets if t.existing == "open"]

    @property
    def title(self) -> str:
        return f"restore from {self.repository}:{self.snapshot}"

    def question(self) -> str:
        names = ", ".join(t.target for t in self.conflicts)
        if not names:
            return super().question()
        return (
            f"would restore over open index(es) {names}: close them first and restore "
            "(else rename with --rename-pattern/--rename-replacement)?"
        )

    def changes(self) -> list[Change]:
        closing = [Change("close", t.target, "open, restored over") for t in self.conflicts]
        return closing + [
            Change(
                "restore",
                t.source if t.target == t.source else f"{t.source} as {t.target}",
                f"exists, {t.existing}" if t.existing else "",
            )
            for t in self.targets
        ]

    async def apply(self, target: ElasticsearchClient, progress: Any = None) -> RestoreResult:
        """Close the open conflicts, restore, wait for recovery, count documents."""
        return await restore(target, self, close_existing=True)


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
    include_global_state: bool = False,
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
    return RestorePlan(
        repository, snapshot, targets, rename_pattern, rename_replacement, include_global_state
    )


async def prepare_restore(
    es: ElasticsearchClient,
    repository: str,
    snapshot: str,
    patterns: list[str],
    rename_pattern: str | None = None,
    rename_replacement: str | None = None,
    include_global_state: bool = False,
) -> RestorePlan:
    info = await es.snapshot(repository, snapshot)
    args = (rename_pattern, rename_replacement, include_global_state)
    first = plan_restore(repository, snapshot, info.indices, patterns, {}, *args)
    existing = await index_states(es, [t.target for t in first.targets])
    return plan_restore(repository, snapshot, info.indices, patterns, existing, *args)


async def restore(
    es: ElasticsearchClient, plan: RestorePlan, close_existing: bool = False
) -> RestoreResult:
    """Restore the plan's indices; open conflicts are closed first only with
    `close_existing` (else UsageError). Waits for recovery, then counts documents."""
    conflicts = [t.target for t in plan.conflicts]
    if conflicts and not close_existing:
        raise UsageError(
            f"would restore over open index(es) {', '.join(conflicts)}: rename "
            "(--rename-pattern/--rename-replacement) or close them first (--yes)"
        )
    await wait_until_idle(
        es, indices=[t.target for t in plan.targets],
        snapshots=[(plan.repository, plan.snapshot)],
        wait=plan.wait_running, on_wait=plan.on_wait,
    )  # fmt: skip
    for batch in batches(conflicts):
        await es.close_indices(batch)
    await es.restore_snapshot(
        plan.repository,
        plan.snapshot,
        [t.source for t in plan.targets],
        plan.include_global_state,
        plan.rename_pattern,
        plan.rename_replacement,
    )
    targets = [t.target for t in plan.targets]
    for batch in batches(targets):
        await es.wait_for_health(batch, status="yellow", timeout="120s")
    counted: dict[str, tuple[int, str]] = {}
    for batch in batches(targets):
        try:
            found = await es.indices(",".join(batch))
        except NotFound:  # none of the batch came back
            continue
        counted.update({i.name: (i.docs_count, i.health) for i in found})
    indices = [
        RestoredIndex(t.target, t.source, *counted.get(t.target, (0, "missing")))
        for t in plan.targets
    ]
    return RestoreResult(plan.repository, plan.snapshot, conflicts, indices)
