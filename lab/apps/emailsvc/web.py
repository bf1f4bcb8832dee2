"""The email-service: a small Flask API over PostgreSQL, Celery (Redis), Postfix and
Dovecot, run by Gunicorn (gunicorn_conf.py). Metrics by prometheus-flask-exporter in
Gunicorn multiprocess mode on /metrics; /health as the monitoring README's health section
describes (the service and its dependencies). Traces (tracing.py): a Flask server span per
request (not /metrics, /health/live) with its Celery publish, psycopg and Redis spans,
exported to the lab's Jaeger; a request's X-Request-Id header becomes the span's
`request.id` attribute and a stored email's id its `email.id`."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import redis
from flask import Flask, Response, jsonify, request
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics
from werkzeug.exceptions import HTTPException

from . import VERSION, config, tracing
from .pools import PoolTimeout, make_pools
from .tasks import app as celery_app

log = logging.getLogger("email_service")
STARTED = time.time()
SERVICE = "email-service"

app = Flask("email_service")
# Multiprocess mode (PROMETHEUS_MULTIPROC_DIR): flask_http_request_duration_seconds
# {method,path,status} histogram, flask_http_request_total{method,status},
# flask_http_request_exceptions_total, flask_exporter_info, all on this app's /metrics.
metrics = GunicornInternalPrometheusMetrics(app, excluded_paths=["^/metrics$", "^/health/live$"])
metrics.info("email_service_info", "The email-service build", version=VERSION)
# Each Gunicorn worker imports this module after the fork: a TracerProvider of its own.
if tracing.setup(SERVICE):
    tracing.instrument_clients()
    FlaskInstrumentor().instrument_app(app, excluded_urls="/metrics,/health/live")
DB, SMTP, IMAP = make_pools()
_schema_ready = False

# the lab's schema file, which lab/svc_data.py also applies (its comment lines left out:
# the psycopg span is named after the statement's first word)
SCHEMA = "\n".join(
    line
    for line in (Path(__file__).resolve().parents[2] / "config" / "schema.sql")
    .read_text()
    .splitlines()
    if not line.lstrip().startswith("--")
)


def db_execute(sql: str, params: tuple[Any, ...] = (), timeout: float = 5.0) -> list[Any]:
    global _schema_ready
    with DB.connection(timeout=timeout) as conn:
        if not _schema_ready:
            conn.execute(SCHEMA)
            _schema_ready = True
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


# --------------------------------------------------------------------------- health


def _check(fn: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        detail = fn()
        status = "healthy"
    except Exception as exc:
        detail = {"error": f"{type(exc).__name__}: {exc}"}
        status = "unhealthy"
    return {"status": status, "latency_ms": round((time.perf_counter() - t0) * 1000, 2), **detail}


def _database() -> dict[str, Any]:
    with DB.connection(timeout=2) as conn:
        conn.execute("SELECT 1").fetchone()
        return {
            "message": "SELECT 1",
            "server_version": conn.info.parameter_status("server_version"),
        }


def _redis() -> dict[str, Any]:
    client = redis.Redis.from_url(config.BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
        return {"message": "PING", "version": client.info("server").get("redis_version", "")}
    finally:
        client.close()


def _banner(port: int, expect: str) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.settimeout(2)
        banner = sock.recv(512).decode(errors="replace").strip()
    if expect not in banner:
        raise RuntimeError(f"unexpected banner {banner!r}")
    return {"banner": banner}


@app.get("/health")
def health() -> tuple[Response, int]:
    checks = {
        "database": _check(_database),
        "redis": _check(_redis),
        "smtp": _check(lambda: _banner(config.SMTP_PORT, "ESMTP")),
        "imap": _check(lambda: _banner(config.IMAP_PORT, "* OK")),
    }
    # The database is critical: without it the service is unhealthy (503). Without the
    # broker or the mail servers it still answers reads, degraded (200).
    if checks["database"]["status"] != "healthy":
        overall = "unhealthy"
    elif any(c["status"] != "healthy" for c in checks.values()):
        overall = "degraded"
    else:
        overall = "healthy"
    body = {
        "status": overall,
        "service": SERVICE,
        "version": VERSION,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "uptime_seconds": round(time.time() - STARTED, 1),
        "checks": checks,
    }
    if overall != "healthy":
        log.warning("health %s: %s", overall, {k: v["status"] for k, v in checks.items()})
    return jsonify(body), 503 if overall == "unhealthy" else 200


@app.get("/health/live")
def live() -> Response:
    """Liveness for the lab's process supervisor: the process answers (no dependencies)."""
    return jsonify({"status": "alive", "service": SERVICE})


# --------------------------------------------------------------------------- API


@app.get("/api/emails")
def list_emails() -> Response:
    limit = min(int(request.args.get("limit", "20")), 200)
    status = request.args.get("status")
    where, params = ("WHERE status = %s", (status,)) if status else ("", ())
    rows = db_execute(
        "SELECT id, sender, recipient, subject, status, created_at FROM emails "
        f"{where} ORDER BY id DESC LIMIT %s",
        (*params, limit),
    )
    keys = ("id", "sender", "recipient", "subject", "status", "created_at")
    emails = [dict(zip(keys, r, strict=True)) for r in rows]
    for e in emails:
        e["created_at"] = e["created_at"].isoformat()
    return jsonify({"emails": emails, "count": len(emails)})


@app.get("/api/emails/<int:email_id>")
def get_email(email_id: int) -> tuple[Response, int]:
    rows = db_execute(
        "SELECT id, sender, recipient, subject, body, status FROM emails WHERE id = %s",
        (email_id,),
    )
    if not rows:
        return jsonify({"error": f"email {email_id} not found"}), 404
    keys = ("id", "sender", "recipient", "subject", "body", "status")
    return jsonify(dict(zip(keys, rows[0], strict=True))), 200


@app.post("/api/emails")
def send_email() -> tuple[Response, int]:
    data = request.get_json(silent=True) or {}
    recipient = str(data.get("recipient", ""))
    if "@" not in recipient:
        return jsonify({"error": "recipient must be an address"}), 400
    sender = str(data.get("sender", f"noreply@{config.MAIL_DOMAIN}"))
    subject = str(data.get("subject", "(no subject)"))[:200]
    body = str(data.get("body", ""))[:10000]
    (email_id,) = db_execute(
        "INSERT INTO emails (sender, recipient, subject, body) VALUES (%s, %s, %s, %s) "
        "RETURNING id",
        (sender, recipient, subject, body),
    )[0]
    tracing.annotate(**{"email.id": email_id})
    if request.args.get("sync"):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, recipient, subject
        msg.set_content(body)
        with SMTP.connection() as smtp:
            smtp.send_message(msg)
        db_execute("UPDATE emails SET status = 'sent' WHERE id = %s", (email_id,))
        log.info("email %s to %s sent over SMTP", email_id, recipient)
        return jsonify({"id": email_id, "status": "sent"}), 201
    task = celery_app.send_task("send_email", args=[email_id])
    return jsonify({"id": email_id, "status": "queued", "task_id": task.id}), 202


@app.get("/api/mailbox")
def mailbox() -> Response:
    with IMAP.connection() as imap:
        typ, data = imap.status("INBOX", "(MESSAGES UNSEEN)")
    if typ != "OK":
        raise RuntimeError(f"IMAP STATUS answered {typ}")
    return jsonify({"mailbox": "INBOX", "status": data[0].decode(errors="replace")})


@app.post("/api/mailbox/sync")
def mailbox_sync() -> tuple[Response, int]:
    task = celery_app.send_task("sync_mailbox")
    return jsonify({"task_id": task.id}), 202


@app.post("/api/reports")
def report() -> tuple[Response, int]:
    kind = str((request.get_json(silent=True) or {}).get("kind", "daily"))
    task = celery_app.send_task("generate_report", args=[kind])
    return jsonify({"task_id": task.id, "kind": kind}), 202


@app.get("/api/slow")
def slow() -> Response:
    """A slow query: holds a database connection for `seconds` (at most 10)."""
    seconds = max(0.0, min(float(request.args.get("seconds", "1.5")), 10.0))
    db_execute("SELECT pg_sleep(%s)", (seconds,), timeout=seconds + 5)
    return jsonify({"slept": seconds})


class SimulatedFailure(RuntimeError):
    pass


@app.get("/api/fail")
def fail() -> Response:
    """Fails on purpose: an unhandled error, answered 500 (lab.py app errors N)."""
    raise SimulatedFailure("simulated failure (GET /api/fail)")


@app.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response, int]:
    code = exc.code or 500
    return jsonify({"error": exc.name, "status": code}), code


@app.errorhandler(Exception)
def server_error(exc: Exception) -> tuple[Response, int]:
    tracing.record_error(exc)
    if isinstance(exc, SimulatedFailure | PoolTimeout | psycopg.OperationalError):
        log.error("%s %s: dependency failed: %s", request.method, request.path, exc)
    else:
        log.error("%s %s: %s", request.method, request.path, exc, exc_info=exc)
    return jsonify({"error": f"{type(exc).__name__}: {exc}", "status": 500}), 500


@app.before_request
def request_id() -> None:
    if rid := request.headers.get("X-Request-Id", "")[:100]:
        tracing.annotate(**{"request.id": rid})


@app.after_request
def access_log(response: Response) -> Response:
    if response.status_code >= 400 and request.path != "/health":
        level = logging.ERROR if response.status_code >= 500 else logging.WARNING
        log.log(level, "%s %s %s", request.method, request.full_path.rstrip("?"), response.status)
    return response
