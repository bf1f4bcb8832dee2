#!/usr/bin/env python3
"""Seed a Grafana (the lab double or a real Grafana 11) through its public HTTP API.

    python lab/grafana_seed.py --url http://127.0.0.1:3000 --user admin --password admin \\
        [--prometheus-url http://127.0.0.1:9090]

Idempotent: every object is read first and only created or updated when it is missing or
differs, so running it twice changes nothing the second time. It ensures:

* the folder "Email Client" (uid ``email-client``);
* the Prometheus data source (name "Prometheus", uid ``prometheus``, the default one);
* the monitoring README's two dashboards, ``email-service-overview`` and
  ``system-resources``, in that folder, with PromQL panels that answer against the lab's
  Prometheus (node exporter, Pushgateway, the email-service scrape job).

Prints one line per object (created / updated / unchanged); exits 1 with a message on the
first error. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from typing import Any

JSON = dict[str, Any]

FOLDER_UID = "email-client"
FOLDER_TITLE = "Email Client"
DS_UID = "prometheus"
DS_NAME = "Prometheus"
DS = {"type": "prometheus", "uid": DS_UID}
SEED_MESSAGE = "seeded by lab/grafana_seed.py"


class SeedError(Exception):
    pass


class Grafana:
    def __init__(self, url: str, user: str, password: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {
            "Authorization": f"Basic {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        self.timeout = timeout

    def call(self, method: str, path: str, body: JSON | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers=self.headers
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise SeedError(f"{method} {self.url}{path}: {exc}") from exc
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def expect(self, method: str, path: str, body: JSON | None = None) -> Any:
        status, payload = self.call(method, path, body)
        if status != 200:
            raise SeedError(f"{method} {path} answered {status}: {payload}")
        return payload


# --------------------------------------------------------------------------- dashboards


def thresholds(*steps: tuple[str, float | None]) -> JSON:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def target(ref: str, expr: str, legend: str = "") -> JSON:
    t: JSON = {"refId": ref, "expr": expr, "datasource": dict(DS), "range": True}
    if legend:
        t["legendFormat"] = legend
    return t


def panel(
    pid: int,
    kind: str,
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[JSON],
    unit: str = "short",
    steps: JSON | None = None,
    description: str = "",
    mappings: list[JSON] | None = None,
) -> JSON:
    h, w, x, y = grid
    p: JSON = {
        "id": pid,
        "type": kind,
        "title": title,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "datasource": dict(DS),
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": steps or thresholds(("green", None)),
                "mappings": mappings or [],
            },
            "overrides": [],
        },
    }
    if description:
        p["description"] = description
    if kind == "timeseries":
        p["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "fillOpacity": 10}
    else:
        p["options"] = {
            "colorMode": "background",
            "graphMode": "area",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        }
    return p


def dashboard(uid: str, title: str, tags: list[str], panels: list[JSON], **extra: Any) -> JSON:
    return {
        "uid": uid,
        "title": title,
        "tags": tags,
        "timezone": "browser",
        "schemaVersion": 39,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": []},
        "panels": panels,
        **extra,
    }


def email_service_overview() -> JSON:
    job = 'job="email-service"'
    up_mappings = [
        {
            "type": "value",
            "options": {
                "0": {"text": "DOWN", "color": "red", "index": 0},
                "1": {"text": "UP", "color": "green", "index": 1},
            },
        }
    ]
    panels = [
        panel(1, "stat", "Email service up", (4, 6, 0, 0),
              [target("A", f"up{{{job}}}", "{{instance}}")],
              steps=thresholds(("red", None), ("green", 1)), mappings=up_mappings,
              description="README alert EmailServiceDown: up == 0."),
        panel(2, "stat", "Celery workers online", (4, 6, 6, 0),
              [target("A", "sum(celery_workers_online)")],
              steps=thresholds(("red", None), ("green", 1)),
              description="README alert CeleryWorkerOffline: no worker online."),
        panel(3, "stat", "Postfix mail queue", (4, 6, 12, 0),
              [target("A", "max(postfix_mail_queue_size)")],
              steps=thresholds(("green", None), ("red", 100)),
              description="README alert MailQueueHigh: more than 100 queued messages."),
        panel(4, "stat", "5xx error ratio", (4, 6, 18, 0),
              [target("A", f'sum(rate(http_requests_total{{{job},status=~"5.."}}[5m])) '
                           f"/ sum(rate(http_requests_total{{{job}}}[5m]))")],
              unit="percentunit", steps=thresholds(("green", None), ("red", 0.05)),
              description="README alert HighErrorRate: above 5 %."),
        panel(5, "timeseries", "Requests per second by status", (8, 12, 0, 4),
              [target("A", f"sum by (status) (rate(http_requests_total{{{job}}}[5m]))",
                      "{{status}}")],
              unit="reqps"),
        panel(6, "timeseries", "Request latency", (8, 12, 12, 4),
              [target("A", f"max by (quantile) (http_request_duration_seconds{{{job}}})",
                      "p{{quantile}}"),
               target("B", "histogram_quantile(0.99, sum by (le) "
                           f"(rate(http_request_duration_seconds_bucket{{{job}}}[5m])))",
                      "p99 (histogram)")],
              unit="s", steps=thresholds(("green", None), ("red", 2)),
              description="README alert HighRequestLatency: P99 above 2 s. A: the quantile "
              "gauges the lab pushes; B: the same from a histogram, if the service exports one."),
        panel(7, "timeseries", "Celery queue length", (8, 12, 0, 12),
              [target("A", "sum(celery_queue_length) by (queue)", "{{queue}}")],
              steps=thresholds(("green", None), ("red", 1000)),
              description="README alert CeleryQueueBackup: more than 1000 pending tasks."),
        panel(8, "timeseries", "Postfix mail queue size", (8, 12, 12, 12),
              [target("A", "postfix_mail_queue_size", "{{instance}}")],
              steps=thresholds(("green", None), ("red", 100))),
    ]  # fmt: skip
    return dashboard(
        "email-service-overview",
        "Email Service Overview",
        ["email-client", "email-service", "opskit"],
        panels,
        description="The monitoring README's application dashboard.",
    )


def system_resources() -> JSON:
    inst = 'instance=~"$instance"'
    fs = f'fstype!~"tmpfs|overlay|squashfs",{inst}'
    variable = {
        "name": "instance",
        "label": "Instance",
        "type": "query",
        "datasource": dict(DS),
        "definition": 'label_values(node_uname_info{job="node"}, instance)',
        "query": {
            "query": 'label_values(node_uname_info{job="node"}, instance)',
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }
    panels = [
        panel(1, "timeseries", "CPU usage", (8, 12, 0, 0),
              [target("A", "100 - (avg by (instance) "
                           f'(rate(node_cpu_seconds_total{{mode="idle",{inst}}}[5m])) * 100)',
                      "{{instance}}")],
              unit="percent", steps=thresholds(("green", None), ("red", 80)),
              description="README alert HighCPUUsage: above 80 % for 5 minutes."),
        panel(2, "timeseries", "Memory usage", (8, 12, 12, 0),
              [target("A", f"(1 - node_memory_MemAvailable_bytes{{{inst}}} "
                           f"/ node_memory_MemTotal_bytes{{{inst}}}) * 100", "{{instance}}")],
              unit="percent", steps=thresholds(("green", None), ("red", 85)),
              description="README alert HighMemoryUsage: above 85 %."),
        panel(3, "timeseries", "Disk usage", (8, 12, 0, 8),
              [target("A", f"(1 - node_filesystem_avail_bytes{{{fs}}} "
                           f"/ node_filesystem_size_bytes{{{fs}}}) * 100",
                      "{{instance}} {{mountpoint}}")],
              unit="percent", steps=thresholds(("green", None), ("red", 85)),
              description="README alert DiskUsageHigh: above 85 %."),
        panel(4, "timeseries", "Load average", (8, 12, 12, 8),
              [target("A", f"node_load1{{{inst}}}", "1m {{instance}}"),
               target("B", f"node_load5{{{inst}}}", "5m {{instance}}"),
               target("C", f"node_load15{{{inst}}}", "15m {{instance}}")]),
        panel(5, "timeseries", "Network traffic", (8, 12, 0, 16),
              [target("A", f'sum by (instance) (rate(node_network_receive_bytes_total'
                           f'{{device!="lo",{inst}}}[5m]))', "in {{instance}}"),
               target("B", f'sum by (instance) (rate(node_network_transmit_bytes_total'
                           f'{{device!="lo",{inst}}}[5m]))', "out {{instance}}")],
              unit="Bps"),
        panel(6, "stat", "Available memory", (8, 12, 12, 16),
              [target("A", f"node_memory_MemAvailable_bytes{{{inst}}} "
                           f"/ node_memory_MemTotal_bytes{{{inst}}} * 100", "{{instance}}")],
              unit="percent", steps=thresholds(("red", None), ("orange", 5), ("green", 15)),
              description="README alert OutOfMemory: less than 5 % available."),
    ]  # fmt: skip
    return dashboard(
        "system-resources",
        "System Resources",
        ["infrastructure", "node-exporter", "opskit"],
        panels,
        description="The monitoring README's infrastructure dashboard (node exporter).",
        templating={"list": [variable]},
    )


def dashboards() -> list[JSON]:
    return [email_service_overview(), system_resources()]


# --------------------------------------------------------------------------- ensure


def ensure_folder(g: Grafana) -> str:
    status, current = g.call("GET", f"/api/folders/{FOLDER_UID}")
    if status == 404:
        g.expect("POST", "/api/folders", {"uid": FOLDER_UID, "title": FOLDER_TITLE})
        return "created"
    if status != 200:
        raise SeedError(f"GET /api/folders/{FOLDER_UID} answered {status}: {current}")
    if current.get("title") == FOLDER_TITLE:
        return "unchanged"
    g.expect("PUT", f"/api/folders/{FOLDER_UID}", {"title": FOLDER_TITLE, "overwrite": True})
    return "updated"


def desired_datasource(prometheus_url: str) -> JSON:
    return {
        "name": DS_NAME,
        "uid": DS_UID,
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": True,
        "jsonData": {"httpMethod": "POST", "timeInterval": "5s"},
    }


def ensure_datasource(g: Grafana, prometheus_url: str) -> str:
    want = desired_datasource(prometheus_url)
    status, current = g.call("GET", f"/api/datasources/uid/{DS_UID}")
    if status == 404:
        status, other = g.call("GET", f"/api/datasources/name/{DS_NAME}")
        if status == 200:
            raise SeedError(
                f"a data source named {DS_NAME!r} already exists with uid {other.get('uid')!r}; "
                f"the dashboards need uid {DS_UID!r}: delete or rename it first"
            )
        g.expect("POST", "/api/datasources", want)
        return "created"
    if status != 200:
        raise SeedError(f"GET /api/datasources/uid/{DS_UID} answered {status}: {current}")
    same = all(current.get(k) == v for k, v in want.items() if k != "jsonData") and all(
        (current.get("jsonData") or {}).get(k) == v for k, v in want["jsonData"].items()
    )
    if same:
        return "unchanged"
    body = dict(want)
    body["jsonData"] = {**(current.get("jsonData") or {}), **want["jsonData"]}
    body["version"] = current.get("version", 0)
    g.expect("PUT", f"/api/datasources/uid/{DS_UID}", body)
    return "updated"


def comparable(model: JSON) -> JSON:
    return {k: v for k, v in model.items() if k not in ("id", "version")}


def ensure_dashboard(g: Grafana, model: JSON) -> str:
    uid = model["uid"]
    status, current = g.call("GET", f"/api/dashboards/uid/{uid}")
    if status == 200:
        in_folder = current.get("meta", {}).get("folderUid") == FOLDER_UID
        if in_folder and comparable(current.get("dashboard", {})) == comparable(model):
            return "unchanged"
        outcome = "updated"
    elif status == 404:
        outcome = "created"
    else:
        raise SeedError(f"GET /api/dashboards/uid/{uid} answered {status}: {current}")
    saved = g.expect(
        "POST",
        "/api/dashboards/db",
        {
            "dashboard": {**model, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": SEED_MESSAGE,
        },
    )
    if saved.get("uid") != uid:
        raise SeedError(
            f"saving {uid!r} overwrote the same-titled dashboard {saved.get('uid')!r} instead; "
            "remove that dashboard and run again"
        )
    return outcome


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Seed Grafana with the lab's folder, data source "
                                "and dashboards (idempotent).")  # fmt: skip
    p.add_argument("--url", default="http://127.0.0.1:3000")
    p.add_argument("--user", default="admin")
    p.add_argument("--password", default="admin")
    p.add_argument("--prometheus-url", default="http://127.0.0.1:9090")
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args(argv)
    g = Grafana(args.url, args.user, args.password, args.timeout)
    try:
        print(f"folder {FOLDER_UID}: {ensure_folder(g)}")
        print(f"datasource {DS_UID}: {ensure_datasource(g, args.prometheus_url)}")
        for model in dashboards():
            print(f"dashboard {model['uid']}: {ensure_dashboard(g, model)}")
    except SeedError as exc:
        print(f"grafana_seed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
