#!/usr/bin/env python3
"""The lab's log shipper: tails the lab's own server logs and bulk-indexes them into
Elasticsearch as daily indices `logs-<source>-YYYY.MM.dd` (the monitoring README's names).
No Logstash here; this is the small, honest replacement.

    shipper.py --es URL --logs DIR --state DIR [--port N] [--once] [--wait-template NAME]

Each document: `@timestamp` (parsed from the line, else the time it was read), `level`
(ERROR/WARNING/INFO/DEBUG), `message`, `service` (the source) and `host` (this machine).
Multi-line entries (tracebacks, PostgreSQL DETAIL/STATEMENT lines) join their entry.

Delivery: at least once, never duplicated. File offsets (with inode and a truncation
generation) are checkpointed in STATE/shipper.json only after Elasticsearch accepted the
bulk; document ids are derived from file + inode + generation + byte offset, so a re-send
after a crash overwrites instead of duplicating. While Elasticsearch is down the shipper
backs off and retries; nothing is read past the checkpoint until it is up again. A lock
file serialises passes, so a one-shot `--once` run and the daemon never interleave.
Standard library only: this runs before any virtualenv exists."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# server log file (lab.py writes state/logs/<server>.log) -> log source (index name part)
SOURCES = {
    "email_service.log": "email-service",
    "celery_worker.log": "celery-worker",
    "celery_worker_reports.log": "celery-worker",
    "celery_beat.log": "celery-worker",
    "postgres.log": "postgresql",
    "postfix.log": "postfix",
    "dovecot.log": "dovecot",
}
LEVELS = ("ERROR", "WARNING", "INFO", "DEBUG")
INTERVAL = 2.0  # seconds between passes
HOLD = 1.0  # a last entry written less than this long ago may still get continuation lines
MAX_READ = 1 << 20  # bytes read per file per pass
MAX_BATCH_DOCS = 500
MAX_BATCH_BYTES = 2 << 20
MAX_ENTRY_LINES = 200  # a runaway multi-line entry is cut into several documents
MAX_ENTRY_CHARS = 32_000
BACKOFF_MAX = 15.0  # seconds, while Elasticsearch refuses or is down
NOT_READY_WAIT = 3.0  # seconds between looks for Elasticsearch and the index template

# --------------------------------------------------------------------------- parsing

_LEVEL_WORDS = {
    "DEBUG": "DEBUG",
    "DEBUG1": "DEBUG",
    "DEBUG2": "DEBUG",
    "DEBUG3": "DEBUG",
    "DEBUG4": "DEBUG",
    "DEBUG5": "DEBUG",
    "TRACE": "DEBUG",
    "INFO": "INFO",
    "LOG": "INFO",
    "NOTICE": "INFO",
    "WARNING": "WARNING",
    "WARN": "WARNING",
    "ERROR": "ERROR",
    "ERR": "ERROR",
    "FATAL": "ERROR",
    "PANIC": "ERROR",
    "CRITICAL": "ERROR",
    "CRIT": "ERROR",
    "ALERT": "ERROR",
    "EMERG": "ERROR",
}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
}
_ISO = r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?"
# PostgreSQL, log_line_prefix '%m [%p] ': 2026-12-01 19:50:01.123 UTC [123] ERROR:  ...
_PG = re.compile(
    rf"^(?P<ts>{_ISO}) (?P<tz>[A-Za-z]{{1,6}}|[+-]\d\d(?::?\d\d)?) \[(?P<pid>\d+)\] "
    r"(?:\S+ )??(?P<level>[A-Z]+[0-9]?):  ?(?P<msg>.*)$"
)
_PG_CONTINUATION = {"DETAIL", "HINT", "STATEMENT", "CONTEXT", "QUERY", "LOCATION"}
# Celery: [2026-12-01 19:50:01,123: INFO/MainProcess] message
_CELERY = re.compile(rf"^\[(?P<ts>{_ISO}): (?P<level>[A-Z]+)/(?P<proc>[^\]]+)\] ?(?P<msg>.*)$")
# Gunicorn: [2026-12-01 19:50:01 +0000] [123] [INFO] message
_GUNICORN = re.compile(
    rf"^\[(?P<ts>{_ISO})(?: (?P<tz>[+-]\d\d:?\d\d|Z|UTC))?\] \[(?P<pid>\d+)\] "
    r"\[(?P<level>[A-Z]+)\] ?(?P<msg>.*)$"
)
# Python logging '%(asctime)s %(levelname)s %(name)s: %(message)s'
_PYLOG = re.compile(
    rf"^(?P<ts>{_ISO})(?P<tz>Z|[+-]\d\d:?\d\d)? (?P<level>DEBUG|INFO|WARNING|WARN|ERROR|"
    r"CRITICAL|FATAL|NOTICE) (?P<msg>.*)$"
)
# Common/combined access log (Gunicorn's access log, if enabled)
_ACCESS = re.compile(
    r"^(?P<client>\S+) \S+ \S+ "
    r"\[(?P<ts>\d\d/\w{3}/\d{4}[: ]\d\d:\d\d:\d\d)(?: (?P<tz>[+-]\d{4}))?\] "
    r'"(?P<req>[^"]*)" (?P<status>\d{3})\b'
)
# syslog style, as Postfix's maillog_file and Dovecot's log_path write (optionally ISO)
_SYSLOG_TS = (
    r"(?P<ts>[A-Z][a-z]{2} +\d\d? \d\d:\d\d:\d\d(?:\.\d+)?"
    rf"|{_ISO}(?:Z|[+-]\d\d:?\d\d)?)"
)
_DOVECOT = re.compile(
    rf"^{_SYSLOG_TS} (?P<proc>\S+?): (?P<level>Debug|Info|Warning|Error|Fatal|Panic): "
    r"(?P<msg>.*)$"
)
_POSTFIX = re.compile(rf"^{_SYSLOG_TS} (?P<host>\S+) (?P<proc>[\w/.-]+(?:\[\d+\])?): (?P<msg>.*)$")
# "warning: ...", "fatal: ...", "NOQUEUE: reject: ...", "4Xb2Lq1abcz: error: ..."
_POSTFIX_LEVEL = re.compile(r"^(?:\w+: )?(warning|fatal|panic|error|reject):", re.I)
_AUTH_FAILED = re.compile(
    r"auth(?:entication)? failed|password mismatch|unknown user|authenticate failed", re.I
)
_GENERIC_TS = re.compile(rf"^\[?(?P<ts>{_ISO})(?P<tz>Z|[+-]\d\d:?\d\d)?\]?[ :]")
_GENERIC_LEVEL = re.compile(
    r"\b(DEBUG|INFO|NOTICE|WARNING|WARN|ERROR|CRITICAL|FATAL|PANIC)\b", re.IGNORECASE
)


@dataclass
class Header:
    """What the first line of an entry says."""

    ts: datetime | None  # UTC; None when the line carries no time
    level: str
    message: str
    pid: str = ""
    pg_kind: str = ""  # PostgreSQL's own level word (LOG, DETAIL, ...)


@dataclass
class Entry:
    """One log entry: a header line and its continuation lines, at byte offsets."""

    start: int
    end: int
    header: Header
    lines: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "\n".join([self.header.message, *self.lines])


def normalise_level(word: str) -> str:
    return _LEVEL_WORDS.get(word.strip().upper(), "INFO")


def _local_to_utc(naive: datetime) -> datetime:
    return naive.astimezone(UTC)  # a naive datetime is the machine's local time


def _tz(naive: datetime, tz: str | None) -> datetime:
    if not tz:
        return _local_to_utc(naive)
    tz = tz.strip()
    if tz.upper() in ("UTC", "GMT", "Z", "UT"):
        return naive.replace(tzinfo=UTC)
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)?", tz)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        sign = 1 if m.group(1) == "+" else -1
        return (naive - sign * delta).replace(tzinfo=UTC)
    return _local_to_utc(naive)  # an abbreviation we cannot resolve: the machine's zone


def parse_iso(text: str, tz: str | None = None) -> datetime | None:
    text = text.replace(",", ".").replace("T", " ")
    m = re.match(r"(.*?)(Z|[+-]\d\d:?\d\d)?$", text)
    if m and m.group(2) and not tz:
        text, tz = m.group(1), m.group(2)
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        return None
    return _tz(naive.replace(tzinfo=None), tz)


def parse_syslog_ts(text: str, now: datetime) -> datetime | None:
    """'Dec  1 19:50:01[.123456]' (no year: the latest such time not after tomorrow)."""
    m = re.fullmatch(r"([A-Z][a-z]{2}) +(\d\d?) (\d\d):(\d\d):(\d\d)(?:\.(\d+))?", text)
    if not m:
        return parse_iso(text)
    month = _MONTHS.get(m.group(1))
    if month is None:
        return None
    micro = int((m.group(6) or "0")[:6].ljust(6, "0"))
    local_now = now.astimezone()
    for year in (local_now.year, local_now.year - 1):
        try:
            naive = datetime(
                year, month, int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5))
            )
        except ValueError:
            continue
        ts = _local_to_utc(naive.replace(microsecond=micro))
        if ts <= now + timedelta(days=1):
            return ts
    return None


def _postfix_level(msg: str) -> str:
    m = _POSTFIX_LEVEL.match(msg)
    if m:
        word = m.group(1).lower()
        return "WARNING" if word in ("warning", "reject") else "ERROR"
    if "status=bounced" in msg:
        return "ERROR"
    if "status=deferred" in msg:
        return "WARNING"
    return "INFO"


def parse_header(source: str, line: str, now: datetime) -> Header | None:
    """The header of a new entry, or None for a continuation line (traceback, ...)."""
    if source == "postgresql":
        m = _PG.match(line)
        if m:
            kind = m.group("level")
            return Header(
                parse_iso(m.group("ts"), m.group("tz")),
                normalise_level(kind),
                m.group("msg"),
                m.group("pid"),
                kind,
            )
    if source == "dovecot":
        m = _DOVECOT.match(line)
        if m:
            level = normalise_level(m.group("level"))
            msg = f"{m.group('proc')}: {m.group('msg')}"
            if level in ("INFO", "DEBUG") and _AUTH_FAILED.search(msg):
                level = "WARNING"
            return Header(parse_syslog_ts(m.group("ts"), now), level, msg)
    if source == "postfix":
        m = _POSTFIX.match(line)
        if m:
            msg = f"{m.group('proc')}: {m.group('msg')}"
            return Header(parse_syslog_ts(m.group("ts"), now), _postfix_level(m.group("msg")), msg)
    m = _CELERY.match(line)
    if m:
        msg = f"{m.group('proc')}: {m.group('msg')}"
        return Header(parse_iso(m.group("ts")), normalise_level(m.group("level")), msg)
    m = _GUNICORN.match(line)
    if m:
        return Header(
            parse_iso(m.group("ts"), m.group("tz")),
            normalise_level(m.group("level")),
            f"gunicorn[{m.group('pid')}]: {m.group('msg')}",
            m.group("pid"),
        )
    m = _PYLOG.match(line)
    if m:
        return Header(
            parse_iso(m.group("ts"), m.group("tz")),
            normalise_level(m.group("level")),
            m.group("msg"),
        )
    m = _ACCESS.match(line)
    if m:
        status = int(m.group("status"))
        level = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        try:
            naive = datetime.strptime(m.group("ts").replace(" ", ":"), "%d/%b/%Y:%H:%M:%S")
        except ValueError:
            return None
        return Header(_tz(naive, m.group("tz")), level, line)
    m = _GENERIC_TS.match(line)
    if m:
        rest = line[m.end() :].strip()
        lm = _GENERIC_LEVEL.search(rest[:40])
        level = normalise_level(lm.group(1)) if lm else "INFO"
        return Header(parse_iso(m.group("ts"), m.group("tz")), level, rest)
    return None


def _orphan(line: str) -> Header:
    """A line that starts no known entry and follows none: its own entry, time unknown."""
    lm = _GENERIC_LEVEL.search(line[:80])
    level = normalise_level(lm.group(1)) if lm else "INFO"
    if line.startswith("Traceback ") or re.match(r"^\w+(\.\w+)*(Error|Exception): ", line):
        level = "ERROR"
    return Header(None, level, line)


def _continues(source: str, entry: Entry, header: Header | None) -> bool:
    if header is None:
        return True
    # PostgreSQL writes one message as several prefixed lines: ERROR, then DETAIL/STATEMENT
    return (
        source == "postgresql"
        and header.pg_kind in _PG_CONTINUATION
        and header.pid == entry.header.pid
    )


def split_lines(data: bytes, base: int) -> list[tuple[int, int, str]]:
    """Complete lines of `data` (read at file offset `base`) as (start, end, text)."""
    out: list[tuple[int, int, str]] = []
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return out
        text = data[pos:nl].decode("utf-8", errors="replace").rstrip("\r")
        out.append((base + pos, base + nl + 1, text))
        pos = nl + 1


def group(source: str, lines: list[tuple[int, int, str]], now: datetime) -> list[Entry]:
    """Lines into entries: a line that starts no entry joins the one before it; blank lines
    are consumed by the entry before them (or dropped)."""
    entries: list[Entry] = []
    for start, end, text in lines:
        current = entries[-1] if entries else None
        if not text.strip():
            if current is not None:
                current.end = end
            continue
        header = parse_header(source, text, now)
        if current is not None and _continues(source, current, header):
            size = len(current.header.message) + sum(len(x) + 1 for x in current.lines)
            if len(current.lines) < MAX_ENTRY_LINES and size + len(text) < MAX_ENTRY_CHARS:
                if header is not None and header.pg_kind:
                    text = f"{header.pg_kind}:  {header.message}"  # drop the repeated prefix
                current.lines.append(text)
                current.end = end
                continue
        entries.append(Entry(start, end, header if header is not None else _orphan(text)))
    return entries


def doc_id(path: str, inode: int, gen: int, offset: int) -> str:
    return hashlib.sha1(f"{path}\0{inode}\0{gen}\0{offset}".encode()).hexdigest()[:24]


def document(entry: Entry, source: str, host: str, read_at: datetime) -> dict[str, str]:
    ts = entry.header.ts or read_at
    return {
        "@timestamp": ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": entry.header.level,
        "message": entry.message,
        "service": source,
        "host": host,
    }


def index_name(source: str, timestamp: str) -> str:
    return f"logs-{source}-{timestamp[:10].replace('-', '.')}"


# --------------------------------------------------------------------------- shipping


@dataclass
class Checkpoint:
    inode: int
    offset: int
    gen: int = 0


@dataclass
class Pending:
    """Documents read from one file, not yet accepted by Elasticsearch, and the checkpoint
    that holds once they all are."""

    path: str
    inode: int
    gen: int
    actions: list[tuple[str, str, dict[str, str], int]]  # (index, id, document, end offset)
    final: Checkpoint


class Shipper:
    def __init__(
        self,
        es: str,
        logs: Path,
        state: Path,
        extra: dict[str, str] | None = None,
        wait_template: str = "",
    ) -> None:
        self.es = es.rstrip("/")
        self.logs = logs
        self.state = state
        self.extra = extra or {}
        self.wait_template = wait_template
        self.host = socket.gethostname()
        self.cp_path = state / "shipper.json"
        self.lock_path = state / "shipper.lock"
        self.shipped = 0
        self.lines = 0
        self.last_ok: float | None = None
        self.last_error = ""
        self.heartbeat = time.time()

    # ---------------------------------------------------------------- files

    def files(self) -> dict[str, str]:
        """Watched path -> source (the lab's server logs, plus --file extras)."""
        out = {str(self.logs / name): source for name, source in SOURCES.items()}
        out.update(self.extra)
        return out

    def load(self) -> dict[str, Checkpoint]:
        try:
            raw = json.loads(self.cp_path.read_text())
        except (OSError, ValueError):
            return {}
        return {
            p: Checkpoint(int(c["inode"]), int(c["offset"]), int(c.get("gen", 0)))
            for p, c in raw.items()
        }

    def save(self, cps: dict[str, Checkpoint]) -> None:
        tmp = self.cp_path.with_suffix(".tmp")
        body = {p: {"inode": c.inode, "offset": c.offset, "gen": c.gen} for p, c in cps.items()}
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
        os.replace(tmp, self.cp_path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.state.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _rotated(self, path: Path, inode: int) -> Path | None:
        """The file that `path` was rotated to (same inode: path.1, path-2026..., ...)."""
        with contextlib.suppress(OSError):
            for sibling in path.parent.iterdir():
                if sibling != path and sibling.name.startswith(path.name):
                    with contextlib.suppress(OSError):
                        if sibling.stat().st_ino == inode:
                            return sibling
        return None

    def read(self, path: str, source: str, cp: Checkpoint | None, hold: float) -> Pending | None:
        """New entries of one file since its checkpoint (None: nothing new)."""
        p = Path(path)
        try:
            st = p.stat()
        except OSError:
            return None
        target, inode, gen, offset, size, mtime = p, st.st_ino, 0, 0, st.st_size, st.st_mtime
        if cp is not None:
            if cp.inode != st.st_ino:
                # rotated: finish the old file first if it is still there (same inode)
                old = self._rotated(p, cp.inode)
                with contextlib.suppress(OSError):
                    if old is not None and old.stat().st_size > cp.offset:
                        target, inode, gen, offset = old, cp.inode, cp.gen, cp.offset
                        size, mtime = old.stat().st_size, 0.0
            elif st.st_size < cp.offset:
                gen = cp.gen + 1  # truncated in place: offsets restart, ids must not collide
            else:
                gen, offset = cp.gen, cp.offset
        if size <= offset and cp is not None and (cp.inode, cp.offset) == (inode, offset):
            return None
        read_at = datetime.now(UTC)
        try:
            with target.open("rb") as fh:
                fh.seek(offset)
                data = fh.read(min(max(size - offset, 0), MAX_READ))
        except OSError:
            return None
        lines = split_lines(data, offset)
        if not lines and len(data) >= MAX_READ:  # one enormous line: cut it
            lines = [(offset, offset + len(data), data.decode("utf-8", errors="replace"))]
        entries = group(source, lines, read_at)
        commit = lines[-1][1] if lines else offset
        at_eof = offset + len(data) >= size
        settled = at_eof and time.time() - mtime >= hold
        # the last entry may still get continuation lines: keep it for the next pass (unless
        # it alone fills a whole read and so could never complete)
        if entries and target is p and not settled and (len(entries) > 1 or len(data) < MAX_READ):
            commit = entries.pop().start
        self.lines += sum(1 + len(e.lines) for e in entries)
        actions = []
        for e in entries:
            doc = document(e, source, self.host, read_at)
            _id = doc_id(path, inode, gen, e.start)
            actions.append((index_name(source, doc["@timestamp"]), _id, doc, e.end))
        final = Checkpoint(inode, commit, gen)
        if target is not p and commit >= size:
            final = Checkpoint(st.st_ino, 0, 0)  # the rotated file is done: on to the new one
        if not actions and cp is not None and final == cp:
            return None
        return Pending(path, inode, gen, actions, final)

    # ---------------------------------------------------------------- Elasticsearch

    def _request(self, method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(url, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/x-ndjson")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except http.client.HTTPException as exc:  # a cut answer (IncompleteRead, ...)
            raise OSError(f"{method} {url}: {exc!r}") from exc

    def ready(self) -> bool:
        """Elasticsearch answers and (if asked) the lab's index template is in place, so
        that no index is ever created with dynamic mappings and replicas (yellow)."""
        if not self.wait_template:
            return True
        try:
            status, _ = self._request("GET", f"{self.es}/_index_template/{self.wait_template}")
        except (urllib.error.URLError, OSError) as exc:
            self.last_error = f"elasticsearch: {exc}"
            return False
        if status != 200:
            self.last_error = f"index template {self.wait_template} not there yet ({status})"
        return status == 200

    def bulk(self, actions: list[tuple[str, str, dict[str, str]]]) -> None:
        """Index or raise; items refused for good (a 4xx other than 429) are reported and
        dropped, everything else raises so the whole batch is sent again."""
        lines = []
        for index, _id, doc in actions:
            lines.append(json.dumps({"index": {"_index": index, "_id": _id}}))
            lines.append(json.dumps(doc, ensure_ascii=False))
        body = ("\n".join(lines) + "\n").encode()
        status, raw = self._request("POST", f"{self.es}/_bulk", body)
        if status != 200:
            raise OSError(f"bulk answered {status}: {raw[:200]!r}")
        reply = json.loads(raw)
        if not reply.get("errors"):
            return
        for item in reply.get("items", []):
            res = item.get("index", {})
            code = int(res.get("status", 500))
            if code == 429 or code >= 500 or "cluster_block" in json.dumps(res.get("error", "")):
                raise OSError(f"bulk item refused ({code}): {res.get('error')}")
            if code >= 400:
                print(f"shipper: dropped {res.get('_id')}: {res.get('error')}", file=sys.stderr)

    def ship_pass(self, hold: float = HOLD) -> int:
        """One pass over every file; returns documents shipped (raises if ES refused). The
        checkpoint moves only past documents Elasticsearch accepted."""
        with self.locked():
            cps = self.load()
            shipped = 0
            batch: list[tuple[str, str, dict[str, str]]] = []
            size = 0
            commits: dict[str, Checkpoint] = {}

            def send() -> None:
                nonlocal batch, size, shipped
                if batch:
                    self.bulk(batch)
                    shipped += len(batch)
                if commits:
                    cps.update(commits)
                    self.save(cps)
                batch, size = [], 0
                commits.clear()

            for path, source in self.files().items():
                pend = self.read(path, source, cps.get(path), hold)
                if pend is None:
                    continue
                for index, _id, doc, end in pend.actions:
                    batch.append((index, _id, doc))
                    size += len(doc["message"]) + 200
                    commits[path] = Checkpoint(pend.inode, end, pend.gen)
                    if len(batch) >= MAX_BATCH_DOCS or size >= MAX_BATCH_BYTES:
                        send()
                commits[path] = pend.final
            send()
            self.shipped += shipped
            self.last_ok = time.time()
            self.last_error = ""
            return shipped

    def caught_up(self) -> bool:
        cps = self.load()
        for path in self.files():
            try:
                st = os.stat(path)
            except OSError:
                continue
            cp = cps.get(path)
            if cp is None or cp.inode != st.st_ino or cp.offset != st.st_size:
                return False
        return True

    def status(self) -> dict[str, Any]:
        cps = self.load()
        files = []
        for path, source in self.files().items():
            try:
                st = os.stat(path)
                size, inode = st.st_size, st.st_ino
            except OSError:
                size, inode = None, None
            cp = cps.get(path)
            files.append(
                {
                    "path": path,
                    "source": source,
                    "size": size,
                    "inode": inode,
                    "offset": cp.offset if cp else 0,
                    "checkpoint_inode": cp.inode if cp else None,
                    "behind_bytes": (size - cp.offset if cp and cp.inode == inode else size)
                    if size is not None
                    else 0,
                }
            )
        return {
            "shipped": self.shipped,
            "lines": self.lines,
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "files": files,
        }

    def refresh(self) -> None:
        with contextlib.suppress(urllib.error.URLError, OSError):
            self._request("POST", f"{self.es}/logs-*/_refresh")

    def run(self, stop: threading.Event, interval: float = INTERVAL) -> None:
        backoff = interval
        while not stop.is_set():
            self.heartbeat = time.time()
            if not self.ready():
                stop.wait(NOT_READY_WAIT)
                continue
            try:
                n = self.ship_pass()
            except (OSError, ValueError) as exc:  # URLError is an OSError
                self.last_error = str(exc)
                backoff = min(backoff * 2, BACKOFF_MAX)
                print(f"shipper: {exc}; retrying in {backoff:.0f}s", file=sys.stderr, flush=True)
                stop.wait(backoff)
                continue
            backoff = interval
            if n:
                print(f"shipper: shipped {n} documents", file=sys.stderr, flush=True)
            stop.wait(interval)


def flush(shipper: Shipper, timeout: float) -> int:
    """Ship until every file is caught up (entries written > HOLD ago), then refresh."""
    deadline = time.monotonic() + timeout
    total = 0
    while True:
        try:
            if shipper.ready():
                total += shipper.ship_pass()
                if shipper.caught_up():
                    shipper.refresh()
                    return total
        except (OSError, ValueError) as exc:
            shipper.last_error = str(exc)
        if time.monotonic() > deadline:
            raise TimeoutError(f"not caught up after {timeout:.0f}s: {shipper.last_error}")
        time.sleep(0.3)


def serve_health(shipper: Shipper, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                alive = time.time() - shipper.heartbeat < 10 * BACKOFF_MAX
                body = {"status": "ok" if alive else "stuck", "last_error": shipper.last_error}
                self._send(200 if alive else 503, body)
            elif self.path == "/status":
                self._send(200, shipper.status())
            else:
                self._send(404, {"error": "not found"})

        def _send(self, code: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="shipper", description=__doc__.split("\n")[0])
    parser.add_argument("--es", required=True, help="Elasticsearch URL")
    parser.add_argument("--logs", required=True, type=Path, help="the lab's logs directory")
    parser.add_argument("--state", required=True, type=Path, help="where the checkpoint lives")
    parser.add_argument("--port", type=int, default=0, help="GET /health and /status here")
    parser.add_argument(
        "--file", action="append", default=[], metavar="PATH=SOURCE", help="watch another file"
    )
    parser.add_argument("--wait-template", default="", help="ship only once this template exists")
    parser.add_argument("--interval", type=float, default=INTERVAL)
    parser.add_argument("--once", action="store_true", help="ship until caught up, then exit")
    parser.add_argument("--timeout", type=float, default=60, help="with --once")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.file)
    shipper = Shipper(args.es, args.logs, args.state, extra, args.wait_template)
    if args.once:
        try:
            n = flush(shipper, args.timeout)
        except TimeoutError as exc:
            sys.exit(f"shipper: {exc}")
        print(json.dumps({"shipped": n}))
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.port:
        serve_health(shipper, args.port)
    print(
        f"shipper: watching {len(shipper.files())} files in {args.logs} -> {args.es}",
        file=sys.stderr,
        flush=True,
    )
    shipper.run(stop, args.interval)


if __name__ == "__main__":
    main()
