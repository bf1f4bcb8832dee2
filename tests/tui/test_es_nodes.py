"""The Indices screen's nodes view (`N`): a fixed three-node state, then the real labs'
nodes fetched on demand through the Elasticsearch client (the default lab's one node, the
HA lab's three, one of them stopped and started again)."""

from __future__ import annotations

from rich.text import Text

from opskit.config import Settings
from opskit.models import EsNode
from opskit.screens.app import OpskitApp, create_app
from opskit.screens.details import DetailPane
from opskit.screens.indices import IndicesScreen
from tests.conftest import Lab, get_json
from tests.ha import conftest as ha_fixtures
from tests.ha.conftest import HALab, ha_server_stopped
from tests.tui.fixed import fixed_app
from tests.tui.test_live import SIZE, lab_settings, until

GIB = 2**30
# the HA lab's fixtures (tests/ha/conftest.py), for the test on its three nodes
ha_lab = ha_fixtures.ha_lab
ha_settings = ha_fixtures.ha_settings


def node(name: str, master: bool, shards: int, disk_pct: float) -> EsNode:
    return EsNode(
        name=name, ip="127.0.0.1", roles="dm", master=master, heap_percent=25,
        ram_percent=50, cpu_percent=3, load_1m=0.5, disk_used_percent=disk_pct,
        version="8.14.1", id=f"id-{name}", role_names=["master", "data"],
        heap_used_bytes=GIB // 4, heap_max_bytes=GIB,
        disk_used_bytes=int(disk_pct * GIB), disk_total_bytes=100 * GIB, shards=shards,
    )  # fmt: skip


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def screen_of(app: OpskitApp) -> IndicesScreen:
    screen = app.screen
    assert isinstance(screen, IndicesScreen)
    return screen


async def test_n_toggles_a_nodes_table_from_a_fixed_state() -> None:
    app = fixed_app("indices")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = screen_of(app)
        screen.put_nodes(
            [node("es-2", False, 7, 41.0), node("es-1", True, 8, 40.0), node("es-3", False, 7, 42)]
        )
        assert not screen.nodes_table.display and screen.table.display
        await pilot.press("N")
        await pilot.pause()
        assert screen.nodes_shown and screen.nodes_table.display
        assert not screen.table.display and not screen.query_one(DetailPane).display
        assert screen.nodes_table.keys == ["es-2", "es-1", "es-3"]  # as given (client sorts)
        row = [plain(c) for c in screen.nodes_table.get_row("es-1")]
        assert row[:3] == ["es-1", "master, data", "elected"]
        assert row[3] == "256.0MiB / 1.0GiB (25%)" and row[5] == "8"
        assert row[4].endswith("(40%)")
        assert plain(screen.nodes_table.get_row("es-2")[2]) == ""
        note = str(screen.query_one("#nodes-note").render())
        assert "3 node(s), elected master es-1" in note
        assert screen.nodes_fetches == 0  # no backend: nothing fetched
        # the index actions are off while the nodes are shown
        assert screen.check_action("snapshot", ()) is False
        await pilot.press("N")
        await pilot.pause()
        assert not screen.nodes_shown and screen.table.display and not screen.nodes_table.display


async def test_nodes_view_fetches_the_labs_nodes_on_demand(lab: Lab) -> None:
    expected = sorted(r["name"] for r in get_json(f"{lab.elasticsearch}/_cat/nodes?format=json"))
    app = create_app(lab_settings(lab), refresh=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        assert await until(pilot.pause, lambda: isinstance(app.screen, IndicesScreen))
        screen = screen_of(app)
        assert screen.nodes_fetches == 0  # nothing fetched until the view is asked for
        await pilot.press("N")
        assert await until(pilot.pause, lambda: screen.nodes_table.keys == expected, 30)
        assert screen.nodes_fetches >= 1 and not screen.nodes_error
        cells = {k: [plain(c) for c in screen.nodes_table.get_row(k)] for k in expected}
        assert sum(c[2] == "elected" for c in cells.values()) == 1
        for c in cells.values():
            assert "master" in c[1] and "data" in c[1]
            assert "/" in c[3] and "/" in c[4] and c[5].isdigit()
        # shown, it refreshes with the polls (at most once per interval)
        first = screen.nodes_fetches
        assert await until(pilot.pause, lambda: screen.nodes_fetches > first, 20)


async def test_the_ha_clusters_nodes_and_a_stopped_one(
    ha_lab: HALab, ha_settings: Settings
) -> None:
    """The HA lab's three nodes; es-3 stopped while the view is shown drops out of it (the
    view refreshes with the polls), and comes back once started."""
    app = create_app(ha_settings, refresh=2.0)
    three = ["es-1", "es-2", "es-3"]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        assert await until(pilot.pause, lambda: isinstance(app.screen, IndicesScreen))
        screen = screen_of(app)
        await pilot.press("N")
        assert await until(pilot.pause, lambda: screen.nodes_table.keys == three, 30)
        rows = {k: [plain(c) for c in screen.nodes_table.get_row(k)] for k in three}
        assert [k for k, r in rows.items() if r[2] == "elected"] != []
        assert all(int(r[5]) > 0 for r in rows.values())  # every node holds shard copies
        with ha_server_stopped("elasticsearch_3"):
            assert await until(pilot.pause, lambda: screen.nodes_table.keys == three[:2], 60)
            note = str(screen.query_one("#nodes-note").render())
            assert note.startswith("2 node(s)")
        assert await until(pilot.pause, lambda: screen.nodes_table.keys == three, 60)
