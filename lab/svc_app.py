"""Lab services: app. The email-service (Flask under Gunicorn, prometheus-flask-exporter in
multiprocess mode), Celery workers and beat on the lab's Redis, danihodovic/celery-exporter
(PyPI `prometheus-exporter-celery`) and the HTTP/Celery traffic generator. The code is in
lab/apps/emailsvc and runs in its own virtualenv (lab/.cache/services-venv, built by
install() from lab/requirements-services.txt and rebuilt only when that file changes).

Subcommands for tests and demos:

    lab.py celery enqueue QUEUE N     N tasks on QUEUE now (default, emails or reports)
    lab.py celery purge QUEUE         drop what waits on QUEUE
    lab.py celery length QUEUE        the queue's length in Redis
    lab.py app errors N               N requests that the email-service answers 500
    lab.py app health                 the email-service's /health JSON

Standard library only: lab.py imports this before any virtualenv exists."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from labcore import (
    BLACKHOLE_DOMAIN,
    CACHE,
    LAB,
    MAIL_DOMAIN,
    MAIL_USERS,
    PG_DATABASE,
    PG_PASSWORD,
    PG_USER,
    REFUSED_DOMAIN,
    Server,
    log,
    port,
    state_dir,
)

DEBIAN_PACKAGES: dict[str, str] = {}
VENV = CACHE / "services-venv"
REQUIREMENTS = LAB / "requirements-services.txt"
APPS = LAB / "apps"
QUEUES = ("default", "emails", "reports")
GUNICORN_WORKERS = 2


def venv_bin(name: str) -> str:
    return str(VENV / "bin" / name)


def _digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()


def install() -> None:
    """The services' virtualenv, rebuilt only when the requirements (or Python) change."""
    stamp = VENV / ".opskit-requirements.sha256"
    digest = _digest()
    if stamp.exists() and stamp.read_text().strip() == digest and Path(venv_bin("python")).exists():
        return
    t0 = time.monotonic()
    log(f"building the services virtualenv ({VENV.relative_to(LAB.parent)})")
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [venv_bin("pip"), "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(digest + "\n")
    log(f"services virtualenv ready in {time.monotonic() - t0:.0f}s")


# --------------------------------------------------------------------------- servers


def broker_url() -> str:
    return f"redis://127.0.0.1:{port('redis')}/0"


def email_service_url() -> str:
    return f"http://127.0.0.1:{port('email_service')}"


def base_env() -> dict[str, str]:
    dsn = (
        f"host=127.0.0.1 port={port('postgres')} dbname={PG_DATABASE} user={PG_USER} "
        f"password={PG_PASSWORD} connect_timeout=2 application_name=email-service"
    )
    return {
        "PYTHONPATH": str(APPS),
        "PYTHONUNBUFFERED": "1",
        "LAB_PG_DSN": dsn,
        "LAB_BROKER_URL": broker_url(),
        "LAB_REDIS_URL": f"redis://127.0.0.1:{port('redis')}/1",
        "LAB_SMTP_PORT": str(port("smtp")),
        "LAB_IMAP_PORT": str(port("imap")),
        "LAB_MAIL_DOMAIN": MAIL_DOMAIN,
        "LAB_REFUSED_DOMAIN": REFUSED_DOMAIN,
        "LAB_BLACKHOLE_DOMAIN": BLACKHOLE_DOMAIN,
        "LAB_MAIL_USERS": json.dumps(MAIL_USERS),
        "LAB_EMAIL_SERVICE_URL": email_service_url(),
        "LAB_POSTFIX_EXPORTER_URL": f"http://127.0.0.1:{port('postfix_exporter')}",
        "LAB_STATE": str(state_dir()),
        # spans over OTLP/HTTP to the lab's Jaeger (svc_tracing.py, emailsvc/tracing.py)
        "LAB_OTLP_URL": f"http://127.0.0.1:{port('otlp_http')}",
    }


def multiproc_dir() -> Path:
    return state_dir() / "email_service" / "prometheus-multiproc"


def prepare_email_service() -> None:
    # prometheus_client's multiprocess files of a previous run must go before a new start
    shutil.rmtree(multiproc_dir(), ignore_errors=True)
    multiproc_dir().mkdir(parents=True)


def email_service_argv() -> list[str]:
    return [
        venv_bin("gunicorn"),
        "--config",
        str(APPS / "emailsvc" / "gunicorn_conf.py"),
        "--bind",
        f"127.0.0.1:{port('email_service')}",
        "--workers",
        str(GUNICORN_WORKERS),
        "--name",
        "email-service",
        "emailsvc.web:app",
    ]


def email_service_env() -> dict[str, str]:
    return {**base_env(), "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir())}


def worker_argv(queues: str, concurrency: int, node: str) -> list[str]:
    # The node name's host part is what the exporter labels `hostname` (nodesplit):
    # distinct hosts keep the two workers apart in celery_worker_up{hostname}.
    return [
        venv_bin("celery"),
        "-A",
        "emailsvc.tasks",
        "worker",
        "-E",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        node,
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]


def health_env(key: str, trace_instance: str = "") -> dict[str, str]:
    env = {**base_env(), "LAB_HEALTH_PORT": str(port(key))}
    if trace_instance:
        env["LAB_TRACE_INSTANCE"] = trace_instance  # service.instance.id's prefix
    return env


def beat_argv() -> list[str]:
    return [
        venv_bin("celery"),
        "-A",
        "emailsvc.tasks",
        "beat",
        "--schedule",
        str(state_dir() / "celery_beat" / "schedule"),
        "--pidfile=",
        "--loglevel",
        "INFO",
    ]


def exporter_argv() -> list[str]:
    # The wheel has no console script: its click command is src.cli:cli. The exporter
    # exits when its broker connection drops (a Redis restart); operators run it under a
    # supervisor that restarts it (systemd Restart=always, Kubernetes), and so does the lab.
    return [
        "bash",
        "-c",
        'while :; do "$@"; echo "lab: celery-exporter exited ($?), restarting in 2s" >&2;'
        " sleep 2; done",
        "supervise",
        venv_bin("python"),
        "-c",
        "from src.cli import cli; cli()",
        "--broker-url",
        broker_url(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port("celery_exporter")),
        "--queues",
        ",".join(QUEUES),
        # the lab's choices: a killed worker reads offline after 60 s (default 300), and
        # an offline worker's series stay (default: purged after 600 s) so the
        # CeleryWorkerOffline rule keeps seeing celery_worker_up == 0
        "--worker-timeout",
        "60",
        "--purge-offline-worker-metrics",
        "0",
    ]


def traffic_argv() -> list[str]:
    return [venv_bin("python"), "-m", "emailsvc.traffic"]


SERVERS: list[Server] = [
    Server(
        "email_service",
        "/health/live",
        "email_service",
        argv=email_service_argv,
        prepare=prepare_email_service,
        env=email_service_env,
    ),
    Server(
        "celery_worker",
        "/health",
        "celery_worker_health",
        argv=lambda: worker_argv("default,emails", 2, "celery@worker-default"),
        env=lambda: health_env("celery_worker_health", "worker-default"),
    ),
    Server(
        "celery_worker_reports",
        "/health",
        "celery_worker_reports_health",
        argv=lambda: worker_argv("reports", 1, "celery@worker-reports"),
        env=lambda: health_env("celery_worker_reports_health", "worker-reports"),
    ),
    Server(
        "celery_beat",
        "/health",
        "celery_beat_health",
        argv=beat_argv,
        env=lambda: health_env("celery_beat_health"),
    ),
    Server("celery_exporter", "/health", "celery_exporter", argv=exporter_argv, env=base_env),
    Server("traffic", "/health", "traffic", argv=traffic_argv, env=lambda: health_env("traffic")),
]


# --------------------------------------------------------------------------- seed


def _get(path: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(email_service_url() + path, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc).encode()


def seed() -> None:
    """The email-service reaches its database (svc_data's seed made the role): one read
    makes the app create its tables if they are missing. Idempotent."""
    deadline = time.monotonic() + 60
    status, body = 0, b""
    while time.monotonic() < deadline:
        status, body = _get("/api/emails?limit=1")
        if status == 200:
            return
        time.sleep(1)
    log(f"email-service cannot read its database yet ({status}): {body[:200]!r}")


# --------------------------------------------------------------------------- commands


def _ctl(*args: str) -> None:
    if not Path(venv_bin("python")).exists():
        sys.exit("lab: the services virtualenv is missing; run lab/up")
    proc = subprocess.run(
        [venv_bin("python"), "-m", "emailsvc.ctl", *args],
        env={**os.environ, **base_env()},
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(proc.returncode)


def _cmd_celery(args: argparse.Namespace) -> None:
    if args.action == "enqueue":
        _ctl("enqueue", args.queue, str(args.count))
    else:
        _ctl(args.action, args.queue)


def _cmd_app(args: argparse.Namespace) -> None:
    if args.action == "health":
        status, body = _get("/health")
        print(body.decode(errors="replace"))
        sys.exit(0 if status == 200 else 1)
    failed = sum(1 for _ in range(args.count) if _get("/api/fail")[0] == 500)
    print(f"{failed} of {args.count} requests answered 500")
    if failed != args.count:
        sys.exit(1)


def add_commands(sub: Any) -> None:
    celery = sub.add_parser("celery", help="the lab's Celery queues")
    csub = celery.add_subparsers(dest="action", required=True)
    p_enq = csub.add_parser("enqueue", help="N tasks on QUEUE now")
    p_enq.add_argument("queue", choices=QUEUES)
    p_enq.add_argument("count", type=int)
    csub.add_parser("purge", help="drop what waits on QUEUE").add_argument("queue", choices=QUEUES)
    csub.add_parser("length", help="QUEUE's length in Redis").add_argument("queue", choices=QUEUES)
    celery.set_defaults(fn=_cmd_celery)
    app = sub.add_parser("app", help="the email-service")
    asub = app.add_subparsers(dest="action", required=True)
    asub.add_parser("errors", help="N requests answered 500").add_argument("count", type=int)
    asub.add_parser("health", help="print /health")
    app.set_defaults(fn=_cmd_app)
