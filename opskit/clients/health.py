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
    error = "" if ok else f"HTTP {response.status_code}"
    return ServiceHealth(service.name, service.url, ok, response.status_code, round(ms, 1), error)
