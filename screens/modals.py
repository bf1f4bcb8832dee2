"""Modal screens: silence form, confirmation, help, jump-to-screen, context switch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static

from opskit.durations import parse_duration
from opskit.matchers import Matcher, parse_matcher
from opskit.models import Alert


@dataclass
class SilenceRequest:
    matchers: list[Matcher]
    duration: timedelta
    comment: str
    author: str


def matchers_for(alert: Alert) -> str:
    return " ".join(str(Matcher(k, v)) for k, v in sorted(alert.labels.items()))


class SilenceForm(ModalScreen[SilenceRequest | None]):
    """Prefilled with the alert's labels; matchers, duration and comment editable."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, alert: Alert, author: str) -> None:
        super().__init__()
        self.alert = alert
        self.author = author

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Silence {self.alert.alertname}", id="dialog-title")
            yield Label("Matchers (amtool syntax, space-separated)")
            yield Input(matchers_for(self.alert), id="matchers")
            yield Label("Duration")
            yield Input("2h", id="duration")
            yield Label("Comment")
            yield Input(placeholder="why", id="comment")
            yield Label("Author")
            yield Input(self.author, id="author")
            yield Static("", id="form-error")
            with Horizontal(id="buttons"):
                yield Button("Silence", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#comment", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self) -> None:
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        error = self.query_one("#form-error", Static)
        try:
            import shlex

            matchers = [parse_matcher(t) for t in shlex.split(self.value("matchers"))]
            duration = parse_duration(self.value("duration"))
        except ValueError as exc:
            error.update(f"[red]{exc}[/]")
            return
        if not matchers:
            error.update("[red]at least one matcher[/]")
            return
        comment = self.value("comment").strip()
        if not comment:
            error.update("[red]a comment is required[/]")
            return
        self.dismiss(SilenceRequest(matchers, duration, comment, self.value("author") or "opskit"))

    def value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value


class Confirm(ModalScreen[bool]):
    """Shows exactly what will happen; nothing happens without 'Yes'."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "no", "No"),
        Binding("y", "yes", "Yes"),
    ]

    def __init__(self, title: str, plan: str) -> None:
        super().__init__()
        self.title_text = title
        self.plan = plan

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.plan, id="plan")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class Picker(ModalScreen[str | None]):
    """Pick one name: `:` jumps to a screen, `c` switches context."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, options: list[str], current: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.options = options
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Input(placeholder="type to narrow, Enter to choose", id="pick")
            yield OptionList(*self.options, id="options")

    def on_input_changed(self, event: Input.Changed) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([o for o in self.options if event.value.lower() in o.lower()])
        if options.option_count:
            options.highlighted = 0

    def on_input_submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.option_count and options.highlighted is not None:
            self.dismiss(str(options.get_option_at_index(options.highlighted).prompt))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.prompt))

    def action_cancel(self) -> None:
        self.dismiss(None)


class Help(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Key bindings", id="dialog-title")
            yield Static(self.text)

    def action_close(self) -> None:
        self.dismiss(None)
