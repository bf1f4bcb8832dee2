"""Rendering: rich tables for people, stable JSON for scripts, diagnostics on stderr."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opskit.models import to_json

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

_console: Console | None = None

STYLE = {
    "ok": "green",
    "warning": "yellow",
    "critical": "bold red",
    "up": "green",
    "down": "bold red",
    "degraded": "yellow",
    "green": "green",
    "yellow": "yellow",
    "red": "bold red",
}


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=False)
    return _console


def print_json(data: Any) -> None:
    sys.stdout.write(
        json.dumps(to_json(data), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"
    )


def warn(message: str) -> None:
    print(f"opskit: warning: {message}", file=sys.stderr)


def table(title: str | None, *columns: str) -> Table:
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold", box=None, pad_edge=False)
    for col in columns:
        justify = "right" if col.endswith(("#", "ms", "%", "size", "docs", "value")) else "left"
        t.add_column(col.rstrip("#"), justify=justify)  # type: ignore[arg-type]
    return t


def styled(value: str) -> str:
    style = STYLE.get(value)
    return f"[{style}]{value}[/]" if style else value


def esc(value: object) -> str:
    from rich.markup import escape

    return escape(str(value))


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}TiB"  # pragma: no cover


def number(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def ago(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "-"
    from opskit.durations import format_duration

    delta = (now or datetime.now(UTC)) - when
    return format_duration(max(delta.total_seconds(), 0)) + " ago"
