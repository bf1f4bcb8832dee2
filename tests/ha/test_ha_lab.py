"""The HA lab itself (lab/ha.py): what opskit's HA features are tested against.

APIs read: Alertmanager's /api/v2/status (`cluster.peers`, `cluster.status`) and
/api/v2/alerts (`fingerprint`, `labels`) from its OpenAPI spec (api/v2/openapi.yaml);
Prometheus' /federate (series with the external labels attached, "Federation" docs),
/api/v1/targets and /api/v1/alerts (HTTP API docs); Elasticsearch's _cluster/health
(`status`, `number_of_nodes`, `unassigned_shards`) and _cat/shards; VictoriaMetrics'
Prometheus-compatible /api/v1/query.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from typing import Any

from opskit.config import Settings
from tests.conftest import get_json
from tests.ha.conftest import HALab, ha_server_stopped, ha_wait_for


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        text: str = resp.read().decode()
    return text


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    body = get_json(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _targets(base: str) -> list[tuple[str, str, str]]:
    active = get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]
    return sorted((t["labels"]["job"], t["labels"]["instance"], t["health"]) for t in active)


def _settled(base: str) -> list[tuple[str, str, str]]:
    targets = _targets(base)
    return targets if targets and all(h != "unknown" for _, _, h in targets) else []


def test_config_contexts(ha_lab: HALab, ha_settings: Settings, ha_vm_settings: Settings) -> None:
    assert ha_settings.context == "ha"
    assert ha_settings.prometheus.members == ha_lab.prometheus
    assert ha_settings.prometheus.replica_label == "replica"
    assert ha_settings.alertmanager.members == ha_lab.alertmanager
    assert ha_settings.elasticsearch.url == ha_lab.elasticsearch[0]
    assert not ha_settings.tracing.enabled
    assert not ha_settings.enabled_queues
    assert {s.name for s in ha_settings.enabled_services} == {"victoriametrics", "node-exporter"}
    assert ha_vm_settings.prometheus.members == [ha_lab.victoriametrics]
    assert ha_vm_settings.alertmanager.members == ha_lab.alertmanager


def test_alertmanager_cluster_has_three_peers_on_every_peer(ha_lab: HALab) -> None:
    views = []
    for peer in ha_lab.alertmanager:
        cluster = get_json(f"{peer}/api/v2/status")["cluster"]
        assert cluster["status"] == "ready", (peer, cluster)
        views.append(sorted(p["name"] for p in cluster["peers"]))
    assert len(views[0]) == 3
    assert views[1] == views[0] and views[2] == views[0]


def test_replicas_have_their_label_and_the_same_targets(ha_lab: HALab) -> None:
    for replica, base in zip("ab", ha_lab.prometheus, strict=True):
        match = urllib.parse.urlencode({"match[]": 'up{job="prometheus"}'})
        federated = _text(f"{base}/federate?{match}")
        assert f'replica="{replica}"' in federated
        assert 'cluster="ha-lab"' in federated
    a = ha_wait_for(lambda: _settled(ha_lab.prometheus_a), timeout=60)
    b = ha_wait_for(lambda: _settled(ha_lab.prometheus_b), timeout=60)
    assert a == b
    jobs = {job for job, _, _ in a}
    expected = {"prometheus", "alertmanager", "node", "pushgateway", "victoriametrics"}
    assert jobs == expected | {"dead", "edge"}
    assert ("dead", ha_lab.dead, "down") in a
    assert ("edge", "edge-1", "up") in a


def _firing(base: str, alertname: str) -> list[dict[str, Any]]:
    alerts = get_json(f"{base}/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def _am_alerts(peer: str, alertname: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"', "active": "true"})
    alerts: list[dict[str, Any]] = get_json(f"{peer}/api/v2/alerts?{query}")
    return alerts


def test_an_alert_of_both_replicas_is_one_alert_on_every_peer(ha_lab: HALab) -> None:
    # the dead target fires InstanceDown on both replicas
    for base in ha_lab.prometheus:
        assert ha_wait_for(lambda base=base: _firing(base, "InstanceDown"), timeout=60), base
    fingerprints = set()
    for peer in ha_lab.alertmanager:
        alerts = ha_wait_for(lambda peer=peer: _am_alerts(peer, "InstanceDown"), timeout=60)
        assert len(alerts) == 1, (peer, alerts)
        assert alerts[0]["labels"]["instance"] == ha_lab.dead
        assert "replica" not in alerts[0]["labels"]
        assert alerts[0]["labels"]["cluster"] == "ha-lab"
        fingerprints.add(alerts[0]["fingerprint"])
    assert len(fingerprints) == 1


def _es_health(node: str) -> dict[str, Any]:
    body: dict[str, Any] = get_json(f"{node}/_cluster/health")
    return body


def test_elasticsearch_has_three_nodes_green_with_replicas(ha_lab: HALab) -> None:
    health = _es_health(ha_lab.elasticsearch[0])
    assert health["cluster_name"] == "opskit-ha"
    assert health["number_of_nodes"] == 3
    assert health["status"] == "green"
    nodes = get_json(f"{ha_lab.elasticsearch[0]}/_cat/nodes?format=json&h=name,node.role")
    assert sorted(n["name"] for n in nodes) == ["es-1", "es-2", "es-3"]
    assert all("m" in n["node.role"] and "d" in n["node.role"] for n in nodes)
    cat = "_cat/shards/logs-*?format=json&h=index,prirep,node"
    shards = get_json(f"{ha_lab.elasticsearch[0]}/{cat}")
    by_index: dict[str, list[tuple[str, str]]] = {}
    for s in shards:
        by_index.setdefault(s["index"], []).append((s["prirep"], s["node"]))
    assert len(by_index) >= 7
    for index, copies in by_index.items():
        assert sorted(p for p, _ in copies) == ["p", "r"], (index, copies)
        assert copies[0][1] != copies[1][1], (index, copies)  # on two different nodes
    repos = get_json(f"{ha_lab.elasticsearch[1]}/_snapshot/backup")
    assert repos["backup"]["type"] == "fs"


def test_stopping_one_es_node_turns_the_cluster_yellow_then_green(ha_lab: HALab) -> None:
    es1 = ha_lab.elasticsearch[0]
    with ha_server_stopped("elasticsearch_3"):
        health = ha_wait_for(
            lambda: (h := _es_health(es1))["number_of_nodes"] == 2 and h, timeout=90
        )
        assert health, _es_health(es1)
        assert health["status"] == "yellow"  # replicas lost, every primary still there
        assert health["unassigned_shards"] > 0
        assert health["active_primary_shards"] == len(
            get_json(f"{es1}/_cat/indices/logs-*?format=json&h=index")
        )
    health = _es_health(es1)
    assert (health["status"], health["number_of_nodes"]) == ("green", 3)


def test_victoriametrics_answers_for_what_replica_a_writes(ha_lab: HALab) -> None:
    series = ha_wait_for(
        lambda: _query(ha_lab.victoriametrics, 'up{job="node", replica="a"}'), timeout=60
    )
    assert series, "no remote-written series of replica a in VictoriaMetrics"
    assert series[0]["metric"]["cluster"] == "ha-lab"
    # only replica a remote-writes
    assert _query(ha_lab.victoriametrics, 'up{replica="b"}') == []
