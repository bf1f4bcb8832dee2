"""Issue 15 against the lab: the threshold review never says a rule "cannot fire" when it
fired or when its expression has data now (a young series: the lab's live exporters are
only as old as the lab, the backfill covers some metrics only)."""

from __future__ import annotations

import urllib.parse

from opskit.tasks.maintenance.promql import split_threshold
from tests.conftest import get_json
from tests.maintenance.conftest import Maint, result


def test_threshold_review_is_consistent_for_young_series(maint: Maint) -> None:
    res = result(maint.report("monthly", "--only", "alert_thresholds"), "alert_thresholds")
    rules = {r["rule"]: r for r in res["data"]["rules"]}
    said: dict[str, list[str]] = {}
    for f in res["findings"]:
        said.setdefault(f["subject"], []).append(f["summary"])
    prom = maint.lab.prometheus
    queries = {
        r["name"]: r["query"]
        for g in get_json(f"{prom}/api/v1/rules")["data"]["groups"]
        for r in g["rules"]
        if r["type"] == "alerting"
    }
    checked = 0
    for name, row in rules.items():
        cannot = [s for s in said[name] if "cannot fire" in s]
        if row["firings"] > 0:
            assert not cannot, (name, said[name])
        threshold = split_threshold(queries[name])
        if threshold is None:
            continue
        q = urllib.parse.urlencode({"query": threshold.lhs})
        if get_json(f"{prom}/api/v1/query?{q}")["data"]["result"]:  # it has data now
            checked += 1
            assert not cannot, (name, said[name])
            dist = row["distribution"]
            if (dist["hours"] or 0) < 24:
                young = [s for s in said[name] if "of data in the 30d window" in s]
                assert young and young[0].endswith("too little to judge the threshold"), said[name]
    # redis_connected_clients is live (tests/lab/test_data_services.py) and only as old as
    # the lab: RedisTooManyConnections is one of these
    assert checked >= 1 and "RedisTooManyConnections" in rules
