"""Lab services: logs (filled in by issue 13's work)."""

from __future__ import annotations

from labcore import Server

DEBIAN_PACKAGES: dict[str, str] = {}
SERVERS: list[Server] = []
