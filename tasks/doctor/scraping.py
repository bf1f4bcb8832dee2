"""Prometheus Not Scraping Metrics: down targets by job and error class, slow scrapes,
config reload status, failing recording rules."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from opskit import errorclass
from opskit.durations import parse_duration
from opskit.findings import Finding
from opskit.models import Rule, Target
from opskit.tasks.doctor.model import Context

TARGETS_API = "prometheus GET /api/v1/targets"
RULES_API = "prometheus GET /api/v1/rules"
RUNTIME_API = "prometheus GET /api/v1/status/runtimeinfo"

# error class -> the next step; the README's "service discovery not finding services" is dns
ACTIONS = {
    "connection refused": "Start the service behind job {job} or fix the port in its scrape "
    "config (README: `docker-compose ps`, then curl the target from the Prometheus host).",
    "dns": "Service discovery is not finding the service: fix the host name of job {job} in "
    "prometheus.yml or its DNS record (README common issue 1).",
    "timeout": "Find out why the /metrics endpoint of job {job} is slow, or raise its "
    "scrape_timeout (still below scrape_interval).",
    "http status": "Check metrics_path and that the service of job {job} serves metrics there.",
    "tls": "Fix the scheme and tls_config (CA file, server name) of job {job}.",
    "auth": "Give job {job} the credentials its /metrics endpoint asks for (basic_auth, "
    "authorization or oauth2 in its scrape config).",
    "other": "Check network connectivity from Prometheus to job {job}'s targets "
    "(README: curl the target from the Prometheus host).",
}


def classify(error: str) -> str:
    """A scrape's lastError as one of the ACTIONS classes (the classifier the TUI and the
    CLI tables show too: opskit/errorclass.py)."""
    return errorclass.classify(error).kind


async def fetch_targets(ctx: Context) -> list[Target]:
    targets: list[Target] = await ctx.once("targets", ctx.stack.prometheus.targets)
    return targets


async def fetch_rules(ctx: Context) -> list[Rule]:
    rules: list[Rule] = await ctx.once("rules", ctx.stack.prometheus.rules)
    return rules


async def targets_down(ctx: Context) -> list[Finding]:
    targets = await fetch_targets(ctx)
    groups: dict[tuple[str, str], list[Target]] = defaultdict(list)
    for t in targets:
        if t.health == "down":
            groups[(t.job, classify(t.last_error))].append(t)
    findings = [
        Finding(
            check="targets_down",
            severity="critical",
            subject=job,
            summary=f"job {job}: {len(down)} of {sum(t.job == job for t in targets)} "
            f"target(s) down ({kind}): {down[0].last_error}",
            evidence={
                "error_class": kind,
                "down": len(down),
                "targets_in_job": sum(t.job == job for t in targets),
                "instances": [{"instance": t.instance, "last_error": t.last_error} for t in down],
            },
            source=TARGETS_API,
            action=ACTIONS[kind].format(job=job),
        )
        for (job, kind), down in sorted(groups.items())
    ]
    if not findings:
        findings.append(
            Finding(
                check="targets_down",
                severity="ok",
                subject="",
                summary=f"all {len(targets)} active targets are up",
                evidence={"targets": len(targets), "down": 0},
                source=TARGETS_API,
            )
        )
    return findings


def _timeout_seconds(target: Target) -> float | None:
    try:
        return parse_duration(target.scrape_timeout).total_seconds()
    except ValueError:
        return None


async def slow_scrapes(ctx: Context) -> list[Finding]:
    ratio = ctx.options.scrape_duration_ratio
    findings: list[Finding] = []
    for t in await fetch_targets(ctx):
        timeout = _timeout_seconds(t)
        if t.health != "up" or not timeout or t.last_scrape_duration < ratio * timeout:
            continue
        findings.append(
            Finding(
                check="slow_scrapes",
                severity="warning",
                subject=f"{t.job} {t.instance}",
                summary=f"{t.job} {t.instance}: last scrape took {t.last_scrape_duration:.2f}s "
                f"of a {timeout:g}s timeout",
                evidence={
                    "last_scrape_duration_seconds": round(t.last_scrape_duration, 3),
                    "scrape_timeout_seconds": timeout,
                    "ratio": round(t.last_scrape_duration / timeout, 2),
                    "threshold_ratio": ratio,
                },
                source=TARGETS_API,
                action=f"Speed up {t.job}'s /metrics (fewer series) or raise its scrape_timeout "
                "before scrapes start failing.",
            )
        )
    return findings or [
        Finding(
            check="slow_scrapes",
            severity="ok",
            subject="",
            summary=f"no scrape above {ratio:.0%} of its timeout",
            evidence={"threshold_ratio": ratio},
            source=TARGETS_API,
        )
    ]


async def config_reload(ctx: Context) -> list[Finding]:
    info: dict[str, Any] = await ctx.once("runtimeinfo", ctx.stack.prometheus.runtimeinfo)
    evidence = {
        "reload_config_success": info.get("reloadConfigSuccess"),
        "last_config_time": info.get("lastConfigTime"),
    }
    if info.get("reloadConfigSuccess") is False:
        return [
            Finding(
                check="config_reload",
                severity="critical",
                subject="prometheus.yml",
                summary="the last configuration reload failed: Prometheus runs an older config",
                evidence=evidence,
                source=RUNTIME_API,
                action="Run `promtool check config prometheus.yml`, fix the error it names "
                "(README: `docker-compose logs prometheus`) and reload.",
            )
        ]
    return [
        Finding(
            check="config_reload",
            severity="ok",
            subject="",
            summary="last config reload succeeded",
            evidence=evidence,
            source=RUNTIME_API,
        )
    ]


def rule_error(check: str, rule: Rule, consequence: str) -> Finding:
    return Finding(
        check=check,
        severity="critical",
        subject=rule.name,
        summary=f"{rule.type} rule {rule.name} (group {rule.group}) fails: {rule.last_error}",
        evidence={
            "group": rule.group,
            "file": rule.file,
            "query": rule.query,
            "last_error": rule.last_error,
            "last_evaluation": rule.last_evaluation,
        },
        source=RULES_API,
        action=f"Fix the expression of {rule.name} in {rule.file or 'its rule file'} "
        f"(try it in the /graph page) and reload: {consequence}.",
    )


async def recording_rule_failures(ctx: Context) -> list[Finding]:
    rules = [r for r in await fetch_rules(ctx) if r.type == "recording"]
    failing = [r for r in rules if r.health == "err"]
    findings = [
        rule_error("rule_evaluation", r, "the series it records are missing") for r in failing
    ]
    return findings or [
        Finding(
            check="rule_evaluation",
            severity="ok",
            subject="",
            summary=f"all {len(rules)} recording rules evaluate",
            evidence={"recording_rules": len(rules), "failing": 0},
            source=RULES_API,
        )
    ]
