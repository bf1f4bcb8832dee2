"""Bytes per hour of an `opskit record` file for a 2,000-target stack (docs/tui.md).

Synthetic records built with opskit's models (no servers): 2,000 scrape targets (2 % down
with an error), 40 alerts, 5 silences, 6 queue series, 300 indices, 10 services and
Grafana; 60 polls of every source 60 s apart (one hour at `--interval 60`), each poll with
fresh scrape times and durations as Prometheus gives them. Prints the file's size.

    .venv/bin/python -m bench.record_size [--targets 2000] [--polls 60] [--spacing 60]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opskit.live import SOURCES, SourceState
from opskit.models import (
    Alert,
    ClusterHealth,
    Index,
    QueueDepth,
    ServiceHealth,
    Silence,
    Target,
)
from opskit.models_grafana import Org
from opskit.record import Recorder, ReplaySource, file_size

T0 = datetime(2026, 1, 24, 3, 0, tzinfo=UTC)
JOBS = ("node", "cadvisor", "blackbox", "celery", "postfix", "nginx", "app", "redis")


def targets(n: int, now: datetime, rng: random.Random) -> list[Target]:
    out = []
    for i in range(n):
        job = JOBS[i % len(JOBS)]
        instance = f"10.{i // 250}.{i % 250}.{(i * 7) % 250}:9100"
        down = i % 50 == 0
        out.append(
            Target(
                job,
                instance,
                f"http://{instance}/metrics",
                "down" if down else "up",
                now - timedelta(seconds=rng.uniform(0, 15)),
                rng.uniform(0.002, 0.4),
                f'Get "http://{instance}/metrics": dial tcp: connection refused' if down else "",
                "15s",
                "10s",
                {"job": job, "instance": instance, "env": "prod", "dc": f"dc{i % 3}"},
            )
        )
    return out


def other_values(now: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "alerts": [
            Alert(f"{i:016x}", f"Alert{i % 12}", ("warning", "critical")[i % 2], "active",
                  {"alertname": f"Alert{i % 12}", "instance": f"10.0.0.{i}:9100", "job": "node"},
                  {"summary": f"something about 10.0.0.{i}", "runbook": "https://wiki/rb"},
                  T0 - timedelta(minutes=i), None, now, "http://prometheus:9090/graph?g0.expr=up",
                  [], [], ["ops"])
            for i in range(40)
        ],
        "silences": [
            Silence(f"s{i}", "active", [f'alertname="Alert{i}"'], T0, T0 + timedelta(hours=4),
                    "ops", "maintenance window")
            for i in range(5)
        ],
        "queues": [
            QueueDepth("celery", f'queue="q{i}"', rng.uniform(0, 2000), 1000.0, 5000.0, "ok",
                       "sum by (queue_name) (celery_queue_length)", "celery-exporter")
            for i in range(6)
        ],
        "cluster": ClusterHealth("prod", "green", 5, 3, 600, 1200, 0, 0, 0, 0, 100.0),
        "indices": [
            Index(f"logs-app{i % 10}-2026.01.{i // 10 + 1:02d}", "green", "open",
                  rng.randint(10**5, 10**7), rng.randint(10**8, 10**10), 1, 1,
                  T0 - timedelta(days=i // 10), f"uuid-{i:08d}")
            for i in range(300)
        ],
        "services": [
            ServiceHealth(f"svc{i}", f"http://svc{i}:8080/health", True, 200,
                          rng.uniform(1, 50), "", "healthy", {"db": "ok", "redis": "ok"})
            for i in range(10)
        ],
        "grafana": {"version": "11.2.0", "database": "ok", "org": Org(1, "Main")},
    }  # fmt: skip


def measure(n_targets: int, polls: int, spacing: float) -> tuple[int, float]:
    rng = random.Random(17)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        rec = Recorder(path, interval=spacing)
        for p in range(polls):
            now = T0 + timedelta(seconds=p * spacing)
            values = {"targets": targets(n_targets, now, rng), **other_values(now, rng)}
            for name in SOURCES:
                src = SourceState(name, value=values[name], last_ok=now, latency_ms=12.0)
                rec.write(src, taken_at=now.timestamp() + SOURCES.index(name) * 0.01)
        rec.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rec.close()
        size = file_size(path)
        replay = ReplaySource(path)
        assert len(replay.instants) == polls
        assert len(replay.state_at(replay.instants[-1])["targets"].value) == n_targets
        replay.close()
    hours = polls * spacing / 3600
    return size, size / hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--polls", type=int, default=60)
    parser.add_argument("--spacing", type=float, default=60.0)
    args = parser.parse_args()
    size, per_hour = measure(args.targets, args.polls, args.spacing)
    print(
        f"{args.targets} targets, {args.polls} polls {args.spacing:g}s apart: "
        f"{size / 1e6:.2f} MB file, {per_hour / 1e6:.2f} MB per hour "
        f"({per_hour * 48 / 1e6:.0f} MB for --keep 48h), "
        f"{size / args.polls / 1e3:.1f} kB per poll of every source"
    )


if __name__ == "__main__":
    main()
