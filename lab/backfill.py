"""Thirty days of history for the lab Prometheus, as OpenMetrics for promtool.

`lab.py up` writes this file and turns it into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics` before Prometheus starts, so the weekly,
monthly and quarterly checks have a past to read. The data is deterministic (seeded) and
shaped to contain what those checks look for:

* ALERTS history: a flapping alert (HighRequestLatency), a daily one (CeleryQueueBackup),
  one firing all of the last week (DiskUsageHigh on monitoring-2), one never firing.
* A filesystem on `monitoring-2:9100` that fills steadily and runs out within the quarter.
* Request latency quantiles, request counters, Celery queue and Postfix mail queue depths.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

STEP = 300  # seconds between samples
DAYS = 30

Labels = dict[str, str]


def _fmt_labels(labels: Labels) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _diurnal(ts: int) -> float:
    """0..1 load curve peaking mid-afternoon UTC."""
    hour = (ts % 86400) / 3600
    return 0.5 + 0.5 * math.sin((hour - 8) / 24 * 2 * math.pi)


class Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.series: list[tuple[Labels, Callable[[int], float | None]]] = []

    def add(self, labels: Labels, fn: Callable[[int], float | None]) -> None:
        self.series.append((labels, fn))

    def lines(self, times: list[int]) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        suffix = "_total" if self.kind == "counter" else ""
        for labels, fn in self.series:
            lbl = _fmt_labels(labels)
            for ts in times:
                value = fn(ts)
                if value is not None:
                    yield f"{self.name}{suffix}{lbl} {value:.6g} {ts}"


def families(start: int, end: int) -> list[Family]:
    rng = random.Random(20260124)
    noise = {ts: rng.random() for ts in range(start, end + 1, STEP)}
    span = end - start

    def days_ago(ts: int) -> float:
        return (end - ts) / 86400

    out: list[Family] = []

    alerts = Family("ALERTS", "gauge", "Backfilled alert state history.")

    def flapping(ts: int) -> float | None:
        # Fires in 10-minute bursts every 40 minutes between 12:00 and 18:00 UTC.
        hour = (ts % 86400) / 3600
        return 1.0 if 12 <= hour < 18 and (ts // 600) % 4 == 0 else None

    def daily(ts: int) -> float | None:
        hour = (ts % 86400) / 3600
        return 1.0 if 14 <= hour < 15 and days_ago(ts) % 3 < 1 else None

    def last_week(ts: int) -> float | None:
        return 1.0 if days_ago(ts) <= 7 else None

    alerts.add(
        {
            "alertname": "HighRequestLatency",
            "alertstate": "firing",
            "severity": "warning",
            "job": "email-service",
        },
        flapping,
    )
    alerts.add(
        {
            "alertname": "CeleryQueueBackup",
            "alertstate": "firing",
            "severity": "warning",
            "job": "pushgateway",
            "queue": "default",
        },
        daily,
    )
    alerts.add(
        {
            "alertname": "DiskUsageHigh",
            "alertstate": "firing",
            "severity": "warning",
            "instance": "monitoring-2:9100",
            "job": "node",
            "mountpoint": "/var/lib/prometheus",
        },
        last_week,
    )
    out.append(alerts)

    size = 100 * 2**30
    fs_labels = {
        "instance": "monitoring-2:9100",
        "job": "node",
        "device": "/dev/sdb1",
        "fstype": "ext4",
        "mountpoint": "/var/lib/prometheus",
    }
    fs_size = Family("node_filesystem_size_bytes", "gauge", "Filesystem size in bytes.")
    fs_size.add(fs_labels, lambda ts: float(size))
    fs_avail = Family("node_filesystem_avail_bytes", "gauge", "Filesystem space available.")
    # 55 % used thirty days ago, 88 % used now: full in well under a quarter.
    fs_avail.add(
        fs_labels,
        lambda ts: size * (1 - (0.55 + 0.33 * (ts - start) / span)) - noise[ts] * 2**26,
    )
    out += [fs_size, fs_avail]

    latency = Family("http_request_duration_seconds", "gauge", "Request latency quantiles.")
    for q, base in (("0.5", 0.08), ("0.95", 0.45), ("0.99", 1.2)):
        latency.add(
            {"job": "email-service", "instance": "email-service:5000", "quantile": q},
            lambda ts, b=base: b * (0.7 + 0.6 * _diurnal(ts)) + b * 0.2 * noise[ts],
        )
    out.append(latency)

    requests = Family("http_requests", "counter", "HTTP requests by status class.")
    for status, rate in (("2xx", 40.0), ("5xx", 0.6)):
        requests.add(
            {"job": "email-service", "instance": "email-service:5000", "status": status},
            lambda ts, r=rate: r * (ts - start),
        )
    out.append(requests)

    celery = Family("celery_queue_length", "gauge", "Pending Celery tasks per queue.")
    celery.add(
        {"job": "pushgateway", "queue": "default"},
        lambda ts: round(300 + 900 * _diurnal(ts) + 200 * noise[ts]),
    )
    celery.add(
        {"job": "pushgateway", "queue": "emails"},
        lambda ts: round(50 + 150 * _diurnal(ts) + 30 * noise[ts]),
    )
    out.append(celery)

    mailq = Family("postfix_mail_queue_size", "gauge", "Messages in the Postfix queue.")
    mailq.add({"job": "pushgateway"}, lambda ts: round(20 + 60 * _diurnal(ts) + 40 * noise[ts]))
    out.append(mailq)
    return out


def write(path: Path, end: int) -> int:
    """Write DAYS of history ending at `end` (unix seconds); return the sample count."""
    end -= end % STEP
    start = end - DAYS * 86400
    times = list(range(start, end + 1, STEP))
    count = 0
    with path.open("w") as fh:
        for family in families(start, end):
            for line in family.lines(times):
                fh.write(line + "\n")
                count += 1
        fh.write("# EOF\n")
    return count


if __name__ == "__main__":
    import time

    print(write(Path(sys.argv[1]), int(time.time()) - 600))
