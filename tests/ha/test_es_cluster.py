"""Multi-node Elasticsearch (issue 19) against the HA lab's three nodes: `opskit cluster`
lists them with roles, heap, disk and shards; with es-3 stopped the cluster is yellow
(never red), the doctor explains the unassigned replicas (NODE_LEFT, the node, the
delay) and `opskit cluster` shows two nodes; started again it is green with three.
Snapshot, restore, the restore drill and retention run unchanged on the cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import urllib.error
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from opskit.config import Settings
from opskit.stack import Stack
from opskit.tasks.doctor import run_doctor
from tests.conftest import ROOT, get_json
from tests.ha.conftest import HALab, ha_server_stopped, ha_wait_for

NODES = ["es-1", "es-2", "es-3"]
STOPPED = "elasticsearch_3"  # the one server these tests may stop


@pytest.fixture
def env(ha_lab: HALab, tmp_path: Path) -> dict[str, str]:
    return ha_lab.env(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )


def opskit(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def opskit_json(env: dict[str, str], *args: str, codes: tuple[int, ...] = (0,)) -> Any:
    proc = opskit(env, *args, "--json")
    assert proc.returncode in codes, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    return json.loads(proc.stdout)


def health(ha_lab: HALab) -> dict[str, Any]:
    body: dict[str, Any] = get_json(f"{ha_lab.elasticsearch[0]}/_cluster/health")
    return body


def findings(report: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [f for a in report["areas"] for f in a["findings"] if f["check"] == check]


# ---------------------------------------------------------------------- the nodes
def test_cluster_lists_three_nodes_with_roles_heap_disk_and_shards(
    ha_lab: HALab, env: dict[str, str]
) -> None:
    out = opskit_json(env, "cluster")
    assert out["health"]["status"] == "green" and out["health"]["number_of_nodes"] == 3
    nodes = out["nodes"]
    assert [n["name"] for n in nodes] == NODES
    assert sum(n["master"] for n in nodes) == 1  # one elected master
    cat = {r["node"]: r for r in get_json(f"{ha_lab.elasticsearch[0]}/_cat/allocation?format=json")}
    for n in nodes:
        assert {"master", "data"} <= set(n["role_names"])
        assert 0 < n["heap_used_bytes"] < n["heap_max_bytes"]
        assert 0 < n["disk_used_bytes"] < n["disk_total_bytes"]
        assert n["shards"] == int(cat[n["name"]]["shards"])
    # every copy of the demo indices (7 days x 1 primary + 1 replica) on some node
    assert sum(n["shards"] for n in nodes) == out["health"]["active_shards"]

    text = opskit(env, "cluster")
    assert text.returncode == 0, text.stderr
    lines = [line for line in text.stdout.splitlines() if line.startswith("es-")]
    assert [line.split()[0] for line in lines] == NODES
    assert sum(" elected " in line for line in lines) == 1
    assert all("master, data" in line and "MiB /" in line and "GiB /" in line for line in lines)


# ---------------------------------------------------------------------- a node stopped
def test_a_stopped_node_is_yellow_explained_and_recovers(
    ha_lab: HALab, ha_settings: Settings, env: dict[str, str]
) -> None:
    assert health(ha_lab)["status"] == "green"
    ids = {r["name"]: r["id"] for r in get_json(
        f"{ha_lab.elasticsearch[0]}/_cat/nodes?format=json&h=id,name&full_id=true")}  # fmt: skip
    on_es3 = [
        r
        for r in get_json(f"{ha_lab.elasticsearch[0]}/_cat/shards?format=json&h=index,node")
        if r["node"] == "es-3"
    ]
    assert on_es3, "es-3 holds no shard copy: stopping it would show nothing"

    with ha_server_stopped(STOPPED):
        statuses: list[str] = []

        def yellow_with_two() -> bool:
            h = health(ha_lab)
            statuses.append(h["status"])
            return h["status"] == "yellow" and h["number_of_nodes"] == 2

        assert ha_wait_for(yellow_with_two, timeout=60), statuses[-5:]
        assert "red" not in statuses

        cluster = opskit_json(env, "cluster", codes=(1,))  # exit 1: yellow
        assert [n["name"] for n in cluster["nodes"]] == ["es-1", "es-2"]
        assert cluster["health"]["unassigned_shards"] == len(on_es3)

        proc = opskit(env, "doctor", "--only", "cluster", "--json")
        assert proc.returncode == 1, proc.stderr  # warnings, not critical
        report = json.loads(proc.stdout)
        (group,) = findings(report, "unassigned_by_cause")
        assert group["severity"] == "warning"  # replicas only: yellow, nothing lost
        ev = group["evidence"]
        assert ev["reason"] == "NODE_LEFT" and ev["primary"] is False
        assert ev["node_left_id"] == ids["es-3"] and ev["copies"] == len(on_es3)
        assert ev["can_allocate"] == "allocation_delayed"
        assert 0 < ev["remaining_delay_ms"] <= ev["configured_delay_ms"]
        assert group["summary"].startswith(f"{len(on_es3)} replica cop")
        assert f"NODE_LEFT (node {ids['es-3']} left)" in group["summary"]
        assert "index.unassigned.node_left.delayed_timeout" in group["summary"]
        (nodes,) = findings(report, "cluster_nodes")
        assert nodes["severity"] == "warning" and nodes["summary"].startswith("2 node(s): es-1")
        assert nodes["evidence"]["left"] == [ids["es-3"]]

        text = opskit(env, "doctor", "--only", "cluster")
        assert "NODE_LEFT" in text.stdout and ids["es-3"] in text.stdout

    assert health(ha_lab)["status"] == "green"  # ha_server_stopped waited for it
    back = opskit_json(env, "cluster")
    assert [n["name"] for n in back["nodes"]] == NODES
    report = opskit_json(env, "doctor", "--only", "cluster", codes=(0,))
    assert findings(report, "unassigned_by_cause")[0]["evidence"] == {"unassigned": 0}


def test_a_session_that_saw_the_node_names_it(ha_lab: HALab, ha_settings: Settings) -> None:
    """The doctor on a stack (the TUI's) that listed the nodes before es-3 left: the
    finding names es-3, not only its id."""

    async def go() -> list[str]:
        async with Stack(ha_settings) as stack:
            assert [n.name for n in await stack.elasticsearch.nodes()] == NODES
            with ha_server_stopped(STOPPED):
                ok = await asyncio.to_thread(
                    ha_wait_for, lambda: health(ha_lab)["status"] == "yellow", 60
                )
                assert ok
                report = await run_doctor(stack, only="cluster")
                return [f.summary for f in report.findings("unassigned_by_cause")]

    summaries = asyncio.run(go())
    assert len(summaries) == 1 and "(node es-3 (" in summaries[0], summaries


# ---------------------------------------------------------------------- backups on the cluster
def today_index() -> str:
    return f"logs-email-service-{datetime.now(UTC):%Y.%m.%d}"


def test_backup_restore_under_a_new_name_and_drill_on_the_cluster(
    ha_lab: HALab, env: dict[str, str]
) -> None:
    es = ha_lab.elasticsearch[1]  # another node than the one opskit talks to
    index = today_index()
    name = f"opskit-ha-{uuid.uuid4().hex[:8]}"
    restored = f"restored-{name}-{index}"
    try:
        out = opskit_json(env, "backup", "elasticsearch", "--indices", index, "--name", name)
        snap = out["snapshot"]
        assert snap["state"] == "SUCCESS" and snap["shards_failed"] == 0
        assert snap["indices"] == [index]
        assert get_json(f"{es}/_snapshot/backup/{name}")["snapshots"][0]["state"] == "SUCCESS"

        done = opskit_json(
            env, "restore", "elasticsearch", name, "--indices", index,
            "--rename-pattern", "(.+)", "--rename-replacement", f"restored-{name}-$1",
        )  # fmt: skip
        assert [i["index"] for i in done["indices"]] == [restored]
        count = get_json(f"{es}/{index}/_count")["count"]
        assert done["indices"][0]["docs"] == count > 0
        assert get_json(f"{es}/{restored}/_count")["count"] == count
        assert health(ha_lab)["status"] in ("green", "yellow")

        # the restore drill of that snapshot: restored under a scratch prefix, compared,
        # the copies deleted
        prefix = f"drill-{name}-"
        report = opskit_json(env, "drill", "elasticsearch", "--snapshot", name, "--prefix", prefix)
        assert report["status"] == "pass" and report["exit_code"] == 0, report
        (check,) = report["checks"]
        assert check["index"] == index and check["docs_restored"] == count
        assert get_json(f"{es}/_cat/indices/{prefix}*?format=json") == []
    finally:
        for url in (f"{es}/{restored}", f"{es}/_snapshot/backup/{name}"):
            with contextlib.suppress(urllib.error.HTTPError):
                get_json(url, method="DELETE")


def demo_indices(ha_lab: HALab) -> list[str]:
    url = f"{ha_lab.elasticsearch[0]}/_cat/indices/logs-email-service-*?format=json&h=index"
    return sorted(r["index"] for r in get_json(url))


def test_retention_plan_on_the_demo_indices(ha_lab: HALab, env: dict[str, str]) -> None:
    before = demo_indices(ha_lab)
    assert len(before) == 7
    plan = opskit_json(
        env, "retention", "elasticsearch", "--pattern", "logs-email-service-*",
        "--older-than", "3d", "--dry-run",
    )  # fmt: skip
    (policy,) = plan["policies"]
    acted = sorted(d["index"] for d in policy["act"])
    kept = sorted(d["index"] for d in policy["kept"])
    assert sorted(acted + kept) == before
    assert acted == before[: len(acted)] and 2 <= len(acted) <= 4  # the oldest, by name
    assert plan["dry_run"] is True and plan["result"] is None
    after = demo_indices(ha_lab)
    assert after == before  # a plan changes nothing
