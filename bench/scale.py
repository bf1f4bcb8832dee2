"""Scale the bench lab up to one of two sizes (issue 8's "current" one, issue 18's
"large" one, five to ten times bigger), and back down.

* Prometheus: 2,000 / 10,000 scrape targets (file_sd), each a path on a bench-only nginx
  serving one static metrics file; a job appended to the lab's rendered prometheus.yml +
  reload, the way lab/faults.py adds its jobs. Scraped every 60 s.
* Alertmanager: 1,000 / 5,000 active alerts through POST /api/v2/alerts, re-posted every
  60 s.
* Elasticsearch: 1,000 / 5,000 daily indices `bench-logs-YYYY.MM.dd` (one shard, no
  replica) with a few small docs each.
* Grafana double: 500 dashboards in 10 folders (both sizes).

Scaling up from the current size to the large one adds what is missing; `down()` takes all
of it away again (the lab's demo data is left as it was).

`down()` takes all of it away again (the lab's demo data is left as it was).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import GRAFANA_AUTH, Ctx, check, http, log, wait_for


@dataclass(frozen=True)
class Size:
    name: str
    targets: int
    alerts: int
    indices: int
    dashboards: int = 500


SIZES = {
    "current": Size("current", targets=2000, alerts=1000, indices=1000),
    "large": Size("large", targets=10_000, alerts=5000, indices=5000),
}
CURRENT = SIZES["current"]
TARGETS = CURRENT.targets  # the current size's figures (the retention measure uses them)
ALERTS = CURRENT.alerts
INDICES = CURRENT.indices
DASHBOARDS = CURRENT.dashboards
FOLDERS = 10
INDEX_PREFIX = "bench-logs-"
TEMPLATE = "opskit-bench-logs"
FOLDER_PREFIX = "bench-folder-"
JOB_MARK = "# opskit-bench job"
NGINX_BASE_PORT = 9099
SCRAPE_INTERVAL = "60s"


def nginx_port(ctx: Ctx) -> int:
    return NGINX_BASE_PORT + ctx.offset


def bench_dir(ctx: Ctx) -> Path:
    d = ctx.state / "bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


# --------------------------------------------------------------------------- Prometheus

METRICS = """\
# HELP bench_up A constant gauge.
# TYPE bench_up gauge
bench_up 1
# HELP bench_requests_total A constant counter.
# TYPE bench_requests_total counter
bench_requests_total{code="200"} 1027
bench_requests_total{code="500"} 3
"""

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        location /metrics/ {{ root {d}; try_files /metrics.txt =404; }}
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def start_nginx(ctx: Ctx) -> None:
    d = bench_dir(ctx)
    (d / "tmp").mkdir(exist_ok=True)
    (d / "metrics.txt").write_text(METRICS)
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, port=nginx_port(ctx)))
    stop_nginx(ctx)
    log_file = (d / "nginx.out").open("ab")
    proc = subprocess.Popen(
        ["/usr/sbin/nginx", "-p", str(d), "-c", str(d / "nginx.conf")],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (d / "nginx.started").write_text(str(proc.pid))

    def answers() -> bool:
        try:
            return http("GET", f"http://127.0.0.1:{nginx_port(ctx)}/metrics/1").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, 15, "the bench nginx", 0.2)


def stop_nginx(ctx: Ctx) -> None:
    marker = bench_dir(ctx) / "nginx.started"
    if not marker.exists():
        return
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.killpg(int(marker.read_text()), signal.SIGTERM)
    marker.unlink()


def add_targets(ctx: Ctx, count: int = TARGETS) -> None:
    d = bench_dir(ctx)
    targets = [
        {
            "targets": [f"127.0.0.1:{nginx_port(ctx)}"],
            "labels": {"__metrics_path__": f"/metrics/{n}", "instance": f"bench-{n:04d}"},
        }
        for n in range(count)
    ]
    (d / "targets.json").write_text(json.dumps(targets))
    job = (
        f"  {JOB_MARK}\n  - job_name: bench\n    scrape_interval: {SCRAPE_INTERVAL}\n"
        f"    scrape_timeout: 10s\n    file_sd_configs:\n      - files: ['{d}/targets.json']\n"
    )
    _rewrite_prometheus(ctx, job)

    def loaded() -> bool:
        body = check(http("GET", f"{ctx.prometheus}/api/v1/targets?state=active"), "targets")
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return sum(bool(t["labels"].get("job") == "bench") for t in active) >= count

    wait_for(loaded, 180, f"{count} bench targets in Prometheus", 2.0)


def remove_targets(ctx: Ctx) -> None:
    _rewrite_prometheus(ctx, "")


def _rewrite_prometheus(ctx: Ctx, job: str) -> None:
    path = ctx.state / "prometheus" / "prometheus.yml"
    text = path.read_text()
    if JOB_MARK in text:
        text = text[: text.index(f"  {JOB_MARK}")]
    if job:
        text = text.rstrip("\n") + "\n" + job
    path.write_text(text)
    check(http("POST", f"{ctx.prometheus}/-/reload"), "prometheus reload")


# --------------------------------------------------------------------------- Alertmanager


def _alerts(ends: datetime, count: int) -> list[dict[str, Any]]:
    # one alertname and job: the lab routes them as one group (one notification attempt)
    starts = datetime.now(UTC) - timedelta(minutes=10)
    return [
        {
            "labels": {
                "alertname": "BenchAlert",
                "job": "bench",
                "instance": f"bench-{n:04d}",
                "severity": "warning" if n % 3 else "info",
                "service": f"svc-{n % 40}",
            },
            "annotations": {
                "summary": f"bench alert {n}",
                "description": f"Synthetic alert {n} posted by make bench.",
            },
            "startsAt": starts.isoformat(),
            "endsAt": ends.isoformat(),
            "generatorURL": f"http://127.0.0.1/graph?g0.expr=bench_up%7Binstance%3D%22{n}%22%7D",
        }
        for n in range(count)
    ]


class AlertPoster:
    """Posts the alerts now and every 60 s (endsAt 5 min ahead) until stopped."""

    def __init__(self, ctx: Ctx, count: int = ALERTS) -> None:
        self.ctx = ctx
        self.count = count
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def post(self, ends: datetime, count: int | None = None) -> None:
        url = f"{self.ctx.alertmanager}/api/v2/alerts"
        alerts = _alerts(ends, self.count if count is None else count)
        for start in range(0, len(alerts), 1000):
            check(http("POST", url, alerts[start : start + 1000]), "post alerts")

    def start(self) -> None:
        # a larger size's alerts left by an earlier --keep run: resolve those past ours
        extra = _alerts(datetime.now(UTC) - timedelta(seconds=1), max_alerts())[self.count :]
        if extra:
            url = f"{self.ctx.alertmanager}/api/v2/alerts"
            for start in range(0, len(extra), 1000):
                check(http("POST", url, extra[start : start + 1000]), "resolve alerts")
        self.post(datetime.now(UTC) + timedelta(minutes=5))

        def active() -> bool:
            body = check(
                http("GET", f"{self.ctx.alertmanager}/api/v2/alerts?filter=job%3D%22bench%22"),
                "alerts",
            )
            return len(body) >= self.count

        wait_for(active, 120, f"{self.count} active alerts", 0.5)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.wait(60):
            try:
                self.post(datetime.now(UTC) + timedelta(minutes=5))
            except Exception as exc:  # keep going: the next post may work
                log(f"re-posting alerts failed: {exc}")

    def pause(self) -> None:
        """Stop re-posting (the alerts stay active until their endsAt)."""
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(5)

    def stop(self) -> None:
        self.pause()
        self.post(datetime.now(UTC) - timedelta(seconds=1), max_alerts())  # resolve them all


def max_alerts() -> int:
    return max(s.alerts for s in SIZES.values())


# --------------------------------------------------------------------------- Elasticsearch


def index_names(days: int = INDICES) -> list[str]:
    today = datetime.now(UTC).date()
    return [f"{INDEX_PREFIX}{today - timedelta(days=n):%Y.%m.%d}" for n in range(days)]


def prepare_elasticsearch(ctx: Ctx) -> None:
    es = ctx.elasticsearch
    template = {
        "index_patterns": [f"{INDEX_PREFIX}*"],
        "priority": 20,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            # the docs' fields mapped up front: no mapping update (cluster state) per index
            "mappings": {
                "properties": {
                    "@timestamp": {"type": "date"},
                    "level": {"type": "keyword"},
                    "message": {"type": "text"},
                }
            },
        },
    }
    check(http("PUT", f"{es}/_index_template/{TEMPLATE}", template), "index template")
    # 1,000 (5,000) more single-shard indices pass the default cap of 1,000 shards a node
    # and empty primaries start 4 at a time by default: the large size's 5,000 take minutes
    settings = {"persistent": {"cluster.max_shards_per_node": 8000, RECOVERIES: 64}}
    check(http("PUT", f"{es}/_cluster/settings", settings), "cluster settings")


def create_indices(ctx: Ctx, names: list[str]) -> None:
    """Create the indices by bulk-indexing three small docs into each: Elasticsearch
    auto-creates them (the template: one shard, no replica) and batches the auto-creations
    of one request into a few cluster-state updates, where a PUT per index is an update
    each (about 3 a second on this machine once thousands exist). Docs have fixed ids, so
    those refused (a shard not active in time) are sent again without duplicates."""
    es = ctx.elasticsearch
    pending = list(names)
    for _attempt in range(6):
        refused: dict[str, str] = {}
        for start in range(0, len(pending), BULK_INDICES):
            refused |= _bulk_docs(ctx, pending[start : start + BULK_INDICES])
        if not refused:
            break
        log(f"  {len(refused)} indices refused docs ({next(iter(refused.values()))}), again")
        missing = [n for n, kind in refused.items() if kind == "index_not_found_exception"]
        if missing:  # auto-creation off: one PUT each, 16 at a time

            def create(name: str) -> None:
                resp = http("PUT", f"{es}/{name}?wait_for_active_shards=0")
                if resp.status_code >= 300 and "already_exists" not in resp.text:
                    check(resp, f"create {name}")

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(create, missing))
        pending = sorted(refused)
    else:
        raise RuntimeError(f"bulk load failed for {len(pending)} indices, e.g. {pending[0]}")
    check(
        http("GET", f"{es}/_cluster/health?wait_for_status=green&timeout=300s"),
        "cluster health",
    )
    check(http("POST", f"{es}/{INDEX_PREFIX}*/_refresh"), "refresh")


RECOVERIES = "cluster.routing.allocation.node_initial_primaries_recoveries"
BULK_INDICES = 250  # indices a bulk request creates


def _bulk_docs(ctx: Ctx, names: list[str]) -> dict[str, str]:
    """Index each name's three docs; the indices that refused one, with the error type."""
    lines: list[str] = []
    for name in names:
        day = name.removeprefix(INDEX_PREFIX).replace(".", "-")
        for i in range(3):
            lines.append(json.dumps({"index": {"_index": name, "_id": f"d{i}"}}))
            doc = {"@timestamp": f"{day}T0{i}:00:00Z", "level": "INFO", "message": f"m{i}"}
            lines.append(json.dumps(doc))
    body = check(
        http(
            "POST",
            f"{ctx.elasticsearch}/_bulk?timeout=5m",
            content=("\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "application/x-ndjson"},
        ),
        "bulk",
    )
    if not body.get("errors"):
        return {}
    return {
        str(item["index"]["_index"]): str(item["index"]["error"].get("type", "?"))
        for item in body["items"]
        if item["index"].get("error")
    }


def existing_indices(ctx: Ctx) -> list[str]:
    url = f"{ctx.elasticsearch}/_cat/indices/{INDEX_PREFIX}*?format=json&h=index"
    return sorted(row["index"] for row in check(http("GET", url), "cat indices"))


def delete_indices(ctx: Ctx, names: list[str]) -> None:
    # by name: Elasticsearch 8 refuses wildcard deletes
    for start in range(0, len(names), 100):
        url = f"{ctx.elasticsearch}/{','.join(names[start : start + 100])}"
        check(http("DELETE", url), "delete")


def drop_elasticsearch(ctx: Ctx) -> None:
    es = ctx.elasticsearch
    delete_indices(ctx, existing_indices(ctx))
    http("DELETE", f"{es}/_index_template/{TEMPLATE}")
    unset = {"persistent": {"cluster.max_shards_per_node": None, RECOVERIES: None}}
    http("PUT", f"{es}/_cluster/settings", unset)


# --------------------------------------------------------------------------- Grafana


def dashboard_model(n: int) -> dict[str, Any]:
    """A dashboard of realistic size: eight Prometheus panels and a templating variable."""
    panels = [
        {
            "id": p + 1,
            "type": "timeseries",
            "title": f"Panel {p} of dashboard {n}",
            "gridPos": {"h": 8, "w": 12, "x": (p % 2) * 12, "y": (p // 2) * 8},
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "targets": [
                {
                    "refId": "A",
                    "expr": f'sum by (code) (rate(bench_requests_total{{instance="$instance",'
                    f'panel="{p}"}}[5m]))',
                    "legendFormat": "{{code}}",
                }
            ],
            "fieldConfig": {"defaults": {"unit": "reqps", "min": 0}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        }
        for p in range(8)
    ]
    return {
        "id": None,
        "uid": f"bench-{n:04d}",
        "title": f"Bench dashboard {n:04d}",
        "tags": ["bench", f"team-{n % 7}"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "type": "query",
                    "query": "label_values(bench_up, instance)",
                    "datasource": {"type": "prometheus", "uid": "prometheus"},
                }
            ]
        },
        "panels": panels,
    }


def add_dashboards(ctx: Ctx) -> None:
    g = ctx.grafana
    for f in range(FOLDERS):
        uid = f"{FOLDER_PREFIX}{f}"
        resp = http("GET", f"{g}/api/folders/{uid}", auth=GRAFANA_AUTH)
        if resp.status_code == 404:
            body = {"uid": uid, "title": f"Bench folder {f}"}
            check(http("POST", f"{g}/api/folders", body, auth=GRAFANA_AUTH), "create folder")

    def save(n: int) -> None:
        body = {
            "dashboard": dashboard_model(n),
            "folderUid": f"{FOLDER_PREFIX}{n % FOLDERS}",
            "overwrite": True,
        }
        check(http("POST", f"{g}/api/dashboards/db", body, auth=GRAFANA_AUTH), "save dashboard")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(save, range(DASHBOARDS)))


def dashboard_count(ctx: Ctx) -> int:
    url = f"{ctx.grafana}/api/search?type=dash-db&limit=5000"
    return len(check(http("GET", url, auth=GRAFANA_AUTH), "search"))


def drop_dashboards(ctx: Ctx) -> None:
    for f in range(FOLDERS):
        http("DELETE", f"{ctx.grafana}/api/folders/{FOLDER_PREFIX}{f}", auth=GRAFANA_AUTH)


# --------------------------------------------------------------------------- all of it


def up(ctx: Ctx, size: Size = CURRENT, poster: AlertPoster | None = None) -> AlertPoster:
    """Scale up to `size` (from nothing, or from a smaller size whose poster is given:
    it is replaced by one posting the new count)."""
    log(
        f"scaling up to the {size.name} size: {size.targets} targets, {size.alerts} alerts, "
        f"{size.indices} indices, {size.dashboards} dashboards"
    )
    t0 = time.monotonic()
    start_nginx(ctx)
    add_targets(ctx, size.targets)
    log(f"  targets loaded ({time.monotonic() - t0:.0f} s)")
    if poster is not None:
        poster.pause()
    poster = AlertPoster(ctx, size.alerts)
    poster.start()
    log(f"  alerts active ({time.monotonic() - t0:.0f} s)")
    prepare_elasticsearch(ctx)
    wanted, have = set(index_names(size.indices)), set(existing_indices(ctx))
    delete_indices(ctx, sorted(have - wanted))  # a larger size's, left by --keep
    missing = sorted(wanted - have)
    create_indices(ctx, missing)
    log(f"  {len(missing)} indices created ({time.monotonic() - t0:.0f} s)")
    if dashboard_count(ctx) < size.dashboards:
        add_dashboards(ctx)
    return poster


def down(ctx: Ctx, poster: AlertPoster | None) -> None:
    log("scaling down: bench targets, alerts, indices and dashboards removed")
    if poster is not None:
        poster.stop()
    remove_targets(ctx)
    stop_nginx(ctx)
    drop_elasticsearch(ctx)
    drop_dashboards(ctx)
