"""Measure 5: start-up. `opskit --help` wall time, and `opskit status --json` against a
fresh Python process that GETs the same endpoints with httpx and json.loads them (each a
new process every run: interpreter start and imports count for both)."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import time
from typing import Any

from bench.common import PY, ROOT, Ctx, log, summary

RAW = """
import asyncio, json, sys
import httpx
urls = json.loads(sys.argv[1])
async def one(c, backend, url):
    try:
        r = await c.get(url, auth=("admin", "admin") if backend == "grafana" else None)
    except httpx.TransportError:
        return
    json.loads(r.content) if r.content[:1] in (b"[", b"{") else None
async def main():
    async with httpx.AsyncClient(timeout=60) as c:
        await asyncio.gather(*(one(c, b, u) for b, u in urls))
asyncio.run(main())
"""


def _wall(cmd: list[str], env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (user + system) appended to `cpu`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=120)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def measure(ctx: Ctx, status_urls: list[tuple[str, str]], runs: int = 10) -> dict[str, Any]:
    log(f"start-up: opskit --help and status --json against a raw process, {runs} runs each")
    # the lab's tracing endpoints too: without them `status` checks the defaults on
    # localhost, and the refused collector-metrics GET costs a 0.2 s retry back-off that
    # is no start-up cost and that the raw side does not pay
    env = ctx.env(
        OPSKIT_JAEGER_URL=ctx.url(16686),
        OPSKIT_OTEL_HEALTH_URL=f"{ctx.url(13133)}/status",
        OPSKIT_OTEL_METRICS_URL=f"{ctx.url(8888)}/metrics",
        OPSKIT_OTLP_URL=ctx.url(4318),
        OPSKIT_OTLP_GRPC_URL=ctx.url(4317),
    )
    # opskit's bytecode compiled first, as an installed package has it (pip compiles on
    # install; an editable install under PYTHONDONTWRITEBYTECODE=1 would otherwise
    # recompile every changed module on every run, a cost no installed opskit pays)
    subprocess.run([PY, "-m", "compileall", "-q", "opskit"], cwd=ROOT, check=False,
                   capture_output=True)  # fmt: skip
    # the first run after the scale-up is the coldest one this machine can give
    help_cold = _wall([PY, "-m", "opskit", "--help"], env)
    helps = [_wall([PY, "-m", "opskit", "--help"], env) for _ in range(runs)]
    raw_cmd = [PY, "-c", RAW, json.dumps(status_urls)]
    status, raw = [], []
    status_cpu: list[float] = []
    raw_cpu: list[float] = []
    for _ in range(runs):
        status.append(_wall([PY, "-m", "opskit", "status", "--json"], env, status_cpu))
        raw.append(_wall(raw_cmd, env, raw_cpu))
    ratio = statistics.median(status) / statistics.median(raw)
    return {
        "help_first_s": help_cold,
        "help_s": summary(helps),
        "status_s": summary(status),
        "raw_fetch_process_s": summary(raw),
        "status_ratio": ratio,
        # CPU seconds of the same runs: less moved by other load on the machine than wall
        "status_cpu_s": summary(status_cpu),
        "raw_fetch_process_cpu_s": summary(raw_cpu),
        "status_cpu_ratio": statistics.median(status_cpu) / statistics.median(raw_cpu),
        "target": "--help < 0.1 s; status <= 1.5x raw",
        "met": statistics.median(helps) < 0.1 and ratio <= 1.5,
    }
