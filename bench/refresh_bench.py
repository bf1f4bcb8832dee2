"""Measure 1: one full refresh of the TUI's data (every source of opskit.live.fetchers,
parsed into opskit's models) against raw httpx GETs + json.loads of the very same URLs,
captured from opskit's own requests. Both keep their connections warm; alternating runs."""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from typing import Any

import httpx

from bench.common import GRAFANA_AUTH, Ctx, log, summary
from opskit.clients.elasticsearch import INDEX_COLUMNS
from opskit.config import Settings, load
from opskit.http import RequestLog
from opskit.live import fetchers
from opskit.stack import Stack


class Capture(RequestLog):
    """Records (method, URL) of every request opskit makes instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def write(self, backend: str, method: str, url: str, status: int | str, ms: float) -> None:
        self.urls.append((backend, url))


def other_urls(settings: Settings) -> list[tuple[str, str]]:
    """What the hooks may not see: the two Elasticsearch calls (when made through the
    official client's own transport) and the extra services' health endpoints (refused
    ones log nothing)."""
    es = settings.elasticsearch.url.rstrip("/")
    cols = INDEX_COLUMNS.replace(",", "%2C")
    return [
        ("elasticsearch", f"{es}/_cluster/health"),
        ("elasticsearch", f"{es}/_cat/indices/*?format=json&bytes=b&h={cols}"
                          "&expand_wildcards=open%2Cclosed"),
        *(("services", s.url) for s in settings.enabled_services),
    ]  # fmt: skip


async def opskit_refresh(stack: Stack) -> dict[str, Any]:
    fs = fetchers(stack)
    values = await asyncio.gather(*(f() for f in fs.values()), return_exceptions=True)
    return dict(zip(fs, values, strict=True))


async def raw_refresh(client: httpx.AsyncClient, urls: list[tuple[str, str]]) -> int:
    async def one(backend: str, url: str) -> int:
        auth = GRAFANA_AUTH if backend == "grafana" else None
        try:
            resp = await client.get(url, auth=auth)
        except httpx.TransportError:
            return 0  # the services nothing listens on: opskit sees the same refusal
        return len(json.loads(resp.content)) if resp.content[:1] in (b"[", b"{") else 0

    return sum(await asyncio.gather(*(one(b, u) for b, u in urls)))


async def _measure(rounds: int, target: float) -> dict[str, Any]:
    settings = load().settings
    capture = Capture()
    async with Stack(settings, capture) as stack:
        assert stack.elasticsearch is not None  # built now: drop the --debug log it adds
        es_logger = logging.getLogger("elastic_transport.transport")
        for h in list(es_logger.handlers):
            es_logger.removeHandler(h)
        es_logger.setLevel(logging.WARNING)
        first = await opskit_refresh(stack)  # warm-up, and the URL list
        urls = list(dict.fromkeys(capture.urls))
        # what the hooks did not see (older opskit: every Elasticsearch call), each once
        seen = {backend for backend, _ in urls}
        got = {url for _, url in urls}
        urls += [
            (backend, url)
            for backend, url in other_urls(settings)
            if url not in got and (backend == "services" or backend not in seen)
        ]
        sizes = {k: len(v) if isinstance(v, list) else 1 for k, v in first.items()}
        errors = {k: repr(v)[:120] for k, v in first.items() if isinstance(v, BaseException)}
        async with httpx.AsyncClient(timeout=60, verify=False) as client:
            await raw_refresh(client, urls)  # warm-up
            ops, raw, ops_cpu, raw_cpu = [], [], [], []
            for _ in range(rounds):
                t0, c0 = time.perf_counter(), time.process_time()
                await opskit_refresh(stack)
                ops.append(time.perf_counter() - t0)
                ops_cpu.append(time.process_time() - c0)
                t0, c0 = time.perf_counter(), time.process_time()
                await raw_refresh(client, urls)
                raw.append(time.perf_counter() - t0)
                raw_cpu.append(time.process_time() - c0)
    ratio = statistics.median(ops) / statistics.median(raw)
    return {
        "opskit_s": summary(ops),
        "raw_s": summary(raw),
        "ratio": ratio,
        "per_round_ratios": [o / r for o, r in zip(ops, raw, strict=True)],
        # this process's CPU seconds (all threads) a round: less at the mercy of the
        # machine's load than the wall times; the servers' work is not in it
        "opskit_cpu_s": summary(ops_cpu),
        "raw_cpu_s": summary(raw_cpu),
        "cpu_ratio": statistics.median(ops_cpu) / statistics.median(raw_cpu),
        "records": sizes,
        "source_errors": errors,
        "urls": urls,
        "target": f"ratio <= {target:g}",
        "target_ratio": target,
        "met": ratio <= target,
    }


def measure(ctx: Ctx, rounds: int = 9, target: float = 1.3) -> dict[str, Any]:
    log(f"refresh: opskit's full refresh against raw GETs, {rounds} alternating rounds")
    ctx.apply_env()
    return asyncio.run(_measure(rounds, target))
