"""The maintenance scheduler behind `opskit schedule run`: the `schedule` library runs
each cadence at its `[schedule]` slot (weekly on a weekday; monthly and quarterly as a
daily job that only acts on the right day of the right month). A job that raises is
logged and the scheduler goes on; `stop` ends the loop between jobs.

The clock is injectable: `schedule` reads `datetime.datetime.now()`, so while a
scheduler with a clock runs, that module sees a `datetime` whose `now()` is the clock.
Tests drive whole days in milliseconds this way, without sleeping."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import schedule

from opskit.when import WEEKDAYS, When

Clock = Callable[[], dt.datetime]  # naive local time, as `schedule` uses
log = logging.getLogger("opskit.schedule")


@contextmanager
def clocked(clock: Clock | None) -> Iterator[None]:
    """Let `schedule` read `clock` instead of the wall clock for the duration."""
    if clock is None:
        yield
        return
    read = clock

    class ClockedDatetime(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            value = read()
            return value if tz is None else value.astimezone(tz)

    shim = types.SimpleNamespace(
        datetime=ClockedDatetime, timedelta=dt.timedelta, time=dt.time, date=dt.date
    )
    real = vars(schedule)["datetime"]
    setattr(schedule, "datetime", shim)  # noqa: B010 - the module global schedule reads
    try:
        yield
    finally:
        setattr(schedule, "datetime", real)  # noqa: B010


def next_time(when: When, now: dt.datetime) -> dt.datetime:
    """Pure: the next instant after `now` at which `when` comes round."""
    day = now.date()
    for _ in range(400):
        at = dt.datetime.combine(day, dt.time(when.hour, when.minute))
        if at > now and when.matches_day((day.year, day.month, day.day, day.weekday())):
            return at
        day += dt.timedelta(days=1)
    raise AssertionError("no slot within 400 days")  # pragma: no cover


class MaintenanceScheduler:
    """Runs `job(cadence)` at each cadence's slot."""

    def __init__(
        self, slots: dict[str, When], job: Callable[[str], object], clock: Clock | None = None
    ) -> None:
        self.slots = slots
        self.job = job
        self.clock = clock
        self.stop_event = threading.Event()
        self.runs: list[tuple[str, dt.datetime, str]] = []  # (cadence, when, "ok"|error)
        self._sched = schedule.Scheduler()
        with clocked(clock):
            for cadence, when in slots.items():
                if when.weekday is not None:
                    every = getattr(self._sched.every(), WEEKDAYS[when.weekday])
                    every.at(when.time).do(self._run, cadence)
                else:
                    self._sched.every().day.at(when.time).do(self._run_on_day, cadence, when)

    def now(self) -> dt.datetime:
        return self.clock() if self.clock is not None else dt.datetime.now()

    def _run_on_day(self, cadence: str, when: When) -> None:
        today = self.now().date()
        if when.matches_day((today.year, today.month, today.day, today.weekday())):
            self._run(cadence)

    def _run(self, cadence: str) -> None:
        started = self.now()
        log.info("%s maintenance: starting", cadence)
        try:
            result = self.job(cadence)
        except Exception as exc:  # the scheduler outlives any one job
            log.error("%s maintenance failed: %s: %s", cadence, type(exc).__name__, exc)
            self.runs.append((cadence, started, f"{type(exc).__name__}: {exc}"))
            return
        log.info("%s maintenance: finished (%s)", cadence, result)
        self.runs.append((cadence, started, "ok"))

    def run_pending(self) -> None:
        with clocked(self.clock):
            self._sched.run_pending()

    def next_runs(self) -> dict[str, dt.datetime]:
        now = self.now()
        return {c: next_time(w, now) for c, w in self.slots.items()}

    def idle_seconds(self) -> float:
        with clocked(self.clock):
            idle = self._sched.idle_seconds
        return max(idle or 0.0, 0.0)

    def run_forever(self, max_sleep: float = 60.0) -> None:
        """Loop until `stop()`; wakes at least every `max_sleep` seconds (clock jumps,
        suspend) and at once on stop."""
        while not self.stop_event.is_set():
            self.run_pending()
            self.stop_event.wait(min(self.idle_seconds(), max_sleep))

    def stop(self) -> None:
        self.stop_event.set()
