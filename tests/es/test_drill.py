"""`opskit drill elasticsearch` against the lab: indices and a repository of the test's
own, a snapshot of them, the drill restores under a scratch prefix, compares and cleans
up after itself (and after a killed earlier run)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Lab
from tests.es.conftest import (
    Repo,
    create_index,
    es_request,
    index_names,
    opskit_env,
    run_json,
)


def snapshot(lab: Lab, repo: Repo, name: str, indices: list[str]) -> None:
    answer = es_request(
        lab, "PUT", f"/_snapshot/{repo.name}", {"type": "fs", "settings": {"location": repo.name}}
    )
    assert answer.get("acknowledged"), answer
    answer = es_request(
        lab,
        "PUT",
        f"/_snapshot/{repo.name}/{name}?wait_for_completion=true",
        {"indices": ",".join(indices), "include_global_state": False},
    )
    assert answer["snapshot"]["state"] == "SUCCESS", answer


def drill(lab: Lab, repo: Repo, prefix: str, *args: str, codes: tuple[int, ...] = (0,)) -> Any:
    env = opskit_env(lab, repo.name)
    return run_json(lab, env, "drill", "elasticsearch", "--prefix", prefix, *args, codes=codes)


def by_index(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["index"]: c for c in report["checks"]}


def test_drill_passes_and_leaves_no_scratch_index(
    lab: Lab, repo: Repo, scratch_prefix: str
) -> None:
    names = [f"{scratch_prefix}a", f"{scratch_prefix}b"]
    create_index(lab, names[0], docs=5)
    create_index(lab, names[1], docs=3)
    snapshot(lab, repo, "snap-1", names)
    drill_prefix = f"{scratch_prefix}drill-"

    report = drill(lab, repo, drill_prefix)
    assert report["status"] == "pass" and report["exit_code"] == 0
    assert report["snapshot"] == "snap-1" and report["snapshot_indices"] == 2
    checks = by_index(report)
    assert set(checks) == set(names)
    assert checks[names[0]]["docs_restored"] == 5 == checks[names[0]]["docs_live"]
    assert checks[names[1]]["docs_restored"] == 3 == checks[names[1]]["docs_live"]
    for c in checks.values():
        assert c["status"] == "ok" and c["mapping"] == "same"
        assert c["health"] in ("green", "yellow")
        assert c["scratch"] == f"{drill_prefix}{report['run_id']}-{c['index']}"
    assert sorted(report["cleaned"]) == sorted(c["scratch"] for c in checks.values())
    assert index_names(lab, f"{drill_prefix}*") == set()
    # the live indices are untouched, and the copies never joined them
    assert index_names(lab, f"{scratch_prefix}*") == set(names)


def test_documents_added_after_the_snapshot_are_a_mismatch(
    lab: Lab, repo: Repo, scratch_prefix: str
) -> None:
    name = f"{scratch_prefix}grows"
    create_index(lab, name, docs=4)
    snapshot(lab, repo, "snap-grows", [name])
    extra = "".join(
        json.dumps({"index": {"_index": name, "_id": f"late-{n}"}}) + "\n"
        + json.dumps({"n": 100 + n, "late": True}) + "\n"
        for n in range(2)
    )  # fmt: skip
    assert not es_request(lab, "POST", "/_bulk?refresh=true", ndjson=extra)["errors"]

    report = drill(lab, repo, f"{scratch_prefix}drill-", codes=(1,))
    assert report["status"] == "warn" and report["exit_code"] == 1
    check = by_index(report)[name]
    assert check["status"] == "mismatch"
    assert (check["docs_restored"], check["docs_live"]) == (4, 6)
    # a new field (`late`) came with the late documents: the mapping differs too
    assert check["mapping"] == "differs"
    assert check["mapping_diff"]["only_live"] == ["late"]
    warnings = [f for f in report["findings"] if f["severity"] == "warning"]
    assert [f["subject"] for f in warnings] == [name]
    assert "4 documents restored, 6 in the live index" in warnings[0]["summary"]
    assert "the live index changed since the snapshot" in warnings[0]["summary"]
    assert index_names(lab, f"{scratch_prefix}drill-*") == set()


def test_sample_restores_only_that_many(lab: Lab, repo: Repo, scratch_prefix: str) -> None:
    names = [f"{scratch_prefix}s{n}" for n in range(3)]
    for name in names:
        create_index(lab, name, docs=2)
    snapshot(lab, repo, "snap-sample", names)

    report = drill(lab, repo, f"{scratch_prefix}drill-", "--sample", "1")
    assert report["status"] == "pass" and report["sample"] == 1
    assert report["snapshot_indices"] == 3
    drilled = [c for c in report["checks"] if c["status"] != "skipped"]
    assert len(drilled) == 1 and drilled[0]["index"] in names
    assert drilled[0]["docs_restored"] == 2 == drilled[0]["docs_live"]
    assert len(report["cleaned"]) == 1
    assert index_names(lab, f"{scratch_prefix}drill-*") == set()


def test_a_killed_runs_scratch_index_is_removed_by_the_next_run(
    lab: Lab, repo: Repo, scratch_prefix: str
) -> None:
    name = f"{scratch_prefix}live"
    create_index(lab, name, docs=1)
    snapshot(lab, repo, "snap-left", [name])
    drill_prefix = f"{scratch_prefix}drill-"
    # what a run killed yesterday left behind, named as the drill names its copies
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y%m%dt%H%M%S")
    leftover = f"{drill_prefix}{yesterday}-beef-{name}"
    # a run of another drill that is (as far as we know) still going: left alone
    recent = datetime.now(UTC).strftime("%Y%m%dt%H%M%S")
    running = f"{drill_prefix}{recent}-cafe-{name}"
    # not a drill's name at all: never touched
    unrelated = f"{drill_prefix}notarun-{name}"
    for index in (leftover, running, unrelated):
        create_index(lab, index, docs=1)

    report = drill(lab, repo, drill_prefix)
    assert report["status"] == "pass"
    assert report["removed_leftovers"] == [leftover]
    assert report["kept_leftovers"] == [running]
    assert any(
        f["summary"].startswith("removed 1 scratch index(es) an earlier drill left behind")
        for f in report["findings"]
    )
    assert index_names(lab, f"{drill_prefix}*") == {running, unrelated}


def test_no_success_snapshot_fails_and_read_only_refuses(
    lab: Lab, repo: Repo, scratch_prefix: str
) -> None:
    es_request(
        lab, "PUT", f"/_snapshot/{repo.name}", {"type": "fs", "settings": {"location": repo.name}}
    )
    report = drill(lab, repo, f"{scratch_prefix}drill-", codes=(2,))
    assert report["status"] == "fail"
    assert "no SUCCESS snapshot" in report["findings"][0]["summary"]

    env = opskit_env(lab, repo.name, OPSKIT_READ_ONLY="true")
    proc = lab.opskit("drill", "elasticsearch", "--prefix", f"{scratch_prefix}drill-", env=env)
    assert proc.returncode == 64, proc.stderr
    assert "read-only" in proc.stderr
