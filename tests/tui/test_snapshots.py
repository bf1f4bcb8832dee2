"""SVG snapshots of each screen on fixed data (pytest-textual-snapshot)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.tui.fixed import fixed_app

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
