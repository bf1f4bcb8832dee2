"""Rendering: rich tables for people, stable JSON for scripts, diagnostics on stderr."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from opskit.models import to_json

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table

    class FitTableType(Table):
        opskit_kinds: list[str]
        opskit_printed: bool


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
    """stdout for people. A table printed on it is fitted to a terminal, or shown whole
    (its natural width, one line per row, never cut) anywhere else: see `table_mode`."""
    global _console
    if _console is None:
        from rich.console import Console

        class OpskitConsole(Console):
            opskit_whole_tables = True  # FitTable: not a terminal, print the table whole

            def print(self, *objects: Any, **kwargs: Any) -> None:
                tables = [o for o in objects if isinstance(o, _fit_table_class())]
                for t in tables:
                    t.opskit_printed = True  # printed itself, not inside another renderable
                if tables:
                    kwargs.setdefault("crop", False)  # a whole table may be wider than COLUMNS
                super().print(*objects, **kwargs)

        _console = OpskitConsole(highlight=False, soft_wrap=False)
    return _console


def print_json(data: Any) -> None:
    sys.stdout.write(
        json.dumps(to_json(data), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"
    )


def warn(message: str) -> None:
    print(f"opskit: warning: {message}", file=sys.stderr)


def table(title: str | None, *columns: str, kinds: Mapping[str, str] | None = None) -> Table:
    """A table for people: `columns` by name (a `#` suffix right-justifies; numbers, sizes
    and times in ms are right-justified anyway). Each column has a kind (`column_kind`,
    or `kinds` by name) that decides how it gives way on a terminal too narrow for the
    table: see `fit_widths`."""
    t = _fit_table_class()(
        title=title, title_justify="left", header_style="bold", box=None, pad_edge=False
    )
    for col in columns:
        t.add_column(col.rstrip("#"), justify="right" if col.endswith(_NUM_SUFFIXES) else "left")
        kind = (kinds or {}).get(col) or column_kind(col)
        if kind not in KINDS:
            raise ValueError(f"column {col!r}: unknown kind {kind!r}")
        t.opskit_kinds.append(kind)
    return t


# Column kinds, for fitting a table to a narrow terminal (`fit_widths`):
#   key    identifiers (job, instance, index, alertname, service): give way last
#   text   free text (labels, summaries, URLs, messages): give way first
#   error  an error message: its class first (`errorclass.headline`) when the table is
#          too wide, then it gives way after the free text, keeping room for the class
#   short  short values (state, health, dates): after the free text, before the keys
#   num    numbers (right-justified): as short
#   id     an ID to paste into another command (trace id, silence id): cut only when
#          nothing else can give any more
# A column a command sets to overflow="fold" keeps folding onto more lines (config show).
KINDS = ("key", "text", "error", "short", "num", "id")
_NUM_SUFFIXES = ("#", "ms", "%", "size", "docs", "value")
_KEY_NAMES = frozenset(
    {"job", "instance", "index", "alertname", "service", "name", "node", "queue", "series"}
    | {"key", "task", "rule", "group", "snapshot", "source", "title"}
    | {"operation", "cadence", "level"}
)
_TEXT_NAMES = frozenset(
    {"labels", "summary", "matchers", "comment", "detail", "message", "finding", "url"}
    | {"link", "mapping", "description", "counts", "created by", "last copy of", "from"}
    | {"schedule", "matched", "roles", "complete"}
)
_TEXT_MIN = 10  # a free-text column keeps at least this much (or its natural width)
_ERROR_MIN = 20  # an error column keeps room for its class ("connection refused")
_KEY_MIN = 12  # an identifier keeps this much before every column shares what is left
_LONG = 30  # a `short` column whose values are this wide gives way as free text


def column_kind(name: str) -> str:
    """The kind `table()` gives a column from its name."""
    bare = name.rstrip("#")
    if bare in ("id", "trace id"):
        return "id"
    if "error" in bare:
        return "error"
    if name.endswith(_NUM_SUFFIXES):
        return "num"
    if bare in _TEXT_NAMES or "url" in bare:
        return "text"
    if bare in _KEY_NAMES:
        return "key"
    return "short"


class Brief(str):
    """A cell (rich markup, like any string given to `add_row`) with a shorter form that a
    table on a terminal too narrow for it shows instead: `Brief(f"{url}: {error}",
    headline(error))`. Anywhere else it is its full self."""

    brief: str

    def __new__(cls, full: str, brief: str) -> Brief:
        cell = super().__new__(cls, full)
        cell.brief = brief
        return cell


def stamp(at: datetime | None) -> str:
    """A local date and time for a table cell; on a narrow terminal, the time alone when
    it is today."""
    if at is None:
        return "-"
    local = at.astimezone()
    full = local.strftime("%Y-%m-%d %H:%M:%S")
    today = local.date() == datetime.now(local.tzinfo).date()
    return Brief(full, local.strftime("%H:%M:%S")) if today else full


def table_mode(console: Console, options: ConsoleOptions) -> str:
    """How a table made by `table()` is printed:
    - "fit": on a terminal (rich's view of stdout: a tty, or TTY_COMPATIBLE=1 or
      FORCE_COLOR), unless OPSKIT_WIDE=1: one line per row in the terminal's width;
    - "whole": on opskit's stdout console anywhere else (a pipe, a file, cron, whatever
      COLUMNS says) or with OPSKIT_WIDE=1: one line per row at the table's natural width,
      nothing cut, so `grep`, `awk` and a cron mail get every character;
    - "rich": another console, or a table inside another renderable (rich's own layout)."""
    import os

    wide = os.environ.get("OPSKIT_WIDE", "") not in ("", "0")
    if options.is_terminal and not wide:
        return "fit"
    return "whole" if getattr(console, "opskit_whole_tables", False) else "rich"


def fit_widths(natural: list[int], kinds: list[str], floors: list[int], room: int) -> list[int]:
    """Content widths for columns of `natural` widths in `room` cells: free text gives way
    first (down to _TEXT_MIN), then errors (down to _ERROR_MIN), then short values and
    numbers (down to `floors`: their widest value, so only a long header is cut), then
    identifiers (down to _KEY_MIN), then all but IDs down to 3 cells, then all down to 1.
    Within a step the widest column gives way first."""
    widths = list(natural)
    excess = sum(widths) - room
    steps: list[tuple[set[str], list[int]]] = [
        ({"text"}, [min(n, _TEXT_MIN) for n in natural]),
        ({"error"}, [min(n, _ERROR_MIN) for n in natural]),
        ({"short", "num"}, [min(n, f) for n, f in zip(natural, floors, strict=True)]),
        ({"key"}, [min(n, _KEY_MIN) for n in natural]),
        (set(KINDS) - {"id"}, [min(n, 3) for n in natural]),
        (set(KINDS), [1] * len(natural)),
    ]
    for which, floor in steps:
        if excess <= 0:
            break
        mins = {i: floor[i] for i, k in enumerate(kinds) if k in which}
        while excess > 0:
            give = [i for i in mins if widths[i] > mins[i]]
            if not give:
                break
            top = max(widths[i] for i in give)
            widest = [i for i in give if widths[i] == top]
            # down to the next widest (or its floor) in one go, the excess shared out
            below = max([widths[i] for i in give if widths[i] < top] + [mins[i] for i in widest])
            each = min(top - below, -(-excess // len(widest)))
            for i in reversed(widest):
                cut = min(each, excess)
                widths[i] -= cut
                excess -= cut
    return widths


_fit_class: type[FitTableType] | None = None
_WHOLE = 1_000_000  # "no limit" for a table shown whole
_FOLD = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


def _fit_table_class() -> type[FitTableType]:
    """rich's Table, fitted to a narrow terminal when printed there (rich is imported only
    when a table is made, so `--json` never pays for it)."""
    global _fit_class
    if _fit_class is not None:
        return _fit_class
    from rich.table import Table

    class FitTable(Table):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.opskit_kinds: list[str] = []
            self.opskit_printed = False

        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            mode = table_mode(console, options) if self.columns else "rich"
            if mode == "rich" or (mode == "whole" and not self.opskit_printed):
                yield from super().__rich_console__(console, options)
            else:
                yield from _fitted(self, console, options, whole=mode == "whole")

    _fit_class = cast("type[FitTableType]", FitTable)
    return _fit_class


def _fitted(
    table: Any, console: Console, options: ConsoleOptions, whole: bool = False
) -> RenderResult:
    """`table` with one line per row (newlines folded) in `options.max_width`: cells cut
    with an ellipsis, errors by their class when the full text does not fit; `whole`: at
    its natural width, nothing cut."""
    if whole:
        options = options.update_width(_WHOLE)
    from copy import copy

    from rich.measure import Measurement
    from rich.style import Style
    from rich.table import Table
    from rich.text import Text

    from opskit.errorclass import headline

    kinds: list[str] = list(table.opskit_kinds) + ["short"] * len(table.columns)
    wide = options.update_width(_WHOLE)

    def as_text(cell: Any, short: bool, kind: str) -> Any:
        if isinstance(cell, str):
            markup = cell.brief if short and isinstance(cell, Brief) else cell
            text = console.render_str(markup, highlight=False)
        elif isinstance(cell, Text):
            text = cell.copy()
        else:
            return cell  # another renderable: measured and cut by rich
        text.plain = text.plain.replace("\r\n", "  ").translate(_FOLD)
        if short and kind == "error" and text.plain.strip():
            line = headline(text.plain)
            if line != text.plain:
                first = text.spans[0].style if text.spans else text.style
                text = Text(line, style=first)
        return text

    def width_of(cell: Any) -> int:
        if isinstance(cell, Text):
            return cell.cell_len
        return Measurement.get(console, wide, cell).maximum

    def build(short: bool) -> tuple[list[list[Any]], list[int], list[int]]:
        cells = [
            [as_text(c, short, kinds[i]) for c in column._cells]
            for i, column in enumerate(table.columns)
        ]
        values = [max((width_of(c) for c in col), default=0) for col in cells]
        natural = [
            max(v, width_of(console.render_str(str(column.header))) if column.header else 0)
            for v, column in zip(values, table.columns, strict=True)
        ]
        return cells, values, natural

    def room_for(columns: int) -> int:
        """The cells left for content in `columns` columns (no box: padding only)."""
        _, right, _, left = table.padding
        pad = int(left) + int(right)
        edges = 0 if table.pad_edge else pad
        return max(options.max_width - int(table._extra_width) - pad * columns + edges, columns)

    count = len(table.columns)
    cells, values, natural = build(short=False)
    if sum(natural) > room_for(count) and (
        "error" in kinds[:count]
        or any(isinstance(c, Brief) for col in table.columns for c in col._cells)
    ):
        cells, values, natural = build(short=True)
    keep = list(range(count))
    if sum(natural) > room_for(count) and table.row_count:
        keep = [i for i in keep if values[i] > 0] or keep  # a column with nothing in it goes
    column_kinds = ["wrap" if table.columns[i].overflow == "fold" else kinds[i] for i in keep]
    shrink_kinds = [
        "text" if k == "wrap" or (k == "short" and values[i] >= _LONG) else k
        for k, i in zip(column_kinds, keep, strict=True)
    ]
    widths = fit_widths(
        [natural[i] for i in keep],
        shrink_kinds,
        [max(values[i], 3) for i in keep],
        room_for(len(keep)),
    )

    fitted = copy(table)
    fitted.__class__ = Table  # rendered by rich as it is, not fitted again
    fitted.title = None
    fitted.columns = []
    for n, (i, width, kind) in enumerate(zip(keep, widths, column_kinds, strict=True)):
        col = copy(table.columns[i])
        col._index, col._cells = n, cells[i]
        col.width, col.min_width, col.max_width = width, None, None
        col.no_wrap, col.overflow = (False, "fold") if kind == "wrap" else (True, "ellipsis")
        fitted.columns.append(col)
    if table.title:
        title = (
            console.render_str(table.title, highlight=False)
            if isinstance(table.title, str)
            else table.title.copy()
        )
        title.stylize(Style.pick_first(table.title_style, "table.title") or "", 0)
        title.no_wrap, title.overflow, title.justify = True, "ellipsis", table.title_justify
        yield from console.render(
            title, options.update_width(min(title.cell_len, options.max_width))
        )
    yield from Table.__rich_console__(fitted, console, options)


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
