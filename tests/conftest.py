"""Fixtures over the running lab (lab/up). Tests talk to real servers; when the lab is
not up they fail with the command that starts it, rather than skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab"
OFFSET = int(os.environ.get("OPSKIT_LAB_PORT_OFFSET", "0"))
GRAFANA_USER = "admin"
GRAFANA_PASSWORD = "admin"
GRAFANA_TOKEN = "glsa_opskitLabServiceAccountToken_0123456789"
TLS_USER = "opskit"
TLS_PASSWORD = "lab-tls-Secret-123"
STATE = LAB / ".state" / (f"offset-{OFFSET}" if OFFSET else "default")


def _url(base_port: int) -> str:
    return f"http://127.0.0.1:{base_port + OFFSET}"


@dataclass
class Lab:
    prometheus: str = _url(9090)
    alertmanager: str = _url(9093)
    elasticsearch: str = _url(9200)
    grafana: str = _url(3000)
    pushgateway: str = _url(9091)
    node_exporter: str = _url(9100)
    jaeger: str = _url(16686)  # Jaeger v2: query API, health, own metrics, OTLP in
    otel_health: str = f"{_url(13133)}/status"
    otel_metrics: str = f"{_url(8888)}/metrics"
    otlp: str = _url(4318)
    otlp_grpc: str = _url(4317)
    tls_prometheus: str = f"https://127.0.0.1:{9490 + OFFSET}"
    tls_elasticsearch: str = f"https://127.0.0.1:{9290 + OFFSET}"
    tls_grafana: str = f"https://localhost:{3443 + OFFSET}"
    tls_ca: Path = STATE / "tls" / "ca.crt"
    home: Path = field(default_factory=Path)

    def env(self, **extra: str) -> dict[str, str]:
        """An environment pointing opskit at the lab, isolated from the user's config."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("OPSKIT_")}
        base.pop("GRAFANA_USER", None)
        base.pop("GRAFANA_PASSWORD", None)
        base.pop("ELASTICSEARCH_PASSWORD", None)
        base.update(
            OPSKIT_PROMETHEUS_URL=self.prometheus,
            OPSKIT_ALERTMANAGER_URL=self.alertmanager,
            OPSKIT_ELASTICSEARCH_URL=self.elasticsearch,
            OPSKIT_GRAFANA_URL=self.grafana,
            OPSKIT_PUSHGATEWAY_URL=self.pushgateway,
            OPSKIT_JAEGER_URL=self.jaeger,
            OPSKIT_OTEL_HEALTH_URL=self.otel_health,
            OPSKIT_OTEL_METRICS_URL=self.otel_metrics,
            OPSKIT_OTLP_URL=self.otlp,
            OPSKIT_OTLP_GRPC_URL=self.otlp_grpc,
            GRAFANA_USER=GRAFANA_USER,
            GRAFANA_PASSWORD=GRAFANA_PASSWORD,
            XDG_CONFIG_HOME=str(self.home / "config"),
            XDG_STATE_HOME=str(self.home / "state"),
            XDG_DATA_HOME=str(self.home / "data"),
            OPSKIT_LAB_PORT_OFFSET=str(OFFSET),
            NO_COLOR="1",
            COLUMNS="200",
        )
        base.update(extra)
        return base

    def opskit(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "opskit", *args],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def opskit_json(self, *args: str, ok_codes: tuple[int, ...] = (0, 1, 2)) -> Any:
        proc = self.opskit(*args, "--json")
        assert proc.returncode in ok_codes, proc.stderr
        assert "Traceback" not in proc.stderr
        return json.loads(proc.stdout)


def get_json(
    url: str, auth: tuple[str, str] | None = None, method: str = "GET", body: Any = None
) -> Any:
    req = urllib.request.Request(url, method=method)
    if auth:
        import base64

        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data=data, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def lab_ctl(*args: str) -> None:
    """Stop or start one lab server (real processes, not mocks)."""
    subprocess.run(
        [sys.executable, str(LAB / "lab.py"), *args],
        check=True,
        env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)},
    )


def lab_py(*args: str, timeout: float = 120) -> str:
    """A lab.py subcommand's stdout (e.g. `mail queue --json`); fails on a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, str(LAB / "lab.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def wait_for(fn: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    """fn() until it is truthy or the time is up; its last value either way."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def promql(lab: Lab, expr: str, at: datetime | None = None) -> list[dict[str, Any]]:
    params = {"query": expr}
    if at is not None:
        params["time"] = str(at.timestamp())
    body = get_json(f"{lab.prometheus}/api/v1/query?{urllib.parse.urlencode(params)}")
    assert body["status"] == "success"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def prom_value(lab: Lab, expr: str) -> float | None:
    """The first sample's value of an instant query, or None when it has none."""
    result = promql(lab, expr)
    return float(result[0]["value"][1]) if result else None


def server_running(name: str) -> bool:
    status = json.loads(_status_json())
    return any(s["name"] == name and s["pid"] for s in status["servers"])


def _status_json() -> str:
    proc = subprocess.run(
        [sys.executable, str(LAB / "lab.py"), "status", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)},
    )
    return proc.stdout


@contextmanager
def server_state(name: str, running: bool) -> Iterator[None]:
    """`name` started (or stopped) for the block, then put back as it was."""
    was = server_running(name)
    if was != running:
        lab_ctl("server", "start" if running else "stop", name)
    try:
        yield
    finally:
        if was != running:
            lab_ctl("server", "start" if was else "stop", name)


INCIDENT_DEFERRED = 110  # > the README's 100: MailQueueHigh


def standing_incident() -> None:
    """The test lab's incident, caused for real: the email-service stopped (its target
    down with "connection refused", EmailServiceDown firing and the failing /health probe
    inhibited by it) and more than 100 messages deferred by a relay that refuses them
    (MailQueueHigh). Tests that need the email-service running say so with
    `server_state("email_service", True)`."""
    lab_ctl("server", "stop", "email_service")
    counts = json.loads(lab_py("mail", "queue", "--json"))
    missing = INCIDENT_DEFERRED - int(counts.get("deferred", 0)) - int(counts.get("active", 0))
    if missing > 0:
        lab_py("mail", "send", str(missing), "--domain", "refused.test", "--subject", "incident")


def _incident_seen(lab: Lab) -> bool:
    """Prometheus has scraped the stopped email-service since it stopped (a scrape
    during the shutdown reads "connection reset" instead)."""
    targets = get_json(f"{lab.prometheus}/api/v1/targets")["data"]["activeTargets"]
    email = [t for t in targets if t["labels"]["job"] == "email-service"]
    return bool(email) and "connection refused" in email[0]["lastError"]


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    proc = subprocess.run(
        [sys.executable, str(LAB / "lab.py"), "status", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)},
    )
    try:
        servers = json.loads(proc.stdout)["servers"]
    except (ValueError, KeyError):
        servers = []
    # the email-service may be stopped by an earlier run's standing incident
    unhealthy = [s["name"] for s in servers if not s["healthy"] and s["name"] != "email_service"]
    if not servers or unhealthy:
        pytest.fail(
            "the lab is not running (or not healthy): start it with "
            f"`OPSKIT_LAB_PORT_OFFSET={OFFSET} lab/up`\n{proc.stdout}{proc.stderr}",
            pytrace=False,
        )
    lab = Lab(home=tmp_path_factory.mktemp("opskit-home"))
    standing_incident()
    wait_for(lambda: _incident_seen(lab), timeout=60)
    # Settle: every target scraped at least once, so tests see real health, not "unknown".
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        targets = get_json(f"{lab.prometheus}/api/v1/targets")["data"]["activeTargets"]
        if targets and all(t["health"] != "unknown" for t in targets):
            break
        time.sleep(0.5)
    yield lab
