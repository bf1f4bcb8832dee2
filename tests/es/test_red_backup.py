"""`opskit backup elasticsearch` with a red index among those it would snapshot: it says
which, and the choices, instead of passing Elasticsearch's 500 through."""

from __future__ import annotations

from tests.conftest import Lab
from tests.es.conftest import Repo, create_index, es_request, opskit_env, run_json


def test_red_index_is_named_with_the_choices(lab: Lab, repo: Repo, scratch_prefix: str) -> None:
    red, good = f"{scratch_prefix}red", f"{scratch_prefix}good"
    # a primary that can never be allocated: the lab has one node, and not this one
    create_index(lab, red, docs=0, **{"index.routing.allocation.require._name": "nowhere"})
    create_index(lab, good, docs=2)
    health = es_request(lab, "GET", f"/_cluster/health/{red}")
    assert health["status"] == "red", health
    env = opskit_env(lab, repo.name)

    for args in (("--indices", f"{scratch_prefix}*"), ()):  # a pattern; every index
        proc = lab.opskit("backup", "elasticsearch", *args, env=env)
        assert proc.returncode == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "HTTP 500" not in proc.stderr
        assert red in proc.stderr and good not in proc.stderr
        assert "--partial" in proc.stderr and f"--indices '-{red}'" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert es_request(lab, "GET", f"/_snapshot/{repo.name}/_all")["snapshots"] == []

    # the choices work: leave it out with an exclusion, or take a partial snapshot
    out = run_json(lab, env, "backup", "elasticsearch", "--indices", f"{scratch_prefix}*",
                   f"--indices=-{red}")  # fmt: skip
    assert out["snapshot"]["state"] == "SUCCESS" and out["snapshot"]["indices"] == [good]
    partial = run_json(lab, env, "backup", "elasticsearch", "--indices", f"{scratch_prefix}*",
                       "--partial", codes=(1,))  # fmt: skip
    assert partial["snapshot"]["state"] == "PARTIAL"
    assert sorted(partial["snapshot"]["indices"]) == sorted([good, red])
