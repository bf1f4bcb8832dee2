"""`opskit snapshots list|delete|prune` with snapshots this test takes itself."""

from __future__ import annotations

import time

from opskit.errors import EXIT_USAGE
from tests.conftest import Lab
from tests.es.conftest import Repo, create_index, opskit_env, run_json


def _take(lab: Lab, env: dict[str, str], index: str, name: str, *extra: str) -> dict[str, object]:
    out = run_json(
        lab, env, "backup", "elasticsearch", "--indices", index, "--name", name, *extra,
        codes=(0, 1),
    )  # fmt: skip
    time.sleep(0.05)  # distinct start times
    snap: dict[str, object] = out["snapshot"]
    return snap


def test_prune_keep_last_never_the_newest_success(
    lab: Lab, repo: Repo, scratch_prefix: str
) -> None:
    good, red = f"{scratch_prefix}good", f"{scratch_prefix}red"
    create_index(lab, good, docs=1)
    create_index(lab, red, docs=0, **{"index.routing.allocation.require._name": "nowhere"})
    env = opskit_env(lab, repo.name)
    for n in range(4):
        _take(lab, env, good, f"s{n}")
    partial = _take(lab, env, red, "s4-partial", "--partial")
    assert partial["state"] == "PARTIAL"

    listed = run_json(lab, env, "snapshots", "list")
    assert [s["name"] for s in listed] == ["s0", "s1", "s2", "s3", "s4-partial"]

    dry = run_json(lab, env, "snapshots", "prune", "--keep-last", "1", "--dry-run")
    assert {d["name"] for d in dry["delete"]} == {"s0", "s1", "s2"}
    keep = {d["name"]: d["reasons"] for d in dry["keep"]}
    assert keep == {"s4-partial": ["last"], "s3": ["newest SUCCESS"]}
    assert len(run_json(lab, env, "snapshots", "list")) == 5  # dry run

    young = run_json(lab, env, "snapshots", "prune", "--older-than", "1d", "--yes")
    assert young["delete"] == []

    done = run_json(lab, env, "snapshots", "prune", "--keep-last", "2", "--yes")
    assert {d["name"] for d in done["delete"]} == {"s0", "s1", "s2"}
    assert [s["name"] for s in run_json(lab, env, "snapshots", "list")] == ["s3", "s4-partial"]

    run_json(lab, env, "snapshots", "delete", "s4-partial", "--yes")
    assert [s["name"] for s in run_json(lab, env, "snapshots", "list")] == ["s3"]
    # the only SUCCESS snapshot survives even an aggressive prune
    last = run_json(lab, env, "snapshots", "prune", "--keep-last", "0", "--older-than", "1h")
    assert last["keep"][0]["name"] == "s3" and last["delete"] == []


def test_prune_needs_a_rule_and_confirmation(lab: Lab, repo: Repo, scratch_prefix: str) -> None:
    env = opskit_env(lab, repo.name)
    create_index(lab, f"{scratch_prefix}x", docs=1)
    _take(lab, env, f"{scratch_prefix}x", "only")
    proc = lab.opskit("snapshots", "prune", env=env)
    assert proc.returncode == EXIT_USAGE and "say what to keep" in proc.stderr
    proc = lab.opskit("snapshots", "delete", "only", env=env)  # no tty, no --yes
    assert proc.returncode == EXIT_USAGE and "--yes" in proc.stderr
    assert [s["name"] for s in run_json(lab, env, "snapshots", "list")] == ["only"]
