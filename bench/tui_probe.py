"""Measures 2 and 6, run as its own process (`python -m bench.tui_probe SECONDS`): the
opskit TUI headless (App.run_test, 200x50) on the scaled-up bench stack (either size);
key-press-to-handled latency while refreshes are kept in flight (one forced every 50 ms),
on the overview and on the targets screen (2,000 or 10,000 rows); then the process's peak
RSS. Prints one JSON object. Each key waits for the one before it, so a slow screen gives
few samples: with n under 100 the p99 is the slowest one."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any, ClassVar

from textual import events
from textual.binding import Binding, BindingType

from opskit.config import load
from opskit.screens.app import OpskitApp

PROBE_KEY = "f12"


class ProbeApp(OpskitApp):
    """The real app plus one key whose action records when it ran."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *OpskitApp.BINDINGS,
        Binding(PROBE_KEY, "bench_probe", "probe", show=False),
    ]
    handled_at: float = 0.0

    def action_bench_probe(self) -> None:
        self.handled_at = time.perf_counter()


def press(app: OpskitApp) -> None:
    """The key as a terminal delivers it: the driver posts it into the app's queue."""
    event = events.Key(PROBE_KEY, None)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


async def run(seconds: float) -> dict[str, Any]:
    settings = load().settings
    app = ProbeApp(settings, interval=30.0)  # only the forced refreshes below
    out: dict[str, Any] = {}
    t_start = time.perf_counter()
    async with app.run_test(size=(200, 50)) as pilot:
        while any(app.state[n].last_ok is None and app.state[n].error is None for n in
                  ("targets", "alerts", "indices", "cluster")):  # fmt: skip
            await asyncio.sleep(0.05)
        out["first_load_s"] = time.perf_counter() - t_start
        out["loaded"] = {
            n: len(v) if isinstance(v := app.state[n].value, list) else int(v is not None)
            for n in ("targets", "alerts", "indices", "silences", "services")
        }
        for mode in ("alerts", "indices", "targets", "overview"):  # every big table rendered
            app.switch_mode(mode)
            await pilot.pause(0.5)

        async def keep_refreshing() -> None:
            while True:
                if app.poller is not None:
                    app.poller.refresh_now()
                await asyncio.sleep(0.05)

        for mode in ("overview", "targets"):
            # switch with no forced refresh in flight: a poll landing while a screen mounts
            # fails in screens/ (NoMatches ContextBar; reported, not the bench's to fix)
            app.switch_mode(mode)
            await pilot.pause(0.5)
            refresher = asyncio.create_task(keep_refreshing())
            lat: list[float] = []
            polls_before = app.state["targets"].last_ok
            deadline = time.perf_counter() + seconds / 2
            while time.perf_counter() < deadline:
                app.handled_at = 0.0
                t0 = time.perf_counter()
                press(app)
                while app.handled_at == 0.0:
                    await asyncio.sleep(0.001)
                lat.append((app.handled_at - t0) * 1000)
                await asyncio.sleep(0.02)
            out[f"latency_ms_{mode}"] = {
                "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat), "n": len(lat),
                "targets_refreshed": app.state["targets"].last_ok != polls_before,
            }  # fmt: skip
            refresher.cancel()
            await pilot.pause(1.0)  # let the refreshes in flight land before switching
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    print(json.dumps(asyncio.run(run(seconds))))


if __name__ == "__main__":
    main()
