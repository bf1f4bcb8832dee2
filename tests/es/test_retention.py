"""Retention against the lab's real Elasticsearch, on 45 days of daily indices of our own
(the demo layout under a unique prefix); the lab's `logs-*` indices are never touched."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from opskit.errors import EXIT_USAGE
from tests.conftest import Lab
from tests.es.conftest import (
    DailyIndices,
    Repo,
    create_index,
    documents,
    es_request,
    index_names,
    opskit_env,
    path_repo,
    run_json,
)


@pytest.fixture
def demo_logs(lab: Lab) -> set[str]:
    return index_names(lab, "logs-*")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected_old(daily: DailyIndices, cutoff: datetime) -> set[str]:
    """Independent of opskit: a daily index is old once its whole day ended by the cutoff."""
    return {n for n, day in daily.by_day.items() if day + timedelta(days=1) <= cutoff}


def test_plan_and_delete_exactly_the_old_ones(
    lab: Lab, daily: DailyIndices, demo_logs: set[str]
) -> None:
    nodate = f"{daily.prefix}app-latest"
    hidden = f"{daily.prefix}app-2001.01.01"
    create_index(lab, nodate, docs=1)
    create_index(lab, hidden, docs=1, **{"index.hidden": True})
    args = ("retention", "elasticsearch", "--pattern", daily.pattern, "--older-than", "30d")
    env = lab.env()

    dry = run_json(lab, env, *args, "--dry-run")
    plan = dry["policies"][0]
    cutoff = parse_time(plan["cutoff"])
    old = expected_old(daily, cutoff)
    assert len(old) in (14, 15)  # 45 days, keep 30 (+ today's partial day)
    assert {d["index"] for d in plan["act"]} == old
    skipped = {d["index"]: d["reason"] for d in plan["skipped"]}
    assert "no date" in skipped[nodate] and "hidden" in skipped[hidden]
    assert index_names(lab, f"{daily.prefix}*") == {*daily.by_day, nodate, hidden}  # dry run

    done = run_json(lab, env, *args, "--yes")
    outcome = done["result"]["outcomes"][0]
    cutoff = parse_time(done["policies"][0]["cutoff"])
    assert set(outcome["done"]) == expected_old(daily, cutoff)
    assert outcome["failed"] == {}
    left = index_names(lab, f"{daily.prefix}*")
    assert left == ({*daily.by_day} - expected_old(daily, cutoff)) | {nodate, hidden}
    assert index_names(lab, "logs-*") == demo_logs

    again = run_json(lab, env, *args, "--yes")
    assert again["nothing_to_do"] is True
    text = lab.opskit(*args, "--yes")
    assert text.returncode == 0 and "nothing to do" in text.stdout


def test_snapshot_first_deleted_indices_are_restorable(
    lab: Lab, daily: DailyIndices, repo: Repo, demo_logs: set[str]
) -> None:
    env = opskit_env(lab, repo.name)
    sample = min(daily.by_day)  # the oldest: certainly deleted
    before = documents(lab, sample)
    out = run_json(
        lab, env, "retention", "elasticsearch", "--pattern", daily.pattern,
        "--older-than", "40d", "--snapshot-first", "--yes",
    )  # fmt: skip
    outcome = out["result"]["outcomes"][0]
    snap = outcome["snapshot"]
    assert snap["state"] == "SUCCESS"
    deleted = set(outcome["done"])
    assert deleted == expected_old(daily, parse_time(out["policies"][0]["cutoff"]))
    assert deleted <= set(snap["indices"])
    assert not index_names(lab, f"{daily.prefix}*") & deleted

    restored = run_json(
        lab, env, "restore", "elasticsearch", snap["name"], "--indices", f"{daily.prefix}*"
    )
    assert {i["index"] for i in restored["indices"]} == deleted
    assert all(i["docs"] == 2 for i in restored["indices"])
    assert documents(lab, sample) == before
    assert index_names(lab, "logs-*") == demo_logs


def _readonly_repo(lab: Lab, repo: Repo) -> None:
    """A real repository Elasticsearch refuses to write to (registered `readonly: true`).
    chmod would not do: the lab runs Elasticsearch as root."""
    Path(repo.directory).mkdir(parents=True, exist_ok=True)
    body = {"type": "fs", "settings": {"location": repo.name, "readonly": True}}
    assert es_request(lab, "PUT", f"/_snapshot/{repo.name}", body)["acknowledged"]
    assert str(path_repo(lab)) in str(repo.directory)


def test_failed_snapshot_deletes_nothing_readonly_repository(
    lab: Lab, daily: DailyIndices, repo: Repo
) -> None:
    _readonly_repo(lab, repo)
    env = opskit_env(lab, repo.name)
    out = run_json(
        lab, env, "retention", "elasticsearch", "--pattern", daily.pattern,
        "--older-than", "30d", "--snapshot-first", "--yes", codes=(1,),
    )  # fmt: skip
    outcome = out["result"]["outcomes"][0]
    assert "readonly" in outcome["snapshot_error"]
    assert outcome["done"] == [] and len(outcome["not_protected"]) >= 14
    assert index_names(lab, f"{daily.prefix}*") == set(daily.by_day)


def test_failed_snapshot_deletes_nothing_red_index(
    lab: Lab, daily: DailyIndices, repo: Repo
) -> None:
    """One old index whose primary cannot be allocated: its snapshot fails, so none of the
    old indices goes, healthy ones included."""
    red = f"{daily.prefix}app-2001.01.01"
    create_index(lab, red, docs=0, **{"index.routing.allocation.require._name": "nowhere"})
    env = opskit_env(lab, repo.name)
    proc = lab.opskit(
        "retention", "elasticsearch", "--pattern", daily.pattern, "--older-than", "30d",
        "--snapshot-first", "--yes", env=env, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "snapshot failed" in proc.stdout and "unassigned primary" in proc.stdout
    assert index_names(lab, f"{daily.prefix}*") == {*daily.by_day, red}


def test_configured_policies_plan_and_apply(lab: Lab, daily: DailyIndices, tmp_path: Path) -> None:
    config = tmp_path / "opskit.toml"
    config.write_text(
        f"""
[[retention]]
name = "test-close"
pattern = "{daily.pattern}"
keep = "1mo"
action = "close"
"""
    )
    env = lab.env(OPSKIT_CONFIG=str(config))
    plan = run_json(lab, env, "retention", "plan")
    p = plan["policies"][0]
    assert p["policy"] == "test-close" and p["action"] == "close"
    closing = {d["index"] for d in p["act"]}
    assert closing == expected_old(daily, parse_time(p["cutoff"]))
    out = run_json(lab, env, "retention", "apply", "--policy", "test-close", "--yes")
    assert set(out["result"]["outcomes"][0]["done"]) == closing
    states = es_request(lab, "GET", f"/_cat/indices/{daily.pattern}?format=json&h=index,status")
    assert {r["index"] for r in states if r["status"] == "close"} == closing

    unknown = lab.opskit("retention", "apply", "--policy", "nope", env=env)
    assert unknown.returncode == EXIT_USAGE and "unknown policy nope" in unknown.stderr


def test_bad_input_is_one_line(lab: Lab) -> None:
    proc = lab.opskit(
        "retention", "elasticsearch", "--pattern", "*", "--older-than", "30d", "--dry-run"
    )
    assert proc.returncode == EXIT_USAGE and "narrower than '*'" in proc.stderr
    proc = lab.opskit(
        "retention", "elasticsearch", "--pattern", "x-*", "--older-than", "3m", "--dry-run"
    )
    assert proc.returncode == EXIT_USAGE and "mo" in proc.stderr and "Traceback" not in proc.stderr
    proc = lab.opskit("retention", "elasticsearch", "--pattern", "x-*", "--older-than", "30d")
    assert proc.returncode == 0 and "nothing to do" in proc.stdout  # nothing matches
