"""Nothing lost: a disk that fills up during a backup leaves no complete-looking backup
and earlier backups intact (a real tmpfs, mounted for the test)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import GRAFANA_PASSWORD, GRAFANA_USER, Lab, get_json

AUTH = (GRAFANA_USER, GRAFANA_PASSWORD)
FOLDER = "opskit-diskfull-test"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def many_dashboards(lab: Lab) -> Iterator[None]:
    get_json(
        f"{lab.grafana}/api/folders",
        auth=AUTH,
        method="POST",
        body={"uid": FOLDER, "title": FOLDER},
    )
    try:
        yield
    finally:
        get_json(f"{lab.grafana}/api/folders/{FOLDER}", auth=AUTH, method="DELETE")


def add_dashboards(lab: Lab, count: int) -> None:
    panel_text = "x" * 4000
    for n in range(count):
        dash = {
            "uid": f"diskfull-{n}",
            "title": f"Disk full {n}",
            "schemaVersion": 39,
            "panels": [
                {"id": 1, "type": "text", "title": "big", "options": {"content": panel_text}}
            ],
        }
        get_json(
            f"{lab.grafana}/api/dashboards/db",
            auth=AUTH,
            method="POST",
            body={"dashboard": dash, "folderUid": FOLDER, "overwrite": True},
        )


def test_disk_full_during_grafana_backup(lab: Lab, small_disk: Path, many_dashboards: None) -> None:
    first = lab.opskit("backup", "grafana", "--out", str(small_disk), "--json")
    assert first.returncode == 0, first.stderr
    earlier = sorted(p.name for p in small_disk.iterdir())
    assert len(earlier) == 1
    add_dashboards(lab, 60)  # ~240 kB more than the disk holds
    second = lab.opskit("backup", "grafana", "--out", str(small_disk))
    assert second.returncode != 0
    lines = [ln for ln in second.stderr.strip().splitlines() if ln.startswith("opskit:")]
    assert lines and "Traceback" not in second.stderr
    assert "space" in second.stderr.lower()
    listed = lab.opskit("backups", "list", "--dir", str(small_disk), "--json")
    assert listed.returncode == 0, listed.stderr
    complete = json.loads(listed.stdout)["backups"]
    assert [b["name"] for b in complete] == earlier
    # the earlier backup still verifies: its restore dry run checks every checksum
    check = lab.opskit("restore", "grafana", str(small_disk / earlier[0]), "--dry-run")
    assert check.returncode in (0, 1), check.stderr
    assert os.listdir(small_disk / earlier[0])


# ---------------------------------------------------------------- Elasticsearch failing


@pytest.fixture
def old_indices(lab: Lab) -> Iterator[list[str]]:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    names = [f"opskit-nl-{today - timedelta(days=d):%Y.%m.%d}" for d in (40, 41, 42, 1)]
    for name in names:
        get_json(
            f"{lab.elasticsearch}/{name}",
            method="PUT",
            body={"settings": {"number_of_replicas": 0}},
        )
    try:
        yield names
    finally:
        for name in names:
            with contextlib.suppress(urllib.error.HTTPError):
                get_json(f"{lab.elasticsearch}/{name}", method="DELETE")


def present(lab: Lab) -> set[str]:
    rows = get_json(f"{lab.elasticsearch}/_cat/indices/opskit-nl-*?format=json&h=index")
    return {r["index"] for r in rows}


@pytest.mark.parametrize(
    "fault",
    [
        {"mode": "status", "status": 503, "path": "/_snapshot", "method": "PUT"},
        {"mode": "disconnect", "path": "/_snapshot", "method": "GET"},
    ],
)
def test_elasticsearch_failing_during_snapshot_first_retention_deletes_nothing(
    lab: Lab, old_indices: list[str], fault: dict[str, object]
) -> None:
    from tests.reliability.faults import fault_proxy

    with fault_proxy(lab.elasticsearch) as proxy:
        proxy.set(**fault)  # type: ignore[arg-type]
        env = lab.env(OPSKIT_ELASTICSEARCH_URL=proxy.url, OPSKIT_ELASTICSEARCH_RETRIES="0")
        proc = lab.opskit(
            "retention",
            "elasticsearch",
            "--pattern",
            "opskit-nl-*",
            "--older-than",
            "30d",
            "--snapshot-first",
            "--yes",
            env=env,
        )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert present(lab) == set(old_indices)  # nothing deleted
    # the control: without the fault the same command deletes exactly the three old ones
    ok = lab.opskit(
        "retention",
        "elasticsearch",
        "--pattern",
        "opskit-nl-*",
        "--older-than",
        "30d",
        "--snapshot-first",
        "--yes",
    )
    assert ok.returncode == 0, ok.stderr
    assert present(lab) == {old_indices[-1]}
    for snap in get_json(f"{lab.elasticsearch}/_snapshot/backup/retention-*")["snapshots"]:
        if set(snap["indices"]) & set(old_indices):
            get_json(f"{lab.elasticsearch}/_snapshot/backup/{snap['snapshot']}", method="DELETE")


# ---------------------------------------------------------------- Grafana failing


def test_grafana_failing_half_way_through_a_restore(lab: Lab, tmp_path: Path) -> None:
    from tests.grafana.conftest import populate, reset_and_seed, state
    from tests.reliability.faults import fault_proxy

    reset_and_seed(lab)
    populate(lab)
    try:
        before = state(lab)
        made = lab.opskit("backup", "grafana", "--out", str(tmp_path), "--json")
        assert made.returncode == 0, made.stderr
        path = json.loads(made.stdout)["path"]
        get_json(f"{lab.grafana}/__lab/reset", auth=AUTH, method="POST")
        with fault_proxy(lab.grafana) as proxy:
            proxy.set("status", status=503, path="/api/dashboards/db", method="POST", after=20)
            env = lab.env(OPSKIT_GRAFANA_URL=proxy.url, OPSKIT_GRAFANA_RETRIES="0")
            first = lab.opskit("restore", "grafana", path, "--yes", "--json", env=env)
        assert first.returncode == 2, first.stderr
        report = json.loads(first.stdout)
        text = json.dumps(report)
        assert "failed" in text
        restored = state(lab)["dashboards"]
        assert 0 < len(restored) < len(before["dashboards"])  # really half-way
        again = lab.opskit("restore", "grafana", path, "--yes", "--json")
        assert again.returncode == 0, again.stderr
        assert state(lab) == before  # the second run completes it
    finally:
        reset_and_seed(lab)
