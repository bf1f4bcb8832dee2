"""The Overview's alerts tile on fixed data: up/down pick a listed alert, Enter opens its
incident screen; with none picked Enter opens the Alerts screen (no lab needed)."""

from __future__ import annotations

from opskit.screens.incident import IncidentScreen
from opskit.screens.overview import AlertsTile
from tests.tui.fixed import fixed_app


async def test_enter_on_a_picked_alert_opens_its_incident() -> None:
    app = fixed_app("overview")
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.pause()
        tile = app.screen.query_one(AlertsTile)
        assert tile.listed, "the fixed data has firing alerts"
        tile.focus()
        await pilot.press("down", "down")
        assert tile.cursor == 1
        assert f"> {tile.listed[1].alertname}" in str(tile.render())
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, IncidentScreen)
        assert app.screen.key == tile.listed[1].fingerprint


async def test_enter_with_none_picked_opens_the_alerts_screen() -> None:
    app = fixed_app("overview")
    async with app.run_test(size=(140, 36)) as pilot:
        await pilot.pause()
        tile = app.screen.query_one(AlertsTile)
        tile.focus()
        await pilot.press("down", "up")
        assert tile.cursor == -1
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "alerts"
