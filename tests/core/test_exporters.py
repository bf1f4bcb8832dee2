"""Defaults that read the real exporters: which exporter a signal resolves to, what a
missing one says, and Prometheus' effective retention, each against a real Prometheus.

Besides the lab's own Prometheus, these tests start a bare Prometheus (Debian's binary,
no retention flag, as a new install runs it) scraping a tiny HTTP server that serves a
given exporter's exposition format, so the variants the lab does not run are read by a
real Prometheus too."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opskit.exporters import SIGNALS
from tests.conftest import Lab, get_json

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Exposition(http.server.BaseHTTPRequestHandler):
    text = ""

    def do_GET(self) -> None:
        body = type(self).text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


BareProm = Callable[[str], str]


@pytest.fixture
def bare_prometheus(tmp_path: Path) -> Iterator[BareProm]:
    """`start(exposition_text) -> url`: a real Prometheus, default flags, scraping it."""
    procs: list[subprocess.Popen[bytes]] = []
    servers: list[http.server.HTTPServer] = []

    def start(text: str) -> str:
        handler = type("Served", (Exposition,), {"text": text})
        server = http.server.HTTPServer(("127.0.0.1", 0), handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = _free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: exporter\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{server.server_port}']\n"
        )
        log = (tmp_path / "prometheus.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                up = get_json(f"{url}/api/v1/query?query=up")["data"]["result"]
                if up and up[0]["value"][1] == "1":
                    return url
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError((tmp_path / "prometheus.log").read_text()[-2000:])

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)
    for server in servers:
        server.shutdown()


def _queues_at(lab: Lab, url: str) -> dict[str, list[dict[str, object]]]:
    import json

    proc = lab.opskit("queues", "--json", env=lab.env(OPSKIT_PROMETHEUS_URL=url))
    assert proc.returncode in (0, 1, 2), proc.stderr
    by_queue: dict[str, list[dict[str, object]]] = {}
    for row in json.loads(proc.stdout):
        by_queue.setdefault(str(row["queue"]), []).append(row)
    return by_queue


def test_every_variant_is_valid_promql(lab: Lab) -> None:
    """Prometheus itself parses every probe and query of the catalogue."""
    import urllib.parse

    for signal in SIGNALS.values():
        for v in signal.variants:
            for expr in (v.probe, v.query, f"count({v.probe})"):
                q = urllib.parse.quote(expr)
                body = get_json(f"{lab.prometheus}/api/v1/query?query={q}")
                assert body["status"] == "success", (signal.name, expr)


def test_celery_redis_prometheus_labels_queues_by_queue(
    lab: Lab, bare_prometheus: BareProm
) -> None:
    url = bare_prometheus(
        "# TYPE celery_queue_length gauge\n"
        'celery_queue_length{queue="celery"} 5\n'
        'celery_queue_length{queue="priority"} 1200\n'
    )
    rows = {str(r["series"]): r for r in _queues_at(lab, url)["celery"]}
    assert set(rows) == {'queue="celery"', 'queue="priority"'}
    assert rows['queue="priority"']["value"] == 1200
    assert rows['queue="priority"']["state"] == "warning"
    assert "celery_redis_prometheus" in str(rows['queue="celery"']["exporter"])
    assert rows['queue="celery"']["query"] == "sum by (queue) (celery_queue_length)"


def test_ovalmoney_exporter_counts_tasks_not_started(lab: Lab, bare_prometheus: BareProm) -> None:
    url = bare_prometheus(
        "# TYPE celery_tasks_total gauge\n"
        'celery_tasks_total{name="t.a",namespace="celery",queue="mail",state="PENDING"} 4\n'
        'celery_tasks_total{name="t.b",namespace="celery",queue="mail",state="RECEIVED"} 3\n'
        'celery_tasks_total{name="t.b",namespace="celery",queue="mail",state="SUCCESS"} 90\n'
    )
    (row,) = _queues_at(lab, url)["celery"]
    assert row["series"] == 'queue="mail"' and row["value"] == 7
    assert "OvalMoney" in str(row["exporter"])


def test_absent_exporter_says_what_it_looked_for(lab: Lab, bare_prometheus: BareProm) -> None:
    url = bare_prometheus("# TYPE something_else gauge\nsomething_else 1\n")
    queues = _queues_at(lab, url)
    (mail,) = queues["mail"]
    assert mail["series"] == "(no data)" and mail["state"] == "warning"
    assert "postfix_showq_message_size_bytes_count" in str(mail["note"])
    assert "postfix_exporter" in str(mail["note"])
    (celery,) = queues["celery"]
    assert 'celery_queue_length{queue_name!=""}' in str(celery["note"])
    text = lab.opskit("queues", env=lab.env(OPSKIT_PROMETHEUS_URL=url, COLUMNS="300"))
    assert "no exporter found: looked for" in text.stdout, text.stdout


def test_default_retention_is_prometheus_default(lab: Lab, bare_prometheus: BareProm) -> None:
    """No retention flag: Prometheus keeps 15d, and opskit says so (not "0s")."""
    import json

    url = bare_prometheus("# TYPE x gauge\nx 1\n")
    env = lab.env(OPSKIT_PROMETHEUS_URL=url)
    proc = lab.opskit("retention", "prometheus", "--json", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    out = json.loads(proc.stdout)
    assert out["retention_time"] == "15d" and out["flag_retention_time"] == ""
    assert out["retention_size"] == "" and out["retention_source"] == "runtimeinfo"
    text = lab.opskit("retention", "prometheus", env=env)
    assert "time 15d (default: flag not set)" in text.stdout and "0s" not in text.stdout


def test_monthly_review_reports_the_default_retention(
    lab: Lab, bare_prometheus: BareProm, tmp_path: Path
) -> None:
    import json

    url = bare_prometheus("# TYPE x gauge\nx 1\n")
    env = lab.env(OPSKIT_PROMETHEUS_URL=url, OPSKIT_MAINTENANCE_PUBLISH="false")
    proc = lab.opskit("maintenance", "monthly", "--only", "prometheus_retention", "--json", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    (res,) = [r for r in json.loads(proc.stdout)["results"] if r["task"] == "prometheus_retention"]
    messages = [f["summary"] for f in res["findings"]]
    assert any("retention 15d (flag: not set, Prometheus' default)" in m for m in messages), (
        messages
    )
    assert not any("0s" in m for m in messages)
