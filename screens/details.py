"""Detail panes under a table (targets, indices, services): the full text of the selected
row, and what it takes a request to know (a target's `up` history, an index's shards),
fetched in a worker once per selection change, debounced, and kept a while."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Generic, TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from opskit.errorclass import fit, headline
from opskit.errors import BackendError

V = TypeVar("V")
DEBOUNCE = 0.25  # seconds a selection must stay before its detail is fetched
TTL = 60.0  # seconds a fetched detail is shown without fetching it again
CACHE_SIZE = 64  # selections remembered
EXPANDED_HEIGHT = 2  # fr of the screen body an expanded pane takes (the table keeps 1)


class DetailPane(VerticalScroll):
    """The pane below a table (id `detail`, styled like the alerts' detail): at most 12
    lines, scrollable; Enter on a row expands and focuses it, Enter or Esc gives the
    table back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close_pane", "Back to the table", id="detail_back"),
        Binding("enter", "close_pane", "Back to the table", show=False, id="detail_enter"),
    ]

    def __init__(self, id: str = "detail") -> None:
        super().__init__(id=id)
        self.is_open = False
        self._text: Text | str = ""

    def compose(self) -> ComposeResult:
        yield Static("", id=f"{self.id}-text")

    @property
    def text(self) -> str:
        """What the pane shows, as plain text (for tests and the filter)."""
        return self._text.plain if isinstance(self._text, Text) else self._text

    def show(self, text: Text | str) -> None:
        if text == self._text:
            return  # a refresh that changed nothing redraws nothing
        self._text = text
        self.query_one(Static).update(text)

    def open_pane(self) -> None:
        """Taller (two thirds of the body) and focused: arrows and page keys scroll it."""
        self.is_open = True
        # inline styles: they win over the stylesheet's `#detail { max-height: 12 }`
        self.styles.max_height = "100%"
        self.styles.height = f"{EXPANDED_HEIGHT}fr"
        self.focus()

    def action_close_pane(self) -> None:
        self.is_open = False
        self.styles.clear_rule("max_height")
        self.styles.clear_rule("height")
        self.refresh(layout=True)
        for table in self.screen.query("#table"):
            table.focus()

    def toggle(self) -> None:
        if self.is_open:
            self.action_close_pane()
        else:
            self.open_pane()


@dataclass(frozen=True, slots=True)
class Fetched(Generic[V]):
    """A fetched detail (or why it could not be), and when."""

    value: V | None
    error: str
    at: float  # time.monotonic()


class DetailFetcher(Generic[V]):
    """Fetches the detail of the selected row in a worker of `host` (a screen): only when
    the selection changes, after it stayed `delay` seconds (scrolling through a table
    fetches nothing), one fetch at a time (a newer selection cancels an older fetch),
    the answers kept `ttl` seconds for the last `size` selections. `done(key)` runs on
    the event loop when a fetch ends, to redraw the pane."""

    def __init__(
        self,
        host: Widget,
        group: str,
        fetch: Callable[[str], Awaitable[V]],
        done: Callable[[str], None],
        *,
        delay: float = DEBOUNCE,
        ttl: float = TTL,
        size: int = CACHE_SIZE,
    ) -> None:
        self.host = host
        self.group = group
        self.fetch = fetch
        self.done = done
        self.delay = delay
        self.ttl = ttl
        self.size = size
        self.cache: OrderedDict[str, Fetched[V]] = OrderedDict()
        self.selected: str | None = None
        self.pending: str | None = None  # the key being fetched (or waiting to be)
        self.fetches = 0  # how many fetches started (tests count them)
        self._timer: Timer | None = None
        self._source: object = None

    def get(self, key: str | None) -> Fetched[V] | None:
        """The cached answer for `key`, fresh or not (None: never fetched)."""
        return self.cache.get(key) if key is not None else None

    def fresh(self, key: str) -> bool:
        found = self.cache.get(key)
        return found is not None and time.monotonic() - found.at < self.ttl

    def select(self, key: str | None) -> None:
        """The selection is now `key`: fetch its detail unless this is no change or the
        cache has it fresh."""
        if key == self.selected:
            return
        self.selected = key
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if key is None or self.fresh(key):
            self.pending = None
            return
        self.pending = key
        self._timer = self.host.set_timer(self.delay, lambda: self._start(key))

    def put(self, key: str, value: V | None, error: str = "") -> None:
        """Keep an answer for `key` (a fetch's; or, with no backend to fetch from, data
        given beforehand: the snapshot tests' captured details)."""
        self.cache[key] = Fetched(value, error, time.monotonic())
        self.cache.move_to_end(key)
        while len(self.cache) > self.size:
            self.cache.popitem(last=False)

    def forget(self) -> None:
        """Drop every answer (a new context): the next selection fetches again."""
        self.cache.clear()
        self.selected = None
        self.pending = None

    def use(self, source: object) -> None:
        """Fetches go to `source` (the app's stack): another one (a context switch)
        forgets what the last one answered."""
        if source is not self._source:
            self._source = source
            self.forget()

    def _start(self, key: str) -> None:
        self._timer = None
        if key != self.selected or not self.host.is_mounted:
            return
        self.fetches += 1
        self.host.run_worker(self._run(key), group=self.group, exclusive=True)

    async def _run(self, key: str) -> None:
        try:
            value: V | None = await self.fetch(key)
            error = ""
        except BackendError as exc:
            value, error = None, exc.message
        except Exception as exc:  # a pane is a nicety: say why it is empty, keep going
            value, error = None, f"{type(exc).__name__}: {exc}"[:300]
        self.put(key, value, error)
        if self.pending == key:
            self.pending = None
        if self.host.is_mounted:
            self.done(key)


def one_line(text: str, width: int) -> str:
    """`fit(text, width)` (one line, an ellipsis where cut), with the common case (short,
    one line already) left as is without splitting it: cells are made by the thousand."""
    if len(text) <= width and "\n" not in text and "\t" not in text and "\r" not in text:
        return text
    return fit(text, width)


@lru_cache(maxsize=4096)
def error_class(error: str) -> str:
    """`headline(error)`, remembered: thousands of targets share a handful of errors."""
    return headline(error)


def field_lines(text: Text, name: str, values: Iterable[str], width: int = 10) -> None:
    """`name` in bold, then each of `values` on its own line under the first."""
    items = [v for v in values if v]
    text.append(f"{name:<{width}}", style="bold")
    text.append(("\n" + " " * width).join(items) if items else "-")
    text.append("\n")


def field_line(text: Text, name: str, value: str | Text, width: int = 10) -> None:
    text.append(f"{name:<{width}}", style="bold")
    text.append(value if value else "-")
    text.append("\n")


def table_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    """Rows as aligned text columns (the header first)."""
    grid = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(r[i]) for r in grid) for i in range(len(grid[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in grid]
