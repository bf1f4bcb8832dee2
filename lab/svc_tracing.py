"""Lab services: tracing. Jaeger v2 (an OpenTelemetry Collector build with Jaeger's
storage and query extensions) on loopback: OTLP receivers (gRPC and HTTP), an in-memory
trace store capped at MAX_TRACES, the query API and UI, the healthcheckv2 extension and
the collector's own Prometheus metrics (scraped as job `jaeger`). The lab's
email-service and Celery processes export their spans to it over OTLP/HTTP
(lab/apps/emailsvc/tracing.py).

Jaeger is built from the Go module proxy with the machine's Go, once: `lab/jaeger/` is a
module of the lab's own whose go.mod names `github.com/jaegertracing/jaeger/cmd/jaeger`
as a tool at JAEGER_VERSION and whose go.sum pins every dependency. The binary is cached
outside the work tree (${XDG_CACHE_HOME:-~/.cache}/opskit-lab/jaeger-<version>/<key>/,
keyed by go.mod and go.sum), built to a temporary name and renamed, under a lock so two
`lab/up`s never build at once. A fresh clone on the same machine reuses it.

Standard library only: lab.py imports this before any virtualenv exists."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from labcore import LAB, Server, log, render, state_dir

DEBIAN_PACKAGES: dict[str, str] = {}
JAEGER_VERSION = "v1.76.0"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
MODULE = LAB / "jaeger"
# The in-memory store keeps at most this many traces and evicts the oldest: about a
# hour of the lab's traffic, and a bounded RSS (docs/lab.md).
MAX_TRACES = 10000
# A soft limit for the Go runtime's heap (GC works harder near it, nothing is refused).
GOMEMLIMIT = "256MiB"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "opskit-lab" / f"jaeger-{JAEGER_VERSION}"


def build_key() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((MODULE / name).read_bytes())
    return digest.hexdigest()[:16]


def binary() -> Path:
    return cache_dir() / build_key() / "jaeger"


def _go() -> str:
    found = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).exists()), None
    )
    if found is None:
        sys.exit("lab: Jaeger is built with Go, and no `go` is on PATH or in /usr/local/go/bin")
    return found


def install() -> None:
    """Build Jaeger once per go.mod/go.sum; a second `up` (or a fresh clone) reuses it."""
    target = binary()
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another lab/up building: wait for it
        if target.exists():
            return
        for stale in target.parent.glob(".jaeger.*.tmp"):
            stale.unlink(missing_ok=True)
        tmp = target.parent / f".jaeger.{os.getpid()}.tmp"
        log(
            f"building Jaeger {JAEGER_VERSION} with {_go()} (once; a few minutes on a fresh "
            "machine, see docs/lab.md)"
        )
        t0 = time.monotonic()
        env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=readonly")
        proc = subprocess.run(
            [_go(), "build", "-ldflags=-s -w", "-o", str(tmp), JAEGER_PACKAGE],
            cwd=MODULE,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            sys.exit(f"lab: building Jaeger failed (go build exit {proc.returncode})")
        os.replace(tmp, target)
        log(f"Jaeger built in {time.monotonic() - t0:.0f}s: {target}")
    # builds for an older go.sum are of no further use
    for old in cache_dir().iterdir():
        if old.is_dir() and old.name != target.parent.name:
            shutil.rmtree(old, ignore_errors=True)


def config_file() -> Path:
    return state_dir() / "jaeger" / "config.yaml"


def prepare() -> None:
    render(MODULE / "config.yaml.in", config_file(), {"MAX_TRACES": str(MAX_TRACES)})


def argv() -> list[str]:
    return [str(binary()), "--config", str(config_file())]


SERVERS: list[Server] = [
    Server(
        "jaeger",
        "/status",
        "jaeger_health",
        argv=argv,
        prepare=prepare,
        env=lambda: {"GOMEMLIMIT": GOMEMLIMIT},
        other_ports=[
            "jaeger_query",
            "jaeger_query_grpc",
            "otlp_grpc",
            "otlp_http",
            "jaeger_metrics",
        ],
    ),
]
