"""Start-up cost, structurally (issue 18): what `opskit --help` and `opskit status --json`
import, in a fresh interpreter each, and that `status`'s Elasticsearch GETs over httpx
(opskit.http.LazyElasticsearch) answer exactly as the official client does, against the
real lab servers. No timings: `make bench` measures those."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from opskit.clients.elasticsearch import ElasticsearchClient
from opskit.config import ElasticsearchBackend
from opskit.errors import BackendError
from opskit.http import LazyElasticsearch, build_official_elasticsearch
from tests.conftest import ROOT, TLS_PASSWORD, TLS_USER, Lab
from tests.reliability.faults import fault_proxy

# Runs the CLI in-process, then prints the imported module names as the last stderr line
# (a None entry is a blocked import, not a loaded module).
RUNNER = """
import json, sys
from opskit.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
modules = sorted(m for m, mod in sys.modules.items() if mod is not None)
print(json.dumps({"code": code, "modules": modules}), file=sys.stderr)
"""


def imported(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return int(report["code"] or 0), set(report["modules"]), proc.stdout


def loaded(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages or m in packages)


def test_help_imports_only_click() -> None:
    code, modules, out = imported("--help")
    assert code == 0 and "status" in out and "doctor" in out
    assert loaded(modules, "textual", "rich", "pydantic", "httpx", "httpcore") == []
    assert loaded(modules, "elasticsearch", "elastic_transport", "urllib3", "asyncio") == []
    # LazyGroup: listing the commands imports none of them, nor the configuration
    ours = {m for m in modules if m.startswith("opskit.")}
    assert ours <= {"opskit.cli", "opskit.commands", "opskit.commands.common", "opskit.errors"}


def test_status_json_imports_no_ui_and_no_official_es_client(lab: Lab) -> None:
    code, modules, out = imported("status", "--json", env=lab.env())
    assert code in (0, 1, 2), out
    data = json.loads(out)
    assert data["sources"]["elasticsearch"]["ok"], data["sources"]
    assert data["elasticsearch"]["indices"]  # the lab's indices, read over httpx
    assert loaded(modules, "textual", "rich", "pygments") == []
    # the official client and its transport are imported only for the other ES calls
    assert loaded(modules, "elasticsearch", "elastic_transport", "urllib3") == []
    assert "httpx._main" not in modules  # httpx's own CLI (rich, pygments) is never loaded


def test_other_es_calls_still_use_the_official_client(lab: Lab) -> None:
    code, modules, out = imported("cluster", "--json", env=lab.env())
    assert code in (0, 1, 2), out
    assert json.loads(out)
    assert "elasticsearch" in modules and "textual" not in modules


# ------------------------------------------------------------------ the httpx path's parity


def backend(url: str, **extra: Any) -> ElasticsearchBackend:
    return ElasticsearchBackend(url=url, timeout=timedelta(seconds=3), retries=0, **extra)


Call = Callable[[ElasticsearchClient], Awaitable[Any]]


async def _answer(es: Any, cfg: ElasticsearchBackend, call: Call) -> Any:
    client = ElasticsearchClient(es, cfg.url)
    try:
        return await call(client)
    except BackendError as exc:
        return (type(exc).__name__, exc.backend, str(exc))
    finally:
        await client.aclose()


def both(cfg: ElasticsearchBackend, call: Call) -> tuple[Any, Any]:
    """The same call through the httpx path and through the official client."""
    ours = asyncio.run(_answer(LazyElasticsearch(cfg), cfg, call))
    official = asyncio.run(_answer(build_official_elasticsearch(cfg), cfg, call))
    return ours, official


def health(client: ElasticsearchClient) -> Awaitable[Any]:
    return client.cluster_health()


def indices(pattern: str) -> Call:
    return lambda client: client.indices(pattern)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_same_answers_as_the_official_client(lab: Lab) -> None:
    cfg = backend(lab.elasticsearch)
    ours, official = both(cfg, health)
    assert ours == official and ours.cluster_name
    ours, official = both(cfg, indices("logs-*"))
    assert sorted(i.name for i in ours) == sorted(i.name for i in official)
    assert len(ours) >= 10


@pytest.mark.parametrize(
    "case",
    ["missing index", "refused", "not elasticsearch", "401", "http-503", "malformed"],
)
def test_same_errors_as_the_official_client(lab: Lab, case: str) -> None:
    tls = {"ca_bundle": lab.tls_ca, "username": TLS_USER}
    if case == "missing index":
        ours, official = both(backend(lab.elasticsearch), indices("opskit-no-such-index"))
        assert ours[0] == "NotFound" and "index_not_found_exception" in ours[2]
    elif case == "refused":
        ours, official = both(backend(f"http://127.0.0.1:{closed_port()}"), health)
        assert ours[0] == "BackendUnreachable" and "connection refused" in ours[2]
    elif case == "not elasticsearch":  # Prometheus' plain-text 404
        ours, official = both(backend(lab.prometheus), health)
        assert ours[0] == "NotFound"
    elif case == "401":
        cfg = backend(lab.tls_elasticsearch, password=SecretStr("wrong-password-123"), **tls)
        ours, official = both(cfg, health)
        assert ours[0] == "AuthFailed" and "401" in ours[2]
    else:
        with fault_proxy(lab.elasticsearch) as proxy:
            if case == "http-503":
                proxy.set("status", status=503)
            else:
                proxy.set("malformed")
            ours, official = both(backend(proxy.url), health)
        assert ours[0] == "BadResponse"
    assert ours == official


def test_tls_errors_name_tls_and_the_url(lab: Lab) -> None:
    cfg = backend(lab.tls_elasticsearch, username=TLS_USER, password=SecretStr(TLS_PASSWORD))
    ours, official = both(cfg, health)  # the lab's CA is not trusted by default
    assert ours == official
    assert ours[0] == "BackendUnreachable"
    assert ours[2].startswith(f"elasticsearch: {lab.tls_elasticsearch}: TLS error: ")
    assert "certificate verify failed" in ours[2]
    trusted = backend(
        lab.tls_elasticsearch,
        username=TLS_USER,
        password=SecretStr(TLS_PASSWORD),
        ca_bundle=lab.tls_ca,
    )
    ours, official = both(trusted, health)
    assert ours == official and ours.cluster_name


def test_one_tls_context_per_bundle_however_it_is_asked_for() -> None:
    """Loading certifi's bundle costs ~25 ms a time: every client without its own CA
    bundle shares one context (`ssl_context()` and `ssl_context(None)` alike)."""
    from opskit.http import ssl_context

    assert ssl_context() is ssl_context(None)
    assert ssl_context(None) is ssl_context()
