"""A synthetic micro-benchmark of the TUI's key-to-action latency (no servers): the real
app headless (`App.run_test(size=(200, 50))`) over a fixed LiveState of N targets, M
alerts and K indices built from opskit.models, while a task replaces every source's value
(fresh records, about 1% of them changed, built in a thread like the clients' parsing)
and calls the app's update path (`source_changed`) every 50 ms. A probe key is pressed
over and over; the time from the key entering the app's queue to its action running is
the latency. Then the process's peak RSS.

    python -m bench.tui_micro [--size current|large] [--seconds 20] [--profile PHASE]

Prints one JSON object: p50/p99/max per screen (overview, targets), renders counted,
peak RSS. `--profile overview|targets` writes a pyinstrument text report of that phase to
bench/work/tui_micro_<size>_<phase>.txt (when pyinstrument is installed)."""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.tui_probe import ProbeApp, pct, press
from opskit.config import load
from opskit.live import LiveState
from opskit.models import (
    Alert,
    ClusterHealth,
    Index,
    QueueDepth,
    ServiceHealth,
    Silence,
    Target,
)

SIZES = {"current": (2000, 1000, 1000), "large": (10_000, 5000, 5000)}
TICK = 0.05  # seconds between updates
CHANGED_SHARE = 0.01  # records changed per update
T0 = datetime(2026, 1, 24, 12, 0, 0, tzinfo=UTC)


def targets(n: int) -> list[Target]:
    out = []
    for i in range(n):
        job = f"bench-job-{i % 50:02d}"
        instance = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}:9100"
        down = i % 97 == 0
        out.append(
            Target(
                job,
                instance,
                f"http://{instance}/metrics/{i}",
                "down" if down else "up",
                T0 - timedelta(seconds=i % 60),
                0.001 + (i % 100) / 10000,
                f'Get "http://{instance}/metrics/{i}": dial tcp: connection refused'
                if down
                else "",
                "60s",
                "10s",
                {"job": job, "instance": instance, "env": "bench"},
            )
        )
    return out


def alerts(n: int) -> list[Alert]:
    sev = ("critical", "warning", "info")
    return [
        Alert(
            f"{i:016x}",
            f"BenchAlert{i % 40:02d}",
            sev[i % 3],
            "active" if i % 10 else "suppressed",
            {"alertname": f"BenchAlert{i % 40:02d}", "severity": sev[i % 3], "n": str(i)},
            {"summary": f"bench alert number {i} is firing"},
            T0 - timedelta(minutes=i % 600),
            None,
            T0,
            "http://prometheus:9090/graph",
            ["s1"] if i % 10 == 0 else [],
            [],
            ["ops"],
        )
        for i in range(n)
    ]


def indices(n: int) -> list[Index]:
    health = ("green", "green", "green", "yellow")
    return [
        Index(
            f"bench-logs-{(T0 - timedelta(days=i)).strftime('%Y.%m.%d')}-{i}",
            health[i % 4],
            "open",
            100 + i,
            4096 * (i + 1),
            1,
            0,
            T0 - timedelta(days=i),
            f"uuid-{i}",
        )
        for i in range(n)
    ]


def others() -> dict[str, Any]:
    return {
        "silences": [Silence("s1", "active", ['n="0"'], T0, T0, "ops@host", "bench")],
        "queues": [
            QueueDepth("celery", 'queue="default"', 1450, 1000, None, "warning"),
            QueueDepth("mail", "total", 140, 100, None, "warning"),
        ],
        "cluster": ClusterHealth("bench", "yellow", 1, 1, 10, 10, 0, 0, 2, 0, 83.3),
        "services": [
            ServiceHealth("loki", "http://localhost:3100/ready", True, 200, 3.2, ""),
            ServiceHealth("kibana", "http://localhost:5601/api/status", False, None, None, "x"),
        ],
        "grafana": {"version": "11.2.0", "database": "ok", "org": {"id": 1, "name": "Main"}},
    }


def build_state(size: str) -> LiveState:
    n_targets, n_alerts, n_indices = SIZES[size]
    state = LiveState()
    values: dict[str, Any] = {
        "targets": targets(n_targets),
        "alerts": alerts(n_alerts),
        "indices": indices(n_indices),
        **others(),
    }
    for name, value in values.items():
        src = state[name]
        src.value = value
        src.last_ok = T0
        src.latency_ms = 5.0
    return state


def next_values(state: LiveState, tick: int) -> dict[str, Any]:
    """Fresh copies of every record (a poll parses them anew), about 1% changed."""
    rng = random.Random(tick)
    out: dict[str, Any] = {}
    for name in ("targets", "alerts", "indices"):
        fresh = [copy.copy(r) for r in state[name].value]
        for i in rng.sample(range(len(fresh)), max(1, int(len(fresh) * CHANGED_SHARE))):
            r = fresh[i]
            if isinstance(r, Target):
                r.last_scrape = T0 + timedelta(seconds=tick)
                r.last_scrape_duration = rng.random() / 100
            elif isinstance(r, Alert):
                r.updated_at = T0 + timedelta(seconds=tick)
                r.annotations = {"summary": f"changed at tick {tick}"}
            elif isinstance(r, Index):
                r.docs_count += 1
        out[name] = fresh
    for name, value in others().items():
        out[name] = value
    return out


async def run(size: str, seconds: float, profile: str | None) -> dict[str, Any]:
    settings = load(
        environ={"XDG_CONFIG_HOME": "/nonexistent", "XDG_STATE_HOME": "/nonexistent"}
    ).settings
    state = build_state(size)
    app = ProbeApp(settings, interval=5.0, poll=False, state=state)
    out: dict[str, Any] = {"size": size, "rows": dict(zip(("targets", "alerts", "indices"),
                                                          SIZES[size], strict=True))}  # fmt: skip
    renders = {"count": 0}
    async with app.run_test(size=(200, 50)) as pilot:
        for mode in ("alerts", "indices", "targets", "overview"):  # every big table rendered
            t0 = time.perf_counter()
            app.switch_mode(mode)
            await pilot.pause()
            out[f"first_render_ms_{mode}"] = round((time.perf_counter() - t0) * 1000, 1)
            await pilot.pause(0.3)

        async def keep_updating() -> None:
            tick = 0
            while True:
                tick += 1
                t_next = time.perf_counter() + TICK
                values = await asyncio.to_thread(next_values, app.state, tick)
                for name, value in values.items():
                    app.state[name].value = value
                    app.source_changed(name, False)
                    renders["count"] += 1
                    await asyncio.sleep(0)  # sources land one by one, as polls do
                await asyncio.sleep(max(0.0, t_next - time.perf_counter()))

        profiler: Any = None
        for mode in ("overview", "targets"):
            app.switch_mode(mode)
            await pilot.pause(0.3)
            if profile == mode:
                try:
                    from pyinstrument import Profiler

                    profiler = Profiler(async_mode="disabled")
                    profiler.start()
                except ImportError:
                    profiler = None
            updater = asyncio.create_task(keep_updating())
            lat: list[float] = []
            renders["count"] = 0
            deadline = time.perf_counter() + seconds / 2
            while time.perf_counter() < deadline:
                app.handled_at = 0.0
                t0 = time.perf_counter()
                press(app)
                while app.handled_at == 0.0:
                    await asyncio.sleep(0.001)
                lat.append((app.handled_at - t0) * 1000)
                await asyncio.sleep(0.02)
            updater.cancel()
            out[f"latency_ms_{mode}"] = {
                "p50": round(pct(lat, 50), 1), "p99": round(pct(lat, 99), 1),
                "max": round(max(lat), 1), "n": len(lat), "updates": renders["count"],
            }  # fmt: skip
            if profiler is not None:
                profiler.stop()
                path = Path(__file__).with_name("work") / f"tui_micro_{size}_{profile}.txt"
                path.parent.mkdir(exist_ok=True)
                path.write_text(profiler.output_text(unicode=True, show_all=False))
                out["profile"] = str(path)
                profiler = None
            await pilot.pause(0.3)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tui_micro")
    parser.add_argument("--size", choices=sorted(SIZES), default="large")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--profile", choices=("overview", "targets", "startup"), default=None)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.size, args.seconds, args.profile))))


if __name__ == "__main__":
    main()
