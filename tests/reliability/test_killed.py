"""opskit killed with SIGKILL half-way (cron's timeout, the OOM killer, a reboot) loses
nothing, and the next run finishes the job and leaves no scratch behind (issue 15):
between retention's snapshot and its delete, during a snapshot prune, during a restore
drill. Snapshots and restores run through a repository throttled to ~20 KB/s, so the
kill lands while Elasticsearch is still working."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import ROOT, Lab, wait_for
from tests.es.conftest import (
    create_index,
    delete_indices,
    documents,
    es_request,
    index_names,
    opskit_env,
    path_repo,
    run_json,
    unique_prefix,
)
from tests.es.test_last_copy import fill, running, throttled_repo
from tests.reliability.faults import fault_proxy


@pytest.fixture
def prefix(lab: Lab) -> Iterator[str]:
    name = unique_prefix("kill")
    yield name
    delete_indices(lab, f"{name}*")
    delete_indices(lab, f"restored-{name}*")


@pytest.fixture
def slow(lab: Lab) -> Iterator[str]:
    """A repository of our own, throttled for snapshots and restores."""
    import shutil

    name = f"opskit-test-kill-{uuid.uuid4().hex[:8]}"
    throttled_repo(lab, name, max_snapshot_bytes_per_sec="20kb",
                   max_restore_bytes_per_sec="20kb")  # fmt: skip
    yield name
    wait_for(lambda: not running(lab), 120)
    for s in es_request(lab, "GET", f"/_snapshot/{name}/_all").get("snapshots", []):
        es_request(lab, "DELETE", f"/_snapshot/{name}/{s['snapshot']}")
    es_request(lab, "DELETE", f"/_snapshot/{name}")
    shutil.rmtree(path_repo(lab) / name, ignore_errors=True)


def kill_when(lab: Lab, env: dict[str, str], args: list[str], ready: Callable[[], bool]) -> None:
    """Start `opskit ARGS`, SIGKILL it as soon as `ready()` holds (checked every 50 ms)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "opskit", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert proc.poll() is None, f"opskit ended before the kill: {proc.stderr.read()!r}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the moment to kill never came"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def snapshots(lab: Lab, repo: str) -> dict[str, dict[str, object]]:
    body = es_request(lab, "GET", f"/_snapshot/{repo}/_all")
    return {s["snapshot"]: s for s in body.get("snapshots", [])}


def held(lab: Lab, repo: str) -> set[str]:
    """Indices that some SUCCESS snapshot of the repository holds."""
    return {
        i
        for s in snapshots(lab, repo).values()
        if s["state"] == "SUCCESS"
        for i in s["indices"]  # type: ignore[attr-defined]
    }


def assert_nothing_lost(lab: Lab, repo: str, names: set[str], prefix: str) -> None:
    """Every index is still in the cluster or in a SUCCESS snapshot of `repo`."""
    present = index_names(lab, f"{prefix}*")
    assert names <= present | held(lab, repo), names - present - held(lab, repo)


def test_killed_between_snapshot_and_delete(lab: Lab, slow: str, prefix: str) -> None:
    old = [f"{prefix}app-2020.01.0{d}" for d in (1, 2)]
    for name in old:
        fill(lab, name, docs=400)
    env = opskit_env(lab, slow)
    args = ["retention", "elasticsearch", "--pattern", f"{prefix}app-*", "--older-than", "30d",
            "--snapshot-first", "--yes"]  # fmt: skip

    kill_when(lab, env, args, lambda: bool(running(lab)))
    # killed while its snapshot ran: nothing deleted, nothing lost
    assert index_names(lab, f"{prefix}app-*") == set(old)
    wait_for(lambda: not running(lab), 120)  # Elasticsearch finishes the orphan snapshot

    done = run_json(lab, env, *args)
    outcome = done["result"]["outcomes"][0]
    assert sorted(outcome["done"]) == old and outcome["failed"] == {}, outcome
    assert index_names(lab, f"{prefix}app-*") == set()
    assert_nothing_lost(lab, slow, set(old), prefix)

    # and the archived copy brings the documents back
    snap = outcome["snapshot"]["name"]
    es_request(lab, "PUT", f"/_snapshot/{slow}", {"type": "fs", "settings": {"location": slow}})
    restored = lab.opskit("restore", "elasticsearch", snap, "--indices", old[0],
                          "--rename-pattern", "(.+)", "--rename-replacement", "restored-$1",
                          "--yes", env=env, timeout=180)  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    wait_for(lambda: len(documents(lab, f"restored-{old[0]}")) == 400, 60)


def test_killed_during_prune(lab: Lab, slow: str, prefix: str) -> None:
    gone = f"{prefix}gone"
    kept = f"{prefix}kept"
    create_index(lab, gone, docs=3)
    create_index(lab, kept, docs=3)
    throttled_repo(lab, slow)  # full speed for taking them: the prune is what gets killed
    env = opskit_env(lab, slow)
    run_json(lab, env, "backup", "elasticsearch", "--indices", gone, "--name", "only-copy")
    es_request(lab, "DELETE", f"/{gone}")  # the snapshot now holds its last copy
    for n in range(6):
        run_json(lab, env, "backup", "elasticsearch", "--indices", kept, "--name", f"b{n}")
    args = ["snapshots", "prune", "--keep-last", "1", "--yes"]

    with fault_proxy(lab.elasticsearch) as proxy:
        # the delete is held 3 s on its way, and goes through after opskit is dead
        proxy.set("slow", delay=3, method="DELETE", path="/_snapshot/")
        proxied = {**env, "OPSKIT_ELASTICSEARCH_URL": proxy.url}
        kill_when(lab, proxied, args, lambda: proxy.seen() >= 1)
        time.sleep(4)
    after_kill = set(snapshots(lab, slow))
    assert {"only-copy", "b5"} <= after_kill  # the last copy and the newest
    assert_nothing_lost(lab, slow, {gone, kept}, prefix)

    plan = run_json(lab, env, *args)
    assert set(snapshots(lab, slow)) == {"only-copy", "b5"}, plan
    assert_nothing_lost(lab, slow, {gone, kept}, prefix)


def test_killed_during_a_drill_leaves_no_scratch_after_the_next(
    lab: Lab, slow: str, prefix: str
) -> None:
    index = f"{prefix}big"
    fill(lab, index, docs=400)
    throttled_repo(lab, slow)  # the snapshot at full speed
    env = opskit_env(lab, slow)
    run_json(lab, env, "backup", "elasticsearch", "--indices", index, "--name", "drillme")
    throttled_repo(lab, slow, max_restore_bytes_per_sec="20kb")  # the restore slow
    scratch = f"opskit-test-drill-{uuid.uuid4().hex[:6]}-"
    args = ["drill", "elasticsearch", "--snapshot", "drillme", "--prefix", scratch]

    try:
        kill_when(lab, env, args, lambda: bool(index_names(lab, f"{scratch}*")))
        left = index_names(lab, f"{scratch}*")
        assert left, "the killed drill left its scratch copy (the case under test)"
        time.sleep(1.5)

        report = run_json(lab, env, *args, "--leftover-grace", "1s", codes=(0, 1))
        assert set(report["removed_leftovers"]) >= left, report
        assert index_names(lab, f"{scratch}*") == set()
        assert index_names(lab, index) == {index}  # the live index untouched
    finally:
        delete_indices(lab, f"{scratch}*")
