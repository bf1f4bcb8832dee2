"""Prometheus HA replicas as one (issue 19) against the HA lab's two real replicas:
merged targets, a target down on one replica only, one replica stopped and back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from opskit.clients.prom_replicas import PrometheusReplicas
from opskit.clients.prometheus import PrometheusClient
from opskit.config import Settings
from opskit.http import build_http
from opskit.models import Membership, Target
from opskit.stack import Stack
from tests.conftest import get_json
from tests.ha.conftest import HALab, ha_server_stopped, ha_wait_for

T = TypeVar("T")


def replica_targets(url: str, health: str | None = None) -> set[tuple[str, str]]:
    """(job, instance) of the replica's active targets (of that health), from its API."""
    try:
        body = get_json(f"{url}/api/v1/targets?state=active")
    except OSError:
        return set()
    return {
        (t["labels"]["job"], t["labels"]["instance"])
        for t in body["data"]["activeTargets"]
        if health is None or t["health"] == health
    }


def settled(lab: HALab) -> None:
    """Both replicas scraping the same targets, every one but `dead` up on both (a
    replica just (re)started has none yet, and other tests share the lab)."""

    def same() -> bool:
        a, b = (replica_targets(url) for url in lab.prometheus)
        up = [replica_targets(url, "up") for url in lab.prometheus]
        expected = {t for t in a if t[0] != "dead"}
        return bool(a) and a == b and all(u == expected for u in up)

    assert ha_wait_for(same, 90), "the replicas do not scrape the same targets, all up"


async def read(settings: Settings, fn: Callable[[Stack], Awaitable[T]]) -> T:
    async with Stack(settings) as stack:
        return await fn(stack)


async def targets_and_membership(settings: Settings) -> tuple[list[Target], Membership]:
    async def go(stack: Stack) -> tuple[list[Target], Membership]:
        targets = await stack.prometheus.targets()
        (membership,) = [m for m in await stack.memberships() if m.backend == "prometheus"]
        return targets, membership

    return await read(settings, go)


def opskit(lab: HALab, *args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", *args],
        env=lab.env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


async def test_the_stack_merges_both_replicas(ha_lab: HALab, ha_settings: Settings) -> None:
    settled(ha_lab)
    async with Stack(ha_settings) as stack:
        assert isinstance(stack.prometheus, PrometheusReplicas)
        targets = await stack.prometheus.targets()
    one = replica_targets(ha_lab.prometheus_a)
    assert one == replica_targets(ha_lab.prometheus_b)  # the lab scrapes the same
    assert {(t.job, t.instance) for t in targets} == one
    assert len(targets) == len(one)  # one row per real target, not one per replica
    for t in targets:
        assert set(t.replicas) == {"a", "b"}, t  # named by their `replica` external label
    dead = next(t for t in targets if t.job == "dead")
    assert dead.health == "down" and dead.replicas == {"a": "down", "b": "down"}
    edge = next(t for t in targets if t.instance == "edge-1")
    assert edge.health == "up" and edge.replicas == {"a": "up", "b": "up"}, edge


async def test_alerts_and_rules_merge_into_one_each(ha_settings: Settings) -> None:
    def each(url: str) -> PrometheusClient:
        cfg = ha_settings.prometheus.model_copy(update={"url": url})
        return PrometheusClient(build_http("prometheus", cfg), cfg.retries)

    async with Stack(ha_settings) as stack:
        alerts = await stack.prometheus.alerts()
        rules = await stack.prometheus.rules()
        single = each(ha_settings.prometheus.members[0])
        try:
            one_alerts, one_rules = await single.alerts(), await single.rules()
        finally:
            await single.aclose()
    names = sorted(a.labels["alertname"] for a in alerts)
    assert names == sorted(a.labels["alertname"] for a in one_alerts)
    assert names.count("Watchdog") == 1 and "HALabWarning" in names
    assert all("replica" not in a.labels for a in alerts)
    assert sorted((r.group, r.name) for r in rules) == sorted((r.group, r.name) for r in one_rules)


async def test_a_target_down_on_replica_b_only(ha_lab: HALab, ha_settings: Settings) -> None:
    settled(ha_lab)
    edge = ha_lab.edge_file("b")
    original = edge.read_text()
    groups: list[dict[str, Any]] = json.loads(original)
    for group in groups:
        group["targets"] = [ha_lab.dead]  # nothing listens there; instance stays edge-1
    try:
        tmp = edge.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        os.replace(tmp, edge)  # atomically, as file_sd wants

        async def down_on_b() -> tuple[list[Target], Membership] | None:
            targets, membership = await targets_and_membership(ha_settings)
            row = next((t for t in targets if t.instance == "edge-1"), None)
            return (targets, membership) if row and row.replicas.get("b") == "down" else None

        found = await poll(down_on_b, 60)
        assert found is not None, "edge-1 never went down on replica b"
        targets, membership = found
        rows = [t for t in targets if t.instance == "edge-1"]
        assert len(rows) == 1  # still one target: same job and labels on both
        row = rows[0]
        assert row.replicas == {"a": "up", "b": "down"} and row.health == "down"
        assert row.last_error.startswith("down on b: ") and ha_lab.dead in row.last_error
        assert "a" not in row.replica_errors and ha_lab.dead in row.replica_errors["b"]
        assert any(
            "down on some replicas only" in d and "edge/edge-1 (down on b)" in d
            for d in membership.disagreements
        ), membership.disagreements
        rc, out, _ = opskit(ha_lab, "targets", "--job", "edge")
        assert rc == 2 and "a up, b down" in out and "down on b" in out
        rc, out, _ = opskit(ha_lab, "targets", "--job", "edge", "--json")
        (shown,) = json.loads(out)
        assert shown["replicas"] == {"a": "up", "b": "down"}
    finally:
        edge.write_text(original)

    async def up_again() -> bool:
        targets, _ = await targets_and_membership(ha_settings)
        return any(t.instance == "edge-1" and t.health == "up" for t in targets)

    assert await poll(up_again, 60), "edge-1 did not come back on replica b"


async def poll(fn: Callable[[], Awaitable[T]], timeout: float) -> T | None:
    """An async `ha_wait_for`: fn() until truthy or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.5)


async def test_replica_b_stopped_then_back(ha_lab: HALab, ha_settings: Settings) -> None:
    settled(ha_lab)
    before, _ = await targets_and_membership(ha_settings)
    with ha_server_stopped("prometheus_b"):
        targets, membership = await targets_and_membership(ha_settings)
        assert {t.key for t in targets} == {t.key for t in before}  # complete, from a
        assert all(t.replicas.keys() == {"a"} for t in targets)
        assert membership.headline() == "1/2 replicas" and membership.degraded
        (down,) = membership.down
        assert down.url == ha_lab.prometheus_b and "connection refused" in down.error

        samples = await read(ha_settings, lambda s: s.prometheus.query("up"))
        assert samples, "a query must still answer (from replica a)"
        alerts = await read(ha_settings, lambda s: s.prometheus.alerts())
        assert "Watchdog" in {a.labels["alertname"] for a in alerts}

        rc, out, err = opskit(ha_lab, "targets")
        assert rc == 2, err  # the dead target is down: critical, not unreachable (3)
        assert "a down" in out and "a up" in out and ", b " not in out
        rc, out, err = opskit(ha_lab, "status", "--json")
        status = json.loads(out)
        assert rc != 3 and status["sources"]["prometheus"]["ok"], err
        replica_findings = [f for f in status["findings"] if "1/2 replicas" in json.dumps(f)]
        assert replica_findings, status["findings"]
        assert {f["severity"] for f in replica_findings} == {"warning"}
        assert status["targets"]["total"] == len(before)

    async def both() -> bool:
        _, membership = await targets_and_membership(ha_settings)
        return membership.headline() == "2/2 replicas"

    assert await poll(both, 90), "replica b did not come back"
    targets, membership = await targets_and_membership(ha_settings)
    assert all(set(t.replicas) == {"a", "b"} for t in targets)
    assert ha_wait_for(lambda: replica_targets(ha_lab.prometheus_b), 30)


async def test_the_targets_screen_shows_each_replica(ha_lab: HALab, ha_settings: Settings) -> None:
    from opskit.screens.app import create_app
    from opskit.screens.details import DetailPane
    from opskit.screens.tables import TargetsScreen
    from opskit.screens.widgets import KeyedTable

    settled(ha_lab)
    app = create_app(ha_settings, refresh=2.0)
    async with app.run_test(size=(200, 45)) as pilot:
        await pilot.press("2")

        def dead_row() -> str | None:
            screen = app.screen
            if not isinstance(screen, TargetsScreen):
                return None
            keys = screen.query_one(KeyedTable).keys
            return next((k for k in keys if k.startswith("dead|")), None)

        async def shown() -> str | None:
            await pilot.pause()
            return dead_row()

        key = await poll(shown, 40)
        assert key is not None, "the Targets screen never listed the dead target"
        screen = app.screen
        assert isinstance(screen, TargetsScreen) and screen.clustered
        table = screen.query_one(KeyedTable)
        assert "replicas" in screen.COLUMNS
        table.focus()
        table.move_cursor(row=list(table.keys).index(key))
        await pilot.pause()
        record = next(t for t in app.state["targets"].value or () if t.key == key)
        assert "a down, b down" in [str(c) for c in screen.cells(record)]
        text = screen.query_one(DetailPane).text
        assert "replica   a down" in text and "replica   b down" in text, text
        assert text.count(ha_lab.dead) >= 3  # the target's error, then a's and b's


def reloaded_at(url: str) -> float:
    """When the replica last loaded its config, from its own /metrics (not a query: the
    lab scrapes both replicas, every 5 s): Prometheus'
    `prometheus_config_last_reload_success_timestamp_seconds`."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    name = "prometheus_config_last_reload_success_timestamp_seconds "
    (line,) = [x for x in text.splitlines() if x.startswith(name)]
    return float(line.split()[1])


def test_reload_reloads_every_replica(ha_lab: HALab) -> None:
    before = [reloaded_at(url) for url in ha_lab.prometheus]
    rc, out, err = opskit(ha_lab, "prometheus", "reload")
    assert rc == 0, err
    assert "reloaded on all 2 replicas" in out
    after = [reloaded_at(url) for url in ha_lab.prometheus]
    assert all(b > a for a, b in zip(before, after, strict=True)), (before, after)
