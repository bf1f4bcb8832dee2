"""The diff engine (tasks.grafana_diff) on constructed states: added, removed and changed
objects per kind and org, panels matched by id then title, bounded output."""

from __future__ import annotations

import copy
from typing import Any

from opskit.tasks.grafana_diff import diff_json, diff_states, match_panels, walk


def dash(uid: str, title: str, panels: int = 3) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["a"],
        "panels": [
            {
                "id": n + 1,
                "type": "timeseries",
                "title": f"panel {n}",
                "gridPos": {"x": 0, "y": n * 8, "w": 12, "h": 8},
                "targets": [{"refId": "A", "expr": f"up{{job='j{n}'}}"}],
            }
            for n in range(panels)
        ],
    }


def state() -> dict[int, Any]:
    return {
        1: {
            "dashboards": {"d1": dash("d1", "One"), "d2": dash("d2", "Two")},
            "folders": {"f1": {"uid": "f1", "title": "Team", "parentUid": None}},
            "datasources": {"ds1": {"uid": "ds1", "name": "Prom", "url": "http://p:9090"}},
        }
    }


def test_equal_states_do_not_differ() -> None:
    d = diff_states(state(), state())
    assert not d.differs
    assert d.counts() == {"added": 0, "removed": 0, "changed": 0, "unchanged": 4}


def test_one_panel_title_is_exactly_that_path() -> None:
    live = state()
    live[1]["dashboards"]["d1"]["panels"][1]["title"] = "renamed"
    d = diff_states(state(), live)
    assert d.differs
    (change,) = d.orgs[0].kinds["dashboards"].changed
    assert change.key == "d1"
    assert [f.path for f in change.fields] == ["panels[id=2].title"]
    assert change.fields[0].before == "panel 1" and change.fields[0].after == "renamed"
    (panel,) = change.panels
    assert (panel.id, panel.change, panel.fields) == (2, "changed", ["title"])


def test_added_removed_per_kind() -> None:
    live = state()
    del live[1]["dashboards"]["d2"]
    live[1]["dashboards"]["d3"] = dash("d3", "Three")
    live[1]["datasources"]["ds1"]["url"] = "http://q:9090"
    d = diff_states(state(), live)
    kinds = d.orgs[0].kinds
    assert [r.key for r in kinds["dashboards"].added] == ["d3"]
    assert [r.name for r in kinds["dashboards"].removed] == ["Two"]
    assert [f.path for f in kinds["datasources"].changed[0].fields] == ["url"]
    assert not kinds["folders"].differs
    assert d.counts() == {"added": 1, "removed": 1, "changed": 1, "unchanged": 2}


def test_panels_matched_by_id_then_title_not_position() -> None:
    before = dash("d", "D", 3)
    after = copy.deepcopy(before)
    after["panels"].insert(0, {"id": 9, "title": "new one", "type": "stat"})
    after["panels"][2]["id"] = 20  # panel 1 got a new id: matched by its title
    change = diff_states({1: {"dashboards": {"d": before}}}, {1: {"dashboards": {"d": after}}})
    (c,) = change.orgs[0].kinds["dashboards"].changed
    by = {(p.id, p.change): p.fields for p in c.panels}
    assert by == {(20, "changed"): ["id"], (9, "added"): []}
    pairs, removed, added = match_panels(before["panels"], after["panels"])
    assert len(pairs) == 3 and not removed and [p["id"] for p in added] == [9]


def test_row_panels_and_removed_panel() -> None:
    before = {"uid": "r", "title": "R", "panels": [
        {"id": 1, "type": "row", "title": "row", "panels": [{"id": 2, "title": "inner"}]},
        {"id": 3, "title": "gone"},
    ]}  # fmt: skip
    after = copy.deepcopy(before)
    after["panels"][0]["panels"][0]["title"] = "inner2"
    del after["panels"][1]
    c = diff_states({1: {"dashboards": {"r": before}}}, {1: {"dashboards": {"r": after}}})
    (ch,) = c.orgs[0].kinds["dashboards"].changed
    assert [(f.path, f.change) for f in ch.fields] == [
        ("panels[id=2].title", "changed"),
        ("panels[id=3]", "removed"),
    ]


def test_backup_shaped_objects_and_volatile_fields() -> None:
    b = {"uid": "x", "folderUid": "f1", "dashboard": {**dash("x", "X"), "version": 3, "id": 7}}
    a = copy.deepcopy(b)
    a["dashboard"]["version"] = 9
    a["dashboard"]["id"] = 8
    assert not diff_states({1: {"dashboards": {"x": b}}}, {1: {"dashboards": {"x": a}}}).differs
    a["folderUid"] = "f2"
    a["dashboard"]["panels"][0]["targets"][0]["expr"] = "up"
    c = diff_states({1: {"dashboards": {"x": b}}}, {1: {"dashboards": {"x": a}}})
    paths = [f.path for f in c.orgs[0].kinds["dashboards"].changed[0].fields]
    assert paths == ["folderUid", "panels[id=1].targets[0].expr"]


def test_normalized_state_shape() -> None:
    b = {"uid": "n", "folderUid": "", "model": dash("n", "N"), "permissions": []}
    a = copy.deepcopy(b)
    a["model"]["panels"][2]["title"] = "t"
    a["permissions"] = [{"role": "Viewer", "permission": 1}]
    c = diff_states({1: {"dashboards": {"n": b}}}, {1: {"dashboards": {"n": a}}})
    (ch,) = c.orgs[0].kinds["dashboards"].changed
    assert [f.path for f in ch.fields] == ["permissions[0]", "panels[id=3].title"]
    assert ch.name == "N"


def test_output_is_bounded() -> None:
    b = {"uid": "big", "title": "Big", "panels": [{"id": i, "title": f"p{i}"} for i in range(200)]}
    a = {**b, "panels": [{"id": i, "title": f"q{i}", "x": "y" * 500} for i in range(200)]}
    c = diff_states({1: {"dashboards": {"big": b}}}, {1: {"dashboards": {"big": a}}}, 10)
    (ch,) = c.orgs[0].kinds["dashboards"].changed
    assert len(ch.fields) == 10 and ch.more_fields == 390
    assert all(len(str(f.after)) <= 120 for f in ch.fields)


def test_orgs_added_and_removed() -> None:
    d = diff_states(state(), {2: state()[1]})
    assert [(o.org_id, o.presence) for o in d.orgs] == [(1, "removed"), (2, "added")]
    out = diff_json(d)
    assert out["differs"] is True
    assert out["orgs"][1]["kinds"]["dashboards"]["added"][0] == {"key": "d1", "name": "One"}


def test_walk_lists_and_keys() -> None:
    got = [(f.path, f.change) for f in walk({"a b": [1, 2], "k": 1}, {"a b": [1], "k": 2})]
    assert got == [('["a b"][1]', "removed"), ("k", "changed")]
