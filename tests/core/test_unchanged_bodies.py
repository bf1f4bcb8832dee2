"""A large body byte for byte the same as the last poll's is not decoded or parsed again:
the last records come back (opskit/clients/base.py `get_records`). Against the lab's
Alertmanager; the threshold is lowered so the lab's small bodies count as large."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from opskit.clients import base
from opskit.clients.alertmanager import AlertmanagerClient
from opskit.matchers import parse_matcher
from tests.conftest import Lab, wait_for


def _post_alert(lab: Lab, name: str, seconds: float) -> None:
    now = datetime.now(UTC)
    body = [
        {
            "labels": {"alertname": name, "severity": "info"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(seconds=seconds)).isoformat(),
        }
    ]
    req = urllib.request.Request(
        f"{lab.alertmanager}/api/v2/alerts",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).close()


def test_an_unchanged_body_gives_the_same_records_and_a_changed_one_new(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "LARGE_BODY", 0)
    name = f"OpskitUnchangedBody{uuid.uuid4().hex[:8]}"
    matcher = [parse_matcher(f"alertname={name}")]

    async def read() -> list[list[object]]:
        async with httpx.AsyncClient(base_url=lab.alertmanager, timeout=10) as http:
            am = AlertmanagerClient(http)
            first = await am.alerts(matchers=matcher)
            second = await am.alerts(matchers=matcher)
            assert first == [] and second is first  # the same body: not parsed again
            _post_alert(lab, name, 20)
            third = await am.alerts(matchers=matcher)
            fourth = await am.alerts(matchers=matcher)
            return [first, second, third, fourth]

    first, _, third, fourth = asyncio.run(read())
    assert third is not first  # the body changed: parsed again
    assert [a.alertname for a in third] == [name]  # type: ignore[attr-defined]
    assert fourth is third or fourth == third
    # leave the lab as it was: the alert ends within 20 s
    _post_alert(lab, name, 0)
    wait_for(
        lambda: (
            not [
                a
                for a in json.load(urllib.request.urlopen(f"{lab.alertmanager}/api/v2/alerts"))
                if a["labels"]["alertname"] == name
            ]
        ),
        timeout=30,
    )
