"""Base screens: every screen shows the context bar and its sources' banners; table
screens add filtering (`/`), sorting (`o`, `O`) and the faults-only toggle."""

from __future__ import annotations

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
    """Context name (in its colour), screen, per-source last update, refresh state."""

    DEFAULT_CSS = """
    ContextBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, app: Host, title: str, sources: Sequence[str]) -> None:
        settings = app.settings
        colour = settings.color or ("red" if settings.context.startswith("prod") else "cyan")
        text = Text()
        text.append(f" {settings.context} ", style=f"bold reverse {colour}")
        if settings.read_only:
            text.append(" read-only", style="bold yellow")
        text.append(f"  {title}", style="bold")
        rank = {"unreachable": 0, "stale": 1, "loading": 2, "ok": 3}
        backends: dict[str, list[SourceState]] = {}
        for name in sources:
            backends.setdefault(BACKEND_OF[name], []).append(app.state[name])
        for backend, srcs in backends.items():
            worst = min(srcs, key=lambda s: rank[s.status])
            times = [s.last_ok for s in srcs if s.last_ok]
            when = min(times).astimezone().strftime("%H:%M:%S") if times else "--:--:--"
            style = {"ok": "green", "stale": "yellow", "unreachable": "red"}.get(
                worst.status, "dim"
            )
            text.append(f"  {backend} ", style="dim")
            text.append(when, style=style)
            if worst.status == "ok":
                text.append(f" {max(s.latency_ms for s in srcs):.0f}ms", style="dim")
        replay = getattr(app, "replay_label", "")  # the replay's time cursor (app.py)
        if replay:
            text.append(f"  [{replay}]", style="bold magenta")
        else:
            state = "paused" if app.state.paused else f"every {app.interval:g}s"
            text.append(f"  [{state}]", style="bold yellow" if app.state.paused else "dim")
        if app.faults_only:
            text.append("  faults only", style="bold magenta")
        self.update(text)


class LiveScreen(Screen[None]):
    """A screen fed by the poller through `refresh_from(state)`."""

    TITLE_TEXT: ClassVar[str] = ""
    SOURCES: ClassVar[tuple[str, ...]] = ()

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
        self.refresh_from(self.oapp.state, None)

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
    def visible_rows(self, state: LiveState) -> list[R]:
        rows = self.records(state)
        if self.oapp.faults_only:
            rows = [r for r in rows if self.is_fault(r)]
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [r for r in rows if needle in self.haystack(r).lower()]
        if self.SORTS:
            _, keyfn = self.SORTS[self.sort_index]
            rows.sort(key=keyfn, reverse=self.sort_reverse)
        return rows

    def render_body(self, state: LiveState) -> None:
        rows = self.visible_rows(state)
        self.table.sync([(self.key(r), self.cells(r)) for r in rows])
        self.after_render(state, rows)

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
        self.filter_text = ""
        self.table.focus()
        self.render_body(self.oapp.state)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
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
