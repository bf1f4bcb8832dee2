"""Property-based tests: timestrings, calendar periods, the retention plan, the prune plan."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from opskit.config import RetentionPolicy
from opskit.models_es import IndexFacts, SnapshotInfo
from opskit.periods import add_months, parse_period
from opskit.tasks.batches import batches
from opskit.tasks.retention import plan_policy
from opskit.tasks.snapshots import plan_prune
from opskit.timestrings import compile_timestring

days = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)
)
stems = st.from_regex(r"[a-z][a-z-]{0,15}-", fullmatch=True)
TIMESTRINGS = ["%Y.%m.%d", "%Y-%m-%d", "%Y.%m", "%Y%m%d", "%Y.%j", "%Y.%m.%d.%H", "%y.%m.%d"]
UNIT_START = {
    "%Y.%m": lambda d: d.replace(day=1, hour=0),
    "%Y.%m.%d.%H": lambda d: d,
}


@given(st.sampled_from(TIMESTRINGS), stems, days)
def test_timestring_round_trip(fmt: str, stem: str, when: datetime) -> None:
    ts = compile_timestring(fmt)
    start = UNIT_START.get(fmt, lambda d: d.replace(hour=0))(when)
    assume(fmt != "%y.%m.%d" or 1969 <= start.year <= 2068)  # %y's century window
    period = ts.period(stem + start.strftime(fmt))
    assert period is not None and period[0] == start and period[1] > start


@given(stems, days)
def test_monthly_timestring_never_matches_daily_names(stem: str, when: datetime) -> None:
    assert compile_timestring("%Y.%m").period(f"{stem}{when:%Y.%m.%d}") is None
    assert compile_timestring("%Y.%m.%d").period(f"{stem}{when:%Y.%m}") is None


@given(st.text(alphabet="abc-_.", max_size=20))
def test_names_without_digits_have_no_date(name: str) -> None:
    assert compile_timestring("%Y.%m.%d").period(name) is None


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("x-2024.13.01", "%Y.%m.%d"),
        ("x-2024.02.30", "%Y.%m.%d"),
        ("x-2024.01.01-2024.01.02", "%Y.%m.%d"),
    ],
)
def test_impossible_or_ambiguous_dates(name: str, fmt: str) -> None:
    assert compile_timestring(fmt).period(name) is None


@pytest.mark.parametrize("bad", ["%d.%m", "%Y.%Q", "%Y.%d", "%Y.%m.%m", "logs"])
def test_bad_timestrings(bad: str) -> None:
    with pytest.raises(ValueError):
        compile_timestring(bad)


def test_month_arithmetic_examples() -> None:
    assert add_months(datetime(2024, 3, 31, tzinfo=UTC), -1) == datetime(2024, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2023, 3, 31, tzinfo=UTC), -1) == datetime(2023, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2024, 1, 15, tzinfo=UTC), -13) == datetime(2022, 12, 15, tzinfo=UTC)
    assert parse_period("1y").before(datetime(2024, 2, 29, tzinfo=UTC)) == datetime(
        2023, 2, 28, tzinfo=UTC
    )
    assert parse_period("6mo2d").months == 6


@given(days, st.integers(-240, 240))
def test_month_arithmetic_properties(when: datetime, n: int) -> None:
    assume(2 <= when.year <= 9990)
    moved = add_months(when, n)
    assert (moved.year * 12 + moved.month) - (when.year * 12 + when.month) == n
    assert moved.day <= when.day and (moved.day == when.day or moved.day >= 28)
    assert moved.time() == when.time()
    if n > 0:
        assert moved > when
    if n < 0:
        assert moved < when


@pytest.mark.parametrize("bad", ["", "3m", "0d", "30", "1.5d", "-1d"])
def test_bad_periods(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_period(bad)


# ------------------------------------------------------------------ the plan

NOW = datetime(2024, 3, 31, 12, tzinfo=UTC)
index_facts = st.builds(
    IndexFacts,
    name=st.one_of(
        st.builds(
            lambda p, d: f"{p}{d:%Y.%m.%d}",
            st.sampled_from(["logs-a-", "logs-b-", "other-", ".hidden-logs-a-"]),
            st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2024, 4, 30)),
        ),
        st.sampled_from(["logs-a-latest", "logs-a-x", "logs-a-2024"]),
    ),
    status=st.sampled_from(["open", "close"]),
    created=st.none() | st.just(NOW - timedelta(days=400)),
    hidden=st.booleans(),
    data_stream=st.none() | st.just("ds"),
)


@given(
    st.lists(index_facts, max_size=40, unique_by=lambda f: f.name),
    st.sampled_from(["7d", "30d", "2w", "1mo", "3mo", "1y"]),
    st.sampled_from(["logs-a-*", "logs-*"]),
    st.sampled_from(["delete", "close", "forcemerge"]),
    st.booleans(),
)
def test_plan_never_outside_pattern_never_younger(
    facts: list[IndexFacts], keep: str, pattern: str, action: str, first: bool
) -> None:
    policy = RetentionPolicy(
        name="p",
        pattern=pattern,
        keep=keep,
        action=action,  # type: ignore[arg-type]
        snapshot_first=first,
    )
    plan = plan_policy(policy, facts, NOW)
    cutoff = parse_period(keep).before(NOW)
    by_name = {f.name: f for f in facts}
    seen = [d.index for d in plan.act + plan.kept + plan.skipped]
    assert len(seen) == len(set(seen))  # each index decided once
    assert set(seen) == {f.name for f in facts if fnmatch.fnmatchcase(f.name, pattern)}
    ts = compile_timestring("%Y.%m.%d")
    for d in plan.act:
        f = by_name[d.index]
        assert fnmatch.fnmatchcase(f.name, pattern)
        assert not f.hidden and f.data_stream is None and not f.name.startswith(".")
        period = ts.period(f.name)
        assert period is not None and period[1] <= cutoff  # the whole day is older
        assert not (f.status == "close" and (action != "delete" or first))
    for d in plan.kept:
        period = ts.period(d.index)
        assert period is not None and period[1] > cutoff


def test_named_hidden_index_may_be_selected() -> None:
    facts = [IndexFacts(".old-2020.01.01", "open", None, hidden=True)]
    named = RetentionPolicy(name="n", pattern=".old-2020.01.01", keep="30d")
    assert [d.index for d in plan_policy(named, facts, NOW).act] == [".old-2020.01.01"]
    wild = RetentionPolicy(name="w", pattern=".old-*", keep="30d")
    assert plan_policy(wild, facts, NOW).act == []


def test_creation_date_mode() -> None:
    facts = [
        IndexFacts("app-old", "open", NOW - timedelta(days=31)),
        IndexFacts("app-new", "open", NOW - timedelta(days=29)),
        IndexFacts("app-unknown", "open", None),
    ]
    policy = RetentionPolicy(name="c", pattern="app-*", keep="30d", timestring=None)
    plan = plan_policy(policy, facts, NOW)
    assert [d.index for d in plan.act] == ["app-old"]
    assert [d.index for d in plan.kept] == ["app-new"]
    assert [d.index for d in plan.skipped] == ["app-unknown"]


@given(st.lists(st.from_regex(r"[a-z0-9.-]{1,300}", fullmatch=True), max_size=200))
def test_batches_keep_urls_short_and_lose_nothing(names: list[str]) -> None:
    out = list(batches(names, max_chars=1000))
    assert [n for b in out for n in b] == names
    assert all(len(",".join(b)) <= 1000 or len(b) == 1 for b in out)


# ------------------------------------------------------------------ prune

states = st.sampled_from(["SUCCESS", "SUCCESS", "PARTIAL", "FAILED", "IN_PROGRESS"])


@given(
    st.lists(
        st.tuples(st.integers(0, 400 * 24), states),
        min_size=1,
        max_size=40,
        unique_by=lambda t: t[0],
    ),
    st.integers(0, 5),
    st.integers(0, 10),
    st.integers(0, 5),
    st.integers(0, 6),
    st.none() | st.sampled_from(["1d", "30d", "3mo"]),
)
def test_prune_never_newest_success_nor_in_progress(
    raw: list[tuple[int, str]], last: int, daily: int, weekly: int, monthly: int, older: str | None
) -> None:
    assume(last or daily or weekly or monthly or older)
    snaps = [
        SnapshotInfo(f"s{h}", "r", state, NOW - timedelta(hours=h), None, [], 1, 0)
        for h, state in raw
    ]
    period = parse_period(older) if older else None
    plan = plan_prune("r", snaps, NOW, last, daily, weekly, monthly, period)
    deleted = {d.name for d in plan.delete}
    assert len(deleted) + len(plan.keep) == len(snaps)
    success = [s for s in snaps if s.state == "SUCCESS"]
    if success:
        assert max(success, key=lambda s: s.start or NOW).name not in deleted
    assert not any(s.state == "IN_PROGRESS" and s.name in deleted for s in snaps)
    if period is not None:
        cutoff = period.before(NOW)
        assert all(s.start is not None and s.start < cutoff for s in snaps if s.name in deleted)


def test_prune_tiers() -> None:
    # one SUCCESS snapshot every 6 hours for 70 days
    snaps = [
        SnapshotInfo(f"s{h:04d}", "r", "SUCCESS", NOW - timedelta(hours=h), None, [], 1, 0)
        for h in range(0, 70 * 24, 6)
    ]
    plan = plan_prune("r", snaps, NOW, keep_daily=7, keep_weekly=4, keep_monthly=3)
    kept = {d.name: d.reasons for d in plan.keep}
    assert sum("daily" in r for r in kept.values()) == 7
    assert sum("weekly" in r for r in kept.values()) == 4
    assert sum("monthly" in r for r in kept.values()) == 3
    assert kept["s0000"] == ["newest SUCCESS", "daily", "weekly", "monthly"]
    assert len(plan.keep) < 7 + 4 + 3
