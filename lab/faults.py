"""Real problems the lab can be given on purpose (and have taken away again), for
`opskit doctor`'s tests and demos:

    lab/lab.py fault add refused-target    a scrape job whose target refuses connections
    lab/lab.py fault add dns-target        a scrape job whose host name does not resolve
    lab/lab.py fault add bad-rule          rules that fail at evaluation (invalid regex in
                                           label_replace, many-to-many vector match)
    lab/lab.py fault add no-alertmanager   Prometheus with an empty alerting section
    lab/lab.py fault add red-index         an index whose shard no node may hold (cluster red)
    lab/lab.py fault remove NAME | clear | list

Prometheus faults rewrite the lab's prometheus.yml (rendered from the template, then each
active fault applied) and POST /-/reload; they survive a Prometheus restart because
`lab.py` applies them after rendering. Active faults are marker files in <state>/faults/.
Standard library only, like lab.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

PROMETHEUS_FAULTS = ("refused-target", "dns-target", "bad-rule", "no-alertmanager")
ES_FAULTS = ("red-index",)
FAULTS = PROMETHEUS_FAULTS + ES_FAULTS
RULES_FILE = "opskit-fault-rules.yml"
RED_INDEX = "opskit-fault-unassigned"

# nothing listens on port 1; `.invalid` never resolves (RFC 6761)
REFUSED_JOB = (
    '  - job_name: opskit-fault-refused\n    static_configs:\n      - targets: ["127.0.0.1:1"]\n'
)
DNS_JOB = (
    "  - job_name: opskit-fault-dns\n    static_configs:\n"
    '      - targets: ["no-such-host.invalid:9100"]\n'
)
BAD_RULES = """\
groups:
  - name: opskit-fault
    rules:
      - alert: OpskitFaultBadRegex
        expr: label_replace(up, "copy", "$1", "job", "(")
        labels:
          severity: warning
      - record: opskit:fault_many_to_many
        expr: up * on() up
"""
NO_ALERTMANAGER = "alerting:\n  alertmanagers: []\n"

Http = Callable[..., tuple[int, bytes]]


def fault_dir(state: Path) -> Path:
    return state / "faults"


def active(state: Path) -> list[str]:
    return sorted(p.name for p in fault_dir(state).glob("*") if p.name in FAULTS)


def apply_prometheus(state: Path) -> None:
    """Apply the active Prometheus faults to the freshly rendered prometheus.yml."""
    faults = set(active(state))
    config = state / "prometheus" / "prometheus.yml"
    text = config.read_text()
    if "no-alertmanager" in faults:
        start = text.index("alerting:\n")
        end = text.index("scrape_configs:", start)
        text = text[:start] + NO_ALERTMANAGER + "\n" + text[end:]
    rules = state / "prometheus" / RULES_FILE
    if "bad-rule" in faults:
        rules.write_text(BAD_RULES)
        text = text.replace("  - alert_rules.yml\n", f"  - alert_rules.yml\n  - {RULES_FILE}\n", 1)
    else:
        rules.unlink(missing_ok=True)
    if "refused-target" in faults:
        text = text.rstrip("\n") + "\n" + REFUSED_JOB
    if "dns-target" in faults:
        text = text.rstrip("\n") + "\n" + DNS_JOB
    config.write_text(text)


def reload_prometheus(prometheus_url: str, http: Http) -> None:
    status, body = http("POST", f"{prometheus_url}/-/reload")
    if status != 200:
        raise SystemExit(f"lab: Prometheus reload failed ({status}): {body[:300]!r}")


def add_red_index(es_url: str, http: Http) -> None:
    settings = {
        "settings": {
            "number_of_shards": 1,
            "number_of_replicas": 0,
            "index.routing.allocation.require._name": "no-such-node",
        }
    }
    status, body = http("PUT", f"{es_url}/{RED_INDEX}", json.dumps(settings).encode())
    if status not in (200, 400) or (status == 400 and b"already_exists" not in body):
        raise SystemExit(f"lab: could not create {RED_INDEX} ({status}): {body[:300]!r}")


def remove_red_index(es_url: str, http: Http) -> None:
    status, body = http("DELETE", f"{es_url}/{RED_INDEX}")
    if status not in (200, 404):
        raise SystemExit(f"lab: could not delete {RED_INDEX} ({status}): {body[:300]!r}")


def set_fault(
    state: Path,
    name: str,
    on: bool,
    render: Callable[[], None],
    prometheus_url: str,
    es_url: str,
    http: Http,
) -> None:
    """Turn one fault on or off for real (render() rewrites prometheus.yml from the template)."""
    marker = fault_dir(state) / name
    if on:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("")
    else:
        marker.unlink(missing_ok=True)
    if name in PROMETHEUS_FAULTS:
        render()
        apply_prometheus(state)
        reload_prometheus(prometheus_url, http)
    elif on:
        add_red_index(es_url, http)
    else:
        remove_red_index(es_url, http)
