"""The recording store (opskit.record): round-trips of every source's records, the
latest-at-or-before semantics, retention, and reading while a recorder writes (WAL)."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opskit.errors import UsageError
from opskit.live import SOURCES, SourceState
from opskit.models import (
    Alert,
    ClusterHealth,
    Index,
    QueueDepth,
    ServiceHealth,
    Silence,
    Target,
)
from opskit.models_grafana import Org
from opskit.record import Recorder, ReplaySource, clusters, count_rows

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 24, 3, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def values() -> dict[str, Any]:
    """One value of each source's type, with datetimes, None and nested labels."""
    return {
        "targets": [
            Target("email-service", "email:5000", "http://email:5000/metrics", "down", at(-5),
                   0.25, "connection refused", "15s", "10s", {"job": "email-service"}),
            Target("node", "node:9100", "http://node:9100/metrics", "up", None, 0.01, "",
                   "15s", "10s", {}),
        ],
        "alerts": [
            Alert("fp1", "EmailServiceDown", "critical", "active", {"alertname": "X"},
                  {"summary": "down"}, at(-60), None, at(-1), "http://prom/graph", [], ["i1"],
                  ["ops"]),
        ],
        "silences": [
            Silence("s1", "active", ['alertname="X"'], at(-10), at(3600), "ops", "draining"),
        ],
        "queues": [
            QueueDepth("celery", 'queue="default"', 1450.0, 1000.0, None, "warning",
                       "sum(celery_queue_length)", "celery-exporter", ""),
            QueueDepth("mail", "(no data)", math.nan, 100.0, 500.0, "warning", "", "", "none"),
        ],
        "cluster": ClusterHealth("lab", "yellow", 1, 1, 10, 10, 0, 0, 2, 0, 83.3),
        "indices": [
            Index("logs-postfix-2026.01.24", "green", "open", 120, 40960, 1, 0, at(-86400), "u1"),
            Index("closed-1", "", "close", 0, 0, 1, 0, None, "u2"),
        ],
        "services": [
            ServiceHealth("email", "http://email/health", True, 200, 3.5, "", "degraded",
                          {"smtp": "unhealthy"}),
            ServiceHealth("kibana", "http://kibana/api/status", False, None, None, "refused"),
        ],
        "grafana": {"version": "11.2.0", "database": "ok", "org": Org(1, "Main")},
    }  # fmt: skip


def ok(name: str, value: Any, when: datetime, latency: float = 4.0) -> SourceState:
    return SourceState(name, value=value, last_ok=when, latency_ms=latency)


def same(a: Any, b: Any) -> bool:
    """Equality with NaN equal to NaN (a queue with no data)."""
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, QueueDepth) and isinstance(b, QueueDepth):
        nan = math.isnan(a.value) and math.isnan(b.value)
        return (
            (nan or a.value == b.value)
            and a.queue == b.queue
            and a.note == b.note
            and (a.series, a.warning, a.critical, a.state, a.query, a.exporter)
            == (b.series, b.warning, b.critical, b.state, b.query, b.exporter)
        )
    return bool(a == b)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "rec.sqlite"


@pytest.mark.parametrize("name", SOURCES)
def test_every_source_round_trips_typed(path: Path, name: str) -> None:
    value = values()[name]
    rec = Recorder(path, interval=5)
    rec.write(ok(name, value, at(0)), taken_at=at(0).timestamp())
    rec.close()
    src = ReplaySource(path).state_at(at(1))[name]
    assert same(src.value, value), (src.value, value)
    assert src.status == "ok"
    assert src.last_ok == at(0)
    assert src.latency_ms == 4.0
    if name == "grafana":
        assert isinstance(src.value["org"], Org)
    elif isinstance(value, list):
        assert type(src.value[0]) is type(value[0])


def test_the_latest_row_at_or_before_the_instant(path: Path) -> None:
    up = values()["targets"][1]
    down = dataclasses.replace(up, health="down")
    rec = Recorder(path, interval=10)
    rec.write(ok("targets", [up], at(100)), taken_at=at(100).timestamp())
    rec.write(ok("cluster", values()["cluster"], at(101)), taken_at=at(101).timestamp())
    rec.write(ok("targets", [down], at(110)), taken_at=at(110).timestamp())
    failing = SourceState("targets", value=[down], error="connection refused",
                          error_title="unreachable", last_ok=at(110), failing_since=at(120),
                          failures=1)  # fmt: skip
    rec.write(failing, taken_at=at(120).timestamp())
    rec.close()
    replay = ReplaySource(path)
    assert replay.state_at(at(99))["targets"].status == "loading"
    assert replay.state_at(at(99))["targets"].value is None
    assert replay.state_at(at(100))["targets"].value[0].health == "up"
    assert replay.state_at(at(109.9))["targets"].value[0].health == "up"
    assert replay.state_at(at(109.9))["cluster"].status == "ok"
    assert replay.state_at(at(110))["targets"].value[0].health == "down"
    stale = replay.state_at(at(500))["targets"]
    assert stale.status == "stale"
    assert stale.failing_since == at(120)
    assert stale.banner().startswith("prometheus unreachable since ")
    # rows 100 and 101 are one poll round (within half the interval), 110 and 120 two more
    assert replay.instants == [at(101), at(110), at(120)]
    assert replay.index_at(at(115)) == 1
    assert replay.index_at(at(0)) == 0


def test_queue_history_is_rebuilt_for_the_sparklines(path: Path) -> None:
    rec = Recorder(path, interval=1)
    for i, depth in enumerate((10.0, 20.0, 30.0)):
        q = QueueDepth("celery", "q", depth, 100.0, None, "ok")
        rec.write(ok("queues", [q], at(i)), taken_at=at(i).timestamp())
    rec.close()
    state = ReplaySource(path).state_at(at(1.5))
    assert list(state.queue_history["celery q"]) == [10.0, 20.0]


def test_clusters_group_rows_of_one_poll_round() -> None:
    assert clusters([0, 0.1, 0.3, 5, 5.2, 11], window=2.5) == [0.3, 5.2, 11]
    assert clusters([], window=1) == []


def test_retention_deletes_rows_older_than_keep(path: Path) -> None:
    now = [at(0).timestamp()]
    rec = Recorder(path, keep=timedelta(hours=1), interval=60, clock=lambda: now[0])
    for minute in range(0, 150, 1):
        now[0] = at(minute * 60).timestamp()
        rec.write(ok("cluster", values()["cluster"], at(minute * 60)))
    rec.close()
    replay = ReplaySource(path)
    first, last = replay.instants[0], replay.instants[-1]
    assert last == at(149 * 60)
    assert last - first <= timedelta(hours=1, minutes=1)
    assert count_rows(path) <= 62
    assert replay.state_at(at(30 * 60))["cluster"].status == "loading"  # deleted


def test_reading_while_recording(path: Path) -> None:
    """A replay reads the file while the recorder writes (WAL: no reader blocks, no
    writer waits); each read sees whole polls."""
    rec = Recorder(path, interval=0.01)
    mode = rec.conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    big = values()["targets"] * 500
    rec.write(ok("targets", big, at(0)), taken_at=at(0).timestamp())
    replay = ReplaySource(path)
    # a read transaction left open on the reader does not block the writer
    replay.conn.execute("BEGIN")
    replay.conn.execute("SELECT count(*) FROM polls").fetchone()
    rec.conn.execute("PRAGMA busy_timeout = 0")
    rec.write(ok("targets", big, at(1)), taken_at=at(1).timestamp())  # no "database is locked"
    replay.conn.execute("COMMIT")
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(2, 60):
                rec.write(ok("targets", big, at(i)), taken_at=at(i).timestamp())
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    rec.conn.execute("PRAGMA busy_timeout = 10000")
    rec_conn_thread_safe(rec)
    thread.start()
    reads = 0
    while not done.is_set() or reads < 3:
        replay.reload()
        state = replay.state_at(replay.instants[-1])
        assert len(state["targets"].value) == len(big)
        reads += 1
    thread.join()
    assert not errors
    replay.reload()
    assert len(replay.instants) == 60
    rec.close()


def rec_conn_thread_safe(rec: Recorder) -> None:
    """The test's writer thread uses the recorder's connection (opened on this one)."""
    conn = sqlite3.connect(rec.path, timeout=10, isolation_level=None, check_same_thread=False)
    rec.conn.close()
    rec.conn = conn


def test_a_file_that_is_not_a_recording_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such recording"):
        ReplaySource(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(UsageError, match="not an opskit recording"):
        ReplaySource(junk)


def test_the_record_command_never_imports_textual() -> None:
    code = "import opskit.commands.record, opskit.record, sys; assert 'textual' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
