"""Base screens: every screen shows the context bar and its sources' banners; table
screens add filtering (`/`), sorting (`o`, `O`) and the faults-only toggle."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from opskit.live import BACKEND_OF, LiveState, SourceState
from opskit.screens.topbar import BackendState, BarState, bar_text, with_cluster
from opskit.screens.widgets import Cell, KeyedTable, SourceBanner

if TYPE_CHECKING:
    from opskit.config import Settings
    from opskit.models import Alert, Silence
    from opskit.stack import Stack
    from opskit.tasks.doctor.model import DoctorReport

R = TypeVar("R")


class Host(Protocol):
    """What screens need of the app (OpskitApp provides it). Screens see the app through
    this, so the app module can import the screens without a cycle."""

    settings: Settings
    state: LiveState
    interval: float
    faults_only: bool
    doctor_report: DoctorReport | None
    doctor_running: bool
    stack: Stack | None  # the live stack (None while not connected): what workers call

    def run_doctor(self) -> None: ...
    def open_silence_form(self, alert: Alert) -> None: ...
    def open_incident(self, alert: Alert) -> None: ...
    def confirm_expire(self, silence: Silence) -> None: ...
    def confirm_snapshot(self, names: list[str]) -> None: ...
    def confirm_delete(self, names: list[str]) -> None: ...


class ContextBar(Static):
    """Context name (in its colour), screen, per-backend last update, refresh state; fitted
    to its width (screens/topbar.py), again on every resize."""

    DEFAULT_CSS = """
    ContextBar { height: 1; background: $panel; padding: 0 1; }
    """
    RANK: ClassVar[dict[str, int]] = {"unreachable": 0, "stale": 1, "loading": 2, "ok": 3}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bar: BarState | None = None

    def show(self, app: Host, title: str, sources: Sequence[str]) -> None:
        self.bar = self.bar_state(app, title, sources)
        self.update(bar_text(self.bar, self.width_available()))

    def on_resize(self) -> None:
        if self.bar is not None:
            self.update(bar_text(self.bar, self.width_available()))

    def width_available(self) -> int:
        """The bar's cells: its content width, or (not laid out yet) the app's less the
        padding."""
        return self.content_size.width or max(self.app.size.width - 2, 1)

    @classmethod
    def bar_state(cls, app: Host, title: str, sources: Sequence[str]) -> BarState:
        settings = app.settings
        colour = settings.color or ("red" if settings.context.startswith("prod") else "cyan")
        by_backend: dict[str, list[SourceState]] = {}
        for name in sources:
            by_backend.setdefault(BACKEND_OF[name], []).append(app.state[name])
        backends = []
        for backend, srcs in by_backend.items():
            worst = min(srcs, key=lambda s: cls.RANK[s.status])
            times = [s.last_ok for s in srcs if s.last_ok]
            when = min(times).astimezone().strftime("%H:%M:%S") if times else ""
            latency = max(s.latency_ms for s in srcs)
            row = BackendState(backend, worst.status, when, latency, worst.error or "")
            backends.append(with_cluster(row, app.state.clusters.get(backend)))
        replay = getattr(app, "replay_label", "")  # the replay's time cursor (app.py)
        if replay:
            tail, tail_style = f"[{replay}]", "bold magenta"
        elif app.state.paused:
            tail, tail_style = "[paused]", "bold yellow"
        else:
            tail, tail_style = f"[every {app.interval:g}s]", "dim"
        return BarState(
            settings.context,
            colour,
            settings.read_only,
            title,
            tuple(backends),
            tail,
            tail_style,
            app.faults_only,
        )


RENDER_EVERY = 1 / 30  # seconds: at most one poll-driven render per screen per frame
OFF_LOOP_ROWS = 2000  # a table this big filters and sorts a poll's rows in a thread


class LiveScreen(Screen[None]):
    """A screen fed by the poller through `schedule_refresh(name)`: sources that land
    within a frame are rendered together, once (`refresh_from`), and only while the
    screen is shown (it renders everything when it is shown again)."""

    TITLE_TEXT: ClassVar[str] = ""
    SOURCES: ClassVar[tuple[str, ...]] = ()
    _pending: frozenset[str | None] = frozenset()
    _flush_due = False  # a render is scheduled
    _last_render = 0.0
    renders = 0  # poll-driven renders done (tests count them)
    from_poll = False  # True while a poll-driven render runs (not a user's action)

    @property
    def oapp(self) -> Host:
        return cast(Host, self.app)

    def compose(self) -> ComposeResult:
        yield ContextBar(id="context-bar")
        yield SourceBanner(id="banner")
        with Vertical(id="body"):
            yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        self._pending = frozenset()
        self.refresh_from(self.oapp.state, None)

    def schedule_refresh(self, changed: str | None) -> None:
        """A source updated (None: all): render it with the others of the same frame."""
        self._pending = self._pending | {changed}
        if not self._flush_due:
            self._flush_due = True
            wait = self._last_render + RENDER_EVERY - time.monotonic()
            if wait > 0.001:
                self.set_timer(wait, self._flush)
            else:  # after the messages already queued (other sources of the same frame)
                self.call_later(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        pending, self._pending = self._pending, frozenset()
        if not pending or not self.is_current:
            return  # not shown: on_screen_resume renders it all
        relevant = [n for n in pending if n in self.SOURCES]
        changed: str | None
        if None in pending or len(relevant) > 1:
            changed = None  # all, or several of its own: one full render
        elif relevant:
            changed = relevant[0]
        else:  # none of its sources: only the context bar and banners change
            changed = next(iter(pending))
        self._last_render = time.monotonic()
        self.renders += 1
        self.from_poll = True
        try:
            self.refresh_from(self.oapp.state, changed)
        finally:
            self.from_poll = False

    def refresh_from(self, state: LiveState, changed: str | None) -> None:
        """Render from state; `changed` names the source that just updated (None: all)."""
        if not self.is_mounted:
            return
        try:
            bar = self.query_one(ContextBar)
        except NoMatches:  # a refresh landed while the screen is still being composed
            return
        bar.show(self.oapp, self.TITLE_TEXT, self.SOURCES)
        self.query_one(SourceBanner).show_sources(state[s] for s in self.SOURCES)
        stale = any(state[s].status in ("stale", "unreachable") for s in self.SOURCES)
        self.query_one("#body").set_class(stale, "-stale")
        if changed is None or changed in self.SOURCES:
            self.render_body(state)

    def render_body(self, state: LiveState) -> None:
        """Subclasses draw their widgets here."""


Sort = tuple[str, Callable[[Any], Any]]


class TableScreen(LiveScreen, Generic[R]):
    """A filterable, sortable table of records from one source."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    SORTS: ClassVar[Sequence[Sort]] = ()
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("o", "sort", "Sort", id="sort"),
        Binding("O", "reverse", "Reverse", show=False, id="reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear_filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_index = 0
        self.sort_reverse = False
        self.filter_text = ""
        self._haystacks = {}
        self._rows_lock = threading.Lock()  # screen state a thread's `_prepare` reads
        self._generation = 0  # bumped by every render a user's action asks for
        self._in_thread = False
        self._again = False

    def compose_body(self) -> ComposeResult:
        yield from self.compose_above()
        yield KeyedTable(*self.COLUMNS, id="table")
        yield Input(placeholder="filter (text; Enter to keep, Esc to clear)", id="filter")
        yield from self.compose_below()

    def compose_above(self) -> ComposeResult:
        yield from ()

    def compose_below(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    # -- what subclasses provide
    def records(self, state: LiveState) -> list[R]:
        raise NotImplementedError

    def key(self, record: R) -> str:
        raise NotImplementedError

    def cells(self, record: R) -> Sequence[Cell]:
        raise NotImplementedError

    def is_fault(self, record: R) -> bool:
        return False

    def haystack(self, record: R) -> str:
        return " ".join(str(c) for c in self.cells(record))

    # -- rendering
    _haystacks: dict[str, tuple[Any, str]]

    def _lower_haystack(self, record: R) -> str:
        """`haystack(record).lower()`, kept per key while the record stays equal (a
        filter over 10,000 rows builds each row's text once, not on every refresh)."""
        key = self.key(record)
        found = self._haystacks.get(key)
        if found is not None and found[0] == record:
            return found[1]
        text = self.haystack(record).lower()
        self._haystacks[key] = (record, text)
        return text

    def visible_rows(self, state: LiveState) -> list[R]:
        rows = self.records(state)
        if self.oapp.faults_only:
            rows = [r for r in rows if self.is_fault(r)]
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [r for r in rows if needle in self._lower_haystack(r)]
        else:
            self._haystacks = {}
        if self.SORTS:
            _, keyfn = self.SORTS[self.sort_index]
            rows.sort(key=keyfn, reverse=self.sort_reverse)
        return rows

    def render_body(self, state: LiveState) -> None:
        table = self.table
        if self.from_poll and table.row_count >= OFF_LOOP_ROWS:
            self._render_in_thread(state)
            return
        if not self.from_poll:  # a user's action (mark, group, sort...): cells may differ
            self._generation += 1  # a thread's rows computed before it are dropped
            table.invalidate()
        rows, keys = self._prepare(state)
        table.show_rows(keys, list(rows), self.cells)
        self.after_render(state, rows)

    def _prepare(self, state: LiveState) -> tuple[list[R], list[str]]:
        """The rows shown, filtered and sorted, and their keys."""
        with self._rows_lock:
            rows = self.visible_rows(state)
            return rows, list(map(self.key, rows))

    @property
    def render_pending(self) -> bool:
        """A poll-driven render is scheduled or running (tests wait on it)."""
        return self._flush_due or self._in_thread

    def _render_in_thread(self, state: LiveState) -> None:
        """Filter and sort in a thread (the loop keeps answering keys: the thread lets go
        of the GIL every few ms), then show the rows on the loop; one at a time, the
        latest state again when more landed meanwhile."""
        if self._in_thread:
            self._again = True
            return
        self._in_thread = True
        self.run_worker(self._rows_from_thread(state, self._generation), group="rows")

    async def _rows_from_thread(self, state: LiveState, generation: int) -> None:
        try:
            rows, keys = await asyncio.to_thread(self._prepare, state)
        finally:
            self._in_thread = False
        if generation == self._generation and self.is_mounted and self.is_current:
            self.table.show_rows(keys, list(rows), self.cells)
            self.after_render(state, rows)
        if self._again:
            self._again = False
            self.schedule_refresh(None)

    def after_render(self, state: LiveState, rows: list[R]) -> None:
        """Hook for detail panes."""

    # -- actions
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-shown")
        with self._rows_lock:
            self.filter_text = ""
        self.table.focus()
        self.render_body(self.oapp.state)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            with self._rows_lock:
                self.filter_text = event.value
            self.render_body(self.oapp.state)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value:
                event.input.remove_class("-shown")
            self.table.focus()

    def action_sort(self) -> None:
        if self.SORTS:
            self.sort_index = (self.sort_index + 1) % len(self.SORTS)
            self.notify(f"sorted by {self.SORTS[self.sort_index][0]}", timeout=2)
            self.render_body(self.oapp.state)

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self.render_body(self.oapp.state)


def styled_cell(value: str, style: str | None) -> Cell:
    return Text(value, style=style) if style else value
