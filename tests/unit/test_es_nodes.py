"""Parsing the nodes, the unassigned copies, their allocation explanation and the disk
settings, from bodies shaped as Elasticsearch 8.14 answers them (taken from the lab's
nodes and the allocation explain API's documented `allocation_delayed` answer)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opskit.clients.elasticsearch import (
    _disk_settings,
    _explanation,
    _nodes,
    _shard_copy,
    parse_bytes,
    parse_watermark,
)
from opskit.models_es import node_cells, roles_text
from opskit.tasks.doctor.cluster import (
    disk_severity,
    group_copies,
    group_summary,
    left_node,
    seconds_text,
)

GB = 2**30
IDS = {"es-1": "Ka1Fq3yqQ1mJm6y3yq0e6A", "es-2": "b2ZgC6yvR4uJ0nq3jSVZxQ", "es-3": "N3d2kqfWTnS"}

CAT_NODES = [  # _cat/nodes?format=json&full_id=true&h=NODE_COLUMNS
    {"id": IDS["es-2"], "name": "es-2", "ip": "127.0.0.1", "node.role": "dm", "master": "-",
     "heap.percent": "31", "ram.percent": "95", "cpu": "12", "load_1m": "1.53",
     "disk.used_percent": "69.96", "version": "8.14.1"},
    {"id": IDS["es-1"], "name": "es-1", "ip": "127.0.0.1", "node.role": "dm", "master": "*",
     "heap.percent": "24", "ram.percent": "95", "cpu": "12", "load_1m": "1.53",
     "disk.used_percent": "69.96", "version": "8.14.1"},
]  # fmt: skip
NODES_STATS = {  # _nodes/stats/jvm,fs with filter_path
    "nodes": {
        IDS["es-1"]: {
            "name": "es-1",
            "roles": ["data", "master"],
            "jvm": {
                "mem": {
                    "heap_used_in_bytes": 128 * 2**20,
                    "heap_max_in_bytes": 512 * 2**20,
                    "heap_used_percent": 25,
                }
            },
            "fs": {
                "total": {
                    "total_in_bytes": 100 * GB,
                    "free_in_bytes": 35 * GB,
                    "available_in_bytes": 30 * GB,
                }
            },
        },
        IDS["es-2"]: {
            "name": "es-2",
            "roles": [
                "data",
                "data_cold",
                "data_content",
                "data_frozen",
                "data_hot",
                "data_warm",
                "ingest",
                "master",
                "ml",
                "remote_cluster_client",
                "transform",
            ],
            "jvm": {"mem": {"heap_used_in_bytes": 160 * 2**20, "heap_max_in_bytes": 512 * 2**20}},
            "fs": {"total": {"total_in_bytes": 100 * GB, "available_in_bytes": 50 * GB}},
        },
    }
}
CAT_ALLOCATION = [  # _cat/allocation?format=json&bytes=b&h=node,shards
    {"node": "es-1", "shards": "8"},
    {"node": "es-2", "shards": "6"},
    {"node": "UNASSIGNED", "shards": "7"},
]


def test_nodes_join_cat_stats_and_allocation_by_id_and_name() -> None:
    nodes = _nodes(CAT_NODES, NODES_STATS, CAT_ALLOCATION)
    assert [n.name for n in nodes] == ["es-1", "es-2"]  # sorted by name
    es1, es2 = nodes
    assert es1.master and not es2.master and es1.id == IDS["es-1"]
    assert es1.role_names == ["master", "data"]
    assert es1.heap_used_bytes == 128 * 2**20 and es1.heap_max_bytes == 512 * 2**20
    assert es1.disk_total_bytes == 100 * GB and es1.disk_used_bytes == 70 * GB  # total - avail
    assert (es1.shards, es2.shards) == (8, 6)
    assert es2.role_names[:3] == ["master", "data", "data_content"]
    cells = node_cells(es1)
    assert cells[:3] == ("es-1", "master, data", "elected")
    assert cells[3] == "128.0MiB / 512.0MiB (24%)"  # the percentage _cat/nodes gave
    assert cells[4] == "70.0GiB / 100.0GiB (70%)" and cells[5] == "8"
    assert node_cells(es2)[1] == (
        "master, data (all tiers), ingest, ml, transform, remote_cluster_client"
    )


def test_a_node_missing_from_stats_keeps_its_cat_columns() -> None:
    (only,) = _nodes(CAT_NODES[:1], {"nodes": {}}, [])
    assert only.role_names == [] and only.heap_used_bytes is None and only.shards is None
    cells = node_cells(only)
    assert cells[1] == "dm" and cells[3] == "31%" and cells[4] == "70%" and cells[5] == "-"


def test_roles_text_orders_and_names_the_coordinating_only_node() -> None:
    assert roles_text(["ingest", "master", "data_hot", "zzz"]) == "master, data_hot, ingest, zzz"
    assert roles_text([]) == "coordinating only"


DELAYED_EXPLAIN = {  # _cluster/allocation/explain of a replica whose node left (8.14)
    "index": "logs-email-service-2026.12.01",
    "shard": 0,
    "primary": False,
    "current_state": "unassigned",
    "unassigned_info": {
        "reason": "NODE_LEFT",
        "at": "2026-12-02T12:03:41.512Z",
        "details": f"node_left [{IDS['es-3']}]",
        "last_allocation_status": "no_attempt",
    },
    "can_allocate": "allocation_delayed",
    "allocate_explanation": "The node containing this shard copy recently left the cluster. "
    "Elasticsearch is waiting for it to return. If the node does not return within [1m] then "
    "Elasticsearch will allocate this shard to another node. Please wait.",
    "configured_delay": "1m",
    "configured_delay_in_millis": 60000,
    "remaining_delay": "47.9s",
    "remaining_delay_in_millis": 47912,
    "node_allocation_decisions": [
        {"node_id": IDS["es-1"], "node_name": "es-1", "node_decision": "no",
         "deciders": [{"decider": "same_shard", "decision": "NO",
                       "explanation": "a copy of this shard is already allocated to this node"}]},
        {"node_id": IDS["es-2"], "node_name": "es-2", "node_decision": "yes"},
    ],
}  # fmt: skip


def test_the_delayed_explanation_keeps_the_delay_and_the_node_left() -> None:
    e = _explanation(DELAYED_EXPLAIN)
    assert e.can_allocate == "allocation_delayed" and e.unassigned_reason == "NODE_LEFT"
    assert (e.configured_delay_ms, e.remaining_delay_ms) == (60000, 47912)
    assert e.unassigned_at == datetime(2026, 12, 2, 12, 3, 41, 512000, tzinfo=UTC)
    assert left_node(e.unassigned_details) == IDS["es-3"]
    assert e.nodes[0].explanations == [
        "same_shard: a copy of this shard is already allocated to this node"
    ]


def cat_shard(index: str, shard: int, prirep: str, reason: str, details: str) -> dict[str, str]:
    return {"index": index, "shard": str(shard), "prirep": prirep, "state": "UNASSIGNED",
            "node": None, "unassigned.reason": reason, "unassigned.at": "2026-12-02T12:03:41.512Z",
            "unassigned.details": details}  # type: ignore[dict-item]  # fmt: skip


def test_unassigned_copies_group_by_kind_reason_and_node() -> None:
    left = f"node_left [{IDS['es-3']}]"
    copies = [_shard_copy(cat_shard(f"logs-{d}", 0, "r", "NODE_LEFT", left)) for d in range(7)]
    copies.append(_shard_copy(cat_shard("new", 0, "r", "INDEX_CREATED", "")))
    copies.append(_shard_copy(cat_shard("red", 0, "p", "NODE_LEFT", left)))
    groups = group_copies(copies)
    assert [(g.primary, g.reason, len(g.copies)) for g in groups] == [
        (True, "NODE_LEFT", 1), (False, "NODE_LEFT", 7), (False, "INDEX_CREATED", 1),
    ]  # fmt: skip
    replicas = groups[1]
    assert replicas.left == IDS["es-3"]
    assert replicas.since == datetime(2026, 12, 2, 12, 3, 41, 512000, tzinfo=UTC)
    replicas.explanation = _explanation(DELAYED_EXPLAIN)
    since = replicas.since.astimezone().strftime("%H:%M")
    text = group_summary(replicas, {IDS["es-1"]: "es-1"})
    assert text == (
        f"7 replica copies unassigned since {since}: NODE_LEFT (node {IDS['es-3']} left); "
        "allocation delayed 48s more (index.unassigned.node_left.delayed_timeout 60s)"
    )
    back = group_summary(replicas, {IDS["es-3"]: "es-3"})  # the name, once known
    assert f"(node es-3 ({IDS['es-3'][:8]}) left)" in back
    assert seconds_text(185_000) == "3m05s"


LAB_SETTINGS = {  # _cluster/settings?include_defaults&flat_settings, the disk part of the lab's
    "persistent": {},
    "transient": {},
    "defaults": {
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "cluster.routing.allocation.disk.watermark.low": "85%",
        "cluster.routing.allocation.disk.watermark.low.max_headroom": "200GB",
        "cluster.routing.allocation.disk.watermark.high": "90%",
        "cluster.routing.allocation.disk.watermark.high.max_headroom": "150GB",
        "cluster.routing.allocation.disk.watermark.flood_stage": "95%",
        "cluster.routing.allocation.disk.watermark.flood_stage.max_headroom": "100GB",
    },
}


def test_disk_settings_layers_and_headroom() -> None:
    lab = _disk_settings(LAB_SETTINGS)
    assert not lab.threshold_enabled
    low, high, flood = lab.watermarks
    assert (low.raw, high.raw, flood.raw) == ("85%", "90%", "95%")
    # a 100 GB disk: the percentages; a 10 TB disk: the headroom (200 GB free) decides
    assert low.threshold_percent(100 * GB) == pytest.approx(85.0)
    assert low.threshold_percent(10 * 1024 * GB) == pytest.approx(100 * (1 - 200 / 10240))
    persistent = dict(LAB_SETTINGS, persistent={
        "cluster.routing.allocation.disk.watermark.high": "0.8",
        "cluster.routing.allocation.disk.watermark.flood_stage": "5gb",
    })  # fmt: skip
    over = _disk_settings(persistent)
    assert over.threshold_enabled is False
    assert over.source["cluster.routing.allocation.disk.watermark.high"] == "persistent"
    _, high, flood = over.watermarks
    assert high.used_percent == pytest.approx(80.0)
    assert flood.free_bytes == 5 * GB and flood.threshold_percent(100 * GB) == pytest.approx(95)
    empty = _disk_settings({})  # nothing given: Elasticsearch's documented defaults
    assert empty.threshold_enabled and [w.raw for w in empty.watermarks] == ["85%", "90%", "95%"]
    assert empty.source["cluster.routing.allocation.disk.threshold_enabled"] == "built-in default"


def test_bytes_watermarks_and_severity() -> None:
    assert parse_bytes("500mb") == 500 * 2**20 and parse_bytes("1.5GB") == int(1.5 * GB)
    assert parse_bytes("12") == 12 and parse_bytes("lots") is None
    assert parse_watermark("low", "-1", None).used_percent is None
    marks = {"low": 85.0, "high": 90.0, "flood_stage": 95.0}
    assert disk_severity(70, marks) == ("ok", "")
    assert disk_severity(86, marks) == ("warning", "low")
    assert disk_severity(90, marks) == ("warning", "high")
    assert disk_severity(99, marks) == ("critical", "flood_stage")
