"""An alert Alertmanager has active now is ongoing in the incident's history, even when
the range query's samples (one every `step` seconds) have not seen its episode yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from opskit.models import Episode
from opskit.tasks.incident import with_active

END = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
STEP = 44.0


def episode(start_min: int, end_min: int, ongoing: bool = False) -> Episode:
    start, end = END - timedelta(minutes=start_min), END - timedelta(minutes=end_min)
    return Episode(start, end, (end - start).total_seconds(), ongoing, {})


def test_a_new_firing_not_yet_sampled_becomes_an_ongoing_episode() -> None:
    episodes = [episode(60, 50)]
    active = END - timedelta(seconds=20)
    with_active(episodes, active, END, STEP)
    assert len(episodes) == 2
    assert episodes[-1].ongoing and episodes[-1].start == active and episodes[-1].end == END
    assert episodes[-1].duration == 20
    assert not episodes[0].ongoing


def test_the_last_episode_reaching_the_active_start_is_extended_not_doubled() -> None:
    episodes = [episode(10, 1)]  # seen until a minute ago, a step or so behind
    with_active(episodes, END - timedelta(minutes=10), END, STEP)
    assert len(episodes) == 1
    assert episodes[0].ongoing and episodes[0].end == END
    assert episodes[0].duration == 600


def test_an_ongoing_episode_is_left_alone() -> None:
    episodes = [episode(10, 0, ongoing=True)]
    before = (episodes[0].start, episodes[0].end)
    with_active(episodes, END - timedelta(minutes=3), END, STEP)
    assert len(episodes) == 1 and (episodes[0].start, episodes[0].end) == before


def test_no_history_at_all_gives_one_ongoing_episode() -> None:
    episodes: list[Episode] = []
    with_active(episodes, END - timedelta(minutes=2), END, STEP)
    assert [(e.ongoing, e.duration) for e in episodes] == [(True, 120.0)]
