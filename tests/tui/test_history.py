"""Queue history from Prometheus: the Queues screen has the last hour right after it
opens, not only what this session has polled (against the real lab)."""

from __future__ import annotations

import math
import time
import urllib.parse

from opskit.live import HISTORY_STEP, HISTORY_WINDOW
from opskit.screens.widgets import HistoryPlot, KeyedTable
from tests.conftest import Lab, get_json
from tests.tui.test_live import SIZE, lab_settings, until


def prometheus_points(lab: Lab, query: str) -> int:
    """How many points Prometheus itself has for the query's first series in the hour."""
    end = time.time()
    params = urllib.parse.urlencode(
        {"query": query, "start": end - HISTORY_WINDOW, "end": end, "step": HISTORY_STEP}
    )
    result = get_json(f"{lab.prometheus}/api/v1/query_range?{params}")["data"]["result"]
    return max((len(s["values"]) for s in result), default=0)


async def test_queues_screen_has_history_right_after_opening(lab: Lab) -> None:
    from opskit.screens.app import create_app

    app = create_app(lab_settings(lab), refresh=30.0)  # one poll in the whole test
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        assert await until(pilot.pause, lambda: app.state["queues"].status == "ok", 20)
        first_poll = time.monotonic()
        table = app.screen.query_one(KeyedTable)
        assert await until(pilot.pause, lambda: table.selected_key() is not None, 5)
        key = table.selected_key()
        assert key is not None
        q = next(d for d in app.state["queues"].value if f"{d.queue} {d.series}" == key)
        expected = prometheus_points(lab, q.query)
        assert expected >= 5, "the lab's Prometheus should hold a few minutes of queue data"

        def backfilled() -> bool:
            return len(app.state.queue_points(key)) >= min(expected, 720) - 2

        assert await until(pilot.pause, backfilled, 2)
        assert time.monotonic() - first_poll < 2.5
        points = app.state.queue_points(key)
        times = [t for t, _ in points]
        assert times == sorted(times) and len(set(times)) == len(times)  # no duplicates
        assert times[-1] - times[0] > 4 * HISTORY_STEP  # older than this session
        assert times[0] >= time.time() - HISTORY_WINDOW - 60  # the last hour only
        # the live sample is the newest point: what the table shows
        assert points[-1][1] == q.value or math.isnan(q.value)
        # the plot pane draws it, with the warning threshold
        plot = app.screen.query_one("#queue-plot", HistoryPlot)
        await pilot.pause()
        drawn = str(plot.render())
        assert "depth" in drawn and f"warning {q.warning:g}" in drawn
        # the overview's sparkline has it too, from the same state
        await pilot.press("1")
        await pilot.pause()
        tile = str(app.screen.query_one("#tile-queues").render())
        assert any(ch in tile for ch in "▁▂▃▄▅▆▇█")
