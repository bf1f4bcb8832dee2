"""Snapshot, delete, restore against the lab's real Elasticsearch."""

from __future__ import annotations

from opskit.errors import EXIT_USAGE
from tests.conftest import Lab
from tests.es.conftest import (
    Repo,
    create_index,
    documents,
    es_request,
    index_names,
    opskit_env,
    run_json,
)


def test_snapshot_delete_restore_documents_equal(lab: Lab, repo: Repo, scratch_prefix: str) -> None:
    names = [f"{scratch_prefix}a", f"{scratch_prefix}b"]
    for n, name in enumerate(names):
        create_index(lab, name, docs=5 + n)
    before = {name: documents(lab, name) for name in names}
    env = opskit_env(lab, repo.name)

    out = run_json(lab, env, "backup", "elasticsearch", "--indices", f"{scratch_prefix}*")
    assert out["repository"]["registered_now"] is True
    assert repo.directory.is_dir()  # registered under path.repo
    snap = out["snapshot"]
    assert snap["state"] == "SUCCESS" and snap["shards_failed"] == 0
    assert sorted(snap["indices"]) == sorted(names)

    for name in names:
        es_request(lab, "DELETE", f"/{name}")
    assert index_names(lab, f"{scratch_prefix}*") == set()

    restored = run_json(lab, env, "restore", "elasticsearch", snap["name"])
    counts = {i["index"]: i["docs"] for i in restored["indices"]}
    assert counts == {names[0]: 5, names[1]: 6}
    assert {name: documents(lab, name) for name in names} == before


def test_restore_refuses_open_index_unless_renamed_or_yes(
    lab: Lab, repo: Repo, scratch_prefix: str
) -> None:
    name = f"{scratch_prefix}keep"
    create_index(lab, name, docs=4)
    env = opskit_env(lab, repo.name)
    snap = run_json(lab, env, "backup", "elasticsearch", "--indices", name)["snapshot"]["name"]
    es_request(lab, "POST", f"/{name}/_doc?refresh=true", {"n": 99, "message": "after"})

    refused = lab.opskit("restore", "elasticsearch", snap, env=env)
    assert refused.returncode == EXIT_USAGE, refused.stderr
    assert "would restore over open index" in refused.stderr and name in refused.stderr
    assert len(documents(lab, name)) == 5  # untouched

    renamed = run_json(
        lab, env, "restore", "elasticsearch", snap,
        "--rename-pattern", "(.+)", "--rename-replacement", "restored-$1",
    )  # fmt: skip
    assert renamed["indices"][0]["index"] == f"restored-{name}"
    assert renamed["indices"][0]["docs"] == 4

    over = run_json(lab, env, "restore", "elasticsearch", snap, "--yes")
    assert over["closed_before"] == [name]
    assert over["indices"][0]["docs"] == 4
    assert len(documents(lab, name)) == 4


def test_concurrent_snapshots_are_not_an_error(lab: Lab, repo: Repo, scratch_prefix: str) -> None:
    create_index(lab, f"{scratch_prefix}c", docs=50)
    env = opskit_env(lab, repo.name)
    first = lab.opskit(
        "backup", "elasticsearch", "--indices", f"{scratch_prefix}c", "--no-wait",
        "--name", "first-%H%M%S%f", env=env,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    second = run_json(
        lab, env, "backup", "elasticsearch", "--indices", f"{scratch_prefix}c",
        "--name", "second-%H%M%S%f",
    )  # fmt: skip
    assert second["snapshot"]["state"] == "SUCCESS"


def test_red_index_partial_snapshot_fails_with_reasons(
    lab: Lab, repo: Repo, scratch_prefix: str
) -> None:
    red = f"{scratch_prefix}red"
    create_index(lab, red, docs=0, **{"index.routing.allocation.require._name": "nowhere"})
    env = opskit_env(lab, repo.name)
    out = run_json(lab, env, "backup", "elasticsearch", "--indices", red, "--partial", codes=(1,))
    assert out["snapshot"]["state"] == "PARTIAL"
    assert "primary shard is not allocated" in out["snapshot"]["failures"][0]

    refused = lab.opskit("backup", "elasticsearch", "--indices", red, env=env)
    assert refused.returncode != 0
    assert "unassigned primary shards" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_location_outside_path_repo_names_the_setting(lab: Lab, repo: Repo) -> None:
    env = opskit_env(lab, repo.name, OPSKIT_ELASTICSEARCH_SNAPSHOT_LOCATION="/var/tmp/elsewhere")
    proc = lab.opskit("backup", "elasticsearch", env=env)
    assert proc.returncode == 1
    assert "outside the node's path.repo" in proc.stderr and "`path.repo`" in proc.stderr
    assert "Traceback" not in proc.stderr
