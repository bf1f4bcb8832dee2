"""Many contexts at once (issue 19): `opskit status --context a,b` / `--all-contexts`
against real servers -- the default lab (`lab`), the HA lab (`ha`, once it is up) and a
context on dead ports (`broken`) -- and the core Fleet's concurrency."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from opskit.config import load
from opskit.fleet import Fleet, FleetRow
from tests.conftest import LAB, OFFSET, Lab, get_json

HA_READY = Path("/tmp/h/ha-ready")


def dead_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lab_context(lab: Lab, name: str = "lab", color: str = "green") -> str:
    return (
        f'[contexts.{name}]\ncolor = "{color}"\n'
        f'[contexts.{name}.prometheus]\nurl = "{lab.prometheus}"\n'
        f'[contexts.{name}.alertmanager]\nurl = "{lab.alertmanager}"\n'
        f'[contexts.{name}.elasticsearch]\nurl = "{lab.elasticsearch}"\n'
        f'[contexts.{name}.grafana]\nurl = "{lab.grafana}"\n'
        f'username = "admin"\npassword = "admin"\n'
    )


def broken_context(name: str = "broken", timeout: str = "3s") -> str:
    ports = [dead_port() for _ in range(4)]
    return (
        f"[contexts.{name}]\nread_only = true\n"
        f'[contexts.{name}.prometheus]\nurl = "http://127.0.0.1:{ports[0]}"\nretries = 0\n'
        f'timeout = "{timeout}"\n'
        f'[contexts.{name}.alertmanager]\nurl = "http://127.0.0.1:{ports[1]}"\nretries = 0\n'
        f'timeout = "{timeout}"\n'
        f'[contexts.{name}.elasticsearch]\nurl = "http://127.0.0.1:{ports[2]}"\n'
        f'timeout = "{timeout}"\n'
        f'[contexts.{name}.grafana]\nurl = "http://127.0.0.1:{ports[3]}"\nretries = 0\n'
    )


def ha_context() -> str:
    """The HA lab's `ha` context (its own config file), once the HA lab is up."""
    if not HA_READY.exists():
        return ""
    proc = subprocess.run(
        [sys.executable, str(LAB / "lab.py"), "--profile", "ha", "config"],
        capture_output=True,
        text=True,
        env={**os.environ, "OPSKIT_LAB_PORT_OFFSET": str(OFFSET)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    # only the `ha` context's tables (ha-vm is left out), without its current_context
    keep, out = False, []
    for line in text.splitlines():
        if line.startswith("["):
            keep = line.strip("[] ").startswith("contexts.ha.") or line.strip("[] ") == (
                "contexts.ha"
            )
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture
def fleet_env(lab: Lab, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A config with contexts `lab`, `broken` (and `ha` when the HA lab is up); an
    environment without the lab's OPSKIT_*_URL variables (they would override every
    context)."""
    config = tmp_path / "opskit.toml"
    config.write_text(lab_context(lab) + broken_context() + ha_context())
    config.chmod(0o600)
    env = {k: v for k, v in lab.env().items() if not k.startswith("OPSKIT_")}
    env.update(OPSKIT_CONFIG=str(config), OPSKIT_LAB_PORT_OFFSET=str(OFFSET))
    yield env


def run(lab: Lab, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = lab.opskit(*args, env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_status_over_two_contexts_is_one_report(lab: Lab, fleet_env: dict[str, str]) -> None:
    proc = run(lab, fleet_env, "status", "--context", "lab,broken")
    assert proc.returncode == 3, proc.stdout + proc.stderr  # broken is unreachable
    lines = proc.stdout.splitlines()
    header = lines[0].split()
    assert header[0] == "context" and "prometheus" in header and "es" in header
    lab_row = next(ln for ln in lines if ln.startswith("lab "))
    broken_row = next(ln for ln in lines if ln.startswith("broken "))
    assert "connection refused" not in lab_row and lab_row.split()[1] == "ok"
    assert broken_row.count("connection refused") == 4 and "read-only" in broken_row
    assert "exit 3 (the worst of 2 contexts)" in proc.stdout
    # the group's --context takes the same list
    group = run(lab, fleet_env, "--context", "lab,broken", "status")
    assert group.returncode == 3 and "broken (read-only)" in group.stdout


def test_json_shape_and_figures(lab: Lab, fleet_env: dict[str, str]) -> None:
    proc = run(lab, fleet_env, "status", "--context", "lab,broken", "--json")
    assert proc.returncode == 3, proc.stderr
    body = json.loads(proc.stdout)
    assert body["exit_code"] == 3
    rows = {c["context"]: c for c in body["contexts"]}
    assert list(rows) == ["lab", "broken"]
    lab_row, broken = rows["lab"], rows["broken"]
    assert lab_row["colour"] == "green" and not lab_row["read_only"]
    assert broken["read_only"] and broken["exit_code"] == 3
    assert set(broken["error_classes"].values()) == {"connection refused"}
    assert set(broken["errors"]) == {"prometheus", "alertmanager", "elasticsearch", "grafana"}
    assert lab_row["errors"] == {} and lab_row["exit_code"] in (0, 1, 2)
    # each context's row carries its status summary (what `status --context lab` gives)
    assert lab_row["summary"]["context"] == "lab"
    assert lab_row["exit_code"] == lab_row["summary"]["exit_code"]
    # the figures are the servers' own (read again now: the lab is live, allow drift)
    targets = get_json(f"{lab.prometheus}/api/v1/targets?state=active")["data"]
    up = sum(t["health"] == "up" for t in targets["activeTargets"])
    assert abs(lab_row["targets"]["up"] - up) <= 1
    assert lab_row["targets"]["up"] + lab_row["targets"]["down"] == len(targets["activeTargets"])
    active = [a for a in get_json(f"{lab.alertmanager}/api/v2/alerts") if
              a["status"]["state"] == "active"]  # fmt: skip
    by_severity = Counter(a["labels"].get("severity", "none") for a in active)
    assert set(lab_row["alerts"]) <= set(by_severity) | {"none"}
    health = get_json(f"{lab.elasticsearch}/_cluster/health")
    assert lab_row["elasticsearch"] == {
        "cluster": health["cluster_name"],
        "status": health["status"],
    }


def test_all_contexts(lab: Lab, fleet_env: dict[str, str]) -> None:
    proc = run(lab, fleet_env, "status", "--all-contexts", "--json")
    body = json.loads(proc.stdout)
    names = [c["context"] for c in body["contexts"]]
    expected = sorted(["lab", "broken", *(["ha"] if HA_READY.exists() else [])])
    assert names == expected
    assert proc.returncode == body["exit_code"] == max(c["exit_code"] for c in body["contexts"])
    if HA_READY.exists():  # the HA lab: its clusters are read (members of each)
        ha = next(c for c in body["contexts"] if c["context"] == "ha")
        assert {m["backend"] for m in ha["clusters"]} == {"alertmanager", "prometheus"}


def test_several_contexts_elsewhere_and_bad_names(lab: Lab, fleet_env: dict[str, str]) -> None:
    for args in (("--context", "lab,broken", "alerts"), ("--context", "lab,broken", "health")):
        proc = run(lab, fleet_env, *args)
        assert proc.returncode == 64, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "status" in proc.stderr
    unknown = run(lab, fleet_env, "status", "--context", "lab,nowhere")
    assert unknown.returncode == 78 and "nowhere" in unknown.stderr
    both = run(lab, fleet_env, "status", "--context", "lab", "--all-contexts")
    assert both.returncode == 64
    # one name on `status --context` is the plain single-context status
    single = run(lab, fleet_env, "status", "--context", "broken")
    assert single.returncode == 3 and single.stdout.startswith("context broken")


def test_a_hanging_context_never_holds_up_the_others(lab: Lab, tmp_path: Path) -> None:
    """`hang` accepts connections and never answers (a real listening socket): the lab's
    row lands first, long before hang's reads time out."""
    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen(64)
        port = hang.getsockname()[1]
        config = tmp_path / "opskit.toml"
        config.write_text(
            lab_context(lab)
            + "[contexts.hang]\n"
            + "".join(
                f'[contexts.hang.{b}]\nurl = "http://127.0.0.1:{port}"\ntimeout = "3s"\n'
                + ("retries = 0\n" if b != "elasticsearch" else "")
                for b in ("prometheus", "alertmanager", "elasticsearch")
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSKIT_")}
        env["XDG_STATE_HOME"] = str(tmp_path / "state")
        contexts = {n: load(config, n, environ=env).settings for n in ("hang", "lab")}
        landed: list[tuple[str, float]] = []

        async def go() -> list[FleetRow]:
            t0 = time.monotonic()
            async with Fleet(contexts) as fleet:
                rows = await fleet.refresh(
                    lambda r: landed.append((r.context, time.monotonic() - t0))
                )
                return rows

        rows = asyncio.run(go())
    assert [r.context for r in rows] == ["hang", "lab"]  # the contexts' order
    assert landed[0][0] == "lab" and landed[0][1] < 2.5, landed
    assert landed[1][0] == "hang" and landed[1][1] >= 2.5, landed
    hung, ok = rows
    assert set(hung.error_classes.values()) == {"timeout"}, hung.errors
    assert hung.freshness() == "unreachable" and hung.exit_code == 3
    assert not ok.unreachable and ok.freshness().endswith("s ago")


def test_a_failing_source_keeps_its_last_values(lab: Lab, tmp_path: Path) -> None:
    """Prometheus behind a real fault proxy: answering, then HTTP 503. The row keeps the
    last targets read, says `stale` and names the error's class; when the proxy forwards
    again the row is fresh."""
    from tests.reliability.faults import fault_proxy

    with fault_proxy(lab.prometheus) as proxy:
        config = tmp_path / "opskit.toml"
        config.write_text(
            lab_context(lab).replace(
                f'url = "{lab.prometheus}"', f'url = "{proxy.url}"\nretries = 0'
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSKIT_")}
        env["XDG_STATE_HOME"] = str(tmp_path / "state")
        settings = {"lab": load(config, "lab", environ=env).settings}

        async def go() -> tuple[FleetRow, FleetRow, FleetRow]:
            async with Fleet(settings) as fleet:
                (first,) = await fleet.refresh()
                proxy.set("status", status=503)
                (failing,) = await fleet.refresh()
                proxy.set("none")
                (back,) = await fleet.refresh()
                return first, failing, back

        first, failing, back = asyncio.run(go())
    assert first.freshness().endswith("s ago") and first.targets_up
    assert failing.sources["prometheus"].error_class == "HTTP 503"
    assert failing.sources["alertmanager"].ok and failing.sources["elasticsearch"].ok
    assert failing.freshness() == "stale" and failing.exit_code == 3
    assert failing.error_headline == "prometheus: HTTP 503"
    # the last targets read are still counted (not "0 up")
    assert failing.targets_up == first.targets_up
    assert failing.sources["prometheus"].last_ok == first.sources["prometheus"].last_ok
    assert back.sources["prometheus"].ok and back.freshness().endswith("s ago")
