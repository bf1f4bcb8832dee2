"""Measure 7 (issue 19): a refresh of five contexts at once -- opskit's Fleet (a Stack per
context; each context's Prometheus targets, Alertmanager alerts and Elasticsearch cluster
health, parsed into opskit's models and judged by the status summary) against raw httpx
GETs + json.loads of the very same URLs, five clients, all concurrently. The five
contexts point at the bench lab (BENCH_OFFSET). Both keep their connections warm;
alternating rounds (21: a round is short); the target is a median ratio <= 1.3."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import httpx

from bench.common import Ctx, log, summary
from bench.refresh_bench import Capture
from opskit.config import Settings, load
from opskit.fleet import Fleet

CONTEXTS = 5
TARGET = 1.3


def config_text(ctx: Ctx, n: int = CONTEXTS) -> str:
    """`n` contexts, fleet-1 .. fleet-n, each the bench lab."""
    parts = []
    for i in range(1, n + 1):
        name = f"fleet-{i}"
        parts.append(
            f"[contexts.{name}]\n"
            f'[contexts.{name}.prometheus]\nurl = "{ctx.prometheus}"\n'
            f'[contexts.{name}.alertmanager]\nurl = "{ctx.alertmanager}"\n'
            f'[contexts.{name}.elasticsearch]\nurl = "{ctx.elasticsearch}"\n'
        )
    return "".join(parts)


def contexts(ctx: Ctx, n: int = CONTEXTS) -> dict[str, Settings]:
    config = ctx.work / "fleet.toml"
    config.write_text(config_text(ctx, n))
    config.chmod(0o600)
    # without the OPSKIT_*_URL variables of ctx.env(): they would override every context
    env = {k: v for k, v in ctx.env().items() if not k.startswith("OPSKIT_")}
    return {f"fleet-{i}": load(config, f"fleet-{i}", environ=env).settings
            for i in range(1, n + 1)}  # fmt: skip


async def raw_refresh(clients: list[httpx.AsyncClient], urls: list[str]) -> int:
    async def one(client: httpx.AsyncClient, url: str) -> int:
        resp = await client.get(url)
        return len(json.loads(resp.content))

    return sum(await asyncio.gather(*(one(c, u) for c in clients for u in urls)))


async def _measure(ctx: Ctx, rounds: int, target: float, n: int) -> dict[str, Any]:
    settings = contexts(ctx, n)
    capture = Capture()
    first = next(iter(settings))
    async with Fleet(settings) as fleet:
        # the URLs opskit reads, from one context's requests (every context has the same)
        fleet.stacks[first].log = capture
        rows = await fleet.refresh()  # warm-up (and the URL list)
        per_context = list(dict.fromkeys(u for _, u in capture.urls))
        if not any("_cluster/health" in u for u in per_context):  # the ES node's own log
            per_context.append(f"{ctx.elasticsearch}/_cluster/health")
        clients = [httpx.AsyncClient(timeout=60) for _ in range(n)]
        try:
            await raw_refresh(clients, per_context)  # warm-up
            ops: list[float] = []
            raw: list[float] = []
            ops_cpu: list[float] = []
            raw_cpu: list[float] = []
            for _ in range(rounds):
                t0, c0 = time.perf_counter(), time.process_time()
                await fleet.refresh()
                ops.append(time.perf_counter() - t0)
                ops_cpu.append(time.process_time() - c0)
                t0, c0 = time.perf_counter(), time.process_time()
                await raw_refresh(clients, per_context)
                raw.append(time.perf_counter() - t0)
                raw_cpu.append(time.process_time() - c0)
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
    ratio = statistics.median(ops) / statistics.median(raw)
    return {
        "contexts": n,
        "opskit_s": summary(ops),
        "raw_s": summary(raw),
        "ratio": ratio,
        "per_round_ratios": [o / r for o, r in zip(ops, raw, strict=True)],
        "opskit_cpu_s": summary(ops_cpu),
        "raw_cpu_s": summary(raw_cpu),
        "cpu_ratio": statistics.median(ops_cpu) / max(statistics.median(raw_cpu), 1e-9),
        "urls_per_context": per_context,
        "rows": {r.context: {"exit_code": r.exit_code, "errors": r.errors} for r in rows},
        "target": f"ratio <= {target:g}",
        "target_ratio": target,
        "met": ratio <= target,
    }


def measure(
    ctx: Ctx, rounds: int = 21, target: float = TARGET, n: int = CONTEXTS
) -> dict[str, Any]:
    log(f"fleet: {n} contexts at once, opskit's Fleet against raw GETs, {rounds} rounds")
    return asyncio.run(_measure(ctx, rounds, target, n))
