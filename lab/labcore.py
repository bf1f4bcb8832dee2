"""What every part of the lab shares: ports, state, the Server record and a tiny HTTP
helper. `lab.py` orchestrates; the service modules (`svc_data.py`, `svc_mail.py`,
`svc_app.py`, `svc_tracing.py`) each declare their Debian packages and servers with these pieces.
Standard library only: this runs before any virtualenv exists."""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

LAB = Path(__file__).resolve().parent
ROOT = LAB.parent
CACHE = LAB / ".cache"
BASE_PORTS = {
    # the monitoring stack (the monitoring README's ports)
    "prometheus": 9090,
    "alertmanager": 9093,
    "alertmanager_cluster": 9094,
    "node_exporter": 9100,
    "pushgateway": 9091,
    "elasticsearch": 9200,
    "elasticsearch_transport": 9300,
    "grafana": 3000,
    "webhook": 5001,  # nothing listens: Alertmanager's receivers
    # nginx in front, TLS with the lab's own CA (and basic auth for Prometheus and ES)
    "tls_prometheus": 9490,
    "tls_elasticsearch": 9290,
    "tls_grafana": 3443,
    "tls_health": 9480,
    # the monitored email services (the README's "Prometheus collects metrics from")
    "email_service": 5000,  # Flask under Gunicorn: /health and /metrics
    "postgres": 5432,
    "postgres_exporter": 9187,  # prometheus-postgres-exporter's default
    "redis": 6379,
    "redis_exporter": 9121,  # prometheus-redis-exporter's default
    "smtp": 2525,  # Postfix smtpd (not 25: no clash with a system MTA)
    "postfix_exporter": 9154,  # prometheus-postfix-exporter's default
    "imap": 1143,  # Dovecot (not 143/110: no clash with a system Dovecot)
    "pop3": 1110,
    "dovecot_stats": 9900,  # Dovecot's OpenMetrics listener (its documented example port)
    "celery_exporter": 9808,  # danihodovic/celery-exporter's default
    # the lab's own: Celery workers and beat answer GET /health here once ready (svc_app.py)
    "celery_worker_health": 9810,
    "celery_worker_reports_health": 9811,
    "celery_beat_health": 9812,
    "traffic": 9813,  # the lab's HTTP/Celery traffic generator: GET /health, its counts
    "blackbox_exporter": 9115,  # prometheus-blackbox-exporter's default
    "relay_refused": 2526,  # nothing listens: Postfix's relay for mail that is refused
    "relay_blackhole": 2527,  # accepts and never answers: mail that times out
    # tracing (svc_tracing.py): Jaeger v2, an OpenTelemetry Collector build, on the
    # monitoring README's / Jaeger's and the Collector's default ports
    "jaeger_query": 16686,  # the UI and the query API (/api/services, /api/traces)
    "jaeger_query_grpc": 16685,  # the query API over gRPC (api_v2/api_v3)
    "otlp_grpc": 4317,  # OTLP receiver, gRPC
    "otlp_http": 4318,  # OTLP receiver, HTTP (/v1/traces): what the lab's services use
    "jaeger_health": 13133,  # the healthcheckv2 extension: GET /status
    "jaeger_metrics": 8888,  # the collector's own metrics (otelcol_*): GET /metrics
}


def offset() -> int:
    raw = os.environ.get("OPSKIT_LAB_PORT_OFFSET", "0")
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"lab: OPSKIT_LAB_PORT_OFFSET must be an integer, got {raw!r}")
    if not 0 <= value <= 50000:
        sys.exit("lab: OPSKIT_LAB_PORT_OFFSET must be between 0 and 50000")
    return value


def port(name: str) -> int:
    return BASE_PORTS[name] + offset()


PROFILES = ("default", "ha")


def profile() -> str:
    """The lab profile: `default` (the single-node stack) or `ha` (lab/ha.py: the
    scaled-out one), from `--profile` (lab.py sets this variable) or OPSKIT_LAB_PROFILE."""
    value = os.environ.get("OPSKIT_LAB_PROFILE", "").strip() or "default"
    if value not in PROFILES:
        sys.exit(f"lab: OPSKIT_LAB_PROFILE must be one of {', '.join(PROFILES)}, got {value!r}")
    return value


def state_dir() -> Path:
    """`lab/.state/offset-N` (or `default`); the HA profile's is `ha-offset-N` (`ha`), so
    both profiles run at one offset side by side."""
    ha = profile() == "ha"
    explicit = os.environ.get("OPSKIT_LAB_STATE")
    if explicit:
        return Path(explicit + ("-ha" if ha else "")).resolve()
    name = f"offset-{offset()}" if offset() else "default"
    if ha:
        name = f"ha-{name}" if offset() else "ha"
    return LAB / ".state" / name


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def tcp_open(port_number: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port_number), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Server:
    """One process the lab starts and stops by its pidfile.

    `health` is a URL path answering 200 when ready, or "tcp" for a TCP connect to
    `http_port`. `argv` builds the command line (servers of lab.py itself leave it unset
    and are built by lab.command()); `prepare` runs once before each start (config files,
    initdb). `user` runs the process as that user (PostgreSQL refuses root)."""

    name: str
    health: str
    http_port: str
    argv: Callable[[], list[str]] | None = None
    prepare: Callable[[], None] | None = None
    user: str | None = None
    env: Callable[[], dict[str, str]] | None = None
    # ports besides http_port that must be free before start (e.g. Dovecot's IMAP and POP3)
    other_ports: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{port(self.http_port)}"

    def pidfile(self) -> Path:
        return state_dir() / "run" / f"{self.name}.pid"

    def logfile(self) -> Path:
        return state_dir() / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile().read_text().strip())
        except (OSError, ValueError):
            return None
        try:  # a child of this process that exited is a zombie until reaped: reap it
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        except ChildProcessError:
            pass  # not our child (started by an earlier lab.py)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def healthy(self) -> bool:
        if self.health == "tcp":
            return tcp_open(port(self.http_port))
        try:
            with urllib.request.urlopen(self.url + self.health, timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError, TimeoutError):
            return False


def render(template: Path, dest: Path, extra: dict[str, str] | None = None) -> None:
    """Fill @STATE@, @USER_LINE@, @PORT_<NAME>@ and any @KEY@ of `extra`."""
    text = template.read_text()
    text = text.replace("@STATE@", str(state_dir()))
    text = text.replace("@USER_LINE@", "user root;" if os.geteuid() == 0 else "")
    for key in BASE_PORTS:
        text = text.replace(f"@PORT_{key.upper()}@", str(port(key)))
    for key, value in (extra or {}).items():
        text = text.replace(f"@{key}@", value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    ctype: str = "application/json",
    auth: str | None = None,
    timeout: float = 180,
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", ctype)
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        sys.exit(f"lab: {method} {url} failed: {exc} (a loaded machine? run lab/up again)")


# Credentials the lab's services share (loopback only; tests read them from here).
PG_DATABASE = "emailclient"
PG_USER = "email_service"
PG_PASSWORD = "lab-pg-Secret-123"
PG_EXPORTER_USER = "postgres_exporter"
PG_EXPORTER_PASSWORD = "lab-pgexp-Secret-123"
MAIL_DOMAIN = "emailclient.test"  # delivered locally (Postfix virtual mailboxes, Dovecot)
REFUSED_DOMAIN = "refused.test"  # relayed to relay_refused: deferred at once
BLACKHOLE_DOMAIN = "slow.test"  # relayed to relay_blackhole: deferred after a timeout
MAIL_USERS = {"alice": "lab-imap-Secret-alice", "bob": "lab-imap-Secret-bob"}


def put_logs_template(es: str, name: str, settings: dict[str, object]) -> None:
    """The index template of the demo log indices `logs-*` (the fields the shipper writes),
    with the lab's shard settings; exits on a refusal. Both profiles seed with it."""
    import json

    template = {
        "index_patterns": ["logs-*"],
        "priority": 10,
        "template": {
            "settings": settings,
            "mappings": {
                "properties": {
                    "@timestamp": {"type": "date"},
                    "level": {"type": "keyword"},
                    "service": {"type": "keyword"},
                    "host": {"type": "keyword"},
                    "message": {"type": "text"},
                }
            },
        },
    }
    status, body = http("PUT", f"{es}/_index_template/{name}", json.dumps(template).encode())
    if status != 200:
        sys.exit(f"lab: index template refused ({status}): {body[:300]!r}")


def bulk_day_lines(
    index: str,
    source: str,
    day: date,
    docs: int,
    shift: int,
    host: Callable[[int], str] | None = None,
) -> list[str]:
    """A bulk request's lines for `docs` demo log documents of `source` spread over `day`
    in `index`, levels rotating by `shift`; ids are deterministic (a re-run overwrites)."""
    import json
    from datetime import UTC, datetime, timedelta

    levels = ["INFO"] * 8 + ["WARNING", "ERROR"]
    lines: list[str] = []
    for i in range(docs):
        ts = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            minutes=i * 1440 // docs
        )
        doc = {
            "@timestamp": ts.isoformat().replace("+00:00", "Z"),
            "level": levels[(i + shift) % len(levels)],
            "service": source,
            **({"host": host(i)} if host else {}),
            "message": f"{source} event {i} of {day:%Y-%m-%d}",
        }
        lines.append(json.dumps({"index": {"_index": index, "_id": str(i)}}))
        lines.append(json.dumps(doc))
    return lines
