"""A real fault-injecting proxy (lab/faultproxy.py) in front of a lab server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import LAB


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(LAB / "faultproxy.py"), "--upstream", upstream],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on" in line, line
        self.url = line.rsplit(" ", 1)[1].strip()

    def set(self, mode: str, **params: object) -> None:
        req = urllib.request.Request(
            f"{self.url}/__fault", method="POST", data=json.dumps({"mode": mode, **params}).encode()
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200

    def seen(self) -> int:
        """How many requests the current fault has matched."""
        with urllib.request.urlopen(f"{self.url}/__fault", timeout=5) as resp:
            return int(json.loads(resp.read())["seen"])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
