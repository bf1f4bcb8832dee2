"""Doctor: the same report as `opskit doctor`, run on demand (it waits to see logs grow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from opskit.live import LiveState
from opskit.screens.base import Sort, TableScreen
from opskit.screens.widgets import Cell

if TYPE_CHECKING:
    from opskit.findings import Finding

LEVEL_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan", "ok": "green"}
LEVEL_RANK = {"critical": 0, "warning": 1, "info": 2, "ok": 3}


class DoctorScreen(TableScreen["Finding"]):
    TITLE_TEXT = "Doctor"
    SOURCES = ()
    COLUMNS = ("area", "severity", "subject", "finding", "next step")
    SORTS: ClassVar[Sequence[Sort]] = (
        ("severity", lambda f: (LEVEL_RANK.get(f.severity, 9), f.check, f.subject)),
        ("check", lambda f: (f.check, f.subject)),
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "run_doctor", "Run again", id="run_doctor"),
    ]

    def compose_above(self) -> ComposeResult:
        yield Static("", id="doctor-summary")

    def compose_below(self) -> ComposeResult:
        yield Static("", id="detail")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self.oapp.doctor_report is None and not self.oapp.doctor_running:
            self.oapp.run_doctor()

    def action_run_doctor(self) -> None:
        self.oapp.run_doctor()

    def records(self, state: LiveState) -> list[Finding]:
        report = self.oapp.doctor_report
        if report is None:
            return []
        return [f for area in report.areas for f in area.findings]

    def key(self, record: Finding) -> str:
        return f"{record.check}|{record.subject}|{record.summary}"

    def is_fault(self, record: Finding) -> bool:
        return record.severity in ("warning", "critical")

    def cells(self, f: Finding) -> Sequence[Cell]:
        area = self._area_of.get(f.check, "") if hasattr(self, "_area_of") else ""
        return (
            area,
            Text(f.severity, style=LEVEL_STYLE.get(f.severity, "")),
            f.subject,
            f.summary,
            f.action,
        )

    def render_body(self, state: LiveState) -> None:
        report = self.oapp.doctor_report
        self._area_of = (
            {f.check: a.area for a in report.areas for f in a.findings} if report else {}
        )
        summary = self.query_one("#doctor-summary", Static)
        if self.oapp.doctor_running:
            summary.update(Text("running the checks…", style="dim"))
        elif report is not None:
            when = report.generated_at.astimezone().strftime("%H:%M:%S")
            counts = ", ".join(f"{n} {k}" for k, n in report.counts.items() if n)
            text = Text(f"report of {when}: {counts or 'nothing found'}")
            if report.unreachable:
                text.append(f"  unreachable: {', '.join(report.unreachable)}", style="bold red")
            summary.update(text)
        super().render_body(state)

    def after_render(self, state: LiveState, rows: list[Finding]) -> None:
        self.show_detail()

    def on_data_table_row_highlighted(self) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        key = self.table.selected_key()
        found = next((f for f in self.records(self.oapp.state) if self.key(f) == key), None)
        detail = self.query_one("#detail", Static)
        if found is None:
            detail.update("")
            return
        text = Text()
        text.append(found.summary + "\n", style="bold")
        for k, v in sorted(found.evidence.items()):
            text.append(f"{k}: ", style="bold")
            text.append(f"{v}\n")
        text.append(f"from {found.source}\n", style="dim")
        if found.action:
            text.append(f"next: {found.action}")
        detail.update(text)
