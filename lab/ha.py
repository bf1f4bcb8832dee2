"""The HA lab profile (issue 19): the monitoring stack scaled out, on loopback.

    lab/up --profile ha          (or OPSKIT_LAB_PROFILE=ha lab/up) start it, seed it
    lab/down --profile ha [--wipe]
    lab/status --profile ha [--json]
    lab/lab.py --profile ha server stop|start|restart NAME
    lab/lab.py --profile ha env      OPSKIT_CONFIG / OPSKIT_CONTEXT for opskit
    lab/lab.py --profile ha config   the opskit TOML (contexts `ha`, `ha-vm`)

Servers: two Prometheus replicas (external label `replica`, the same scrape config,
replica a remote-writes to VictoriaMetrics), an Alertmanager gossip cluster of three
peers, a three-node Elasticsearch 8.14.1 cluster (the lab's own launcher, lab/es/, with
real transport and discovery), VictoriaMetrics single-node (Debian's 1.79), the node
exporter, the Pushgateway and the Grafana API double. Ports: HA_PORTS below (+
OPSKIT_LAB_PORT_OFFSET), distinct from the default lab's, so both run at one offset;
state in lab/.state/ha-offset-N (labcore.state_dir). The pidfile machinery (start,
stop, wait_healthy, status, down) is lab.py's. Standard library only, like lab.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import labcore
from labcore import (
    CACHE,
    LAB,
    Server,
    bulk_day_lines,
    http,
    log,
    offset,
    port,
    put_logs_template,
    render,
    state_dir,
)

import lab as core

HA_PORTS = {
    "ha_prometheus_a": 19090,
    "ha_prometheus_b": 19190,
    "ha_alertmanager_1": 19093,
    "ha_alertmanager_2": 19193,
    "ha_alertmanager_3": 19293,
    "ha_alertmanager_1_cluster": 19094,
    "ha_alertmanager_2_cluster": 19194,
    "ha_alertmanager_3_cluster": 19294,
    "ha_elasticsearch_1": 19200,
    "ha_elasticsearch_2": 19201,
    "ha_elasticsearch_3": 19202,
    "ha_elasticsearch_1_transport": 19300,
    "ha_elasticsearch_2_transport": 19301,
    "ha_elasticsearch_3_transport": 19302,
    "ha_victoriametrics": 18428,
    "ha_node_exporter": 19100,
    "ha_pushgateway": 19091,
    "ha_grafana": 13000,
    "ha_dead": 19999,  # nothing listens: the `dead` scrape job, always down
}
labcore.BASE_PORTS.update(HA_PORTS)

DEBIAN_PACKAGES = {
    "prometheus": "/usr/bin/prometheus",
    "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager",
    "prometheus-node-exporter": "/usr/bin/prometheus-node-exporter",
    "prometheus-pushgateway": "/usr/bin/prometheus-pushgateway",
    "victoria-metrics": "/usr/bin/victoria-metrics",
}
CONFIG = LAB / "config" / "ha"
ES_CLUSTER = "opskit-ha"
ES_NODES = (1, 2, 3)
ES_HEAP = "512m"  # per node (run.sh's OPSKIT_LAB_ES_HEAP); the default lab's node has 1g
REPLICAS = ("a", "b")
AM_PEERS = (1, 2, 3)
DEMO_SOURCE = "email-service"
DEMO_DAYS = 7
DEMO_DOCS = 20
# a stopped node's replicas wait this long before ES re-creates them on the other two
# nodes (its default is 1m: `index.unassigned.node_left.delayed_timeout`), so a stopped
# node keeps the cluster yellow, with the reason in allocation explain, for 5 minutes
NODE_LEFT_DELAY = "5m"
VM_RETENTION = "90d"


def url(key: str) -> str:
    return f"http://127.0.0.1:{port(key)}"


def prometheus_urls() -> list[str]:
    return [url(f"ha_prometheus_{r}") for r in REPLICAS]


def alertmanager_urls() -> list[str]:
    return [url(f"ha_alertmanager_{n}") for n in AM_PEERS]


def elasticsearch_urls() -> list[str]:
    return [url(f"ha_elasticsearch_{n}") for n in ES_NODES]


def config_path() -> Path:
    return state_dir() / "opskit.toml"


# --------------------------------------------------------------------------- servers


def _es_home(n: int) -> Path:
    return state_dir() / f"elasticsearch_{n}"


def _es_prepare(n: int) -> None:
    """Each node's elasticsearch.yml, written before every start (LabNode only writes
    its single-node one when the file is missing)."""
    home = _es_home(n)
    repo = state_dir() / "es-repo"
    seeds = ", ".join(f'"127.0.0.1:{port(f"ha_elasticsearch_{i}_transport")}"' for i in ES_NODES)
    masters = ", ".join(f'"es-{i}"' for i in ES_NODES)
    lines = [
        "# Written by lab/ha.py before each start: one of the HA lab's three nodes.",
        f"cluster.name: {ES_CLUSTER}",
        f"node.name: es-{n}",
        "network.host: 127.0.0.1",
        f"http.port: {port(f'ha_elasticsearch_{n}')}",
        f"transport.port: {port(f'ha_elasticsearch_{n}_transport')}",
        f"discovery.seed_hosts: [{seeds}]",
        # only read while the cluster forms for the first time (ES's bootstrapping docs)
        f"cluster.initial_master_nodes: [{masters}]",
        f"path.data: {json.dumps(str(home / 'data'))}",
        f"path.logs: {json.dumps(str(home / 'logs'))}",
        f"path.repo: [{json.dumps(str(repo))}]",
        "cluster.routing.allocation.disk.threshold_enabled: false",
        "",
    ]
    (home / "config").mkdir(parents=True, exist_ok=True)
    repo.mkdir(parents=True, exist_ok=True)
    (home / "config" / "elasticsearch.yml").write_text("\n".join(lines))


def _es_argv(n: int) -> list[str]:
    return [
        "bash",
        str(LAB / "es" / "run.sh"),
        str(CACHE / "es"),
        str(_es_home(n)),
        str(port(f"ha_elasticsearch_{n}")),
        str(port(f"ha_elasticsearch_{n}_transport")),
        str(state_dir() / "es-repo"),
    ]


def _es_server(n: int) -> Server:
    # health is `/` (answered from the node's own state): `/_cluster/health` waits for a
    # master, which a lone node of a fresh 3-node cluster does not have; `up` waits for
    # the whole cluster afterwards (wait_for_nodes=3, green)
    return Server(
        f"elasticsearch_{n}",
        "/",
        f"ha_elasticsearch_{n}",
        argv=lambda: _es_argv(n),
        prepare=lambda: _es_prepare(n),
        env=lambda: {"OPSKIT_LAB_ES_HEAP": ES_HEAP},
        other_ports=[f"ha_elasticsearch_{n}_transport"],
    )


def _am_argv(n: int) -> list[str]:
    sd = state_dir()
    listen = f"127.0.0.1:{port(f'ha_alertmanager_{n}')}"
    gossip = f"127.0.0.1:{port(f'ha_alertmanager_{n}_cluster')}"
    peers = [
        f"--cluster.peer=127.0.0.1:{port(f'ha_alertmanager_{i}_cluster')}"
        for i in AM_PEERS
        if i != n
    ]
    return [
        "/usr/bin/prometheus-alertmanager",
        f"--config.file={sd / 'alertmanager' / 'alertmanager.yml'}",
        f"--storage.path={sd / f'alertmanager_{n}' / 'data'}",
        f"--web.listen-address={listen}",
        f"--web.external-url=http://{listen}",
        f"--cluster.listen-address={gossip}",
        f"--cluster.advertise-address={gossip}",
        *peers,
        # short intervals for a lab: a returning peer catches up within seconds
        "--cluster.pushpull-interval=10s",
        "--cluster.reconnect-interval=5s",
    ]


def _am_prepare() -> None:
    render(CONFIG / "alertmanager.yml", state_dir() / "alertmanager" / "alertmanager.yml")


def _am_server(n: int) -> Server:
    return Server(
        f"alertmanager_{n}",
        "/-/ready",
        f"ha_alertmanager_{n}",
        argv=lambda: _am_argv(n),
        prepare=_am_prepare,
        other_ports=[f"ha_alertmanager_{n}_cluster"],
    )


def edge_targets() -> list[dict[str, Any]]:
    """The `edge` job's file_sd content both replicas are seeded with."""
    return [
        {"targets": [f"127.0.0.1:{port('ha_node_exporter')}"], "labels": {"instance": "edge-1"}}
    ]


def edge_file(replica: str) -> Path:
    return state_dir() / f"prometheus_{replica}" / "targets" / "edge.json"


def _prom_prepare(replica: str) -> None:
    """Its prometheus.yml and rules, and its edge.json reset to the seeded targets."""
    home = state_dir() / f"prometheus_{replica}"
    remote = ""
    if replica == "a":
        remote = (
            "remote_write:\n"
            f"  - url: http://127.0.0.1:{port('ha_victoriametrics')}/api/v1/write\n"
            "    queue_config:\n"
            "      batch_send_deadline: 2s\n"
        )
    render(
        CONFIG / "prometheus.yml.in",
        home / "prometheus.yml",
        {"REPLICA": replica, "REMOTE_WRITE": remote, "TARGETS": str(home / "targets")},
    )
    shutil.copy(CONFIG / "rules.yml", home / "rules.yml")
    edge_file(replica).parent.mkdir(parents=True, exist_ok=True)
    edge_file(replica).write_text(json.dumps(edge_targets(), indent=2) + "\n")


def _prom_argv(replica: str) -> list[str]:
    home = state_dir() / f"prometheus_{replica}"
    listen = f"127.0.0.1:{port(f'ha_prometheus_{replica}')}"
    return [
        "/usr/bin/prometheus",
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        "--storage.tsdb.retention.time=15d",
        f"--web.listen-address={listen}",
        f"--web.external-url=http://{listen}",
        "--web.enable-lifecycle",
        "--web.enable-admin-api",
        # resend firing alerts every 5s so a restarted Alertmanager peer catches up at once
        "--rules.alert.resend-delay=5s",
    ]


def _prom_server(replica: str) -> Server:
    return Server(
        f"prometheus_{replica}",
        "/-/ready",
        f"ha_prometheus_{replica}",
        argv=lambda: _prom_argv(replica),
        prepare=lambda: _prom_prepare(replica),
    )


def _vm_argv() -> list[str]:
    # flags of `victoria-metrics -help` (1.79): -retentionPeriod takes h/d/w/y suffixes;
    # -search.latencyOffset (default 30s) hides the newest samples from queries, 5s here
    # so a lab test sees a remote-written sample within seconds
    return [
        "/usr/bin/victoria-metrics",
        f"-httpListenAddr=127.0.0.1:{port('ha_victoriametrics')}",
        f"-storageDataPath={state_dir() / 'victoriametrics' / 'data'}",
        f"-retentionPeriod={VM_RETENTION}",
        "-search.latencyOffset=5s",
    ]


SERVERS: list[Server] = [
    *(_es_server(n) for n in ES_NODES),
    Server("victoriametrics", "/health", "ha_victoriametrics", argv=_vm_argv),
    # these three are built by lab.command() like the default lab's, on the HA ports
    Server("node_exporter", "/metrics", "ha_node_exporter"),
    Server("pushgateway", "/-/healthy", "ha_pushgateway"),
    Server("grafana", "/api/health", "ha_grafana"),
    *(_am_server(n) for n in AM_PEERS),
    *(_prom_server(r) for r in REPLICAS),
]
BY_NAME = {s.name: s for s in SERVERS}


# --------------------------------------------------------------------------- checks


def _get_json(address: str, timeout: float = 5) -> Any:
    try:
        with urllib.request.urlopen(address, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def es_cluster_ready(timeout: float, node: str | None = None) -> None:
    """All three nodes in the cluster and green (asked of `node`, default es-1)."""
    es = node or BY_NAME["elasticsearch_1"].url
    deadline = time.monotonic() + timeout
    body: bytes = b""
    while time.monotonic() < deadline:
        wait = max(1, int(min(30, deadline - time.monotonic())))
        status, body = http(
            "GET",
            f"{es}/_cluster/health?wait_for_nodes=3&wait_for_status=green&timeout={wait}s",
            timeout=wait + 10,
        )
        if status == 200:
            return
        time.sleep(0.5)
    sys.exit(f"lab: Elasticsearch not green with 3 nodes after {timeout:.0f}s: {body[:300]!r}")


def am_peers(address: str) -> int:
    body = _get_json(f"{address}/api/v2/status")
    peers = ((body or {}).get("cluster") or {}).get("peers") or []
    return len(peers)


def am_cluster_ready(timeout: float, peers: list[str] | None = None) -> bool:
    """Every peer sees all three in its /api/v2/status `cluster.peers`."""
    deadline = time.monotonic() + timeout
    wanted = peers or alertmanager_urls()
    while time.monotonic() < deadline:
        if all(am_peers(u) == len(AM_PEERS) for u in wanted):
            return True
        time.sleep(0.5)
    return False


# --------------------------------------------------------------------------- demo data


def seed_elasticsearch() -> None:
    """Demo indices logs-email-service-YYYY.MM.dd of the last 7 days (1 shard, 1 replica:
    green on 3 nodes, yellow with one stopped) and the fs repository `backup`."""
    marker = state_dir() / ".es-seeded"
    if marker.exists():
        return
    es = BY_NAME["elasticsearch_1"].url
    put_logs_template(
        es,
        "opskit-ha-logs",
        {
            "number_of_shards": 1,
            "number_of_replicas": 1,
            "unassigned": {"node_left": {"delayed_timeout": NODE_LEFT_DELAY}},
        },
    )
    today = datetime.now(UTC).date()
    lines: list[str] = []
    for day in range(DEMO_DAYS):
        date = today - timedelta(days=day)
        index = f"logs-{DEMO_SOURCE}-{date:%Y.%m.%d}"
        lines += bulk_day_lines(
            index, DEMO_SOURCE, date, DEMO_DOCS, day, host=lambda i: f"es-{1 + i % 3}"
        )
    payload = ("\n".join(lines) + "\n").encode()
    status, body = http("POST", f"{es}/_bulk?refresh=true", payload, "application/x-ndjson")
    if status != 200 or json.loads(body).get("errors"):
        sys.exit(f"lab: bulk load failed ({status}): {body[:300]!r}")
    repo = {"type": "fs", "settings": {"location": str(state_dir() / "es-repo" / "backup")}}
    status, body = http("PUT", f"{es}/_snapshot/backup", json.dumps(repo).encode())
    if status != 200:
        sys.exit(f"lab: snapshot repository refused ({status}): {body[:300]!r}")
    marker.write_text(today.isoformat())


# --------------------------------------------------------------------------- opskit config


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string is a JSON string


def _context(name: str, prometheus: dict[str, object]) -> list[str]:
    out = [f"[contexts.{name}]", f"[contexts.{name}.prometheus]"]
    out += [f"{k} = {_toml(v)}" for k, v in prometheus.items()]
    sections: dict[str, dict[str, object]] = {
        "alertmanager": {"urls": alertmanager_urls()},
        "elasticsearch": {"url": BY_NAME["elasticsearch_1"].url},
        "grafana": {
            "url": BY_NAME["grafana"].url,
            "username": core.GRAFANA_USER,
            "password": core.GRAFANA_PASSWORD,
        },
        "pushgateway": {"url": BY_NAME["pushgateway"].url},
        "tracing": {"enabled": False},
        "doctor": {"log_sources": [DEMO_SOURCE]},
    }
    for section, keys in sections.items():
        out.append(f"[contexts.{name}.{section}]")
        out += [f"{k} = {_toml(v)}" for k, v in keys.items()]
    # [[services]] and [[queues]] merge with the defaults by name (docs/configuration.md):
    # the defaults the HA lab does not run are turned off, its own endpoints added
    services: list[dict[str, object]] = [
        {"name": n, "enabled": False}
        for n in ("email-service", "kibana", "logstash", "jaeger", "otel-collector", "loki")
    ]
    services += [
        {"name": "victoriametrics", "url": f"{BY_NAME['victoriametrics'].url}/health"},
        {"name": "node-exporter", "url": f"{BY_NAME['node_exporter'].url}/metrics"},
    ]
    for entry in services:
        out.append(f"[[contexts.{name}.services]]")
        out += [f"{k} = {_toml(v)}" for k, v in entry.items()]
    for queue in ("celery", "mail"):
        out += [f"[[contexts.{name}.queues]]", f"name = {_toml(queue)}", "enabled = false"]
    return out


def config_text() -> str:
    lines = [
        f"# opskit configuration for the HA lab (lab/ha.py) at OPSKIT_LAB_PORT_OFFSET={offset()}.",
        "# Written by `lab/up --profile ha`; `lab/lab.py --profile ha config` prints it.",
        "# ha: both Prometheus replicas, the 3 Alertmanager peers, the 3-node ES cluster.",
        "# ha-vm: the same, with VictoriaMetrics as the Prometheus API.",
        'current_context = "ha"',
        "",
        *_context("ha", {"urls": prometheus_urls(), "replica_label": "replica"}),
        "",
        *_context("ha-vm", {"url": BY_NAME["victoriametrics"].url}),
        "",
    ]
    return "\n".join(lines)


def write_config() -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config_text())
    tmp.chmod(0o600)  # it holds the lab Grafana's admin password
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- commands


def install() -> None:
    core.apt_install(DEBIAN_PACKAGES)
    subprocess.run(["bash", str(LAB / "es" / "install.sh"), str(CACHE / "es")], check=True)


def _check_ports() -> None:
    highest = max(HA_PORTS.values()) + offset()
    if highest > 65535:
        sys.exit(f"lab: the HA profile needs ports up to {highest}: use an offset <= 45536")
    if highest >= 32768:  # Linux's default ip_local_port_range starts there
        log(
            f"warning: ports up to {highest} reach the ephemeral range (32768-60999), where "
            "outgoing connections may hold them; an offset <= 12768 avoids that"
        )


def up(args: argparse.Namespace) -> None:
    t0 = time.monotonic()
    _check_ports()
    if not args.no_install:
        install()
    for sub in ("alertmanager", "es-repo", "grafana", "pushgateway", "victoriametrics"):
        (state_dir() / sub).mkdir(parents=True, exist_ok=True)
    for server in SERVERS:  # Elasticsearch first: the slowest to boot
        core.start(server)
    core.wait_healthy(SERVERS, args.timeout)
    t_healthy = time.monotonic()
    es_cluster_ready(max(60.0, args.timeout - (t_healthy - t0)))
    seed_elasticsearch()
    core.seed_grafana(BY_NAME["grafana"].url, BY_NAME["prometheus_a"].url)
    if not am_cluster_ready(60):
        sys.exit("lab: the Alertmanager peers do not see each other after 60s")
    es_cluster_ready(120)
    path = write_config()
    log(
        f"HA lab up in {time.monotonic() - t0:.1f}s (servers healthy after "
        f"{t_healthy - t0:.1f}s); state in {state_dir()}; opskit config {path}"
    )
    status(argparse.Namespace(json=False))


def down(args: argparse.Namespace) -> None:
    core.down(args, SERVERS)


def status(args: argparse.Namespace) -> None:
    core.status(args, SERVERS)


def env(_: argparse.Namespace) -> None:
    """Shell exports that point opskit at the HA lab (its config file, context `ha`)."""
    print(f"export OPSKIT_CONFIG={config_path()}")
    print("export OPSKIT_CONTEXT=ha")


def config(_: argparse.Namespace) -> None:
    print(config_text(), end="")


def server(args: argparse.Namespace) -> None:
    """Stop and start one server; a started ES node waits until it has rejoined (3 nodes),
    a started Alertmanager peer until every peer sees it (a warning if not in 30 s)."""
    target = BY_NAME[args.server]
    if args.action in ("stop", "restart"):
        core.stop(target)
    if args.action in ("start", "restart"):
        core.start(target)
        core.wait_healthy([target], args.timeout)
        if target.name.startswith("elasticsearch_"):
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                body = _get_json(f"{target.url}/_cluster/health?wait_for_nodes=3&timeout=5s", 15)
                if body and body.get("number_of_nodes") == len(ES_NODES):
                    break
                time.sleep(0.5)
            else:
                sys.exit(f"lab: {target.name} did not rejoin the cluster in {args.timeout:.0f}s")
        if target.name.startswith("alertmanager_") and not am_cluster_ready(30):
            log(f"warning: {target.name} is up but not every peer sees 3 peers yet")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lab --profile ha", description=__doc__.split("\n")[0])
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
    sub.add_parser("config", help="print the opskit TOML for this lab").set_defaults(fn=config)
    p_srv = sub.add_parser("server")
    p_srv.add_argument("action", choices=["start", "stop", "restart"])
    p_srv.add_argument("server", choices=list(BY_NAME))
    p_srv.add_argument("--timeout", type=float, default=120)
    p_srv.set_defaults(fn=server)
    args = parser.parse_args(argv)
    if os.environ.get("OPSKIT_LAB_PROFILE") != "ha":  # pragma: no cover - lab.py sets it
        os.environ["OPSKIT_LAB_PROFILE"] = "ha"
    args.fn(args)


if __name__ == "__main__":
    os.environ["OPSKIT_LAB_PROFILE"] = "ha"
    main(sys.argv[1:])
