"""The large-refresh fast paths of the parsers (issue 18) give what the plain parse gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from opskit.clients.alertmanager import _alert, _alerts
from opskit.clients.base import parse_time, str_dict
from opskit.clients.elasticsearch import _index
from opskit.clients.prometheus import _target


def test_str_dict_keeps_strings_and_converts_anything_else() -> None:
    labels = {"job": "node", "instance": "a:9100"}
    assert str_dict(labels) == labels
    assert str_dict({"code": 500, 1: None, "ok": True}) == {
        "code": "500",
        "1": "None",
        "ok": "True",
    }
    assert str_dict({}) == {}


def alert(n: int, starts: Any, updated: Any) -> dict[str, Any]:
    return {
        "fingerprint": f"f{n}",
        "labels": {"alertname": "A", "n": n},
        "annotations": None,
        "status": {"state": "active", "silencedBy": ["s1"], "inhibitedBy": None},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "updatedAt": updated,
        "receivers": [{"name": "r"}],
    }


def test_alerts_share_parsed_timestamps_and_match_one_by_one_parsing() -> None:
    body = [
        alert(0, "2026-12-02T04:48:03.793Z", "2026-12-02T04:59:55.542123456Z"),
        alert(1, "2026-12-02T04:48:03.793Z", "2026-12-02T04:59:56+01:00"),
        alert(2, None, {"not": "a time"}),
        alert(3, "2026-12-02T04:48:03.793Z", ["unhashable"]),
    ]
    fast = _alerts(body)
    assert fast == [_alert(a) for a in body]
    assert fast[0].starts_at == datetime(2026, 12, 2, 4, 48, 3, 793000, tzinfo=UTC)
    assert fast[0].starts_at is fast[1].starts_at
    assert fast[1].updated_at == parse_time("2026-12-02T03:59:56Z")
    assert fast[2].starts_at is None and fast[2].updated_at is None
    assert fast[0].ends_at is None
    assert fast[0].labels == {"alertname": "A", "n": "0"}
    assert (
        fast[0].annotations == {} and fast[0].inhibited_by == [] and fast[0].silenced_by == ["s1"]
    )


def test_a_bad_timestamp_still_fails_the_alerts() -> None:
    with pytest.raises(ValueError):
        _alerts([alert(0, "yesterday", None)])


def test_target_job_falls_back_to_the_scrape_pool() -> None:
    t = {"labels": {"instance": "x"}, "scrapePool": "pool", "scrapeUrl": "u", "health": "up"}
    parsed = _target(t)
    assert (parsed.job, parsed.instance, parsed.last_scrape, parsed.labels) == (
        "pool", "x", None, {"instance": "x"}
    )  # fmt: skip


def test_index_columns_as_strings_or_numbers() -> None:
    row = {"index": "i", "status": "open", "docs.count": "12", "store.size": 3400,
           "pri": "1", "rep": "", "creation.date": "1764650883123"}  # fmt: skip
    parsed = _index(row)
    assert (parsed.docs_count, parsed.store_size_bytes, parsed.primaries, parsed.replicas) == (
        12, 3400, 1, 0
    )  # fmt: skip
    assert parsed.creation_date == datetime(2025, 12, 2, 4, 48, 3, 123000, tzinfo=UTC)
    with pytest.raises(ValueError):
        _index({**row, "docs.count": "many"})
