"""`opskit incident`: one alert's evidence, against the lab's standing incident (the
email-service stopped, EmailServiceDown firing)."""

from __future__ import annotations

import json
from typing import Any

from opskit.tasks.incident import about_queue, metric_names, threshold_of
from tests.conftest import Lab, get_json, server_state, wait_for


def firing(lab: Lab, alertname: str) -> bool:
    """Alertmanager has the alert active (a Prometheus restart by another test sends it
    through `pending` again: wait for it rather than fail)."""
    try:
        alerts = get_json(f"{lab.alertmanager}/api/v2/alerts?silenced=false&inhibited=false")
    except OSError:  # restarted by another test meanwhile
        return False
    return any(a["labels"].get("alertname") == alertname for a in alerts)


def incident_json(lab: Lab, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    assert wait_for(lambda: firing(lab, "EmailServiceDown"), timeout=120)
    proc = lab.opskit("incident", *args, "--json", env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_the_standing_incident_on_one_page(lab: Lab) -> None:
    code, found = incident_json(lab, "EmailServiceDown")
    assert code == 0, found
    assert found["found"] is True
    for name in ("alert", "history", "targets", "rule", "logs", "queues", "dashboards"):
        assert found[name]["ok"], (name, found[name]["error"])
    alert = found["alert"]["value"]
    assert alert["alertname"] == "EmailServiceDown"
    assert alert["state"] == "firing"
    assert alert["labels"]["job"] == "email-service"
    assert alert["summary"] == "Email Service down"
    assert alert["starts_at"]
    # it inhibits the failing /health probe's alert (lab/config/alertmanager.yml)
    assert "EmailServiceHealthCheckFailing" in {i["alertname"] for i in alert["inhibits"]}

    targets = found["targets"]["value"]
    assert [(t["job"], t["health"]) for t in targets] == [("email-service", "down")]
    assert "connection refused" in targets[0]["last_error"]
    assert targets[0]["up"] and targets[0]["up"][-1][1] == 0

    rule = found["rule"]["value"]
    assert rule["query"] == 'up{job="email-service"} == 0'
    assert rule["duration"] == 30
    assert rule["threshold"] == {"lhs": 'up{job="email-service"}', "op": "==", "value": 0}
    assert [s["value"] for s in rule["current"]] == [0]
    assert rule["series"] and rule["series"][0]["points"]

    history = found["history"]["value"]
    assert history["fired"] >= 1
    assert history["episodes"][-1]["ongoing"] is True
    assert history["episodes"][-1]["duration"] > 0

    logs = found["logs"]["value"]
    assert logs["indices"] == ["logs-email-service-*"]
    assert logs["matched"] > 0 and logs["groups"]
    assert {g["service"] for g in logs["groups"]} == {"email-service"}
    # errors and warnings first, identical messages counted once
    ranks = [0 if g["level"] in ("ERROR", "WARNING") else 1 for g in logs["groups"]]
    assert ranks == sorted(ranks)
    messages = [(g["level"], g["message"]) for g in logs["groups"]]
    assert len(messages) == len(set(messages))
    assert sum(g["count"] for g in logs["groups"]) <= logs["matched"]

    assert found["queues"]["value"] is None  # not about a queue
    boards = found["dashboards"]["value"]
    assert "email-service-overview" in {d["uid"] for d in boards}
    assert all(d["url"].startswith(lab.grafana + "/d/") for d in boards)


def test_a_queue_alert_shows_the_queue(lab: Lab) -> None:
    code, found = incident_json(lab, "MailQueueHigh")
    assert code == 0
    depths = found["queues"]["value"]
    assert depths and {d["queue"] for d in depths} == {"mail"}
    assert found["rule"]["value"]["threshold"]["value"] == 100


def test_by_fingerprint_and_the_table(lab: Lab) -> None:
    _, found = incident_json(lab, "EmailServiceDown")
    fingerprint = found["alert"]["value"]["fingerprint"]
    proc = lab.opskit("incident", fingerprint)
    assert proc.returncode == 0, proc.stderr
    for heading in ("EmailServiceDown", "Firing history", "Targets", "Rule", "Logs"):
        assert heading in proc.stdout
    assert "connection refused" in proc.stdout


def test_the_logs_part_fails_alone(lab: Lab) -> None:
    env = lab.env(OPSKIT_ELASTICSEARCH_RETRIES="0")
    with server_state("elasticsearch", running=False):
        code, found = incident_json(lab, "EmailServiceDown", env=env)
    assert code == 0
    assert not found["logs"]["ok"]
    assert found["logs"]["error"].startswith("elasticsearch")
    for name in ("alert", "history", "targets", "rule", "dashboards"):
        assert found[name]["ok"], (name, found[name]["error"])


def test_no_such_alert_exits_6(lab: Lab) -> None:
    code, found = incident_json(lab, "NoSuchAlertAnywhere")
    assert code == 6
    assert found["found"] is False
    assert "NoSuchAlertAnywhere" in found["alert"]["error"]
    assert found["logs"] is None


def test_alertmanager_unreachable_exits_3(lab: Lab) -> None:
    env = lab.env(OPSKIT_ALERTMANAGER_URL="http://127.0.0.1:9", OPSKIT_ALERTMANAGER_RETRIES="0")
    code, found = incident_json(lab, "EmailServiceDown", env=env)
    assert code == 3
    assert not found["alert"]["ok"]
    # Prometheus' ALERTS still knows it: the other parts are gathered
    assert found["alert"]["value"]["source"] == "history"
    assert found["targets"]["ok"] and found["targets"]["value"][0]["health"] == "down"


def test_promql_reading() -> None:
    assert metric_names('sum by (job) (rate(flask_http_request_total{status=~"5.."}[5m]))') == {
        "flask_http_request_total"
    }
    assert metric_names('up{job="x"} == 0 or probe_success{job="y"} == 0') == {
        "up",
        "probe_success",
    }
    assert threshold_of("celery_queue_length > 1000") == {
        "lhs": "celery_queue_length",
        "op": ">",
        "value": 1000,
    }
    assert threshold_of("a == 0 or b == 0") is None
    assert about_queue("Anything", "sum(postfix_showq_message_size_bytes_count) > 100")
    assert not about_queue("EmailServiceDown", 'up{job="email-service"} == 0')
