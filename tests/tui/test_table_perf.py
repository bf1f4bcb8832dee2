"""The TUI at 10,000 rows, structurally (no times asserted): a refresh touches only the
rows that changed and are on screen, renders are coalesced, a hidden screen renders
nothing, the cursor stays on its key, filter and sort work (fixed data, no lab)."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from typing import Any

from opskit.models import Target
from opskit.screens.app import OpskitApp
from opskit.screens.base import OFF_LOOP_ROWS, LiveScreen, TableScreen
from opskit.screens.overview import OverviewScreen
from opskit.screens.tables import TargetsScreen
from opskit.screens.widgets import Cell, KeyedTable
from tests.tui.fixed import fixed_app, target

N = 10_000
SIZE = (160, 40)
LIVE = ("targets", "alerts", "silences", "queues", "cluster", "indices", "services", "grafana")


def many_targets(n: int = N) -> list[Target]:
    return [
        target(f"job-{i % 7}", f"host-{i:05d}:9100", "down" if i % 1000 == 0 else "up")
        for i in range(n)
    ]


def big_app(mode: str = "targets") -> OpskitApp:
    app = fixed_app(mode)
    app.state["targets"].value = many_targets()
    return app


class Counting:
    """Wraps a screen's `cells` and counts its calls."""

    def __init__(self, screen: TargetsScreen) -> None:
        self.inner = screen.cells
        self.calls = 0

    def __call__(self, record: Target) -> Sequence[Cell]:
        self.calls += 1
        return self.inner(record)


def count_cells(screen: TargetsScreen) -> Counting:
    counter = Counting(screen)
    screen.cells = counter  # type: ignore[method-assign]
    return counter


async def poll(app: OpskitApp, pilot: Any, value: list[Any], name: str = "targets") -> None:
    """What the poller does when a source lands: a new value, then the app's update."""
    app.state[name].value = value
    app.source_changed(name, False)
    await pilot.pause(0.05)
    screen = app.screen
    deadline = time.monotonic() + 30
    while isinstance(screen, TableScreen) and screen.render_pending:
        assert time.monotonic() < deadline
        await pilot.pause(0.02)
    await pilot.pause()


def targets_screen(app: OpskitApp) -> TargetsScreen:
    screen = app.screen
    assert isinstance(screen, TargetsScreen)
    return screen


async def test_a_refresh_with_unchanged_data_builds_no_cells() -> None:
    app = big_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = targets_screen(app)
        counter = count_cells(screen)
        await poll(app, pilot, many_targets())  # warms the new `cells` up
        assert 0 < counter.calls < 100  # the rows on screen only, never all 10,000
        counter.calls = 0
        renders = screen.renders
        fresh = [copy.copy(t) for t in app.state["targets"].value]  # a poll parses anew
        await poll(app, pilot, fresh)
        assert screen.renders == renders + 1  # it did render...
        assert counter.calls == 0  # ...and built no cells: nothing changed
        assert len(screen.table.keys) == N


async def test_a_refresh_changing_one_row_builds_that_row_only() -> None:
    app = big_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = targets_screen(app)
        table = screen.table
        counter = count_cells(screen)
        await poll(app, pilot, many_targets())
        shown_key = table.keys[1]
        hidden_key = table.keys[-1]
        counter.calls = 0
        fresh = [copy.copy(t) for t in app.state["targets"].value]
        for t in fresh:
            if t.key == shown_key:
                t.last_error = "changed on screen"
        await poll(app, pilot, fresh)
        assert counter.calls == 1
        assert "changed on screen" in str(table.get_row(shown_key)[5])
        # a change below the screen builds nothing until the row is looked at
        counter.calls = 0
        fresh = [copy.copy(t) for t in fresh]
        for t in fresh:
            if t.key == hidden_key:
                t.last_error = "changed off screen"
        await poll(app, pilot, fresh)
        assert counter.calls == 0
        assert "changed off screen" in str(table.get_row(hidden_key)[5])
        assert counter.calls == 1


async def test_the_first_render_of_10000_rows_builds_the_visible_ones() -> None:
    app = big_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = targets_screen(app).table
        assert table.row_count == N
        assert 0 < table.cells_built <= SIZE[1]
        # scrolling to the end builds the rows shown there; the built cells stay bounded
        table.focus()
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_row == N - 1
        assert table.selected_key() == table.keys[-1]
        assert len(table._built) <= SIZE[1] * (2 * KeyedTable.CACHE_SLACK + 1)


async def test_renders_are_coalesced() -> None:
    app = big_app("overview")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        calls = {"n": 0}
        inner = screen.render_body

        def counting(state: Any) -> None:
            calls["n"] += 1
            inner(state)

        screen.render_body = counting  # type: ignore[method-assign]
        renders = screen.renders
        for name in LIVE:  # every source lands in the same frame
            app.source_changed(name, False)
        await pilot.pause(0.2)
        assert screen.renders == renders + 1
        assert calls["n"] == 1


async def test_a_screen_not_shown_renders_nothing_until_it_is_shown() -> None:
    app = big_app("overview")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        overview = app.screen
        assert isinstance(overview, OverviewScreen)
        calls = {"n": 0}
        inner = overview.render_body

        def counting(state: Any) -> None:
            calls["n"] += 1
            inner(state)

        overview.render_body = counting  # type: ignore[method-assign]
        await pilot.press("2")
        await pilot.pause()
        targets = targets_screen(app)
        before = targets.renders
        for _ in range(3):
            for name in LIVE:
                app.source_changed(name, False)
            await pilot.pause(0.1)
        assert calls["n"] == 0  # the overview is not shown: it did nothing
        assert targets.renders > before  # the one shown did render
        await pilot.press("1")
        await pilot.pause()
        assert app.screen is overview
        assert calls["n"] == 1  # shown again: rendered once, from the latest state


async def test_the_cursor_stays_on_its_key_when_rows_reorder() -> None:
    app = big_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = targets_screen(app).table
        table.focus()
        await pilot.press(*["down"] * 5)
        key = table.selected_key()
        assert key is not None and table.cursor_row == 5
        # twenty more targets of job-0 go down: down first, by job, moves the row down
        fresh = [copy.copy(t) for t in app.state["targets"].value]
        for t in fresh[7:147:7]:
            t.health = "down"
        await poll(app, pilot, fresh)
        assert table.selected_key() == key
        assert table.keys.index(key) == table.cursor_row > 5


async def test_filter_and_sort_on_10000_rows() -> None:
    app = big_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = targets_screen(app)
        table = screen.table
        # health first: the ten down targets, then the others
        assert [str(table.get_row_at(i)[2]) for i in range(11)] == ["down"] * 10 + ["up"]
        await pilot.press("slash", *"host-04242:")
        await pilot.pause()
        assert [str(table.get_row(k)[1]) for k in table.keys] == ["host-04242:9100"]
        # the filter holds across a refresh
        await poll(app, pilot, [copy.copy(t) for t in app.state["targets"].value])
        assert len(table.keys) == 1
        await pilot.press("escape")
        await pilot.pause()
        assert len(table.keys) == N
        table.focus()
        await pilot.press("o", "o")  # by instance
        await pilot.pause()
        instances = [str(table.get_row_at(i)[1]) for i in range(3)]
        assert instances == ["host-00000:9100", "host-00001:9100", "host-00002:9100"]
        await pilot.press("O")  # reversed
        await pilot.pause()
        assert str(table.get_row_at(0)[1]) == "host-09999:9100"
        assert str(table.get_row_at(N - 1)[1]) == "host-00000:9100"


async def test_rows_of_a_mark_show_at_once() -> None:
    """A user's action (here: marking an index) redraws the rows whose cells depend on
    more than the record, though the record did not change."""
    app = fixed_app("indices")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        table = screen.query_one(KeyedTable)
        table.focus()
        first = table.selected_key()
        assert first is not None
        assert str(table.get_row(first)[0]).strip() == ""
        await pilot.press("space")
        await pilot.pause()
        assert str(table.get_row(first)[0]) == "✓"
        assert table.cursor_row == 1  # and the cursor moved down


async def test_a_big_tables_poll_render_filters_and_sorts_off_the_loop() -> None:
    assert N >= OFF_LOOP_ROWS
    app = big_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = targets_screen(app)
        threads: list[str] = []
        inner = screen.visible_rows

        def recording(state: Any) -> list[Target]:
            threads.append(threading.current_thread().name)
            return inner(state)

        screen.visible_rows = recording  # type: ignore[method-assign]
        fresh = [copy.copy(t) for t in app.state["targets"].value]
        fresh[0].last_error = "changed"
        await poll(app, pilot, fresh)
        assert threads and threading.main_thread().name not in threads
        assert "changed" in str(screen.table.get_row(fresh[0].key)[5])
        await pilot.press("o")  # a user's action: at once, on the loop
        assert threads[-1] == threading.main_thread().name
