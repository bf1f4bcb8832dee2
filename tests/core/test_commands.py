"""Every read-only command's --json equals what the server's API says, read directly."""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse

import pytest

from opskit.errors import EXIT_USAGE
from tests.conftest import GRAFANA_PASSWORD, GRAFANA_USER, Lab, get_json, wait_for


def test_targets_json_matches_prometheus(lab: Lab) -> None:
    api = get_json(f"{lab.prometheus}/api/v1/targets?state=active")["data"]["activeTargets"]
    ours = lab.opskit_json("targets", ok_codes=(2,))  # the email-service target is down: critical
    assert {(t["scrape_url"], t["health"]) for t in ours} <= {
        (t["scrapeUrl"], t["health"]) for t in api
    } | {(t["scrape_url"], "unknown") for t in ours}
    assert {t["scrape_url"] for t in ours} == {t["scrapeUrl"] for t in api}
    assert ours[0]["health"] == "down"  # down first
    down = lab.opskit_json("targets", "--down", ok_codes=(2,))
    assert [t["job"] for t in down] == ["email-service"]
    assert "connection refused" in down[0]["last_error"]
    node = lab.opskit_json("targets", "--job", "node", ok_codes=(0,))
    assert [t["job"] for t in node] == ["node"]


def test_alerts_json_matches_alertmanager(lab: Lab) -> None:
    wait_for(
        lambda: (
            {"MailQueueHigh", "EmailServiceDown"}
            <= {a["labels"]["alertname"] for a in get_json(f"{lab.alertmanager}/api/v2/alerts")}
        ),
        90,
    )
    api = get_json(f"{lab.alertmanager}/api/v2/alerts?silenced=false&inhibited=false")
    ours = lab.opskit_json("alerts", ok_codes=(1, 2))
    assert {a["fingerprint"] for a in ours} == {a["fingerprint"] for a in api}
    crit = lab.opskit_json("alerts", "--severity", "critical", ok_codes=(0, 2))
    assert crit and all(a["severity"] == "critical" for a in crit)
    filtered = lab.opskit_json("alerts", "--filter", 'alertname=~"Mail.*"', ok_codes=(0, 1, 2))
    assert {a["alertname"] for a in filtered} == {"MailQueueHigh"}


def test_inhibited_alerts_only_on_demand(lab: Lab) -> None:
    def inhibited() -> list[dict[str, object]]:
        return [
            a for a in get_json(f"{lab.alertmanager}/api/v2/alerts") if a["status"]["inhibitedBy"]
        ]

    assert wait_for(inhibited, 120), "the lab's HighRequestLatency should be inhibited"
    default = lab.opskit_json("alerts", ok_codes=(1, 2))
    with_inhibited = lab.opskit_json("alerts", "--inhibited", ok_codes=(1, 2))
    assert not any(a["inhibited_by"] for a in default)
    assert any(a["inhibited_by"] for a in with_inhibited)


def test_silence_round_trip_seen_by_alertmanager_and_amtool(lab: Lab) -> None:
    out = lab.opskit_json(
        "silence",
        "add",
        "alertname=MailQueueHigh",
        'severity=~"warn.*"',
        "--duration",
        "30m",
        "--comment",
        "opskit test",
        "--author",
        "ci",
        ok_codes=(0,),
    )
    silence_id = out["id"]
    api = get_json(f"{lab.alertmanager}/api/v2/silence/{silence_id}")
    assert api["status"]["state"] == "active"
    assert {(m["name"], m["value"], m["isRegex"]) for m in api["matchers"]} == {
        ("alertname", "MailQueueHigh", False),
        ("severity", "warn.*", True),
    }
    if shutil.which("amtool"):
        amtool = subprocess.run(
            ["amtool", "silence", "query", "-q", f"--alertmanager.url={lab.alertmanager}"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert silence_id in amtool.stdout.split()
    listed = lab.opskit_json("silence", "list", ok_codes=(0,))
    assert silence_id in {s["id"] for s in listed}
    # the alert shows as silenced once Alertmanager re-evaluates
    assert wait_for(
        lambda: any(
            a["status"]["silencedBy"] == [silence_id]
            for a in get_json(f"{lab.alertmanager}/api/v2/alerts?filter=alertname%3DMailQueueHigh")
        ),
        30,
    )
    expire = lab.opskit("silence", "expire", silence_id)
    assert expire.returncode == 0, expire.stderr
    assert get_json(f"{lab.alertmanager}/api/v2/silence/{silence_id}")["status"]["state"] == (
        "expired"
    )


def test_silence_bad_input_is_one_line(lab: Lab) -> None:
    for args in (
        ["silence", "add", "sev=~(", "--comment", "x"],
        ["silence", "add", "a=b", "--comment", "x", "--duration", "soon"],
        ["silence", "add", 'alertname=~".*"', "--comment", "x"],
    ):
        proc = lab.opskit(*args)
        assert proc.returncode == EXIT_USAGE, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_rules_json_matches_prometheus(lab: Lab) -> None:
    api = get_json(f"{lab.prometheus}/api/v1/rules")["data"]["groups"]
    ours = lab.opskit_json("rules", ok_codes=(0,))
    assert [(r["group"], r["name"]) for r in ours] == [
        (g["name"], r["name"]) for g in api for r in g["rules"]
    ]
    firing = lab.opskit_json("rules", "--firing", ok_codes=(0,))
    assert "EmailServiceDown" in {r["name"] for r in firing}


def test_prometheus_reload(lab: Lab) -> None:
    proc = lab.opskit("prometheus", "reload")
    assert proc.returncode == 0, proc.stderr
    reloaded = get_json(f"{lab.prometheus}/api/v1/status/runtimeinfo")["data"]
    assert reloaded["reloadConfigSuccess"] is True


def test_indices_json_matches_elasticsearch(lab: Lab) -> None:
    api = get_json(f"{lab.elasticsearch}/_cat/indices/logs-*?format=json&bytes=b")
    ours = lab.opskit_json("indices", "--pattern", "logs-*", ok_codes=(0,))
    assert {(i["name"], i["docs_count"], i["health"]) for i in ours} == {
        (r["index"], int(r["docs.count"]), r["health"]) for r in api
    }
    by_size = lab.opskit_json(
        "indices", "--pattern", "logs-postfix-*", "--sort", "size", ok_codes=(0,)
    )
    sizes = [i["store_size_bytes"] for i in by_size]
    assert sizes == sorted(sizes, reverse=True)
    assert lab.opskit_json("indices", "--pattern", "logs-*", "--health", "red", ok_codes=(0,)) == []


def test_cluster_json_matches_elasticsearch(lab: Lab) -> None:
    api = get_json(f"{lab.elasticsearch}/_cluster/health")
    ours = lab.opskit_json("cluster", ok_codes=(0, 1))
    assert ours["health"]["cluster_name"] == api["cluster_name"]
    assert ours["health"]["status"] == api["status"]
    assert ours["health"]["number_of_nodes"] == api["number_of_nodes"] == len(ours["nodes"])


def test_queues_json_matches_prometheus(lab: Lab) -> None:
    """One row per Celery queue as danihodovic's exporter labels them, equal to the
    query opskit says it ran; the standing incident's mail queue is above 100."""
    ours = lab.opskit_json("queues", ok_codes=(1, 2))
    celery = {q["series"]: q for q in ours if q["queue"] == "celery"}
    (query,) = {q["query"] for q in celery.values()}
    assert query == "sum by (queue_name) (celery_queue_length)"
    api = get_json(f"{lab.prometheus}/api/v1/query?query={urllib.parse.quote(query)}")
    expected = {f'queue_name="{r["metric"]["queue_name"]}"' for r in api["data"]["result"]}
    assert (
        set(celery) == expected >= {f'queue_name="{n}"' for n in ("default", "emails", "reports")}
    )
    for row in celery.values():  # values move with the traffic: states follow them
        assert row["state"] == ("warning" if row["value"] > 1000 else "ok")
    mail = [q for q in ours if q["queue"] == "mail"]
    assert len(mail) == 1 and mail[0]["value"] > 100 and mail[0]["state"] == "warning"


def test_status_summarises_and_exits_2_on_critical(lab: Lab) -> None:
    proc = lab.opskit("status", "--json")
    import json

    assert proc.returncode == 2, proc.stderr  # a down target and unreachable extra services
    data = json.loads(proc.stdout)
    assert all(s["ok"] for s in data["sources"].values())
    assert data["targets"]["down"] == 1
    assert data["elasticsearch"]["status"] == "green"
    assert data["grafana"]["version"]
    assert data["exit_code"] == 2
    assert any(f["source"] == "services" and "kibana" in f["subject"] for f in data["findings"])
    human = lab.opskit("status")
    assert human.returncode == 2 and "email-service" in human.stdout


def test_health_lists_backends_and_services(lab: Lab) -> None:
    rows = lab.opskit_json("health", ok_codes=(2,))
    by_name = {r["name"]: r for r in rows}
    for name in ("prometheus", "alertmanager", "elasticsearch", "grafana", "pushgateway"):
        assert by_name[name]["ok"], by_name[name]
        assert by_name[name]["latency_ms"] is not None
    assert not by_name["kibana"]["ok"]


@pytest.mark.parametrize("command", [["status"], ["alerts"], ["targets"], ["indices"]])
def test_secrets_never_printed(lab: Lab, command: list[str]) -> None:
    env = lab.env(
        GRAFANA_PASSWORD=GRAFANA_PASSWORD,
        OPSKIT_ELASTICSEARCH_API_KEY="es-key-s3cr3t",
        OPSKIT_PROMETHEUS_TOKEN="prom-tok-s3cr3t",
    )
    for extra in ([], ["--json"]):
        proc = lab.opskit("--debug", *command, *extra, env=env)
        text = proc.stdout + proc.stderr
        for secret in ("es-key-s3cr3t", "prom-tok-s3cr3t", f"{GRAFANA_USER}:{GRAFANA_PASSWORD}"):
            assert secret not in text
        assert "] GET http" in proc.stderr  # the request log is on, and clean
