"""The pure parts of the maintenance tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opskit.config import Baseline
from opskit.tasks.maintenance.alert_history import episodes
from opskit.tasks.maintenance.capacity import days_until_full, slope
from opskit.tasks.maintenance.dashboards import expand
from opskit.tasks.maintenance.framework import Outcome, TaskResult, select, tasks_for
from opskit.tasks.maintenance.performance import judge
from opskit.tasks.maintenance.promql import split_threshold
from opskit.tasks.maintenance.publish import exposition
from opskit.tasks.maintenance.security import scan_config, url_secret
from opskit.tasks.maintenance.versions import older
from opskit.tasks.maintenance.weekly import index_glob, ingestion_findings


def test_episodes_split_on_gaps() -> None:
    assert episodes([], 300) == (0, 0.0)
    assert episodes([0, 300, 600, 3000, 3300], 300) == (2, 1500.0)


@given(st.lists(st.integers(0, 1000), unique=True))
def test_episodes_never_exceed_points(points: list[int]) -> None:
    count, seconds = episodes([p * 300.0 for p in points], 300)
    assert count <= len(points) and seconds == len(points) * 300


def test_split_threshold() -> None:
    t = split_threshold('sum(rate(x{s=~"5.."}[5m])) / sum(rate(x[5m])) > 0.05')
    assert t is not None and t.op == ">" and t.value == 0.05
    assert split_threshold("a > 1 and b < 2") is None
    assert split_threshold('up{job="x"} == 0') is None
    assert split_threshold("a > b") is None


def test_ingestion_findings() -> None:
    out = Outcome()
    days = {date(2026, 1, d): c for d, c in ((1, 20), (2, None), (3, 3), (4, 22))}
    ingestion_findings("app", days, 0.5, out)
    assert [f.severity for f in out.findings] == ["critical", "warning"]
    assert index_glob("logs-{source}-%Y.%m.%d", "postfix") == "logs-postfix-*"


def test_expand_grafana_variables() -> None:
    got = expand(
        'rate(x{instance=~"$instance",job="$job"}[$__rate_interval])',
        {"job": "node", "instance": None},
    )
    assert got == 'rate(x{instance=~".+",job="node"}[5m])'
    assert expand('x{a="${v}"}', {}) == 'x{a=~".+"}'


LAB_STATUS = """global:
  slack_api_url: <secret>
  pagerduty_url: https://events.pagerduty.com/v2/enqueue
receivers:
- name: ops
  webhook_configs:
  - url: http://127.0.0.1:1/alerts?token=abc
- name: slack
  webhook_configs:
  - url: https://hooks.slack.com/services/T0/B0/secretsecret
  pagerduty_configs:
  - routing_key: abc
    service_key: <secret>
"""


def test_scan_config_names_where_not_what() -> None:
    found = scan_config(LAB_STATUS)
    assert [e.where for e in found] == [
        "receivers[ops].url",
        "receivers[slack].url",
        "receivers[slack].routing_key",
    ]
    assert all("abc" not in e.why and "secretsecret" not in e.why for e in found)
    assert url_secret("https://user:pw@example.org/x") == "password in the URL of example.org"
    assert url_secret("https://events.pagerduty.com/v2/enqueue") is None


def test_capacity_regression() -> None:
    pts = [(i * 86400.0, 0.5 + 0.01 * i) for i in range(30)]  # +1 %/day, 79 % on day 29
    assert slope(pts) == pytest.approx(0.01 / 86400)
    assert days_until_full(pts, 29 * 86400.0) == pytest.approx(21, abs=0.01)
    assert days_until_full([(0, 0.5), (86400, 0.4)], 86400) is None


def test_versions_and_baselines() -> None:
    assert older("2.42.0+ds", "2.40") is False and older("8.14.1", "8.15") is True
    assert older("v10", "10.0.0") is False and older("dev", "1.0") is None
    b = Baseline(query="x", expected=1.0, tolerance=0.25)
    assert judge(1.2, b)[0] == "info" and judge(1.3, b)[0] == "warning"
    assert judge(1.6, b)[0] == "critical"
    hb = Baseline(query="x", expected=0.9, tolerance=0.1, higher_is_better=True)
    assert judge(0.95, hb)[0] == "info" and judge(0.78, hb)[0] == "warning"


def _result(status: str) -> TaskResult:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return TaskResult("t", "weekly", "T", status, "", [], {}, 0.0, now)  # type: ignore[arg-type]


def test_exposition_leaves_out_success_after_a_failure() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert "last_success" in exposition(_result("warn"), now)
    failed = exposition(_result("fail"), now)
    assert "last_success" not in failed and "opskit_task_status 2.000" in failed


def test_every_cadence_registers_its_tasks() -> None:
    names = {c: [t.name for t in tasks_for(c)] for c in ("weekly", "monthly", "quarterly")}
    assert names == {
        "weekly": ["alert_patterns", "disk_usage", "log_ingestion", "dashboards"],
        "monthly": ["alert_thresholds", "archive_logs", "prometheus_retention", "performance"],
        "quarterly": ["full_backup", "security_audit", "capacity", "versions"],
    }
    assert [t.name for t in select(tasks_for("weekly"), skip=["dashboards"])][-1] == "log_ingestion"
