"""PrometheusReplicas: the merge of targets, alerts and rules, failover and writes, on
bodies a real Prometheus 2.42 gave (captured from a two-second-interval server with
`external_labels {cluster="ha-lab", replica="a"}`, a dead target and a file_sd `edge`
target), served by small real HTTP servers on loopback (one per replica) that can also
answer 500 or be closed: faults the HA lab's replicas cannot produce on demand."""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from opskit.clients.prom_replicas import (
    PrometheusReplicas,
    external_labels,
    merge_alerts,
    merge_rules,
    merge_targets,
    replica_summary,
)
from opskit.clients.prometheus import PrometheusClient, _prom_alert, _rule, _target
from opskit.config.schema import PrometheusBackend
from opskit.errors import BackendUnreachable, BadResponse
from opskit.http import build_http

TARGETS: dict[str, Any] = json.loads(
    '{"status":"success","data":{"activeTargets":[{"discoveredLabels":{"__address__":'
    '"127.0.0.1:39999","__metrics_path__":"/metrics","__scheme__":"http","__scrape_in'
    'terval__":"2s","__scrape_timeout__":"2s","job":"dead"},"labels":{"instance":"127'
    '.0.0.1:39999","job":"dead"},"scrapePool":"dead","scrapeUrl":"http://127.0.0.1:39'
    '999/metrics","globalUrl":"http://vm:39999/metrics","lastError":"Get \\"http://127'
    '.0.0.1:39999/metrics\\": dial tcp 127.0.0.1:39999: connect: connection refused","'
    'lastScrape":"2026-12-02T14:45:24.440782371Z","lastScrapeDuration":0.000774522,"h'
    'ealth":"down","scrapeInterval":"2s","scrapeTimeout":"2s"},{"discoveredLabels":{"'
    '__address__":"127.0.0.1:19100","__meta_filepath":"edge.json","__metrics_path__":'
    '"/metrics","__scheme__":"http","__scrape_interval__":"2s","__scrape_timeout__":"'
    '2s","instance":"edge-1","job":"edge"},"labels":{"instance":"edge-1","job":"edge"'
    '},"scrapePool":"edge","scrapeUrl":"http://127.0.0.1:19100/metrics","globalUrl":"'
    'http://vm:19100/metrics","lastError":"","lastScrape":"2026-12-02T14:45:24.144557'
    '345Z","lastScrapeDuration":0.032288408,"health":"up","scrapeInterval":"2s","scra'
    'peTimeout":"2s"},{"discoveredLabels":{"__address__":"127.0.0.1:39595","__metrics'
    '_path__":"/metrics","__scheme__":"http","__scrape_interval__":"2s","__scrape_tim'
    'eout__":"2s","job":"prometheus"},"labels":{"instance":"127.0.0.1:39595","job":"p'
    'rometheus"},"scrapePool":"prometheus","scrapeUrl":"http://127.0.0.1:39595/metric'
    's","globalUrl":"http://vm:39595/metrics","lastError":"","lastScrape":"2026-12-02'
    'T14:45:25.742180273Z","lastScrapeDuration":0.012701324,"health":"up","scrapeInte'
    'rval":"2s","scrapeTimeout":"2s"}],"droppedTargets":[]}}'
)
ALERTS: dict[str, Any] = json.loads(
    '{"status":"success","data":{"alerts":[{"labels":{"alertname":"Watchdog","severit'
    'y":"none"},"annotations":{},"state":"firing","activeAt":"2026-12-02T14:45:08.418'
    '480155Z","value":"1e+00"},{"labels":{"alertname":"InstanceDown","instance":"127.'
    '0.0.1:39999","job":"dead","severity":"critical"},"annotations":{},"state":"firin'
    'g","activeAt":"2026-12-02T14:45:16.418480155Z","value":"0e+00"}]}}'
)
RULES: dict[str, Any] = json.loads(
    '{"status":"success","data":{"groups":[{"name":"lab","file":"rules.yml","rules":['
    '{"state":"firing","name":"Watchdog","query":"vector(1)","duration":0,"keepFiring'
    'For":0,"labels":{"severity":"none"},"annotations":{},"alerts":[{"labels":{"alert'
    'name":"Watchdog","severity":"none"},"annotations":{},"state":"firing","activeAt"'
    ':"2026-12-02T14:45:08.418480155Z","value":"1e+00"}],"health":"ok","evaluationTim'
    'e":0.000367387,"lastEvaluation":"2026-12-02T14:45:24.420567044Z","type":"alertin'
    'g"},{"state":"firing","name":"InstanceDown","query":"up == 0","duration":4,"keep'
    'FiringFor":0,"labels":{"severity":"critical"},"annotations":{},"alerts":[{"label'
    's":{"alertname":"InstanceDown","instance":"127.0.0.1:39999","job":"dead","severi'
    'ty":"critical"},"annotations":{},"state":"firing","activeAt":"2026-12-02T14:45:1'
    '6.418480155Z","value":"0e+00"}],"health":"ok","evaluationTime":0.000149283,"last'
    'Evaluation":"2026-12-02T14:45:24.420939558Z","type":"alerting"}],"interval":2,"l'
    'imit":0,"evaluationTime":0.000536559,"lastEvaluation":"2026-12-02T14:45:24.42055'
    '4585Z"}]}}'
)
CONFIG: dict[str, Any] = json.loads(
    '{"status":"success","data":{"yaml":"global:\\n  scrape_interval: 2s\\n  scrape_tim'
    "eout: 2s\\n  evaluation_interval: 2s\\n  external_labels:\\n    cluster: ha-lab\\n  "
    "  replica: a\\nrule_files:\\n- rules.yml\\nscrape_configs:\\n- job_name: prometheus\\"
    "n  honor_timestamps: true\\n  scrape_interval: 2s\\n  scrape_timeout: 2s\\n  metric"
    "s_path: /metrics\\n  scheme: http\\n  follow_redirects: true\\n  enable_http2: true"
    "\\n  static_configs:\\n  - targets:\\n    - 127.0.0.1:39595\\n- job_name: dead\\n  ho"
    "nor_timestamps: true\\n  scrape_interval: 2s\\n  scrape_timeout: 2s\\n  metrics_pat"
    "h: /metrics\\n  scheme: http\\n  follow_redirects: true\\n  enable_http2: true\\n  s"
    "tatic_configs:\\n  - targets:\\n    - 127.0.0.1:39999\\n- job_name: edge\\n  honor_t"
    "imestamps: true\\n  scrape_interval: 2s\\n  scrape_timeout: 2s\\n  metrics_path: /m"
    "etrics\\n  scheme: http\\n  follow_redirects: true\\n  enable_http2: true\\n  file_s"
    'd_configs:\\n  - files:\\n    - edge.json\\n    refresh_interval: 5m\\n"}}'
)
BUILDINFO: dict[str, Any] = json.loads(
    '{"status":"success","data":{"version":"2.42.0+ds","revision":"2.42.0+ds-5+deb12u'
    '1","branch":"debian/sid","buildUser":"team+pkg-go@tracker.debian.org","buildDate'
    '":"20260604-00:58:54","goVersion":"go1.19.8"}}'
)


def targets_of(body: dict[str, Any]) -> list[Any]:
    return [_target(t) for t in body["data"]["activeTargets"]]


def edge_down(body: dict[str, Any]) -> dict[str, Any]:
    """Replica b's view when its file_sd points edge-1 at a port nothing listens on."""
    body = copy.deepcopy(body)
    for t in body["data"]["activeTargets"]:
        if t["labels"].get("instance") == "edge-1":
            t["health"] = "down"
            t["scrapeUrl"] = "http://127.0.0.1:39998/metrics"
            t["lastError"] = 'Get "http://127.0.0.1:39998/metrics": connection refused'
    return body


def config_of(replica: str, cluster: str = "ha-lab") -> dict[str, Any]:
    text = CONFIG["data"]["yaml"].replace("replica: a", f"replica: {replica}")
    return {"status": "success", "data": {"yaml": text.replace("ha-lab", cluster)}}


# ------------------------------------------------------------------ pure merge logic


def test_external_labels_from_the_config_prometheus_gives() -> None:
    assert external_labels(CONFIG["data"]["yaml"]) == {"cluster": "ha-lab", "replica": "a"}
    quoted = "global:\n  external_labels:\n    replica: 'b''s'\n    dc: \"eu 1\"\nrule_files: []\n"
    assert external_labels(quoted) == {"replica": "b's", "dc": "eu 1"}
    assert external_labels("global:\n  scrape_interval: 1m\nscrape_configs: []\n") == {}


def test_same_targets_on_both_replicas_merge_into_one_each() -> None:
    merged = merge_targets([("a", targets_of(TARGETS)), ("b", targets_of(TARGETS))], "replica")
    assert len(merged.targets) == len(TARGETS["data"]["activeTargets"]) == 3
    for t in merged.targets:
        assert set(t.replicas) == {"a", "b"}
    by_job = {t.job: t for t in merged.targets}
    assert by_job["edge"].health == "up" and by_job["edge"].replicas == {"a": "up", "b": "up"}
    assert by_job["dead"].health == "down"  # down everywhere: the error as one server's
    assert by_job["dead"].last_error.startswith('Get "http://127.0.0.1:39999/metrics"')
    assert by_job["dead"].replica_errors.keys() == {"a", "b"}
    assert merged.down_on_some == [] and merged.absent_on_some == []
    assert replica_summary(by_job["dead"]) == "a down, b down"


def test_a_target_down_on_one_replica_only_is_shown_so() -> None:
    merged = merge_targets(
        [("a", targets_of(TARGETS)), ("b", targets_of(edge_down(TARGETS)))], "replica"
    )
    assert len(merged.targets) == 3  # same labels (job, instance=edge-1): one target
    edge = next(t for t in merged.targets if t.job == "edge")
    assert edge.health == "down"
    assert edge.replicas == {"a": "up", "b": "down"}
    assert edge.last_error.startswith("down on b: ") and "39998" in edge.last_error
    assert edge.replica_errors == {"b": edge.last_error.removeprefix("down on b: ")}
    assert edge.scrape_url == "http://127.0.0.1:19100/metrics"  # a's: the key stays put
    assert merged.down_on_some == ["edge/edge-1 (down on b)"]


def test_the_replica_label_is_not_part_of_a_targets_identity() -> None:
    a, b = copy.deepcopy(TARGETS), copy.deepcopy(TARGETS)
    for body, name in ((a, "a"), (b, "b")):
        for t in body["data"]["activeTargets"]:
            t["labels"]["replica"] = name
    merged = merge_targets([("a", targets_of(a)), ("b", targets_of(b))], "replica")
    assert len(merged.targets) == 3
    assert all("replica" not in t.labels for t in merged.targets)


def test_a_target_only_one_replica_scrapes() -> None:
    b = copy.deepcopy(TARGETS)
    b["data"]["activeTargets"] = [
        t for t in b["data"]["activeTargets"] if t["labels"]["job"] != "edge"
    ]
    merged = merge_targets([("a", targets_of(TARGETS)), ("b", targets_of(b))], "replica")
    edge = next(t for t in merged.targets if t.job == "edge")
    assert edge.replicas == {"a": "up", "b": "absent"} and edge.health == "up"
    assert merged.absent_on_some == ["edge/edge-1 (not scraped by b)"]


def test_alerts_merge_by_labels_and_note_state_differences() -> None:
    a = [_prom_alert(x) for x in ALERTS["data"]["alerts"]]
    pending = copy.deepcopy(ALERTS)
    pending["data"]["alerts"][1]["state"] = "pending"
    pending["data"]["alerts"][1]["activeAt"] = "2026-12-02T14:45:20Z"
    b = [_prom_alert(x) for x in pending["data"]["alerts"]]
    merged, differences = merge_alerts([("a", a), ("b", b)], "replica")
    assert [x.labels["alertname"] for x in merged] == ["Watchdog", "InstanceDown"]
    down = merged[1]
    assert down.state == "firing"  # the most advanced of the replicas'
    assert down.active_at is not None and down.active_at.second == 16  # the earliest
    assert list(differences.values()) == ["firing on a, pending on b"]
    same, none = merge_alerts([("a", a), ("b", a)], "replica")
    assert len(same) == 2 and none == {}


def test_rules_merge_by_group_and_name_and_name_a_missing_one() -> None:
    rules = [_rule(g, r) for g in RULES["data"]["groups"] for r in g["rules"]]
    merged, differences = merge_rules([("a", rules), ("b", rules)])
    assert [r.name for r in merged] == ["Watchdog", "InstanceDown"] and differences == []
    merged, differences = merge_rules([("a", rules), ("b", rules[:1])])
    assert len(merged) == 2
    assert differences == ["lab/InstanceDown only on a"]


# ------------------------------------------------------------------ against real sockets


class Replica:
    """A tiny Prometheus API double on loopback answering with the captured bodies."""

    def __init__(self, name: str) -> None:
        self.bodies: dict[str, dict[str, Any]] = {
            "/api/v1/targets": TARGETS,
            "/api/v1/alerts": ALERTS,
            "/api/v1/rules": RULES,
            "/api/v1/status/config": config_of(name),
            "/api/v1/status/buildinfo": BUILDINFO,
            "/api/v1/query": {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {"replica_seen": name}, "value": [1764686718.4, "1"]}],
                },
            },
        }
        self.status = 200
        self.hits: list[str] = []
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def answer(self) -> None:
                path = self.path.partition("?")[0]
                replica.hits.append(f"{self.command} {path}")
                body = replica.bodies.get(path, {"status": "success", "data": {}})
                status = replica.status if path != "/-/ready" or replica.status != 200 else 200
                data = json.dumps(body).encode() if path.startswith("/api") else b""
                if path in ("/-/ready", "/-/healthy"):
                    data = b"Prometheus Server is Ready.\n"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = answer
            do_POST = answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed when the block ends


@pytest.fixture
def pair() -> Iterator[tuple[Replica, Replica]]:
    a, b = Replica("a"), Replica("b")
    yield a, b
    a.close()
    b.close()


def replicas(*urls: str) -> PrometheusReplicas:
    cfg = PrometheusBackend(url=urls[0], urls=list(urls), retries=1, timeout="2s")
    clients = [
        PrometheusClient(build_http("prometheus", cfg.model_copy(update={"url": u})), cfg.retries)
        for u in cfg.members
    ]
    return PrometheusReplicas(clients, cfg)


async def test_targets_of_two_replicas_named_by_their_replica_label(
    pair: tuple[Replica, Replica],
) -> None:
    a, b = pair
    b.bodies["/api/v1/targets"] = edge_down(TARGETS)
    prom = replicas(a.url, b.url)
    try:
        targets = await prom.targets()
        assert prom.names() == ["a", "b"]
        edge = next(t for t in targets if t.job == "edge")
        assert edge.replicas == {"a": "up", "b": "down"}
        membership = await prom.read_membership()
        assert [(m.name, m.ok, m.detail) for m in membership.members] == [
            ("a", True, "ready, 2.42.0+ds"),
            ("b", True, "ready, 2.42.0+ds"),
        ]
        assert membership.disagreements == [
            "1 target down on some replicas only: edge/edge-1 (down on b)"
        ]
        assert membership.headline() == "2/2 replicas"
    finally:
        await prom.aclose()


async def test_queries_fail_over_and_stick_to_the_replica_that_answered(
    pair: tuple[Replica, Replica],
) -> None:
    a, b = pair
    prom = replicas(a.url, b.url)
    try:
        assert (await prom.query("up"))[0].labels == {"replica_seen": "a"}
        a.status = 500
        assert (await prom.query("up"))[0].labels == {"replica_seen": "b"}
        a.status = 200
        a.hits.clear()
        assert (await prom.query("up"))[0].labels == {"replica_seen": "b"}  # sticky
        assert a.hits == []
    finally:
        await prom.aclose()


async def test_one_replica_down_reads_complete_from_the_other(
    pair: tuple[Replica, Replica],
) -> None:
    a, _ = pair
    prom = replicas(closed_port(), a.url)
    try:
        targets = await prom.targets()
        assert len(targets) == 3
        assert all(t.replicas.keys() == {"a"} for t in targets)
        assert len(await prom.alerts()) == 2
        assert (await prom.query("up"))[0].labels == {"replica_seen": "a"}
        membership = await prom.read_membership()
        assert membership.headline() == "1/2 replicas" and membership.degraded
        assert "connection refused" in membership.members[0].error
    finally:
        await prom.aclose()


async def test_every_replica_down_raises_the_first_ones_error() -> None:
    first, second = closed_port(), closed_port()
    prom = replicas(first, second)
    try:
        with pytest.raises(BackendUnreachable) as raised:
            await prom.targets()
        assert first.removeprefix("http://") in raised.value.reason
        with pytest.raises(BackendUnreachable) as raised:
            await prom.query("up")
        assert first.removeprefix("http://") in raised.value.reason
    finally:
        await prom.aclose()


async def test_every_replica_500_gives_the_error_a_single_server_would(
    pair: tuple[Replica, Replica],
) -> None:
    a, b = pair
    a.status = b.status = 500
    prom = replicas(a.url, b.url)
    try:
        with pytest.raises(BadResponse, match="HTTP 500"):
            await prom.query("up")
    finally:
        await prom.aclose()


async def test_reload_goes_to_every_replica(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    prom = replicas(a.url, b.url)
    try:
        await prom.reload()
        assert "POST /-/reload" in a.hits and "POST /-/reload" in b.hits
    finally:
        await prom.aclose()


async def test_different_external_labels_and_rule_sets_are_disagreements(
    pair: tuple[Replica, Replica],
) -> None:
    a, b = pair
    b.bodies["/api/v1/status/config"] = config_of("b", cluster="other")
    rules = copy.deepcopy(RULES)
    rules["data"]["groups"][0]["rules"] = rules["data"]["groups"][0]["rules"][:1]
    b.bodies["/api/v1/rules"] = rules
    prom = replicas(a.url, b.url)
    try:
        membership = await prom.read_membership()
        assert membership.disagreements == [
            "rule sets differ: lab/InstanceDown only on a",
            'external labels differ: a {cluster="ha-lab"}; b {cluster="other"}',
        ]
    finally:
        await prom.aclose()
