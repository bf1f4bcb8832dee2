"""The Celery app on the lab's Redis: queues default, emails and reports; the tasks the
email-service and beat send. Workers run with events on (-E) and task-sent events are on,
so danihodovic/celery-exporter sees sent, received, started, succeeded and failed.
Traces (tracing.py): each prefork child of a worker (service.name `celery-worker`) and
beat (`celery-beat`) export Celery's run and publish spans with their psycopg calls; the
publisher's trace context comes in the task message's headers."""

from __future__ import annotations

import contextlib
import imaplib
import json
import logging
import os
import random
import smtplib
import threading
import time
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from celery import Celery, signals
from kombu import Queue

from . import config, tracing

log = logging.getLogger("celery_tasks")

app = Celery("emailsvc", broker=config.BROKER_URL)
app.conf.update(
    task_queues=[Queue("default"), Queue("emails"), Queue("reports")],
    task_default_queue="default",
    task_routes={
        "send_email": {"queue": "emails"},
        "generate_report": {"queue": "reports"},
        "sync_mailbox": {"queue": "default"},
        "heartbeat": {"queue": "default"},
    },
    task_ignore_result=True,
    task_send_sent_event=True,  # celery_task_sent_total
    worker_send_task_events=True,  # the same as -E
    worker_prefetch_multiplier=1,  # a slow reports worker leaves its backlog in Redis
    broker_connection_retry_on_startup=True,
    task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
    worker_log_format=config.LOG_FORMAT,
    worker_task_log_format=(
        "%(asctime)s %(levelname)s %(name)s: %(task_name)s[%(task_id)s] %(message)s"
    ),
    worker_redirect_stdouts_level="INFO",
    beat_schedule={
        # CeleryBeatNotRunning watches this task's sent events
        "heartbeat": {"task": "heartbeat", "schedule": 15.0},
    },
    timezone="UTC",
)


def incident(period: float, length: float, shift: float, now: float | None = None) -> bool:
    """True during `length` seconds of every `period`: the lab's recurring bad spell."""
    t = (now if now is not None else time.time()) + shift
    return t % period < length


def _db() -> psycopg.Connection[Any]:
    return psycopg.connect(config.PG_DSN, autocommit=True)


class MailboxSyncError(Exception):
    pass


@app.task(name="send_email")
def send_email(email_id: int) -> str:
    """Submit a stored email to Postfix over SMTP (Postfix defers what it cannot relay)."""
    with _db() as conn:
        row = conn.execute(
            "SELECT sender, recipient, subject, body FROM emails WHERE id = %s", (email_id,)
        ).fetchone()
        tracing.annotate(**{"email.id": email_id})
        if row is None:
            raise LookupError(f"email {email_id} not found")
        sender, recipient, subject, body = row
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, recipient, subject
        msg["X-Email-Id"] = str(email_id)
        msg.set_content(body)
        try:
            with smtplib.SMTP("127.0.0.1", config.SMTP_PORT, timeout=15) as smtp:
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError):
            conn.execute("UPDATE emails SET status = 'failed' WHERE id = %s", (email_id,))
            raise
        conn.execute("UPDATE emails SET status = 'sent' WHERE id = %s", (email_id,))
    log.info("email %s to %s handed to Postfix", email_id, recipient)
    return "sent"


@app.task(name="generate_report")
def generate_report(kind: str = "daily") -> dict[str, int]:
    """Slow on purpose (2-4 s): the reports queue grows when traffic sends more."""
    time.sleep(random.uniform(2.0, 4.0))
    with _db() as conn:
        rows = conn.execute("SELECT status, count(*) FROM emails GROUP BY status").fetchall()
    counts = {str(status): int(n) for status, n in rows}
    log.info("report %s: %s", kind, counts)
    return counts


@app.task(name="sync_mailbox")
def sync_mailbox() -> int:
    """IMAP STATUS of a lab user's INBOX; fails now and then, often during an incident
    (8 of every 30 minutes) so the README's task failure rate > 10% is crossed for real."""
    user, password = random.choice(sorted(config.MAIL_USERS.items()) or [("", "")])
    failure_rate = 0.35 if incident(1800, 480, 600) else 0.03
    if random.random() < failure_rate:
        raise MailboxSyncError(f"mailbox {user}: server sent an incomplete FETCH response")
    imap = imaplib.IMAP4("127.0.0.1", config.IMAP_PORT, timeout=10)
    try:
        imap.login(user, password)
        typ, data = imap.status("INBOX", "(MESSAGES)")
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            imap.logout()
    if typ != "OK":
        raise MailboxSyncError(f"mailbox {user}: STATUS answered {typ}")
    text = data[0].decode(errors="replace") if data and data[0] else ""
    return int(text.rsplit("MESSAGES", 1)[-1].strip(" )") or 0) if "MESSAGES" in text else 0


@app.task(name="lab_ping")
def lab_ping() -> str:
    """A no-op that `lab.py celery enqueue` puts on a queue."""
    return "pong"


@app.task(name="heartbeat")
def heartbeat() -> float:
    return time.time()


# --------------------------------------------------------------------------- health


def _serve_health(role: str, detail: dict[str, Any]) -> None:
    """GET /health answers 200 on LAB_HEALTH_PORT once this worker or beat is ready."""
    if not config.HEALTH_PORT:
        return
    body = json.dumps({"status": "ready", "role": role, **detail}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.split("?")[0] == "/health"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if ok else b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", config.HEALTH_PORT), Handler)
    threading.Thread(target=server.serve_forever, name="lab-health", daemon=True).start()
    log.info("%s ready; health on 127.0.0.1:%d/health", role, config.HEALTH_PORT)


@signals.worker_ready.connect
def _worker_ready(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", "")
    _serve_health("worker", {"hostname": hostname})


@signals.worker_process_init.connect
def _child_tracing(**_: Any) -> None:
    """Tasks run in the prefork children: each gets its own TracerProvider (the exporter's
    thread would not survive a fork)."""
    instance = f"{os.environ.get('LAB_TRACE_INSTANCE', 'worker')}-{os.getpid()}"
    if tracing.setup("celery-worker", instance):
        tracing.instrument_clients()


@signals.beat_init.connect
def _beat_ready(sender: Any = None, **_: Any) -> None:
    if tracing.setup("celery-beat"):
        tracing.instrument_clients()
    _serve_health("beat", {"schedule": sorted(app.conf.beat_schedule)})
