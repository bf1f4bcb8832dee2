"""The pure parts of the maintenance tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opskit.config import Baseline
from opskit.tasks.maintenance.alert_history import episodes
from opskit.tasks.maintenance.capacity import (
    bounded_days,
    days_until_full,
    growth_rate,
    level_for,
    slope,
    trend,
    when,
)
from opskit.tasks.maintenance.dashboards import expand
from opskit.tasks.maintenance.framework import Outcome, TaskResult, select, tasks_for
from opskit.tasks.maintenance.monthly import place, span
from opskit.tasks.maintenance.performance import judge
from opskit.tasks.maintenance.promql import Threshold, split_threshold
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
        "quarterly": [
            "full_backup",
            "security_audit",
            "capacity",
            "versions",
            "drill_elasticsearch",
            "drill_grafana",
        ],
    }
    assert [t.name for t in select(tasks_for("weekly"), skip=["dashboards"])][-1] == "log_ingestion"


# ---------------------------------------------------------------- issue 15: honest edges

NO_DATA: dict[str, float | None] = dict.fromkeys(("p50", "p95", "p99", "min", "max", "hours"))
OVER = Threshold("x", ">", 10.0)


def test_place_never_says_cannot_fire_for_a_rule_that_fired() -> None:
    # the hourly subquery saw nothing (a series younger than an hour), ALERTS says it fired
    level, sentence = place(OVER, {**NO_DATA, "seen_hours": 0.0}, fired=True, days=30)
    assert level == "info" and "cannot fire" not in sentence
    assert "too little to judge the threshold" in sentence
    # no data at any resolution and never fired: that one can honestly not fire
    level, sentence = place(OVER, {**NO_DATA, "seen_hours": 0.0}, fired=False, days=30)
    assert level == "warning" and sentence.endswith("the rule cannot fire")


def test_place_says_how_much_history_a_young_series_had() -> None:
    young = {**NO_DATA, "seen_hours": 2.0}
    assert place(OVER, young, fired=True, days=30) == (
        "info",
        "only 2h of data in the 30d window: too little to judge the threshold",
    )
    assert place(OVER, {**NO_DATA, "seen_hours": 0.17}, days=30)[1].startswith("only 10m of data")
    hourly = {"p50": 1.0, "p95": 2.0, "p99": 3.0, "min": 0.0, "max": 4.0, "hours": 5.0}
    assert place(OVER, hourly, days=7) == (
        "info",
        "only 5h of data in the 7d window: too little to judge the threshold",
    )
    assert span(0.5) == "30m" and span(26.04) == "26h"


def test_place_judges_a_full_window_and_flags_a_holding_condition_that_never_fired() -> None:
    full = {"p50": 12.0, "p95": 20.0, "p99": 22.0, "min": 1.0, "max": 25.0, "hours": 720.0}
    level, sentence = place(OVER, full, fired=True)
    assert level == "warning" and sentence.endswith("the condition holds most of the time")
    level, sentence = place(OVER, full, fired=False)
    assert level == "warning" and "never fired" in sentence
    quiet = {**full, "p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0}
    assert place(OVER, quiet)[1].endswith("never reached in the window")


def test_capacity_flat_or_shrinking_is_not_growing() -> None:
    day = 86400.0
    flat = [(i * 3600.0, 0.5) for i in range(720)]
    assert days_until_full(flat, 720 * 3600.0) is None
    shrinking = [(i * 3600.0, 0.6 - 1e-5 * i) for i in range(720)]
    assert days_until_full(shrinking, 720 * 3600.0) is None
    # noise around a flat line: a tiny positive slope, within its standard error
    noisy = [(i * 3600.0, 0.5 + 0.002 * ((i * 7919) % 13 - 6) / 6) for i in range(720)]
    assert (slope(noisy) or 0) > 0 and growth_rate(noisy) is None
    assert days_until_full(noisy, 720 * 3600.0) is None
    assert when(None, 90) == "not growing" and trend(None, 90) == "not growing"
    assert level_for(None, 90, 30) == "info"
    # a steady rise is still a forecast
    rising = [(i * day, 0.5 + 0.01 * i) for i in range(30)]
    assert days_until_full(rising, 29 * day) == pytest.approx(21, abs=0.01)


def test_capacity_forecast_beyond_ten_years_is_not_a_number_of_days() -> None:
    day = 86400.0
    # +0.0001 percentage points a day, steadily: full in about 500,000 days
    creeping = [(i * day, 0.5 + 1e-6 * i) for i in range(30)]
    raw = days_until_full(creeping, 29 * day)
    assert raw is not None and raw > 100_000
    assert when(raw, 90) == "not full within 10 years at this growth"
    assert "days" not in when(raw, 90)
    assert bounded_days(raw, 90) is None and trend(raw, 90) == "beyond"
    assert level_for(bounded_days(raw, 90), 90, 30) == "info"
    assert when(8294040.0, 90) == "not full within 10 years at this growth"
    # within the cap it stays a number; a horizon of years widens the cap
    assert when(3000.0, 90) == "full in 3000 days" and bounded_days(3000.0, 90) == 3000.0
    assert bounded_days(5000.0, 1000) == 5000.0 and when(20000.0, 1000).endswith(
        "27 years at this growth"
    )
