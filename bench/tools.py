"""The peer tools, each in its own virtualenv under bench/ (gitignored, made on first use):
grafana-backup-tool (PyPI `grafana-backup`) and Elasticsearch Curator 8.0.21."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.common import BENCH, Ctx, log

GBT = ("gbt", "grafana-backup==1.4.2")
CURATOR = ("curator", "elasticsearch-curator==8.0.21")


def venv_dir(name: str) -> Path:
    return BENCH / f".venv-{name}"


def venv_bin(ctx: Ctx, tool: tuple[str, str], exe: str) -> Path:
    return venv_dir(tool[0]) / "bin" / exe


def ensure(tool: tuple[str, str]) -> None:
    name, requirement = tool
    d = venv_dir(name)
    stamp = d / f".installed-{requirement}"
    if stamp.exists():
        return
    log(f"installing {requirement} into {d}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(d)], check=True)
    subprocess.run(
        [str(d / "bin" / "pip"), "install", "-q", requirement],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stamp.write_text("")
