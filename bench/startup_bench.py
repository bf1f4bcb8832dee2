"""Measure 5: start-up. `opskit --help` wall time, and `opskit status --json` against a
fresh Python process that GETs the same endpoints with httpx and json.loads them (each a
new process every run: interpreter start and imports count for both)."""

from __future__ import annotations

import json
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


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=120)
    return time.perf_counter() - t0


def measure(ctx: Ctx, status_urls: list[tuple[str, str]], runs: int = 10) -> dict[str, Any]:
    log(f"start-up: opskit --help and status --json against a raw process, {runs} runs each")
    env = ctx.env()
    # the first run after the scale-up is the coldest one this machine can give
    help_cold = _wall([PY, "-m", "opskit", "--help"], env)
    helps = [_wall([PY, "-m", "opskit", "--help"], env) for _ in range(runs)]
    raw_cmd = [PY, "-c", RAW, json.dumps(status_urls)]
    status, raw = [], []
    for _ in range(runs):
        status.append(_wall([PY, "-m", "opskit", "status", "--json"], env))
        raw.append(_wall(raw_cmd, env))
    ratio = statistics.median(status) / statistics.median(raw)
    return {
        "help_first_s": help_cold,
        "help_s": summary(helps),
        "status_s": summary(status),
        "raw_fetch_process_s": summary(raw),
        "status_ratio": ratio,
        "target": "--help < 0.3 s; status <= 1.5x raw",
        "met": statistics.median(helps) < 0.3 and ratio <= 1.5,
    }
