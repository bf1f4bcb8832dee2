"""Scale the bench lab up to the large stack of issue 8, and back down.

* Prometheus: 2,000 scrape targets (file_sd), each a path on a bench-only nginx serving
  one static metrics file; a job appended to the lab's rendered prometheus.yml + reload,
  the way lab/faults.py adds its jobs.
* Alertmanager: 1,000 active alerts through POST /api/v2/alerts, re-posted every 60 s.
* Elasticsearch: 1,000 daily indices `bench-logs-YYYY.MM.dd` with a few small docs each.
* Grafana double: 500 dashboards in 10 folders.

`down()` takes all of it away again (the lab's demo data is left as it was).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import GRAFANA_AUTH, Ctx, check, http, log, wait_for

TARGETS = 2000
ALERTS = 1000
INDICES = 1000
DASHBOARDS = 500
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


def add_targets(ctx: Ctx) -> None:
    d = bench_dir(ctx)
    targets = [
        {
            "targets": [f"127.0.0.1:{nginx_port(ctx)}"],
            "labels": {"__metrics_path__": f"/metrics/{n}", "instance": f"bench-{n:04d}"},
        }
        for n in range(TARGETS)
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
        return sum(bool(t["labels"].get("job") == "bench") for t in active) >= TARGETS

    wait_for(loaded, 120, f"{TARGETS} bench targets in Prometheus")


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


def _alerts(ends: datetime) -> list[dict[str, Any]]:
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
        for n in range(ALERTS)
    ]


class AlertPoster:
    """Posts the alerts now and every 60 s (endsAt 5 min ahead) until stopped."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def post(self, ends: datetime) -> None:
        url = f"{self.ctx.alertmanager}/api/v2/alerts"
        check(http("POST", url, _alerts(ends)), "post alerts")

    def start(self) -> None:
        self.post(datetime.now(UTC) + timedelta(minutes=5))

        def active() -> bool:
            body = check(
                http("GET", f"{self.ctx.alertmanager}/api/v2/alerts?filter=job%3D%22bench%22"),
                "alerts",
            )
            return len(body) >= ALERTS

        wait_for(active, 60, f"{ALERTS} active alerts", 0.5)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.wait(60):
            try:
                self.post(datetime.now(UTC) + timedelta(minutes=5))
            except Exception as exc:  # keep going: the next post may work
                log(f"re-posting alerts failed: {exc}")

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(5)
        self.post(datetime.now(UTC) - timedelta(seconds=1))  # resolve them all


# --------------------------------------------------------------------------- Elasticsearch


def index_names(days: int = INDICES) -> list[str]:
    today = datetime.now(UTC).date()
    return [f"{INDEX_PREFIX}{today - timedelta(days=n):%Y.%m.%d}" for n in range(days)]


def prepare_elasticsearch(ctx: Ctx) -> None:
    es = ctx.elasticsearch
    template = {
        "index_patterns": [f"{INDEX_PREFIX}*"],
        "priority": 20,
        "template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0}},
    }
    check(http("PUT", f"{es}/_index_template/{TEMPLATE}", template), "index template")
    # 1,000 more single-shard indices pass the default cap of 1,000 shards per node
    settings = {"persistent": {"cluster.max_shards_per_node": 5000}}
    check(http("PUT", f"{es}/_cluster/settings", settings), "cluster settings")


def create_indices(ctx: Ctx, names: list[str]) -> None:
    """Create the indices (16 at a time: each is a cluster-state update), then give each
    three small docs with bulk requests."""
    es = ctx.elasticsearch

    def create(name: str) -> None:
        resp = http("PUT", f"{es}/{name}?wait_for_active_shards=0")
        if resp.status_code >= 300 and "already_exists" not in resp.text:
            check(resp, f"create {name}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, names))
    check(
        http("GET", f"{es}/_cluster/health?wait_for_status=green&timeout=300s"),
        "cluster health",
    )
    for start in range(0, len(names), 250):
        lines: list[str] = []
        for name in names[start : start + 250]:
            day = name.removeprefix(INDEX_PREFIX).replace(".", "-")
            for i in range(3):
                lines.append(json.dumps({"index": {"_index": name}}))
                doc = {"@timestamp": f"{day}T0{i}:00:00Z", "level": "INFO", "message": f"m{i}"}
                lines.append(json.dumps(doc))
        body = check(
            http(
                "POST",
                f"{es}/_bulk",
                content=("\n".join(lines) + "\n").encode(),
                headers={"Content-Type": "application/x-ndjson"},
            ),
            "bulk",
        )
        if body.get("errors"):
            first = next(i for i in body["items"] if i["index"].get("error"))
            raise RuntimeError(f"bulk load failed: {first}")
    check(http("POST", f"{es}/{INDEX_PREFIX}*/_refresh"), "refresh")


def existing_indices(ctx: Ctx) -> list[str]:
    url = f"{ctx.elasticsearch}/_cat/indices/{INDEX_PREFIX}*?format=json&h=index"
    return sorted(row["index"] for row in check(http("GET", url), "cat indices"))


def drop_elasticsearch(ctx: Ctx) -> None:
    es = ctx.elasticsearch
    names = existing_indices(ctx)  # by name: Elasticsearch 8 refuses wildcard deletes
    for start in range(0, len(names), 100):
        check(http("DELETE", f"{es}/{','.join(names[start : start + 100])}"), "delete")
    http("DELETE", f"{es}/_index_template/{TEMPLATE}")
    http("PUT", f"{es}/_cluster/settings", {"persistent": {"cluster.max_shards_per_node": None}})


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


def up(ctx: Ctx) -> AlertPoster:
    log(f"scaling up: {TARGETS} targets, {ALERTS} alerts, {INDICES} indices, {DASHBOARDS} dash")
    start_nginx(ctx)
    add_targets(ctx)
    poster = AlertPoster(ctx)
    poster.start()
    prepare_elasticsearch(ctx)
    missing = sorted(set(index_names()) - set(existing_indices(ctx)))
    create_indices(ctx, missing)
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
