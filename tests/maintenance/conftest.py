"""Helpers for the maintenance tests: an isolated opskit environment with a config of
the test's own, and a run that returns the parsed `--json` report."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lab


class Maint:
    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.config = tmp / "opskit.toml"
        self.config.write_text("")
        self.state = tmp / "state"

    def env(self, **extra: str) -> dict[str, str]:
        return self.lab.env(OPSKIT_CONFIG=str(self.config), XDG_STATE_HOME=str(self.state), **extra)

    def configure(self, text: str) -> None:
        self.config.write_text(text)

    def run(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        return self.lab.opskit(*args, env=self.env(**env), timeout=timeout)

    def report(self, cadence: str, *args: str, **env: str) -> dict[str, Any]:
        proc = self.run("maintenance", cadence, *args, "--json", **env)
        assert proc.returncode in (0, 1, 2, 3), proc.stderr
        assert "Traceback" not in proc.stderr
        data: dict[str, Any] = json.loads(proc.stdout)
        assert data["exit_code"] == proc.returncode
        return data


def result(report: dict[str, Any], task: str) -> dict[str, Any]:
    found = [r for r in report["results"] if r["task"] == task]
    assert found, [r["task"] for r in report["results"]]
    return found[0]


def problems(res: dict[str, Any]) -> list[str]:
    return [f"{f['subject']}: {f['summary']}" for f in res["findings"] if f["severity"] != "info"]


@pytest.fixture
def maint(lab: Lab, tmp_path: Path) -> Maint:
    return Maint(lab, tmp_path)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
