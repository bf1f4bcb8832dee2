"""Pushgateway: push a group of metrics (text exposition format), read them back."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from opskit.clients.base import HttpBackend


def group_path(job: str, grouping: dict[str, str]) -> str:
    """`/metrics/job/JOB/LABEL/VALUE...`; values are path-escaped (an empty one would need
    Pushgateway's base64 form, so callers never pass one)."""
    parts = [f"job/{quote(job, safe='')}"]
    parts += [f"{quote(k, safe='')}/{quote(v, safe='')}" for k, v in sorted(grouping.items())]
    return "/metrics/" + "/".join(parts)


class PushgatewayClient(HttpBackend):
    name = "pushgateway"

    async def push(
        self, job: str, grouping: dict[str, str], body: str, replace: bool = False
    ) -> None:
        """POST (replace only the metrics named in `body`) or PUT (replace the group)."""
        try:
            response = await self.http.request(
                "PUT" if replace else "POST",
                group_path(job, grouping),
                content=body.encode(),
                headers={"Content-Type": "text/plain; version=0.0.4"},
            )
        except httpx.TransportError as exc:
            raise self.transport_error(exc) from exc
        self.decode(response)

    async def delete(self, job: str, grouping: dict[str, str]) -> None:
        await self.send("DELETE", group_path(job, grouping))

    async def groups(self) -> list[dict[str, Any]]:
        """Every group with its metrics, as `/api/v1/metrics` answers."""
        body = await self.get_json("/api/v1/metrics")
        return self.parse("metrics", lambda: [dict(g) for g in body["data"]])
