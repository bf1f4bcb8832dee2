"""The top bar's text for a given width: a pure function of the bar's state, so each
width can be tested without a terminal.

What always shows: the context (in its colour) and the read-only marker, and every
failing backend, by name and error class (`es ✗ refused`). What gives way, in order, when
the bar does not fit: the backends' full names (prometheus → prom), their poll latencies,
the screen's title, the healthy backends one by one (collapsed into `5 ok`, with the title
back if it fits), a failing backend's last good update, then failing backends with the
same error are grouped (`prom am ✗ refused`); last of all the refresh state (or replay
cursor) is cut with an ellipsis.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text

from opskit.errorclass import classify, fit, headline

SHORT_NAMES = {
    "prometheus": "prom",
    "alertmanager": "am",
    "elasticsearch": "es",
    "grafana": "graf",
    "services": "svc",
    "jaeger": "jgr",
}
# the bar's shorter words for an error class (the label everywhere else)
SHORT_CLASS = {"connection refused": "refused"}
STATUS_STYLE = {"ok": "green", "stale": "yellow", "unreachable": "red"}
GAP = "  "
UNCLASSIFIED = 24  # cells of an unclassified error's text in the bar


@dataclass(frozen=True, slots=True)
class BackendState:
    """One backend's worst source: its status, last good update, latency, error."""

    name: str
    status: str  # ok | stale | unreachable | loading
    last_ok: str = ""  # "HH:MM:SS" ("" when it never answered)
    latency_ms: float = 0.0
    error: str = ""  # the raw error ("" when none)

    @property
    def failing(self) -> bool:
        return self.status in ("stale", "unreachable")

    @property
    def error_class(self) -> str:
        """`connection refused`, `DNS`, `timeout`, `TLS`, `HTTP 503`, `auth`, or the start
        of the error's first line when it has no class."""
        found = classify(self.error)
        if found.kind == "other":
            return fit(headline(self.error), UNCLASSIFIED) or self.status
        return found.label


@dataclass(frozen=True, slots=True)
class BarState:
    context: str
    colour: str
    read_only: bool
    title: str
    backends: tuple[BackendState, ...]
    tail: str  # "[every 5s]", "[paused]" or "[replay 2026-01-24 12:00:00 (1/2)]"
    tail_style: str = "dim"
    faults_only: bool = False


@dataclass(frozen=True, slots=True)
class Form:
    """How much of the bar to show."""

    short: bool = False  # abbreviated backend names
    latency: bool = True
    collapse: bool = False  # healthy backends as a count
    title: bool = True
    failing_time: bool = True  # a failing backend's last good update
    group: bool = False  # failing backends with the same error as one: `prom am ✗ refused`


# from the fullest to the most compact; the first that fits is used
FORMS = (
    Form(),
    Form(short=True),
    Form(short=True, latency=False),
    Form(short=True, latency=False, title=False),
    Form(short=True, latency=False, collapse=True),
    Form(short=True, latency=False, collapse=True, title=False),
    Form(short=True, latency=False, collapse=True, title=False, failing_time=False),
    Form(short=True, latency=False, collapse=True, title=False, failing_time=False, group=True),
)


def bar_text(state: BarState, width: int) -> Text:
    """The bar in at most `width` cells (one line)."""
    text = Text()
    for form in FORMS:
        text = _render(state, form)
        if text.cell_len <= width:
            return text
    text.truncate(max(width, 0), overflow="ellipsis")
    return text


def _render(state: BarState, form: Form) -> Text:
    parts: list[Text] = []
    head = Text(f" {state.context} ", style=f"bold reverse {state.colour}")
    if state.read_only:
        head.append(" read-only", style="bold yellow")
    parts.append(head)
    if form.title and state.title:
        parts.append(Text(state.title, style="bold"))
    failing = [b for b in state.backends if b.failing]
    others = [b for b in state.backends if not b.failing]
    # failing first, never left out
    parts.extend(_grouped(failing) if form.group else (_failing(b, form) for b in failing))
    if form.collapse:
        parts.extend(_collapsed(others))
    else:
        parts.extend(_healthy(b, form) for b in others)
    tail = Text(state.tail, style=state.tail_style)
    if state.faults_only:
        tail.append(GAP + "faults only", style="bold magenta")
    if tail:
        parts.append(tail)
    return Text(GAP).join(parts)


def _name(backend: BackendState, form: Form) -> str:
    return SHORT_NAMES.get(backend.name, backend.name) if form.short else backend.name


def _failing(backend: BackendState, form: Form) -> Text:
    style = STATUS_STYLE[backend.status]
    text = Text(_name(backend, form), style=f"bold {style}")
    label = backend.error_class
    text.append(f" ✗ {SHORT_CLASS.get(label, label) if form.short else label}", style=style)
    if form.failing_time and backend.last_ok:
        text.append(f" {backend.last_ok}", style="dim")
    return text


def _grouped(failing: Iterable[BackendState]) -> list[Text]:
    groups: dict[tuple[str, str], list[str]] = {}
    for b in failing:
        label = b.error_class
        groups.setdefault((SHORT_CLASS.get(label, label), b.status), []).append(
            SHORT_NAMES.get(b.name, b.name)
        )
    out = []
    for (label, status), names in groups.items():
        style = STATUS_STYLE[status]
        out.append(Text.assemble((" ".join(names), f"bold {style}"), (f" ✗ {label}", style)))
    return out


def _healthy(backend: BackendState, form: Form) -> Text:
    text = Text(f"{_name(backend, form)} ", style="dim")
    text.append(backend.last_ok or "--:--:--", style=STATUS_STYLE.get(backend.status, "dim"))
    if form.latency and backend.status == "ok":
        text.append(f" {backend.latency_ms:.0f}ms", style="dim")
    return text


def _collapsed(backends: Iterable[BackendState]) -> list[Text]:
    ok = loading = 0
    for b in backends:
        if b.status == "ok":
            ok += 1
        else:
            loading += 1
    out: list[Text] = []
    if ok:
        out.append(Text(f"{ok} ok", style="green"))
    if loading:
        out.append(Text(f"{loading} loading", style="dim"))
    return out
