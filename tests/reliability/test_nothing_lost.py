"""Nothing lost: a disk that fills up during a backup leaves no complete-looking backup
and earlier backups intact (a real tmpfs, mounted for the test)."""

from __future__ import annotations

import json
import os
import subprocess
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
