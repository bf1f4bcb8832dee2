"""Widgets shared by the screens: a keyed, diffing table; a source banner; sparklines;
history plots (textual-plotext)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from opskit.live import Point, SourceState

BLOCKS = "▁▂▃▄▅▆▇█"
Cell = str | Text
Row = tuple[str, Sequence[Cell]]
REBUILD_SHARE = 0.3  # above this share of changed rows, rebuild instead of cell updates


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


class KeyedTable(DataTable[Cell]):
    """Rows keyed by stable ids (scrape URL + job, fingerprint, index name), updated in
    place: changed cells only, stale rows removed, a rebuild only when the order changes.
    The cursor stays on the same row."""

    def __init__(self, *columns: str, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._columns = columns
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for col in self._columns:
            self.add_column(col, key=col)

    @property
    def keys(self) -> list[str]:
        return list(self._order)

    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    def sync(self, rows: Sequence[Row]) -> None:
        order = [key for key, _ in rows]
        if order != self._order:
            self._rebuild(rows)
            return
        changed = [
            (key, tuple(cells)) for key, cells in rows if self._cells.get(key) != tuple(cells)
        ]
        if len(changed) > REBUILD_SHARE * len(rows) and len(changed) > 50:
            self._rebuild(rows)  # one batch beats thousands of cell updates
            return
        with self.app.batch_update():
            for key, new in changed:
                old = self._cells[key]
                for col, a, b in zip(self._columns, old, new, strict=True):
                    if a != b:
                        self.update_cell(key, col, b)
                self._cells[key] = new

    def _rebuild(self, rows: Sequence[Row]) -> None:
        current = self.selected_key()
        with self.app.batch_update():
            self.clear()
            self._cells = {}
            self._order = []
            for key, cells in rows:
                self.add_row(*cells, key=key)
                self._cells[key] = tuple(cells)
                self._order.append(key)
            if current in self._cells:
                self.move_cursor(row=self._order.index(current), animate=False)


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
