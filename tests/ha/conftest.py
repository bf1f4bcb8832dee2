"""Fixtures over the running HA lab (`lab/up --profile ha`, lab/ha.py). Like
tests/conftest.py's: real servers; when the HA lab is not up the tests fail with the
command that starts it, rather than skip.

- `ha_lab`: the URL of every HA server and the lab's opskit config file;
- `ha_settings` / `ha_vm_settings`: opskit Settings of the contexts `ha` / `ha-vm`;
- `ha_server_stopped(name)`: one server stopped for a block, started again (and healthy:
  an ES node back in a green cluster, an Alertmanager peer seen by all three) after it;
- `ha_wait_for(fn, timeout)`: tests/conftest.py's polling wait.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from opskit.config import Settings, load
from tests.conftest import LAB, OFFSET, get_json, lab_ctl, wait_for

DEAD_PORT = 19999  # lab/ha.py's `dead` job: nothing listens (+ the offset)


@dataclass(frozen=True)
class HALab:
    prometheus: list[str]  # replicas a, b
    alertmanager: list[str]  # peers 1, 2, 3
    elasticsearch: list[str]  # nodes es-1, es-2, es-3
    victoriametrics: str
    node_exporter: str
    pushgateway: str
    grafana: str
    dead: str  # the `dead` target's address (host:port), always down
    config: Path  # the opskit TOML (contexts ha, ha-vm)
    state: Path
    servers: dict[str, str] = field(default_factory=dict)  # lab.py server name -> URL

    @property
    def prometheus_a(self) -> str:
        return self.prometheus[0]

    @property
    def prometheus_b(self) -> str:
        return self.prometheus[1]

    def edge_file(self, replica: str) -> Path:
        """The `edge` job's file_sd file of replica "a" or "b" (reset at its start)."""
        return self.state / f"prometheus_{replica}" / "targets" / "edge.json"

    def env(self, **extra: str) -> dict[str, str]:
        """An environment pointing opskit at this lab's config (context `ha`), without
        the caller's OPSKIT_* variables (which would override the file)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("OPSKIT_")}
        base.update(
            OPSKIT_CONFIG=str(self.config),
            OPSKIT_CONTEXT="ha",
            OPSKIT_LAB_PORT_OFFSET=str(OFFSET),
            NO_COLOR="1",
            COLUMNS="200",
        )
        base.update(extra)
        return base


def ha_status() -> dict[str, Any]:
    """`lab.py --profile ha status --json` (empty when it prints nothing usable)."""
    proc = subprocess.run(
        [sys.executable, str(LAB / "lab.py"), "--profile", "ha", "status", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)},
    )
    try:
        body: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        return {}
    return body


def ha_wait_for(fn: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    """fn() until it is truthy or the time is up; its last value either way."""
    return wait_for(fn, timeout=timeout, every=every)


def _json_or_none(url: str) -> Any:
    try:
        return get_json(url)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def es_green(node: str, nodes: int = 3) -> bool:
    body = _json_or_none(f"{node}/_cluster/health")
    return bool(body) and body["status"] == "green" and body["number_of_nodes"] == nodes


def am_peer_count(peer: str) -> int:
    body = _json_or_none(f"{peer}/api/v2/status")
    return len(((body or {}).get("cluster") or {}).get("peers") or [])


def _url_of(name: str) -> str:
    servers = {s["name"]: s["url"] for s in ha_status().get("servers", [])}
    return servers[name]


@contextmanager
def ha_server_stopped(name: str, timeout: float = 180) -> Iterator[None]:
    """The HA lab's server `name` (as `lab.py --profile ha server stop NAME` names it:
    prometheus_a, alertmanager_2, elasticsearch_3, ...) stopped for the block, then
    started again and healthy before the block's exit returns."""
    lab_ctl("--profile", "ha", "server", "stop", name)
    try:
        yield
    finally:
        lab_ctl("--profile", "ha", "server", "start", name)
        url = _url_of(name)
        if name.startswith("elasticsearch_"):
            assert wait_for(lambda: es_green(url), timeout=timeout), f"{name}: not green again"
        elif name.startswith("alertmanager_"):
            peers = [s["url"] for s in ha_status()["servers"] if s["name"].startswith("alert")]
            assert wait_for(
                lambda: all(am_peer_count(p) == len(peers) for p in peers), timeout=timeout
            ), f"{name}: the peers do not all see each other again"


@pytest.fixture(scope="session")
def ha_lab() -> HALab:
    status = ha_status()
    servers = status.get("servers", [])
    unhealthy = [s["name"] for s in servers if not s["healthy"]]
    if not servers or unhealthy:
        pytest.fail(
            "the HA lab is not running (or not healthy): start it with "
            f"`OPSKIT_LAB_PORT_OFFSET={OFFSET} lab/up --profile ha`"
            + (f" (unhealthy: {', '.join(unhealthy)})" if unhealthy else ""),
            pytrace=False,
        )
    urls = {s["name"]: s["url"] for s in servers}
    state = Path(status["state"])
    config = state / "opskit.toml"
    if not config.is_file():
        pytest.fail(f"{config} is missing: run `lab/up --profile ha` again", pytrace=False)
    return HALab(
        prometheus=[urls["prometheus_a"], urls["prometheus_b"]],
        alertmanager=[urls[f"alertmanager_{n}"] for n in (1, 2, 3)],
        elasticsearch=[urls[f"elasticsearch_{n}"] for n in (1, 2, 3)],
        victoriametrics=urls["victoriametrics"],
        node_exporter=urls["node_exporter"],
        pushgateway=urls["pushgateway"],
        grafana=urls["grafana"],
        dead=f"127.0.0.1:{DEAD_PORT + OFFSET}",
        config=config,
        state=state,
        servers=urls,
    )


def _settings(lab: HALab, context: str) -> Settings:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OPSKIT_")}
    return load(lab.config, context, None, environ=environ).settings


@pytest.fixture(scope="session")
def ha_settings(ha_lab: HALab) -> Settings:
    """Context `ha`: both replicas, the three peers, es-1 (the caller's OPSKIT_* ignored)."""
    return _settings(ha_lab, "ha")


@pytest.fixture(scope="session")
def ha_vm_settings(ha_lab: HALab) -> Settings:
    """Context `ha-vm`: the same with VictoriaMetrics as the Prometheus API."""
    return _settings(ha_lab, "ha-vm")
