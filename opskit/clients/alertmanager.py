"""Alertmanager HTTP API v2."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from opskit.clients.base import HttpBackend, parse_time, str_dict
from opskit.matchers import Matcher
from opskit.models import Alert, Silence


class AlertmanagerClient(HttpBackend):
    name = "alertmanager"

    async def healthy(self) -> None:
        await self.get_ok("/-/healthy")

    async def alerts(
        self,
        silenced: bool = True,
        inhibited: bool = True,
        matchers: list[Matcher] | None = None,
    ) -> list[Alert]:
        params: list[tuple[str, Any]] = [
            ("active", "true"),
            ("silenced", str(silenced).lower()),
            ("inhibited", str(inhibited).lower()),
            ("unprocessed", "true"),
        ]
        params += [("filter", str(m)) for m in matchers or []]
        return await self.get_records("/api/v2/alerts", params, "alerts", _alerts)

    async def silences(self) -> list[Silence]:
        body = await self.get_json("/api/v2/silences")
        return self.parse("silences", lambda: [_silence(s) for s in body])

    async def add_silence(
        self,
        matchers: list[Matcher],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        payload = {
            "matchers": [m.to_api() for m in matchers],
            "startsAt": starts_at.isoformat(),
            "endsAt": ends_at.isoformat(),
            "createdBy": created_by,
            "comment": comment,
        }
        body = await self.send("POST", "/api/v2/silences", payload)
        return self.parse("silence", lambda: str(body["silenceID"]))

    async def expire_silence(self, silence_id: str) -> None:
        await self.send("DELETE", f"/api/v2/silence/{silence_id}")

    async def status(self) -> dict[str, Any]:
        body = await self.get_json("/api/v2/status")
        return self.parse("status", lambda: dict(body))

    async def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Post alerts as a client would (`POST /api/v2/alerts`); an `endsAt` in the past
        resolves one."""
        await self.send("POST", "/api/v2/alerts", alerts)


def _alerts(body: list[dict[str, Any]]) -> list[Alert]:
    """Thousands of alerts share a few timestamps (one rule evaluation, one post): each
    distinct one is parsed once."""
    times: dict[object, datetime | None] = {}

    def when(value: object) -> datetime | None:
        try:
            return times[value]
        except KeyError:
            parsed = times[value] = parse_time(value)
            return parsed
        except TypeError:  # not hashable: parse_time says what it is
            return parse_time(value)

    return [_alert(a, when) for a in body]


def _alert(a: dict[str, Any], when: Callable[[object], datetime | None] = parse_time) -> Alert:
    labels = str_dict(a["labels"])
    status = a["status"]
    get = a.get
    silenced, inhibited = status.get("silencedBy"), status.get("inhibitedBy")
    return Alert(
        fingerprint=str(a["fingerprint"]),
        alertname=labels.get("alertname", ""),
        severity=labels.get("severity", "none"),
        state=str(status["state"]),
        labels=labels,
        annotations=str_dict(get("annotations") or {}),
        starts_at=when(get("startsAt")),
        ends_at=when(get("endsAt")),
        updated_at=when(get("updatedAt")),
        generator_url=str(get("generatorURL", "")),
        silenced_by=[str(s) for s in silenced] if silenced else [],
        inhibited_by=[str(s) for s in inhibited] if inhibited else [],
        receivers=[str(r["name"]) for r in get("receivers") or []],
    )


def _silence(s: dict[str, Any]) -> Silence:
    return Silence(
        id=str(s["id"]),
        state=str(s["status"]["state"]),
        matchers=[str(Matcher.from_api(m)) for m in s["matchers"]],
        starts_at=parse_time(s.get("startsAt")),
        ends_at=parse_time(s.get("endsAt")),
        created_by=str(s.get("createdBy", "")),
        comment=str(s.get("comment", "")),
    )
