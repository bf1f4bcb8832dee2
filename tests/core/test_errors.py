"""Each error class produced for real: one line, its exit code, no traceback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import Lab, get_json, lab_ctl
from tests.lab.test_servers import wait_for


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if not ln.startswith("opskit: warning")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A real socket that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    srv.close()


def test_nothing_listening_is_unreachable_exit_3(lab: Lab) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = lab.opskit("targets", env=lab.env(OPSKIT_PROMETHEUS_URL=url))
    assert proc.returncode == 3
    line = one_line(proc.stderr)
    assert "prometheus" in line and "connection refused" in line and url in line
    es = lab.opskit("indices", env=lab.env(OPSKIT_ELASTICSEARCH_URL=url))
    assert es.returncode == 3 and "connection refused" in one_line(es.stderr)


def test_timeout_exit_3(lab: Lab, silent_server: str) -> None:
    env = lab.env(
        OPSKIT_ALERTMANAGER_URL=silent_server,
        OPSKIT_ALERTMANAGER_TIMEOUT="1s",
        OPSKIT_ALERTMANAGER_RETRIES="0",
    )
    proc = lab.opskit("alerts", env=env)
    assert proc.returncode == 3
    assert "no answer" in one_line(proc.stderr) and "1s" in proc.stderr
    es_env = lab.env(
        OPSKIT_ELASTICSEARCH_URL=silent_server,
        OPSKIT_ELASTICSEARCH_TIMEOUT="1s",
        OPSKIT_ELASTICSEARCH_RETRIES="0",
    )
    es = lab.opskit("cluster", env=es_env)
    assert es.returncode == 3 and "no answer" in one_line(es.stderr)


def test_wrong_grafana_password_is_auth_failed_exit_4(lab: Lab) -> None:
    env = lab.env(GRAFANA_PASSWORD="not-the-password")
    proc = lab.opskit("status", "--json", env=env)
    assert proc.returncode == 3  # status: one API could not be read, the rest reported
    import json

    data = json.loads(proc.stdout)
    assert "401" in data["sources"]["grafana"]["error"]
    assert data["sources"]["prometheus"]["ok"]
    assert "not-the-password" not in proc.stdout + proc.stderr


def test_stopped_server_mid_session(lab: Lab) -> None:
    lab_ctl("server", "stop", "alertmanager")
    try:
        proc = lab.opskit("alerts")
        assert proc.returncode == 3
        assert "alertmanager" in one_line(proc.stderr)
        status = lab.opskit("status", "--json")
        assert status.returncode == 3
        assert '"prometheus"' in status.stdout  # the others are still reported
    finally:
        lab_ctl("server", "start", "alertmanager")
    again = lab.opskit("alerts", "--json")
    assert again.returncode in (0, 1, 2), again.stderr
    # Prometheus resends its firing alerts (every 5s in the lab): the state comes back
    assert wait_for(
        lambda: any(
            a["labels"]["alertname"] == "EmailServiceDown"
            for a in get_json(f"{lab.alertmanager}/api/v2/alerts")
        ),
        60,
    )


def test_help_imports_no_heavy_modules() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom opskit.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('textual', 'elasticsearch', 'httpx', 'pydantic') "
        "if m in sys.modules]\nprint(heavy, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stderr.strip() == "[]"
