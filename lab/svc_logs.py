"""Lab services: logs. The services' own logs reach Elasticsearch as daily indices
`logs-<source>-YYYY.MM.dd` (the monitoring README's "Log Aggregation") through the lab's
small shipper (lab/shipper.py; no Logstash here).

    lab.py logs flush [--timeout S]   ship everything written so far, wait, refresh indices
    lab.py logs status [--json]       per file: size, shipped offset, bytes behind
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import labcore
from labcore import LAB, Server, port, state_dir

# labcore owns BASE_PORTS; the shipper's /health and /status listener is declared here
labcore.BASE_PORTS.setdefault("log_shipper", 9601)
INDEX_TEMPLATE = "opskit-lab-logs"  # lab.py's seed_elasticsearch() creates it

DEBIAN_PACKAGES: dict[str, str] = {}


def _es() -> str:
    return f"http://127.0.0.1:{port('elasticsearch')}"


def _argv() -> list[str]:
    return [
        sys.executable,
        str(LAB / "shipper.py"),
        "--es",
        _es(),
        "--logs",
        str(state_dir() / "logs"),
        "--state",
        str(state_dir() / "log_shipper"),
        # never create an index before the template: no dynamic mappings, no replicas
        "--wait-template",
        INDEX_TEMPLATE,
        "--port",
        str(port("log_shipper")),
    ]


SERVERS: list[Server] = [Server("log_shipper", "/health", "log_shipper", argv=_argv)]


def logs_cmd(args: argparse.Namespace) -> None:
    """`lab.py logs flush|status`: the same checkpoint as the running shipper (a lock file
    keeps the two from interleaving; ids make a double send an overwrite)."""
    sys.path.insert(0, str(LAB))
    import shipper

    ship = shipper.Shipper(
        _es(), state_dir() / "logs", state_dir() / "log_shipper", wait_template=INDEX_TEMPLATE
    )
    if args.action == "flush":
        try:
            n = shipper.flush(ship, args.timeout)
        except TimeoutError as exc:
            sys.exit(f"lab: logs flush: {exc}")
        print(json.dumps({"shipped": n}) if args.json else f"shipped {n} documents")
        return
    status = ship.status()
    if args.json:
        print(json.dumps(status))
        return
    for f in status["files"]:
        size = "-" if f["size"] is None else str(f["size"])
        name = Path(f["path"]).name
        print(f"{f['source']:<14} {name:<28} {size:>10} bytes, {f['behind_bytes']:>8} behind")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("logs", help="the lab's log shipper (lab/shipper.py)")
    p.add_argument("action", choices=["flush", "status"])
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=logs_cmd)
