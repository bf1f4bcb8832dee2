"""One line per table row, and the target and index detail panes, against the real lab:
the down target's raw Go error and `up` history, a yellow index's unassigned replica and
Elasticsearch's own explanation of it."""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.parse
from datetime import UTC, datetime

from rich.text import Text
from textual.pilot import Pilot

from opskit.errorclass import headline
from opskit.models import Alert, Index, ServiceHealth, Silence
from opskit.screens.alerts import AlertsScreen, SilencesScreen
from opskit.screens.app import OpskitApp, create_app
from opskit.screens.details import DetailPane, Fetched
from opskit.screens.indices import IndicesScreen
from opskit.screens.tables import ServicesScreen, TargetsScreen
from opskit.screens.widgets import KeyedTable
from tests.conftest import Lab, get_json
from tests.tui.fixed import fixed_app, target
from tests.tui.test_live import SIZE, lab_settings, table_keys, until

RAW_GO_ERROR = (
    'Get "http://127.0.0.1:15000/metrics":\n  dial tcp 127.0.0.1:15000: connect: '
    "connection refused (and then some more words to make it long enough to be cut)"
)


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def pane_text(app: OpskitApp) -> str:
    return app.screen.query_one(DetailPane).text


async def select_row(pilot: Pilot[None], app: OpskitApp, key_part: str) -> str:
    """Put the cursor on the first row whose key contains `key_part`; its key."""
    table = app.screen.query_one(KeyedTable)
    assert await until(pilot.pause, lambda: any(key_part in k for k in table.keys))
    row, key = next((n, k) for n, k in enumerate(table.keys) if key_part in k)
    table.focus()
    table.move_cursor(row=row)
    await pilot.pause()
    assert table.selected_key() == key
    return key


# ---------------------------------------------------------------------- cells: one line
def test_target_cells_are_one_line_with_the_error_class_first() -> None:
    screen = TargetsScreen()
    t = target("j" * 90, "i" * 90, "down", RAW_GO_ERROR)
    cells = [plain(c) for c in screen.cells(t)]
    assert all("\n" not in c for c in cells)
    job, instance, *_, error = cells
    assert job.endswith("…") and len(job) == 40 and instance.endswith("…")
    assert error == "connection refused"  # the class, not the raw Go string
    t.last_error = "something odd happened\nwith a second line"  # unclassified: its first words
    assert plain(screen.cells(t)[-1]) == "something odd happened"
    t.last_error = "x " * 100
    error = plain(screen.cells(t)[-1])
    assert error.endswith("…") and len(error) == 48


def test_alert_silence_service_and_index_cells_fold_newlines_and_cut() -> None:
    alert = Alert(
        "f1", "A", "warning", "active", {"alertname": "A", "k": "v\nw" * 30},
        {"summary": "first line\nsecond line " + "word " * 40}, None, None, None, "", [], [], [],
    )  # fmt: skip
    silence = Silence("s1", "active", ['a="b\nc"'] * 20, None, None, "me\nyou", "c\n" * 60)
    service = ServiceHealth("svc", "http://h/" + "p" * 80, False, None, None, RAW_GO_ERROR)
    index = Index("logs-" + "x" * 100, "green", "open", 1, 1, 1, 0, None, "u")
    rows = [
        AlertsScreen().cells(alert),
        SilencesScreen().cells(silence),
        ServicesScreen().cells(service),
        IndicesScreen().cells(index),
    ]
    for cells in rows:
        texts = [plain(c) for c in cells]
        assert all("\n" not in c for c in texts), texts
        assert any(c.endswith("…") for c in texts), texts
    summary = plain(rows[0][-1])
    assert summary.startswith("first line second line word") and len(summary) == 80
    assert plain(rows[2][-1]) == "connection refused"


async def test_fixed_data_shows_no_history_and_enter_opens_the_pane() -> None:
    app = fixed_app("targets")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await select_row(pilot, app, "email-service|")
        text = pane_text(app)
        assert "email-service" in text and "connection refused" in text
        assert "no history (not connected to Prometheus)" in text
        # history given beforehand (as a snapshot would): drawn on a fixed 0..1 scale
        screen = app.screen
        assert isinstance(screen, TargetsScreen)
        key = "email-service|http://email-service:5000/metrics"
        screen.history.put(key, [(60.0 * m, 1.0) for m in range(60)])
        screen.show_detail()
        assert "up (1h)   " + "█" * 60 + "  up 100% of the last hour" in pane_text(app)
        screen.history.put(key, [(0.0, 1.0), (60.0, 0.0), (120.0, 0.0), (180.0, 1.0)])
        screen.show_detail()
        assert "up (1h)   █▁▁█  up 50% of the last 4 min" in pane_text(app)
        screen.history.put(key, None, "prometheus: timed out")
        screen.show_detail()
        assert "no history: prometheus: timed out" in pane_text(app)
        pane = app.screen.query_one(DetailPane)
        before = pane.size.height
        await pilot.press("enter")
        await pilot.pause()
        assert pane.is_open and app.focused is pane and pane.size.height > before
        await pilot.press("escape")
        await pilot.pause()
        assert not pane.is_open and isinstance(app.focused, KeyedTable)
        assert pane.size.height == before


# ---------------------------------------------------------------------- the lab
async def test_down_target_pane_has_the_raw_error_and_up_history(lab: Lab) -> None:
    api = get_json(f"{lab.prometheus}/api/v1/targets?state=active")["data"]["activeTargets"]
    down = next(t for t in api if t["labels"]["job"] == "email-service")
    assert down["health"] == "down" and down["lastError"]
    raw = down["lastError"]
    app = create_lab_app(lab, refresh=1.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert await until(pilot.pause, lambda: app.state["targets"].status == "ok")
        key = await select_row(pilot, app, "email-service|")
        table = app.screen.query_one(KeyedTable)
        error_cell = plain(table.get_row(key)[-1])
        assert error_cell == headline(raw) == "connection refused"
        assert raw not in error_cell  # the raw Go error only in the pane
        assert await until(pilot.pause, lambda: " of the last " in pane_text(app), 15)
        text = pane_text(app)
        assert raw in text  # in full
        assert down["scrapeUrl"] in text
        assert f"instance={down['labels']['instance']}" in text
        screen = app.screen
        assert isinstance(screen, TargetsScreen)
        # the history is Prometheus' own: the same query over the same instants agrees
        fetched_points = (screen.history.get(key) or Fetched(None, "", 0)).value
        assert fetched_points, screen.history.get(key)
        start, end = fetched_points[0][0], fetched_points[-1][0]
        instance = down["labels"]["instance"]
        expr = f'min_over_time(up{{job="email-service",instance="{instance}"}}[60s])'
        query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": 60})
        series = get_json(f"{lab.prometheus}/api/v1/query_range?{query}")["data"]["result"]
        expected = [(float(t), float(v)) for t, v in series[0]["values"]]
        assert fetched_points == expected
        share = sum(1 for _, v in expected if v >= 1) / len(expected)
        assert f"up {share:.0%} of the last " in text
        history_line = next(line for line in text.splitlines() if line.startswith("up (1h)"))
        assert history_line.split()[2][-1] == "▁"  # down now: the newest point is low
        fetched = screen.history.fetches
        # refreshes redraw the pane but fetch nothing more
        last = app.state["targets"].last_ok
        assert await until(pilot.pause, lambda: app.state["targets"].last_ok != last, 15)
        await pilot.pause(0.5)
        assert screen.history.fetches == fetched
        # another target fetches its own history; going back uses the cache
        await select_row(pilot, app, "prometheus|")
        assert await until(pilot.pause, lambda: "█" in pane_text(app), 15)  # up all hour
        assert screen.history.fetches == fetched + 1
        await select_row(pilot, app, "email-service|")
        await pilot.pause(0.5)
        assert raw in pane_text(app) and screen.history.fetches == fetched + 1


async def test_yellow_index_pane_explains_its_unassigned_replica(lab: Lab) -> None:
    name = f"opskit-tui-yellow-{time.time_ns()}"
    get_json(
        f"{lab.elasticsearch}/{name}",
        method="PUT",
        body={"settings": {"number_of_shards": 1, "number_of_replicas": 1}},
    )
    try:
        explain = get_json(
            f"{lab.elasticsearch}/_cluster/allocation/explain",
            method="POST",
            body={"index": name, "shard": 0, "primary": False},
        )
        deciders = [
            d["explanation"]
            for n in explain["node_allocation_decisions"]
            for d in n["deciders"]
            if d["decision"] != "YES"
        ]
        assert explain["can_allocate"] == "no" and deciders
        app = create_lab_app(lab, refresh=1.0)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await pilot.press("slash", *name, "enter")
            assert await until(pilot.pause, lambda: table_keys(app) == [name], 30)
            await select_row(pilot, app, name)
            assert await until(pilot.pause, lambda: "can_allocate" in pane_text(app), 15)
            text = pane_text(app)
            shard_rows = [line.split() for line in text.splitlines() if "UNASSIGNED" in line]
            assert any(r[:3] == ["0", "r", "UNASSIGNED"] for r in shard_rows), text
            assert any("INDEX_CREATED" in r for r in shard_rows), text
            assert any(r[:3] == ["0", "p", "STARTED"] for r in map(str.split, text.splitlines()))
            assert "unassigned shard 0 replica  can_allocate: no" in text
            assert explain["allocate_explanation"] in text  # Elasticsearch's own words
            assert deciders[0] in text
            assert "shards 1  replicas 1" in text
            await pilot.press("enter")
            await pilot.pause()
            pane = app.screen.query_one(DetailPane)
            assert pane.is_open and app.focused is pane
    finally:
        with contextlib.suppress(urllib.error.URLError):
            get_json(f"{lab.elasticsearch}/{name}", method="DELETE")


async def test_index_pane_shows_routing_and_blocks(lab: Lab) -> None:
    name = f"opskit-tui-blocked-{time.time_ns()}"
    get_json(
        f"{lab.elasticsearch}/{name}",
        method="PUT",
        body={
            "settings": {
                "number_of_replicas": 0,
                "index.routing.allocation.exclude._name": "no-such-node",
                "index.blocks.write": True,
            }
        },
    )
    try:
        app = create_lab_app(lab, refresh=2.0)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await pilot.press("slash", *name, "enter")
            assert await until(pilot.pause, lambda: table_keys(app) == [name], 30)
            await select_row(pilot, app, name)
            assert await until(pilot.pause, lambda: "routing" in pane_text(app), 15)
            text = pane_text(app)
            assert "index.routing.allocation.exclude._name=no-such-node" in text
            assert "index.blocks.write=true" in text
            created = datetime.now(UTC).astimezone().strftime("%Y-%m-%d")
            assert f"created {created}" in text
            assert "can_allocate" not in text  # nothing unassigned: nothing to explain
    finally:
        with contextlib.suppress(urllib.error.URLError):
            get_json(f"{lab.elasticsearch}/{name}", method="DELETE")


def create_lab_app(lab: Lab, refresh: float) -> OpskitApp:
    return create_app(lab_settings(lab), refresh=refresh)


async def test_an_index_gone_before_its_detail_came_says_so(lab: Lab) -> None:
    """An index deleted between the listing and the selection: the pane says what
    Elasticsearch answered (404), no traceback, and the fetcher keeps going."""
    from opskit.screens.indices import fetch_index_detail, index_detail
    from opskit.stack import Stack

    name = f"opskit-tui-gone-{time.time_ns()}"
    async with Stack(lab_settings(lab)) as stack:
        detail = await fetch_index_detail(stack.elasticsearch, name)
    assert detail.settings is None and detail.shards is None and not detail.explanations
    assert any(e.startswith("settings: 404 Not Found") for e in detail.errors), detail.errors
    assert any("index_not_found_exception" in e for e in detail.errors), detail.errors
    gone = Index(name, "green", "open", 0, 0, 1, 0, None, "u")
    text = index_detail(gone, Fetched(detail, "", 0.0), live=True, loading=False).plain
    assert "settings: 404 Not Found" in text and name in text
