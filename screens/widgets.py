"""Widgets shared by the screens: a keyed, diffing table; a source banner; sparklines;
history plots (textual-plotext)."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static
from textual_plotext import PlotextPlot

from opskit.live import Point, SourceState

BLOCKS = "▁▂▃▄▅▆▇█"
Cell = str | Text
Row = tuple[str, Sequence[Cell]]


def sparkline(values: Iterable[float], width: int = 20) -> str:
    """All of `values` (the last hour) in `width` characters: more values than that are
    grouped, oldest first, each character showing its group's highest value (a spike
    stays visible)."""
    data = downsample([v for v in values if not math.isnan(v)], width)
    if not data:
        return ""
    lo, hi = min(data), max(data)
    span = (hi - lo) or 1.0
    return "".join(
        BLOCKS[min(int((v - lo) / span * (len(BLOCKS) - 1)), len(BLOCKS) - 1)] for v in data
    )


def downsample(data: Sequence[float], width: int) -> list[float]:
    if len(data) <= width:
        return list(data)
    n = len(data)
    return [max(data[i * n // width : (i + 1) * n // width]) for i in range(width)]


def trend(values: Sequence[float]) -> str:
    data = [v for v in values if not math.isnan(v)]
    if len(data) < 2:
        return "·"
    if data[-1] > data[0]:
        return "↑"
    return "↓" if data[-1] < data[0] else "→"


class KeyedTable(ScrollView, can_focus=True):
    """A virtual table of rows keyed by stable ids (scrape URL + job, fingerprint, index
    name): it keeps the rows' order and records, and builds cells (`cells(record)`) only
    for the rows on screen whose record changed (cached by key, compared with `==`), so a
    refresh of 10,000 rows with one changed costs a list comparison and at most one row's
    cells. Column widths are the widest cell built so far (grow-only, cheap `cell_len`).
    The cursor stays on the same key across refreshes. Posts `RowHighlighted` and
    `RowSelected` under DataTable's handler names (`on_data_table_row_highlighted`...)."""

    DEFAULT_CSS = """
    KeyedTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .datatable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .datatable--header { background-tint: $foreground 5%; }
        }
        &:dark > .datatable--even-row { background: $surface-darken-1 40%; }
        & > .datatable--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .datatable--header { background: ansi_bright_blue; color: ansi_default; }
        & > .datatable--odd-row { }
        & > .datatable--even-row { background: $surface-lighten-1 50%; }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "datatable--header",
        "datatable--cursor",
        "datatable--even-row",
        "datatable--odd-row",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+home,home", "cursor_top", "Top", show=False),
        Binding("ctrl+end,end", "cursor_bottom", "Bottom", show=False),
    ]
    CELLS_TTL = 30.0  # seconds a row's built cells are kept (relative times stay fresh)
    CACHE_SLACK = 2  # rows' cells kept: this many screens' worth around the visible ones

    class _RowMessage(Message, namespace="data_table"):
        def __init__(self, table: KeyedTable, cursor_row: int, row_key: str) -> None:
            super().__init__()
            self.data_table = table
            self.cursor_row = cursor_row
            self.row_key = row_key

        @property
        def control(self) -> KeyedTable:
            return self.data_table

    class RowHighlighted(_RowMessage, namespace="data_table"):
        """The cursor moved to another row (or another key is under it)."""

    class RowSelected(_RowMessage, namespace="data_table"):
        """Enter (or a click on the cursor's row) on a row."""

    def __init__(self, *columns: str, id: str | None = None, zebra_stripes: bool = True) -> None:
        super().__init__(id=id)
        self._columns = columns
        self.zebra_stripes = zebra_stripes
        self._order: list[str] = []
        self._records: list[Any] = []
        self._cells_of: Callable[[Any], Sequence[Cell]] = _as_cells
        self._index: dict[str, int] | None = None  # key -> row, built when asked
        # key -> (record, cells, built at, serial): rows on screen (and a few around them)
        self._built: dict[str, tuple[Any, tuple[Text, ...], float, int]] = {}
        self._widths = [cell_len(c) for c in columns]
        self._strips: dict[tuple[Any, ...], Strip] = {}
        self._cursor = 0
        self._highlighted: str | None = None
        self.cells_built = 0  # rows whose cells were built (tests count it)

    # -- the surface screens and tests use
    @property
    def keys(self) -> list[str]:
        return list(self._order)

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def selected_key(self) -> str | None:
        if not self._order or not 0 <= self._cursor < len(self._order):
            return None
        return self._order[self._cursor]

    def selected_record(self) -> Any:
        """The record (as given to `show`) under the cursor, or None: no lookup."""
        if not self._order or not 0 <= self._cursor < len(self._order):
            return None
        return self._records[self._cursor]

    def get_row(self, key: str) -> list[Cell]:
        return list(self._cells(self.index_of(key)))

    def get_row_at(self, row: int) -> list[Cell]:
        return list(self._cells(row))

    def index_of(self, key: str) -> int:
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self._order)}
        return self._index[key]

    def sync(self, rows: Sequence[Row]) -> None:
        """Rows as (key, cells), in order: for small tables that build their cells."""
        self.show([(key, tuple(cells)) for key, cells in rows], _as_cells)

    def show(self, rows: Sequence[tuple[str, Any]], cells: Callable[[Any], Sequence[Cell]]) -> bool:
        """Rows as (key, record), in order; `cells(record)` builds a row's cells, called
        only for rows on screen whose record differs (`!=`) from the one last built. True
        when anything shown changed."""
        return self.show_rows([k for k, _ in rows], [r for _, r in rows], cells)

    def show_rows(
        self, order: list[str], records: list[Any], cells: Callable[[Any], Sequence[Cell]]
    ) -> bool:
        """`show` with the keys and the records in two lists of the same length (the
        table keeps both lists as they are: the caller must not change them)."""
        if cells != self._cells_of:  # a bound method is a new object on each access
            self._cells_of = cells
            self._built.clear()
        same_order = order == self._order
        current = self.selected_key()
        self._records = records
        if not same_order:
            self._order = order
            self._index = None
        if not same_order and current is not None:
            index = self._index_or_none(current)
            self._cursor = index if index is not None else min(self._cursor, len(order) - 1)
        self._cursor = max(0, min(self._cursor, len(order) - 1))
        if not same_order:
            self._drop_unshown()
            self._resize()
        changed = self._refresh_shown(force=not same_order)
        self._highlight()
        return changed or not same_order

    def invalidate(self) -> None:
        """Forget built cells: the next render builds the rows on screen again (their
        cells depend on more than the record, e.g. a mark or a grouping)."""
        self._built.clear()
        self._strips.clear()
        if self.is_mounted:
            self.refresh()

    def move_cursor(self, *, row: int | None = None, animate: bool = False,
                    scroll: bool = True) -> None:  # fmt: skip
        if row is None or not self._order:
            return
        row = max(0, min(row, len(self._order) - 1))
        if row != self._cursor:
            self._cursor = row
            self.refresh()
        if scroll:
            self._scroll_to_cursor()
        self._highlight()

    # -- actions
    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - self._page())

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + self._page())

    def action_cursor_top(self) -> None:
        self.move_cursor(row=0)

    def action_cursor_bottom(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def action_select_cursor(self) -> None:
        key = self.selected_key()
        if key is not None:
            self.post_message(self.RowSelected(self, self._cursor, key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._order):
            if row == self._cursor:
                self.action_select_cursor()
            else:
                self.move_cursor(row=row)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self._strips.clear()
        self._resize()
        self._refresh_shown(force=True)

    def on_mount(self) -> None:
        self._resize()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._drop_unshown()

    # -- rendering
    _base_style: Style | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        self._base_style = self.rich_style  # once per paint, not once per line
        try:
            return super().render_lines(crop)
        finally:
            self._base_style = None

    @property
    def base_style(self) -> Style:
        return self._base_style if self._base_style is not None else self.rich_style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            header = tuple(Text(c) for c in self._columns)
            strip = self._strip(("header", self.has_focus), header, "datatable--header")
        else:
            row = int(self.scroll_y) + y - 1
            if row >= len(self._order):
                return Strip.blank(width, self.base_style)
            key = self._order[row]
            cells = self._cells(row)
            serial = self._built[key][3]
            if row == self._cursor:
                part = "datatable--cursor"
            elif self.zebra_stripes:
                part = "datatable--odd-row" if row % 2 else "datatable--even-row"
            else:
                part = ""
            strip = self._strip((key, serial, part, self.has_focus), cells, part)
        return strip.crop_extend(scroll_x, scroll_x + width, self.base_style)

    def _strip(self, cache_key: tuple[Any, ...], cells: Sequence[Text], part: str) -> Strip:
        full = max(self.virtual_size.width, self.scrollable_content_region.width, 1)
        widths = self.display_widths()
        cache_key = (*cache_key, widths, full)
        found = self._strips.get(cache_key)
        if found is not None:
            return found
        line = Text(no_wrap=True, end="")
        for width, cell in zip(widths, cells, strict=False):
            line.append(" ")
            piece = cell.copy()
            piece.truncate(width, overflow="ellipsis", pad=True)
            line.append_text(piece)
            line.append(" ")
        base = self.base_style
        style = base + self.get_component_rich_style(part) if part else base
        segments = list(line.render(self.app.console))
        if part == "datatable--cursor":
            strip = Strip(Segment.apply_style(segments, style, post_style=style))
        else:
            strip = Strip(Segment.apply_style(segments, style))
        strip = strip.extend_cell_length(full, style)
        if len(self._strips) > 4 * max(self.size.height, 1) * (self.CACHE_SLACK + 2):
            self._strips.clear()
        self._strips[cache_key] = strip
        return strip

    def _cells(self, row: int) -> tuple[Text, ...]:
        """The row's cells (built when its record changed or they grew old)."""
        key, record = self._order[row], self._records[row]
        found = self._built.get(key)
        now = time.monotonic()
        if found is not None and found[2] > now - self.CELLS_TTL and found[0] == record:
            return found[1]
        built = tuple(_text(c) for c in self._cells_of(record))
        self.cells_built += 1
        self._built[key] = (record, built, now, self.cells_built)
        grew = False
        for i, cell in enumerate(built[: len(self._widths)]):
            if cell.cell_len > self._widths[i]:
                self._widths[i] = cell.cell_len
                grew = True
        if grew:
            self._strips.clear()
            self._resize()
        return built

    def _shown_rows(self) -> range:
        top = int(self.scroll_y)
        height = max(self.scrollable_content_region.height - 1, 0)
        return range(top, min(top + height, len(self._order)))

    def _refresh_shown(self, force: bool) -> bool:
        """Build the cells of the rows on screen whose record changed; repaint if any
        did (or `force`)."""
        if not self.is_mounted:
            return False
        changed = force
        old = time.monotonic() - self.CELLS_TTL
        for row in self._shown_rows():
            found = self._built.get(self._order[row])
            if found is None or found[2] <= old or found[0] != self._records[row]:
                changed = True
                self._cells(row)
        if changed:
            self.refresh()
        return changed

    def _drop_unshown(self) -> None:
        """Keep the built cells of the rows around the screen only (memory)."""
        limit = max(self.size.height, 10) * (2 * self.CACHE_SLACK + 1)
        if len(self._built) <= limit:
            return
        shown = self._shown_rows()
        lo = max(0, shown.start - self.CACHE_SLACK * len(shown))
        keep = set(self._order[lo : shown.stop + self.CACHE_SLACK * len(shown)])
        self._built = {k: v for k, v in self._built.items() if k in keep}

    def display_widths(self) -> tuple[int, ...]:
        """The columns' widths on screen: as wide as their widest cell while the table
        fits its width; when it does not, the widest columns give way first (down to
        MIN_COLUMN cells or their header), cut with an ellipsis, so every column stays
        in view on a narrow terminal instead of scrolling off the right edge."""
        room = self.scrollable_content_region.width if self.is_mounted else 0
        return fit_columns(tuple(self._widths), room, tuple(self._columns))

    def _resize(self) -> None:
        width = sum(self.display_widths()) + 2 * len(self._widths)
        size = Size(width, len(self._order) + 1)
        if size != self.virtual_size:
            grew_taller = size.height != self.virtual_size.height
            self.virtual_size = size
            if grew_taller and self.styles.height is not None and self.styles.height.is_auto:
                self.refresh(layout=True)  # `height: auto` follows the row count

    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 2, 1)

    def _index_or_none(self, key: str) -> int | None:
        try:
            return self.index_of(key)
        except KeyError:
            return None

    def _scroll_to_cursor(self) -> None:
        height = max(self.scrollable_content_region.height - 1, 1)
        top = int(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + height:
            self.scroll_to(y=self._cursor - height + 1, animate=False, immediate=True)

    def _highlight(self) -> None:
        key = self.selected_key()
        if key is not None and key != self._highlighted and self.is_mounted:
            self._highlighted = key
            self.post_message(self.RowHighlighted(self, self._cursor, key))
        elif key is None:
            self._highlighted = None


MIN_COLUMN = 8  # a column narrowed to fit the screen keeps at least this many cells
MIN_TEXT = 18  # a free-text column keeps room for an error class ("connection refused")
MIN_KEY = 10  # other columns give way down to this before free text goes below MIN_TEXT
# columns of free text (by header): they give way first when a table is too wide
TEXT_COLUMNS = frozenset(
    {"last error", "error", "summary", "labels", "url", "comment", "matchers", "message"}
)


@functools.lru_cache(maxsize=256)
def fit_columns(natural: tuple[int, ...], room: int, headers: tuple[str, ...]) -> tuple[int, ...]:
    """Column widths that fit `room` cells (each column padded by one cell either side).
    The widest columns give way first, level with each other, in stages: free text
    (TEXT_COLUMNS) down to MIN_TEXT, the others down to MIN_KEY, free text down to
    MIN_COLUMN, then any column down to its header or MIN_COLUMN. `room` 0 (not laid
    out yet): as they are."""
    budget = room - 2 * len(natural)
    if room <= 0 or sum(natural) <= budget:
        return natural
    text = [h.lower() in TEXT_COLUMNS for h in headers]
    widths = list(natural)
    excess = sum(widths) - budget
    Floor = Callable[[int, str, bool], int]  # (natural width, header, free text) -> floor
    stages: tuple[Floor, ...] = (  # each stage's floors, applied in turn until it fits
        lambda n, h, t: min(n, MIN_TEXT) if t else n,
        lambda n, h, t: n if t else min(n, MIN_KEY),
        lambda n, h, t: min(n, MIN_COLUMN) if t else min(n, MIN_KEY),
        lambda n, h, t: min(n, max(min(MIN_COLUMN, len(h)), 3)),
    )
    for floor_of in stages:
        floor = [floor_of(n, h, t) for n, h, t in zip(natural, headers, text, strict=True)]
        excess = _level(widths, floor, excess)
        if excess <= 0:
            break
    return tuple(widths)


def _level(widths: list[int], floor: list[int], excess: int) -> int:
    """Narrow the widest of `widths` (in place) level with each other, each down to its
    `floor`, until `excess` cells are gone or none can give; the excess left."""
    while excess > 0:
        shrinkable = [i for i, w in enumerate(widths) if w > floor[i]]
        if not shrinkable:
            break
        top = max(widths[i] for i in shrinkable)
        widest = [i for i in shrinkable if widths[i] == top]
        below = max([widths[i] for i in shrinkable if widths[i] < top] + [0])
        step = max(1, min(top - below, -(-excess // len(widest))))
        for i in widest:
            cut = min(step, widths[i] - floor[i], excess)
            widths[i] -= cut
            excess -= cut
            if excess <= 0:
                break
    return excess


def _as_cells(record: Any) -> Sequence[Cell]:
    return cast(Sequence[Cell], record)


def _text(cell: Cell) -> Text:
    """One line of a cell: a Text (a plain string as is, never parsed as markup)."""
    text = cell if isinstance(cell, Text) else Text(str(cell))
    if "\n" in text.plain:
        text = Text(" ").join(text.split("\n"))
    return text


class SourceBanner(Static):
    """'unreachable since HH:MM:SS: reason' for the sources a panel shows; hidden when ok."""

    DEFAULT_CSS = """
    SourceBanner { background: $error 30%; color: $text; padding: 0 1; display: none; }
    SourceBanner.-shown { display: block; }
    """

    def show_sources(self, sources: Iterable[SourceState]) -> None:
        lines = [s.banner() for s in sources if s.error]
        self.update("\n".join(lines))
        self.set_class(bool(lines), "-shown")


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to just above `top`."""
    if not top > 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    n = math.floor(top / step) + 1
    return [round(i * step, 10) for i in range(n + 1)]


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    points: Sequence[Point]  # (unix time, value)
    color: str


@dataclass(frozen=True, slots=True)
class Threshold:
    label: str
    value: float
    color: str


class HistoryPlot(PlotextPlot):
    """Lines over a window (the last hour unless `span` minutes are given; x: minutes
    before the newest point) with horizontal threshold lines; `note` stands in for the
    plot when there is nothing to draw."""

    DEFAULT_CSS = """
    HistoryPlot { height: 1fr; width: 1fr; }
    """

    def show(
        self,
        title: str,
        lines: Sequence[Line],
        thresholds: Sequence[Threshold] = (),
        note: str = "",
        span: float = 60.0,
    ) -> None:
        plt = self.plt
        plt.clear_figure()
        drawn = [line for line in lines if line.points]
        newest = max((line.points[-1][0] for line in drawn), default=0.0)
        plt.title(title if drawn else f"{title}: {note or 'no data'}")
        plt.xlabel("minutes ago")
        values: list[float] = []
        for line in drawn:
            xs = [(t - newest) / 60 for t, _ in line.points]
            ys = [v for _, v in line.points]
            values.extend(ys)
            plt.plot(xs, ys, marker="braille", color=line.color, label=line.label)
        if drawn:
            for th in thresholds:  # a line, not hline: it gets a legend entry
                plt.plot(
                    [-span, 0],
                    [th.value, th.value],
                    marker="braille",
                    color=th.color,
                    label=th.label,
                )
                values.append(th.value)
            # a threshold above the data still shows, and the axis starts at zero
            ticks = nice_ticks(max(values))
            plt.ylim(min(0.0, *values), ticks[-1])
            plt.yticks(ticks, [f"{t:g}" for t in ticks])
            plt.xlim(-span, 0)
            ticks_x = [-span * k / 4 for k in (4, 3, 2, 1)] + [0.0]
            plt.xticks(ticks_x, [f"{x:g}" for x in ticks_x])
        self.refresh()
