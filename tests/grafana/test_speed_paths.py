"""The fast paths of the Grafana backup and restore (issue 16): how many requests they
make (the double counts them, `GET /__lab/stats`) and that concurrency still yields to
Grafana's 429 answers. Request counts are regression guards; times are never asserted
(those are `make bench`'s)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.grafana.conftest import Grafana, admin, state
from tests.grafana.test_backup_restore import TOTAL

MODEL_GET = "GET ^/api/dashboards/uid/(?P<uid>[^/]+)$"  # the double's route, as it counts


def stats(grafana: Grafana) -> dict[str, int]:
    with admin(grafana.lab) as client:
        return dict(client.get("/__lab/stats").json())


def counted(grafana: Grafana, run: Callable[[], Any]) -> tuple[int, dict[str, int], Any]:
    """`run()`'s requests (less the stats request itself), per route, and its result."""
    before = stats(grafana)
    result = run()
    after = stats(grafana)
    routes = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    return after.get("total", 0) - before.get("total", 0) - 1, routes, result


def test_backup_reads_each_dashboard_once_and_its_permissions_once(grafana: Grafana) -> None:
    made, routes, result = counted(grafana, grafana.backup)
    assert result["counts"]["dashboards"] == TOTAL
    assert routes[MODEL_GET] == TOTAL  # each once
    # 2 per dashboard (model + permissions, at once), plus the listings of every kind
    assert made <= 2 * TOTAL + 60, routes


def test_restore_into_an_empty_grafana_reads_no_dashboard(grafana: Grafana) -> None:
    before = state(grafana.lab)
    result = grafana.backup()
    grafana.wipe()
    made, routes, (code, body, err) = counted(
        grafana, lambda: grafana.restore(result["path"], "--yes")
    )
    assert code == 0, err
    assert body["counts"]["created"] == TOTAL and body["verified"] > TOTAL
    # the plan's one search says every dashboard is absent: no GET per dashboard, neither
    # to plan nor to verify (the save's answer and one search listing); per dashboard
    # the save and its permissions, plus a constant for the other kinds
    assert MODEL_GET not in routes, routes
    assert made <= 2 * TOTAL + 80, routes
    assert state(grafana.lab) == before
    # and a second restore writes nothing (it reads what exists, to compare)
    code, body, err = grafana.restore(result["path"], "--yes")
    assert code == 0, err
    assert body["counts"]["unchanged"] == TOTAL and body["verified"] == 0


def test_backup_and_restore_wait_out_429_with_retry_after(grafana: Grafana) -> None:
    with admin(grafana.lab) as client:
        for path, method in (("/api/search", "GET"), ("/api/dashboards/uid/", "GET")):
            fault = {"path": path, "method": method, "status": 429,
                     "headers": {"Retry-After": "1"}, "count": 2}  # fmt: skip
            client.post("/__lab/fault", json=fault).raise_for_status()
    t0 = time.monotonic()
    result = grafana.backup()
    assert time.monotonic() - t0 >= 1.0  # Retry-After was honoured, not retried at once
    assert result["complete"] is True and result["counts"]["dashboards"] == TOTAL
    with admin(grafana.lab) as client:
        assert client.get("/__lab/fault").json() == []  # every 429 was answered
    grafana.wipe()
    with admin(grafana.lab) as client:
        fault = {"path": "/api/dashboards/db", "method": "POST", "status": 429,
                 "headers": {"Retry-After": "1"}, "count": 2}  # fmt: skip
        client.post("/__lab/fault", json=fault).raise_for_status()
    code, body, err = grafana.restore(result["path"], "--yes")
    assert code == 0, err
    assert body["counts"]["created"] == TOTAL and body["counts"]["failed"] == 0
    with admin(grafana.lab) as client:
        assert client.get("/__lab/fault").json() == []
