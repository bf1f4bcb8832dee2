"""The Overview builds a tile's text, and the status summary's pieces, only when what the
tile is drawn from changed (the identity of its sources' values): a render with nothing
new rebuilds nothing and updates no tile; one source's new value rebuilds that source's
tile and piece only. Calls are counted, not timed (no lab needed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from opskit.screens.overview import AlertsTile, OverviewScreen, Tile
from tests.tui.fixed import fixed_app


def count_updates(screen: OverviewScreen) -> Counter[str]:
    """Counts each tile's `update` calls from now on."""
    updates: Counter[str] = Counter()
    for tile in screen.query(Tile):
        inner = tile.update

        def counting(content: Any = "", *, _mode: str = tile.mode, _inner: Any = inner) -> None:
            updates[_mode] += 1
            _inner(content)

        tile.update = counting  # type: ignore[method-assign]
    return updates


async def test_a_render_with_unchanged_sources_rebuilds_nothing() -> None:
    app = fixed_app("overview")
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        builds = dict(screen.builds)
        pieces = Counter(screen.summary_memo.builds)
        assert all(builds.values()), "each tile was built once"
        updates = count_updates(screen)
        texts = {t.mode: str(t.render()) for t in screen.query(Tile)}

        screen.render_body(app.state)
        screen.render_body(app.state)
        assert screen.builds == builds
        assert screen.summary_memo.builds == pieces
        assert not updates
        assert {t.mode: str(t.render()) for t in screen.query(Tile)} == texts

        # a new list of the same alerts (as each poll brings): that tile and piece only
        app.state["alerts"].value = list(app.state["alerts"].value)
        screen.render_body(app.state)
        assert screen.builds == {**builds, "alerts": builds["alerts"] + 1}
        assert screen.summary_memo.builds == pieces + Counter(alerts=1)
        assert dict(updates) == {"alerts": 1}
        assert {t.mode: str(t.render()) for t in screen.query(Tile)} == texts


async def test_a_changed_source_is_drawn_anew() -> None:
    app = fixed_app("overview")
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        targets = app.state["targets"].value
        up = next(t for t in targets if t.health == "up")
        app.state["targets"].value = [
            replace(t, health="down", last_error="connection refused") if t is up else t
            for t in targets
        ]
        screen.render_body(app.state)
        tile = screen.query_one("#tile-targets", Tile)
        assert f"{up.job} {up.instance}" in str(tile.render())

        # the alerts tile's cursor is part of what it is drawn from
        alerts = screen.query_one(AlertsTile)
        builds = dict(screen.builds)
        alerts.focus()
        await pilot.press("down")
        assert alerts.cursor == 0
        assert f"> {alerts.listed[0].alertname}" in str(alerts.render())
        assert screen.builds["alerts"] == builds["alerts"] + 1
        assert screen.builds["targets"] == builds["targets"]
