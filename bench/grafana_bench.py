"""Measure 3: backup and restore of the Grafana double's objects, opskit against
grafana-backup-tool (every component both tools have: folders and their permissions,
dashboards, library panels, data sources, teams and members, alert rules, contact points,
the notification policy tree, annotations; opskit also its own extra kinds: dashboard
permissions, mute timings, templates, preferences, which gbt has not), each backup
checked complete, each restore checked by counting what the double then holds, and the
requests each tool made counted by the double (`GET /__lab/stats`, before and after).

Standalone, against one Grafana double (no bench lab; iterations on a 2-core machine):

    python lab/grafana_double.py --port 23000 --state /tmp/g.json --write-behind 500 &
    python -m bench.grafana_bench --url http://127.0.0.1:23000 [--latency 0,20] [--rounds 2]
"""

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

# gbt's components (grafana_backup/save.py, restore.py): `folders` saves the folder
# permissions too; its restore names them `folder_permissions`, and has no restore of the
# notification policy (commented out in gbt 1.4.2), so that one is backed up only
SAVE_COMPONENTS = (
    "folders,datasources,library-elements,dashboards,teams,team-members,alert-rules,"
    "contact-points,notification-policy,annotations"
)
RESTORE_COMPONENTS = (
    "folders,datasources,library_elements,dashboards,teams,team_members,"
    "folder_permissions,alert_rules,contact_points,annotations"
)


def requests_made(ctx: Ctx) -> int:
    """The double's request counter (every request, the lab's own included)."""
    return int(check(http("GET", f"{ctx.grafana}/__lab/stats", auth=GRAFANA_AUTH), "stats")
               .get("total", 0))  # fmt: skip


def counted(ctx: Ctx, run: Any) -> dict[str, Any]:
    """`run()`'s result with `requests`: what the double answered meanwhile, less the one
    stats request itself."""
    before = requests_made(ctx)
    result: dict[str, Any] = run()
    result["requests"] = requests_made(ctx) - before - 1
    return result


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
    components = SAVE_COMPONENTS if args[0] == "save" else RESTORE_COMPONENTS
    cmd = [str(exe), *args[:1], f"--config={d / 'conf.json'}", f"--components={components}"]
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
    proc = ctx.opskit("backup", "grafana", "--out", str(out), "--with-annotations", "--json")
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: kinds this Grafana does not have were skipped
        raise RuntimeError(f"opskit backup grafana failed: {proc.stderr[-1500:]}")
    path = Path(json.loads(proc.stdout)["path"])
    from opskit.tasks.backup_store import read_manifest, verify_checksums
    from opskit.tasks.grafana_state import backup_state

    problems = verify_checksums(path, read_manifest(path))  # every file against the manifest
    if problems:
        raise RuntimeError(f"opskit backup {path}: {problems[:3]}")
    (state,) = backup_state(path).values()
    got = {k: len(state.get(k) or {}) for k in ("dashboards", "folders", "datasources")}
    return {"seconds": seconds, "path": str(path), "saved": got, "checksums_ok": True,
            "complete": got == expected}  # fmt: skip


def gbt_restore(ctx: Ctx, archive: str, expected: dict[str, int]) -> dict[str, Any]:
    reset(ctx)
    before = requests_made(ctx)
    t0 = time.perf_counter()
    proc = _gbt(ctx, "restore", archive)
    seconds = time.perf_counter() - t0
    made = requests_made(ctx) - before - 1
    if proc.returncode != 0:
        log(f"grafana-backup restore exited {proc.returncode}: {proc.stderr[-800:]}")
    got = counts(ctx)
    return {"seconds": seconds, "restored": got, "complete": got == expected, "requests": made}


def opskit_restore(ctx: Ctx, path: str, expected: dict[str, int]) -> dict[str, Any]:
    reset(ctx)
    before = requests_made(ctx)
    t0 = time.perf_counter()
    proc = ctx.opskit("restore", "grafana", path, "--yes", "--json")
    seconds = time.perf_counter() - t0
    made = requests_made(ctx) - before - 1
    if proc.returncode != 0:
        log(f"opskit restore grafana exited {proc.returncode}: {proc.stderr[-800:]}")
    got = counts(ctx)
    return {"seconds": seconds, "restored": got, "complete": got == expected, "requests": made}


def measure(ctx: Ctx, rounds: int = 2, latency_ms: int = 0) -> dict[str, Any]:
    expected = counts(ctx)
    latency(ctx, latency_ms)
    log(
        f"grafana: {expected['dashboards']} dashboards, {latency_ms} ms added per request: "
        f"backup x{rounds} each tool, then restore into a reset double"
    )
    gbt_runs, ops_runs = [], []
    for _ in range(rounds):
        gbt_runs.append(counted(ctx, lambda: gbt_backup(ctx, expected)))
        ops_runs.append(counted(ctx, lambda: opskit_backup(ctx, expected)))
    gbt_b = min(gbt_runs, key=lambda r: r["seconds"])
    ops_b = min(ops_runs, key=lambda r: r["seconds"])
    try:
        # the reset inside each restore is the lab's, not the tool's: counted from after it
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


class Standalone(Ctx):
    """A Ctx whose Grafana is one double at `url` (the rest of the lab is not used)."""

    def __init__(self, url: str, work: Path) -> None:
        super().__init__(0, work)
        self.grafana_url = url.rstrip("/")

    @property
    def grafana(self) -> str:
        return self.grafana_url


def main() -> int:
    import argparse

    from bench.common import BENCH
    from bench.tools import ensure

    parser = argparse.ArgumentParser(prog="bench.grafana_bench")
    parser.add_argument("--url", required=True, help="a Grafana double (lab/grafana_double.py)")
    parser.add_argument("--latency", default="0,20", help="ms added per request, comma list")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH / "work" / "grafana-results.json")
    args = parser.parse_args()
    ensure(GBT)
    ctx = Standalone(args.url, BENCH / "work" / "grafana-standalone")  # gitignored
    ctx.work.mkdir(parents=True, exist_ok=True)
    reseed(ctx)
    scale.add_dashboards(ctx)
    results = {}
    for ms in (int(x) for x in args.latency.split(",") if x):
        r = measure(ctx, rounds=args.rounds, latency_ms=ms)
        results[f"{ms}ms"] = r
        b, rs = r["backup"], r["restore"]
        log(
            f"{ms} ms: backup opskit {b['opskit']['seconds']:.2f}s/{b['opskit']['requests']} req"
            f" vs gbt {b['grafana_backup_tool']['seconds']:.2f}s/"
            f"{b['grafana_backup_tool']['requests']} req = {b['speedup']:.2f}x; restore opskit "
            f"{rs['opskit']['seconds']:.2f}s/{rs['opskit']['requests']} req vs gbt "
            f"{rs['grafana_backup_tool']['seconds']:.2f}s/{rs['grafana_backup_tool']['requests']}"
            f" req = {rs['speedup']:.2f}x; complete {b['opskit']['complete']}/"
            f"{rs['opskit']['complete']}, gbt {b['grafana_backup_tool']['complete']}/"
            f"{rs['grafana_backup_tool']['complete']}"
        )
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
