"""The lab's log shipper (lab/shipper.py): the services' own logs reach Elasticsearch as
daily `logs-<source>-YYYY.MM.dd` indices, each document with @timestamp, level, message,
service and host. The parser tests are pure; the rest run against the real lab (its real
PostgreSQL, Dovecot and Elasticsearch, and lab/faultproxy.py in front of Elasticsearch)."""

from __future__ import annotations

import imaplib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import LAB, OFFSET, STATE, Lab, get_json, lab_ctl
from tests.reliability.faults import fault_proxy

sys.path.insert(0, str(LAB))
import labcore
import shipper

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
HOST = socket.gethostname()


def one(source: str, text: str) -> shipper.Entry:
    lines = shipper.split_lines(text.encode(), 0)
    entries = shipper.group(source, lines, NOW)
    assert len(entries) == 1, entries
    return entries[0]


def local(text: str) -> str:
    """A local wall-clock time as the UTC ISO string the shipper should produce."""
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()


# --------------------------------------------------------------------------- parser


def test_postgresql_error_joins_its_statement_line() -> None:
    e = one(
        "postgresql",
        "2026-12-01 19:50:02.456 UTC [4250] email_service@emailclient ERROR:  relation "
        '"nope" does not exist at character 15\n'
        "2026-12-01 19:50:02.456 UTC [4250] email_service@emailclient STATEMENT:  "
        "SELECT * FROM nope;\n",
    )
    assert e.header.level == "ERROR"
    assert e.header.ts == datetime(2026, 12, 1, 19, 50, 2, 456000, tzinfo=UTC)
    assert e.message == (
        'relation "nope" does not exist at character 15\nSTATEMENT:  SELECT * FROM nope;'
    )


@pytest.mark.parametrize(
    ("word", "level"),
    [
        ("LOG", "INFO"),
        ("FATAL", "ERROR"),
        ("PANIC", "ERROR"),
        ("WARNING", "WARNING"),
        ("NOTICE", "INFO"),
        ("DEBUG1", "DEBUG"),
    ],
)
def test_postgresql_levels(word: str, level: str) -> None:
    e = one("postgresql", f"2026-12-01 19:50:01.000 UTC [42] {word}:  something\n")
    assert (e.header.level, e.message) == (level, "something")


def test_postgresql_detail_of_another_backend_is_its_own_entry() -> None:
    lines = shipper.split_lines(
        b"2026-12-01 19:50:03.000 UTC [1] FATAL:  password authentication failed\n"
        b"2026-12-01 19:50:03.000 UTC [1] DETAIL:  Connection matched line 3\n"
        b"2026-12-01 19:50:03.100 UTC [2] DETAIL:  orphan detail\n",
        0,
    )
    entries = shipper.group("postgresql", lines, NOW)
    assert [e.message for e in entries] == [
        "password authentication failed\nDETAIL:  Connection matched line 3",
        "orphan detail",
    ]


def test_python_logging_with_traceback_is_one_entry() -> None:
    e = one(
        "email-service",
        "2026-12-01 19:50:03,001 ERROR email_service.app: Exception on /api/send [POST]\n"
        "Traceback (most recent call last):\n"
        '  File "/x/app.py", line 10, in send\n'
        '    raise RuntimeError("smtp down")\n'
        "RuntimeError: smtp down\n",
    )
    assert e.header.level == "ERROR"
    assert e.header.ts is not None
    assert e.header.ts.isoformat() == local("2026-12-01 19:50:03.001")
    assert e.message.startswith("email_service.app: Exception on /api/send [POST]\nTraceback")
    assert e.message.endswith("RuntimeError: smtp down")


def test_gunicorn_and_access_lines() -> None:
    g = one("email-service", "[2026-12-01 19:50:01 +0100] [123] [CRITICAL] WORKER TIMEOUT\n")
    assert g.header.level == "ERROR"
    assert g.header.ts == datetime(2026, 12, 1, 18, 50, 1, tzinfo=UTC)
    assert g.message == "gunicorn[123]: WORKER TIMEOUT"
    a = one(
        "email-service",
        '127.0.0.1 - - [01/Dec/2026:19:50:04 +0000] "GET /x HTTP/1.1" 503 12 "-" "curl"\n',
    )
    assert (a.header.level, a.header.ts) == ("ERROR", datetime(2026, 12, 1, 19, 50, 4, tzinfo=UTC))


def test_celery_line_and_task_traceback() -> None:
    e = one(
        "celery-worker",
        "[2026-12-01 19:50:02,000: ERROR/ForkPoolWorker-1] Task t.send[abc] raised: ValueError\n"
        "Traceback (most recent call last):\n"
        "ValueError: x\n",
    )
    assert e.header.level == "ERROR"
    assert e.message.startswith("ForkPoolWorker-1: Task t.send[abc] raised: ValueError\n")
    w = one("celery-worker", "[2026-12-01 19:50:03,000: WARNING/MainProcess] celery@vm ready.\n")
    assert w.header.level == "WARNING"


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("postfix/master[1]: daemon started -- version 3.7.11", "INFO"),
        ("postfix/smtp[2]: 4XbC1d: to=<a@refused.test>, dsn=4.4.1, status=deferred (x)", "WARNING"),
        ("postfix/smtp[2]: 5YdD: to=<b@x.test>, dsn=5.1.1, status=bounced (user unknown)", "ERROR"),
        ("postfix/smtpd[3]: warning: hostname localhost does not resolve", "WARNING"),
        ("postfix/smtpd[3]: NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 554", "WARNING"),
        ("postfix/postqueue[4]: fatal: Queue report unavailable", "ERROR"),
        ("postfix/qmgr[5]: 4XbC1d: error: something broke", "ERROR"),
        ("postfix/smtp[2]: 6ZeE: to=<c@emailclient.test>, status=sent (delivered)", "INFO"),
    ],
)
def test_postfix_levels(line: str, level: str) -> None:
    for stamp in ("Dec  1 19:50:05", "Dec  1 19:50:05.123456", "2026-12-01T19:50:05.123456+00:00"):
        e = one("postfix", f"{stamp} vm {line}\n")
        assert (e.header.level, e.message) == (level, line)
        assert e.header.ts is not None and e.header.ts.strftime("%M:%S") == "50:05"


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("master: Info: Dovecot v2.3.19.1 starting up for imap, pop3", "INFO"),
        ("imap-login: Info: Login: user=<alice>, method=PLAIN, rip=127.0.0.1", "INFO"),
        ("auth: Error: passwd-file /x/users: open failed", "ERROR"),
        ("auth: Warning: auth client 1 disconnected", "WARNING"),
        ("master: Fatal: service(imap) bind failed", "ERROR"),
        (
            "imap-login: Info: Login aborted: Connection closed (auth failed, 1 attempts in 2 "
            "secs) (auth_failed): user=<alice>, method=PLAIN, rip=127.0.0.1",
            "WARNING",
        ),
        (
            "imap-login: Info: Disconnected (auth failed, 1 attempts in 2 secs): user=<alice>",
            "WARNING",
        ),
    ],
)
def test_dovecot_levels(line: str, level: str) -> None:
    for stamp in ("Dec 01 19:50:04", "2026-12-01T19:50:04"):
        e = one("dovecot", f"{stamp} {line}\n")
        want = line.replace(": Info:", ":").replace(": Error:", ":").replace(": Warning:", ":")
        want = want.replace(": Fatal:", ":")
        assert (e.header.level, e.message) == (level, want)
        assert e.header.ts is not None
        assert e.header.ts.isoformat() == local("2026-12-01 19:50:04")


def test_syslog_time_without_year_is_never_in_the_future() -> None:
    ts = shipper.parse_syslog_ts("Dec 31 23:59:59", datetime(2027, 1, 1, 0, 5, tzinfo=UTC))
    assert ts is not None and ts.year == 2026


def test_a_line_without_time_gets_the_read_time_and_a_guessed_level() -> None:
    e = one("celery-worker", " -------------- celery@vm v5.4.0 (opalescent)\n")
    assert e.header.ts is None
    doc = shipper.document(e, "celery-worker", "h", NOW)
    assert doc == {
        "@timestamp": "2026-12-01T20:00:00.000Z",
        "level": "INFO",
        "message": " -------------- celery@vm v5.4.0 (opalescent)",
        "service": "celery-worker",
        "host": "h",
    }
    assert shipper.index_name("celery-worker", doc["@timestamp"]) == "logs-celery-worker-2026.12.01"


HEADERS = st.sampled_from(
    [
        "2026-12-01 19:50:01.123 UTC [7] ERROR:  boom",
        "2026-12-01 19:50:01.123 UTC [7] STATEMENT:  SELECT 1",
        "2026-12-01 19:50:01,123 WARNING app: careful",
        "[2026-12-01 19:50:01,123: INFO/MainProcess] ready",
        "[2026-12-01 19:50:01 +0000] [9] [ERROR] worker died",
        "Dec  1 19:50:01 vm postfix/smtp[1]: A1: status=deferred (x)",
        "Dec 01 19:50:01 imap-login: Info: Login: user=<bob>",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "",
    ]
)
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(
    source=st.sampled_from(sorted(set(shipper.SOURCES.values()))),
    lines=st.lists(st.one_of(HEADERS, TEXT), max_size=40),
)
def test_grouping_loses_and_duplicates_no_line(source: str, lines: list[str]) -> None:
    data = "".join(f"{line}\n" for line in lines).encode()
    split = shipper.split_lines(data, 100)
    assert len(split) == len(lines)
    entries = shipper.group(source, split, NOW)
    assert sum(1 + len(e.lines) for e in entries) == sum(1 for x in lines if x.strip())
    previous_end = 100
    for e in entries:
        assert previous_end <= e.start < e.end <= 100 + len(data)
        previous_end = e.end
        assert e.header.level in shipper.LEVELS
        doc = shipper.document(e, source, HOST, NOW)
        assert doc["@timestamp"].endswith("Z") and doc["service"] == source
        json.dumps(doc)


def test_document_ids_are_deterministic_per_file_inode_generation_offset() -> None:
    a = shipper.doc_id("/l/postgres.log", 5, 0, 100)
    assert a == shipper.doc_id("/l/postgres.log", 5, 0, 100)
    others = {
        shipper.doc_id("/l/postgres.log", 6, 0, 100),
        shipper.doc_id("/l/postgres.log", 5, 1, 100),
        shipper.doc_id("/l/postgres.log", 5, 0, 101),
        shipper.doc_id("/l/dovecot.log", 5, 0, 100),
    }
    assert a not in others and len(others) == 4


# --------------------------------------------------------------------------- against the lab


def today_index(source: str) -> str:
    return f"logs-{source}-{datetime.now(UTC):%Y.%m.%d}"


def search(lab: Lab, index: str, phrase: str) -> list[dict[str, Any]]:
    body = {"size": 1000, "query": {"match_phrase": {"message": phrase}}}
    hits: list[dict[str, Any]] = get_json(
        f"{lab.elasticsearch}/{index}/_search", method="POST", body=body
    )["hits"]["hits"]
    return hits


def wait_hits(
    lab: Lab,
    index: str,
    phrase: str,
    timeout: float = 30,
    done: Callable[[list[dict[str, Any]]], bool] = bool,
) -> list[dict[str, Any]]:
    """Search until `done(hits)` (by default: any hit) or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        hits = search(lab, index, phrase)
        if done(hits) or time.monotonic() > deadline:
            return hits
        time.sleep(1)


def delete_hits(lab: Lab, hits: list[dict[str, Any]]) -> None:
    lines = [json.dumps({"delete": {"_index": h["_index"], "_id": h["_id"]}}) for h in hits]
    if lines:
        shipper.Shipper(lab.elasticsearch, Path("/"), Path("/"))._request(
            "POST", f"{lab.elasticsearch}/_bulk?refresh=true", ("\n".join(lines) + "\n").encode()
        )


def test_the_shipper_is_a_lab_server_and_healthy(lab: Lab) -> None:
    health = get_json(f"http://127.0.0.1:{9601 + OFFSET}/health")
    assert health["status"] == "ok"
    status = get_json(f"http://127.0.0.1:{9601 + OFFSET}/status")
    by_name = {Path(f["path"]).name: f for f in status["files"]}
    assert by_name["postgres.log"]["source"] == "postgresql"
    assert by_name["dovecot.log"]["source"] == "dovecot"
    mapping = get_json(f"{lab.elasticsearch}/{today_index('postgresql')}/_mapping")
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["host"] == {"type": "keyword"} and props["level"] == {"type": "keyword"}


def test_a_failing_sql_statement_reaches_elasticsearch_as_an_error(lab: Lab) -> None:
    table = f"no_such_table_{uuid.uuid4().hex[:12]}"
    proc = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(5432 + OFFSET),
            "-U",
            labcore.PG_USER,
            "-d",
            labcore.PG_DATABASE,
            "-c",
            f"SELECT * FROM {table}",
        ],
        env={**os.environ, "PGPASSWORD": labcore.PG_PASSWORD},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0 and "does not exist" in proc.stderr
    hits = wait_hits(lab, today_index("postgresql"), table)  # the running shipper, no flush
    assert len(hits) == 1, hits
    doc = hits[0]["_source"]
    assert doc["level"] == "ERROR"
    assert doc["service"] == "postgresql" and doc["host"] == HOST
    assert f'relation "{table}" does not exist' in doc["message"]
    assert f"STATEMENT:  SELECT * FROM {table}" in doc["message"]  # the continuation joined
    age = datetime.now(UTC) - datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
    assert 0 <= age.total_seconds() < 60  # the line's own time, not the backfill's


def test_a_failed_imap_login_reaches_elasticsearch_as_a_warning(lab: Lab) -> None:
    user = f"u{uuid.uuid4().hex[:12]}"
    imap = imaplib.IMAP4("127.0.0.1", 1143 + OFFSET, timeout=30)
    with pytest.raises(imaplib.IMAP4.error):
        imap.login(user, "wrong-password")
    imap.logout()

    def auth_failed(hits: list[dict[str, Any]]) -> bool:
        # Dovecot logs "unknown user" at once and imap-login's "auth failed" only after
        # its failure delay: wait for the second one
        return any("auth failed" in h["_source"]["message"] for h in hits)

    hits = wait_hits(lab, today_index("dovecot"), user, done=auth_failed)
    assert hits, f"no dovecot document mentions {user}"
    docs = [h["_source"] for h in hits]
    assert all(d["service"] == "dovecot" and d["host"] == HOST for d in docs)
    assert any(d["level"] == "WARNING" and "auth failed" in d["message"] for d in docs), docs


def entries_today(path: Path, source: str, upto: int) -> int:
    with path.open("rb") as fh:
        data = fh.read(upto)
    entries = shipper.group(source, shipper.split_lines(data, 0), datetime.now(UTC))
    day = f"{datetime.now(UTC):%Y-%m-%d}"
    return sum(1 for e in entries if e.header.ts is not None and f"{e.header.ts:%Y-%m-%d}" == day)


def test_restarting_the_shipper_duplicates_nothing(lab: Lab) -> None:
    """Every entry of postgres.log up to the checkpoint is in today's index exactly once,
    counted with the daemon held still by the shipper's own lock, across a restart."""
    logs = STATE / "logs"
    ship = shipper.Shipper(lab.elasticsearch, logs, STATE / "log_shipper")
    path = logs / "postgres.log"

    def counted() -> tuple[int, int]:
        with ship.locked():
            cp = ship.load()[str(path)]
            get_json(f"{lab.elasticsearch}/{today_index('postgresql')}/_refresh", method="POST")
            body = {"query": {"term": {"host": HOST}}}
            n = get_json(
                f"{lab.elasticsearch}/{today_index('postgresql')}/_count", method="POST", body=body
            )["count"]
            return n, entries_today(path, "postgresql", cp.offset)

    in_es, in_file = counted()
    assert in_es == in_file > 0
    lab_ctl("server", "restart", "log_shipper")
    lab_ctl("logs", "flush")
    in_es2, in_file2 = counted()
    assert in_es2 == in_file2 >= in_file


@pytest.fixture
def scratch(lab: Lab, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A log file of our own (as email-service), with a unique marker; its documents are
    deleted from the lab's index afterwards."""
    marker = f"m{uuid.uuid4().hex}"
    logs = tmp_path / "logs"
    logs.mkdir()
    yield logs, marker
    get_json(f"{lab.elasticsearch}/{today_index('email-service')}/_refresh", method="POST")
    delete_hits(lab, search(lab, today_index("email-service"), marker))


def write_lines(path: Path, marker: str, first: int, count: int) -> None:
    with path.open("a") as fh:
        for i in range(first, first + count):
            stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
            fh.write(f"{stamp} INFO test.shipper: {marker} line {i}\n")


def numbers(lab: Lab, marker: str) -> list[int]:
    get_json(f"{lab.elasticsearch}/{today_index('email-service')}/_refresh", method="POST")
    hits = search(lab, today_index("email-service"), marker)
    return sorted(int(h["_source"]["message"].rsplit(" ", 1)[1]) for h in hits)


def test_elasticsearch_refusing_or_cutting_answers_loses_and_duplicates_nothing(
    lab: Lab, scratch: tuple[Path, str]
) -> None:
    logs, marker = scratch
    log = logs / "email_service.log"
    write_lines(log, marker, 0, 20)
    with fault_proxy(lab.elasticsearch) as proxy:
        ship = shipper.Shipper(proxy.url, logs, logs.parent / "state", wait_template="")
        proxy.set("status", status=503, path="_bulk")  # Elasticsearch overloaded / down
        with pytest.raises(OSError):
            ship.ship_pass(hold=0)
        assert ship.load() == {}  # nothing committed
        proxy.set("disconnect", path="_bulk")  # the connection dies mid-request
        with pytest.raises(OSError):
            ship.ship_pass(hold=0)
        assert numbers(lab, marker) == []
        proxy.set("none")
        assert shipper.flush(ship, 30) == 20
        assert numbers(lab, marker) == list(range(20))
        # Elasticsearch indexes the batch but the answer is lost: the re-send overwrites
        write_lines(log, marker, 20, 10)
        proxy.set("truncated", path="_bulk")
        with pytest.raises((OSError, ValueError)):
            ship.ship_pass(hold=0)
        assert ship.load()[str(log)].offset < log.stat().st_size
        assert numbers(lab, marker) == list(range(30))  # it did reach Elasticsearch
        proxy.set("none")
        assert shipper.flush(ship, 30) == 10  # sent again ...
        assert numbers(lab, marker) == list(range(30))  # ... and still once each


def test_a_closed_port_then_the_real_elasticsearch(lab: Lab, scratch: tuple[Path, str]) -> None:
    logs, marker = scratch
    write_lines(logs / "email_service.log", marker, 0, 5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    ship = shipper.Shipper(f"http://127.0.0.1:{closed}", logs, logs.parent / "state")
    with pytest.raises(OSError):
        ship.ship_pass(hold=0)
    ship.es = lab.elasticsearch
    assert shipper.flush(ship, 30) == 5
    assert numbers(lab, marker) == list(range(5))


def test_rotation_and_truncation_lose_and_duplicate_nothing(
    lab: Lab, scratch: tuple[Path, str]
) -> None:
    logs, marker = scratch
    log = logs / "email_service.log"
    ship = shipper.Shipper(lab.elasticsearch, logs, logs.parent / "state")
    write_lines(log, marker, 0, 3)
    assert shipper.flush(ship, 30) == 3
    with log.open("a") as writer:  # the writer keeps its descriptor across the rotation
        shutil.move(log, logs / "email_service.log.1")
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S,000")
        writer.write(f"{stamp} INFO test.shipper: {marker} line 3\n")
    write_lines(log, marker, 4, 2)  # the new file under the old name
    shipper.flush(ship, 30)
    assert numbers(lab, marker) == list(range(6))
    log.write_text("")  # truncated in place (copytruncate)
    write_lines(log, marker, 6, 1)
    shipper.flush(ship, 30)
    assert numbers(lab, marker) == list(range(7))


def test_lab_logs_status_and_flush_commands(lab: Lab) -> None:
    env = {**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)}
    run = [sys.executable, str(LAB / "lab.py"), "logs"]
    flush = subprocess.run([*run, "flush", "--json"], env=env, capture_output=True, text=True)
    assert flush.returncode == 0, flush.stderr
    assert json.loads(flush.stdout)["shipped"] >= 0
    status = subprocess.run([*run, "status", "--json"], env=env, capture_output=True, text=True)
    files = {Path(f["path"]).name: f for f in json.loads(status.stdout)["files"]}
    assert files["postgres.log"]["offset"] > 0
    assert set(files) == set(shipper.SOURCES)
