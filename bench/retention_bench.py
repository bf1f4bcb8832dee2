"""Measure 4: retention of 1,000 daily indices, opskit against Elasticsearch Curator 8.0.21,
both deleting the same indices (older than 30 days by the date in the name) on the same
data, both through a counting proxy in front of the bench lab's Elasticsearch."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from bench import scale
from bench.common import PY, ROOT, Ctx, log
from bench.countproxy import CountingProxy
from bench.tools import CURATOR, venv_bin

CURATOR_CONFIG = """\
elasticsearch:
  client:
    hosts: {url}
    request_timeout: 300
logging:
  loglevel: INFO
"""
ACTION = """\
actions:
  1:
    action: delete_indices
    description: bench retention, 30 days by the date in the name
    options:
      ignore_empty_list: True
      disable_action: False
    filters:
      - filtertype: pattern
        kind: prefix
        value: {prefix}
      - filtertype: age
        source: name
        direction: older
        timestring: '%Y.%m.%d'
        unit: days
        unit_count: {days}
"""
KEEP_DAYS = 30


def run_curator(ctx: Ctx, proxy_url: str) -> subprocess.CompletedProcess[str]:
    d = ctx.work / "curator"
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yml").write_text(CURATOR_CONFIG.format(url=proxy_url))
    # Curator ages a daily index from the start of its day, opskit from its end (the last
    # data it can hold): Curator's 31 days select the same indices as opskit's 30 days.
    action = ACTION.format(prefix=scale.INDEX_PREFIX, days=KEEP_DAYS + 1)
    (d / "action.yml").write_text(action)
    cmd = [
        str(venv_bin(ctx, CURATOR, "curator")),
        "--config",
        str(d / "config.yml"),
        str(d / "action.yml"),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def run_opskit(ctx: Ctx, proxy_url: str) -> subprocess.CompletedProcess[str]:
    args = [
        "retention", "elasticsearch", "--pattern", f"{scale.INDEX_PREFIX}*",
        "--older-than", f"{KEEP_DAYS}d", "--action", "delete", "--yes", "--json",
    ]  # fmt: skip
    env = ctx.env(OPSKIT_ELASTICSEARCH_URL=proxy_url)
    return subprocess.run(
        [PY, "-m", "opskit", *args], env=env, capture_output=True, text=True, timeout=900,
        cwd=ROOT,
    )  # fmt: skip


def one(ctx: Ctx, proxy: CountingProxy, name: str, expected_left: list[str]) -> dict[str, Any]:
    before = scale.existing_indices(ctx)
    if len(before) != scale.INDICES:
        raise RuntimeError(f"{name}: expected {scale.INDICES} indices, found {len(before)}")
    proxy.reset()
    t0 = time.perf_counter()
    proc = run_curator(ctx, proxy.url) if name == "curator" else run_opskit(ctx, proxy.url)
    seconds = time.perf_counter() - t0
    left = scale.existing_indices(ctx)
    if proc.returncode != 0:
        log(f"{name} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}")
    return {
        "seconds": seconds,
        "requests": proxy.total,
        "by_endpoint": dict(proxy.counts.most_common(12)),
        "exit_code": proc.returncode,
        "deleted": len(before) - len(left),
        "same_result_as_expected": left == expected_left,
    }


def measure(ctx: Ctx) -> dict[str, Any]:
    expected_left = sorted(scale.index_names(KEEP_DAYS + 1))
    proxy = CountingProxy(ctx.elasticsearch)
    proxy.start()
    try:
        log("retention: Curator 8.0.21 deleting 969 of 1,000 indices")
        curator = one(ctx, proxy, "curator", expected_left)
        log("retention: re-creating the deleted indices")
        missing = sorted(set(scale.index_names()) - set(scale.existing_indices(ctx)))
        scale.create_indices(ctx, missing)
        log("retention: opskit deleting the same indices")
        opskit = one(ctx, proxy, "opskit", expected_left)
    finally:
        proxy.stop()
    return {
        "curator": curator,
        "opskit": opskit,
        "speedup": curator["seconds"] / opskit["seconds"],
        "request_ratio": opskit["requests"] / max(curator["requests"], 1),
        "target": "opskit no slower (speedup >= 1) and fewer requests",
        "met": curator["seconds"] >= opskit["seconds"]
        and opskit["requests"] < curator["requests"]
        and opskit["same_result_as_expected"],
    }
