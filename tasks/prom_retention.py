"""Prometheus retention sizing. Retention is a start-up flag, so this reports rather than
changes: current flags, TSDB stats, disk use and growth, and the retention time that fits
a disk budget (`sizing` is pure).

VictoriaMetrics (`gather` on a client whose flavor is "victoriametrics") is read from its
own /metrics instead: `flag{name="retentionPeriod"}`, `vm_data_size_bytes`, `vm_rows`,
`vm_free_disk_space_bytes{path}` and `vm_rows_added_to_storage_total`
(app/vmstorage/main.go, lib/httpserver/metrics.go at v1.79.5), and the advice is its one
flag, `-retentionPeriod`."""

from __future__ import annotations

import asyncio
import math
import re
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
    flavor: str = "prometheus"  # or "victoriametrics" (its -retentionPeriod, no size limit)


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
    if await prom.flavor() == "victoriametrics":
        return await gather_vm(prom, budget)
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


# VictoriaMetrics -----------------------------------------------------------------------

# lib/flagutil/duration.go (v1.79.5): a -retentionPeriod without a suffix is in months of
# 31 days (msecsPerMonth); the suffixes are h, d, w, y (metricsql: y = 365d); "1" is the
# default (app/vmstorage/main.go; README "Retention": "The default retention period is one
# month").
VM_DEFAULT_RETENTION = "1"
VM_MONTH_DAYS = 31
_VM_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
# no bytes-per-sample figure in VictoriaMetrics' docs: assume Prometheus' upper figure
# until the storage's own size and row counts give one
VM_DEFAULT_BYTES_PER_SAMPLE = DEFAULT_BYTES_PER_SAMPLE
VM_MEASURE_ROWS = 100_000
# lib/flagutil/duration.go: at most 100 years (maxMonths = 12 * 100)
VM_MAX_DAYS = 100 * 365
Q_VM_INGEST = "sum(rate(vm_rows_added_to_storage_total[1h]))"


def vm_retention_days(value: str) -> float:
    """Days of a -retentionPeriod value: "90d" 90, "1" (months) 31, "2w" 14, "1y" 365."""
    text = value.strip().lower()
    try:
        return float(text) * VM_MONTH_DAYS
    except ValueError:
        pass
    total = 0.0
    rest = text
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text):
        total += float(number) * _VM_UNITS[unit]
        rest = rest.replace(f"{number}{unit}", "", 1)
    if not total or rest.strip():
        raise ValueError(f"bad -retentionPeriod {value!r}")
    return total / 86400


def vm_sizing(growth_per_day: float | None, budget: int | None) -> tuple[int | None, list[str]]:
    """Whole days of -retentionPeriod that fit USABLE_FRACTION of the budget (VictoriaMetrics
    asks for 20% free space: README "Capacity planning"). It drops data by monthly
    partitions, so the disk holds up to retentionPeriod + 1 month (README "Retention"):
    a month of growth is kept back."""
    if not budget or not growth_per_day or growth_per_day <= 0:
        return None, []
    usable_days = budget * USABLE_FRACTION / growth_per_day
    days = min(max(int(usable_days) - VM_MONTH_DAYS, 1), VM_MAX_DAYS)
    return days, [f"-retentionPeriod={days}d"]


def _sum(samples: list[tuple[str, dict[str, str], float]], name: str, prefix: str = "") -> float:
    return sum(
        v for n, labels, v in samples if n == name and labels.get("type", "").startswith(prefix)
    )


async def gather_vm(prom: PrometheusClient, budget: int | None) -> PromRetention:
    """VictoriaMetrics' retention, storage size, growth and what fits `budget`."""
    samples, series, ingest_rate = await asyncio.gather(
        prom.vm_metrics(), _vm_series(prom), _scalar(prom, Q_VM_INGEST)
    )
    from opskit.clients.prometheus import vm_flags

    flags = vm_flags(samples)
    raw, is_set = flags.get("retentionPeriod", (VM_DEFAULT_RETENTION, False))
    notes: list[str] = []
    try:
        kept = f"{vm_retention_days(raw):g}d"
    except ValueError:
        kept = raw
        notes.append(f"cannot read -retentionPeriod={raw!r}")
    path = flags.get("storageDataPath", ("", False))[0]
    total = _sum(samples, "vm_data_size_bytes")
    stored = _sum(samples, "vm_data_size_bytes", "storage/")
    rows = _sum(samples, "vm_rows", "storage/")
    # a few rows' bytes are mostly part headers: measure once there is enough data
    measured = stored > 0 and rows >= VM_MEASURE_ROWS
    per_sample = stored / rows if measured else VM_DEFAULT_BYTES_PER_SAMPLE
    ingest = ingest_rate
    if ingest is None:  # not scraped into itself: the average since it started
        added = _sum(samples, "vm_rows_added_to_storage_total")
        uptime = _sum(samples, "vm_app_uptime_seconds")
        ingest = added / uptime if uptime > 0 else None
        if ingest is not None:
            notes.append(
                "ingestion is the average since VictoriaMetrics started "
                "(vm_rows_added_to_storage_total is not stored in it to take a rate of)"
            )
    growth = ingest * 86400 * per_sample if ingest else None
    free = [v for n, labels, v in samples if n == "vm_free_disk_space_bytes"]
    disk = Disk(path, "", free[0]) if free else None
    if disk is None:
        notes.append("VictoriaMetrics' /metrics has no vm_free_disk_space_bytes")
    if budget and disk and budget > disk.available_bytes + total:
        notes.append("the budget is larger than free disk plus what VictoriaMetrics uses now")
    days, to_set = vm_sizing(growth, budget)
    if budget is None:
        notes.append("no disk budget: set prometheus.disk_budget or pass --budget")
    notes.append(
        "VictoriaMetrics drops data by monthly partitions: the disk holds up to "
        "-retentionPeriod + 1 month; it has no size limit"
    )
    return PromRetention(
        retention_time=kept,
        retention_size="",
        retention_source="victoriametrics /metrics flag retentionPeriod",
        flag_retention_time=raw if is_set else "",
        flag_retention_size="",
        tsdb_path=path,
        head_series=series,
        head_chunks=0,
        blocks_bytes=total,
        oldest_sample=None,
        samples_per_second=ingest,
        bytes_per_sample=per_sample,
        bytes_per_sample_measured=measured,
        growth_per_day_bytes=growth,
        disk=disk,
        budget_bytes=budget,
        fits_days=days,
        flags_to_set=to_set,
        notes=notes,
        flavor="victoriametrics",
    )


async def _vm_series(prom: PrometheusClient) -> int:
    try:
        return (await prom.tsdb_status(1)).head_series
    except BackendError:
        return 0
