"""Grafana HTTP API (the parts the core needs; backups extend it)."""

from __future__ import annotations

from typing import Any

from opskit.clients.base import HttpBackend


class GrafanaClient(HttpBackend):
    name = "grafana"

    async def health(self) -> dict[str, Any]:
        body = await self.get_json("/api/health")
        return self.parse(
            "health",
            lambda: {"version": str(body["version"]), "database": str(body.get("database", ""))},
        )

    async def org(self) -> dict[str, Any]:
        """The signed-in organisation; proves the credentials work."""
        body = await self.get_json("/api/org")
        return self.parse("org", lambda: {"id": int(body["id"]), "name": str(body["name"])})
