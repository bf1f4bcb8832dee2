"""The scheduler with an injected clock (no sleeping), its lock and its clean stop."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time

import pytest

from opskit.errors import EXIT_CONFIG
from opskit.tasks.scheduler import MaintenanceScheduler, next_time
from opskit.when import parse_when
from tests.conftest import ROOT, Lab


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


SLOTS = {
    "weekly": parse_when("weekly", "monday 06:00"),
    "monthly": parse_when("monthly", "day 1 06:30"),
    "quarterly": parse_when("quarterly", "day 1 07:00"),
}


def drive(sched: MaintenanceScheduler, clock: FakeClock, hours: int) -> None:
    """Tick the scheduler every simulated minute for `hours`."""
    for _ in range(hours * 60):
        clock.advance(minutes=1)
        sched.run_pending()


def test_jobs_run_at_their_time_and_a_failing_one_does_not_stop_it() -> None:
    clock = FakeClock(dt.datetime(2026, 3, 29, 12, 0))  # a Sunday, before April 1st
    calls: list[tuple[str, dt.datetime]] = []

    def job(cadence: str) -> str:
        calls.append((cadence, clock()))
        if cadence == "weekly":
            raise RuntimeError("backend exploded")
        return "ok"

    sched = MaintenanceScheduler(SLOTS, job, clock)
    assert sched.next_runs()["weekly"] == dt.datetime(2026, 3, 30, 6, 0)
    drive(sched, clock, 17)  # Sunday 12:00 -> Monday 05:00: nothing yet
    assert calls == []
    drive(sched, clock, 2)  # Monday 06:00: weekly runs and raises
    assert calls == [("weekly", dt.datetime(2026, 3, 30, 6, 0))]
    assert sched.runs[0][2] == "RuntimeError: backend exploded"
    drive(sched, clock, 3 * 24)  # on to Thursday April 2nd: monthly and quarterly ran
    assert [c for c, _ in calls] == ["weekly", "monthly", "quarterly"]
    assert calls[1][1] == dt.datetime(2026, 4, 1, 6, 30)
    assert calls[2][1] == dt.datetime(2026, 4, 1, 7, 0)
    drive(sched, clock, 6 * 24)  # the next Monday: weekly again, after its failure
    assert [c for c, _ in calls][-1] == "weekly" and len(calls) == 4
    assert [r[2] for r in sched.runs] == [
        "RuntimeError: backend exploded",
        "ok",
        "ok",
        "RuntimeError: backend exploded",
    ]


def test_quarterly_skips_months_outside_the_quarter_start() -> None:
    clock = FakeClock(dt.datetime(2026, 4, 2, 0, 0))
    calls: list[str] = []
    sched = MaintenanceScheduler(SLOTS, calls.append, clock)
    drive(sched, clock, 31 * 24)  # through May 1st
    assert calls.count("monthly") == 1 and "quarterly" not in calls
    assert next_time(SLOTS["quarterly"], clock()) == dt.datetime(2026, 7, 1, 7, 0)


@pytest.mark.parametrize(
    ("cadence", "text", "cron", "calendar"),
    [
        ("weekly", "monday 06:00", "0 6 * * 1", "Mon *-*-* 06:00:00"),
        ("weekly", "Sun 23:15", "15 23 * * 0", "Sun *-*-* 23:15:00"),
        ("monthly", "day 1 06:30", "30 6 1 * *", "*-*-01 06:30:00"),
        ("quarterly", "day 15 07:00", "0 7 15 1,4,7,10 *", "*-01,04,07,10-15 07:00:00"),
    ],
)
def test_schedule_specs(cadence: str, text: str, cron: str, calendar: str) -> None:
    when = parse_when(cadence, text)
    assert when.cron() == cron and when.systemd() == calendar


@pytest.mark.parametrize("text", ["monday", "day 31 06:00", "funday 06:00", "day 1 25:00"])
def test_bad_schedule_specs(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when("monthly" if text.startswith("day") else "weekly", text)


def test_schedule_run_holds_a_lock_and_stops_on_sigterm(lab: Lab, tmp_path: object) -> None:
    env = lab.env(XDG_STATE_HOME=str(tmp_path))
    first = subprocess.Popen(
        [sys.executable, "-m", "opskit", "schedule", "run"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stderr is not None
        assert "scheduler started" in first.stderr.readline()
        second = lab.opskit("schedule", "run", env=env, timeout=30)
        assert second.returncode == 75 and "another opskit scheduler is running" in second.stderr
        first.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert first.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5
        assert "scheduler stopped" in first.stderr.read()
    finally:
        first.kill()


def test_bad_schedule_in_config_is_one_line(lab: Lab, tmp_path: object) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "opskit.toml"
    config.write_text('[schedule]\nmonthly = "day 30 06:00"\n')
    proc = lab.opskit("schedule", "crontab", env=lab.env(OPSKIT_CONFIG=str(config)))
    assert (
        proc.returncode == EXIT_CONFIG
        and "schedule.monthly" in proc.stderr
        and "1-28" in proc.stderr
    )
