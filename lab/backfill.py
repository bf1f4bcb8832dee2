"""Thirty days of history for the lab Prometheus, as OpenMetrics for promtool.

`lab.py up` writes this file and turns it into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics` before Prometheus starts, so the weekly,
monthly and quarterly checks have a past to read. The data is deterministic (seeded) and
shaped to contain what those checks look for:

* ALERTS history: a flapping alert (HighRequestLatency), a daily one (CeleryQueueBackup),
  one firing all of the last week (DiskUsageHigh on monitoring-2), one never firing.
* A filesystem on `monitoring-2:9100` that fills steadily and runs out within the quarter.
* The email services' history under the names their live exporters use (docs/exporters.md):
  prometheus-flask-exporter's request histogram and counter, danihodovic/celery-exporter's
  celery_queue_length{queue_name}, the postfix exporter's showq histogram,
  postgres_exporter's pg_stat_activity_max_tx_duration and redis_exporter's keyspace
  hit/miss counters.
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
        self.series: list[tuple[str, Labels, Callable[[int], float | None]]] = []

    def add(self, labels: Labels, fn: Callable[[int], float | None], suffix: str = "") -> None:
        """`suffix`: a histogram's _bucket/_count/_sum; counters get _total themselves."""
        self.series.append((suffix or ("_total" if self.kind == "counter" else ""), labels, fn))

    def lines(self, times: list[int]) -> Iterator[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for suffix, labels, fn in self.series:
            lbl = _fmt_labels(labels)
            for ts in times:
                value = fn(ts)
                if value is not None:
                    yield f"{self.name}{suffix}{lbl} {value:.10g} {ts}"


# prometheus_client's default buckets, which prometheus-flask-exporter uses
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2))))


def _cumulative(times: list[int], per_step: Callable[[int], float]) -> dict[int, float]:
    """A counter's value at each time: the running sum of what each step adds."""
    total, out = 0.0, {}
    for ts in times:
        total += per_step(ts)
        out[ts] = total
    return out


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
            "job": "celery",
            "queue_name": "default",
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

    times = list(range(start, end + 1, STEP))
    app = {"job": "email-service", "instance": "email-service:5000"}

    # prometheus-flask-exporter: a latency histogram whose median follows the day, with a
    # tail (sigma 1.16: P95 ~0.5 s, P99 ~1.2 s at a 0.08 s median), and request counters.
    def rate(ts: int) -> float:  # requests per second
        return 20 + 40 * _diurnal(ts)

    def median(ts: int) -> float:
        return 0.08 * (0.7 + 0.6 * _diurnal(ts)) * (1 + 0.2 * noise[ts])

    sigma = 1.16
    route = {**app, "method": "GET", "path": "/api/emails", "status": "200"}
    latency = Family(
        "flask_http_request_duration_seconds", "histogram", "Flask HTTP request duration."
    )
    for le in (*BUCKETS, math.inf):
        counts = _cumulative(
            times,
            lambda ts, le=le: (
                rate(ts) * STEP * (1.0 if le == math.inf else _lognormal_cdf(le, median(ts), sigma))
            ),
        )
        label = "+Inf" if le == math.inf else f"{le:g}"
        latency.add({**route, "le": label}, counts.__getitem__, "_bucket")
    totals = _cumulative(times, lambda ts: rate(ts) * STEP)
    latency.add(route, totals.__getitem__, "_count")
    seconds = _cumulative(times, lambda ts: rate(ts) * STEP * median(ts) * math.exp(sigma**2 / 2))
    latency.add(route, seconds.__getitem__, "_sum")
    out.append(latency)

    requests = Family("flask_http_request", "counter", "Total Flask HTTP requests.")
    for status, share in (("200", 0.97), ("404", 0.015), ("500", 0.015)):
        counts = _cumulative(times, lambda ts, f=share: rate(ts) * STEP * f)
        requests.add({**app, "method": "GET", "status": status}, counts.__getitem__)
    out.append(requests)

    # danihodovic/celery-exporter: celery_queue_length{queue_name}
    celery = Family("celery_queue_length", "gauge", "The number of message in broker queue.")
    worker = {"job": "celery", "instance": "celery-exporter:9808"}
    celery.add(
        {**worker, "queue_name": "default"},
        lambda ts: round(300 + 900 * _diurnal(ts) + 200 * noise[ts]),
    )
    celery.add(
        {**worker, "queue_name": "emails"},
        lambda ts: round(50 + 150 * _diurnal(ts) + 30 * noise[ts]),
    )
    out.append(celery)

    # kumina/postfix_exporter: a histogram of message sizes per showq queue
    mailq = Family("postfix_showq_message_size_bytes", "histogram", "Size of messages in queue.")
    postfix = {"job": "postfix", "instance": "postfix-exporter:9154"}
    for queue, base in (("deferred", 20), ("active", 2)):

        def depth(ts: int, b: int = base) -> float:
            return float(round(b + 3 * b * _diurnal(ts) + 2 * b * noise[ts]))

        labels = {**postfix, "queue": queue}
        mailq.add({**labels, "le": "+Inf"}, depth, "_bucket")
        mailq.add(labels, depth, "_count")
        mailq.add(labels, lambda ts, d=depth: d(ts) * 4096, "_sum")
    out.append(mailq)

    # prometheus-postgres-exporter and prometheus-redis-exporter, for the baselines
    pg = Family(
        "pg_stat_activity_max_tx_duration",
        "gauge",
        "max duration in seconds any active transaction has been running",
    )
    pg.add(
        {
            "job": "postgres",
            "instance": "postgres-exporter:9187",
            "datname": "emailclient",
            "state": "active",
        },
        lambda ts: 0.2 + 0.6 * _diurnal(ts) * noise[ts],
    )
    out.append(pg)
    redis = {"job": "redis", "instance": "redis-exporter:9121"}
    for name, share in (("redis_keyspace_hits", 0.93), ("redis_keyspace_misses", 0.07)):
        fam = Family(name, "counter", f"{name} from INFO stats")
        counts = _cumulative(times, lambda ts, f=share: 50 * rate(ts) * STEP * f)
        fam.add(redis, counts.__getitem__)
        out.append(fam)
    return out


def write(path: Path, end: int) -> int:
    """Write DAYS of history ending at `end` (unix seconds); return the sample count."""
    end -= end % STEP + 900  # 15 min before `end`: never within an instant query's lookback
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
