"""The Alertmanager cluster's pure logic on bodies shaped as Alertmanager 0.25's API v2
answers them (gettableAlerts, gettableSilences, alertmanagerStatus): de-duplication,
disagreements, replication wording, and how a degraded cluster is judged and drawn."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from opskit.clients.alertmanager import _alerts
from opskit.clients.am_cluster import (
    Replication,
    cluster_disagreements,
    merge_alerts,
    merge_silences,
    parse_silences,
)
from opskit.findings import exit_code
from opskit.models import Member, Membership, to_json
from opskit.screens.overview import membership_line
from opskit.screens.topbar import BackendState, BarState, bar_text, with_cluster
from opskit.summary import Reading, summarize

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
A, B, C = "http://127.0.0.1:29093", "http://127.0.0.1:29193", "http://127.0.0.1:29293"


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def alert_body(name: str, fp: str, started: datetime, updated: datetime) -> dict[str, Any]:
    return {
        "annotations": {"summary": f"{name} fires"},
        "endsAt": iso(NOW + timedelta(minutes=4)),
        "fingerprint": fp,
        "receivers": [{"name": "ops-default"}],
        "startsAt": iso(started),
        "status": {"inhibitedBy": [], "silencedBy": [], "state": "active"},
        "updatedAt": iso(updated),
        "generatorURL": "http://127.0.0.1:29090/graph?g0.expr=vector%281%29",
        "labels": {"alertname": name, "cluster": "ha-lab", "severity": "warning"},
    }


def silence_body(sid: str, state: str, updated: datetime) -> dict[str, Any]:
    return {
        "id": sid,
        "status": {"state": state},
        "updatedAt": iso(updated),
        "comment": "maintenance",
        "createdBy": "ops@host",
        "endsAt": iso(NOW + timedelta(hours=1)),
        "matchers": [{"isEqual": True, "isRegex": False, "name": "alertname", "value": "X"}],
        "startsAt": iso(NOW - timedelta(hours=1)),
    }


def status_body(name: str, peers: list[str], config: str = "route: {}\n") -> dict[str, Any]:
    listed = [{"address": f"127.0.0.1:{29094 + i * 100}", "name": p} for i, p in enumerate(peers)]
    return {
        "cluster": {"name": name, "peers": listed, "status": "ready"},
        "config": {"original": config},
        "uptime": "2026-12-02T11:00:00.000Z",
        "versionInfo": {"branch": "debian/sid", "goVersion": "go1.19.8", "version": "0.25.0"},
    }


OLD = NOW - timedelta(minutes=10)


def test_alerts_deduplicated_by_fingerprint_freshest_wins() -> None:
    a = _alerts([alert_body("Watchdog", "f1", OLD, NOW - timedelta(seconds=30))])
    b_body = alert_body("Watchdog", "f1", OLD, NOW - timedelta(seconds=5))
    b_body["annotations"]["summary"] = "fresher"
    b = _alerts([b_body, alert_body("HALabWarning", "f2", OLD, NOW)])
    c = _alerts(
        [alert_body("HALabWarning", "f2", OLD, NOW), alert_body("Watchdog", "f1", OLD, OLD)]
    )
    merged, disagreements = merge_alerts({A: a, B: b, C: c}, NOW)
    assert [x.fingerprint for x in merged] == ["f1", "f2"]
    assert merged[0].annotations["summary"] == "fresher"
    assert disagreements == [f"{A} lacks 1 alert(s) the other peers have: HALabWarning"]


def test_a_new_alert_missing_on_one_peer_is_propagating_not_a_disagreement() -> None:
    young = NOW - timedelta(seconds=40)
    a = _alerts([alert_body("New", "f9", young, young)])
    merged, disagreements = merge_alerts({A: a, B: [], C: a}, NOW)
    assert len(merged) == 1 and disagreements == []
    # the same alert, older than the grace period: B really does not receive it
    a = _alerts([alert_body("New", "f9", OLD, young)])
    assert merge_alerts({A: a, B: [], C: a}, NOW)[1] == [
        f"{B} lacks 1 alert(s) the other peers have: New"
    ]
    # unless B itself just started (Alertmanager keeps no alerts over a restart)
    restarted = {A: OLD, B: NOW - timedelta(seconds=20), C: OLD}
    assert merge_alerts({A: a, B: [], C: a}, NOW, started=restarted)[1] == []


def test_a_peer_down_is_no_disagreement_and_one_answer_is_kept_as_is() -> None:
    a = _alerts([alert_body("Watchdog", "f1", OLD, OLD)])
    merged, disagreements = merge_alerts({A: None, B: a, C: None}, NOW)
    assert merged is a and disagreements == []
    merged, disagreements = merge_alerts({A: None, B: a, C: copy.copy(a)}, NOW)
    assert len(merged) == 1 and disagreements == []


def test_silences_union_by_id_and_disagreements() -> None:
    fresh = NOW - timedelta(seconds=5)
    a = parse_silences([silence_body("s1", "active", OLD), silence_body("s2", "expired", OLD)])
    b = parse_silences([silence_body("s1", "expired", NOW - timedelta(minutes=2))])
    c = parse_silences([silence_body("s3", "active", fresh)])
    merged, disagreements = merge_silences({A: a, B: b, C: c}, NOW)
    by_id = {s.id: s for s in merged}
    assert sorted(by_id) == ["s1", "s2", "s3"]
    assert by_id["s1"].state == "expired"  # B's copy is the freshest
    # s1 differs between A and B and is missing on C (not expired on A: the freshest is
    # B's expired copy, so missing is not flagged); s2 is expired (not flagged missing);
    # s3 changed 5 s ago (still replicating)
    assert disagreements == [f"silence s1 differs between peers: active on {A}, expired on {B}"]
    b = parse_silences([silence_body("s1", "active", OLD)])
    merged, disagreements = merge_silences({A: a[:1], B: b, C: []}, NOW)
    assert disagreements == [f"{C} lacks 1 silence(s) the other peers have: s1"]
    assert merge_silences({A: a[:1], B: b, C: None}, NOW)[1] == []  # C down


def test_cluster_disagreements_from_status_bodies() -> None:
    names = ["01HAAAAAAA", "01HBBBBBBB", "01HCCCCCCC"]
    same = {u: status_body(n, names) for u, n in zip((A, B, C), names, strict=True)}
    assert cluster_disagreements(same, 3) == []
    # C partitioned: it sees only itself; B settling; C runs another configuration
    split = copy.deepcopy(same)
    split[C] = status_body(names[2], names[2:], "route: {receiver: x}\nurl: https://s3cret\n")
    split[B]["cluster"]["status"] = "settling"
    found = cluster_disagreements(split, 3)
    assert f"{B}: cluster status settling" in found
    assert f"peers see different members: {A} sees 3, {B} sees 3, {C} sees 1" in found
    config = next(f for f in found if f.startswith("configuration differs"))
    assert f"{A}, {B} (" in config and f"vs {C} (" in config
    assert "s3cret" not in " ".join(found)  # compared by digest, never shown
    more = {A: status_body(names[0], [*names, "01HDDDDDDD"])}
    assert cluster_disagreements(more, 3) == [f"{A} sees 4 peers; 3 are configured"]


def test_replication_wording() -> None:
    full = Replication("created", "abc", A, 3, [A, B, C])
    assert full.complete and full.summary() == "replicated to 3/3 peers"
    late = Replication("created", "abc", A, 3, [A, B], [C])
    assert not late.complete
    assert late.summary() == f"replicated to 2/3 peers; not confirmed in time: {C}"
    down = Replication("created", "abc", A, 3, [A, B], [], {C: "connection refused"})
    assert down.summary() == (f"replicated to 2/2 reachable peers; {C} down: connection refused")


def degraded() -> Membership:
    return Membership(
        "alertmanager",
        [
            Member(A, True, name="01HA", detail="ready, 2 peers"),
            Member(B, True, name="01HB", detail="ready, 2 peers"),
            Member(C, False, error=f"{C}: connection refused"),
        ],
    )


def readings(clusters: list[Membership]) -> dict[str, Reading]:
    return {
        "targets": Reading([]),
        "alerts": Reading([]),
        "queues": Reading([]),
        "cluster": Reading(None),
        "indices": Reading([]),
        "grafana": Reading(None),
        "services": Reading([]),
        "clusters": Reading(clusters),
    }


def test_a_degraded_cluster_is_a_warning_never_an_outage() -> None:
    summary = summarize("ha", readings([degraded()]))
    (finding,) = summary.findings
    assert finding.severity == "warning"
    assert f"{finding.subject}: {finding.summary}" == (
        f"alertmanager cluster: 2/3 peers; {C} down: connection refused"
    )
    assert summary.exit_code == 1
    data = to_json(summary)
    assert data["clusters"][0]["headline"] == "2/3 peers"
    assert data["clusters"][0]["degraded"] is True
    assert [m["ok"] for m in data["clusters"][0]["members"]] == [True, True, False]
    # disagreements warn too; a healthy cluster has no finding; every member down is the
    # backend's own error, not a cluster finding
    agreeing = Membership("alertmanager", degraded().members[:2])
    assert summarize("ha", readings([agreeing])).findings == []
    split = Membership("alertmanager", agreeing.members, ["peers see different members"])
    assert [f.severity for f in summarize("ha", readings([split])).findings] == ["warning"]
    gone = Membership("alertmanager", [Member(A, False, "refused"), Member(B, False, "x")])
    assert summarize("ha", readings([gone])).findings == []
    # a reading without clusters (older callers) is judged as before
    plain = readings([])
    del plain["clusters"]
    assert exit_code(summarize("ha", plain).findings) == 0


def test_top_bar_shows_the_degraded_cluster_in_the_warning_style() -> None:
    ok = BackendState("alertmanager", "ok", "12:00:05", 4.0)
    state = BarState("ha", "cyan", False, "Alerts", (with_cluster(ok, degraded()),), "[every 5s]")
    text = bar_text(state, 200)
    assert "alertmanager 2/3" in text.plain
    span = next(s for s in text.spans if text.plain[s.start : s.end].startswith("alertmanager"))
    assert "yellow" in str(span.style)
    assert "am 2/3" in bar_text(state, 40).plain  # kept, short, when the bar is narrow
    healthy = Membership("alertmanager", degraded().members[:2])
    assert (
        "2/2"
        not in bar_text(
            BarState("ha", "cyan", False, "Alerts", (with_cluster(ok, healthy),), ""), 200
        ).plain
    )
    assert with_cluster(ok, None) is ok


def test_overview_line_of_a_cluster() -> None:
    (line,) = membership_line(degraded(), 60)
    assert line.plain.startswith("cluster 2/3 peers  127.0.0.1:29293 connection refused")
    assert membership_line(None, 60) == []
    (fine,) = membership_line(Membership("alertmanager", degraded().members[:2]), 60)
    assert fine.plain == "cluster 2/2 peers"


def test_fleet_cluster_cell_shows_every_clustered_backend() -> None:
    from opskit.screens.fleet import cluster_cell

    am = Membership(
        "alertmanager",
        [
            Member("http://a:9093", True),
            Member("http://b:9093", True),
            Member("http://c:9093", False),
        ],
    )
    prom = Membership("prometheus", [Member("http://p:9090", True), Member("http://q:9090", True)])
    cell = cluster_cell([am, prom])
    assert cell.plain == "am 2/3  prom 2/2"
    degraded = [s for s in cell.spans if s.style == "yellow"]
    assert [cell.plain[s.start : s.end] for s in degraded] == ["am 2/3"]
    prom.disagreements.append("targets down on b only")
    assert cluster_cell([prom]).plain == "prom 2/2≠"
    assert cluster_cell([]).plain == "-"


def test_an_empty_queue_list_says_none_are_configured() -> None:
    from datetime import UTC, datetime

    from opskit.live import LiveState, SourceState
    from opskit.screens.overview import queues_body

    src = SourceState("queues", value=[], last_ok=datetime.now(UTC))
    lines = queues_body(src, [], LiveState(), 50).lines(5)
    assert any("no queues configured" in line.plain for line in lines)
    loading = queues_body(SourceState("queues"), None, LiveState(), 50).lines(5)
    assert not any("no queues configured" in line.plain for line in loading)
