"""The Traces screen (issue 20): SVG snapshots on fixed data (a trace recorded from the
lab's Jaeger, tests/core/fixtures/, and one built by hand), Enter opening the span tree,
and the banner when Jaeger is unreachable."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opskit.clients.jaeger import parse_trace
from opskit.models_tracing import Dependency, ServiceStats, TracesOverview
from opskit.screens.app import OpskitApp
from opskit.screens.traces import TracesScreen
from opskit.screens.widgets import KeyedTable
from opskit.tracing import summarize_trace
from tests.tui.fixed import T0, fixed_app

FIXTURE = Path(__file__).parent.parent / "core" / "fixtures" / "jaeger_trace_fail.json"
US = 1_000_000


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    import time

    time.tzset()


def _span(sid: str, parent: str, pid: str, op: str, at: float, ms: float, **tags: Any) -> Any:
    return {
        "spanID": sid,
        "operationName": op,
        "references": [{"refType": "CHILD_OF", "spanID": parent}] if parent else [],
        "startTime": int(at * US),
        "duration": int(ms * 1000),
        "tags": [{"key": k, "type": "string", "value": v} for k, v in tags.items()],
        "processID": pid,
    }


def slow_trace() -> Any:
    """A POST /api/emails: the Flask span, its database insert and Redis push, and the
    Celery task it queued."""
    t = T0.timestamp() - 300
    return parse_trace(
        {
            "traceID": "5a1e0c0ffee0000000000000000000aa",
            "processes": {
                "p1": {"serviceName": "email-service"},
                "p2": {"serviceName": "celery-worker"},
            },
            "spans": [
                _span(
                    "a1",
                    "",
                    "p1",
                    "POST /api/emails",
                    t,
                    812.4,
                    **{
                        "span.kind": "server",
                        "http.method": "POST",
                        "http.route": "/api/emails",
                        "http.status_code": "202",
                    },
                ),
                _span(
                    "a2",
                    "a1",
                    "p1",
                    "INSERT emails",
                    t + 0.01,
                    35.2,
                    **{
                        "span.kind": "client",
                        "db.system": "postgresql",
                        "db.statement": "INSERT INTO emails ...",
                    },
                ),
                _span(
                    "a3",
                    "a1",
                    "p1",
                    "apply_async/send_email",
                    t + 0.05,
                    2.1,
                    **{"span.kind": "producer"},
                ),
                _span(
                    "a4",
                    "a3",
                    "p2",
                    "run/send_email",
                    t + 0.1,
                    701.0,
                    **{"span.kind": "consumer", "celery.task_name": "send_email"},
                ),
                _span("a5", "a4", "p2", "SMTP send", t + 0.2, 650.0, **{"span.kind": "client"}),
            ],
        }
    )


def fixed_overview() -> TracesOverview:
    failing = parse_trace(json.loads(FIXTURE.read_text())["data"][0])
    slow = slow_trace()

    def stats(name: str, n: int, errors: int, p50: float, p95: float, p99: float) -> ServiceStats:
        rate = errors / n if n else math.nan
        state = "critical" if rate >= 0.05 else "warning" if rate >= 0.01 else "ok"
        return ServiceStats(
            name,
            n,
            errors,
            n / 3600,
            rate,
            p50,
            p95,
            p99,
            3600.0,
            False,
            T0 - timedelta(seconds=20),
            state,
        )

    return TracesOverview(
        start=T0 - timedelta(hours=1),
        end=T0,
        services=[
            stats("celery-beat", 60, 0, 3.1, 4.4, 5.0),
            stats("celery-worker", 1450, 3, 22.0, 2900.0, 3400.0),
            stats("email-service", 5120, 260, 4.8, 44.0, 310.0),
        ],
        slowest=[summarize_trace(slow)],
        failing=[summarize_trace(failing)],
        dependencies=[
            Dependency("celery-beat", "celery-worker", 60),
            Dependency("email-service", "celery-worker", 1200),
        ],
        dependencies_source="jaeger /api/dependencies",
        jaeger_url="http://localhost:16686",
    )


def traces_app(error: str | None = None) -> OpskitApp:
    app = fixed_app("traces")
    src = app.state["traces"]
    src.value = fixed_overview()
    src.last_ok = T0
    src.latency_ms = 12.0
    if error:
        src.error, src.error_title = error, "unreachable"
        src.failing_since = T0 + timedelta(seconds=30)
    return app


def test_traces_snapshot(snap_compare: Any) -> None:
    assert snap_compare(traces_app(), terminal_size=(150, 40))


def test_traces_span_tree_snapshot(snap_compare: Any) -> None:
    """Enter on the slow trace: its span tree, each span's service, operation, duration,
    status and attributes."""

    async def open_slow(pilot: Any) -> None:
        screen = pilot.app.screen
        table = screen.query_one("#trace-list", KeyedTable)
        table.focus()
        await pilot.pause()
        table.move_cursor(row=table.keys.index("5a1e0c0ffee0000000000000000000aa"))
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(traces_app(), terminal_size=(150, 40), run_before=open_slow)


def test_traces_unreachable_snapshot(snap_compare: Any) -> None:
    """Jaeger down: the last traces kept (stale), the banner says since when and why."""
    error = "http://127.0.0.1:26686: connection refused"
    assert snap_compare(traces_app(error), terminal_size=(150, 40))


async def test_enter_filters_by_service_and_opens_spans() -> None:
    app = traces_app()
    async with app.run_test(size=(150, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TracesScreen)
        services = screen.query_one("#trace-services", KeyedTable)
        traces = screen.query_one("#trace-list", KeyedTable)
        assert set(traces.keys) == {
            "5a1e0c0ffee0000000000000000000aa",
            *(t.trace_id for t in fixed_overview().failing),
        }
        services.focus()
        services.move_cursor(row=services.keys.index("celery-worker"))
        await pilot.press("enter")
        await pilot.pause()
        assert screen.service == "celery-worker"
        assert traces.keys == ["5a1e0c0ffee0000000000000000000aa"]  # it has a worker span
        await pilot.press("e")  # failing only: none of celery-worker's
        await pilot.pause()
        assert traces.keys == []
        await pilot.press("escape", "e")
        await pilot.pause()
        assert screen.service is None and len(traces.keys) == 2
        traces.focus()
        traces.move_cursor(row=traces.keys.index("5a1e0c0ffee0000000000000000000aa"))
        await pilot.press("enter")
        await pilot.pause()
        text = str(screen.query_one("#trace-spans").render())
        assert "celery-worker run/send_email" in text and "SMTP send" in text
        assert "db.system=postgresql" in text


def test_fixture_is_from_a_real_trace() -> None:
    raw = json.loads(FIXTURE.read_text())
    assert raw["data"][0]["processes"]
    assert datetime.fromtimestamp(raw["data"][0]["spans"][0]["startTime"] / US, UTC).year >= 2025
