"""Record and replay (issue 17): the TUI on a recording, read-only, with a time cursor.

On fixed recorded data: the keys, the read-only guard and an SVG snapshot. Against the
lab: `opskit record` polls while the test starts the stopped email-service, and the
replay shows it down before and up after."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from opskit.config import Settings, load
from opskit.errors import UsageError
from opskit.live import SOURCES, LiveState
from opskit.models import Target
from opskit.record import Recorder, ReplaySource
from opskit.screens.alerts import AlertsScreen
from opskit.screens.app import OpskitApp, create_app
from opskit.screens.base import ContextBar
from opskit.screens.modals import Picker
from opskit.screens.widgets import KeyedTable
from tests.conftest import ROOT, Lab, _incident_seen, get_json, server_state, wait_for
from tests.tui.fixed import T0, fixed_state
from tests.tui.test_live import until

SIZE = (140, 36)
EMAIL = "email-service"


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def fixed_settings() -> Settings:
    env = {"XDG_CONFIG_HOME": "/nonexistent", "XDG_STATE_HOME": "/nonexistent",
           "OPSKIT_COLOR": "blue"}  # fmt: skip
    return load(environ=env).settings


def write_state(rec: Recorder, state: LiveState, when: datetime) -> None:
    for i, name in enumerate(SOURCES):
        rec.write(state[name], taken_at=when.timestamp() + i * 0.01)


def email_recovered(state: LiveState, when: datetime) -> LiveState:
    """The fixed state a minute later: the email-service target back up."""
    targets = [
        dataclasses.replace(t, health="up", last_error="") if t.job == EMAIL else t
        for t in state["targets"].value
    ]
    state["targets"].value = targets
    for src in state.sources.values():
        src.last_ok = when
    return state


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """Two recorded polls of the fixed data: 12:00:00 email-service down, 12:01:00 up."""
    path = tmp_path / "fixed.sqlite"
    rec = Recorder(path, context="default", interval=5.0)
    write_state(rec, fixed_state(), T0)
    later = T0 + timedelta(minutes=1)
    write_state(rec, email_recovered(fixed_state(), later), later)
    rec.close()
    return path


def replay_app(path: Path, mode: str = "targets") -> OpskitApp:
    app = create_app(fixed_settings(), replay=path)
    app.initial_mode = mode
    return app


def email_health(app: OpskitApp) -> str:
    table = app.screen.query_one(KeyedTable)
    for key in table.keys:
        if key.startswith(f"{EMAIL}|"):
            return str(table.get_row(key)[2])
    return "(no row)"


def bar_text(app: OpskitApp) -> str:
    rendered = app.screen.query_one(ContextBar).render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


async def test_the_time_cursor_steps_jumps_and_plays(recording: Path) -> None:
    app = replay_app(recording)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # opens on the latest recorded poll, read-only, never polling
        assert app.settings.read_only
        assert app.poller is None and app.stack is None
        assert email_health(app) == "up"
        assert "replay 2026-01-24 12:01:00 (2/2)" in bar_text(app)
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert email_health(app) == "down"
        assert "replay 2026-01-24 12:00:00 (1/2)" in bar_text(app)
        await pilot.press("left_square_bracket")  # clamped at the first poll
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert email_health(app) == "up"
        # jump to a time with the picker
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, Picker)
        await pilot.press(*"12:00:00", "enter")
        await pilot.pause()
        assert app.replay_index == 0
        assert email_health(app) == "down"
        # space plays: one recorded poll a second, stopping at the end
        await pilot.press("space")
        await pilot.pause()
        assert app.replay_playing
        assert "playing" in bar_text(app)
        assert await until(pilot.pause, lambda: email_health(app) == "up", 5)
        assert await until(pilot.pause, lambda: not app.replay_playing, 5)


async def test_replay_is_read_only(recording: Path) -> None:
    app = replay_app(recording, "alerts")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.check_action("refresh", ()) is False
        assert app.check_action("switch_context", ()) is False
        assert app.check_action("replay_step", (1,)) is True
        await pilot.press("s")  # silence: refused in a read-only context
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)  # no SilenceForm
        assert app.screen.query_one(KeyedTable).keys  # the recorded alerts are shown
    live = create_app(fixed_settings(), poll=False, state=fixed_state())
    assert live.check_action("replay_step", (1,)) is False
    assert live.check_action("refresh", ()) is True
    assert not live.settings.read_only


def test_replay_snapshot(snap_compare: Any, recording: Path) -> None:
    """The Targets screen replayed at 12:00:00: the email-service down, the cursor in the
    context bar."""
    assert os.environ["TZ"] == "UTC"
    assert snap_compare(replay_app(recording), terminal_size=SIZE, press=["left_square_bracket"])


def target_health(source: ReplaySource, index: int) -> str | None:
    targets: list[Target] = source.state_at(source.instants[index])["targets"].value or []
    return next((t.health for t in targets if t.job == EMAIL), None)


def open_recording(path: Path) -> ReplaySource | None:
    try:
        source = ReplaySource(path)
    except UsageError:
        return None
    return source if source.instants else None


def restore_the_incident(lab: Lab) -> None:
    """The email-service is stopped again: wait until the lab's standing incident is
    back (EmailServiceDown firing again after its `for: 30s`), so later tests see it."""

    def firing() -> bool:
        alerts = get_json(f"{lab.alertmanager}/api/v2/alerts?silenced=false&inhibited=false")
        names = {a["labels"]["alertname"] for a in alerts if a["status"]["state"] == "active"}
        return "EmailServiceDown" in names and _incident_seen(lab)

    assert wait_for(firing, timeout=120), "EmailServiceDown did not fire again"


async def test_record_the_lab_then_replay_before_and_after(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "lab.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "opskit", "record", "--file", str(path), "--interval", "1",
         "--every", "5"],
        env=lab.env(), cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # read while it records: the email-service down (the lab's standing incident)
        source = wait_for(lambda: open_recording(path), timeout=20)
        assert source is not None, "no recording written"

        def latest(health: str) -> datetime | None:
            source.reload()
            ok = source.instants and target_health(source, -1) == health
            return source.instants[-1] if ok else None

        before = wait_for(lambda: latest("down"), timeout=20)
        assert before is not None
        with server_state("email_service", running=True):
            after = wait_for(lambda: latest("up"), timeout=45)
            assert after is not None, "the recording never saw the email-service up"
        source.close()
        restore_the_incident(lab)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "stopped:" in stderr
    lines = stderr.strip().splitlines()
    polls = int(lines[-1].split()[3]) // len(SOURCES)  # "...: stopped: N rows written"
    assert len(lines) <= 2 + polls // 5 + 1, stderr  # at most one line per 5 polls

    # The instants as the finished recording has them: a round read while it was still
    # being written ends later once its last rows are in (a round is represented by its
    # last row), so `after` may now fall before its round. Take the rounds from the file.
    final = ReplaySource(path)
    health = [target_health(final, i) for i in range(len(final.instants))]
    final.close()
    first_up = next(i for i, h in enumerate(health) if h == "up" and "down" in health[:i])
    last_down = max(i for i in range(first_up) if health[i] == "down")
    assert final.instants[last_down] >= before - timedelta(seconds=2)

    app = create_app(load(environ=lab.env()).settings, replay=path)
    app.initial_mode = "targets"
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        assert app.poller is None
        app.replay_to_time(final.instants[last_down])
        await pilot.pause()
        assert email_health(app) == "down"
        app.replay_to_time(final.instants[first_up])
        await pilot.pause()
        assert email_health(app) == "up"
