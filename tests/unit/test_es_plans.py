"""The Elasticsearch destructive paths as `opskit.plan.Plan`s: what they list, keep and
do, against a recording stand-in for ElasticsearchClient (no cluster)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from opskit.config import RetentionPolicy
from opskit.errors import UsageError
from opskit.models_es import IndexFacts, SnapshotInfo
from opskit.plan import Change, Plan
from opskit.tasks.restore import RestoreTarget, plan_restore
from opskit.tasks.retention import plan_all, plan_selected_delete
from opskit.tasks.snapshots import DeletePlan, plan_prune

NOW = datetime(2024, 3, 31, 12, tzinfo=UTC)


class FakeEs:
    """Records the client calls a plan makes; snapshots always end SUCCESS."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.present: set[str] = set()

    async def delete_snapshots(self, repository: str, names: list[str]) -> None:
        self.calls.append(("delete_snapshots", (repository, list(names))))

    async def delete_indices(self, names: list[str]) -> None:
        self.calls.append(("delete_indices", list(names)))
        self.present -= set(names)

    async def index_states(self, names: list[str]) -> dict[str, str]:
        return {n: "open" for n in names if n in self.present}

    async def repository(self, name: str) -> Any:
        from opskit.models_es import Repository

        self.calls.append(("repository", name))
        return Repository(name, "fs", name)

    async def verify_repository(self, name: str) -> list[str]:
        return ["node-1"]

    async def create_snapshot(
        self, repository: str, name: str, indices: list[str], *a: Any
    ) -> None:
        self.calls.append(("create_snapshot", list(indices)))
        self.snap = SnapshotInfo(name, repository, "SUCCESS", NOW, NOW, sorted(indices), 1, 0)

    async def snapshot(self, repository: str, name: str) -> SnapshotInfo:
        return self.snap

    async def running_snapshots(self) -> list[Any]:
        return []

    async def running_restores(self) -> list[Any]:
        return []

    async def red_indices(self, patterns: list[str]) -> list[str]:
        return []


def es(fake: FakeEs) -> Any:
    return cast(Any, fake)


def test_prune_plan_lists_deletes_and_keeps() -> None:
    snaps = [
        SnapshotInfo(f"s{h}", "r", "SUCCESS", NOW - timedelta(hours=h), None, [], 1, 0)
        for h in range(4)
    ]
    plan = plan_prune("r", snaps, NOW, keep_last=2)
    assert isinstance(plan, Plan)
    assert plan.changes() == [Change("delete", "snapshot s2", "SUCCESS"),
                              Change("delete", "snapshot s3", "SUCCESS")]  # fmt: skip
    assert [c.target for c in plan.kept()] == ["snapshot s0", "snapshot s1"]
    assert "2 changes" in plan.question() and not plan.empty
    fake = FakeEs()
    assert asyncio.run(plan.apply(es(fake))) == ["s2", "s3"]
    assert fake.calls == [("delete_snapshots", ("r", ["s2", "s3"]))]


def test_delete_plan_exact_names_only() -> None:
    with pytest.raises(UsageError):
        DeletePlan("r", ["s*"])
    plan = DeletePlan("r", ["a", "b"])
    assert [c.line() for c in plan.changes()] == ["delete snapshot a (named)",
                                                  "delete snapshot b (named)"]  # fmt: skip
    fake = FakeEs()
    asyncio.run(plan.apply(es(fake)))
    assert fake.calls == [("delete_snapshots", ("r", ["a", "b"]))]


def test_retention_plan_changes_and_kept() -> None:
    policy = RetentionPolicy(name="p", pattern="logs-*", keep="30d", timestring=None)
    facts = [
        IndexFacts("logs-old", "open", NOW - timedelta(days=40)),
        IndexFacts("logs-new", "open", NOW - timedelta(days=3)),
        IndexFacts(".logs-hidden", "open", NOW - timedelta(days=40), hidden=True),
    ]
    plan = plan_all([policy], facts, NOW, "backup")
    assert [(c.verb, c.target) for c in plan.changes()] == [("delete", "logs-old")]
    assert {c.target for c in plan.kept()} == {"logs-new"}  # .logs-* does not match logs-*
    assert plan.repository == "backup" and not plan.empty
    assert plan_all([policy], [], NOW).empty


def test_selected_delete_snapshots_first_then_deletes() -> None:
    plan = plan_selected_delete(["a", "b"], NOW, "backup", "/repo")
    verbs = [c.verb for c in plan.changes()]
    assert verbs == ["snapshot", "delete", "delete"]
    fake = FakeEs()
    fake.present = {"a", "b"}
    result = asyncio.run(plan.apply(es(fake)))
    assert result.ok and result.outcomes[0].done == ["a", "b"]
    names = [c[0] for c in fake.calls]
    assert names.index("create_snapshot") < names.index("delete_indices")
    assert ("repository", "backup") in fake.calls  # made sure of before snapshotting


def test_restore_plan_closes_only_open_conflicts() -> None:
    plan = plan_restore("r", "snap", ["a", "b", "c"], [], {"a": "open", "b": "close"})
    assert plan.conflicts == [RestoreTarget("a", "a", "open")]
    assert [(c.verb, c.target) for c in plan.changes()] == [
        ("close", "a"), ("restore", "a"), ("restore", "b"), ("restore", "c"),
    ]  # fmt: skip
    assert "would restore over open index(es) a" in plan.question()
    renamed = plan_restore("r", "snap", ["a"], [], {}, "(.+)", "restored-$1")
    assert renamed.changes() == [Change("restore", "a as restored-a")]
    assert not renamed.conflicts
