"""Density and legibility at any terminal size (issue #18), on fixed data (no lab).

The top bar is a pure function of its state and a width (screens/topbar.py): tested at
several widths. The Overview is run headless at 80x24, 100x30 and 200x50 with the fixed
snapshot data plus down targets whose last error is a real Prometheus Go error string and
a failing Elasticsearch: no tile line is wider than its tile (nothing wraps), the raw Go
string is not on the screen but its class is, the bar fits and names the failing backend,
and the large terminal lists more rows than the small one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.cells import cell_len
from rich.text import Text

from opskit.live import LiveState
from opskit.models import Index
from opskit.screens.app import OpskitApp
from opskit.screens.base import ContextBar
from opskit.screens.overview import AlertsTile, Tile, pair, share
from opskit.screens.topbar import BackendState, BarState, bar_text
from tests.tui.fixed import fixed_app, fixed_state, target

# what Prometheus' scrape loop reports for a refused connection (targets' lastError)
GO_ERROR = (
    'Get "http://10.0.3.17:19100/metrics": dial tcp 10.0.3.17:19100: connect: connection refused'
)
GO_TIMEOUT = (
    'Get "http://10.0.3.18:19100/metrics": context deadline exceeded (Client.Timeout '
    "exceeded while awaiting headers)"
)
SIZES = [(80, 24), (100, 30), (200, 50)]
BACKENDS = ("prometheus", "alertmanager", "elasticsearch", "services", "grafana")


# ------------------------------------------------------------------ the bar, pure


def bar(failing: str | None = None, read_only: bool = True, tail: str = "[every 5s]") -> BarState:
    backends = tuple(
        BackendState(name, "stale", "12:00:00", 0.0, "connection refused")
        if name == failing
        else BackendState(name, "ok", "12:00:05", 12.0)
        for name in BACKENDS
    )
    return BarState("prod-eu", "red", read_only, "Overview", backends, tail)


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 200])
def test_the_bar_fits_and_keeps_the_context(width: int) -> None:
    text = bar_text(bar(), width)
    assert text.cell_len <= width
    assert text.plain.startswith(" prod-eu  read-only")


def test_the_bar_gives_way_in_order() -> None:
    full = bar_text(bar(), 200).plain
    assert "prometheus 12:00:05 12ms" in full and "elasticsearch 12:00:05 12ms" in full
    assert "Overview" in full and full.endswith("[every 5s]")
    # 140: abbreviated names, latencies kept
    short = bar_text(bar(), 140).plain
    assert "prom 12:00:05 12ms" in short and "es 12:00:05 12ms" in short
    assert "prometheus" not in short
    # 120: no latencies
    nolat = bar_text(bar(), 120).plain
    assert "prom 12:00:05" in nolat and "12ms" not in nolat and "Overview" in nolat
    # 105: no title either, every backend still named
    untitled = bar_text(bar(), 105).plain
    assert "Overview" not in untitled and all(n in untitled for n in ("prom ", "graf "))
    # 60: the healthy backends collapsed into a count, the refresh state kept
    collapsed = bar_text(bar(), 60).plain
    assert "5 ok" in collapsed and "prom" not in collapsed
    assert collapsed.endswith("[every 5s]")


@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
def test_a_failing_backend_is_never_hidden(width: int) -> None:
    text = bar_text(bar(failing="elasticsearch"), width)
    plain = text.plain
    assert text.cell_len <= width
    assert "prod-eu" in plain and "read-only" in plain
    assert "es ✗ refused" in plain or "elasticsearch ✗ connection refused" in plain
    # named before any healthy backend
    cross = plain.index("✗")
    for name in ("prom ", "am ", "graf ", "prometheus ", "grafana "):
        assert name not in plain or plain.index(name) > cross


def test_the_collapsed_bar_counts_the_healthy_and_names_the_failing() -> None:
    plain = bar_text(bar(failing="alertmanager"), 60).plain
    assert "am ✗ refused" in plain and "4 ok" in plain


@pytest.mark.parametrize("width", [60, 80])
def test_every_failing_backend_is_named_when_all_fail(width: int) -> None:
    backends = tuple(
        BackendState(name, "unreachable", "", 0.0, "connection refused") for name in BACKENDS
    )
    state = BarState("prod-eu", "red", True, "Overview", backends, "[every 5s]")
    text = bar_text(state, width)
    assert text.cell_len <= width
    assert "prom am es svc graf ✗ refused" in text.plain


def test_a_failing_backend_with_an_unclassified_error_shows_its_first_line() -> None:
    backends = (BackendState("elasticsearch", "unreachable", "", 0.0, "shape\nmore"),)
    plain = bar_text(BarState("dev", "cyan", False, "Indices", backends, "[paused]"), 80).plain
    assert "elasticsearch ✗ shape" in plain and "more" not in plain


def test_the_replay_cursor_follows_the_backends() -> None:
    tail = "[replay 2026-01-24 12:01:00 (2/2)]"
    full = bar_text(bar(tail=tail), 200).plain
    assert full.endswith(tail)
    narrow = bar_text(bar(tail=tail), 60)  # cut last, with an ellipsis
    assert narrow.cell_len <= 60 and "prod-eu" in narrow.plain


# ------------------------------------------------------------------ the tiles' helpers


def test_a_pair_keeps_the_class_and_cuts_the_name() -> None:
    line = pair(Text("email-service email-service:5000"), Text("connection refused"), 34)
    assert line.cell_len <= 34
    assert line.plain.endswith("connection refused") and "…" in line.plain


def test_share_gives_what_is_needed_and_the_rest_to_the_others() -> None:
    assert share([3, 30], 20) == [3, 17]
    assert share([30, 30], 20) == [10, 10]
    assert share([2, 2, 2], 20) == [2, 2, 2]
    assert sum(share([9, 40, 1], 16)) <= 16


# ------------------------------------------------------------------ the Overview, headless


def dense_state(extra: int = 30) -> LiveState:
    """The fixed snapshot data plus `extra` down targets with Prometheus' own error
    strings, as many indices, and Elasticsearch's cluster health failing."""
    state = fixed_state()
    targets = list(state["targets"].value)
    for n in range(extra):
        error = GO_ERROR if n % 2 == 0 else GO_TIMEOUT
        targets.append(target("node", f"10.0.3.{n}:19100", "down", error))
    state["targets"].value = targets
    indices = list(state["indices"].value)
    for n in range(extra):
        health = "red" if n == 7 else "green"
        indices.append(
            Index(f"logs-app-{n:02d}", health, "open", n, (n + 1) << 20, 1, 0, None, f"x{n}")
        )
    state["indices"].value = indices
    cluster = state["cluster"]
    cluster.error = "connection refused"
    cluster.error_title = "elasticsearch unreachable"
    cluster.failing_since = datetime(2026, 1, 24, 12, 0, 1, tzinfo=UTC)
    return state


def dense_app(state: LiveState) -> OpskitApp:
    app = fixed_app("overview")
    app.state = state  # poll=False: the screens read this state only
    return app


def tile_lines(tile: Tile) -> list[str]:
    return str(tile.render()).splitlines()


def screen_text(app: OpskitApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def check_fits(app: OpskitApp, size: tuple[int, int]) -> None:
    """Every tile line fits its tile (so none wraps) and every line is on screen; the bar
    fits and names the failing backend."""
    for tile in app.screen.query(Tile):
        width, height = tile.content_size
        lines = tile_lines(tile)
        assert lines, f"{tile.id} is empty at {size}"
        for line in lines:
            assert cell_len(line) <= width, f"{tile.id} at {size}: {line!r} > {width}"
        assert len(lines) <= height, f"{tile.id} at {size}: {len(lines)} lines > {height}"
    bar = app.screen.query_one(ContextBar)
    plain = str(bar.render())
    assert cell_len(plain) <= bar.content_size.width, f"{plain!r} at {size}"
    assert "es ✗ refused" in plain or "elasticsearch ✗ connection refused" in plain
    assert "default" in plain


@pytest.mark.parametrize("size", SIZES)
async def test_overview_lines_fit_at_every_size(size: tuple[int, int]) -> None:
    app = dense_app(dense_state())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.pause()
        check_fits(app, size)
        screen = screen_text(app)
        # the class first, never Prometheus' raw Go string (that is for detail panes)
        assert "dial tcp" not in screen and 'Get "http' not in screen
        targets = "\n".join(tile_lines(app.screen.query_one("#tile-targets", Tile)))
        assert "connection refused" in targets and "timeout" in targets
        assert "node 10.0.3.0" in targets
        # the failing source's line in its tile, by class
        es = "\n".join(tile_lines(app.screen.query_one("#tile-indices", Tile)))
        assert "connection refused" in es and "12:00:01" in es
        # one line per service
        services = tile_lines(app.screen.query_one("#tile-services", Tile))
        assert [line.split()[1] for line in services[:3]] == ["kibana", "loki", "grafana"]


async def test_a_large_terminal_lists_more_rows_than_a_small_one() -> None:
    counts: dict[tuple[int, int], dict[str, int]] = {}
    for size in ((80, 24), (200, 50)):
        app = dense_app(dense_state())
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.pause()
            counts[size] = {str(tile.id): len(tile_lines(tile)) for tile in app.screen.query(Tile)}
            targets = tile_lines(app.screen.query_one("#tile-targets", Tile))
            indices = tile_lines(app.screen.query_one("#tile-indices", Tile))
            if size == (80, 24):  # the counts first, then what fits, then how many more
                assert any("up" in line and "down" in line for line in targets)
                assert targets[-1].startswith("+") and targets[-1].endswith("more")
            else:  # red indices first, then the largest
                assert "logs-app-07" in indices[3] and "red" in indices[3]
                assert "logs-dovecot" in indices[4] and "yellow" in indices[4]
                assert "logs-app-29" in indices[5]  # the largest green one
    small, large = counts[(80, 24)], counts[(200, 50)]
    assert large["tile-targets"] > small["tile-targets"] + 10
    assert large["tile-indices"] > small["tile-indices"] + 10


async def test_a_resize_refits_the_bar_and_the_tiles() -> None:
    app = dense_app(dense_state())
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.pause()
        wide = str(app.screen.query_one(ContextBar).render())
        assert "elasticsearch ✗ connection refused" in wide and "prometheus" in wide
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        check_fits(app, (80, 24))
        narrow = str(app.screen.query_one(ContextBar).render())
        assert "prometheus" not in narrow


async def test_the_small_alerts_tile_lists_the_most_severe_first_and_picks() -> None:
    app = dense_app(dense_state())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        tile = app.screen.query_one(AlertsTile)
        tile.focus()
        await pilot.press("down")
        assert tile.cursor == 0
        assert f"> {tile.listed[0].alertname}" in str(tile.render())
        assert tile.listed[0].severity == "critical"  # the most severe first
