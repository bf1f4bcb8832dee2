"""Prometheus retention sizing. Retention is a start-up flag, so this reports rather than
changes: current flags, TSDB stats, disk use and growth, and the retention time that fits
a disk budget (`sizing` is pure)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from opskit.errors import BackendError

if TYPE_CHECKING:
    from opskit.clients.prometheus import PrometheusClient

DEFAULT_RETENTION_TIME = "15d"  # Prometheus' default when neither time nor size is set
DEFAULT_BYTES_PER_SAMPLE = 2.0  # Prometheus docs: 1-2 bytes per sample after compression
USABLE_FRACTION = 0.8  # leave room for the WAL, compaction and the head block

Q_BLOCKS = "sum(prometheus_tsdb_storage_blocks_bytes)"
Q_LOWEST = "min(prometheus_tsdb_lowest_timestamp_seconds)"
Q_INGEST = "sum(rate(prometheus_tsdb_head_samples_appended_total[1h]))"
Q_BYTES_PER_SAMPLE = (
    "sum(rate(prometheus_tsdb_compaction_chunk_size_bytes_sum[1d]))"
    " / sum(rate(prometheus_tsdb_compaction_chunk_samples_sum[1d]))"
)
Q_DISK = 'node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|overlay|squashfs"}'


@dataclass
class Disk:
    mountpoint: str
    device: str
    available_bytes: float


@dataclass
class PromRetention:
    retention_time: str  # effective: what Prometheus applies ("" = no time limit)
    retention_size: str  # effective ("" = no size limit)
    retention_source: str  # "runtimeinfo", or "flags" when runtimeinfo was not readable
    flag_retention_time: str  # --storage.tsdb.retention.time as set ("" = not set)
    flag_retention_size: str  # --storage.tsdb.retention.size as set ("" = not set)
    tsdb_path: str
    head_series: int
    head_chunks: int
    blocks_bytes: float | None
    oldest_sample: datetime | None
    samples_per_second: float | None
    bytes_per_sample: float
    bytes_per_sample_measured: bool
    growth_per_day_bytes: float | None
    disk: Disk | None
    budget_bytes: int | None
    fits_days: int | None
    flags_to_set: list[str]
    notes: list[str]


async def _scalar(prom: PrometheusClient, expr: str) -> float | None:
    try:
        samples = await prom.query(expr)
    except BackendError:
        return None
    values = [s.value for s in samples if math.isfinite(s.value)]
    return values[0] if values else None


def _unset(value: str) -> str:
    return "" if value.strip() in ("", "0", "0s", "0B") else value.strip()


def effective_retention(storage_retention: str | None, flags: dict[str, str]) -> tuple[str, str]:
    """(time, size) Prometheus applies. runtimeinfo's `storageRetention` says it ("15d",
    "1GiB", "30d or 1GiB"); without it, the flags with Prometheus' rule: neither time nor
    size set means 15d (cmd/prometheus/main.go, defaultRetentionDuration)."""
    if storage_retention:
        time_part, size_part = "", ""
        for part in storage_retention.split(" or "):
            part = part.strip()
            if part.endswith("B"):
                size_part = part
            elif part:
                time_part = part
        return time_part, size_part
    time_flag = _unset(flags.get("storage.tsdb.retention.time", "")) or _unset(
        flags.get("storage.tsdb.retention", "")  # the deprecated spelling
    )
    size_flag = _unset(flags.get("storage.tsdb.retention.size", ""))
    if not time_flag and not size_flag:
        time_flag = DEFAULT_RETENTION_TIME
    return time_flag, size_flag


async def _storage_retention(prom: PrometheusClient) -> str | None:
    try:
        info = await prom.runtimeinfo()
    except BackendError:  # an older Prometheus, or a proxy that hides /status
        return None
    value = info.get("storageRetention")
    return str(value) if value else None


def pick_disk(disks: list[Disk], path: str) -> Disk | None:
    """The filesystem whose mountpoint is the longest prefix of the TSDB path."""

    def covers(d: Disk) -> bool:
        mp = d.mountpoint.rstrip("/") + "/"
        return (path.rstrip("/") + "/").startswith(mp)

    found = [d for d in disks if covers(d)]
    return max(found, key=lambda d: len(d.mountpoint)) if found else None


def sizing(growth_per_day: float | None, budget: int | None) -> tuple[int | None, list[str]]:
    """Whole days of retention that fit in USABLE_FRACTION of the budget, and the flags."""
    if not budget or not growth_per_day or growth_per_day <= 0:
        return None, []
    usable = budget * USABLE_FRACTION
    days = max(int(usable // growth_per_day), 1)
    size_gb = max(int(usable // 1e9), 1) if usable >= 1e9 else None
    size_flag = f"{size_gb}GB" if size_gb else f"{max(int(usable // 1e6), 1)}MB"
    return days, [
        f"--storage.tsdb.retention.time={days}d",
        f"--storage.tsdb.retention.size={size_flag}",
    ]


async def gather(prom: PrometheusClient, budget: int | None) -> PromRetention:
    flags, runtime, tsdb, blocks, lowest, ingest, bps, disk_samples = await asyncio.gather(
        prom.flags(),
        _storage_retention(prom),
        prom.api("status/tsdb"),
        _scalar(prom, Q_BLOCKS),
        _scalar(prom, Q_LOWEST),
        _scalar(prom, Q_INGEST),
        _scalar(prom, Q_BYTES_PER_SAMPLE),
        prom.query(Q_DISK),
    )
    head = prom.parse("tsdb status", lambda: tsdb["headStats"])
    path = flags.get("storage.tsdb.path", "")
    disks = [
        Disk(s.labels.get("mountpoint", ""), s.labels.get("device", ""), s.value)
        for s in disk_samples
    ]
    disk = pick_disk(disks, path)
    notes: list[str] = []
    now = datetime.now(UTC)
    oldest = datetime.fromtimestamp(lowest, UTC) if lowest else None
    per_sample = bps if bps and bps > 0 else DEFAULT_BYTES_PER_SAMPLE
    estimates = []
    if blocks and oldest and (now - oldest).total_seconds() > 86400:
        estimates.append(blocks / ((now - oldest).total_seconds() / 86400))
    if ingest:
        estimates.append(ingest * 86400 * per_sample)
    growth = max(estimates) if estimates else None
    if disk is None:
        notes.append("no node exporter filesystem series covers the TSDB path")
    if budget and disk and blocks is not None and budget > disk.available_bytes + blocks:
        notes.append("the budget is larger than free disk plus what Prometheus uses now")
    days, to_set = sizing(growth, budget)
    if budget is None:
        notes.append("no disk budget: set prometheus.disk_budget or pass --budget")
    time_kept, size_kept = effective_retention(runtime, flags)
    return PromRetention(
        retention_time=time_kept,
        retention_size=size_kept,
        retention_source="runtimeinfo" if runtime else "flags",
        flag_retention_time=_unset(flags.get("storage.tsdb.retention.time", "")),
        flag_retention_size=_unset(flags.get("storage.tsdb.retention.size", "")),
        tsdb_path=path,
        head_series=int(head.get("numSeries", 0)),
        head_chunks=int(head.get("chunkCount", 0)),
        blocks_bytes=blocks,
        oldest_sample=oldest,
        samples_per_second=ingest,
        bytes_per_sample=per_sample,
        bytes_per_sample_measured=bool(bps and bps > 0),
        growth_per_day_bytes=growth,
        disk=disk,
        budget_bytes=budget,
        fits_days=days,
        flags_to_set=to_set,
        notes=notes,
    )
