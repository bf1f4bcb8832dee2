"""Widgets shared by the screens: a keyed, diffing table; a source banner; sparklines."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.widgets import DataTable, Static

from opskit.live import SourceState

BLOCKS = "▁▂▃▄▅▆▇█"
Cell = str | Text
Row = tuple[str, Sequence[Cell]]
REBUILD_SHARE = 0.3  # above this share of changed rows, rebuild instead of cell updates


def sparkline(values: Iterable[float], width: int = 20) -> str:
    data = [v for v in values if not math.isnan(v)][-width:]
    if not data:
        return ""
    lo, hi = min(data), max(data)
    span = (hi - lo) or 1.0
    return "".join(
        BLOCKS[min(int((v - lo) / span * (len(BLOCKS) - 1)), len(BLOCKS) - 1)] for v in data
    )


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
