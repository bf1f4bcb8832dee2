"""`opskit retention prometheus`: the report (logic in tasks/prom_retention.py)."""

from __future__ import annotations

from opskit.commands.common import App, run
from opskit.errors import EXIT_OK, EXIT_WARNING, UsageError
from opskit.output import console, esc, human_bytes, print_json
from opskit.tasks.prom_retention import PromRetention, gather


def _budget(app: App, given: str | None) -> int | None:
    if given is None:
        configured = app.settings.prometheus.disk_budget
        return int(configured) if configured is not None else None
    from pydantic import ByteSize, TypeAdapter, ValidationError

    try:
        return int(TypeAdapter(ByteSize).validate_python(given))
    except ValidationError:
        raise UsageError(f"--budget: bad size {given!r} (e.g. 50GiB, 200GB)") from None


def retention_line(r: PromRetention) -> str:
    """`time 15d (default: no flag set), size unlimited`: the effective retention, with the
    flags as set beside it. VictoriaMetrics: `90d (-retentionPeriod=90d)`, or
    `31d (-retentionPeriod not set: VictoriaMetrics' default, 1 month)`."""
    if r.flavor == "victoriametrics":
        if r.flag_retention_time:
            return f"{r.retention_time} (-retentionPeriod={r.flag_retention_time})"
        return f"{r.retention_time} (-retentionPeriod not set: VictoriaMetrics' default, 1 month)"

    def part(kind: str, effective: str, flag: str) -> str:
        shown = effective or "unlimited"
        if flag and flag != effective:
            return f"{kind} {shown} (flag {flag})"
        if flag:
            return f"{kind} {shown} (flag)"
        return f"{kind} {shown} (default: flag not set)" if effective else f"{kind} {shown}"

    time_part = part("time", r.retention_time, r.flag_retention_time)
    size_part = part("size", r.retention_size, r.flag_retention_size)
    return f"{time_part}, {size_part}"


def report(app: App, budget_text: str | None, as_json: bool) -> int:
    budget = _budget(app, budget_text)

    async def go() -> PromRetention:
        async with app.stack() as stack:
            return await gather(stack.prometheus, budget)

    r = run(go())
    if as_json:
        print_json(r)
        return EXIT_OK if r.fits_days is not None else EXIT_WARNING
    out = console()
    vm = r.flavor == "victoriametrics"
    if vm:
        out.print(f"victoriametrics retention: {retention_line(r)}; data at {esc(r.tsdb_path)}")
        out.print(f"series today: {r.head_series}")
        out.print(f"storage on disk: {human_bytes(r.blocks_bytes or 0)} (vm_data_size_bytes)")
    else:
        out.print(f"retention: {retention_line(r)}; TSDB at {esc(r.tsdb_path)}")
        out.print(f"head: {r.head_series} series, {r.head_chunks} chunks")
    if r.blocks_bytes is not None and not vm:
        since = f" since {r.oldest_sample:%Y-%m-%d}" if r.oldest_sample else ""
        out.print(f"blocks on disk: {human_bytes(r.blocks_bytes)}{since}")
    if r.samples_per_second is not None:
        how = "measured" if r.bytes_per_sample_measured else "assumed"
        out.print(
            f"ingestion: {r.samples_per_second:.0f} samples/s at {r.bytes_per_sample:.2f} "
            f"bytes/sample ({how})"
        )
    if r.growth_per_day_bytes is not None:
        out.print(f"growth: {human_bytes(r.growth_per_day_bytes)}/day")
    if r.disk is not None:
        out.print(f"free disk on {esc(r.disk.mountpoint)}: {human_bytes(r.disk.available_bytes)}")
    if r.budget_bytes is not None and r.fits_days is not None:
        out.print(f"budget {human_bytes(r.budget_bytes)} fits {r.fits_days} days; set:")
        for flag in r.flags_to_set:
            out.print(f"  {flag}", style="bold")
    for note in r.notes:
        out.print(f"note: {esc(note)}", style="yellow")
    return EXIT_OK if r.fits_days is not None else EXIT_WARNING
