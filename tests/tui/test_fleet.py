"""The Fleet screen and the merged alerts (issue 19), driven with Textual's pilot against
the real lab: contexts `lab`, `mirror` (the same lab, read-only, another colour) and
`broken` (dead ports)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opskit.config import Settings, load
from opskit.screens.alerts import AlertsScreen
from opskit.screens.app import OpskitApp, create_app
from opskit.screens.fleet import FleetScreen
from opskit.screens.modals import SilenceForm
from opskit.screens.widgets import KeyedTable
from tests.conftest import Lab, get_json

SIZE = (180, 45)


async def until(pause: Callable[[], object], cond: Callable[[], bool], timeout: float = 40) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await pause()  # type: ignore[misc]
        await asyncio.sleep(0.1)
    return cond()


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def context(lab: Lab, name: str, extra: str) -> str:
    return (
        f"[contexts.{name}]\n{extra}"
        f'[contexts.{name}.prometheus]\nurl = "{lab.prometheus}"\n'
        f'[contexts.{name}.alertmanager]\nurl = "{lab.alertmanager}"\n'
        f'[contexts.{name}.elasticsearch]\nurl = "{lab.elasticsearch}"\n'
        f'[contexts.{name}.grafana]\nurl = "{lab.grafana}"\n'
    )


@pytest.fixture
def loader(lab: Lab, tmp_path: Path) -> Callable[[str], Settings]:
    config = tmp_path / "opskit.toml"
    p, a, e = dead_port(), dead_port(), dead_port()
    config.write_text(
        context(lab, "lab", 'color = "green"\n')
        + context(lab, "mirror", 'color = "magenta"\nread_only = true\n')
        + "[contexts.broken]\n"
        f'[contexts.broken.prometheus]\nurl = "http://127.0.0.1:{p}"\nretries = 0\n'
        f'[contexts.broken.alertmanager]\nurl = "http://127.0.0.1:{a}"\nretries = 0\n'
        f'[contexts.broken.elasticsearch]\nurl = "http://127.0.0.1:{e}"\n'
    )
    env = {k: v for k, v in lab.env().items() if not k.startswith("OPSKIT_")}

    def load_context(name: str) -> Settings:
        return load(config, name, environ=env).settings

    return load_context


@pytest.fixture
def test_alert(lab: Lab) -> Iterator[str]:
    """An alert of our own, posted to the lab's Alertmanager (the lab may have none
    firing just now), resolved afterwards."""
    name = f"FleetTest{int(time.time())}"
    now = datetime.now(UTC)

    def post(ends: datetime) -> None:
        body = [{
            "labels": {"alertname": name, "severity": "warning", "instance": "fleet-test"},
            "annotations": {"summary": "the fleet test's alert"},
            "startsAt": now.isoformat(), "endsAt": ends.isoformat(),
        }]  # fmt: skip
        get_json(f"{lab.alertmanager}/api/v2/alerts", method="POST", body=body)

    post(now + timedelta(minutes=5))
    try:
        yield name
    finally:
        post(datetime.now(UTC))


def make_app(load_context: Callable[[str], Settings]) -> OpskitApp:
    return create_app(
        load_context("lab"),
        refresh=1.0,
        contexts=["broken", "lab", "mirror"],
        load_context=load_context,
    )


async def test_fleet_rows_and_enter_switches(loader: Callable[[str], Settings], lab: Lab) -> None:
    app = make_app(loader)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("0")
        assert await until(pilot.pause, lambda: isinstance(app.screen, FleetScreen))
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        table = screen.query_one("#fleet-table", KeyedTable)
        assert await until(pilot.pause, lambda: table.keys == ["broken", "lab", "mirror"])
        broken = " ".join(str(c) for c in table.get_row("broken"))
        assert "connection refused" in broken and "unreachable" in broken
        lab_cells = [str(c) for c in table.get_row("lab")]
        assert lab_cells[0].startswith("> lab")  # the current context
        health = get_json(f"{lab.elasticsearch}/_cluster/health")["status"]
        assert lab_cells[4] == health
        assert lab_cells[6].endswith("s ago") and lab_cells[7] == ""
        assert "ro" in str(table.get_row("mirror")[0])
        # Enter on mirror: the app's context switch, then its Overview
        table.focus()
        table.move_cursor(row=table.index_of("mirror"))
        await pilot.press("enter")
        assert await until(pilot.pause, lambda: app.settings.context == "mirror")
        assert app.settings.read_only
        assert await until(pilot.pause, lambda: app.current_mode == "overview")
        assert await until(pilot.pause, lambda: app.state["targets"].status == "ok")


async def test_merged_alerts(loader: Callable[[str], Settings], lab: Lab, test_alert: str) -> None:
    app = make_app(loader)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        await pilot.press("A")
        merged = screen.query_one("#merged-table", KeyedTable)
        assert merged.display and not screen.query_one("#table", KeyedTable).display
        fps = {
            a["fingerprint"]
            for a in get_json(f"{lab.alertmanager}/api/v2/alerts?silenced=false&inhibited=false")
        }
        ours = next(
            a["fingerprint"]
            for a in get_json(f"{lab.alertmanager}/api/v2/alerts")
            if a["labels"]["alertname"] == test_alert
        )
        assert ours in fps
        want = {f"{c}/{fp}" for c in ("lab", "mirror") for fp in fps}

        def shown() -> bool:
            keys = set(merged.keys)
            return want <= keys and {k.split("/")[0] for k in keys} == {"lab", "mirror"}

        assert await until(pilot.pause, shown), (sorted(merged.keys), sorted(want))
        row = [str(c) for c in merged.get_row(f"mirror/{ours}")]
        assert row[0] == "mirror" and row[2] == test_alert  # the context column first
        assert str(merged.get_row(f"lab/{ours}")[0]) == "lab"
        # silencing the mirror's copy: refused there (read-only), no form
        merged.focus()
        merged.move_cursor(row=merged.index_of(f"mirror/{ours}"))
        await pilot.pause()
        await pilot.press("s")
        await pilot.pause()
        assert not isinstance(app.screen, SilenceForm)
        # the lab's copy: the form opens (lab is writable) and the silence is created
        # through the lab context's Alertmanager
        merged.move_cursor(row=merged.index_of(f"lab/{ours}"))
        await pilot.pause()
        await pilot.press("s")
        assert await until(pilot.pause, lambda: isinstance(app.screen, SilenceForm), 10)
        comment = f"fleet-test-{time.time():.0f}"
        await pilot.press(*comment)
        await pilot.press("enter")

        def silence() -> Any:
            for s in get_json(f"{lab.alertmanager}/api/v2/silences"):
                if s["comment"] == comment and s["status"]["state"] == "active":
                    return s
            return None

        try:
            assert await until(pilot.pause, lambda: silence() is not None, 15)
            created = silence()
            assert created is not None
            matchers = {m["name"]: m["value"] for m in created["matchers"]}
            assert matchers.get("alertname") == test_alert
            # silenced: it leaves the merged (firing) list in both contexts
            assert await until(pilot.pause, lambda: f"lab/{ours}" not in merged.keys, 30)
            assert await until(pilot.pause, lambda: f"mirror/{ours}" not in merged.keys, 30)
        finally:
            found = silence()
            if found is not None:
                get_json(f"{lab.alertmanager}/api/v2/silence/{found['id']}", method="DELETE")
        assert await until(pilot.pause, lambda: isinstance(app.screen, AlertsScreen), 10)
        # back to this context's alerts only: keys are plain fingerprints again
        await pilot.press("A")
        table = screen.query_one("#table", KeyedTable)
        assert await until(pilot.pause, lambda: ours in table.keys, 30)  # expired: back
        assert all("/" not in k for k in table.keys)
