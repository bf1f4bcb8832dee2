"""`opskit retention prometheus` against the lab's real Prometheus and node exporter, and
import hygiene of the cron paths (backup, snapshots, retention)."""

from __future__ import annotations

import math
import subprocess
import sys

from opskit.errors import EXIT_USAGE
from tests.conftest import ROOT, Lab, get_json
from tests.es.conftest import run_json


def test_prometheus_retention_report(lab: Lab) -> None:
    env = lab.env()
    out = run_json(lab, env, "retention", "prometheus", "--budget", "1GiB")
    flags = get_json(f"{lab.prometheus}/api/v1/status/flags")["data"]
    runtime = get_json(f"{lab.prometheus}/api/v1/status/runtimeinfo")["data"]
    # the lab sets --storage.tsdb.retention.time=60d; runtimeinfo spells it as it likes
    assert out["flag_retention_time"] == flags["storage.tsdb.retention.time"] == "60d"
    assert out["retention_time"] == runtime["storageRetention"]
    assert out["retention_source"] == "runtimeinfo"
    assert out["tsdb_path"] == flags["storage.tsdb.path"]
    assert out["head_series"] > 0 and out["blocks_bytes"] > 0
    assert out["disk"]["available_bytes"] > 0
    assert out["tsdb_path"].startswith(out["disk"]["mountpoint"])
    growth = out["growth_per_day_bytes"]
    assert growth > 0
    assert out["fits_days"] == max(math.floor(0.8 * 2**30 / growth), 1)
    assert f"--storage.tsdb.retention.time={out['fits_days']}d" in out["flags_to_set"]

    text = lab.opskit("retention", "prometheus", "--budget", "1GiB", env=env)
    assert text.returncode == 0 and "--storage.tsdb.retention.time=" in text.stdout

    none = lab.opskit("retention", "prometheus", "--json", env=env)
    assert none.returncode == 1 and "no disk budget" in none.stdout
    configured = run_json(
        lab, lab.env(OPSKIT_PROMETHEUS_DISK_BUDGET="2GiB"), "retention", "prometheus"
    )
    assert configured["budget_bytes"] == 2 * 2**30
    bad = lab.opskit("retention", "prometheus", "--budget", "lots", env=env)
    assert (
        bad.returncode == EXIT_USAGE and "--budget" in bad.stderr and "Traceback" not in bad.stderr
    )


def test_cron_paths_never_import_textual() -> None:
    code = (
        "import sys, opskit.commands.retention, opskit.commands.es_backup, "
        "opskit.commands.prom_retention, opskit.tasks.retention, opskit.tasks.snapshots, "
        "opskit.tasks.restore, opskit.tasks.prom_retention; print('textual' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert proc.stdout.strip() == "False"
