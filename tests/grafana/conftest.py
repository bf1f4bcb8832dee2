"""The lab's Grafana double, filled with nested folders and many dashboards for backup
tests. Every test starts from a wiped double with the demo seed plus the generated set,
and the demo seed is put back afterwards."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GRAFANA_PASSWORD, GRAFANA_USER, LAB, ROOT, Lab

GENERATED = 60
# the seed's user (lab/grafana_seed.py): a member of the team oncall
ENGINEER = {"name": "Ops Engineer", "email": "ops-engineer@example.com",
            "login": "ops-engineer", "password": "ops-engineer-lab"}  # fmt: skip
# uid -> (title, parent uid): three levels of nesting plus a sibling tree
FOLDERS = {
    "t-top": ("Team", None),
    "t-mid": ("Services", "t-top"),
    "t-leaf": ("Mail", "t-mid"),
    "t-other": ("Other", None),
}
FOLDER_CYCLE = [None, "t-top", "t-mid", "t-leaf", "t-other"]


def admin(lab: Lab, org_id: int | None = None) -> httpx.Client:
    headers = {"X-Grafana-Org-Id": str(org_id)} if org_id else {}
    return httpx.Client(
        base_url=lab.grafana, auth=(GRAFANA_USER, GRAFANA_PASSWORD), headers=headers, timeout=30
    )


def model(uid: str, title: str, panels: int = 3) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["opskit-test"],
        "schemaVersion": 39,
        "panels": [
            {
                "id": n + 1,
                "type": "timeseries",
                "title": f"panel {n}",
                "gridPos": {"x": 0, "y": n * 8, "w": 12, "h": 8},
                "targets": [{"refId": "A", "expr": f'up{{job="job-{n}"}}'}],
            }
            for n in range(panels)
        ],
    }


def save(client: httpx.Client, body: dict[str, Any], folder: str | None) -> None:
    payload = {"dashboard": body, "folderUid": folder or "", "overwrite": True}
    client.post("/api/dashboards/db", json=payload).raise_for_status()


def on_terminal(
    lab: Lab, *args: str, answer: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run opskit with a terminal (a pty) on stdin, typing `answer` at it: the way an
    operator is asked. Without one (a pipe, cron) opskit refuses instead of asking."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opskit", *args], env=lab.env(), stdin=slave,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        os.close(slave)
        slave = -1
        os.write(master, answer.encode())
        out, err = proc.communicate(timeout=timeout)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def reset_and_seed(lab: Lab) -> None:
    with admin(lab) as client:
        client.post("/__lab/reset").raise_for_status()
    subprocess.run(
        [sys.executable, str(LAB / "grafana_seed.py"), "--url", lab.grafana,
         "--user", GRAFANA_USER, "--password", GRAFANA_PASSWORD,
         "--prometheus-url", lab.prometheus],
        check=True, capture_output=True,
    )  # fmt: skip


def populate(lab: Lab) -> None:
    with admin(lab) as client:
        for uid, (title, parent) in FOLDERS.items():
            body = {"uid": uid, "title": title, **({"parentUid": parent} if parent else {})}
            client.post("/api/folders", json=body).raise_for_status()
        for i in range(GENERATED):
            save(
                client, model(f"gen-{i:03d}", f"Generated {i:03d}", 1 + i % 4), FOLDER_CYCLE[i % 5]
            )
        # the same title in two folders: both must survive a restore
        save(client, model("same-a", "Same Title"), "t-leaf")
        save(client, model("same-b", "Same Title"), "t-other")


def state(lab: Lab, org_id: int | None = None) -> dict[str, Any]:
    """Every folder (uid -> title, parent) and dashboard (uid -> model without id and
    version, folder uid) of an org, read through the API."""
    with admin(lab, org_id) as client:
        folders: dict[str, Any] = {}
        level: list[str | None] = [None]
        while level:
            parent = level.pop()
            params = {"parentUid": parent} if parent else {}
            for f in client.get("/api/folders", params=params).raise_for_status().json():
                folders[f["uid"]] = (f["title"], f.get("parentUid"))
                level.append(f["uid"])
        hits = client.get("/api/search", params={"type": "dash-db", "limit": 5000}).json()
        dashboards = {}
        for hit in hits:
            got = client.get(f"/api/dashboards/uid/{hit['uid']}").raise_for_status().json()
            body = {k: v for k, v in got["dashboard"].items() if k not in ("id", "version")}
            dashboards[hit["uid"]] = (body, got["meta"]["folderUid"])
        return {"folders": folders, "dashboards": dashboards}


@dataclass
class Grafana:
    lab: Lab
    tmp: Path

    def backup(self, *extra: str, out: Path | None = None) -> dict[str, Any]:
        proc = self.lab.opskit("backup", "grafana", "--out", str(out or self.tmp), "--json", *extra)
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def restore(
        self, path: str, *extra: str, env: dict[str, str] | None = None
    ) -> tuple[int, Any, str]:
        proc = self.lab.opskit("restore", "grafana", path, "--json", *extra, env=env)
        assert "Traceback" not in proc.stderr
        body = json.loads(proc.stdout) if proc.stdout.strip() else None
        return proc.returncode, body, proc.stderr

    def wipe(self) -> None:
        """An empty Grafana that still has the seed's users: a restore never creates
        users (team members and user permissions are matched to existing ones)."""
        with admin(self.lab) as client:
            client.post("/__lab/reset").raise_for_status()
            client.post("/api/admin/users", json=ENGINEER).raise_for_status()
        assert state(self.lab) == {"folders": {}, "dashboards": {}}


@pytest.fixture()
def grafana(lab: Lab, tmp_path: Path) -> Iterator[Grafana]:
    # OPSKIT_TEST_GRAFANA_URL: a private double (lab/grafana_double.py started by hand),
    # so a run is not disturbed by another run's resets of the shared test lab
    private = os.environ.get("OPSKIT_TEST_GRAFANA_URL")
    if private:
        lab = dataclasses.replace(lab, grafana=private)
    reset_and_seed(lab)
    populate(lab)
    try:
        yield Grafana(lab, tmp_path)
    finally:
        with admin(lab) as client:
            client.delete("/__lab/fault")
        reset_and_seed(lab)
