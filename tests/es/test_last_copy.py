"""Issue 15 against the lab's real Elasticsearch: retention's snapshots are archives and
never the victim of routine pruning; a snapshot holding the last copy of an index is kept
(prune) or refused (delete) unless --lose-last-copies; running snapshots and restores are
waited for; red indices stop a backup with the choices. Tier arithmetic over dates is in
tests/unit/test_last_copy.py (real snapshot start times cannot be faked here)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from opskit.errors import EXIT_BUSY, EXIT_USAGE
from tests.conftest import ROOT, Lab
from tests.es.conftest import (
    Repo,
    create_index,
    delete_indices,
    documents,
    es_request,
    index_names,
    make_daily,
    opskit_env,
    path_repo,
    run_json,
    unique_prefix,
)


@pytest.fixture
def prefix(lab: Lab) -> Iterator[str]:
    name = unique_prefix("lc")
    yield name
    delete_indices(lab, f"{name}*")
    delete_indices(lab, f"restored-{name}*")


def listing(lab: Lab, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run_json(lab, env, "snapshots", "list")}


def retention_run(lab: Lab, env: dict[str, str], pattern: str, older: str) -> dict[str, Any]:
    out = run_json(
        lab, env, "retention", "elasticsearch", "--pattern", pattern, "--older-than", older,
        "--snapshot-first", "--yes",
    )  # fmt: skip
    outcome: dict[str, Any] = out["result"]["outcomes"][0]
    assert outcome["failed"] == {} and outcome["snapshot_error"] is None, outcome
    assert outcome["done"], outcome
    return outcome


def test_retention_snapshot_survives_routine_prune(lab: Lab, repo: Repo, prefix: str) -> None:
    daily = make_daily(lab, prefix, days=6)
    env = opskit_env(lab, repo.name)
    before = {name: documents(lab, name) for name in daily.by_day}

    # retention deletes the old indices after an archive snapshot of them
    outcome = retention_run(lab, env, daily.pattern, "2d")
    gone = sorted(outcome["done"])
    archive = outcome["snapshot"]["name"]
    assert outcome["snapshot"]["kind"] == "archive"
    assert outcome["snapshot"]["policy"] == "one-off"
    assert index_names(lab, daily.pattern) == set(daily.by_day) - set(gone)

    # an ordinary backup later the same day of what is left
    backup = run_json(lab, env, "backup", "elasticsearch", "--indices", daily.pattern)
    backup_name = backup["snapshot"]["name"]
    assert backup["snapshot"]["kind"] == "backup"
    assert not set(gone) & set(backup["snapshot"]["indices"])

    listed = listing(lab, env)
    assert listed[archive]["kind"] == "archive" and listed[archive]["last_copy"] == gone
    assert listed[archive]["metadata"] == {"opskit": {"kind": "archive", "policy": "one-off"}}
    assert listed[backup_name]["kind"] == "backup" and listed[backup_name]["last_copy"] == []
    text = lab.opskit("snapshots", "list", env=env)
    assert text.returncode == 0 and "archive (one-off)" in text.stdout and gone[0] in text.stdout

    # the prune: the retention snapshot is kept, naming the indices
    dry = run_json(lab, env, "snapshots", "prune", "--keep-daily", "1", "--dry-run")
    keep = {d["name"]: d for d in dry["keep"]}
    assert dry["delete"] == []
    assert keep[archive]["last_copy"] == gone
    assert f"last copy of {', '.join(gone)}" in keep[archive]["reasons"]
    human = lab.opskit("snapshots", "prune", "--keep-daily", "1", "--dry-run", env=env)
    assert f"last copy of {gone[0]}" in human.stdout, human.stdout
    applied = run_json(lab, env, "snapshots", "prune", "--keep-daily", "1", "--yes")
    assert applied["delete"] == []
    assert set(listing(lab, env)) == {archive, backup_name}

    # deleting it by name refuses; with --lose-last-copies the plan names what is lost
    refused = lab.opskit("snapshots", "delete", archive, "--yes", env=env)
    assert refused.returncode == EXIT_USAGE, refused.stderr
    assert "last copy of" in refused.stderr and gone[0] in refused.stderr
    assert "--lose-last-copies" in refused.stderr and "Traceback" not in refused.stderr
    assert archive in listing(lab, env)

    # restore an archived index: its documents come back
    restored = run_json(lab, env, "restore", "elasticsearch", archive, "--indices", gone[0])
    assert restored["indices"][0]["docs"] == len(before[gone[0]])
    assert documents(lab, gone[0]) == before[gone[0]]
    # now it is in the cluster again: only the others are the archive's last copies
    assert listing(lab, env)[archive]["last_copy"] == gone[1:]

    shown = subprocess.run(
        [sys.executable, "-m", "opskit", "snapshots", "delete", archive, "--lose-last-copies"],
        env=env, capture_output=True, text=True, cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert shown.returncode == EXIT_USAGE  # no terminal, no --yes: shown, not done
    assert f"LAST COPY of {', '.join(gone[1:])}" in shown.stdout, shown.stdout
    lost = run_json(lab, env, "snapshots", "delete", archive, "--lose-last-copies", "--yes")
    assert lost["deleted"] == [archive] and lost["lost"] == {archive: gone[1:]}
    assert set(listing(lab, env)) == {backup_name}


def test_ordinary_snapshot_holding_the_last_copy_is_kept_by_prune(
    lab: Lab, repo: Repo, prefix: str
) -> None:
    """Snapshots made before archives were marked (or by another tool) are ordinary
    backups: the tiers would delete them; last-copy protection keeps them."""
    old, live = f"{prefix}old", f"{prefix}live"
    create_index(lab, old, docs=3)
    create_index(lab, live, docs=2)
    env = opskit_env(lab, repo.name)
    run_json(lab, env, "backup", "elasticsearch", "--indices", f"{prefix}*", "--name", "first")
    es_request(lab, "DELETE", f"/{old}")
    run_json(lab, env, "backup", "elasticsearch", "--indices", live, "--name", "second")
    # a FAILED-free but PARTIAL snapshot never counts as a copy: the first stays protected
    dry = run_json(lab, env, "snapshots", "prune", "--keep-last", "1", "--dry-run")
    keep = {d["name"]: d["reasons"] for d in dry["keep"]}
    assert keep == {"second": ["newest SUCCESS", "last"], "first": [f"last copy of {old}"]}
    lose = run_json(
        lab, env, "snapshots", "prune", "--keep-last", "1", "--lose-last-copies", "--dry-run"
    )
    assert [(d["name"], d["last_copy"]) for d in lose["delete"]] == [("first", [old])]
    # the index exists again (re-created): the first snapshot is no longer the last copy
    create_index(lab, old, docs=1)
    done = run_json(lab, env, "snapshots", "prune", "--keep-last", "1", "--yes")
    assert [d["name"] for d in done["delete"]] == ["first"]


def test_several_retention_runs_then_prune(lab: Lab, repo: Repo, prefix: str) -> None:
    first = make_daily(lab, f"{prefix}a-", days=4)
    second = make_daily(lab, f"{prefix}b-", days=4)
    env = opskit_env(lab, repo.name)
    run_a = retention_run(lab, env, first.pattern, "1d")
    run_b = retention_run(lab, env, second.pattern, "1d")
    run_json(lab, env, "backup", "elasticsearch", "--indices", f"{prefix}*", "--name", "b1")
    run_json(lab, env, "backup", "elasticsearch", "--indices", f"{prefix}*", "--name", "b2")
    arch_a, arch_b = run_a["snapshot"]["name"], run_b["snapshot"]["name"]

    done = run_json(lab, env, "snapshots", "prune", "--keep-last", "1", "--keep-daily", "1",
                    "--yes")  # fmt: skip
    assert [d["name"] for d in done["delete"]] == ["b1"]
    keep = {d["name"]: d for d in done["keep"]}
    assert keep[arch_a]["kind"] == keep[arch_b]["kind"] == "archive"
    assert keep[arch_a]["last_copy"] == sorted(run_a["done"])
    assert keep[arch_b]["last_copy"] == sorted(run_b["done"])
    assert "archive, younger than 365d" in keep[arch_a]["reasons"]
    # the archive window comes from [archive] keep
    env_short = {**env, "OPSKIT_ARCHIVE_KEEP": "30d"}
    short = run_json(lab, env_short, "snapshots", "prune", "--keep-last", "1", "--dry-run")
    assert "archive, younger than 30d" in {d["name"]: d for d in short["keep"]}[arch_a]["reasons"]

    both = lab.opskit("snapshots", "delete", arch_a, arch_b, "--yes", env=env)
    assert both.returncode == EXIT_USAGE and "and 1 more" in both.stderr, both.stderr
    assert {arch_a, arch_b} <= set(listing(lab, env))


# ------------------------------------------------------------------ running work


def throttled_repo(lab: Lab, name: str, **settings: str) -> None:
    body = {"type": "fs", "settings": {"location": name, **settings}}
    answer = es_request(lab, "PUT", f"/_snapshot/{name}", body)
    assert answer.get("acknowledged"), answer


def fill(lab: Lab, index: str, docs: int = 800) -> None:
    """About 200 KB on disk: ten seconds or so through a 20 KB/s repository."""
    import json

    create_index(lab, index, docs=1)
    lines = "".join(
        json.dumps({"index": {"_index": index}}) + "\n"
        + json.dumps({"n": n, "message": uuid.uuid4().hex * 8}) + "\n"
        for n in range(docs)
    )  # fmt: skip
    answer = es_request(lab, "POST", "/_bulk?refresh=true", ndjson=lines)
    assert not answer["errors"]
    es_request(lab, "POST", f"/{index}/_flush")


def running(lab: Lab) -> list[str]:
    return [s["snapshot"] for s in es_request(lab, "GET", "/_snapshot/_status")["snapshots"]]


@pytest.fixture
def slow_repo(lab: Lab) -> Iterator[str]:
    """A repository throttled to ~20 KB/s for snapshots and restores."""
    import shutil

    name = f"opskit-test-slow-{uuid.uuid4().hex[:8]}"
    throttled_repo(lab, name, max_snapshot_bytes_per_sec="20kb",
                   max_restore_bytes_per_sec="20kb")  # fmt: skip
    yield name
    for s in es_request(lab, "GET", f"/_snapshot/{name}/_all").get("snapshots", []):
        es_request(lab, "DELETE", f"/_snapshot/{name}/{s['snapshot']}")
    es_request(lab, "DELETE", f"/_snapshot/{name}")
    shutil.rmtree(path_repo(lab) / name, ignore_errors=True)


def test_retention_waits_for_a_running_snapshot(
    lab: Lab, repo: Repo, slow_repo: str, prefix: str
) -> None:
    old = f"{prefix}app-2020.01.01"
    fill(lab, old)
    slow_env = opskit_env(lab, slow_repo)
    started = lab.opskit("backup", "elasticsearch", "--indices", old, "--no-wait",
                         "--name", "slow", env=slow_env)  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "slow" in running(lab)

    env = opskit_env(lab, repo.name)
    args = ("retention", "elasticsearch", "--pattern", f"{prefix}app-*", "--older-than", "30d",
            "--yes")  # fmt: skip
    refused = lab.opskit(*args, "--wait-running", "2s", env=env)
    assert refused.returncode == EXIT_BUSY, (refused.stdout, refused.stderr)
    assert f"snapshot {slow_repo}:slow is copying {old}" in refused.stderr
    assert "waiting:" in refused.stderr and "--wait-running" in refused.stderr
    assert index_names(lab, old) == {old}

    # deleting the running snapshot itself is waited for too
    busy = lab.opskit("snapshots", "delete", "slow", "--wait-running", "0", "--yes",
                      env=slow_env)  # fmt: skip
    assert busy.returncode == EXIT_BUSY and "is still running" in busy.stderr, busy.stderr

    t0 = time.monotonic()
    waited = lab.opskit(*args, "--wait-running", "3m", env=env, timeout=240)
    assert waited.returncode == 0, (waited.stdout, waited.stderr)
    assert "waiting:" in waited.stderr and time.monotonic() - t0 > 1
    assert "slow" not in running(lab)
    assert index_names(lab, f"{prefix}app-*") == set()


def test_snapshot_delete_and_restore_wait_for_a_running_restore(
    lab: Lab, slow_repo: str, prefix: str
) -> None:
    index = f"{prefix}big"
    fill(lab, index)
    env = opskit_env(lab, slow_repo)
    # snapshots into it at full speed; restores from it throttled
    throttled_repo(lab, slow_repo, max_restore_bytes_per_sec="20kb")
    taken = run_json(lab, env, "backup", "elasticsearch", "--indices", index, "--name", "src")
    assert taken["snapshot"]["state"] == "SUCCESS"
    target = f"restored-{index}"
    answer = es_request(lab, "POST", f"/_snapshot/{slow_repo}/src/_restore", {
        "indices": index, "rename_pattern": "(.+)", "rename_replacement": "restored-$1",
    })  # fmt: skip
    assert answer.get("accepted"), answer
    state = es_request(lab, "GET", "/_cluster/state/customs?filter_path=restore")
    assert [r["indices"] for r in state["restore"]["snapshots"]] == [[target]], state

    busy = lab.opskit("snapshots", "delete", "src", "--wait-running", "1s", "--yes", env=env)
    assert busy.returncode == EXIT_BUSY, busy.stderr
    assert f"restore from {slow_repo}:src into {target} is running" in busy.stderr
    again = lab.opskit(
        "restore", "elasticsearch", "src", "--rename-pattern", "(.+)",
        "--rename-replacement", "restored-$1", "--wait-running", "0", "--yes", env=env,
    )  # fmt: skip
    assert again.returncode == EXIT_BUSY, again.stderr
    assert f"restore from {slow_repo}:src into {target} is running" in again.stderr
    assert "src" in listing(lab, env)
    # the restore's shards are recovering now: _recovery shows them, and the wait sees them
    deadline = time.monotonic() + 20
    while target not in es_request(lab, "GET", "/_recovery?active_only=true"):
        assert time.monotonic() < deadline, "restore never showed in _recovery"
        time.sleep(0.2)
    env_fast = opskit_env(lab, slow_repo)
    waited = lab.opskit("snapshots", "delete", "src", "--wait-running", "2m", "--yes",
                        env=env_fast, timeout=180)  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    assert f"waiting: restore from {slow_repo}:src into {target}" in waited.stderr
    assert "src" not in listing(lab, env)
    assert len(documents(lab, target)) == 800 + 1
