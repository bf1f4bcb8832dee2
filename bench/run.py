"""`make bench`: scale the bench lab up, run the six measures of issue 8 side by side,
write bench/results.json and print a table. Not part of the tests: nothing asserts a time.

    python -m bench.run [--offset 5000] [--only refresh,tui,startup,grafana,retention]
                        [--keep] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import grafana_bench, refresh_bench, retention_bench, scale, startup_bench, tools
from bench.common import BENCH, PY, ROOT, Ctx, log
from bench.report import table

MEASURES = ("refresh", "tui", "startup", "grafana", "retention")
WRITE_BEHIND_MS = "500"


def machine() -> dict[str, Any]:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), platform.processor(),
    )  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_avg_at_start": os.getloadavg(),
    }


def tui(ctx: Ctx, seconds: float) -> dict[str, Any]:
    log(f"tui: headless app on the large stack, key latency for {seconds:.0f}s, peak RSS")
    proc = subprocess.run(
        [PY, "-m", "bench.tui_probe", str(seconds)],
        env=ctx.env(), cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"tui probe failed: {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    p99 = max(out["latency_ms_overview"]["p99"], out["latency_ms_targets"]["p99"])
    out["latency_met"] = p99 < 100
    out["memory_met"] = out["peak_rss_mb"] < 150
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--offset", type=int,
                        default=int(os.environ.get("BENCH_OFFSET", "5000")))  # fmt: skip
    parser.add_argument("--only", default=",".join(MEASURES))
    parser.add_argument("--keep", action="store_true", help="leave the large stack in place")
    parser.add_argument("--seconds", type=float, default=20.0, help="key-latency sampling")
    args = parser.parse_args()
    only = [m for m in args.only.split(",") if m]
    ctx = Ctx(args.offset, BENCH / "work")  # not hidden: grafana-backup globs skip dot dirs
    ctx.work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "offset": args.offset,
    }
    tools.ensure(tools.GBT)
    tools.ensure(tools.CURATOR)
    ctx.lab("server", "restart", "grafana", OPSKIT_LAB_GRAFANA_WRITE_BEHIND=WRITE_BEHIND_MS)
    poster = None
    env_before = dict(os.environ)
    try:
        poster = scale.up(ctx)
        results["scale_up_s"] = time.monotonic() - t0
        if "refresh" in only or "startup" in only:
            results["refresh"] = refresh_bench.measure(ctx)
            os.environ.clear()
            os.environ.update(env_before)
        if "tui" in only:
            results["tui"] = tui(ctx, args.seconds)
        if "startup" in only:
            urls = [tuple(u) for u in results["refresh"]["urls"] if "silences" not in u[1]]
            results["startup"] = startup_bench.measure(ctx, urls)
        if "grafana" in only:
            results["grafana"] = grafana_bench.measure(ctx)
            results["grafana_20ms"] = grafana_bench.measure(ctx, latency_ms=20)
        if "retention" in only:
            results["retention"] = retention_bench.measure(ctx)
    finally:
        if not args.keep:
            scale.down(ctx, poster)
        elif poster is not None:
            poster.stop_event.set()
        ctx.lab("server", "restart", "grafana")
    results["total_s"] = time.monotonic() - t0
    (BENCH / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table(results))
    log(f"done in {results['total_s'] / 60:.1f} min; figures in bench/results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
