"""`opskit record`: poll the stack headless, as the TUI does, into a recording that
`opskit --replay FILE` opens later (docs/tui.md, "Record and replay"). Never imports
textual, so systemd or cron can run it."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from opskit.commands.common import App, pass_app
from opskit.durations import format_duration, parse_duration
from opskit.errors import UsageError


def duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from exc


@click.command(name="record")
@click.option("--keep", default="48h", show_default=True, help="Delete rows older than this.")
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The recording (default: <XDG state dir>/opskit/recordings/<context>.sqlite).",
)
@click.option(
    "--interval",
    type=float,
    default=None,
    help="Seconds between polls of each source (default: --refresh, then the config).",
)
@click.option("--for", "for_", default=None, help="Stop after this long (e.g. 30m).")
@click.option("--every", default=60, show_default=True, help="Print one progress line per N polls.")
@pass_app
def record(
    app: App, keep: str, path: Path | None, interval: float | None, for_: str | None, every: int
) -> int:
    """Record the live state headless (no TUI) for `opskit --replay FILE`. SIGTERM or
    Ctrl-C stops it cleanly; rows older than --keep are deleted as it goes."""
    from opskit.live import LiveState
    from opskit.record import Recorder, default_file, file_size, record_live

    settings = app.settings
    keep_for = duration(keep, "--keep")
    stop_after = duration(for_, "--for").total_seconds() if for_ else None
    seconds = interval or app.refresh or settings.refresh.total_seconds()
    if seconds <= 0:
        raise UsageError("--interval must be greater than zero")
    if every < 1:
        raise UsageError("--every must be at least 1")
    target = path or default_file(settings.context)
    recorder = Recorder(target, keep_for, context=settings.context, interval=seconds)

    def say(line: str) -> None:
        print(f"opskit record: {line}", file=sys.stderr, flush=True)

    say(
        f"recording {settings.context!r} every {seconds:g}s to {target} "
        f"(keeping {format_duration(keep_for)})"
    )

    def progress(polls: int, state: LiveState) -> None:
        if polls % every:
            return
        failing = [n for n, s in state.sources.items() if s.error is not None]
        now = datetime.now().strftime("%H:%M:%S")
        size = file_size(target) / 1e6
        down = f", failing: {' '.join(failing)}" if failing else ""
        say(f"{now} {polls} polls, {recorder.rows} rows, {size:.1f} MB{down}")

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if stop_after is not None:
            loop.call_later(stop_after, stop.set)
        stack = app.stack()
        try:
            return await record_live(stack, recorder, seconds, stop, progress)
        finally:
            await stack.aclose()

    try:
        rows = asyncio.run(main())
    finally:
        recorder.close()
    say(f"stopped: {rows} rows written to {target}")
    return 0
