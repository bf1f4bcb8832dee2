"""Overview: one glance at the whole stack; each tile leads to its screen.

Every tile line is one item on one line, cut with an ellipsis at the tile's width (never
wrapped); errors show their class first (opskit.errorclass), the raw text is left to the
screens' detail panes. The tiles take the rows the terminal has: each grid row is as tall
as its fullest tile needs, up to a fair share of the height (what a row does not need goes
to the others), so a large terminal lists more down targets, alerts and indices and a
small one shows the counts and as many rows as fit.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.css.query import NoMatches
from textual.widgets import Static

from opskit.errorclass import headline
from opskit.live import LiveState, SourceState
from opskit.models import Alert, Index, Membership, QueueDepth, ServiceHealth, Target
from opskit.output import human_bytes, number
from opskit.screens.base import ContextBar, LiveScreen
from opskit.screens.widgets import sparkline
from opskit.summary import (
    AlertSummary,
    DownTarget,
    ElasticsearchSummary,
    SummaryMemo,
    Tally,
    TargetSummary,
    readings_from_live,
    tally,
)

T = TypeVar("T")
ALERTS_LISTED = 5  # the firing alerts the tile lists before it knows its size
WIDE = 120  # from this many columns the tiles are three abreast (two below)
SPARK = 16  # the widest queue sparkline
SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
HEALTH_RANK = {"red": 0, "yellow": 1, "green": 2}
TILE_CHROME = 4  # a tile's border and padding, left and right
GAP = 2


class Tile(Static, can_focus=True):
    """A summary panel; Enter or a click opens its screen."""

    def __init__(self, title: str, mode: str) -> None:
        super().__init__(id=f"tile-{mode}", classes="tile")
        self.border_title = title
        self.mode = mode

    def on_click(self) -> None:
        self.app.switch_mode(self.mode)

    def key_enter(self) -> None:
        self.app.switch_mode(self.mode)

    def on_resize(self) -> None:
        screen = self.screen
        if isinstance(screen, OverviewScreen):
            screen.relayout()


class AlertsTile(Tile):
    """The alerts tile: up/down pick one of the alerts it lists, Enter opens that alert's
    incident screen (with none picked, Enter opens the Alerts screen)."""

    def __init__(self) -> None:
        super().__init__("Alerts", "alerts")
        self.listed: list[Alert] = []
        self.cursor = -1  # none picked

    def key_down(self) -> None:
        if self.listed:
            self.cursor = min(self.cursor + 1, len(self.listed) - 1)
            self.screen_refresh()

    def key_up(self) -> None:
        self.cursor = max(self.cursor - 1, -1)
        self.screen_refresh()

    def key_enter(self) -> None:
        if 0 <= self.cursor < len(self.listed):
            cast(LiveScreen, self.screen).oapp.open_incident(self.listed[self.cursor])
        else:
            super().key_enter()

    def screen_refresh(self) -> None:
        screen = self.screen
        if isinstance(screen, OverviewScreen):
            screen.render_body(screen.oapp.state)


# ------------------------------------------------------------------ one-line helpers


def cut(text: Text, width: int) -> Text:
    """`text` in at most `width` cells, an ellipsis where it is cut."""
    if text.cell_len > width:
        text.truncate(max(width, 0), overflow="ellipsis")
    return text


def pair(left: Text, right: Text, width: int, column: int = 0, keep_right: bool = True) -> Text:
    """`left`, a gap, `right` on one line of `width` cells. When both do not fit, the left
    part (a name) is cut first, down to a third of the line, and the right part (an
    error's class, a size) is kept whole if it can be; with `keep_right=False` the right
    part (a detail) is cut first, and left out when little of it would show. `column`:
    pad the left part to this width when there is room."""
    if not right.plain:
        return cut(left, width)
    if keep_right:
        keep_left = min(left.cell_len, max(width // 3, 8))  # what the name keeps at least
        room = max(width - left.cell_len - GAP, min(right.cell_len, width - keep_left - GAP))
        cut(right, room)
        cut(left, max(width - right.cell_len - GAP, 1))
    else:
        cut(left, width)
        room = width - max(left.cell_len, column) - GAP
        if room < min(right.cell_len, 6):
            return left
        cut(right, room)
    if column and left.cell_len < column and column + GAP + right.cell_len <= width:
        left.pad_right(column - left.cell_len)
    return cut(Text.assemble(left, " " * GAP, right), width)


def listing(section: Section, rows: int, width: int) -> list[Text]:
    """One line per item in `rows` lines: when they do not all fit, the last line says
    how many more."""
    total = section.total
    if rows <= 0 or not total:
        return []
    if total <= rows:
        return [section.line(item) for item in section.top(total)]
    shown = rows - 1
    more = Text(f"+{total - shown} more", style="dim")
    return [*(section.line(item) for item in section.top(shown)), cut(more, width)]


def source_line(src: SourceState, width: int) -> list[Text]:
    """A source's state, class first: 'prometheus unreachable since 12:00:01: connection
    refused', shorter when the tile is narrow (its title names the backend)."""
    if src.status == "loading":
        return [Text("loading…", style="dim")]
    if src.error is None:
        return []
    what = headline(src.error)
    if src.failing_since is None:
        return [cut(Text(f"✗ {what}", style="bold red"), width)]
    since = src.failing_since.astimezone().strftime("%H:%M:%S")
    for candidate in (
        src.headline(),
        f"unreachable since {since}: {what}",
        f"✗ {what} since {since}",
        f"✗ {what} {since}",
    ):
        if len(candidate) <= width:
            return [Text(candidate, style="bold red")]
    return [cut(Text(f"✗ {headline(src.error)}", style="bold red"), width)]


def membership_line(m: Membership | None, width: int) -> list[Text]:
    """A clustered backend's one line: '3/3 peers' (dim), or, degraded, '2/3 peers
    :29293 refused' / '3/3 peers, 2 disagreements' in the warning style."""
    if m is None or not m.members:
        return []
    if not m.degraded:
        return [cut(Text(f"cluster {m.headline()}", style="dim"), width)]
    text = Text(f"cluster {m.headline()}", style="bold yellow")
    for d in m.down:
        where = d.url.rsplit("//", 1)[-1]
        text.append(f"  {where} {headline(d.error) or 'down'}", style="yellow")
    if m.disagreements:
        text.append(f"  {len(m.disagreements)} disagreement(s)", style="yellow")
    return [cut(text, width)]


class Section:
    """Items listed one line each: how many there are, and the first `n` of them in
    order (only what is drawn is sorted: the top of thousands of indices or alerts)."""

    def __init__(
        self,
        line: Callable[[Any], Text],
        items: Sequence[Any] | None = None,
        *,
        count: Callable[[], int] | None = None,
        top: Callable[[int], Sequence[Any]] | None = None,
    ) -> None:
        self.line = line
        self._items = items
        self._count = count
        self._top = top
        self._total: int | None = None

    @property
    def total(self) -> int:
        if self._total is None:
            if self._count is not None:
                self._total = self._count()
            else:
                self._total = len(self._items or ())
        return self._total

    def top(self, n: int) -> Sequence[Any]:
        if self._top is not None:
            return self._top(n)
        return (self._items or ())[:n]


@dataclass
class Body:
    """A tile's lines, drawn for a number of rows: the head (the source's state and the
    counts: kept first), then the sections in the rows left. A section that does not all
    fit ends with how many more, and the sections after it are left out."""

    width: int
    head: list[Text] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def need(self, cap: int) -> int:
        """The rows it would fill, counted up to `cap`."""
        total = len(self.head)
        for section in self.sections:
            if total >= cap:
                break
            total += section.total
        return min(total, cap)

    def lines(self, rows: int) -> list[Text]:
        out = self.head[:rows]
        for section in self.sections:
            left = rows - len(out)
            if left <= 0:
                break
            out.extend(listing(section, left, self.width))
            if section.total > left:
                break
        return out


# ------------------------------------------------------------------ the tiles' lines


def targets_body(
    src: SourceState, summary: TargetSummary | None, targets: Sequence[Target] | None,
    width: int, faults: bool = False, membership: Membership | None = None,
) -> Body:  # fmt: skip
    """Counts, then one line per down target (`job instance  connection refused`), then,
    with room left, each job's up count (jobs with a down target first). HA replicas:
    one line of their members first."""
    body = Body(width, [*source_line(src, width), *membership_line(membership, width)])
    if summary is None or not summary.total:
        return body
    counts = Text.assemble(
        (f"{summary.up} up", "green"),
        "   ",
        (f"{summary.down} down", "bold red" if summary.down else "dim"),
    )
    body.head.append(cut(counts, width))

    def down_line(t: DownTarget) -> Text:
        why = headline(t.last_error) or "down"
        return pair(Text(f"{t.job} {t.instance}", style="red"), Text(why, style="dim"), width)

    body.sections.append(Section(down_line, summary.down_targets))
    if faults or not targets:
        return body
    counted: dict[str, list[int]] = {}  # job -> [up, total], counted when first needed

    def count() -> int:
        for t in targets:
            up_total = counted.setdefault(t.job, [0, 0])
            up_total[0] += t.health == "up"
            up_total[1] += 1
        return len(counted)

    column = 0

    def jobs(n: int) -> list[tuple[str, tuple[int, int]]]:
        nonlocal column
        column = min(max(len(job) for job in counted), width // 2)
        ordered = sorted(counted.items(), key=lambda kv: (kv[1][0] == kv[1][1], kv[0]))
        return [(job, (up, total)) for job, (up, total) in ordered[:n]]

    def job_line(kv: tuple[str, tuple[int, int]]) -> Text:
        job, (up, total) = kv
        style = "green" if up == total else "bold red" if up == 0 else "yellow"
        return pair(Text(job), Text(f"{up}/{total} up", style=style), width, column)

    body.sections.append(Section(job_line, count=count, top=jobs))
    return body


def alert_order(summary: AlertSummary, n: int) -> list[Alert]:
    """The first `n` firing alerts, the most severe first (the summary's order within a
    severity). The counts by severity say how many of each rank are drawn, so the scan
    stops once those are found (with critical ones enough, at once)."""
    unknown = len(SEVERITY_RANK)
    per_rank: dict[int, int] = {}
    for sev, count in summary.by_severity.items():
        rank = SEVERITY_RANK.get(sev, unknown)
        per_rank[rank] = per_rank.get(rank, 0) + count
    want: dict[int, int] = {}
    left = n
    for rank in sorted(per_rank):
        if left <= 0:
            break
        want[rank] = min(per_rank[rank], left)
        left -= want[rank]
    picked: dict[int, list[Alert]] = {rank: [] for rank in want}
    remaining = sum(want.values())
    for a in summary.top:
        if remaining <= 0:
            break
        rank = SEVERITY_RANK.get(a.severity, unknown)
        bucket = picked.get(rank)
        if bucket is not None and len(bucket) < want[rank]:
            bucket.append(a)
            remaining -= 1
    return [a for rank in sorted(picked) for a in picked[rank]]


def alerts_body(
    src: SourceState, summary: AlertSummary | None, width: int, listed: list[Alert],
    picked: int = -1, membership: Membership | None = None,
) -> Body:  # fmt: skip
    """Counts by severity, then the firing alerts, most severe first; each alert drawn is
    added to `listed` (what up/down pick from). A cluster: one line of its peers first."""
    body = Body(width, [*source_line(src, width), *membership_line(membership, width)])
    if summary is None:
        return body
    by_sev = dict(summary.by_severity)
    counts = Text(f"{summary.firing} firing  ")
    for sev, style in (("critical", "bold red"), ("warning", "yellow")):
        counts.append(f"{by_sev.pop(sev, 0)} {sev}  ", style=style)
    for sev, n in sorted(by_sev.items()):
        counts.append(f"{n} {sev}  ")
    counts.rstrip()
    body.head.append(cut(counts, width))
    body.head.append(cut(Text(f"{summary.suppressed} silenced or inhibited", style="dim"), width))
    column = 0

    def top(n: int) -> list[Alert]:
        nonlocal column
        found = alert_order(summary, n)
        column = min(max((len(a.alertname) for a in found), default=0) + 2, width // 2)
        return found

    def alert_line(a: Alert) -> Text:
        i = len(listed)
        listed.append(a)
        style = (
            "bold red" if a.severity == "critical" else "yellow" if a.severity == "warning" else ""
        )
        where = next(
            (a.labels[k] for k in ("instance", "job", "service", "queue") if a.labels.get(k)), ""
        )
        left = Text(f"{'>' if i == picked else ' '} {a.alertname}", style=style)
        right = Text(f"{a.severity} {where}".strip(), style="dim")
        line = pair(left, right, width, column, keep_right=False)
        if i == picked:
            line.stylize("reverse")
        return line

    body.sections.append(Section(alert_line, count=lambda: summary.firing, top=top))
    return body


def queues_body(
    src: SourceState, depths: list[QueueDepth] | None, state: LiveState, width: int
) -> Body:
    """One line per queue series: value / warning threshold and the last hour's sparkline
    (as wide as the tile allows, up to SPARK)."""
    body = Body(width, source_line(src, width))
    names = [len(q.queue) + 1 + len(q.series) for q in depths or []]
    column = min(max(names, default=0), width // 2)

    def queue_line(q: QueueDepth) -> Text:
        style = {"critical": "bold red", "warning": "yellow"}.get(q.state, "green")
        left = Text(f"{q.queue} {q.series}", style="bold")
        if q.note:
            return pair(left, Text("no data", style="dim"), width)
        right = Text.assemble((number(q.value), style), (f" / {q.warning:g}", "dim"))
        name = min(max(left.cell_len, column), 16)
        spark_width = min(SPARK, width - name - right.cell_len - 2 * GAP)
        if spark_width >= 4:
            history = state.queue_history.get(f"{q.queue} {q.series}", ())
            right.append(f"  {sparkline(history, spark_width)}", style=style)
        return pair(left, right, width, column)

    if depths == [] and not src.error:
        body.head.append(Text("no queues configured ([[queues]])", style="dim"))
    body.sections.append(Section(queue_line, depths or []))
    return body


def index_order(indices: Iterable[Index], n: int) -> list[Index]:
    """The first `n` of `indices`: red, then yellow, then the largest; closed ones last."""
    return heapq.nsmallest(
        n, indices, key=lambda i: (HEALTH_RANK.get(i.health, 3), -i.store_size_bytes)
    )


def elasticsearch_body(
    cluster: SourceState, indices_src: SourceState, summary: ElasticsearchSummary | None,
    indices: Sequence[Index] | None, width: int, faults: bool = False,
) -> Body:  # fmt: skip
    """Cluster health, nodes and unassigned shards, indices by health; then the indices at
    risk (red, yellow) and the largest, one line each."""
    head = source_line(cluster, width)
    if not head and indices_src.error:
        head = source_line(indices_src, width)
    body = Body(width, head)
    if summary is None:
        return body
    style = {"green": "green", "yellow": "yellow"}.get(summary.status, "bold red")
    status = Text.assemble((summary.cluster, "bold"), " ", (summary.status, style))
    nodes = Text(f"{summary.nodes} node(s), {summary.unassigned_shards} unassigned shards")
    if status.cell_len + GAP + nodes.cell_len <= width:
        head.append(Text.assemble(status, " " * GAP, nodes))
    else:
        head.extend([cut(status, width), cut(nodes, width)])
    counts = Text()
    for name, colour in (("green", "green"), ("yellow", "yellow"), ("red", "bold red")):
        counts.append(f"{summary.indices.get(name, 0)} {name}  ", style=colour)
    if summary.indices.get("closed"):
        counts.append(f"{summary.indices['closed']} closed", style="dim")
    counts.rstrip()
    head.append(cut(counts, width))
    shown = [i for i in indices or [] if i.health in ("red", "yellow")] if faults else indices
    column = 0

    def top(n: int) -> list[Index]:
        nonlocal column
        found = index_order(shown or [], n)
        column = min(max((len(i.name) for i in found), default=0), width * 2 // 3)
        return found

    def index_line(i: Index) -> Text:
        colour = {"green": "green", "yellow": "yellow", "red": "bold red"}.get(i.health, "dim")
        right = Text.assemble((i.health or "closed", colour), f" {human_bytes(i.store_size_bytes)}")
        return pair(Text(i.name), right, width, column)

    body.sections.append(Section(index_line, count=lambda: len(shown or []), top=top))
    return body


def services_body(
    src: SourceState, grafana: SourceState, summary: Tally, width: int, faults: bool = False
) -> Body:
    """One line per service (failing first, then degraded): `● name  what is wrong`."""
    body = Body(width, source_line(src, width))
    rows_of: list[tuple[str, str, str]] = []  # (colour, name, what)
    for svc in sorted(summary.services, key=lambda s: (s.ok, not s.degraded)):
        if faults and svc.ok and not svc.degraded:
            continue
        rows_of.append((_colour(svc), svc.name, _problem(svc)))
    if summary.grafana:
        if not faults:
            rows_of.append(("green", "grafana", str(summary.grafana.get("version", ""))))
    elif grafana.error:
        rows_of.insert(0, ("bold red", "grafana", headline(grafana.error)))
    column = min(max((len(name) for _, name, _ in rows_of), default=0), width // 2)

    def service_line(row: tuple[str, str, str]) -> Text:
        colour, name, what = row
        left = Text.assemble(("● ", colour), name)
        return pair(left, Text(what, style="dim"), width, column + 2)

    body.sections.append(Section(service_line, rows_of))
    return body


def _colour(svc: ServiceHealth) -> str:
    return "bold red" if not svc.ok else "yellow" if svc.degraded else "green"


def _problem(svc: ServiceHealth) -> str:
    if not svc.ok:
        return headline(svc.error) or "down"
    if svc.degraded:
        return svc.detail()
    return f"{svc.latency_ms:.0f}ms" if svc.latency_ms is not None else ""


def share(needs: Sequence[int], total: int) -> list[int]:
    """Split `total` lines between rows needing `needs`: each gets what it needs up to an
    equal share, and what a row leaves goes to the others (at least one line each)."""
    given = [0] * len(needs)
    left = total
    pending = sorted(range(len(needs)), key=lambda i: needs[i])
    while pending:
        fair = left // len(pending)
        i = pending.pop(0)
        given[i] = max(min(needs[i], fair), 1)
        left -= given[i]
    return given


@dataclass
class TileMemo:
    """A tile's body as last built, and the lines it last drew: built again only when
    what it shows changed (`key`: the ids of its sources' values and the rest it is drawn
    from; `pinned` holds those values so that their ids stay theirs)."""

    key: tuple[Any, ...]
    pinned: tuple[Any, ...]
    body: Body
    listed: list[Alert]
    rows: int = -1  # the rows `text` was drawn for
    text: Text | None = None


# a tile's sources, what else it is drawn from, and how its body is built
TileInputs = tuple[tuple[SourceState, ...], tuple[Any, ...], Callable[[list[Alert]], Body]]


def source_key(src: SourceState) -> tuple[Any, ...]:
    """What `source_line` and the stale class are drawn from (the value's identity
    aside)."""
    return (src.error, src.failing_since, src.last_ok is None, id(src.value))


# ------------------------------------------------------------------ the screen

# which tiles share a grid row: three abreast on a wide terminal, two on a narrow one
# (the Services tile spans two columns either way)
ROWS_WIDE = (("targets", "alerts", "queues"), ("indices", "services"))
ROWS_NARROW = (("targets", "alerts"), ("queues", "indices"), ("services",))


class OverviewScreen(LiveScreen):
    TITLE_TEXT = "Overview"
    SOURCES = ("targets", "alerts", "queues", "cluster", "indices", "services", "grafana")

    def __init__(self) -> None:
        super().__init__()
        self._grid_key: tuple[int, tuple[int, ...]] | None = None
        self._relayout_pending = False
        self.summary_memo = SummaryMemo()  # the status summary's pieces, per source
        self.tile_memo: dict[str, TileMemo] = {}
        self.builds: dict[str, int] = dict.fromkeys(ROWS_WIDE[0] + ROWS_WIDE[1], 0)  # tests

    def compose_body(self) -> ComposeResult:
        with Grid(id="tiles"):
            yield Tile("Targets", "targets")
            yield AlertsTile()
            yield Tile("Queues", "queues")
            yield Tile("Elasticsearch", "indices")
            yield Tile("Services", "services")

    def refresh_from(self, state: LiveState, changed: str | None) -> None:
        if not self.is_mounted:
            return
        # the overview shows each source's own banner in its tile, not one at the top
        try:
            self.query_one(ContextBar).show(self.oapp, self.TITLE_TEXT, self.SOURCES)
        except NoMatches:  # still being composed
            return
        self.render_body(state)

    def on_resize(self) -> None:
        self.relayout()

    def relayout(self) -> None:
        """Render again once the tiles have their new size (many resize at once)."""
        if not self._relayout_pending:
            self._relayout_pending = True
            self.call_after_refresh(self._relayout)

    def _relayout(self) -> None:
        self._relayout_pending = False
        if self.is_mounted:
            self.render_body(self.oapp.state)

    def grid_size(self) -> tuple[int, int]:
        """The grid's content cells (the screen's, less the bars, before layout)."""
        try:
            size = self.query_one("#tiles", Grid).content_size
        except NoMatches:
            size = None
        if size and size.width and size.height:
            return size.width, size.height
        return max(self.app.size.width - 2, 1), max(self.app.size.height - 2, 1)

    def tile_width(self, tile: Tile, columns: int, span: int) -> int:
        """The tile's text width: as laid out, or as the grid will lay it out."""
        if tile.content_size.width and self._grid_key and self._grid_key[0] == columns:
            return tile.content_size.width
        width, _ = self.grid_size()
        cell = (width - (columns - 1)) // columns
        return max(cell * span + (span - 1) - TILE_CHROME, 1)

    def render_body(self, state: LiveState) -> None:
        faults = self.oapp.faults_only
        width, height = self.grid_size()
        columns = 3 if width + 2 >= WIDE else 2
        layout = ROWS_WIDE if columns == 3 else ROWS_NARROW
        tiles = {t.mode: t for t in self.query(Tile)}
        alerts_tile = self.query_one(AlertsTile)
        widths = {
            mode: self.tile_width(tiles[mode], columns, 2 if mode == "services" else 1)
            for row in layout
            for mode in row
        }
        summary: Tally | None = None

        def judged() -> Tally:
            # the counts of the summary `opskit status` prints (summary.tally: the same
            # code), remembered per source: only a changed source's are made again
            nonlocal summary
            if summary is None:
                summary = tally(readings_from_live(state), self.summary_memo)
            return summary

        def history() -> tuple[Any, ...]:
            depths = state["queues"].value or ()
            return tuple(
                tuple(state.queue_history.get(f"{q.queue} {q.series}", ())) for q in depths
            )

        clusters = state.clusters  # the clustered backends' members (the poller's)

        def cluster_key(backend: str) -> tuple[Any, ...]:  # what membership_line shows
            m = clusters.get(backend)
            if m is None:
                return ()
            return (m.headline(), tuple((d.url, d.error) for d in m.down), len(m.disagreements))

        # per tile: the sources it is drawn from, what else it depends on, and its builder
        inputs: dict[str, TileInputs] = {
            "targets": (
                (state["targets"],), (widths["targets"], faults, cluster_key("prometheus")),
                lambda _: targets_body(
                    state["targets"], judged().targets, state["targets"].value,
                    widths["targets"], faults, clusters.get("prometheus"),
                ),
            ),
            "alerts": (
                (state["alerts"],),
                (widths["alerts"], alerts_tile.cursor, cluster_key("alertmanager")),
                lambda listed: alerts_body(
                    state["alerts"], judged().alerts, widths["alerts"], listed,
                    alerts_tile.cursor, clusters.get("alertmanager"),
                ),
            ),
            "queues": (
                (state["queues"],), (widths["queues"], history()),
                lambda _: queues_body(state["queues"], judged().queues, state, widths["queues"]),
            ),
            "indices": (
                (state["cluster"], state["indices"]), (widths["indices"], faults),
                lambda _: elasticsearch_body(
                    state["cluster"], state["indices"], judged().elasticsearch,
                    state["indices"].value, widths["indices"], faults,
                ),
            ),
            "services": (
                (state["services"], state["grafana"]), (widths["services"], faults),
                lambda _: services_body(
                    state["services"], state["grafana"], judged(), widths["services"], faults
                ),
            ),
        }  # fmt: skip
        memos: dict[str, TileMemo] = {}
        for mode, (sources, rest, build) in inputs.items():
            key = (*(source_key(src) for src in sources), *rest)
            memo = self.tile_memo.get(mode)
            if memo is None or memo.key != key:
                listed: list[Alert] = []
                memo = TileMemo(key, tuple(src.value for src in sources), build(listed), listed)
                self.tile_memo[mode] = memo
                self.builds[mode] += 1
            memos[mode] = memo
        # each row as tall as its fullest tile needs, within the height there is
        budget = max(height - 2 * len(layout), len(layout))
        needs = [max(memos[mode].body.need(budget) for mode in row) or 1 for row in layout]
        given = share(needs, budget)
        for row, rows in zip(layout, given, strict=True):
            for mode in row:
                memo = memos[mode]
                if memo.rows != rows or memo.text is None:
                    memo.listed.clear()  # the alerts drawn, in order (what up/down pick)
                    memo.rows = rows
                    memo.text = Text("\n").join(memo.body.lines(rows))
                    tiles[mode].update(memo.text)
        alerts_tile.listed = list(memos["alerts"].listed)
        alerts_tile.cursor = min(alerts_tile.cursor, len(alerts_tile.listed) - 1)
        self._apply_grid(columns, tuple(rows + 2 for rows in given))
        for mode, src in (
            ("targets", state["targets"]),
            ("alerts", state["alerts"]),
            ("queues", state["queues"]),
            ("indices", state["cluster"]),
            ("services", state["services"]),
        ):
            tiles[mode].set_class(src.status in ("stale", "unreachable"), "-stale")

    def _apply_grid(self, columns: int, heights: tuple[int, ...]) -> None:
        key = (columns, heights)
        if key == self._grid_key:
            return
        self._grid_key = key
        grid = self.query_one("#tiles", Grid)
        grid.styles.grid_size_columns = columns
        grid.styles.grid_size_rows = len(heights)
        grid.set_styles(f"grid-rows: {' '.join(str(h) for h in heights)};")
