"""Measure 3: backup and restore of the Grafana double's dashboards, opskit against
grafana-backup-tool (same components: folders, dashboards, data sources), each backup
checked complete, each restore checked by counting what the double then holds."""

from __future__ import annotations

import json
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from bench import scale
from bench.common import GRAFANA_AUTH, GRAFANA_TOKEN, LAB, PY, Ctx, check, http, log
from bench.tools import GBT, venv_bin

COMPONENTS = "folders,datasources,dashboards"


def counts(ctx: Ctx) -> dict[str, int]:
    g = ctx.grafana
    dash = check(http("GET", f"{g}/api/search?type=dash-db&limit=5000", auth=GRAFANA_AUTH), "s")
    folders = check(
        http("GET", f"{g}/api/search?type=dash-folder&limit=5000", auth=GRAFANA_AUTH), "s"
    )
    ds = check(http("GET", f"{g}/api/datasources", auth=GRAFANA_AUTH), "datasources")
    return {"dashboards": len(dash), "folders": len(folders), "datasources": len(ds)}


LATENCY_MS = 0  # per API request, set by measure(); a reset clears the double's faults


def latency(ctx: Ctx, ms: int) -> None:
    """Every /api request answered `ms` later (the double's delay fault, in its own thread:
    concurrent requests wait in parallel, as with a real Grafana and its database)."""
    global LATENCY_MS
    LATENCY_MS = ms
    check(http("DELETE", f"{ctx.grafana}/__lab/fault", auth=GRAFANA_AUTH), "clear faults")
    if ms:
        fault = {"path": "/api/", "delayMs": ms, "count": 10_000_000}
        check(http("POST", f"{ctx.grafana}/__lab/fault", fault, auth=GRAFANA_AUTH), "latency")


def reset(ctx: Ctx) -> None:
    check(http("POST", f"{ctx.grafana}/__lab/reset", auth=GRAFANA_AUTH), "grafana reset")
    latency(ctx, LATENCY_MS)


def reseed(ctx: Ctx) -> None:
    """The lab's demo objects back, after a reset (lab/grafana_seed.py, as lab/up does)."""
    reset(ctx)
    subprocess.run(
        [
            PY, str(LAB / "grafana_seed.py"), "--url", ctx.grafana, "--user", GRAFANA_AUTH[0],
            "--password", GRAFANA_AUTH[1], "--prometheus-url", ctx.prometheus,
        ],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def _gbt(ctx: Ctx, *args: str) -> subprocess.CompletedProcess[str]:
    d = ctx.work / "gbt"
    d.mkdir(parents=True, exist_ok=True)
    conf = {
        "general": {
            "debug": False,
            "verify_ssl": False,
            "api_health_check": True,
            "api_auth_check": True,
            "backup_dir": str(d / "out"),
            "backup_file_format": "%Y%m%d%H%M%S",
            "pretty_print": False,
        },
        "grafana": {"url": ctx.grafana, "token": GRAFANA_TOKEN, "search_api_limit": 5000},
    }
    (d / "conf.json").write_text(json.dumps(conf))
    exe = venv_bin(ctx, GBT, "grafana-backup")
    cmd = [str(exe), *args[:1], f"--config={d / 'conf.json'}", f"--components={COMPONENTS}"]
    return subprocess.run([*cmd, *args[1:]], capture_output=True, text=True, timeout=900, cwd=d)


def gbt_backup(ctx: Ctx, expected: dict[str, int]) -> dict[str, Any]:
    out = ctx.work / "gbt" / "out"
    before = set(out.glob("*.tar.gz")) if out.exists() else set()
    t0 = time.perf_counter()
    proc = _gbt(ctx, "save")
    seconds = time.perf_counter() - t0
    archives = sorted(set(out.glob("*.tar.gz")) - before)
    if proc.returncode != 0 or not archives:
        raise RuntimeError(f"grafana-backup save failed: {(proc.stdout + proc.stderr)[-1500:]}")
    with tarfile.open(archives[-1]) as tar:
        names = tar.getnames()
    got = {
        "dashboards": sum(n.endswith(".dashboard") for n in names),
        "folders": sum(n.endswith(".folder") for n in names),
        "datasources": sum(n.endswith(".datasource") for n in names),
    }
    return {"seconds": seconds, "archive": str(archives[-1]), "saved": got,
            "complete": got == expected}  # fmt: skip


def opskit_backup(ctx: Ctx, expected: dict[str, int]) -> dict[str, Any]:
    out = ctx.work / "opskit-grafana"
    t0 = time.perf_counter()
    proc = ctx.opskit("backup", "grafana", "--out", str(out), "--json")
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"opskit backup grafana failed: {proc.stderr[-1500:]}")
    path = Path(json.loads(proc.stdout)["path"])
    from opskit.tasks.grafana_restore import load_backup  # checksums of every file, then parse

    backup = load_backup(path)
    got = {
        "dashboards": len(backup.dashboards),
        "folders": len(backup.folders),
        "datasources": len(backup.datasources),
    }
    return {"seconds": seconds, "path": str(path), "saved": got, "checksums_ok": True,
            "complete": got == expected}  # fmt: skip


def gbt_restore(ctx: Ctx, archive: str, expected: dict[str, int]) -> dict[str, Any]:
    reset(ctx)
    t0 = time.perf_counter()
    proc = _gbt(ctx, "restore", archive)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        log(f"grafana-backup restore exited {proc.returncode}: {proc.stderr[-800:]}")
    got = counts(ctx)
    return {"seconds": seconds, "restored": got, "complete": got == expected}


def opskit_restore(ctx: Ctx, path: str, expected: dict[str, int]) -> dict[str, Any]:
    reset(ctx)
    t0 = time.perf_counter()
    proc = ctx.opskit("restore", "grafana", path, "--yes", "--json")
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        log(f"opskit restore grafana exited {proc.returncode}: {proc.stderr[-800:]}")
    got = counts(ctx)
    return {"seconds": seconds, "restored": got, "complete": got == expected}


def measure(ctx: Ctx, rounds: int = 2, latency_ms: int = 0) -> dict[str, Any]:
    expected = counts(ctx)
    latency(ctx, latency_ms)
    log(
        f"grafana: {expected['dashboards']} dashboards, {latency_ms} ms added per request: "
        f"backup x{rounds} each tool, then restore into a reset double"
    )
    gbt_runs, ops_runs = [], []
    for _ in range(rounds):
        gbt_runs.append(gbt_backup(ctx, expected))
        ops_runs.append(opskit_backup(ctx, expected))
    gbt_b = min(gbt_runs, key=lambda r: r["seconds"])
    ops_b = min(ops_runs, key=lambda r: r["seconds"])
    try:
        gbt_r = gbt_restore(ctx, gbt_b["archive"], expected)
        ops_r = opskit_restore(ctx, ops_b["path"], expected)
    finally:
        latency(ctx, 0)
        reseed(ctx)
        scale.add_dashboards(ctx)
    backup_speedup = gbt_b["seconds"] / ops_b["seconds"]
    restore_speedup = gbt_r["seconds"] / ops_r["seconds"]
    return {
        "objects": expected,
        "added_latency_ms": latency_ms,
        "backup": {"grafana_backup_tool": gbt_b, "opskit": ops_b, "speedup": backup_speedup,
                   "all_runs_s": {"grafana_backup_tool": [r["seconds"] for r in gbt_runs],
                                  "opskit": [r["seconds"] for r in ops_runs]}},
        "restore": {"grafana_backup_tool": gbt_r, "opskit": ops_r, "speedup": restore_speedup},
        "target": "opskit >= 4x faster, complete verified backup",
        "met": backup_speedup >= 4 and restore_speedup >= 4 and ops_b["complete"]
        and ops_r["complete"],
    }  # fmt: skip
