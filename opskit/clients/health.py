"""Plain health endpoints of the extra services (Kibana, Logstash, Jaeger, ...)."""

from __future__ import annotations

import time

import httpx

from opskit.clients.base import describe_transport_error
from opskit.config import Service
from opskit.models import ServiceHealth


async def check(http: httpx.AsyncClient, service: Service) -> ServiceHealth:
    """Never raises: a failing endpoint is a finding, not an error."""
    t0 = time.perf_counter()
    try:
        response = await http.get(service.url, timeout=service.timeout.total_seconds())
    except httpx.TimeoutException:
        return ServiceHealth(
            service.name,
            service.url,
            False,
            None,
            None,
            f"no answer within {service.timeout.total_seconds():g}s",
        )
    except httpx.TransportError as exc:
        return ServiceHealth(
            service.name, service.url, False, None, None, describe_transport_error(exc)
        )
    ms = (time.perf_counter() - t0) * 1000
    ok = response.status_code < 400
    reported, checks = _reported(response)
    error = "" if ok else f"HTTP {response.status_code}"
    if not ok and reported:
        error += f" ({reported})"
    return ServiceHealth(
        service.name, service.url, ok, response.status_code, round(ms, 1), error, reported, checks
    )


MAX_BODY = 1 << 20


def _reported(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The body's own verdict, for health endpoints that answer JSON such as
    `{"status": "degraded", "checks": {"redis": {"status": "unhealthy"}, ...}}` (the
    monitoring README's HEALTH_ENDPOINTS shape; Spring-style `components` too)."""
    if "json" not in response.headers.get("content-type", "") or len(response.content) > MAX_BODY:
        return "", {}
    try:
        body = response.json()
    except ValueError:
        return "", {}
    if not isinstance(body, dict):
        return "", {}
    status = body.get("status")
    reported = str(status) if isinstance(status, str | bool) else ""
    checks: dict[str, str] = {}
    raw = body.get("checks", body.get("components"))
    if isinstance(raw, dict):
        for name, value in raw.items():
            if isinstance(value, dict) and isinstance(value.get("status"), str):
                checks[str(name)] = value["status"]
            elif isinstance(value, str):
                checks[str(name)] = value
    return reported, checks
