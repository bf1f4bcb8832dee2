"""Record and replay the TUI's live state (issue 17).

A recording is a local SQLite file (stdlib `sqlite3`, WAL mode so a replay can read it
while `opskit record` or `opskit --record` writes). One row per source per poll:

    polls(taken_at REAL, source TEXT, status TEXT, error TEXT, error_title TEXT,
          last_ok REAL, failing_since REAL, latency_ms REAL, failures INTEGER,
          value BLOB)

Times are Unix seconds (UTC). `value` is `zlib(json(models.to_json(value)))`: the
source's data as the screen had it (for a stale source, the last good data it kept).
`meta(key, value)` holds the format version, the context and the poll interval.
Rows older than the retention (`keep`) are deleted as recording goes on.

`ReplaySource` rebuilds a `LiveState` at any instant T: for each source the latest row
at or before T, its value turned back into the typed records (`VALUE_FROM_JSON`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import sqlite3
import time
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from opskit.errors import UsageError
from opskit.live import HISTORY, SOURCES, LiveState, Poller, SourceState
from opskit.models import (
    Alert,
    ClusterHealth,
    Index,
    QueueDepth,
    ServiceHealth,
    Silence,
    Target,
    to_json,
)
from opskit.models_grafana import Org
from opskit.stack import Stack

T = TypeVar("T")
FORMAT = 1
DEFAULT_KEEP = timedelta(hours=48)
PRUNE_EVERY = 60.0  # seconds of recording between retention deletes
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS polls (
    taken_at REAL NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    error_title TEXT NOT NULL DEFAULT '',
    last_ok REAL,
    failing_since REAL,
    latency_ms REAL NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    value BLOB
);
CREATE INDEX IF NOT EXISTS polls_source_time ON polls (source, taken_at);
CREATE INDEX IF NOT EXISTS polls_time ON polls (taken_at);
"""


def default_path() -> Path:
    """`<XDG state dir>/opskit/recordings/<context>.sqlite`."""
    from opskit.config.loading import state_path

    return state_path() / "recordings"


def default_file(context: str) -> Path:
    return default_path() / f"{context}.sqlite"


# ---------------------------------------------------------------------- values
def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def encode_value(value: Any) -> bytes | None:
    if value is None:
        return None
    return zlib.compress(json.dumps(to_json(value), separators=(",", ":")).encode(), 6)


def decode_blob(blob: bytes | None) -> Any:
    return None if blob is None else json.loads(zlib.decompress(blob))


def _parse_time(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def record_from_json(cls: type[T], data: dict[str, Any]) -> T:
    """A dataclass record back from its `to_json` shape: ISO strings to datetimes, null
    floats back to NaN (JSON has none); unknown keys ignored, missing ones defaulted."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        raw, kind = data[f.name], str(f.type)
        if "datetime" in kind:
            raw = _parse_time(raw)
        elif kind == "float" and raw is None:
            raw = math.nan
        kwargs[f.name] = raw
    return cls(**kwargs)


def _records(cls: type[Any]) -> Callable[[Any], list[Any]]:
    return lambda data: [record_from_json(cls, d) for d in data]


def _grafana(data: Any) -> dict[str, Any]:
    out = dict(data)
    if isinstance(out.get("org"), dict):
        out["org"] = record_from_json(Org, out["org"])
    return out


VALUE_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    "targets": _records(Target),
    "alerts": _records(Alert),
    "silences": _records(Silence),
    "queues": _records(QueueDepth),
    "cluster": lambda data: record_from_json(ClusterHealth, data),
    "indices": _records(Index),
    "services": _records(ServiceHealth),
    "grafana": _grafana,
}


def value_from_json(source: str, data: Any) -> Any:
    return None if data is None else VALUE_FROM_JSON[source](data)


# ---------------------------------------------------------------------- writing
def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    if not create and not path.is_file():
        raise UsageError(f"{path}: no such recording")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(SCHEMA)
        fmt = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise UsageError(f"{path}: not an opskit recording ({exc})") from exc
    if fmt is not None and int(fmt[0]) != FORMAT:
        conn.close()
        raise UsageError(f"{path}: recording format {fmt[0]}, this opskit reads {FORMAT}")
    return conn


class Recorder:
    """Appends one row per source per poll; deletes rows older than `keep` as it goes."""

    def __init__(
        self,
        path: Path,
        keep: timedelta = DEFAULT_KEEP,
        *,
        context: str = "",
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.keep = keep
        self.clock = clock
        self.rows = 0
        self._pruned_at = 0.0
        self.conn = connect(path, create=True)
        meta = {"format": str(FORMAT), "context": context, "interval": f"{interval:g}"}
        self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())

    def write(self, src: SourceState, taken_at: float | None = None) -> None:
        now = self.clock() if taken_at is None else taken_at
        self.conn.execute(
            "INSERT INTO polls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now,
                src.name,
                src.status,
                src.error,
                src.error_title,
                _ts(src.last_ok),
                _ts(src.failing_since),
                src.latency_ms,
                src.failures,
                encode_value(src.value),
            ),
        )
        self.rows += 1
        if now - self._pruned_at >= PRUNE_EVERY:
            self.prune(now)

    def prune(self, now: float | None = None) -> int:
        """Delete rows older than the retention; how many went."""
        now = self.clock() if now is None else now
        self._pruned_at = now
        cur = self.conn.execute(
            "DELETE FROM polls WHERE taken_at < ?", (now - self.keep.total_seconds(),)
        )
        return cur.rowcount

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------- reading
def clusters(times: list[float], window: float) -> list[float]:
    """Poll rounds: times within `window` of a round's first row are one round; each
    round is represented by its last time (so every row of the round is at or before)."""
    rounds: list[float] = []
    start = -math.inf
    for t in times:
        if t - start > window or not rounds:
            start = t
            rounds.append(t)
        else:
            rounds[-1] = t
    return rounds


class ReplaySource:
    """A recording read back: the recorded instants and the `LiveState` at any instant."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path, create=False)
        meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        self.context: str = meta.get("context", "")
        self.interval = float(meta.get("interval", "5"))
        self.conn.row_factory = sqlite3.Row
        self.instants: list[datetime] = []
        self.reload()

    def reload(self) -> None:
        """Re-read the instants (the file may still be growing)."""
        times = [r[0] for r in self.conn.execute("SELECT DISTINCT taken_at FROM polls ORDER BY 1")]
        window = max(self.interval / 2, 0.2)
        self.instants = [datetime.fromtimestamp(t, UTC) for t in clusters(times, window)]

    def index_at(self, when: datetime) -> int:
        """The index of the latest instant at or before `when` (0 when before them all)."""
        return max(bisect_right(self.instants, when) - 1, 0)

    def rows_at(self, when: datetime) -> Iterator[sqlite3.Row]:
        for name in SOURCES:
            row = self.conn.execute(
                "SELECT * FROM polls WHERE source = ? AND taken_at <= ? "
                "ORDER BY taken_at DESC LIMIT 1",
                (name, when.timestamp()),
            ).fetchone()
            if row is not None:
                yield row

    def state_at(self, when: datetime) -> LiveState:
        """The state as the screens had it at `when`: each source's latest row at or
        before it; sources with no row yet are loading."""
        state = LiveState()
        for row in self.rows_at(when):
            src = state[row["source"]]
            src.value = value_from_json(src.name, decode_blob(row["value"]))
            src.error = row["error"]
            src.error_title = row["error_title"]
            src.last_ok = _dt(row["last_ok"])
            src.failing_since = _dt(row["failing_since"])
            src.latency_ms = row["latency_ms"]
            src.failures = row["failures"]
        # the queue sparklines: the queue polls before `when`, oldest first
        history = self.conn.execute(
            "SELECT taken_at, value FROM polls WHERE source = 'queues' AND taken_at <= ? "
            "AND error IS NULL ORDER BY taken_at DESC LIMIT ?",
            (when.timestamp(), HISTORY),
        ).fetchall()
        for taken_at, blob in reversed(history):
            depths = value_from_json("queues", decode_blob(blob))
            if depths:  # at the recorded time, so the sparklines keep their real spacing
                state.record_queues(depths, at=float(taken_at))
        return state

    def close(self) -> None:
        self.conn.close()


def file_size(path: Path) -> int:
    """The recording's bytes on disk, its WAL included."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def count_rows(path: Path) -> int:
    with closing(connect(path, create=False)) as conn:
        return int(conn.execute("SELECT count(*) FROM polls").fetchone()[0])


# ---------------------------------------------------------------------- headless
Progress = Callable[[int, LiveState], None]  # (polls so far, state)


async def record_live(
    stack: Stack,
    recorder: Recorder,
    interval: float,
    stop: asyncio.Event,
    progress: Progress | None = None,
) -> int:
    """Poll every source as the TUI does (the same `Poller`) and write each poll, until
    `stop` is set; the number of rows written."""
    state = LiveState()

    def polled(name: str, _changed: bool) -> None:
        recorder.write(state[name])
        if progress is not None and recorder.rows % len(SOURCES) == 0:
            progress(recorder.rows // len(SOURCES), state)

    poller = Poller(stack, state, interval, polled)
    task = asyncio.ensure_future(poller.run())
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return recorder.rows
