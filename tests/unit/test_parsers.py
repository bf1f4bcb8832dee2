"""Random response shapes given to every client parser: a typed BadResponse, never a crash.
(A mock transport here is the point: no real server answers with random shapes.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opskit.clients.alertmanager import AlertmanagerClient
from opskit.clients.grafana import GrafanaClient
from opskit.clients.prometheus import PrometheusClient
from opskit.errors import BackendError, BadResponse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "status",
                    "data",
                    "activeTargets",
                    "labels",
                    "result",
                    "resultType",
                    "groups",
                    "rules",
                    "name",
                    "value",
                    "health",
                    "scrapeUrl",
                    "metric",
                    "fingerprint",
                    "x",
                    "version",
                    "id",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


def client_for(cls: type[Any], body: Any) -> Any:
    payload = json.dumps(body).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=payload, headers={"content-type": "application/json"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x")
    return cls(http, retries=0)


CALLS: dict[str, tuple[type[Any], Callable[[Any], Awaitable[Any]]]] = {
    "prometheus.targets": (PrometheusClient, lambda c: c.targets()),
    "prometheus.query": (PrometheusClient, lambda c: c.query("up")),
    "prometheus.rules": (PrometheusClient, lambda c: c.rules()),
    "prometheus.flags": (PrometheusClient, lambda c: c.flags()),
    "alertmanager.alerts": (AlertmanagerClient, lambda c: c.alerts()),
    "alertmanager.silences": (AlertmanagerClient, lambda c: c.silences()),
    "grafana.health": (GrafanaClient, lambda c: c.health()),
    "grafana.org": (GrafanaClient, lambda c: c.org()),
}


@pytest.mark.parametrize("call", list(CALLS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values)
def test_random_shapes_give_bad_response(call: str, body: Any) -> None:
    cls, fn = CALLS[call]

    async def go() -> None:
        client = client_for(cls, body)
        try:
            await fn(client)
        except BadResponse:
            pass
        except BackendError as exc:  # pragma: no cover - a wrong error class is a failure
            raise AssertionError(f"{type(exc).__name__} for a 200 answer") from exc
        finally:
            await client.aclose()

    asyncio.run(go())


@pytest.mark.parametrize("call", list(CALLS))
def test_garbage_bytes_give_bad_response(call: str) -> None:
    cls, fn = CALLS[call]

    async def go() -> None:
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=b"\xff\xfe{not json")

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x")
        with pytest.raises(BadResponse):
            await fn(cls(http, retries=0))
        await http.aclose()

    asyncio.run(go())
