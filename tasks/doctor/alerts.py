"""Alerts Not Firing: failing and never-evaluated alerting rules, Prometheus connected
to no Alertmanager, Alertmanager's cluster, firing alerts Alertmanager never got."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from opskit.clients.base import parse_time
from opskit.findings import Finding
from opskit.models import Alert, PromAlert
from opskit.tasks.doctor.model import Context
from opskit.tasks.doctor.scraping import RULES_API, RUNTIME_API, fetch_rules, rule_error

AM_API = "prometheus GET /api/v1/alertmanagers"
AM_STATUS_API = "alertmanager GET /api/v2/status"
DELIVERY_API = "prometheus GET /api/v1/alerts + alertmanager GET /api/v2/alerts"


async def alert_rule_errors(ctx: Context) -> list[Finding]:
    rules = [r for r in await fetch_rules(ctx) if r.type == "alerting"]
    failing = [r for r in rules if r.health == "err"]
    findings = [rule_error("alert_rule_errors", r, "until then it can never fire") for r in failing]
    return findings or [
        Finding(
            check="alert_rule_errors",
            severity="ok",
            subject="",
            summary=f"all {len(rules)} alerting rules evaluate",
            evidence={"alerting_rules": len(rules), "failing": 0},
            source=RULES_API,
        )
    ]


async def never_evaluated(ctx: Context) -> list[Finding]:
    """Rules with no evaluation yet, once two of their group's intervals have passed
    since the config was (re)loaded."""
    rules = await fetch_rules(ctx)
    info: dict[str, Any] = await ctx.once("runtimeinfo", ctx.stack.prometheus.runtimeinfo)
    loaded = parse_time(info.get("lastConfigTime"))
    age = (ctx.now - loaded).total_seconds() if loaded else float("inf")
    stale = [r for r in rules if r.last_evaluation is None and age > 2 * max(r.group_interval, 1)]
    findings = [
        Finding(
            check="never_evaluated",
            severity="warning",
            subject=r.name,
            summary=f"{r.type} rule {r.name} (group {r.group}) has never been evaluated",
            evidence={
                "group": r.group,
                "group_interval_seconds": r.group_interval,
                "config_loaded_seconds_ago": round(age),
            },
            source=f"{RULES_API} + {RUNTIME_API}",
            action="Check the group's interval and Prometheus's logs for rule manager errors "
            "(README: check alert evaluation in the Prometheus logs).",
        )
        for r in stale
    ]
    return findings or [
        Finding(
            check="never_evaluated",
            severity="ok",
            subject="",
            summary=f"all {len(rules)} rules have been evaluated",
            evidence={"rules": len(rules)},
            source=RULES_API,
        )
    ]


async def alertmanager_connection(ctx: Context) -> list[Finding]:
    ams: dict[str, list[str]] = await ctx.once("alertmanagers", ctx.stack.prometheus.alertmanagers)
    evidence = {"active": ams["active"], "dropped": ams["dropped"]}
    if not ams["active"]:
        return [
            Finding(
                check="alertmanager_connection",
                severity="critical",
                subject="prometheus",
                summary="Prometheus is connected to no Alertmanager: "
                "alerts fire but are sent nowhere",
                evidence=evidence,
                source=AM_API,
                action="Add the Alertmanager under alerting.alertmanagers in prometheus.yml "
                "and reload.",
            )
        ]
    return [
        Finding(
            check="alertmanager_connection",
            severity="ok",
            subject="prometheus",
            summary=f"Prometheus sends alerts to {len(ams['active'])} Alertmanager(s)",
            evidence=evidence,
            source=AM_API,
        )
    ]


async def alertmanager_cluster(ctx: Context) -> list[Finding]:
    status = await ctx.stack.alertmanager.status()
    cluster = status.get("cluster") or {}
    state = str(cluster.get("status", "unknown"))
    peers = cluster.get("peers") or []
    evidence = {"status": state, "peers": len(peers), "uptime": status.get("uptime")}
    if state == "ready":
        return [
            Finding(
                check="alertmanager_cluster",
                severity="ok",
                subject="alertmanager",
                summary=f"cluster ready with {len(peers)} peer(s)",
                evidence=evidence,
                source=AM_STATUS_API,
            )
        ]
    if state == "disabled":
        return [
            Finding(
                check="alertmanager_cluster",
                severity="info",
                subject="alertmanager",
                summary="clustering disabled: a single Alertmanager, no high availability",
                evidence=evidence,
                source=AM_STATUS_API,
            )
        ]
    return [
        Finding(
            check="alertmanager_cluster",
            severity="warning",
            subject="alertmanager",
            summary=f"Alertmanager cluster is {state} with {len(peers)} peer(s)",
            evidence=evidence,
            source=AM_STATUS_API,
            action="Check that the peers reach each other on the cluster port (9094) "
            "(README: `docker-compose logs alertmanager`).",
        )
    ]


def _delivered(alert: PromAlert, received: list[Alert]) -> bool:
    """Alertmanager holds it when some alert there carries all its labels (Alertmanager
    adds Prometheus's external labels)."""
    want = alert.labels.items()
    return any(want <= a.labels.items() for a in received)


async def firing_not_delivered(ctx: Context) -> list[Finding]:
    prom = ctx.stack.prometheus
    firing = [a for a in await prom.alerts() if a.state == "firing"]
    received = await ctx.stack.alertmanager.alerts()
    missing: dict[str, list[PromAlert]] = defaultdict(list)
    for a in firing:
        if not _delivered(a, received):
            missing[a.labels.get("alertname", "")].append(a)
    findings = [
        Finding(
            check="firing_not_delivered",
            severity="critical",
            subject=name,
            summary=f"{len(alerts)} {name} alert(s) firing in Prometheus, absent from Alertmanager",
            evidence={
                "firing_in_prometheus": len(alerts),
                "labels": [a.labels for a in alerts[:5]],
                "active_since": [a.active_at for a in alerts[:5]],
            },
            source=DELIVERY_API,
            action="Check that Prometheus sends to this Alertmanager (alertmanager_connection) and "
            "its prometheus_notifications_errors_total.",
        )
        for name, alerts in sorted(missing.items())
    ]
    return findings or [
        Finding(
            check="firing_not_delivered",
            severity="ok",
            subject="",
            summary=f"all {len(firing)} firing alerts are in Alertmanager",
            evidence={"firing_in_prometheus": len(firing), "in_alertmanager": len(received)},
            source=DELIVERY_API,
        )
    ]
