"""Elasticsearch indices: health, status, docs, size, age; select, snapshot, delete. `N`
toggles the nodes view: every node's roles, elected master, heap, disk and shard copies
(`ElasticsearchClient.nodes`, fetched on demand while the view is shown, at most once
per refresh interval)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import Static

from opskit.errors import BackendError
from opskit.live import LiveState
from opskit.models import EsNode, Index
from opskit.models_es import (
    NODE_HEADERS,
    AllocationExplanation,
    IndexSettings,
    ShardCopy,
    node_cells,
)
from opskit.output import ago, human_bytes
from opskit.screens.base import Sort, TableScreen
from opskit.screens.details import (
    DetailFetcher,
    DetailPane,
    Fetched,
    field_line,
    one_line,
    table_lines,
)
from opskit.screens.widgets import Cell, KeyedTable

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient
    from opskit.stack import Stack

HEALTH_STYLE = {"green": "green", "yellow": "yellow", "red": "bold red"}
HEALTH_RANK = {"red": 0, "yellow": 1, "green": 2}
EPOCH = datetime.min.replace(tzinfo=UTC)
NAME_WIDTH = 60  # the widest an index name's cell gets (the pane has it whole)
EXPLAIN_AT_MOST = 3  # unassigned shard copies explained in the pane
NODES_AT_MOST = 5  # nodes' decisions shown per explanation
DECIDERS_AT_MOST = 3  # deciders' explanations shown per node


@dataclass
class IndexDetail:
    """What the pane fetches for one index; each part may fail on its own."""

    settings: IndexSettings | None = None
    shards: list[ShardCopy] | None = None
    explanations: list[AllocationExplanation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class IndicesScreen(TableScreen[Index]):
    TITLE_TEXT = "Indices"
    SOURCES = ("indices", "cluster")
    COLUMNS = ("", "index", "health", "status", "docs", "size", "pri", "rep", "age")
    SORTS: ClassVar[Sequence[Sort]] = (
        ("name", lambda i: i.name),
        ("health", lambda i: (HEALTH_RANK.get(i.health, -1), i.name)),
        ("size", lambda i: (-i.store_size_bytes, i.name)),
        ("docs", lambda i: (-i.docs_count, i.name)),
        ("age (oldest first)", lambda i: (i.creation_date or EPOCH, i.name)),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "mark", "Select", id="mark"),
        Binding("a", "mark_all", "Select shown", id="mark_all"),
        Binding("n", "snapshot", "Snapshot", id="snapshot"),
        Binding("D", "delete", "Delete", id="delete"),
        Binding("N", "nodes", "Nodes", id="nodes"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marked: set[str] = set()
        self.details: DetailFetcher[IndexDetail] = DetailFetcher(
            self, "index-detail", self._fetch_detail, lambda key: self.show_detail()
        )
        # the nodes view (`N`): the last answer of `nodes()`, or why there is none
        self.nodes_shown = False
        self.nodes: list[EsNode] | None = None
        self.nodes_error = ""
        self.nodes_loading = False
        self.nodes_at = -1e9  # time.monotonic() of the last answer
        self.nodes_fetches = 0  # fetches started (tests count them)

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#table", KeyedTable)

    @property
    def nodes_table(self) -> KeyedTable:
        return self.query_one("#nodes", KeyedTable)

    def compose_below(self) -> ComposeResult:
        note = Static("", id="nodes-note")
        note.display = False
        yield note
        nodes = KeyedTable(*NODE_HEADERS, id="nodes")
        nodes.display = False
        yield nodes
        yield DetailPane()

    # -- the nodes view
    def action_nodes(self) -> None:
        """Toggle between the indices and the cluster's nodes."""
        self.nodes_shown = not self.nodes_shown
        self.table.display = not self.nodes_shown
        self.query_one(DetailPane).display = not self.nodes_shown
        self.nodes_table.display = self.nodes_shown
        self.query_one("#nodes-note", Static).display = self.nodes_shown
        if self.nodes_shown:
            self.nodes_table.focus()
            self.refresh_nodes(force=self.nodes is None or bool(self.nodes_error))
            self.show_nodes()
        else:
            self.table.focus()
        self.refresh_bindings()

    def put_nodes(self, nodes: list[EsNode] | None, error: str = "") -> None:
        """Nodes given beforehand (no backend to fetch from: tests with a fixed state)."""
        self.nodes, self.nodes_error = nodes, error
        self.nodes_at = time.monotonic()
        if self.is_mounted:
            self.show_nodes()

    def refresh_nodes(self, force: bool = False) -> None:
        """Fetch the nodes in a worker, when connected, once the last answer is older
        than the refresh interval (or `force`), one fetch at a time."""
        stack = self.oapp.stack
        if stack is None or self.nodes_loading:
            return
        if not force and time.monotonic() - self.nodes_at < self.oapp.interval:
            return
        self.nodes_loading = True
        self.nodes_fetches += 1
        self.run_worker(self._load_nodes(stack), group="es-nodes", exclusive=True)

    async def _load_nodes(self, stack: Stack) -> None:
        try:
            self.nodes, self.nodes_error = await stack.elasticsearch.nodes(), ""
        except BackendError as exc:
            self.nodes_error = exc.message  # the last good answer stays shown
        finally:
            self.nodes_loading = False
            self.nodes_at = time.monotonic()
        if self.is_mounted and self.nodes_shown:
            # the answer may land while the screen is torn down (the app quitting)
            with contextlib.suppress(NoMatches):
                self.show_nodes()

    def show_nodes(self) -> None:
        nodes = self.nodes or []
        self.nodes_table.show_rows([n.name for n in nodes], nodes, self.node_cells)
        self.query_one("#nodes-note", Static).update(nodes_note(self.nodes, self.nodes_error,
                                                                self.nodes_loading))  # fmt: skip

    def node_cells(self, n: EsNode) -> Sequence[Cell]:
        cells: list[Cell] = list(node_cells(n))
        if n.master:
            cells[2] = Text("elected", style="bold")
        return cells

    def render_body(self, state: LiveState) -> None:
        super().render_body(state)
        if self.nodes_shown:
            self.refresh_nodes()

    def records(self, state: LiveState) -> list[Index]:
        return list(state["indices"].value or [])

    def visible_rows(self, state: LiveState) -> list[Index]:
        pattern = self.filter_text
        if pattern and any(ch in pattern for ch in "*?["):
            self.filter_text = ""
            try:
                rows = [
                    i for i in super().visible_rows(state) if fnmatch.fnmatchcase(i.name, pattern)
                ]
            finally:
                self.filter_text = pattern
            return rows
        return super().visible_rows(state)

    def key(self, record: Index) -> str:
        return record.name

    def is_fault(self, record: Index) -> bool:
        return record.health in ("red", "yellow")

    def cells(self, i: Index) -> Sequence[Cell]:
        return (
            "✓" if i.name in self.marked else " ",
            one_line(i.name, NAME_WIDTH),
            Text(i.health or "-", style=HEALTH_STYLE.get(i.health, "dim")),
            i.status,
            str(i.docs_count),
            human_bytes(i.store_size_bytes),
            str(i.primaries),
            str(i.replicas),
            ago(i.creation_date).removesuffix(" ago"),
        )

    # -- the detail pane: settings, shards, and why an unassigned shard stays so
    def selected(self) -> Index | None:
        index = self.table.selected_record()  # the record the table shows: no lookup
        return index if isinstance(index, Index) else None

    def after_render(self, state: LiveState, rows: list[Index]) -> None:
        self.show_detail()

    def on_data_table_row_highlighted(self) -> None:
        if not self.nodes_shown:
            self.show_detail()

    def on_data_table_row_selected(self) -> None:
        """Enter on an index: the detail pane, expanded and focused (Enter/Esc: back)."""
        if not self.nodes_shown:
            self.query_one(DetailPane).toggle()

    def show_detail(self) -> None:
        index = self.selected()
        live = self.oapp.stack is not None
        if live:  # fetches only when the selection changed (and not from the cache)
            self.details.use(self.oapp.stack)
            self.details.select(index.name if index else None)
        pane = self.query_one(DetailPane)
        if index is None:
            pane.show("")
            return
        loading = self.details.pending == index.name
        pane.show(index_detail(index, self.details.get(index.name), live, loading))

    async def _fetch_detail(self, name: str) -> IndexDetail:
        stack = self.oapp.stack
        if stack is None:
            return IndexDetail()
        return await fetch_index_detail(stack.elasticsearch, name)

    def selection(self) -> list[str]:
        if self.marked:
            return sorted(self.marked)
        key = self.table.selected_key()
        return [key] if key else []

    def action_mark(self) -> None:
        key = self.table.selected_key()
        if key:
            self.marked ^= {key}
            self.render_body(self.oapp.state)
            self.table.action_cursor_down()

    def action_mark_all(self) -> None:
        shown = {self.key(i) for i in self.visible_rows(self.oapp.state)}
        self.marked = set() if shown <= self.marked else self.marked | shown
        self.render_body(self.oapp.state)

    def action_snapshot(self) -> None:
        names = self.selection()
        if names:
            self.oapp.confirm_snapshot(names)

    def action_delete(self) -> None:
        names = self.selection()
        if names:
            self.oapp.confirm_delete(names)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.nodes_shown and action in ("mark", "mark_all", "snapshot", "delete"):
            return False  # they act on indices: not while the nodes are shown
        return not (action in ("snapshot", "delete") and self.oapp.settings.read_only)


def nodes_note(nodes: list[EsNode] | None, error: str, loading: bool) -> Text:
    """The line above the nodes table: how many, the elected master, or why none."""
    text = Text()
    if nodes is None:
        text.append(f"no nodes: {error}" if error else "loading…",
                    style="yellow" if error else "dim")  # fmt: skip
        return text
    master = next((n.name for n in nodes if n.master), None)
    text.append(f"{len(nodes)} node(s)", style="bold")
    text.append(f", elected master {master}" if master else ", no elected master")
    if error:
        text.append(f"  (last read failed: {error})", style="yellow")
    text.append("  N: back to the indices", style="dim")
    return text


async def fetch_index_detail(es: ElasticsearchClient, name: str) -> IndexDetail:
    """Settings and shards of one index (concurrently), then the allocation explanation
    of its first unassigned shard copies."""
    detail = IndexDetail()
    settings, shards = await asyncio.gather(
        es.index_settings(name), es.index_shards(name), return_exceptions=True
    )
    for part, got in (("settings", settings), ("shards", shards)):
        if isinstance(got, BaseException):
            if not isinstance(got, BackendError):
                raise got
            detail.errors.append(f"{part}: {got.reason}")
    detail.settings = settings if isinstance(settings, IndexSettings) else None
    detail.shards = shards if isinstance(shards, list) else None
    unassigned = sorted(
        {(s.shard, s.primary) for s in detail.shards or [] if s.state == "UNASSIGNED"},
        key=lambda sp: (not sp[1], sp[0]),  # primaries first: they make an index red
    )[:EXPLAIN_AT_MOST]
    for shard, primary in unassigned:
        try:
            detail.explanations.append(await es.explain_shard(name, shard, primary))
        except BackendError as exc:
            detail.errors.append(f"allocation explain of shard {shard}: {exc.reason}")
    return detail


def index_detail(i: Index, fetched: Fetched[IndexDetail] | None, live: bool, loading: bool) -> Text:
    """The index detail pane: the row in full, then what was fetched for it."""
    text = Text()
    text.append(f"{i.name}  ", style="bold")
    text.append(i.health or "-", style=HEALTH_STYLE.get(i.health, "dim"))
    created = i.creation_date.astimezone().strftime("%Y-%m-%d %H:%M") if i.creation_date else "-"
    text.append(
        f"  {i.status}  docs {i.docs_count}  {human_bytes(i.store_size_bytes)}"
        f"  created {created} ({ago(i.creation_date)})\n"
    )
    if not live and fetched is None:
        text.append("no settings or shards (not connected to Elasticsearch)", style="dim")
        return text
    if fetched is None or (loading and fetched.value is None):
        text.append("loading…", style="dim")
        return text
    if fetched.value is None:
        text.append(f"no detail: {fetched.error}", style="yellow")
        return text
    detail = fetched.value
    for error in detail.errors:
        text.append(f"{error}\n", style="yellow")
    if detail.settings is not None:
        settings_lines(text, detail.settings)
    if detail.shards is not None:
        shard_lines(text, detail.shards)
    for explanation in detail.explanations:
        explanation_lines(text, explanation)
    text.rstrip()
    return text


def settings_lines(text: Text, st: IndexSettings) -> None:
    ilm = st.ilm_policy or "none"
    shards = "-" if st.number_of_shards is None else str(st.number_of_shards)
    replicas = "-" if st.number_of_replicas is None else str(st.number_of_replicas)
    if st.auto_expand_replicas and st.auto_expand_replicas != "false":
        replicas += f" (auto-expand {st.auto_expand_replicas})"
    field_line(text, "settings", f"shards {shards}  replicas {replicas}  ILM policy {ilm}")
    for name, values in (("routing", st.routing), ("blocks", st.blocks)):
        if values:
            field_line(text, name, "  ".join(f"{k}={v}" for k, v in sorted(values.items())))


def shard_lines(text: Text, shards: list[ShardCopy]) -> None:
    rows = [
        (
            s.shard,
            "p" if s.primary else "r",
            s.state,
            s.node or "-",
            "-" if s.docs is None else s.docs,
            "-" if s.store_bytes is None else human_bytes(s.store_bytes),
            s.unassigned_reason or "",
        )
        for s in sorted(shards, key=lambda s: (s.shard, not s.primary, s.node or ""))
    ]
    if not rows:
        field_line(text, "shards", "none (a closed index lists no shards)")
        return
    lines = table_lines(("shard", "prirep", "state", "node", "docs", "store", "unassigned"), rows)
    text.append(f"{'shards':<10}", style="bold")
    text.append(lines[0] + "\n", style="dim")
    for line, shard in zip(lines[1:], rows, strict=True):
        text.append(" " * 10)
        text.append(line + "\n", style="bold red" if shard[2] == "UNASSIGNED" else "")


def explanation_lines(text: Text, e: AllocationExplanation) -> None:
    copy = "primary" if e.primary else "replica"
    text.append(f"unassigned shard {e.shard} {copy}", style="bold")
    text.append(f"  can_allocate: {e.can_allocate or '-'}", style="bold red")
    if e.unassigned_reason:
        text.append(f"  reason: {e.unassigned_reason}")
    text.append("\n")
    if e.explanation:
        text.append(f"  {e.explanation}\n")
    for node in e.nodes[:NODES_AT_MOST]:
        said = node.explanations[:DECIDERS_AT_MOST] or ["-"]
        lead = f"  {node.node} ({node.decision}): "
        for n, line in enumerate(said):
            text.append(lead if n == 0 else " " * len(lead), style="bold")
            text.append(f"{line}\n")
    if len(e.nodes) > NODES_AT_MOST:
        text.append(f"  … and {len(e.nodes) - NODES_AT_MOST} more nodes\n", style="dim")
