"""The top bar's text for a given width: a pure function of the bar's state, so each
width can be tested without a terminal.

What always shows: the context (in its colour) and the read-only marker, and every
failing backend, by name and error class (`es ✗ refused`). What gives way, in order, when
the bar does not fit: the backends' full names (prometheus → prom), their poll latencies,
the screen's title, the healthy backends one by one (collapsed into `5 ok`, with the title
back if it fits), a failing backend's last good update, then failing backends with the
same error are grouped (`prom am ✗ refused`); last of all the refresh state (or replay
cursor) is cut with an ellipsis. A clustered backend that answers with a member down or
its members disagreeing (`opskit.models.Membership.degraded`) shows as `am 2/3` (or
`am 3/3 ≠`) in the warning style, after the failing ones and never collapsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from rich.text import Text

from opskit.errorclass import classify, fit, headline
from opskit.models import Membership

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
DEGRADED_STYLE = "bold yellow"
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
    members: str = ""  # a clustered backend's members answering: "2/3" ("" when one server)
    disagree: bool = False  # its members disagree (a peer set, a config, an alert)

    @property
    def failing(self) -> bool:
        return self.status in ("stale", "unreachable")

    @property
    def degraded(self) -> bool:
        """Answering, with a member down or its members disagreeing."""
        if self.failing or not self.members:
            return False
        up, _, total = self.members.partition("/")
        return up != total or self.disagree

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


def with_cluster(backend: BackendState, membership: Membership | None) -> BackendState:
    """The backend with its cluster's members (`LiveState.clusters`), when clustered."""
    if membership is None or not membership.members:
        return backend
    members = f"{len(membership.up)}/{len(membership.members)}"
    return replace(backend, members=members, disagree=bool(membership.disagreements))


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
    degraded = [b for b in state.backends if b.degraded]
    others = [b for b in state.backends if not b.failing and not b.degraded]
    # failing first, then degraded clusters: never left out
    parts.extend(_grouped(failing) if form.group else (_failing(b, form) for b in failing))
    parts.extend(_degraded(b, form) for b in degraded)
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


def _degraded(backend: BackendState, form: Form) -> Text:
    text = Text(f"{_name(backend, form)} {backend.members}", style=DEGRADED_STYLE)
    if backend.disagree:
        text.append(" ≠", style=DEGRADED_STYLE)
    if form.latency:
        text.append(f" {backend.latency_ms:.0f}ms", style="dim")
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
