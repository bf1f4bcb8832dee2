"""SVG snapshots of every screen at 80x24, 100x30 and 200x50 on the lab's data.

The data is the test lab captured once and committed (tests/tui/labdata/lab.json,
written by `python -m tests.tui.capture_lab`); "now" is frozen at the capture's instant
and TZ is UTC, so the snapshots are the same on every run. The last test captures the
lab again and checks it still has the committed data's shape (its jobs, index patterns,
services, fields), so the fixture cannot drift from the real lab unnoticed.

    .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update   # rewrite
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest

import opskit.screens.incident  # noqa: F401  (imported before freeze_now patches it)
from opskit.models import to_json
from opskit.screens.widgets import KeyedTable
from tests.conftest import Lab
from tests.tui import capture_lab
from tests.tui.capture_lab import INCIDENT_KEY, SILENCED, YELLOW_INDEX
from tests.tui.fixed import freeze_now, lab_app, lab_data, lab_now

SIZES = {"80x24": (80, 24), "100x30": (100, 30), "200x50": (200, 50)}


@dataclass(frozen=True)
class Case:
    """A screen as the snapshot shows it: `mode`, then (optionally) the row whose key
    contains `select` highlighted in `table` and `keys` pressed."""

    mode: str
    select: str = ""
    table: str = ""  # a CSS selector of the KeyedTable ("" for the screen's first)
    keys: tuple[str, ...] = ()
    incident: bool = False


CASES: dict[str, Case] = {
    "overview": Case("overview"),
    "targets": Case("targets"),
    "targets-detail": Case("targets", select="email-service|", keys=("enter",)),
    "alerts": Case("alerts", select=INCIDENT_KEY),  # the alert detail pane is always shown
    "silences": Case("silences"),
    "queues": Case("queues"),
    "indices": Case("indices"),
    "indices-detail": Case("indices", select=YELLOW_INDEX, keys=("enter",)),
    "services": Case("services"),
    "services-detail": Case("services", select="jaeger", keys=("enter",)),
    "doctor": Case("doctor"),  # its finding detail is always shown
    "traces": Case("traces"),
    "traces-spans": Case("traces", select="failing", table="#trace-list", keys=("enter",)),
    "incident": Case("alerts", incident=True),
}


@pytest.fixture(autouse=True)
def _frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    freeze_now(monkeypatch, lab_now())


def _table(pilot: Any, selector: str) -> KeyedTable:
    screen = pilot.app.screen
    if selector:
        return screen.query_one(selector, KeyedTable)  # type: ignore[no-any-return]
    return screen.query(KeyedTable).first()  # type: ignore[no-any-return]


async def _select(pilot: Any, case: Case) -> None:
    table = _table(pilot, case.table)
    if case.select == "failing":  # the newest failing trace
        wanted = lab_data().state["traces"].value.failing[0].trace_id
    else:
        wanted = case.select
    row = next((i for i, key in enumerate(table.keys) if wanted in key), None)
    if row is None:  # keys that are ids (alerts' fingerprints): by the row's text
        texts = [" ".join(str(c) for c in table.get_row(key)) for key in table.keys]
        row = next((i for i, text in enumerate(texts) if wanted in text), None)
    assert row is not None, f"no row {wanted!r} in {table.keys[:20]}"
    table.focus()
    await pilot.pause()
    table.move_cursor(row=row)
    await pilot.pause()


def run_before(case: Case) -> Any:
    async def before(pilot: Any) -> None:
        await pilot.pause()
        if case.incident:
            from opskit.screens.incident import IncidentScreen

            parts = lab_data().incident
            subject = parts["alert"].value
            assert subject is not None
            fingerprint = subject.fingerprint
            await pilot.app.push_screen(IncidentScreen(fingerprint, results=parts))
            await pilot.pause()
        if case.select:
            await _select(pilot, case)
        if case.keys:
            await pilot.press(*case.keys)
            await pilot.pause(0.5)  # past a detail pane's debounce
        await pilot.pause()

    return before


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(CASES))
def test_screen_snapshot(snap_compare: Any, name: str, size: str) -> None:
    assert os.environ["TZ"] == "UTC"
    case = CASES[name]
    assert snap_compare(lab_app(case.mode), terminal_size=SIZES[size], run_before=run_before(case))


# ---------------------------------------------------------------------- the data itself
def test_the_committed_data_reads_back_whole() -> None:
    """Every source's records, the traces, the incident parts and the Doctor report read
    back typed, and written again give the committed JSON: nothing is lost or misread."""
    data = lab_data()
    raw = data.raw
    for name, src in raw["sources"].items():
        assert to_json(data.state[name].value) == src["value"], name
    assert to_json(data.state["traces"].value) == raw["traces"]["value"]
    for name, part in raw["incident"]["parts"].items():
        if part is not None:
            assert to_json(data.incident[name].value) == part["value"], name
    assert to_json(data.doctor) == raw["doctor"]
    # what the screens are to show is there
    state = data.state
    assert any(t.health == "down" for t in state["targets"].value)
    alerts = {a.alertname: a for a in state["alerts"].value}
    assert alerts[INCIDENT_KEY].state == "active"
    assert alerts[SILENCED].silenced_by == [s.id for s in state["silences"].value]
    assert any(i.health == "yellow" for i in state["indices"].value)
    assert {"jaeger", "otel-collector"} <= {s.name for s in state["services"].value}
    assert all(len(v) > 1 for v in state.queue_history.values())
    assert state["traces"].value.failing and data.doctor.areas
    assert all(p is not None and p.ok for p in data.incident.values())


def test_the_committed_data_has_no_secrets_or_machine_paths() -> None:
    from tests import conftest

    text = (capture_lab.LABDATA / capture_lab.FILE).read_text()
    for secret in (conftest.GRAFANA_TOKEN, conftest.TLS_PASSWORD, str(conftest.ROOT), "/tmp/"):
        assert secret not in text
    if conftest.OFFSET:
        assert f"127.0.0.1:{9090 + conftest.OFFSET}" not in text


def shape(raw: dict[str, Any]) -> dict[str, Any]:
    """What must not drift between the committed data and the lab: the sources that
    answered, the jobs, index name patterns, queues, services, traced services, the
    Doctor's areas, the incident's parts, and each record's fields."""

    def values(name: str) -> list[dict[str, Any]]:
        return raw["sources"][name]["value"] or []

    def fields(name: str) -> set[str]:
        return {k for record in values(name) for k in record}

    traces = raw["traces"]["value"] or {}
    parts = raw["incident"]["parts"]
    return {
        "answered": sorted(n for n, s in raw["sources"].items() if s["error"] is None),
        "jobs": sorted({t["job"] for t in values("targets")}),
        "down": sorted({t["job"] for t in values("targets") if t["health"] == "down"}),
        "index patterns": sorted(
            {re.sub(r"\d{4}\.\d{2}\.\d{2}$", "*", i["name"]) for i in values("indices")}
        ),
        "queues": sorted((q["queue"], q["series"]) for q in values("queues")),
        "services": sorted(s["name"] for s in values("services")),
        "alerts include": sorted(
            {a["alertname"] for a in values("alerts")} & {INCIDENT_KEY, SILENCED}
        ),
        "traced services": sorted(s["service"] for s in traces.get("services", [])),
        "doctor areas": [a["area"] for a in raw["doctor"]["areas"]],
        "incident parts": sorted(n for n, p in parts.items() if p and p["error"] is None),
        "fields": {
            name: sorted(fields(name))
            for name in ("targets", "alerts", "silences", "queues", "indices", "services")
        },
        "traces fields": sorted(traces),
        "cluster fields": sorted(raw["sources"]["cluster"]["value"] or {}),
    }


def test_the_capture_still_matches_the_lab(lab: Lab) -> None:
    """Capture the lab again (what `python -m tests.tui.capture_lab` writes) and compare
    its shape with the committed data's; on a mismatch, re-capture (docs/tui.md)."""
    fresh = capture_lab.capture(lab)
    assert shape(fresh) == shape(lab_data().raw)
