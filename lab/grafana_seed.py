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
  Prometheus (node exporter, Pushgateway, the email-service scrape job), and the library
  panel ``opskit-node-load`` in that folder;
* a user ``ops-engineer`` and a team ``oncall`` (the admin), which may edit the folder (a
  folder permission on top of the Viewer/Editor defaults);
* Grafana Alerting: the contact point ``oncall-webhook``, the mute timing ``weekends``, the
  template ``opskit.title``, a policy tree routing severity=critical to the contact point,
  and the rule group ``email-service`` (rule ``opskit-email-down``, a Prometheus query);
* two annotations (tag ``opskit-seed``) and the org preferences (home dashboard, UTC);
* a second organisation "Staging" with ``ops-engineer`` as an Editor, its own team
  ``oncall`` (the admin and ``ops-engineer``, Edit on its folder), a folder, a Prometheus
  data source, the library panel
  ``opskit-node-load`` there too and a dashboard using it (in Staging, not in the main org:
  a dashboard whose library panel is missing fails to save, so restoring one needs its
  library panels restored first).

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
LIBRARY_UID = "opskit-node-load"
LIBRARY_NAME = "Node load (1m)"
ENGINEER = {"name": "Ops Engineer", "email": "ops-engineer@example.com",
            "login": "ops-engineer", "password": "ops-engineer-lab"}  # fmt: skip
TEAM = "oncall"
CONTACT_UID = "oncall-webhook"
CONTACT = {"uid": CONTACT_UID, "name": "oncall", "type": "webhook",
           "settings": {"url": "http://127.0.0.1:9/opskit-oncall", "httpMethod": "POST"},
           "disableResolveMessage": False}  # fmt: skip
MUTE = {"name": "weekends", "time_intervals": [{"weekdays": ["saturday", "sunday"]}]}
TEMPLATE_NAME = "opskit.title"
TEMPLATE = (
    '{{ define "opskit.title" }}[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}{{ end }}'
)
POLICY = {
    "receiver": "grafana-default-email",
    "group_by": ["grafana_folder", "alertname"],
    "routes": [{"receiver": "oncall", "object_matchers": [["severity", "=", "critical"]],
                "mute_time_intervals": ["weekends"]}],
}  # fmt: skip
RULE_GROUP = "email-service"
STAGING = "Staging"
STAGING_FOLDER = {"uid": "staging-services", "title": "Staging Services"}


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

    def in_org(self, org_id: int) -> Grafana:
        other = Grafana.__new__(Grafana)
        other.url, other.timeout = self.url, self.timeout
        other.headers = {**self.headers, "X-Grafana-Org-Id": str(org_id)}
        return other

    def expect(self, method: str, path: str, body: JSON | None = None) -> Any:
        status, payload = self.call(method, path, body)
        if status not in (200, 201, 202, 204):
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


def library_panel() -> JSON:
    return panel(0, "timeseries", LIBRARY_NAME, (8, 24, 0, 24),
                 [target("A", 'node_load1{job="node"}', "{{instance}}")],
                 description="A library panel: edit it once, every dashboard follows.")  # fmt: skip


def ensure_library_panel(g: Grafana, folder_uid: str = FOLDER_UID) -> str:
    want = library_panel()
    want.pop("id")
    want.pop("gridPos")
    status, current = g.call("GET", f"/api/library-elements/{LIBRARY_UID}")
    if status == 404:
        body = {"uid": LIBRARY_UID, "folderUid": folder_uid, "name": LIBRARY_NAME, "kind": 1,
                "model": want}  # fmt: skip
        g.expect("POST", "/api/library-elements", body)
        return "created"
    if status != 200:
        raise SeedError(f"GET /api/library-elements/{LIBRARY_UID} answered {status}: {current}")
    element = current["result"]
    if element["name"] == LIBRARY_NAME and element["model"] == want:
        return "unchanged"
    g.expect("PATCH", f"/api/library-elements/{LIBRARY_UID}", {
        "name": LIBRARY_NAME, "kind": 1, "model": want, "folderUid": folder_uid,
        "version": element["version"]})  # fmt: skip
    return "updated"


def ensure_engineer(g: Grafana) -> tuple[int, str]:
    status, user = g.call("GET", f"/api/users/lookup?loginOrEmail={ENGINEER['login']}")
    if status == 404:
        return g.expect("POST", "/api/admin/users", ENGINEER)["id"], "created"
    if status != 200:
        raise SeedError(f"GET /api/users/lookup answered {status}: {user}")
    return user["id"], "unchanged"


def ensure_team(g: Grafana, folder_uid: str, member_ids: tuple[int, ...]) -> str:
    """The team, its members, and an Edit permission for it on the folder."""
    outcome = "unchanged"
    teams = g.expect("GET", f"/api/teams/search?name={TEAM}")["teams"]
    if teams:
        team_id = teams[0]["id"]
    else:
        team_id = g.expect("POST", "/api/teams", {"name": TEAM, "email": "oncall@example.com"})[
            "teamId"
        ]
        outcome = "created"
    members = {m["userId"] for m in g.expect("GET", f"/api/teams/{team_id}/members")}
    for user_id in member_ids:
        if user_id not in members:
            g.expect("POST", f"/api/teams/{team_id}/members", {"userId": user_id})
            outcome = "updated" if outcome == "unchanged" else outcome
    perms = g.expect("GET", f"/api/folders/{folder_uid}/permissions")
    items = [
        {k: p[k] for k in ("role", "permission")} if p.get("role")
        else {"teamId": p["teamId"], "permission": p["permission"]} if p.get("teamId")
        else {"userId": p["userId"], "permission": p["permission"]}
        for p in perms if not p.get("inherited")
    ]  # fmt: skip
    if {"teamId": team_id, "permission": 2} not in items:
        items = [i for i in items if i.get("teamId") != team_id] + [
            {"teamId": team_id, "permission": 2}
        ]
        g.expect("POST", f"/api/folders/{folder_uid}/permissions", {"items": items})
        outcome = "updated" if outcome == "unchanged" else outcome
    return outcome


def alert_rule() -> JSON:
    return {
        "uid": "opskit-email-down",
        "title": "Email service down (Grafana-managed)",
        "condition": "B",
        "data": [
            {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0}, "datasourceUid": DS_UID,
             "model": {"refId": "A", "expr": 'up{job="email-service"}', "instant": True}},
            {"refId": "B", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
             "model": {"refId": "B", "type": "threshold", "expression": "A",
                       "conditions": [{"evaluator": {"type": "lt", "params": [1]}}]}},
        ],
        "noDataState": "NoData",
        "execErrState": "Error",
        "for": "1m",
        "labels": {"severity": "critical", "team": "oncall"},
        "annotations": {"summary": "The email service is not answering its scrape."},
        "isPaused": False,
    }  # fmt: skip


def ensure_alerting(g: Grafana) -> str:
    outcome = "unchanged"

    def changed(new: str) -> None:
        nonlocal outcome
        outcome = "created" if "created" in (outcome, new) else new

    points = {p["uid"]: p for p in g.expect("GET", "/api/v1/provisioning/contact-points")}
    if CONTACT_UID not in points:
        g.expect("POST", "/api/v1/provisioning/contact-points", CONTACT)
        changed("created")
    elif points[CONTACT_UID]["settings"] != CONTACT["settings"]:
        g.expect("PUT", f"/api/v1/provisioning/contact-points/{CONTACT_UID}", CONTACT)
        changed("updated")
    status, mute = g.call("GET", f"/api/v1/provisioning/mute-timings/{MUTE['name']}")
    if status == 404:
        g.expect("POST", "/api/v1/provisioning/mute-timings", MUTE)
        changed("created")
    elif mute.get("time_intervals") != MUTE["time_intervals"]:
        g.expect("PUT", f"/api/v1/provisioning/mute-timings/{MUTE['name']}", MUTE)
        changed("updated")
    status, template = g.call("GET", f"/api/v1/provisioning/templates/{TEMPLATE_NAME}")
    if status != 200 or template.get("template") != TEMPLATE:
        g.expect("PUT", f"/api/v1/provisioning/templates/{TEMPLATE_NAME}",
                 {"name": TEMPLATE_NAME, "template": TEMPLATE})  # fmt: skip
        changed("created" if status == 404 else "updated")
    tree = g.expect("GET", "/api/v1/provisioning/policies")
    if {k: tree.get(k) for k in POLICY} != POLICY:
        g.expect("PUT", "/api/v1/provisioning/policies", POLICY)
        changed("updated")
    rule = alert_rule()
    path = f"/api/v1/provisioning/folder/{FOLDER_UID}/rule-groups/{RULE_GROUP}"
    status, group = g.call("GET", path)
    same = (
        status == 200
        and group.get("interval") == 60
        and [{k: r.get(k) for k in rule} for r in group.get("rules", [])] == [rule]
    )
    if not same:
        g.expect("PUT", path, {"title": RULE_GROUP, "interval": 60, "rules": [rule]})
        changed("created" if status == 404 else "updated")
    return outcome


def ensure_annotations_and_preferences(g: Grafana) -> str:
    outcome = "unchanged"
    have = {a["text"] for a in g.expect("GET", "/api/annotations?tags=opskit-seed&limit=100")}
    wanted = [
        {"dashboardUID": "email-service-overview", "time": 1_700_000_000_000,
         "tags": ["opskit-seed", "deploy"], "text": "email-service 2.4.0 deployed"},
        {"time": 1_700_000_600_000, "timeEnd": 1_700_001_200_000,
         "tags": ["opskit-seed", "maintenance"], "text": "Postfix maintenance window"},
    ]  # fmt: skip
    for a in wanted:
        if a["text"] not in have:
            g.expect("POST", "/api/annotations", a)
            outcome = "created"
    prefs = {"theme": "", "homeDashboardUID": "email-service-overview", "timezone": "utc",
             "weekStart": "monday"}  # fmt: skip
    current = g.expect("GET", "/api/org/preferences")
    if any(current.get(k) != v for k, v in prefs.items()):
        g.expect("PUT", "/api/org/preferences", prefs)
        outcome = "updated" if outcome == "unchanged" else outcome
    return outcome


def ensure_staging(g: Grafana, prometheus_url: str, engineer: int) -> str:
    outcome = "unchanged"
    status, org = g.call("GET", f"/api/orgs/name/{STAGING}")
    if status == 404:
        org_id = g.expect("POST", "/api/orgs", {"name": STAGING})["orgId"]
        outcome = "created"
    elif status == 200:
        org_id = org["id"]
    else:
        raise SeedError(f"GET /api/orgs/name/{STAGING} answered {status}: {org}")
    s = g.in_org(org_id)
    if s.call("GET", f"/api/folders/{STAGING_FOLDER['uid']}")[0] == 404:
        s.expect("POST", "/api/folders", STAGING_FOLDER)
        outcome = "created"
    member = {"loginOrEmail": ENGINEER["login"], "role": "Editor"}
    status, answer = g.call("POST", f"/api/orgs/{org_id}/users", member)
    if status == 200:
        outcome = "updated" if outcome == "unchanged" else outcome
    elif status != 409:
        raise SeedError(f"POST /api/orgs/{org_id}/users answered {status}: {answer}")
    # The two-member team lives in Staging: restoring the main org into a wiped Grafana
    # cannot bring back a team member who is not a user there.
    if ensure_team(s, STAGING_FOLDER["uid"], (1, engineer)) != "unchanged":
        outcome = "updated" if outcome == "unchanged" else outcome
    ds = {**desired_datasource(prometheus_url), "name": "Prometheus (staging)",
          "uid": "prometheus-staging"}  # fmt: skip
    if s.call("GET", f"/api/datasources/uid/{ds['uid']}")[0] == 404:
        s.expect("POST", "/api/datasources", ds)
        outcome = "created"
    if ensure_library_panel(s, STAGING_FOLDER["uid"]) != "unchanged":
        outcome = "updated" if outcome == "unchanged" else outcome
    board = dashboard(
        "staging-email-service", "Staging Email Service", ["staging", "opskit"],
        [panel(1, "timeseries", "Requests per second", (8, 24, 0, 0),
               [target("A", 'sum(rate(http_requests_total{job="email-service"}[5m]))')],
               unit="reqps"),
         {"id": 2, "gridPos": {"h": 8, "w": 24, "x": 0, "y": 8},
          "libraryPanel": {"uid": LIBRARY_UID, "name": LIBRARY_NAME}}],
    )  # fmt: skip
    for p in board["panels"]:
        for t in [p, *p.get("targets", [])]:
            if "libraryPanel" not in t:
                t["datasource"] = {"type": "prometheus", "uid": ds["uid"]}
    status, current = s.call("GET", f"/api/dashboards/uid/{board['uid']}")
    if status != 200 or comparable(current.get("dashboard", {})) != comparable(board):
        save = {"dashboard": {**board, "id": None}, "folderUid": STAGING_FOLDER["uid"],
                "overwrite": True, "message": SEED_MESSAGE}  # fmt: skip
        s.expect("POST", "/api/dashboards/db", save)
        outcome = "created" if status == 404 else "updated" if outcome == "unchanged" else outcome
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
        print(f"library panel {LIBRARY_UID}: {ensure_library_panel(g)}")
        for model in dashboards():
            print(f"dashboard {model['uid']}: {ensure_dashboard(g, model)}")
        engineer, made = ensure_engineer(g)
        print(f"user {ENGINEER['login']}: {made}")
        print(f"team {TEAM}: {ensure_team(g, FOLDER_UID, (1,))}")
        print(f"alerting: {ensure_alerting(g)}")
        print(f"annotations and preferences: {ensure_annotations_and_preferences(g)}")
        print(f"org {STAGING}: {ensure_staging(g, args.prometheus_url, engineer)}")
    except SeedError as exc:
        print(f"grafana_seed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
