"""Prometheus HTTP API v1, and VictoriaMetrics' implementation of it.

VictoriaMetrics (single-node, 1.79) answers the same API for what it supports and
differs where it does not (app/vmselect/main.go, app/vminsert/main.go and
lib/httpserver/httpserver.go at tag v1.79.5; README "Prometheus querying API usage"):

- served: `/api/v1/query`, `/query_range`, `/series`, `/labels`, `/label/.../values`,
  `/status/tsdb` (other arguments: `topN`, `date`; `totalSeries` of the day instead of
  `headStats`), `/-/healthy` ("VictoriaMetrics is Healthy."), `/-/reload`;
- `/api/v1/targets`: only VictoriaMetrics' own `-promscrape.config` targets (vminsert);
- placeholders: `/api/v1/rules` (`{"groups":[]}`) and `/api/v1/alerts` (`{"alerts":[]}`)
  unless `-vmalert.proxyURL` is set (then proxied to vmalert), `/api/v1/status/buildinfo`
  (`{}`), `/api/v1/metadata`;
- not served: `/api/v1/status/runtimeinfo`, `/status/flags`, `/alertmanagers`: HTTP 400
  "unsupported path requested" (lib/httpserver/httpserver.go).

What it lacks raises `Unsupported` naming the endpoint. Its own state (flags, storage
size, version) is in its `/metrics` (lib/httpserver/metrics.go: `flag{name, value,
is_set}`, `vm_app_version`; app/vmstorage/main.go: `vm_data_size_bytes`, `vm_rows`,
`vm_free_disk_space_bytes`, `vm_rows_added_to_storage_total`)."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, cast

import httpx

from opskit.clients.base import HttpBackend, parse_time, str_dict
from opskit.durations import parse_duration
from opskit.errors import Unsupported
from opskit.models import PromAlert, Rule, Sample, Target, TsdbStatus

Flavor = Literal["prometheus", "victoriametrics"]
VICTORIAMETRICS: Flavor = "victoriametrics"
# lib/httpserver/httpserver.go (v1.79.5): the 400 answer to a path VictoriaMetrics lacks
VM_UNSUPPORTED = b"unsupported path requested"
# app/vmselect/main.go (v1.79.5): /vmalert/* without -vmalert.proxyURL
VM_NO_VMALERT = "vmalert.proxyURL"


def _seconds(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        return parse_duration(value).total_seconds() if value != "0s" else 0.0
    return 0.0


def _float(value: object) -> float:
    number = float(str(value))
    return number if not math.isnan(number) else math.nan


def detect_flavor(body: str, headers: Mapping[str, str]) -> Flavor:
    """What answered `/-/healthy`: VictoriaMetrics says "VictoriaMetrics is Healthy." and
    sends `X-Server-Hostname` on every answer (lib/httpserver/httpserver.go, v1.79.5);
    Prometheus says "Prometheus Server is Healthy." (web/web.go) and sends no such header."""
    if "victoriametrics" in body.lower() or "x-server-hostname" in {k.lower() for k in headers}:
        return VICTORIAMETRICS
    return "prometheus"


class PrometheusClient(HttpBackend):
    name = "prometheus"

    def __init__(self, http: httpx.AsyncClient, retries: int = 2, flavor: str = "auto") -> None:
        super().__init__(http, retries)
        # "auto": probed once, at the first call that needs it (an empty answer that may
        # be a VictoriaMetrics placeholder), then cached for this client
        self._flavor: Flavor | None = None if flavor == "auto" else cast(Flavor, flavor)
        self._flavor_lock: asyncio.Lock | None = None
        self._vmalert: bool | None = None

    @property
    def where(self) -> str:
        return str(self.http.base_url).rstrip("/")

    async def flavor(self) -> Flavor:
        """What answers: "prometheus" or "victoriametrics", as configured (`flavor`), or
        with "auto" what one GET of `/-/healthy` says (`detect_flavor`), cached. A probe
        that cannot reach the server raises, and is tried again at the next call."""
        if self._flavor is None:
            if self._flavor_lock is None:
                self._flavor_lock = asyncio.Lock()
            async with self._flavor_lock:
                if self._flavor is None:
                    response = await self._get("/-/healthy", None)
                    self._flavor = detect_flavor(response.text, response.headers)
        return self._flavor

    async def is_victoriametrics(self) -> bool:
        return await self.flavor() == VICTORIAMETRICS

    def unsupported(self, path: str, why: str = "VictoriaMetrics does not serve it") -> Unsupported:
        return Unsupported(self.name, f"victoriametrics {self.where} has no {path} ({why})")

    def decode(self, response: httpx.Response) -> Any:
        if response.status_code == 400 and VM_UNSUPPORTED in response.content[:400]:
            # only VictoriaMetrics answers so: it is one, whatever the config said
            self._flavor = VICTORIAMETRICS
            raise self.unsupported(response.request.url.path)
        return super().decode(response)

    async def vmalert_proxied(self) -> bool:
        """Whether VictoriaMetrics proxies the alerting API to vmalert
        (`-vmalert.proxyURL`): without it `/vmalert/...` answers 400 naming the flag
        (app/vmselect/main.go, v1.79.5). Cached."""
        if self._vmalert is None:
            response = await self._get("/vmalert/api/v1/rules", None)
            self._vmalert = not (response.status_code == 400 and VM_NO_VMALERT in response.text)
        return self._vmalert

    async def _placeholder(self, what: str, path: str) -> None:
        """Raise when an empty answer is VictoriaMetrics' placeholder, not the truth."""
        if await self.is_victoriametrics() and not await self.vmalert_proxied():
            raise Unsupported(
                self.name,
                f"victoriametrics {self.where}: VictoriaMetrics serves no {what} here (vmalert "
                f"not configured: -vmalert.proxyURL); {path} is an empty placeholder",
            )

    async def api(self, path: str, params: Any = None) -> Any:
        body = await self.get_json(f"/api/v1/{path}", params)
        return self.parse(path, lambda: _data(body))

    async def healthy(self) -> None:
        await self.get_ok("/-/healthy")

    async def targets(self) -> list[Target]:
        """Active scrape targets. VictoriaMetrics lists only its own `-promscrape.config`
        targets: with none it raises `Unsupported` rather than say "0 targets"."""
        found = await self.get_records(
            "/api/v1/targets",
            {"state": "active"},
            "targets",
            lambda body: [_target(t) for t in _data(body)["activeTargets"]],
        )
        if not found and await self.is_victoriametrics():
            raise Unsupported(
                self.name,
                f"victoriametrics {self.where} scrapes no targets itself (no "
                "-promscrape.config): /api/v1/targets lists only VictoriaMetrics' own scrape "
                "targets, not those of the Prometheus that writes to it",
            )
        return found

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
        found = self.parse(
            "rules", lambda: [_rule(g, r) for g in data["groups"] for r in g["rules"]]
        )
        if not found:
            await self._placeholder("rules", "/api/v1/rules")
        return found

    async def alerts(self) -> list[PromAlert]:
        """Pending and firing alerts as Prometheus holds them."""
        data = await self.api("alerts")
        found = self.parse("alerts", lambda: [_prom_alert(a) for a in data["alerts"]])
        if not found:
            await self._placeholder("alerts", "/api/v1/alerts")
        return found

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
        """Head series and the metric names with the most series. VictoriaMetrics takes
        `topN` (Prometheus `limit`; each ignores the other's) and gives `totalSeries` of
        the current day instead of `headStats` (README "TSDB stats", v1.79.5)."""
        data = await self.api("status/tsdb", {"limit": limit, "topN": limit})
        return self.parse("tsdb status", lambda: parse_tsdb(data, limit))

    async def reload(self) -> None:
        await self.send("POST", "/-/reload")

    async def flags(self) -> dict[str, str]:
        data = await self.api("status/flags")
        return self.parse("flags", lambda: {str(k): str(v) for k, v in data.items()})

    async def buildinfo(self) -> dict[str, str]:
        """`version` and the rest. VictoriaMetrics' buildinfo is an empty placeholder: its
        version comes from `vm_app_version{short_version}` in /metrics, and a build that
        sets none (Debian's) raises `Unsupported`."""
        data = await self.api("status/buildinfo")
        info = self.parse("buildinfo", lambda: {str(k): str(v) for k, v in data.items()})
        if "version" in info or not await self.is_victoriametrics():
            return info
        version = vm_version(await self.vm_metrics())
        if not version:
            raise self.unsupported(
                "version", "/api/v1/status/buildinfo is an empty placeholder and this build's "
                "vm_app_version is blank"
            )  # fmt: skip
        return {"version": version, "flavor": VICTORIAMETRICS}

    async def metrics_text(self) -> str:
        """The server's own /metrics, as text."""
        response = await self._get("/metrics", None)
        if response.status_code >= 300:
            self.decode(response)  # raises the mapped error
            raise self.unsupported("/metrics", f"HTTP {response.status_code}")
        return response.text

    async def vm_metrics(self) -> list[tuple[str, dict[str, str], float]]:
        """VictoriaMetrics' own /metrics, parsed (`parse_exposition`)."""
        text = await self.metrics_text()
        return self.parse("/metrics", lambda: parse_exposition(text))

    async def vm_flags(self) -> dict[str, tuple[str, bool]]:
        """VictoriaMetrics' command-line flags: name -> (value, set on the command line),
        from its /metrics `flag{name, value, is_set}` (secret ones read "secret")."""
        return vm_flags(await self.vm_metrics())


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(value: str) -> str:
    return (
        value.replace("\\\\", "\x00").replace('\\"', '"').replace("\\n", "\n").replace("\x00", "\\")
    )


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition (what /metrics gives) as (name, labels, value) samples;
    comments and lines it cannot read are skipped."""
    out: list[tuple[str, dict[str, str], float]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if m is None:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL.findall(m.group(3) or "")}
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), labels, value))
    return out


def vm_flags(samples: list[tuple[str, dict[str, str], float]]) -> dict[str, tuple[str, bool]]:
    """name -> (value, is_set) from VictoriaMetrics' `flag{name, value, is_set}` series."""
    return {
        labels["name"]: (labels.get("value", ""), labels.get("is_set") == "true")
        for name, labels, _ in samples
        if name == "flag" and "name" in labels
    }


def vm_version(samples: list[tuple[str, dict[str, str], float]]) -> str:
    """ "1.79.5" from `vm_app_version{short_version="v1.79.5"}` ("" when the build set none)."""
    for name, labels, _ in samples:
        if name == "vm_app_version":
            return labels.get("short_version", "").removeprefix("v")
    return ""


def parse_tsdb(data: dict[str, Any], limit: int) -> TsdbStatus:
    """Prometheus' `headStats.numSeries` or VictoriaMetrics' `totalSeries`."""
    head = data["headStats"]["numSeries"] if "headStats" in data else data["totalSeries"]
    return TsdbStatus(
        head_series=int(head),
        top_metrics=[(str(m["name"]), int(m["value"])) for m in data["seriesCountByMetricName"]][
            :limit
        ],
    )


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
