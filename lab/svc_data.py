"""Lab services: data. PostgreSQL 15 and Redis 7 with their real Prometheus exporters
(Debian's prometheus-postgres-exporter 0.11 and prometheus-redis-exporter 1.45), and the
blackbox exporter probing the services' ports and health endpoints.

Each runs in the foreground under lab.py, on 127.0.0.1 at labcore.port(), its state under
state_dir(). `seed()` creates the email service's role, database and schema and the
exporter's role (pg_monitor); it is idempotent. Subcommands for tests:

    lab.py pg psql [--db DB] SQL            run SQL as the superuser (over the unix socket)
    lab.py pg hold-connections N SECONDS    hold N idle connections as the service's role
    lab.py redis cli [--db N] ARG...        one Redis command, its reply printed
    lab.py redis fill [--db 3] [--mb 96]    write volatile keys until Redis evicts
    lab.py redis flush-fill [--db 3]        delete what `fill` wrote (FLUSHDB of that db)

Standard library only: this runs before any virtualenv exists."""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from labcore import (
    LAB,
    PG_DATABASE,
    PG_EXPORTER_PASSWORD,
    PG_EXPORTER_USER,
    PG_PASSWORD,
    PG_USER,
    Server,
    log,
    port,
    render,
    state_dir,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DEBIAN_PACKAGES: dict[str, str] = {
    "postgresql-15": str(PG_BIN / "postgres"),
    "postgresql-client-15": str(PG_BIN / "psql"),
    "prometheus-postgres-exporter": "/usr/bin/prometheus-postgres-exporter",
    "redis-server": "/usr/bin/redis-server",
    "prometheus-redis-exporter": "/usr/bin/prometheus-redis-exporter",
    "prometheus-blackbox-exporter": "/usr/bin/prometheus-blackbox-exporter",
}

# PostgreSQL refuses to run as root: as root the lab runs it as the Debian package's
# `postgres` user; as an ordinary user, as that user.
PG_OS_USER: str | None = "postgres" if os.geteuid() == 0 else None
PG_SUPERUSER = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
# Small on purpose: the README's "connection pool > 80%" is 40 connections here, which a
# test (or the app under load) reaches for real. superuser_reserved_connections stays 3.
PG_MAX_CONNECTIONS = 50
PG_SLOW_STATEMENT_MS = 500
REDIS_MAXMEMORY_MB = 64
FILL_DB = 3  # `redis fill` writes here: db 0 is Celery's broker, db 1 the app's cache


def pg_dir() -> Path:
    return state_dir() / "postgres"


def pg_data() -> Path:
    return pg_dir() / "data"


def pg_socket_dir() -> Path:
    return pg_dir() / "run"


def _chown(path: Path) -> None:
    if PG_OS_USER is not None:
        shutil.chown(path, PG_OS_USER, PG_OS_USER)


def prepare_postgres() -> None:
    """initdb once; the socket directory each start (PostgreSQL owns both)."""
    for sub in (pg_dir(), pg_socket_dir()):
        sub.mkdir(parents=True, exist_ok=True)
        _chown(sub)
    # The postgres user must be able to traverse the state directory and its parent.
    for parent in (state_dir(), state_dir().parent):
        mode = parent.stat().st_mode
        if PG_OS_USER is not None and not mode & 0o001:
            parent.chmod(mode | 0o011)
    if (pg_data() / "PG_VERSION").exists():
        return
    log("initdb: a new PostgreSQL 15 cluster in " + str(pg_data()))
    subprocess.run(
        [
            str(PG_BIN / "initdb"),
            "-D",
            str(pg_data()),
            "-U",
            PG_SUPERUSER,
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
        ],
        check=True,
        user=PG_OS_USER,
        group=PG_OS_USER,
        cwd=pg_dir(),
        stdout=subprocess.DEVNULL,
    )


def postgres_argv() -> list[str]:
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port("postgres")),
        "unix_socket_directories": str(pg_socket_dir()),
        "max_connections": str(PG_MAX_CONNECTIONS),
        "shared_buffers": "32MB",
        # stderr goes to lab.py's state_dir()/logs/postgres.log (shipped to Elasticsearch)
        "logging_collector": "off",
        "log_destination": "stderr",
        "log_line_prefix": "%m [%p] %q%u@%d ",
        "log_timezone": "UTC",
        "log_min_duration_statement": f"{PG_SLOW_STATEMENT_MS}ms",
        "log_connections": "on",
        "log_disconnections": "on",
        "log_lock_waits": "on",
        "log_temp_files": "0",
        "password_encryption": "scram-sha-256",
    }
    argv = [str(PG_BIN / "postgres"), "-D", str(pg_data())]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def postgres_exporter_env() -> dict[str, str]:
    dsn = (
        f"postgresql://{PG_EXPORTER_USER}:{PG_EXPORTER_PASSWORD}@127.0.0.1:{port('postgres')}"
        "/postgres?sslmode=disable"
    )
    return {"DATA_SOURCE_NAME": dsn}


def postgres_exporter_argv() -> list[str]:
    return [
        "/usr/bin/prometheus-postgres-exporter",
        f"--web.listen-address=127.0.0.1:{port('postgres_exporter')}",
    ]


def redis_argv() -> list[str]:
    directory = state_dir() / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    return [
        "/usr/bin/redis-server",
        "--port",
        str(port("redis")),
        "--bind",
        "127.0.0.1",
        "--daemonize",
        "no",
        "--supervised",
        "no",
        "--dir",
        str(directory),
        "--maxmemory",
        f"{REDIS_MAXMEMORY_MB}mb",
        # Only keys with a TTL are evicted: the app's cache (db 1) and `fill` (db 3) go,
        # Celery's queues (db 0, no TTL) stay. allkeys-lru would drop queued tasks.
        "--maxmemory-policy",
        "volatile-lru",
        "--latency-tracking",
        "yes",
        "--latency-tracking-info-percentiles",
        "50 99 99.9",
        "--save",
        "60 1000",
        "--appendonly",
        "no",
    ]


def redis_exporter_argv() -> list[str]:
    return [
        "/usr/bin/prometheus-redis-exporter",
        "-redis.addr",
        f"redis://127.0.0.1:{port('redis')}",
        "-web.listen-address",
        f"127.0.0.1:{port('redis_exporter')}",
    ]


def blackbox_argv() -> list[str]:
    config = state_dir() / "blackbox_exporter" / "blackbox.yml"
    render(LAB / "config" / "blackbox.yml", config)
    return [
        "/usr/bin/prometheus-blackbox-exporter",
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port('blackbox_exporter')}",
    ]


SERVERS: list[Server] = [
    Server(
        "postgres",
        "tcp",
        "postgres",
        argv=postgres_argv,
        prepare=prepare_postgres,
        user=PG_OS_USER,
    ),
    Server(
        "postgres_exporter",
        "/metrics",
        "postgres_exporter",
        argv=postgres_exporter_argv,
        env=postgres_exporter_env,
    ),
    Server("redis", "tcp", "redis", argv=redis_argv),
    Server("redis_exporter", "/health", "redis_exporter", argv=redis_exporter_argv),
    Server("blackbox_exporter", "/-/healthy", "blackbox_exporter", argv=blackbox_argv),
]


# --------------------------------------------------------------------------- PostgreSQL


def psql(sql: str, db: str = "postgres", check: bool = True) -> str:
    """Run SQL as the cluster's superuser over the unix socket (peer authentication)."""
    proc = subprocess.run(
        [
            str(PG_BIN / "psql"),
            "-h",
            str(pg_socket_dir()),
            "-p",
            str(port("postgres")),
            "-U",
            PG_SUPERUSER,
            "-d",
            db,
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        capture_output=True,
        text=True,
        user=PG_OS_USER,
        group=PG_OS_USER,
        cwd="/",
        check=False,
    )
    if check and proc.returncode != 0:
        sys.exit(f"lab: psql failed: {proc.stderr.strip()}")
    return proc.stdout


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# the email-service's tables, shared with the app (lab/apps/emailsvc/web.py)
SCHEMA = (LAB / "config" / "schema.sql").read_text()


def seed() -> None:
    """Roles, the email service's database and schema, the exporter's role (idempotent)."""
    for role, password in ((PG_USER, PG_PASSWORD), (PG_EXPORTER_USER, PG_EXPORTER_PASSWORD)):
        exists = psql(f"SELECT 1 FROM pg_roles WHERE rolname = {_literal(role)}").strip()
        verb = "ALTER" if exists else "CREATE"
        psql(f'{verb} ROLE "{role}" WITH LOGIN PASSWORD {_literal(password)}')
    psql(f'GRANT pg_monitor TO "{PG_EXPORTER_USER}"')
    if not psql(f"SELECT 1 FROM pg_database WHERE datname = {_literal(PG_DATABASE)}").strip():
        psql(f'CREATE DATABASE "{PG_DATABASE}" OWNER "{PG_USER}"')
    psql(f'ALTER DATABASE "{PG_DATABASE}" OWNER TO "{PG_USER}"')
    psql(f'ALTER SCHEMA public OWNER TO "{PG_USER}"', db=PG_DATABASE)
    psql(f'SET ROLE "{PG_USER}";' + SCHEMA, db=PG_DATABASE)


def hold_connections(count: int, seconds: float, role: str = PG_USER) -> None:
    """Open `count` idle client connections over TCP (as the service's role) and hold them.

    Each is a psql reading an open stdin: connected, authenticated, idle, until we close."""
    env = dict(os.environ, PGPASSWORD=PG_PASSWORD if role == PG_USER else PG_EXPORTER_PASSWORD)
    env["PGAPPNAME"] = "lab-hold-connections"
    cmd = [
        str(PG_BIN / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port("postgres")),
        "-U",
        role,
        "-d",
        PG_DATABASE,
        "-X",
        "-q",
    ]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            procs.append(
                subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd="/"
                )
            )
        # a connection counts once its backend exists: wait until all are there
        deadline = time.monotonic() + 20
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lab-hold-connections'"
        )
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                sys.exit("lab: a held connection was refused (max_connections reached?)")
            if int(psql(sql).strip() or 0) >= count:
                break
            time.sleep(0.2)
        log(f"holding {count} PostgreSQL connections for {seconds:.0f}s")
        print("ready", flush=True)
        time.sleep(seconds)
    finally:
        for p in procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


# --------------------------------------------------------------------------- Redis


class Redis:
    """A minimal RESP client: enough for the lab's commands and tests."""

    def __init__(self, db: int = 0, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port("redis")), timeout=timeout)
        self.buf = self.sock.makefile("rb")
        if db:
            self.call("SELECT", str(db))

    def close(self) -> None:
        self.buf.close()
        self.sock.close()

    def __enter__(self) -> Redis:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @staticmethod
    def encode(*args: str | bytes) -> bytes:
        out = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            raw = arg.encode() if isinstance(arg, str) else arg
            out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        return b"".join(out)

    def read(self) -> Any:
        line = self.buf.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.buf.read(size + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *args: str | bytes) -> Any:
        self.sock.sendall(self.encode(*args))
        return self.read()

    def pipeline(self, commands: list[tuple[str | bytes, ...]]) -> list[Any]:
        self.sock.sendall(b"".join(self.encode(*c) for c in commands))
        out: list[Any] = []
        for _ in commands:
            try:
                out.append(self.read())
            except RuntimeError as exc:  # an error reply (e.g. OOM) for one command
                out.append(exc)
        return out

    def info(self, section: str = "") -> dict[str, str]:
        raw = self.call("INFO", section) if section else self.call("INFO")
        pairs = (line.split(":", 1) for line in str(raw).splitlines() if ":" in line)
        return {k: v for k, v in pairs}


def redis_fill(db: int = FILL_DB, mb: int = REDIS_MAXMEMORY_MB + 32) -> int:
    """Write 64 KiB volatile keys to `db` until Redis has evicted some (or `mb` written).

    Returns the number of keys evicted meanwhile."""
    value = b"x" * 65536
    total = mb * 1024 * 1024 // len(value)
    with Redis(db) as r:
        before = int(r.info("stats")["evicted_keys"])
        n = int(r.call("DBSIZE"))
        written = 0
        while written < total:
            batch = min(64, total - written)
            r.pipeline([("SET", f"lab:fill:{n + i}", value, "EX", "3600") for i in range(batch)])
            n += batch
            written += batch
            evicted = int(r.info("stats")["evicted_keys"]) - before
            if evicted > 0:
                log(f"redis fill: {written} keys of 64 KiB written to db {db}, {evicted} evicted")
                return evicted
        return int(r.info("stats")["evicted_keys"]) - before


def add_commands(sub: Any) -> None:
    pg = sub.add_parser("pg", help="the lab's PostgreSQL (svc_data.py)")
    pg_sub = pg.add_subparsers(dest="pg_cmd", required=True)
    p = pg_sub.add_parser("psql", help="run SQL as the superuser, print the rows")
    p.add_argument("--db", default=PG_DATABASE)
    p.add_argument("sql")
    p.set_defaults(fn=lambda a: print(psql(a.sql, db=a.db), end=""))
    p = pg_sub.add_parser("hold-connections", help="hold N idle connections for SECONDS")
    p.add_argument("count", type=int)
    p.add_argument("seconds", type=float)
    p.set_defaults(fn=lambda a: hold_connections(a.count, a.seconds))
    p = pg_sub.add_parser("seed", help="roles, database and schema (idempotent)")
    p.set_defaults(fn=lambda a: seed())

    rd = sub.add_parser("redis", help="the lab's Redis (svc_data.py)")
    rd_sub = rd.add_subparsers(dest="redis_cmd", required=True)
    p = rd_sub.add_parser("cli", help="one Redis command, its reply printed")
    p.add_argument("--db", type=int, default=0)
    p.add_argument("args", nargs="+")
    p.set_defaults(fn=_redis_cli)
    p = rd_sub.add_parser("fill", help="write volatile keys until Redis evicts some")
    p.add_argument("--db", type=int, default=FILL_DB)
    p.add_argument("--mb", type=int, default=REDIS_MAXMEMORY_MB + 32)
    p.set_defaults(fn=lambda a: print(redis_fill(a.db, a.mb)))
    p = rd_sub.add_parser("flush-fill", help="delete what `fill` wrote (FLUSHDB of its db)")
    p.add_argument("--db", type=int, default=FILL_DB)
    p.set_defaults(fn=_flush_fill)


def _redis_cli(args: argparse.Namespace) -> None:
    with Redis(args.db) as r:
        print(r.call(*args.args))


def _flush_fill(args: argparse.Namespace) -> None:
    if args.db in (0, 1):
        sys.exit("lab: db 0 and 1 belong to Celery and the app's cache; not flushing them")
    with Redis(args.db) as r:
        print(r.call("FLUSHDB"))
