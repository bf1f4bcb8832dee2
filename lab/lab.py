#!/usr/bin/env python3
"""The opskit lab: a real monitoring stack on loopback.

    lab/up       install what is missing, start everything, load the demo data
    lab/down     stop exactly what `up` started (pidfiles)
    lab/status   one line per server; exit 0 when all answer their health endpoint

Ports are the monitoring README's (Prometheus 9090, Alertmanager 9093, Elasticsearch 9200,
Grafana 3000, node exporter 9100, Pushgateway 9091). `OPSKIT_LAB_PORT_OFFSET=N` moves them
all by N and gives the lab its own state directory, so a test lab never clashes with a demo
lab. Standard library only: this runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labcore import (
    CACHE,
    LAB,
    Server,
    bulk_day_lines,
    http,
    log,
    offset,
    port,
    profile,
    put_logs_template,
    render,
    state_dir,
    tcp_open,
)

DEBIAN_PACKAGES = {
    "prometheus": "/usr/bin/prometheus",
    "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager",
    "prometheus-node-exporter": "/usr/bin/prometheus-node-exporter",
    "prometheus-pushgateway": "/usr/bin/prometheus-pushgateway",
    "nginx-light": "/usr/sbin/nginx",
    "openssl": "/usr/bin/openssl",
}
# The monitored email services, one module per area; each declares DEBIAN_PACKAGES and
# SERVERS (in start order) and may define install(), seed() (run once all are healthy) and
# add_commands(subparsers) for lab.py subcommands of its own.
SERVICE_MODULES = ("svc_data", "svc_mail", "svc_tracing", "svc_app", "svc_logs")


def service_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in SERVICE_MODULES]


GRAFANA_USER = "admin"
GRAFANA_PASSWORD = "admin"  # the README's default, kept on purpose: the audit must find it
GRAFANA_TOKEN = "glsa_opskitLabServiceAccountToken_0123456789"
TLS_USER = "opskit"
TLS_PASSWORD = "lab-tls-Secret-123"  # basic auth behind nginx; tests read it from here
GRAFANA_VIEWER_TOKEN = "glsa_opskitLabViewerToken_0123456789"  # role Viewer: 403 on writes
LOG_SOURCES = ["email-service", "celery-worker", "postgresql", "postfix", "dovecot"]
LOG_DAYS = 45


# --------------------------------------------------------------------------- install


def install() -> None:
    packages = dict(DEBIAN_PACKAGES)
    for module in service_modules():
        packages.update(getattr(module, "DEBIAN_PACKAGES", {}))
    apt_install(packages)
    subprocess.run(["bash", str(LAB / "es" / "install.sh"), str(CACHE / "es")], check=True)
    for module in service_modules():
        if hasattr(module, "install"):
            module.install()


def apt_install(packages: dict[str, str]) -> None:
    """The Debian packages (name -> a binary it installs) whose binary is missing."""
    missing = [pkg for pkg, binary in packages.items() if not Path(binary).exists()]
    if missing:
        # Postfix asks how to configure the system MTA: the lab runs its own instance.
        subprocess.run(
            ["debconf-set-selections"],
            input=b"postfix postfix/main_mailer_type select No configuration\n",
            check=False,
        )
        log(f"installing Debian packages: {' '.join(missing)}")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )


# --------------------------------------------------------------------------- processes


SERVERS = [
    Server("elasticsearch", "/_cluster/health", "elasticsearch"),
    Server("grafana", "/api/health", "grafana"),
    Server("node_exporter", "/metrics", "node_exporter"),
    Server("pushgateway", "/-/healthy", "pushgateway"),
    Server("alertmanager", "/-/healthy", "alertmanager"),
    Server("prometheus", "/-/ready", "prometheus"),
    Server("nginx", "/", "tls_health"),
]
for _module in service_modules():
    SERVERS[-2:-2] = _module.SERVERS  # before Prometheus and nginx
BY_NAME = {s.name: s for s in SERVERS}


def command(server: Server) -> list[str]:
    if server.argv is not None:
        return server.argv()
    sd = state_dir()
    listen = f"127.0.0.1:{port(server.http_port)}"
    if server.name == "elasticsearch":
        return [
            "bash",
            str(LAB / "es" / "run.sh"),
            str(CACHE / "es"),
            str(sd / "es"),
            str(port("elasticsearch")),
            str(port("elasticsearch_transport")),
            str(sd / "es-repo"),
        ]
    if server.name == "grafana":
        return [
            sys.executable,
            str(LAB / "grafana_double.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port(server.http_port)),
            "--state",
            str(sd / "grafana" / "state.json"),
            "--admin-user",
            GRAFANA_USER,
            "--admin-password",
            GRAFANA_PASSWORD,
            "--token",
            GRAFANA_TOKEN,
            "--token",
            f"{GRAFANA_VIEWER_TOKEN}:Viewer",
            # benchmarks (bench/) coalesce the double's state writes; unset: write each time
            *_write_behind(),
        ]
    if server.name == "node_exporter":
        return ["/usr/bin/prometheus-node-exporter", f"--web.listen-address={listen}"]
    if server.name == "pushgateway":
        return [
            "/usr/bin/prometheus-pushgateway",
            f"--web.listen-address={listen}",
            f"--persistence.file={sd / 'pushgateway' / 'metrics.store'}",
            "--web.enable-admin-api",
        ]
    if server.name == "alertmanager":
        render(LAB / "config" / "alertmanager.yml", sd / "alertmanager" / "alertmanager.yml")
        return [
            "/usr/bin/prometheus-alertmanager",
            f"--config.file={sd / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={sd / 'alertmanager' / 'data'}",
            f"--web.listen-address={listen}",
            "--cluster.listen-address=",
            f"--web.external-url=http://{listen}",
        ]
    if server.name == "prometheus":
        render(LAB / "config" / "prometheus.yml.in", sd / "prometheus" / "prometheus.yml")
        shutil.copy(LAB / "config" / "alert_rules.yml", sd / "prometheus" / "alert_rules.yml")
        rules = sd / "prometheus" / "rules"
        shutil.rmtree(rules, ignore_errors=True)
        shutil.copytree(LAB / "config" / "rules", rules)
        _faults().apply_prometheus(sd)
        return [
            "/usr/bin/prometheus",
            f"--config.file={sd / 'prometheus' / 'prometheus.yml'}",
            f"--storage.tsdb.path={sd / 'prometheus' / 'data'}",
            "--storage.tsdb.retention.time=60d",
            f"--web.listen-address={listen}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            # resend firing alerts every 5s so a restarted Alertmanager catches up at once
            "--rules.alert.resend-delay=5s",
            f"--web.external-url=http://{listen}",
        ]
    if server.name == "nginx":
        tls_setup()
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (sd / "nginx" / sub).mkdir(parents=True, exist_ok=True)
        render(LAB / "config" / "nginx.conf.in", sd / "nginx" / "nginx.conf")
        return ["/usr/sbin/nginx", "-p", str(sd / "nginx"), "-c", str(sd / "nginx" / "nginx.conf")]
    raise KeyError(server.name)


def _write_behind() -> list[str]:
    ms = os.environ.get("OPSKIT_LAB_GRAFANA_WRITE_BEHIND", "")
    return ["--write-behind", str(int(ms))] if ms.strip() else []


def tls_setup() -> None:
    """A CA and a server certificate for 127.0.0.1/localhost, made once per lab."""
    tls = state_dir() / "tls"
    if (tls / "server.crt").exists():
        return
    tls.mkdir(parents=True, exist_ok=True)

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, cwd=tls, capture_output=True)

    ssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "3650",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=opskit lab CA",
    )
    ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    )
    (tls / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-out",
        "server.crt",
        "-extfile",
        "san.ext",
    )
    hashed = subprocess.run(
        ["openssl", "passwd", "-apr1", TLS_PASSWORD], check=True, capture_output=True, text=True
    ).stdout.strip()
    (tls / "htpasswd").write_text(f"{TLS_USER}:{hashed}\n")


def start(server: Server) -> None:
    if server.pid() is not None:
        return
    for sub in ("run", "logs", server.name if server.name != "elasticsearch" else "es"):
        (state_dir() / sub).mkdir(parents=True, exist_ok=True)
    for key in [server.http_port, *server.other_ports]:
        if tcp_open(port(key), timeout=0.3):
            sys.exit(
                f"lab: port {port(key)} already answers ({server.name}) but this lab did not "
                "start it; stop that process or set OPSKIT_LAB_PORT_OFFSET"
            )
    if server.prepare is not None:
        server.prepare()
    cmd = command(server)
    env = dict(os.environ, **server.env()) if server.env is not None else None
    with server.logfile().open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=state_dir(),
            env=env,
            user=server.user,
            group=server.user,
        )
    server.pidfile().write_text(f"{proc.pid}\n")


def wait_healthy(servers: list[Server], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        pending = [s for s in pending if not s.healthy()]
        for s in pending:
            if s.pid() is None:
                tail = (
                    s.logfile().read_text(errors="replace")[-2000:] if s.logfile().exists() else ""
                )
                sys.exit(f"lab: {s.name} exited during start-up; last log lines:\n{tail}")
        if pending and time.monotonic() > deadline:
            names = ", ".join(s.name for s in pending)
            sys.exit(f"lab: not healthy after {timeout:.0f}s: {names} (logs in {state_dir()}/logs)")
        if pending:
            time.sleep(0.5)


def stop(server: Server, grace: float = 30.0) -> bool:
    pid = server.pid()
    if pid is None:
        server.pidfile().unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while server.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if server.pid() is not None:
        os.killpg(pid, signal.SIGKILL)
        while server.pid() is not None:
            time.sleep(0.1)
    server.pidfile().unlink(missing_ok=True)
    return True


# --------------------------------------------------------------------------- demo data


def backfill() -> None:
    """30 days of history as TSDB blocks, cached per 6-hour window (promtool is slow)."""
    sys.path.insert(0, str(LAB))
    import backfill as bf

    data = state_dir() / "prometheus" / "data"
    marker = data / ".opskit-backfilled"
    if marker.exists():
        return
    now = int(time.time())
    end = now - now % (6 * 3600)
    cached = CACHE / "backfill" / str(end)
    if not (cached / ".complete").exists():
        shutil.rmtree(CACHE / "backfill", ignore_errors=True)
        cached.mkdir(parents=True)
        log("generating 30 days of Prometheus history (promtool, once per 6 h)")
        src = cached / "history.om"
        bf.write(src, end)
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "-q",
                str(src),
                str(cached / "blocks"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        src.unlink()
        (cached / ".complete").write_text("")
    data.mkdir(parents=True, exist_ok=True)
    for block in (cached / "blocks").iterdir():
        if not (data / block.name).exists():
            shutil.copytree(block, data / block.name)
    marker.write_text(str(end))


def seed_elasticsearch() -> None:
    es = BY_NAME["elasticsearch"].url
    marker = state_dir() / "es" / ".opskit-seeded"
    if marker.exists():
        return
    put_logs_template(es, "opskit-lab-logs", {"number_of_shards": 1, "number_of_replicas": 0})
    today = datetime.now(UTC).date()
    # One bulk request per day (five indices): small requests keep each one quick on a
    # loaded machine, and document ids make a re-run after an interruption idempotent.
    for day in range(LOG_DAYS):
        date = today - timedelta(days=day)
        lines: list[str] = []
        for n, source in enumerate(LOG_SOURCES):
            index = f"logs-{source}-{date:%Y.%m.%d}"
            docs = 20 + (day * 7 + n * 3) % 15
            lines += bulk_day_lines(index, source, date, docs, day)
        payload = ("\n".join(lines) + "\n").encode()
        status, body = http("POST", f"{es}/_bulk", payload, "application/x-ndjson")
        if status != 200 or json.loads(body).get("errors"):
            sys.exit(f"lab: bulk load failed ({status}): {body[:300]!r}")
    status, body = http("POST", f"{es}/logs-*/_refresh")
    if status != 200:
        sys.exit(f"lab: refresh failed ({status}): {body[:300]!r}")
    repo = {"type": "fs", "settings": {"location": str(state_dir() / "es-repo" / "backup")}}
    status, body = http("PUT", f"{es}/_snapshot/backup", json.dumps(repo).encode())
    if status != 200:
        sys.exit(f"lab: snapshot repository refused ({status}): {body[:300]!r}")
    status, body = http("GET", f"{es}/_cluster/health?wait_for_status=green&timeout=60s")
    if status != 200:
        sys.exit(f"lab: cluster not green after loading demo data: {body[:300]!r}")
    marker.write_text(today.isoformat())


def seed_grafana(grafana_url: str | None = None, prometheus_url: str | None = None) -> None:
    subprocess.run(
        [
            sys.executable,
            str(LAB / "grafana_seed.py"),
            "--url",
            grafana_url or BY_NAME["grafana"].url,
            "--user",
            GRAFANA_USER,
            "--password",
            GRAFANA_PASSWORD,
            "--prometheus-url",
            prometheus_url or BY_NAME["prometheus"].url,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


# --------------------------------------------------------------------------- commands


def up(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    if not args.no_install:
        install()
    sd = state_dir()
    for sub in ("prometheus", "alertmanager", "pushgateway", "grafana", "es-repo", "nginx"):
        (sd / sub).mkdir(parents=True, exist_ok=True)
    # Elasticsearch is the slowest to boot: start it first, backfill while it comes up.
    start(BY_NAME["elasticsearch"])
    for server in SERVERS:
        if server.name not in ("elasticsearch", "prometheus"):
            start(server)
    if BY_NAME["prometheus"].pid() is None:
        backfill()
    start(BY_NAME["prometheus"])
    wait_healthy(SERVERS, args.timeout)
    seed_grafana()
    seed_elasticsearch()
    for module in service_modules():
        if hasattr(module, "seed"):
            module.seed()
    log(f"up in {time.monotonic() - t0:.1f}s; state in {sd}")
    status(argparse.Namespace(json=False))


def down(args: argparse.Namespace, servers: list[Server] | None = None) -> None:
    for server in reversed(SERVERS if servers is None else servers):
        if stop(server):
            log(f"stopped {server.name}")
    if args.wipe:
        shutil.rmtree(state_dir(), ignore_errors=True)
        log(f"wiped {state_dir()}")


def status(args: argparse.Namespace, servers: list[Server] | None = None) -> None:
    rows = [
        {"name": s.name, "url": s.url, "pid": s.pid(), "healthy": s.healthy()}
        for s in (SERVERS if servers is None else servers)
    ]
    if args.json:
        print(json.dumps({"offset": offset(), "state": str(state_dir()), "servers": rows}))
    else:
        for r in rows:
            mark = "up  " if r["healthy"] else "DOWN"
            print(f"{mark} {r['name']:<14} {r['url']:<24} pid {r['pid'] or '-'}")
    if not all(r["healthy"] for r in rows):
        sys.exit(1)


def env(_: argparse.Namespace) -> None:
    """Shell exports that point opskit at this lab."""
    print(f"export OPSKIT_PROMETHEUS_URL={BY_NAME['prometheus'].url}")
    print(f"export OPSKIT_ALERTMANAGER_URL={BY_NAME['alertmanager'].url}")
    print(f"export OPSKIT_ELASTICSEARCH_URL={BY_NAME['elasticsearch'].url}")
    print(f"export OPSKIT_GRAFANA_URL={BY_NAME['grafana'].url}")
    print(f"export OPSKIT_PUSHGATEWAY_URL=http://127.0.0.1:{port('pushgateway')}")
    print(f"export OPSKIT_NODE_EXPORTER_URL=http://127.0.0.1:{port('node_exporter')}")
    # tracing (svc_tracing.py): Jaeger's UI and query API, its health check, the
    # collector's own metrics and the OTLP receivers (HTTP, gRPC)
    print(f"export OPSKIT_JAEGER_URL=http://127.0.0.1:{port('jaeger_query')}")
    print(f"export OPSKIT_OTEL_HEALTH_URL=http://127.0.0.1:{port('jaeger_health')}/status")
    print(f"export OPSKIT_OTEL_METRICS_URL=http://127.0.0.1:{port('jaeger_metrics')}/metrics")
    print(f"export OPSKIT_OTLP_URL=http://127.0.0.1:{port('otlp_http')}")
    print(f"export OPSKIT_OTLP_GRPC_URL=http://127.0.0.1:{port('otlp_grpc')}")


def restart(args: argparse.Namespace) -> None:
    """Stop and start one server (tests use this to take a backend away and back)."""
    server = BY_NAME[args.server]
    if args.action in ("stop", "restart"):
        stop(server)
    if args.action in ("start", "restart"):
        start(server)
        wait_healthy([server], args.timeout)


def _faults():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(LAB))
    import faults

    return faults


def render_prometheus() -> None:
    render(LAB / "config" / "prometheus.yml.in", state_dir() / "prometheus" / "prometheus.yml")


def fault(args: argparse.Namespace) -> None:
    """Give the lab a real problem on purpose, or take it away (lab/faults.py)."""
    faults = _faults()
    sd = state_dir()
    if args.action == "list":
        print("\n".join(faults.active(sd)))
        return
    if args.action == "clear":
        names = faults.active(sd)
    elif args.name in faults.FAULTS:
        names = [args.name]
    else:
        sys.exit(f"lab: fault NAME must be one of: {', '.join(faults.FAULTS)}")
    for name in names:
        faults.set_fault(
            sd,
            name,
            args.action == "add",
            render_prometheus,
            BY_NAME["prometheus"].url,
            BY_NAME["elasticsearch"].url,
            http,
        )
        log(f"fault {name}: {'on' if args.action == 'add' else 'off'}")


def split_profile(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--profile NAME` (or `--profile=NAME`) taken out of argv wherever it stands, so
    `lab/up --profile ha` and `lab.py --profile ha server stop NAME` both work."""
    chosen: str | None = None
    rest: list[str] = []
    items = iter(argv)
    for arg in items:
        if arg == "--profile":
            chosen = next(items, "")
        elif arg.startswith("--profile="):
            chosen = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return chosen, rest


def main() -> None:
    chosen, argv = split_profile(sys.argv[1:])
    if chosen is not None:
        os.environ["OPSKIT_LAB_PROFILE"] = chosen
    if profile() == "ha":
        # lab/ha.py reuses this module's Server machinery (start, stop, wait_healthy)
        sys.modules.setdefault("lab", sys.modules[__name__])
        import ha

        ha.main(argv)
        return
    parser = argparse.ArgumentParser(
        prog="lab", epilog="--profile ha (or OPSKIT_LAB_PROFILE=ha): the HA lab, lab/ha.py"
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--no-install", action="store_true")
    p_up.add_argument("--timeout", type=float, default=240)
    p_up.set_defaults(fn=up)
    p_down = sub.add_parser("down")
    p_down.add_argument("--wipe", action="store_true", help="also delete the lab's state")
    p_down.set_defaults(fn=down)
    p_status = sub.add_parser("status")
    p_status.add_argument("--json", action="store_true")
    p_status.set_defaults(fn=status)
    sub.add_parser("env").set_defaults(fn=env)
    p_srv = sub.add_parser("server")
    p_srv.add_argument("action", choices=["start", "stop", "restart"])
    p_srv.add_argument("server", choices=list(BY_NAME))
    p_srv.add_argument("--timeout", type=float, default=120)
    p_srv.set_defaults(fn=restart)
    p_fault = sub.add_parser("fault", help="add or remove a real problem (lab/faults.py)")
    p_fault.add_argument("action", choices=["add", "remove", "clear", "list"])
    p_fault.add_argument("name", nargs="?", default="")
    p_fault.set_defaults(fn=fault)
    for module in service_modules():  # e.g. `lab.py celery enqueue`, `lab.py mail send`
        if hasattr(module, "add_commands"):
            module.add_commands(sub)
    args = parser.parse_args(argv)
    fn: Callable[[argparse.Namespace], None] = args.fn
    fn(args)


if __name__ == "__main__":
    main()
