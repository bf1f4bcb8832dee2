"""Last-copy protection, archives and the prune tiers, with synthetic snapshots (no
cluster): `protect_last_copies`, `sole_copies`, `plan_prune`, `DeletePlan`, and the wait
for running snapshots and restores against a stand-in client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from opskit.models_es import (
    KIND_ARCHIVE,
    RunningRestore,
    RunningSnapshot,
    SnapshotInfo,
    kind_of,
    opskit_metadata,
)
from opskit.periods import parse_period
from opskit.tasks.snapshots import (
    DeletePlan,
    RedIndices,
    StillRunning,
    plan_prune,
    protect_last_copies,
    snapshot_patterns,
    sole_copies,
    start_snapshot,
    wait_until_idle,
)

NOW = datetime(2024, 6, 30, 12, tzinfo=UTC)


def snap(
    name: str,
    age: timedelta,
    indices: list[str],
    state: str = "SUCCESS",
    kind: str = "backup",
    policy: str | None = None,
) -> SnapshotInfo:
    return SnapshotInfo(
        name, "r", state, NOW - age, NOW - age, sorted(indices), len(indices), 0,
        kind=kind, policy=policy,
    )  # fmt: skip


def archive(name: str, age: timedelta, indices: list[str]) -> SnapshotInfo:
    return snap(name, age, indices, kind=KIND_ARCHIVE, policy="logs")


H, D = timedelta(hours=1), timedelta(days=1)


# ------------------------------------------------------------------ protect_last_copies


def test_the_issue_retention_snapshot_survives_keep_daily_1() -> None:
    """Issue 15: retention deleted old-1/old-2 after snapshotting them; an ordinary backup
    later the same day holds only the current indices. --keep-daily 1 keeps the later
    backup by the tier; the retention snapshot is kept as the last copy."""
    cluster = {"new-1", "new-2"}
    snaps = [
        snap("retention", 3 * H, ["old-1", "old-2"], kind="backup"),  # even unmarked
        snap("nightly", 1 * H, ["new-1", "new-2"]),
    ]
    plan = plan_prune("r", snaps, NOW, keep_daily=1, cluster=cluster)
    assert plan.delete == []
    kept = {d.name: d for d in plan.keep}
    assert kept["retention"].reasons == ["last copy of old-1, old-2"]
    assert kept["retention"].last_copy == ["old-1", "old-2"]
    assert [c.reason for c in plan.kept() if c.target == "snapshot retention"] == [
        "last copy of old-1, old-2"
    ]
    # without protection knowledge of the cluster it still protects (absent = not present)
    assert plan_prune("r", snaps, NOW, keep_daily=1).delete == []
    # the data is also in the cluster: nothing to protect, the tier decides
    again = plan_prune("r", snaps, NOW, keep_daily=1, cluster=cluster | {"old-1", "old-2"})
    assert [d.name for d in again.delete] == ["retention"]


def test_newest_copy_is_the_one_kept() -> None:
    snaps = [snap("a", 3 * D, ["x"]), snap("b", 2 * D, ["x"]), snap("c", 1 * D, ["x"])]
    verdict = protect_last_copies(snaps, ["a", "b", "c"], cluster=[])
    assert verdict.protected == {"c": ["x"]}
    assert verdict.deletable == ["b", "a"]  # newest first


def test_kept_snapshot_outside_the_candidates_counts_as_a_copy() -> None:
    snaps = [snap("old", 2 * D, ["x", "y"]), snap("keeper", 1 * D, ["x"])]
    verdict = protect_last_copies(snaps, ["old"], cluster=["z"])
    assert verdict.protected == {"old": ["y"]}  # x is in keeper, y nowhere else


def test_failed_and_partial_snapshots_never_count_as_copies() -> None:
    snaps = [
        snap("good", 3 * D, ["x"]),
        snap("failed", 1 * D, ["x"], state="FAILED"),
        snap("partial", 2 * D, ["x"], state="PARTIAL"),
    ]
    verdict = protect_last_copies(snaps, ["good"], cluster=[])
    assert verdict.protected == {"good": ["x"]}
    # and deleting them never loses anything
    verdict = protect_last_copies(snaps, ["failed", "partial"], cluster=[])
    assert verdict.deletable == ["failed", "partial"] and not verdict.protected


def test_lose_last_copies_names_each_lost_index_once() -> None:
    snaps = [snap("a", 2 * D, ["x", "y"]), snap("b", 1 * D, ["x"]), snap("c", 3 * D, ["z"])]
    verdict = protect_last_copies(snaps, ["a", "b", "c"], ["z"], lose_last_copies=True)
    assert verdict.protected == {}
    assert verdict.deletable == ["b", "a", "c"]
    assert verdict.lost == {"b": ["x"], "a": ["y"]}


def test_sole_copies() -> None:
    snaps = [
        snap("a", 2 * D, ["x", "y"]),
        snap("b", 1 * D, ["x", "live"]),
        snap("f", 1 * H, ["q"], state="FAILED"),
    ]
    assert sole_copies(snaps, ["live"]) == {"a": ["y"]}
    assert sole_copies(snaps, ["live", "y"]) == {}


# ------------------------------------------------------------------ kinds and tiers


def test_metadata_kinds() -> None:
    assert kind_of(opskit_metadata("archive", "email")) == ("archive", "email")
    assert kind_of(opskit_metadata("backup")) == ("backup", None)
    assert kind_of({}) == ("backup", None)
    assert kind_of({"taken_by": "curator"}) == ("backup", None)
    assert kind_of(None) == ("backup", None)


def test_tiers_never_delete_a_young_archive() -> None:
    snaps = [
        archive("arch-old", 400 * D, ["gone-1"]),
        archive("arch-young", 200 * D, ["gone-2"]),
        snap("b1", 3 * D, ["live"]),
        snap("b2", 2 * D, ["live"]),
        snap("b3", 1 * D, ["live"]),
    ]
    plan = plan_prune("r", snaps, NOW, keep_last=1, cluster={"live"},
                      archive_keep=parse_period("365d"))  # fmt: skip
    reasons = {d.name: d.reasons for d in plan.keep}
    assert reasons["arch-young"] == [
        "newest SUCCESS archive", "archive, younger than 365d", "last copy of gone-2",
    ]  # fmt: skip
    # the old archive is a candidate by its window but holds the last copy of gone-1
    assert reasons["arch-old"] == ["last copy of gone-1"]
    assert reasons["b3"] == ["newest SUCCESS", "last"]
    assert sorted(d.name for d in plan.delete) == ["b1", "b2"]
    assert {d.name: d.kind for d in plan.keep}["arch-old"] == "archive"


def test_old_archive_without_last_copy_goes_and_tiers_do_not_keep_archives() -> None:
    snaps = [
        archive("arch-1", 500 * D, ["x"]),
        archive("arch-2", 400 * D, ["x"]),
        archive("arch-3", 30 * D, ["y"]),
        snap("b", 1 * D, ["x", "y"]),
    ]
    plan = plan_prune("r", snaps, NOW, keep_daily=30, keep_monthly=24, cluster={"x", "y"})
    assert sorted(d.name for d in plan.delete) == ["arch-1", "arch-2"]
    # a shorter window makes arch-3 a candidate too; the newest archive rule keeps it
    short = plan_prune("r", snaps, NOW, keep_daily=30, cluster={"x", "y"},
                       archive_keep=parse_period("7d"))  # fmt: skip
    assert {d.name: d.reasons for d in short.keep}["arch-3"] == ["newest SUCCESS archive"]


def test_backups_are_not_kept_by_the_archive_window() -> None:
    snaps = [snap("b-old", 10 * D, ["live"]), snap("b-new", 1 * D, ["live"])]
    plan = plan_prune("r", snaps, NOW, keep_last=1, cluster={"live"},
                      archive_keep=parse_period("365d"))  # fmt: skip
    assert [d.name for d in plan.delete] == ["b-old"]


def test_newest_success_per_kind() -> None:
    snaps = [
        archive("arch", 800 * D, ["live"]),
        snap("b-failed", 2 * H, ["live"], state="FAILED"),
        snap("b", 2 * D, ["live"]),
    ]
    plan = plan_prune("r", snaps, NOW, older_than=parse_period("1h"), cluster={"live"})
    reasons = {d.name: d.reasons for d in plan.keep}
    assert reasons == {"arch": ["newest SUCCESS archive"], "b": ["newest SUCCESS"]}
    assert [d.name for d in plan.delete] == ["b-failed"]


def test_daily_weekly_monthly_tiers_with_synthetic_dates() -> None:
    # one backup a day for 70 days at 02:00, the live index always in the cluster
    snaps = [
        SnapshotInfo(f"d{n:02}", "r", "SUCCESS",
                     datetime(2024, 6, 30, 2, tzinfo=UTC) - n * D, None, ["live"], 1, 0)
        for n in range(70)
    ]  # fmt: skip
    plan = plan_prune("r", snaps, NOW, keep_daily=7, keep_weekly=4, keep_monthly=3,
                      cluster={"live"})  # fmt: skip
    kept = {d.name: d.reasons for d in plan.keep}
    daily = [n for n, r in kept.items() if "daily" in r]
    assert daily == [f"d{n:02}" for n in range(7)]
    weekly = [n for n, r in kept.items() if "weekly" in r]
    # 2024-06-30 is a Sunday: newest of each ISO week are the Sundays
    assert weekly == ["d00", "d07", "d14", "d21"]
    monthly = [n for n, r in kept.items() if "monthly" in r]
    assert monthly == ["d00", "d30", "d61"]  # June 30, May 31, April 30
    assert len(plan.delete) == 70 - len(kept)


def test_several_retention_runs_with_tiers() -> None:
    """Monthly retention runs each delete one month of indices after archiving it; daily
    backups hold only the live ones. Pruning hard keeps every archive: each is the last
    copy of its month. With a short archive window and --lose-last-copies the lost
    indices are all named."""
    cluster = {"logs-2024.06"}
    snaps = [archive(f"ret-2024.0{m}", (6 - m) * 30 * D, [f"logs-2024.0{m - 1}"])
             for m in range(2, 6)]  # fmt: skip
    snaps += [snap(f"nightly-{n}", n * D, ["logs-2024.06"]) for n in range(5)]
    plan = plan_prune("r", snaps, NOW, keep_last=1, cluster=cluster,
                      archive_keep=parse_period("7d"))  # fmt: skip
    assert sorted(d.name for d in plan.delete) == [f"nightly-{n}" for n in range(1, 5)]
    kept = {d.name: d.last_copy for d in plan.keep}
    assert kept["ret-2024.02"] == ["logs-2024.01"] and kept["ret-2024.04"] == ["logs-2024.03"]
    lose = plan_prune("r", snaps, NOW, keep_last=1, cluster=cluster,
                      archive_keep=parse_period("7d"), lose_last_copies=True)  # fmt: skip
    lines = [c.line() for c in lose.changes() if "ret-" in c.target]
    assert lines == [
        "delete snapshot ret-2024.04 (SUCCESS; LAST COPY of logs-2024.03)",
        "delete snapshot ret-2024.03 (SUCCESS; LAST COPY of logs-2024.02)",
        "delete snapshot ret-2024.02 (SUCCESS; LAST COPY of logs-2024.01)",
    ]
    assert "ret-2024.05" in {d.name for d in lose.keep}  # newest SUCCESS archive


# ------------------------------------------------------------------ DeletePlan


def test_delete_plan_keeps_last_copy_unless_told() -> None:
    snaps = [snap("ret", 2 * D, ["gone"]), snap("b", 1 * D, ["live"])]
    plan = DeletePlan("r", ["ret", "b"], snaps, {"live"})
    assert plan.protected == {"ret": ["gone"]}
    assert [c.line() for c in plan.changes()] == ["delete snapshot b (named)"]
    assert [c.line() for c in plan.kept()] == ["keep snapshot ret (last copy of gone)"]
    forced = DeletePlan("r", ["ret"], snaps, {"live"}, lose_last_copies=True)
    assert [c.line() for c in forced.changes()] == [
        "delete snapshot ret (named; LAST COPY of gone)"
    ]
    assert forced.lost == {"ret": ["gone"]} and not forced.protected


# ------------------------------------------------------------------ waiting, red


class Busy:
    """A client stand-in whose running work ends after `polls` polls."""

    def __init__(self, polls: int) -> None:
        self.polls = polls
        self.deleted: list[str] = []

    async def running_snapshots(self) -> list[RunningSnapshot]:
        self.polls -= 1
        if self.polls < 0:
            return []
        return [RunningSnapshot("r", "nightly", "STARTED", ["idx-a", "idx-b"])]

    async def running_restores(self) -> list[RunningRestore]:
        return [RunningRestore("other", "r", "old")] if self.polls >= 0 else []

    async def delete_snapshots(self, repository: str, names: list[str]) -> None:
        self.deleted += names


def test_wait_until_idle_waits_then_goes_on() -> None:
    es = Busy(polls=2)
    heard: list[list[str]] = []
    asyncio.run(wait_until_idle(cast(Any, es), indices=["idx-a"], wait=10, poll=0.01,
                                on_wait=lambda busy, *_: heard.append(busy)))  # fmt: skip
    assert heard == [["snapshot r:nightly is copying idx-a"]] * 2


def test_wait_until_idle_refuses_after_the_wait() -> None:
    es = Busy(polls=1000)
    with pytest.raises(StillRunning, match="snapshot r:nightly is copying idx-b") as err:
        asyncio.run(wait_until_idle(cast(Any, es), indices=["idx-b"], wait=0.05, poll=0.01))
    assert err.value.exit_code == 75
    with pytest.raises(StillRunning, match="restore from r:old into other is running"):
        asyncio.run(wait_until_idle(cast(Any, es), snapshots=[("r", "old")], wait=0))
    # unrelated work does not hold anything up
    asyncio.run(wait_until_idle(cast(Any, es), indices=["idx-z"], snapshots=[("r", "x")], wait=0))


def test_delete_plan_waits_for_a_restore_from_it() -> None:
    es = Busy(polls=1000)
    plan = DeletePlan("r", ["old"], wait_running=0)
    with pytest.raises(StillRunning):
        asyncio.run(plan.apply(cast(Any, es)))
    assert es.deleted == []
    es = Busy(polls=1)
    plan = DeletePlan("r", ["old"], wait_running=5)
    asyncio.run(plan.apply(cast(Any, es)))
    assert es.deleted == ["old"]


class Red:
    def __init__(self, red: list[str]) -> None:
        self.red = red
        self.asked: list[list[str]] = []
        self.created = False

    async def red_indices(self, patterns: list[str]) -> list[str]:
        self.asked.append(patterns)
        return self.red

    async def create_snapshot(self, *args: Any) -> None:
        self.created = True


def test_red_indices_stop_a_snapshot_with_the_choices() -> None:
    es = Red(["logs-x"])
    with pytest.raises(RedIndices, match="logs-x") as err:
        asyncio.run(start_snapshot(cast(Any, es), "r", "s", ["logs-*"]))
    assert "--partial" in str(err.value) and "--indices '-logs-x'" in str(err.value)
    assert not es.created
    asyncio.run(start_snapshot(cast(Any, es), "r", "s", ["logs-*"], partial=True))
    assert es.created  # --partial: no check, Elasticsearch takes what it can
    fine = Red([])
    asyncio.run(start_snapshot(cast(Any, fine), "r", "s", ["-logs-x"]))
    assert fine.asked == [["*", "-logs-x"]] and fine.created


def test_snapshot_patterns() -> None:
    assert snapshot_patterns(None) == []
    assert snapshot_patterns(["a-*", "-a-x"]) == ["a-*", "-a-x"]
    assert snapshot_patterns(["-a-x"]) == ["*", "-a-x"]
