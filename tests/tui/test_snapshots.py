"""SVG snapshots of each screen on fixed data (pytest-textual-snapshot)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.tui.fixed import fixed_app, fixed_incident

MODES = ["overview", "targets", "alerts", "silences", "queues", "indices", "services"]


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()


@pytest.mark.parametrize("mode", MODES)
def test_screen_snapshot(snap_compare: Any, mode: str) -> None:
    assert os.environ["TZ"] == "UTC"
    assert snap_compare(fixed_app(mode), terminal_size=(140, 36))


def test_incident_snapshot(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The incident view of EmailServiceDown; its dashboards part failed on its own."""
    from opskit import output
    from opskit.screens import incident
    from opskit.screens.incident import IncidentScreen
    from tests.tui.fixed import T0

    monkeypatch.setattr(incident, "ago", lambda when, now=None: output.ago(when, T0))

    async def open_incident(pilot: Any) -> None:
        await pilot.app.push_screen(IncidentScreen("f1", results=fixed_incident()))
        await pilot.pause()

    assert snap_compare(fixed_app("alerts"), terminal_size=(140, 60), run_before=open_incident)
