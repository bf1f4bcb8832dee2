"""The incident screen: Enter on an alert opens it, each part loads on its own."""

from __future__ import annotations

from opskit.screens.app import create_app
from opskit.screens.incident import PARTS, IncidentScreen
from tests.conftest import Lab, wait_for
from tests.core.test_incident import firing
from tests.tui.test_live import SIZE, lab_settings, table_keys, until


async def test_enter_on_an_alert_opens_its_incident(lab: Lab) -> None:
    assert wait_for(lambda: firing(lab, "EmailServiceDown"), timeout=120)
    app = create_app(lab_settings(lab), refresh=2.0)
    async with app.run_test(size=SIZE) as pilot:
        assert await until(pilot.pause, lambda: app.state["alerts"].status == "ok")
        await pilot.press("3")
        await pilot.press("slash")
        await pilot.press(*"EmailServiceDown")
        await pilot.press("enter")
        assert await until(pilot.pause, lambda: len(table_keys(app)) == 1)
        await pilot.press("enter")
        assert await until(pilot.pause, lambda: isinstance(app.screen, IncidentScreen))
        screen = app.screen
        assert isinstance(screen, IncidentScreen)

        def loaded() -> bool:
            return all(screen.results[p] is not None for p in PARTS)

        assert await until(pilot.pause, loaded, 60)
        for name in PARTS:
            part = screen.results[name]
            assert part is not None and part.ok, (name, part and part.error)
        subject = screen.subject
        assert subject is not None and subject.alertname == "EmailServiceDown"
        text = str(screen.query_one("#part-targets").render())
        assert "email-service" in text and "down" in text
        assert "up{job=" in str(screen.query_one("#part-rule").render())
        assert "ongoing" in str(screen.query_one("#part-history").render())

        # h: the history window 24h -> 7d, reloaded
        history = screen.results["history"]
        assert history is not None and history.value is not None
        day = history.value.end - history.value.start
        await pilot.press("h")

        def week() -> bool:
            h = screen.results["history"]
            return h is not None and h.value is not None and h.value.end - h.value.start > day

        assert await until(pilot.pause, week, 30)
        assert "7d" in str(screen.query_one("#part-history").border_title)
        # l: a wider log window
        before = screen.log_before
        await pilot.press("l")
        assert screen.log_before > before
        assert await until(pilot.pause, lambda: screen.results["logs"] is not None, 30)

        await pilot.press("escape")
        assert await until(pilot.pause, lambda: not isinstance(app.screen, IncidentScreen))
        assert table_keys(app)  # back on the Alerts screen
