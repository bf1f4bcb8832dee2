"""Elasticsearch indices: health, status, docs, size, age; select, snapshot, delete."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from opskit.live import LiveState
from opskit.models import Index
from opskit.output import ago, human_bytes
from opskit.screens.base import Sort, TableScreen
from opskit.screens.widgets import Cell

HEALTH_STYLE = {"green": "green", "yellow": "yellow", "red": "bold red"}
HEALTH_RANK = {"red": 0, "yellow": 1, "green": 2}
EPOCH = datetime.min.replace(tzinfo=UTC)


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
    ]

    def __init__(self) -> None:
        super().__init__()
        self.marked: set[str] = set()

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
            i.name,
            Text(i.health or "-", style=HEALTH_STYLE.get(i.health, "dim")),
            i.status,
            str(i.docs_count),
            human_bytes(i.store_size_bytes),
            str(i.primaries),
            str(i.replicas),
            ago(i.creation_date).removesuffix(" ago"),
        )

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
        return not (action in ("snapshot", "delete") and self.oapp.settings.read_only)
