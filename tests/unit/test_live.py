"""The poller's per-source state machine: ok, stale (last data kept), unreachable,
notifications on changes only, capped backoff."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from opskit.config import load
from opskit.errors import BackendUnreachable
from opskit.live import MAX_BACKOFF, LiveState, Poller
from opskit.stack import Stack


def make_poller(events: list[tuple[str, bool]]) -> Poller:
    settings = load(environ={"XDG_CONFIG_HOME": "/nonexistent", "XDG_STATE_HOME": "/x"}).settings
    return Poller(Stack(settings), LiveState(), 2.0, lambda n, c: events.append((n, c)))


def test_states_and_notifications() -> None:
    events: list[tuple[str, bool]] = []
    poller = make_poller(events)
    answers: list[Any] = [
        ["t1"],
        BackendUnreachable("prometheus", "connection refused"),
        BackendUnreachable("prometheus", "connection refused"),
        ["t2"],
    ]

    async def fetch() -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    poller._fetchers["targets"] = fetch
    src = poller.state["targets"]

    async def go() -> None:
        assert src.status == "loading"
        await poller.poll_once("targets")
        assert (src.status, src.value, events[-1]) == ("ok", ["t1"], ("targets", False))
        await poller.poll_once("targets")
        assert (src.status, src.value, events[-1]) == ("stale", ["t1"], ("targets", True))
        assert src.banner().startswith("prometheus unreachable since ")
        assert src.banner().endswith(": connection refused")
        assert poller.delay("targets") == 2.0
        await poller.poll_once("targets")
        assert events[-1] == ("targets", False)  # still failing: no second notification
        assert poller.delay("targets") == 4.0
        await poller.poll_once("targets")
        assert (src.status, src.value, events[-1]) == ("ok", ["t2"], ("targets", True))
        assert src.error is None and src.failing_since is None
        await poller.stack.aclose()

    asyncio.run(go())


def test_never_reached_is_unreachable_and_backoff_is_capped() -> None:
    poller = make_poller([])

    async def fail() -> Any:
        raise BackendUnreachable("elasticsearch", "connection refused")

    poller._fetchers["cluster"] = fail

    async def go() -> None:
        for _ in range(12):
            await poller.poll_once("cluster")
        assert poller.state["cluster"].status == "unreachable"
        assert poller.delay("cluster") == MAX_BACKOFF
        await poller.stack.aclose()

    asyncio.run(go())


# ------------------------------------------------------------------ queue history


def test_merge_backfill_then_live_no_duplicates_bounded() -> None:
    from opskit.live import merge_history

    backfill = [(float(t), float(t)) for t in range(0, 100, 5)]  # 0, 5, ... 95
    live = [(95.0, -1.0), (100.0, -2.0)]  # the first poll overlaps the backfill's end
    merged = merge_history([*backfill, (10.0, 10.0)], live)  # a duplicate time, too
    times = [t for t, _ in merged]
    assert times == sorted(set(times))  # one point per time, in order
    assert merged[-2:] == live  # the live samples win where they overlap
    assert merged[:-2] == backfill[:-1]
    assert len(merge_history(backfill, live, limit=5)) == 5  # bounded by count...
    assert merge_history(backfill, live, window=10.0)[0][0] == 90.0  # ...and by time
    assert merge_history([], []) == []


def test_poller_backfills_on_first_poll_then_appends_live() -> None:
    from opskit.live import HISTORY, HISTORY_WINDOW
    from opskit.models import QueueDepth

    poller = make_poller([])
    depth = [0.0]

    async def queues() -> Any:
        depth[0] += 1
        return [QueueDepth("celery", 'queue="default"', depth[0], 10, None, "ok", "q", "x")]

    calls: list[int] = []

    async def history(depths: Any) -> dict[str, list[tuple[float, float]]]:
        calls.append(len(depths))
        now = time.time()
        step = HISTORY_WINDOW / HISTORY
        return {'celery queue="default"': [(now - i * step, 100.0) for i in range(HISTORY, -1, -1)]}

    poller._fetchers["queues"] = queues
    poller._history = history
    key = 'celery queue="default"'

    async def go() -> None:
        await poller.poll_once("queues")
        points = poller.state.queue_points(key)
        assert calls == [1] and len(points) <= HISTORY
        assert points[-1][1] == 1.0  # the live sample last, the backfill before it
        assert all(v == 100.0 for _, v in points[:-1]) and len(points) > HISTORY - 5
        await poller.poll_once("queues")
        points = poller.state.queue_points(key)
        assert calls == [1]  # backfilled once
        assert [v for _, v in points[-2:]] == [1.0, 2.0] and len(points) <= HISTORY
        times = [t for t, _ in points]
        assert times == sorted(times) and len(set(times)) == len(times)
        await poller.stack.aclose()

    asyncio.run(go())


def test_failing_backfill_leaves_live_polling_alone() -> None:
    from opskit.models import QueueDepth

    poller = make_poller([])

    async def queues() -> Any:
        return [QueueDepth("mail", "total", 5.0, 100, None, "ok", "q", "x")]

    async def history(depths: Any) -> dict[str, list[tuple[float, float]]]:
        raise BackendUnreachable("prometheus", "connection refused")

    poller._fetchers["queues"] = queues
    poller._history = history

    async def go() -> None:
        for _ in range(5):
            await poller.poll_once("queues")
        assert poller.state["queues"].status == "ok"
        assert [v for _, v in poller.state.queue_points("mail total")] == [5.0] * 5
        assert poller._backfill_failures["mail total"] == 3  # tried, then left alone
        await poller.stack.aclose()

    asyncio.run(go())


def test_sparkline_shows_the_whole_hour_with_spikes_kept() -> None:
    from opskit.screens.widgets import sparkline

    assert sparkline([1.0, 2.0, 3.0]) == "▁▄█"  # fewer values than width: all of them
    hour = [0.0] * 720
    hour[100] = 50.0  # one spike, long ago
    line = sparkline(hour, 20)
    assert len(line) == 20 and line[2] == "█" and set(line) == {"▁", "█"}
