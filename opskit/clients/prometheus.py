"""Prometheus HTTP API v1."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from opskit.clients.base import HttpBackend, parse_time, str_dict
from opskit.durations import parse_duration
from opskit.models import PromAlert, Rule, Sample, Target, TsdbStatus


def _seconds(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        return parse_duration(value).total_seconds() if value != "0s" else 0.0
    return 0.0


def _float(value: object) -> float:
    number = float(str(value))
    return number if not math.isnan(number) else math.nan


class PrometheusClient(HttpBackend):
    name = "prometheus"

    async def api(self, path: str, params: Any = None) -> Any:
        body = await self.get_json(f"/api/v1/{path}", params)
        return self.parse(path, lambda: _data(body))

    async def healthy(self) -> None:
        await self.get_ok("/-/healthy")

    async def targets(self) -> list[Target]:
        return await self.get_records(
            "/api/v1/targets",
            {"state": "active"},
            "targets",
            lambda body: [_target(t) for t in _data(body)["activeTargets"]],
        )

    async def query(self, expr: str, at: datetime | None = None) -> list[Sample]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at.timestamp()
        data = await self.api("query", params)
        return self.parse("query", lambda: _vector(data))

    async def query_range(
        self, expr: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        params = {"query": expr, "start": start.timestamp(), "end": end.timestamp(), "step": step}
        data = await self.api("query_range", params)

        def matrix() -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
            if data["resultType"] != "matrix":
                raise ValueError(f"expected a matrix, got {data['resultType']}")
            return [
                (dict(s["metric"]), [(float(t), _float(v)) for t, v in s["values"]])
                for s in data["result"]
            ]

        return self.parse("query_range", matrix)

    async def target_up(
        self, job: str, instance: str, start: datetime, end: datetime, step: float
    ) -> list[tuple[float, float]]:
        """`up` of one scrape target over [start, end]: (unix time, 0 or 1) points, [] when
        Prometheus has no such series. Each point is the lowest `up` of the `step` before
        it, so a failed scrape between two points still shows."""
        selector = f"up{{job={promql_string(job)},instance={promql_string(instance)}}}"
        expr = f"min_over_time({selector}[{max(round(step), 1)}s])"
        series = await self.query_range(expr, start, end, step)
        return [(t, v) for t, v in series[0][1] if not math.isnan(v)] if series else []

    async def rules(self) -> list[Rule]:
        data = await self.api("rules")
        return self.parse(
            "rules", lambda: [_rule(g, r) for g in data["groups"] for r in g["rules"]]
        )

    async def alerts(self) -> list[PromAlert]:
        """Pending and firing alerts as Prometheus holds them."""
        data = await self.api("alerts")
        return self.parse("alerts", lambda: [_prom_alert(a) for a in data["alerts"]])

    async def alertmanagers(self) -> dict[str, list[str]]:
        """`{"active": [url...], "dropped": [url...]}`: where Prometheus sends alerts."""
        data = await self.api("alertmanagers")
        return self.parse(
            "alertmanagers",
            lambda: {
                "active": [str(a["url"]) for a in data["activeAlertmanagers"]],
                "dropped": [str(a["url"]) for a in data.get("droppedAlertmanagers") or []],
            },
        )

    async def runtimeinfo(self) -> dict[str, Any]:
        data = await self.api("status/runtimeinfo")
        return self.parse("runtimeinfo", lambda: dict(data))

    async def tsdb_status(self, limit: int = 10) -> TsdbStatus:
        """Head series and the metric names with the most series."""
        data = await self.api("status/tsdb", {"limit": limit})
        return self.parse(
            "tsdb status",
            lambda: TsdbStatus(
                head_series=int(data["headStats"]["numSeries"]),
                top_metrics=[
                    (str(m["name"]), int(m["value"])) for m in data["seriesCountByMetricName"]
                ][:limit],
            ),
        )

    async def reload(self) -> None:
        await self.send("POST", "/-/reload")

    async def flags(self) -> dict[str, str]:
        data = await self.api("status/flags")
        return self.parse("flags", lambda: {str(k): str(v) for k, v in data.items()})

    async def buildinfo(self) -> dict[str, str]:
        data = await self.api("status/buildinfo")
        return self.parse("buildinfo", lambda: {str(k): str(v) for k, v in data.items()})


def promql_string(value: str) -> str:
    """`value` as a PromQL double-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _data(body: Any) -> Any:
    if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
        raise ValueError("no success/data envelope")
    return body["data"]


def _target(t: dict[str, Any]) -> Target:
    # 10,000 of these a refresh at the bench's large size: no copies, no work twice
    labels = str_dict(t["labels"])
    get = t.get
    return Target(
        job=labels["job"] if "job" in labels else str(get("scrapePool", "")),
        instance=labels.get("instance", ""),
        scrape_url=str(t["scrapeUrl"]),
        health=str(t["health"]),
        last_scrape=parse_time(get("lastScrape")),
        last_scrape_duration=float(get("lastScrapeDuration", 0.0)),
        last_error=str(get("lastError", "")),
        scrape_interval=str(get("scrapeInterval", "")),
        scrape_timeout=str(get("scrapeTimeout", "")),
        labels=labels,
    )


def _vector(data: dict[str, Any]) -> list[Sample]:
    kind = data["resultType"]
    if kind == "scalar":
        return [Sample({}, _float(data["result"][1]))]
    if kind != "vector":
        raise ValueError(f"expected a vector, got {kind}")
    return [
        Sample({str(k): str(v) for k, v in s["metric"].items()}, _float(s["value"][1]))
        for s in data["result"]
    ]


def _prom_alert(a: dict[str, Any]) -> PromAlert:
    return PromAlert(
        labels={str(k): str(v) for k, v in a["labels"].items()},
        annotations={str(k): str(v) for k, v in (a.get("annotations") or {}).items()},
        state=str(a["state"]),
        active_at=parse_time(a.get("activeAt")),
        value=str(a.get("value", "")),
    )


def _rule(group: dict[str, Any], r: dict[str, Any]) -> Rule:
    kind = str(r["type"])
    return Rule(
        group=str(group["name"]),
        file=str(group.get("file", "")),
        name=str(r["name"]),
        type=kind,
        query=str(r["query"]),
        health=str(r.get("health", "unknown")),
        last_error=str(r.get("lastError", "")),
        state=str(r.get("state", "")) if kind == "alerting" else "",
        duration=_seconds(r.get("duration", 0)),
        labels={str(k): str(v) for k, v in (r.get("labels") or {}).items()},
        active_alerts=len(r.get("alerts") or []),
        last_evaluation=parse_time(r.get("lastEvaluation")),
        evaluation_time=float(r.get("evaluationTime", 0.0)),
        group_interval=_seconds(group.get("interval", 0)),
    )
