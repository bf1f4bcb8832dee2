"""Index retention: which indices a policy acts on (pure), and doing it safely.

Age comes from the date in the index name (a timestring; the index counts as old once
the whole period it names, e.g. the whole day, lies before the cutoff) or from the
creation date. Data streams, hidden and system indices are never selected by a pattern,
only by their exact name; names without a parseable date are left alone and reported.
With `snapshot_first`, an index is acted on only when a snapshot taken in this run that
contains it was verified SUCCESS; that snapshot is marked an archive (its metadata), so
`snapshots prune` keeps it for the archive window, not by the backup tiers. Before
deleting or closing, a running snapshot or restore of those indices is waited for.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opskit.config import RetentionPolicy
from opskit.errors import BackendError, NotFound
from opskit.models_es import KIND_ARCHIVE, IndexFacts, SnapshotInfo, opskit_metadata
from opskit.periods import parse_period
from opskit.plan import Change, Plan
from opskit.tasks.batches import batches, index_states
from opskit.tasks.snapshots import (
    WAIT_RUNNING,
    ProgressFn,
    RedIndices,
    WaitFn,
    ensure_repository,
    snapshot_name,
    take_snapshot,
    wait_until_idle,
)
from opskit.timestrings import compile_timestring

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient

WILDCARDS = set("*?[")


@dataclass
class Decision:
    index: str
    reason: str
    age_from: datetime | None = None  # the instant the index's age is counted from


@dataclass
class PolicyPlan:
    policy: str
    pattern: str
    action: str
    keep: str
    timestring: str | None
    snapshot_first: bool
    cutoff: datetime
    act: list[Decision] = field(default_factory=list)
    kept: list[Decision] = field(default_factory=list)
    skipped: list[Decision] = field(default_factory=list)


@dataclass
class RetentionPlan(Plan["ElasticsearchClient", "ApplyResult"]):
    """The policies' plans at `now`; applying snapshots into `repository` (registered at
    `location` when missing) first where a policy says so."""

    now: datetime
    policies: list[PolicyPlan]
    repository: str = ""
    location: str | None = None
    # seconds to wait for a running snapshot/restore of the indices before acting
    wait_running: float = field(default=WAIT_RUNNING, compare=False)
    on_wait: WaitFn | None = field(default=None, compare=False, repr=False)

    @property
    def title(self) -> str:
        return "retention"

    def changes(self) -> list[Change]:
        out = []
        for p in self.policies:
            if not p.act:
                continue
            if p.snapshot_first:
                out.append(
                    Change(
                        "snapshot",
                        f"{len(p.act)} index(es) into repository {self.repository}",
                        f"{p.policy}: an archive; only indices in it, verified SUCCESS, go on",
                    )
                )
            out.extend(Change(p.action, d.index, f"{p.policy}: {d.reason}") for d in p.act)
        return out

    def kept(self) -> list[Change]:
        return [
            Change("keep", d.index, f"{p.policy}: {d.reason}")
            for p in self.policies
            for d in (*p.kept, *p.skipped)
        ]

    async def apply(self, target: ElasticsearchClient, progress: Any = None) -> ApplyResult:
        """`apply_plan` into the repository captured at plan time (made sure of first
        when a policy snapshots); `progress` is a snapshot ProgressFn."""
        if any(p.snapshot_first and p.act for p in self.policies):
            await ensure_repository(target, self.repository, self.location)
        return await apply_plan(target, self, self.repository, progress)


def matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


def _protected(facts: IndexFacts, pattern: str) -> str | None:
    """Why a pattern may not select this index (None: it may)."""
    if not (set(pattern) & WILDCARDS) and pattern == facts.name:
        return None  # named exactly: the operator means it
    if facts.data_stream:
        return f"backing index of data stream {facts.data_stream} (name it to act on it)"
    if facts.system:
        return "system index (name it to act on it)"
    if facts.hidden or facts.name.startswith("."):
        return "hidden index (name it to act on it)"
    return None


def plan_policy(
    policy: RetentionPolicy,
    indices: list[IndexFacts],
    now: datetime,
    taken: Collection[str] = (),
) -> PolicyPlan:
    """Pure: the indices `policy` acts on at `now`, with reasons, and those it leaves."""
    period = parse_period(policy.keep)
    cutoff = period.before(now)
    ts = compile_timestring(policy.timestring) if policy.timestring else None
    plan = PolicyPlan(
        policy.name,
        policy.pattern,
        policy.action,
        policy.keep,
        policy.timestring,
        policy.snapshot_first,
        cutoff,
    )
    for facts in sorted(indices, key=lambda f: f.name):
        if not matches(facts.name, policy.pattern):
            continue
        why_not = _protected(facts, policy.pattern)
        if why_not is None and facts.name in taken:
            why_not = "already acted on by an earlier policy"
        if why_not:
            plan.skipped.append(Decision(facts.name, why_not))
            continue
        if ts is not None:
            period_of = ts.period(facts.name)
            if period_of is None:
                plan.skipped.append(Decision(facts.name, f"no date matching {ts.text} in the name"))
                continue
            age_from, what = period_of[1], f"named period ended {period_of[1]:%Y-%m-%d %H:%M}"
        else:
            if facts.created is None:
                plan.skipped.append(Decision(facts.name, "no creation date"))
                continue
            age_from, what = facts.created, f"created {facts.created:%Y-%m-%d %H:%M}"
        if age_from > cutoff:
            plan.kept.append(Decision(facts.name, f"{what}, within {policy.keep}", age_from))
            continue
        skip = _action_skip(policy, facts)
        if skip:
            plan.skipped.append(Decision(facts.name, skip, age_from))
            continue
        plan.act.append(Decision(facts.name, f"{what}, older than {policy.keep}", age_from))
    return plan


def _action_skip(policy: RetentionPolicy, facts: IndexFacts) -> str | None:
    closed = facts.status == "close"
    if closed and policy.action == "close":
        return "already closed"
    if closed and policy.action == "forcemerge":
        return "closed: cannot force-merge"
    if closed and policy.snapshot_first:
        return "closed: cannot be snapshotted first, so left alone"
    return None


def plan_all(
    policies: list[RetentionPolicy],
    indices: list[IndexFacts],
    now: datetime,
    repository: str = "",
    location: str | None = None,
) -> RetentionPlan:
    taken: set[str] = set()
    plans = []
    for policy in policies:
        plan = plan_policy(policy, indices, now, taken)
        taken.update(d.index for d in plan.act)
        plans.append(plan)
    return RetentionPlan(now, plans, repository, location)


def plan_selected_delete(
    names: list[str], now: datetime, repository: str, location: str | None = None
) -> RetentionPlan:
    """A one-off snapshot-first delete of exactly these indices (the TUI's delete)."""
    policy = PolicyPlan(
        policy="tui",
        pattern=",".join(names),
        action="delete",
        keep="selected",
        timestring=None,
        snapshot_first=True,
        cutoff=now,
        act=[Decision(n, "selected in the TUI") for n in names],
    )
    return RetentionPlan(now, [policy], repository, location)


# ------------------------------------------------------------------ reading the cluster


async def index_facts(es: ElasticsearchClient, patterns: list[str]) -> list[IndexFacts]:
    """What the planner needs about every index matching the patterns (hidden included, so
    it can report them)."""
    try:
        return await es.index_facts(patterns)
    except NotFound:  # an exactly named index that does not exist
        return []


# ------------------------------------------------------------------ applying


@dataclass
class PolicyOutcome:
    policy: str
    action: str
    planned: list[str]
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_protected: list[str] = field(default_factory=list)
    snapshot: SnapshotInfo | None = None
    snapshot_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_protected and self.snapshot_error is None


@dataclass
class ApplyResult:
    now: datetime
    outcomes: list[PolicyOutcome]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


async def apply_plan(
    es: ElasticsearchClient,
    plan: RetentionPlan,
    repository: str,
    on_progress: ProgressFn | None = None,
) -> ApplyResult:
    outcomes = []
    for p in plan.policies:
        outcomes.append(
            await apply_policy(es, p, repository, on_progress, plan.wait_running, plan.on_wait)
        )
    return ApplyResult(plan.now, outcomes)


async def apply_policy(
    es: ElasticsearchClient,
    plan: PolicyPlan,
    repository: str,
    on_progress: ProgressFn | None = None,
    wait_running: float = WAIT_RUNNING,
    on_wait: WaitFn | None = None,
) -> PolicyOutcome:
    """Snapshot first where the policy says so, wait for running snapshots and restores
    of the indices (StillRunning after `wait_running` seconds), then act."""
    targets = [d.index for d in plan.act]
    out = PolicyOutcome(plan.policy, plan.action, targets)
    if not targets:
        return out
    if plan.snapshot_first:
        targets = await _protect(es, plan, repository, targets, out, on_progress)
    if targets:
        if plan.action in ("delete", "close"):
            await wait_until_idle(es, indices=targets, wait=wait_running, on_wait=on_wait)
        await _act(es, plan.action, targets, out)
    return out


async def _protect(
    es: ElasticsearchClient,
    plan: PolicyPlan,
    repository: str,
    targets: list[str],
    out: PolicyOutcome,
    on_progress: ProgressFn | None,
) -> list[str]:
    """Snapshot the targets; only those in a verified SUCCESS snapshot may go ahead."""
    name = snapshot_name(f"retention-{plan.policy}-%Y.%m.%d-%H%M%S-%f")
    try:
        info = await take_snapshot(
            es, repository, name, targets, on_progress=on_progress,
            metadata=opskit_metadata(KIND_ARCHIVE, plan.policy),
        )  # fmt: skip
    except BackendError as exc:
        out.snapshot_error = exc.reason
        out.not_protected = list(targets)
        return []
    except RedIndices as exc:
        out.snapshot_error = (
            f"snapshot {name} not taken: red index(es) (unassigned primary shards): "
            f"{', '.join(exc.indices)}; fix their allocation or leave them out of the policy"
        )
        out.not_protected = list(targets)
        return []
    out.snapshot = info
    if not info.ok:
        detail = "; ".join(info.failures[:3]) or info.reason or ""
        out.snapshot_error = f"snapshot {name} ended {info.state}: {detail}".rstrip(": ")
        out.not_protected = list(targets)
        return []
    contained = set(info.indices)
    out.not_protected = [t for t in targets if t not in contained]
    return [t for t in targets if t in contained]


async def _act(
    es: ElasticsearchClient, action: str, targets: list[str], out: PolicyOutcome
) -> None:
    """Run the action in URL-safe batches; check what is left, retry it once, report it."""
    run, left = _ACTIONS[action]
    pending = list(targets)
    errors: dict[str, str] = {}
    for _attempt in range(2):
        errored: set[str] = set()
        for batch in batches(pending):
            try:
                await run(es, batch)
            except BackendError as exc:
                errors.update({i: exc.reason for i in batch})
                errored.update(batch)
        remaining = set(await left(es, pending)) if left is not None else errored
        pending = [i for i in pending if i in remaining]
        if not pending:
            break
    out.done = [t for t in targets if t not in pending]
    out.failed = {i: errors.get(i, "still present after retry") for i in pending}


async def _delete(es: ElasticsearchClient, batch: list[str]) -> None:
    await es.delete_indices(batch)


async def _close(es: ElasticsearchClient, batch: list[str]) -> None:
    await es.close_indices(batch)


async def _forcemerge(es: ElasticsearchClient, batch: list[str]) -> None:
    await es.forcemerge(batch, max_num_segments=1)


async def _still_present(es: ElasticsearchClient, names: list[str]) -> list[str]:
    return list(await index_states(es, names))


async def _still_open(es: ElasticsearchClient, names: list[str]) -> list[str]:
    return [n for n, s in (await index_states(es, names)).items() if s == "open"]


Runner = Callable[["ElasticsearchClient", list[str]], Awaitable[None]]
Checker = Callable[["ElasticsearchClient", list[str]], Awaitable[list[str]]]
# action -> (run one batch, which of the names still need it; None: only errors tell)
_ACTIONS: dict[str, tuple[Runner, Checker | None]] = {
    "delete": (_delete, _still_present),
    "close": (_close, _still_open),
    "forcemerge": (_forcemerge, None),
}
