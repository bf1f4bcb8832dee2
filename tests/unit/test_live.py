"""The poller's per-source state machine: ok, stale (last data kept), unreachable,
notifications on changes only, capped backoff."""

from __future__ import annotations

import asyncio
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
