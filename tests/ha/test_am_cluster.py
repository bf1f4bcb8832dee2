"""The Alertmanager cluster as one, on the HA lab's three real peers: no duplicated or
lost alerts, a silence created once and replicated, a peer down shown as a degraded
cluster (a warning, not an outage), and recovery when it comes back (gossip brings it
the silence made while it was away).

APIs read directly, to check opskit against: Alertmanager's /api/v2/alerts
(`fingerprint`), /api/v2/silences and /api/v2/silence/{id} (`id`, `status.state`,
`comment`), /api/v2/status (`cluster.peers`), from its OpenAPI spec (api/v2/openapi.yaml).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from opskit.clients.am_cluster import AlertmanagerCluster
from opskit.config import Settings
from opskit.findings import Finding, exit_code
from opskit.models import Membership
from opskit.stack import Stack
from tests.conftest import ROOT, get_json
from tests.ha.conftest import HALab, ha_server_stopped, ha_wait_for

STOPPED = "alertmanager_3"  # the one server these tests may stop


def opskit(lab: HALab, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", *args],
        env=lab.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def fingerprints(peer: str) -> set[str]:
    return {a["fingerprint"] for a in get_json(f"{peer}/api/v2/alerts")}


def peer_silences(peer: str, comment: str) -> list[dict[str, Any]]:
    return [s for s in get_json(f"{peer}/api/v2/silences") if s["comment"] == comment]


def answers(peer: str) -> bool:
    try:
        get_json(f"{peer}/api/v2/status")
    except (urllib.error.URLError, OSError):
        return False
    return True


def silence_on(peer: str, silence_id: str) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = get_json(f"{peer}/api/v2/silence/{silence_id}")
    except (urllib.error.URLError, OSError):
        return None
    return body


def merged_alerts(settings: Settings) -> list[str]:
    async def go() -> list[str]:
        async with Stack(settings) as stack:
            assert isinstance(stack.alertmanager, AlertmanagerCluster)
            return [a.fingerprint for a in await stack.alertmanager.alerts()]

    return asyncio.run(go())


def membership(settings: Settings) -> Membership:
    async def go() -> Membership:
        async with Stack(settings) as stack:
            await stack.alertmanager.alerts()
            await stack.alertmanager.silences()
            (found,) = [m for m in await stack.memberships() if m.backend == "alertmanager"]
            return found

    return asyncio.run(go())


@pytest.fixture
def comment(ha_lab: HALab) -> Iterator[str]:
    """A comment unique to the test; every silence carrying it is expired afterwards."""
    text = f"opskit HA test {uuid.uuid4().hex[:10]}"
    yield text
    for peer in ha_lab.alertmanager:
        try:
            for s in peer_silences(peer, text):
                if s["status"]["state"] != "expired":
                    get_json(f"{peer}/api/v2/silence/{s['id']}", method="DELETE")
        except (urllib.error.URLError, OSError):
            continue


async def tui_while_down(settings: Settings, comment: str) -> tuple[str, str, list[str]]:
    """The TUI polling the cluster with a peer down: its top bar, its Overview's alerts
    tile, and what its silence action notified."""
    from datetime import timedelta

    from opskit.matchers import parse_matcher
    from opskit.screens.app import create_app
    from opskit.screens.base import ContextBar
    from opskit.screens.modals import SilenceRequest
    from opskit.screens.overview import AlertsTile

    app = create_app(settings, refresh=1.0)
    async with app.run_test(size=(160, 50)) as pilot:
        for _ in range(200):  # the first alerts poll reads the membership too
            m = app.state.clusters.get("alertmanager")
            if m is not None and m.headline() == "2/3 peers":
                break
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        bar = app.screen.query_one(ContextBar).bar
        assert bar is not None
        from opskit.screens.topbar import bar_text

        top = bar_text(bar, 160).plain
        tile = str(app.screen.query_one(AlertsTile).render())
        notes: list[str] = []
        shown = app.notify

        def notify(message: str, **kwargs: Any) -> None:
            notes.append(message)
            shown(message, **kwargs)

        app.notify = notify  # type: ignore[method-assign]
        matcher = parse_matcher(f"alertname=OpskitHATest{uuid.uuid4().hex[:8]}")
        await app.add_silence(
            SilenceRequest([matcher], timedelta(minutes=10), comment, "opskit-test")
        )
    return top, tile, notes


def add_silence(lab: HALab, comment: str) -> subprocess.CompletedProcess[str]:
    # a matcher no alert of the lab has: the other tests' alerts are not silenced
    name = f"alertname=OpskitHATest{uuid.uuid4().hex[:8]}"
    return opskit(lab, "silence", "add", name, "--duration", "10m", "--comment", comment)


def created_id(out: str) -> str:
    assert out.startswith("created "), out
    return out.split()[1].rstrip(";")


def test_all_peers_up_no_duplicated_alerts(ha_lab: HALab, ha_settings: Settings) -> None:
    peers = ha_lab.alertmanager
    # Prometheus sends to each peer on its own: wait for them to hold the same alerts
    agreed = ha_wait_for(lambda: len({frozenset(fingerprints(p)) for p in peers}) == 1, timeout=60)
    assert agreed, [sorted(fingerprints(p)) for p in peers]
    one_peer = fingerprints(peers[0])
    merged = merged_alerts(ha_settings)
    assert len(merged) == len(one_peer) and set(merged) == one_peer  # each alert once
    proc = opskit(ha_lab, "alerts", "--json")  # firing, not silenced: as one peer has them
    assert proc.returncode in (1, 2), proc.stderr
    shown = [a["fingerprint"] for a in json.loads(proc.stdout)]
    firing = get_json(f"{peers[0]}/api/v2/alerts?silenced=false&inhibited=false")
    assert len(shown) == len(firing) and set(shown) == {a["fingerprint"] for a in firing}
    listed = opskit(ha_lab, "alerts")
    first = listed.stdout.splitlines()[0]
    assert first.startswith("alertmanager cluster: 3/3 peers"), listed.stdout
    m = ha_wait_for(lambda: (m := membership(ha_settings)).degraded is False and m, timeout=60)
    assert m and m.headline() == "3/3 peers" and m.disagreements == []
    assert all(x.detail == "ready, 3 peers" and x.name for x in m.members)


def test_silence_created_once_and_replicated(ha_lab: HALab, comment: str) -> None:
    proc = add_silence(ha_lab, comment)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    silence_id = created_id(proc.stdout)
    assert proc.stdout.strip() == (
        f"created {silence_id} on {ha_lab.alertmanager[0]}; replicated to 3/3 peers"
    )
    for peer in ha_lab.alertmanager:  # exactly one silence, the same id on every peer
        assert [s["id"] for s in peer_silences(peer, comment)] == [silence_id], peer
    listed = opskit(ha_lab, "silence", "list", "--json")
    assert [s["id"] for s in json.loads(listed.stdout) if s["comment"] == comment] == [silence_id]
    expired = opskit(ha_lab, "silence", "expire", silence_id)
    assert expired.returncode == 0, expired.stdout + expired.stderr
    assert expired.stdout.strip().endswith("replicated to 3/3 peers"), expired.stdout
    for peer in ha_lab.alertmanager:
        assert peer_silences(peer, comment)[0]["status"]["state"] == "expired", peer


def test_a_peer_down_is_a_degraded_cluster_then_recovers(
    ha_lab: HALab, ha_settings: Settings, comment: str
) -> None:
    peers = ha_lab.alertmanager
    down = peers[2]
    before = fingerprints(peers[0])
    with ha_server_stopped(STOPPED):
        assert ha_wait_for(lambda: not answers(down), timeout=30)
        # status: the degraded finding is a warning; no backend is unreachable (not 3)
        proc = opskit(ha_lab, "status", "--json")
        assert proc.returncode in (1, 2), proc.stdout + proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["sources"]["alertmanager"]["ok"] is True
        (cluster,) = [c for c in summary["clusters"] if c["backend"] == "alertmanager"]
        assert cluster["headline"] == "2/3 peers" and cluster["degraded"] is True
        ours = [f for f in summary["findings"] if f["subject"] == "alertmanager cluster"]
        assert ours and all(f["severity"] == "warning" for f in ours)
        assert ours[0]["summary"].startswith(f"2/3 peers; {down} down: "), ours
        # on its own (without the lab's standing critical alerts) it is exit 1
        judged = [Finding(f["severity"], f["subject"], f["summary"]) for f in ours]
        assert exit_code(judged) == 1
        text = opskit(ha_lab, "status")
        assert f"alertmanager cluster: 2/3 peers; {down} down:" in text.stdout.replace("\n", " ")
        # no alert lost: every alert of the reachable peers, each once
        merged = merged_alerts(ha_settings)
        assert len(merged) == len(set(merged))
        assert before <= set(merged) and set(merged) >= fingerprints(peers[0])
        # per peer: the stopped one is unreachable, exit 1
        rows = opskit(ha_lab, "alerts", "--peers", "--json")
        assert rows.returncode == 1, rows.stdout + rows.stderr
        assert [r["ok"] for r in json.loads(rows.stdout)["peers"]] == [True, True, False]
        # a silence added now: created once, replicated to both reachable peers
        proc = add_silence(ha_lab, comment)
        assert proc.returncode == 1, proc.stdout + proc.stderr  # a warning: one peer down
        silence_id = created_id(proc.stdout)
        assert f"replicated to 2/2 reachable peers; {down} down: " in proc.stdout
        for peer in peers[:2]:
            assert [s["id"] for s in peer_silences(peer, comment)] == [silence_id]
        # the TUI: `alertmanager 2/3` in the top bar, the peers' line in the alerts tile,
        # its silence action says how far the silence replicated
        top, tile, notes = asyncio.run(tui_while_down(ha_settings, comment))
        assert "alertmanager 2/3" in top, top
        assert "cluster 2/3 peers" in tile and "127.0.0.1:29293" in tile, tile
        assert any("replicated to 2/2 reachable peers" in n for n in notes), notes
    # back: gossip brings it the silence, and the cluster is whole again
    assert ha_wait_for(lambda: silence_on(down, silence_id), timeout=60), "not gossiped"
    assert silence_id in [s["id"] for s in peer_silences(down, comment)]
    m = ha_wait_for(lambda: (m := membership(ha_settings)).headline() == "3/3 peers" and m)
    assert m, membership(ha_settings)
    assert ha_wait_for(lambda: not membership(ha_settings).degraded, timeout=150)
    expired = opskit(ha_lab, "silence", "expire", silence_id)
    assert expired.returncode == 0 and "replicated to 3/3 peers" in expired.stdout
