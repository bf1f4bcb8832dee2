"""The weekly checks against the lab: each finds a condition planted in the lab and
passes once it is gone."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

from tests.conftest import GRAFANA_PASSWORD, GRAFANA_USER, Lab, get_json
from tests.maintenance.conftest import Maint, problems, result

AUTH = (GRAFANA_USER, GRAFANA_PASSWORD)


def make_index(lab: Lab, name: str, docs: int) -> None:
    get_json(
        f"{lab.elasticsearch}/{name}",
        method="PUT",
        body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}},
    )
    lines = "".join(f'{{"index":{{}}}}\n{{"message":"line {i}"}}\n' for i in range(docs))
    req = urllib.request.Request(
        f"{lab.elasticsearch}/{name}/_bulk?refresh=true",
        data=lines.encode(),
        headers={"Content-Type": "application/x-ndjson"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert not json.loads(resp.read())["errors"]


def delete_indices(lab: Lab, pattern: str) -> None:
    """Delete by exact name (Elasticsearch 8 refuses wildcard deletes)."""
    rows = get_json(f"{lab.elasticsearch}/_cat/indices/{pattern}?format=json&h=index")
    for row in rows:
        get_json(f"{lab.elasticsearch}/{row['index']}", method="DELETE")


def test_log_ingestion_finds_a_missing_day_and_a_drop(lab: Lab, maint: Maint, unique: str) -> None:
    prefix = f"opskit-test-ingest-{unique}"
    maint.configure(
        f'[doctor]\nlog_sources = ["app"]\nlog_index = "{prefix}-{{source}}-%Y.%m.%d"\n'
    )
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=i) for i in range(1, 8)]
    gap, low = days[2], days[4]
    try:
        for day in days:
            if day != gap:
                make_index(lab, f"{prefix}-app-{day:%Y.%m.%d}", 2 if day == low else 20)
        res = result(maint.report("weekly", "--only", "log_ingestion"), "log_ingestion")
        assert res["status"] == "fail"
        found = problems(res)
        assert any(f"no index for {gap:%Y-%m-%d}" in p for p in found), found
        assert any(f"{low:%Y-%m-%d}: 2 documents" in p for p in found), found

        make_index(lab, f"{prefix}-app-{gap:%Y.%m.%d}", 20)
        delete_indices(lab, f"{prefix}-app-{low:%Y.%m.%d}")
        make_index(lab, f"{prefix}-app-{low:%Y.%m.%d}", 19)
        res = result(maint.report("weekly", "--only", "log_ingestion"), "log_ingestion")
        assert res["status"] == "pass", problems(res)
    finally:
        delete_indices(lab, f"{prefix}-*")


def test_the_demo_log_sources_have_every_day(maint: Maint) -> None:
    res = result(maint.report("weekly", "--only", "log_ingestion"), "log_ingestion")
    assert res["status"] == "pass", problems(res)
    assert set(res["data"]["documents"]) == {
        "email-service",
        "celery-worker",
        "postgresql",
        "postfix",
        "dovecot",
    }


def _dashboard(uid: str, expr: str, datasource: str = "prometheus") -> dict[str, object]:
    return {
        "dashboard": {
            "uid": uid,
            "title": f"opskit test {uid}",
            "panels": [
                {
                    "id": 1,
                    "title": "Targets up",
                    "type": "timeseries",
                    "targets": [
                        {
                            "refId": "A",
                            "expr": expr,
                            "datasource": {"type": "prometheus", "uid": datasource},
                        }
                    ],
                },
                {
                    "id": 2,
                    "type": "row",
                    "title": "row",
                    "panels": [
                        {
                            "id": 3,
                            "title": "Nested",
                            "targets": [
                                {
                                    "refId": "A",
                                    "expr": 'up{instance=~"$instance"}',
                                    "datasource": {"type": "prometheus", "uid": "prometheus"},
                                }
                            ],
                        }
                    ],
                },
            ],
            "templating": {"list": [{"name": "instance", "current": {"value": "$__all"}}]},
        },
        "overwrite": True,
    }


def test_dashboard_spot_check_finds_a_broken_panel(lab: Lab, maint: Maint, unique: str) -> None:
    uid = f"opskit-test-{unique}"
    maint.configure(f'[maintenance]\ndashboards = ["{uid}"]\n')
    save = f"{lab.grafana}/api/dashboards/db"
    try:
        get_json(save, AUTH, "POST", _dashboard(uid, "sum(rate(up[5m])"))
        res = result(maint.report("weekly", "--only", "dashboards"), "dashboards")
        assert res["status"] == "fail"
        assert any("Targets up [A]: query error" in p for p in problems(res)), problems(res)

        get_json(save, AUTH, "POST", _dashboard(uid, "up", datasource="no-such-datasource"))
        res = result(maint.report("weekly", "--only", "dashboards"), "dashboards")
        assert any("datasource 'no-such-datasource' does not exist" in p for p in problems(res))

        get_json(save, AUTH, "POST", _dashboard(uid, "sum(rate(up[$__rate_interval]))"))
        res = result(maint.report("weekly", "--only", "dashboards"), "dashboards")
        assert res["status"] == "pass", problems(res)
        assert res["data"]["queries"] == 2  # the nested row's panel too
    finally:
        get_json(f"{lab.grafana}/api/dashboards/uid/{uid}", AUTH, "DELETE")


def test_the_seeded_dashboards_parse(maint: Maint) -> None:
    res = result(maint.report("weekly", "--only", "dashboards"), "dashboards")
    assert not [p for p in problems(res) if "query error" in p or "datasource" in p]
    assert res["data"]["dashboards"] >= 2


def test_alert_patterns_find_the_backfilled_flapping_alert(maint: Maint) -> None:
    res = result(maint.report("weekly", "--only", "alert_patterns"), "alert_patterns")
    found = problems(res)
    assert any(p.startswith("HighRequestLatency: flapping") for p in found), found
    assert any(p.startswith("DiskUsageHigh: firing") for p in found), found
    assert res["data"]["alerts"]["HighRequestLatency"]["episodes"] >= 10

    maint.configure("[maintenance]\nflapping_episodes = 1000\nfiring_all_ratio = 1.0\n")
    res = result(maint.report("weekly", "--only", "alert_patterns"), "alert_patterns")
    assert not any("HighRequestLatency" in p for p in problems(res))


def test_disk_usage_warns_above_85_percent(maint: Maint) -> None:
    res = result(maint.report("weekly", "--only", "disk_usage"), "disk_usage")
    assert any(p.startswith("monitoring-2:9100 /var/lib/prometheus: 88") for p in problems(res)), (
        problems(res)
    )
    maint.configure(
        "[maintenance]\nfilesystem_selector = "
        '\'fstype!~"tmpfs|overlay",instance!="monitoring-2:9100"\'\n'
    )
    res = result(maint.report("weekly", "--only", "disk_usage"), "disk_usage")
    assert not any("monitoring-2" in p for p in problems(res))
