"""Every backend x every fault, produced for real by lab/faultproxy.py in front of the
lab's servers: the read-only commands give one clear line and the documented exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import Lab
from tests.core.test_errors import one_line
from tests.reliability.faults import FaultProxy, fault_proxy

# fault -> (proxy settings, exit code, text expected in the message)
FAULTS: dict[str, tuple[dict[str, object], int, str]] = {
    "http-500": ({"mode": "status", "status": 500}, 5, "500"),
    "http-502": ({"mode": "status", "status": 502}, 5, "502"),
    "http-503": ({"mode": "status", "status": 503}, 5, "503"),
    "slow": ({"mode": "slow", "delay": 4}, 3, "no answer"),
    "malformed": ({"mode": "malformed"}, 5, ""),
    "truncated": ({"mode": "truncated"}, 5, ""),
    "shape": ({"mode": "shape"}, 5, "unexpected"),
    "http-401": ({"mode": "status", "status": 401}, 4, "401"),
    "http-403": ({"mode": "status", "status": 403}, 4, "403"),
    "disconnect": ({"mode": "disconnect"}, 3, ""),
}
# backend -> (command that reads it, env variable prefix)
BACKENDS = {
    "prometheus": ["targets"],
    "alertmanager": ["alerts"],
    "elasticsearch": ["indices", "--pattern", "logs-postfix-*"],
}


@pytest.fixture(scope="module", params=[*BACKENDS, "grafana"])
def proxied(request: pytest.FixtureRequest, lab: Lab) -> Iterator[tuple[str, FaultProxy]]:
    backend = str(request.param)
    with fault_proxy(getattr(lab, backend)) as proxy:
        yield backend, proxy


def env_for(lab: Lab, backend: str, proxy: FaultProxy) -> dict[str, str]:
    up = backend.upper()
    return lab.env(
        **{f"OPSKIT_{up}_URL": proxy.url, f"OPSKIT_{up}_TIMEOUT": "1s", f"OPSKIT_{up}_RETRIES": "0"}
    )


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault(lab: Lab, proxied: tuple[str, FaultProxy], fault: str) -> None:
    backend, proxy = proxied
    settings, code, text = FAULTS[fault]
    proxy.set(**settings)  # type: ignore[arg-type]
    try:
        if backend == "grafana":
            # Grafana has no read-only command of its own: `status` reports it as a source
            proc = lab.opskit("status", "--json", env=env_for(lab, backend, proxy))
            assert proc.returncode == 3, proc.stderr
            data = json.loads(proc.stdout)
            assert data["sources"]["grafana"]["ok"] is False
            assert text in data["sources"]["grafana"]["error"]
            assert data["sources"]["prometheus"]["ok"] and data["sources"]["elasticsearch"]["ok"]
            return
        proc = lab.opskit(*BACKENDS[backend], env=env_for(lab, backend, proxy))
        assert proc.returncode == code, proc.stderr
        line = one_line(proc.stderr)
        assert backend in line and text in line
    finally:
        proxy.set("none")


def test_proxy_passes_through_when_healthy(lab: Lab) -> None:
    """The control case: with no fault the same commands succeed through the proxy."""
    for backend, cmd in BACKENDS.items():
        with fault_proxy(getattr(lab, backend)) as proxy:
            proc = lab.opskit(*cmd, "--json", env=env_for(lab, backend, proxy))
            assert proc.returncode in (0, 1, 2), proc.stderr
            assert json.loads(proc.stdout)
