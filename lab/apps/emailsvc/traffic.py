"""The lab's traffic generator: loopback only, bounded in rate (about 3 requests/s) and in
time (OPSKIT_LAB_TRAFFIC_HOURS, default 8; then it idles). It keeps the email-service and
Celery busy so the README's thresholds are crossed by real behaviour:

- browsing with some 4xx and 2% 5xx, 8% during an error spell (7 of every 30 minutes), and
  a few slow requests (P99 above 2 s during a latency spell, 6 of every 40 minutes);
- every 45 minutes, 4 minutes of 7 concurrent slow queries: the DB pool above 80%;
- sent mail, some to the refused and the black-hole domains (Postfix defers them) while
  Postfix's deferred queue holds fewer than DEFERRED_CAP messages;
- report tasks at 1/s, faster than the one-process reports worker consumes them, while the
  reports queue is shorter than REPORTS_CAP (so it passes 1000 after about 25 minutes);
- mailbox syncs (the Celery task that fails now and then).

Through the email-service's tracing (tracing.py) its failing requests become error traces
(the Flask span's status ERROR with the exception as an event) and its slow ones slow
traces (a long psycopg span under the Flask span); its User-Agent is USER_AGENT.

GET /health on LAB_HEALTH_PORT answers with its counts."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import redis

from . import config
from .tasks import incident

log = logging.getLogger("traffic")
REPORTS_CAP = 1500
DEFERRED_CAP = 300
CONCURRENCY = 4
USER_AGENT = "opskit-lab-traffic/1"

BASE = config.EMAIL_SERVICE_URL
if urlsplit(BASE).hostname not in ("127.0.0.1", "localhost"):
    raise SystemExit(f"traffic: refusing a non-loopback target {BASE}")


class Traffic:
    def __init__(self, hours: float) -> None:
        self.deadline = time.time() + hours * 3600
        self.started = time.time()
        self.counts: Counter[str] = Counter()
        self.slots = threading.BoundedSemaphore(CONCURRENCY)
        self.lock = threading.Lock()
        self.broker = redis.Redis.from_url(config.BROKER_URL, socket_timeout=2)
        self.deferred = 0
        self.reports_queue = 0
        self.own_deferred = 0  # what we addressed to deferring domains (fallback count)

    # ------------------------------------------------------------------ HTTP

    def request(self, method: str, path: str, body: Any = None, timeout: float = 20) -> int:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(BASE + path, data=data, method=method)
        # its requests are told apart from a test's or an operator's in the traces
        # (the Flask span's user agent attribute)
        req.add_header("User-Agent", USER_AGENT)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read()
                code = int(resp.status)
        except urllib.error.HTTPError as exc:
            code = exc.code
        except (urllib.error.URLError, OSError):
            code = 0
        with self.lock:
            self.counts[f"http_{code // 100}xx" if code else "http_unreachable"] += 1
        return code

    def spawn(self, fn: Callable[[], object]) -> None:
        """Run `fn` on a free slot; with all CONCURRENCY slots busy, skip it (bounded)."""
        if not self.slots.acquire(blocking=False):
            with self.lock:
                self.counts["skipped_busy"] += 1
            return

        def run() -> None:
            try:
                fn()
            except Exception:
                log.exception("traffic action failed")
            finally:
                self.slots.release()

        threading.Thread(target=run, daemon=True).start()

    # ------------------------------------------------------------------ actions

    def browse(self) -> None:
        now = time.time()
        p_fail = 0.08 if incident(1800, 420, 0, now) else 0.02
        p_slow = 0.04 if incident(2400, 360, 1200, now) else 0.005
        r = random.random()
        if r < p_fail:
            self.request("GET", "/api/fail")
        elif r < p_fail + p_slow:
            self.request("GET", f"/api/slow?seconds={random.uniform(2.2, 3.5):.2f}")
        else:
            path = random.choices(
                [
                    "/api/emails?limit=20",
                    f"/api/emails/{random.randint(1, 5000)}",
                    "/api/emails?status=deferred",
                    "/api/mailbox",
                    f"/api/slow?seconds={random.uniform(0.05, 0.6):.2f}",
                    "/api/does-not-exist",
                    "/health",
                ],
                weights=[40, 15, 8, 10, 8, 6, 5],
            )[0]
            self.request("GET", path)
            if random.random() < 0.03:
                self.request("POST", "/api/emails", {"recipient": "not-an-address"})  # 400

    def send_mail(self) -> None:
        r = random.random()
        users = sorted(config.MAIL_USERS) or ["alice"]
        domain = config.MAIL_DOMAIN
        if r < 0.25 and max(self.deferred, self.own_deferred) < DEFERRED_CAP:
            domain = config.REFUSED_DOMAIN if r < 0.15 else config.BLACKHOLE_DOMAIN
            self.own_deferred += 1
        recipient = f"{random.choice(users)}@{domain}"
        n = self.counts["mail_sent"] + 1
        body = {"recipient": recipient, "subject": f"lab traffic {n}", "body": "Hello from the lab"}
        sync = "?sync=1" if random.random() < 0.1 else ""
        if self.request("POST", f"/api/emails{sync}", body) in (201, 202):
            with self.lock:
                self.counts["mail_sent"] += 1

    def report(self) -> None:
        if self.reports_queue >= REPORTS_CAP:
            return
        if (
            self.request("POST", "/api/reports", {"kind": random.choice(["daily", "weekly"])})
            == 202
        ):
            with self.lock:
                self.counts["reports_sent"] += 1
                self.reports_queue += 1

    def sync_mailbox(self) -> None:
        self.request("POST", "/api/mailbox/sync")

    def pool_burst(self) -> None:
        """Hold a DB connection for 5 s (seven of these at once: the pool above 80%)."""
        self.request("GET", "/api/slow?seconds=5", timeout=30)

    def observe(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.reports_queue = int(self.broker.llen("reports"))
        try:
            url = f"{config.POSTFIX_EXPORTER_URL}/metrics"
            with urllib.request.urlopen(url, timeout=3) as resp:
                text = resp.read().decode(errors="replace")
            m = re.search(
                r'^postfix_showq_message_size_bytes_count\{queue="deferred"\} (\S+)$', text, re.M
            )
            if m:
                self.deferred = int(float(m.group(1)))
                self.own_deferred = self.deferred
        except (urllib.error.URLError, OSError, ValueError):
            pass

    # ------------------------------------------------------------------ loop

    def wait_for_service(self, limit: float = 180) -> None:
        deadline = time.time() + limit
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(BASE + "/health", timeout=5) as resp:
                    if json.load(resp)["checks"]["database"]["status"] == "healthy":
                        return
            except (urllib.error.URLError, OSError, ValueError, KeyError):
                pass
            time.sleep(2)
        log.warning("the email-service's database is not healthy yet; starting anyway")

    def run(self) -> None:
        self.wait_for_service()
        log.info(
            "traffic started; stops at %s", time.strftime("%H:%M:%S", time.localtime(self.deadline))
        )
        schedule: list[tuple[float, Callable[[], None], bool]] = [
            (0.7, self.browse, True),
            (4.0, self.send_mail, True),
            (1.0, self.report, True),
            (3.0, self.sync_mailbox, True),
            (10.0, self.observe, False),
        ]
        due = [time.monotonic() + random.uniform(0, every) for every, _, _ in schedule]
        burst: list[threading.Thread] = []
        while time.time() < self.deadline:
            now = time.monotonic()
            for i, (every, fn, threaded) in enumerate(schedule):
                if now >= due[i]:
                    due[i] = now + every * random.uniform(0.7, 1.3)
                    if threaded:
                        self.spawn(fn)
                    else:
                        fn()
            burst = [t for t in burst if t.is_alive()]
            if incident(2700, 240, 1800) and not burst:
                for _ in range(7):
                    t = threading.Thread(target=self.pool_burst, daemon=True)
                    t.start()
                    burst.append(t)
            time.sleep(0.1)
        log.info(
            "traffic finished after %.1f h: %s",
            (time.time() - self.started) / 3600,
            dict(self.counts),
        )
        while True:
            time.sleep(3600)

    def status(self) -> dict[str, Any]:
        with self.lock:
            counts = dict(self.counts)
        return {
            "status": "running" if time.time() < self.deadline else "finished",
            "target": BASE,
            "uptime_seconds": round(time.time() - self.started, 1),
            "stops_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.deadline)),
            "reports_queue": self.reports_queue,
            "postfix_deferred": self.deferred,
            "counts": counts,
        }


def serve_health(traffic: Traffic) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.split("?")[0] == "/health"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(traffic.status() if ok else {}).encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", config.HEALTH_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    config.setup_logging()
    hours = float(os.environ.get("OPSKIT_LAB_TRAFFIC_HOURS", "8") or 8)
    traffic = Traffic(hours)
    serve_health(traffic)
    traffic.run()


if __name__ == "__main__":
    main()
