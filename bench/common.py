"""What every benchmark module shares: the bench lab's addresses, an isolated opskit
environment, timing helpers and small HTTP helpers (standard library + httpx)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LAB = ROOT / "lab"
PY = sys.executable
GRAFANA_AUTH = ("admin", "admin")
GRAFANA_TOKEN = "glsa_opskitLabServiceAccountToken_0123456789"


@dataclass
class Ctx:
    """The bench lab at one port offset, and where the run keeps its files."""

    offset: int
    work: Path
    results: dict[str, Any] = field(default_factory=dict)

    def url(self, base_port: int) -> str:
        return f"http://127.0.0.1:{base_port + self.offset}"

    @property
    def prometheus(self) -> str:
        return self.url(9090)

    @property
    def alertmanager(self) -> str:
        return self.url(9093)

    @property
    def elasticsearch(self) -> str:
        return self.url(9200)

    @property
    def grafana(self) -> str:
        return self.url(3000)

    @property
    def state(self) -> Path:
        return LAB / ".state" / (f"offset-{self.offset}" if self.offset else "default")

    def env(self, **extra: str) -> dict[str, str]:
        """opskit pointed at the bench lab, isolated from the user's config."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("OPSKIT_")}
        for key in ("GRAFANA_USER", "GRAFANA_PASSWORD", "ELASTICSEARCH_PASSWORD"):
            base.pop(key, None)
        home = self.work / "home"
        base.update(
            OPSKIT_PROMETHEUS_URL=self.prometheus,
            OPSKIT_ALERTMANAGER_URL=self.alertmanager,
            OPSKIT_ELASTICSEARCH_URL=self.elasticsearch,
            OPSKIT_GRAFANA_URL=self.grafana,
            OPSKIT_PUSHGATEWAY_URL=self.url(9091),
            # the lab's Jaeger and collector (as `lab/lab.py env` prints them): the default
            # localhost ports are closed here, and a refused Jaeger is retried with backoff
            OPSKIT_JAEGER_URL=self.url(16686),
            OPSKIT_OTEL_HEALTH_URL=f"{self.url(13133)}/status",
            OPSKIT_OTEL_METRICS_URL=f"{self.url(8888)}/metrics",
            OPSKIT_OTLP_URL=self.url(4318),
            OPSKIT_OTLP_GRPC_URL=self.url(4317),
            GRAFANA_USER=GRAFANA_AUTH[0],
            GRAFANA_PASSWORD=GRAFANA_AUTH[1],
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_STATE_HOME=str(home / "state"),
            XDG_DATA_HOME=str(home / "data"),
            XDG_CACHE_HOME=str(home / "cache"),
            NO_COLOR="1",
            COLUMNS="200",
        )
        base.update(extra)
        return base

    def apply_env(self) -> None:
        """Point this process's opskit (in-process benchmarks) at the bench lab."""
        os.environ.clear()
        os.environ.update(self.env())

    def opskit(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PY, "-m", "opskit", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )

    def lab(self, *args: str, **env: str) -> None:
        subprocess.run(
            [PY, str(LAB / "lab.py"), *args],
            check=True,
            env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(self.offset), **env},
        )


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def summary(samples: list[float]) -> dict[str, float]:
    """Median, min and max of timing samples (seconds or ms, as given)."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def http(
    method: str, url: str, body: Any = None, auth: tuple[str, str] | None = None, **kw: Any
) -> httpx.Response:
    content = kw.pop("content", None)
    if body is not None:
        content = json.dumps(body).encode()
        kw.setdefault("headers", {})["Content-Type"] = "application/json"
    resp = httpx.request(method, url, content=content, auth=auth, timeout=300, **kw)
    return resp


def check(resp: httpx.Response, what: str) -> Any:
    if resp.status_code >= 300:
        raise RuntimeError(f"{what}: HTTP {resp.status_code}: {resp.text[:300]}")
    return resp.json() if resp.content else None


def wait_for(cond: Callable[[], bool], timeout: float, what: str, step: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)
