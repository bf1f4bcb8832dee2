"""Jaeger's query API (the JSON API its UI uses, on the UI's port 16686) and the
OpenTelemetry Collector's own endpoints: the health_check extension (13133), the OTLP
receivers (4318 HTTP, 4317 gRPC) and its internal metrics (8888 `/metrics`).

Jaeger v2 is itself a Collector build, so one process may answer all of them.

- `/api/services` -> `{"data": ["svc", ...]}`
- `/api/services/{service}/operations` -> `{"data": ["op", ...]}`
- `/api/traces?service=&operation=&start=&end=&limit=&minDuration=&tags=` (start and end
  in microseconds, tags a JSON object) -> `{"data": [trace, ...]}`, each trace
  `{"traceID", "spans": [{"spanID", "operationName", "references": [{"refType",
  "spanID"}], "startTime" (us), "duration" (us), "tags": [{"key", "type", "value"}],
  "logs": [{"timestamp", "fields": [...]}], "processID"}], "processes": {"p1":
  {"serviceName", "tags"}}}`
- `/api/traces/{traceID}` -> `{"data": [trace]}` (404 when unknown)
- `/api/dependencies?endTs=&lookback=` (milliseconds) -> `{"data": [{"parent", "child",
  "callCount"}]}`
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from opskit.clients.base import HttpBackend, describe_transport_error, off_loop
from opskit.errors import BackendError
from opskit.models import ServiceHealth
from opskit.models_tracing import Dependency, Span, Trace

KINDS = ("server", "client", "producer", "consumer", "internal")


def _us(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def _tags(raw: Any) -> dict[str, Any]:
    return {str(t["key"]): t.get("value") for t in raw or []}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _status(tags: dict[str, Any]) -> str:
    code = str(tags.get("otel.status_code", "")).upper()
    if _truthy(tags.get("error")) or code == "ERROR":
        return "ERROR"
    return "OK" if code == "OK" else "UNSET"


def _message(tags: dict[str, Any], logs: Any) -> str:
    for key in ("otel.status_description", "error.message", "exception.message"):
        if tags.get(key):
            return str(tags[key])[:300]
    for entry in logs or []:  # the OTel SDK records exceptions as span events
        fields = _tags(entry.get("fields"))
        for key in ("exception.message", "message", "error.object"):
            if fields.get(key):
                kind = fields.get("exception.type")
                text = f"{kind}: {fields[key]}" if kind else str(fields[key])
                return text[:300]
    return ""


def parse_trace(raw: dict[str, Any]) -> Trace:
    """One trace of the query API, its spans in tree order (a span, then its children by
    start time); a span whose parent is not in the trace is a root."""
    processes = {
        str(k): str(v.get("serviceName", "")) for k, v in (raw.get("processes") or {}).items()
    }
    spans: dict[str, Span] = {}
    for s in raw["spans"]:
        tags = _tags(s.get("tags"))
        parent = ""
        for ref in s.get("references") or []:
            if ref.get("refType", "CHILD_OF") == "CHILD_OF":
                parent = str(ref["spanID"])
                break
        kind = str(tags.pop("span.kind", "")).lower()
        span = Span(
            span_id=str(s["spanID"]),
            parent_id=parent,
            service=processes.get(str(s.get("processID", "")), ""),
            operation=str(s["operationName"]),
            start=datetime.fromtimestamp(int(s["startTime"]) / 1_000_000, UTC),
            duration_ms=int(s["duration"]) / 1000,
            status=_status(tags),
            kind=kind if kind in KINDS else "",
            attributes=tags,
            message="",
        )
        if span.error:
            span.message = _message(tags, s.get("logs"))
        spans[span.span_id] = span
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    for span in spans.values():
        if span.parent_id and span.parent_id in spans and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)
    ordered: list[Span] = []
    seen: set[str] = set()

    def walk(span: Span, depth: int) -> None:
        if span.span_id in seen:
            return
        seen.add(span.span_id)
        span.depth = depth
        ordered.append(span)
        for child in sorted(children.get(span.span_id, []), key=lambda c: c.start):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda r: r.start):
        walk(root, 0)
    for span in spans.values():  # a cycle of references: still listed
        if span.span_id not in seen:
            walk(span, 0)
    if not ordered:
        raise ValueError("a trace without spans")
    root = ordered[0]
    start = min(s.start for s in ordered)
    end = max(s.start.timestamp() + s.duration_ms / 1000 for s in ordered)
    return Trace(
        trace_id=str(raw["traceID"]),
        service=root.service,
        operation=root.operation,
        start=start,
        duration_ms=round((end - start.timestamp()) * 1000, 3),
        spans=ordered,
        errors=sum(s.error for s in ordered),
        services=sorted({s.service for s in ordered if s.service}),
    )


def _data(body: Any) -> Any:
    if not isinstance(body, dict) or "data" not in body:
        raise ValueError("no data envelope")
    errors = body.get("errors")
    if errors and not body["data"]:
        raise ValueError(f"errors: {errors}")
    return body["data"] or []


class JaegerClient(HttpBackend):
    name = "jaeger"

    async def services(self) -> list[str]:
        body = await self.get_json("/api/services")
        return self.parse("services", lambda: sorted(str(s) for s in _data(body)))

    async def operations(self, service: str) -> list[str]:
        body = await self.get_json(f"/api/services/{quote(service, safe='')}/operations")
        return self.parse("operations", lambda: sorted(str(s) for s in _data(body)))

    async def traces(
        self,
        service: str,
        start: datetime,
        end: datetime,
        limit: int = 100,
        operation: str | None = None,
        tags: dict[str, str] | None = None,
        min_duration: str | None = None,
    ) -> list[Trace]:
        params: dict[str, Any] = {
            "service": service,
            "start": _us(start),
            "end": _us(end),
            "limit": limit,
        }
        if operation:
            params["operation"] = operation
        if tags:
            params["tags"] = json.dumps(tags, separators=(",", ":"))
        if min_duration:
            params["minDuration"] = min_duration
        body = await self.get_json("/api/traces", params)
        return await off_loop(self.parse, "traces", lambda: [parse_trace(t) for t in _data(body)])

    async def trace(self, trace_id: str) -> Trace:
        body = await self.get_json(f"/api/traces/{quote(trace_id, safe='')}")
        return self.parse("trace", lambda: parse_trace(_data(body)[0]))

    async def dependencies(self, end: datetime, lookback_s: float) -> list[Dependency]:
        params = {"endTs": int(end.timestamp() * 1000), "lookback": int(lookback_s * 1000)}
        body = await self.get_json("/api/dependencies", params)
        return self.parse(
            "dependencies",
            lambda: [
                Dependency(str(d["parent"]), str(d["child"]), int(d.get("callCount", 0)))
                for d in _data(body)
            ],
        )

    async def health(self) -> ServiceHealth:
        """The query API answering `/api/services` (the UI's root answers even when the
        query service cannot read its storage); never raises."""
        url = f"{str(self.http.base_url).rstrip('/')}/api/services"
        t0 = time.perf_counter()
        try:
            found = await self.services()
        except Exception as exc:  # a BackendError, or a bug: a finding either way
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            return ServiceHealth("jaeger", url, False, None, None, str(reason)[:200])
        ms = round((time.perf_counter() - t0) * 1000, 1)
        return ServiceHealth(
            "jaeger", url, True, 200, ms, "", "healthy", {}, metrics={"services": len(found)}
        )


# ------------------------------------------------------------------ the collector


def _collector_verdict(body: Any) -> tuple[bool | None, str, dict[str, str]]:
    """healthcheck (v1): `{"status": "Server available", "upSince", "uptime"}`;
    healthcheckv2: `{"healthy": true, "status": "StatusOK", "components": {...}}` with
    nested components of the same shape. (healthy or None, status, unhealthy parts)."""
    if not isinstance(body, dict):
        return None, "", {}
    status = str(body.get("status", ""))
    healthy: bool | None = None
    if isinstance(body.get("healthy"), bool):
        healthy = body["healthy"]
    elif status:
        healthy = status.lower() in ("server available", "statusok", "ok")
    bad: dict[str, str] = {}

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        for name, child in (node.get("components") or {}).items():
            if not isinstance(child, dict):
                continue
            where = f"{path}/{name}" if path else str(name)
            if child.get("healthy") is False or str(child.get("status", "")).lower() in (
                "statuspermanenterror",
                "statusrecoverableerror",
                "statusfatalerror",
            ):
                bad[where] = str(child.get("status", "unhealthy"))
            walk(child, where)

    walk(body, "")
    return healthy, status, bad


async def collector_health(http: httpx.AsyncClient, url: str, timeout: float) -> ServiceHealth:
    """The health_check extension (v1 or v2); never raises."""
    t0 = time.perf_counter()
    try:
        response = await http.get(url, timeout=timeout)
    except httpx.TimeoutException:
        return ServiceHealth(
            "otel-collector", url, False, None, None, f"no answer within {timeout:g}s"
        )
    except httpx.TransportError as exc:
        return ServiceHealth(
            "otel-collector", url, False, None, None, describe_transport_error(exc)
        )
    ms = round((time.perf_counter() - t0) * 1000, 1)
    try:
        body = response.json()
    except ValueError:
        body = None
    healthy, status, bad = _collector_verdict(body)
    ok = response.status_code < 400 and healthy is not False
    error = "" if ok else f"HTTP {response.status_code}" + (f" ({status})" if status else "")
    return ServiceHealth(
        "otel-collector",
        url,
        ok,
        response.status_code,
        ms,
        error,
        "healthy" if ok and not bad else ("unhealthy" if bad else status),
        bad,
    )


async def otlp_http_health(http: httpx.AsyncClient, base: str, timeout: float) -> ServiceHealth:
    """POST an empty OTLP/HTTP export request (a valid, empty protobuf message) to
    `/v1/traces`: 200 means the receiver accepts traces. Never raises."""
    url = f"{base.rstrip('/')}/v1/traces"
    t0 = time.perf_counter()
    try:
        response = await http.post(
            url, content=b"", headers={"Content-Type": "application/x-protobuf"}, timeout=timeout
        )
    except httpx.TimeoutException:
        return ServiceHealth("otlp-http", url, False, None, None, f"no answer within {timeout:g}s")
    except httpx.TransportError as exc:
        return ServiceHealth("otlp-http", url, False, None, None, describe_transport_error(exc))
    ms = round((time.perf_counter() - t0) * 1000, 1)
    ok = response.status_code < 300
    error = "" if ok else f"HTTP {response.status_code}: {response.text[:120].strip()}"
    return ServiceHealth("otlp-http", url, ok, response.status_code, ms, error)


async def tcp_health(name: str, url: str, timeout: float) -> ServiceHealth:
    """A TCP connect to the OTLP/gRPC port (httpx speaks no gRPC); never raises."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 4317
    t0 = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return ServiceHealth(name, url, False, None, None, f"no answer within {timeout:g}s")
    except OSError as exc:
        return ServiceHealth(name, url, False, None, None, describe_transport_error(exc))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    ms = round((time.perf_counter() - t0) * 1000, 1)
    return ServiceHealth(name, url, True, None, ms, "", "listening")


def parse_prometheus_text(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The Prometheus text exposition format: metric name -> [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        labels: dict[str, str] = {}
        if "{" in line:
            name, _, rest = line.partition("{")
            body, _, tail = rest.rpartition("}")
            labels = _labels(body)
        else:
            name, _, tail = line.partition(" ")
        fields = tail.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if not math.isnan(value):
            out.setdefault(name.strip(), []).append((labels, value))
    return out


def _labels(body: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i = 0
    while i < len(body):
        eq = body.find("=", i)
        if eq < 0:
            break
        key = body[i:eq].strip().lstrip(",").strip()
        j = eq + 1
        if j >= len(body) or body[j] != '"':
            break
        j += 1
        value = []
        while j < len(body) and body[j] != '"':
            if body[j] == "\\" and j + 1 < len(body):
                j += 1
                value.append({"n": "\n"}.get(body[j], body[j]))
            else:
                value.append(body[j])
            j += 1
        labels[key] = "".join(value)
        i = j + 1
    return labels


class CollectorMetricsClient(HttpBackend):
    """The collector's internal telemetry (`service::telemetry::metrics`, :8888)."""

    name = "otel-collector"
    url = ""

    async def scrape(self, url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
        self.url = url
        response = await self._get(url, None)
        if response.status_code >= 300:
            self.decode(response)  # raises the typed error
        return await off_loop(self.parse, "metrics", lambda: parse_prometheus_text(response.text))

    def transport_error(self, exc: httpx.TransportError) -> BackendError:
        error = super().transport_error(exc)
        return type(error)(self.name, f"{self.url}: {error.reason.lstrip(': ')}")
