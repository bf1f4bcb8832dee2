"""VictoriaMetrics as the Prometheus API (issue 19), against the HA lab's real
VictoriaMetrics 1.79 (Debian), remote-written by prometheus_a: the context `ha-vm`.
What it serves works (status, queries, query_range, retention); what it lacks (rules
without vmalert, targets without -promscrape.config, runtimeinfo, flags) is named."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opskit.clients.prometheus import PrometheusClient
from opskit.config import Settings
from opskit.errors import EXIT_UNSUPPORTED, Unsupported
from opskit.http import build_http
from opskit.stack import Stack
from opskit.tasks.prom_retention import vm_retention_days
from tests.ha.conftest import HALab, ha_status

ROOT = Path(__file__).resolve().parents[2]


def opskit(lab: HALab, *args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", *args],
        env=lab.env(OPSKIT_CONTEXT="ha-vm"),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def lab_retention_flag() -> str:
    """-retentionPeriod as the lab started VictoriaMetrics (its command line), or "1",
    VictoriaMetrics' default, when the lab sets none."""
    (vm,) = [s for s in ha_status()["servers"] if s["name"] == "victoriametrics"]
    argv = Path(f"/proc/{vm['pid']}/cmdline").read_bytes().decode().split("\0")
    for arg in argv:
        if arg.lstrip("-").startswith("retentionPeriod="):
            return arg.split("=", 1)[1]
    return "1"


def client(settings: Settings, url: str | None = None) -> PrometheusClient:
    cfg = (
        settings.prometheus if url is None else settings.prometheus.model_copy(update={"url": url})
    )
    return PrometheusClient(build_http("prometheus", cfg, None), cfg.retries, cfg.flavor)


def test_the_lab_context_is_victoriametrics(ha_lab: HALab, ha_vm_settings: Settings) -> None:
    assert ha_vm_settings.prometheus.url.rstrip("/") == ha_lab.victoriametrics.rstrip("/")
    assert ha_vm_settings.prometheus.members == [ha_vm_settings.prometheus.url]


async def test_flavor_is_detected(ha_lab: HALab, ha_vm_settings: Settings) -> None:
    auto = ha_vm_settings.prometheus.model_copy(update={"flavor": "auto"})
    vm = PrometheusClient(build_http("prometheus", auto, None), auto.retries, auto.flavor)
    prom = client(ha_vm_settings.model_copy(update={"prometheus": auto}), ha_lab.prometheus_a)
    try:
        assert await vm.flavor() == "victoriametrics"
        assert await vm.flavor() == "victoriametrics"  # cached
        assert await prom.flavor() == "prometheus"
    finally:
        await vm.aclose()
        await prom.aclose()
    async with Stack(ha_vm_settings) as stack:
        assert await stack.prometheus.flavor() == "victoriametrics"


async def test_a_query_returns_what_prometheus_a_wrote(ha_vm_settings: Settings) -> None:
    """prometheus_a remote-writes with its external labels: its replica label is "a",
    and nothing of replica "b" is there."""
    label = ha_vm_settings.prometheus.replica_label
    async with Stack(ha_vm_settings) as stack:
        prom = stack.prometheus

        async def up_by_replica() -> set[str]:
            return {s.labels.get(label, "") for s in await prom.query('up{job="node"}')}

        seen: set[str] = set()
        deadline = time.monotonic() + 60  # a polling wait: remote write lags a little
        while "a" not in seen and time.monotonic() < deadline:
            seen.update(await up_by_replica())
            if "a" not in seen:
                await asyncio.sleep(0.5)
        assert "a" in seen and "b" not in seen, seen
        # query_range (incident history, the Queues backfill) over the last five minutes
        end = datetime.now(UTC)
        series = await prom.query_range('up{job="node"}', end - timedelta(minutes=5), end, 15)
        assert series and all(points for _, points in series)
        assert {labels.get(label) for labels, _ in series} == {"a"}


async def test_what_victoriametrics_lacks_is_named(ha_vm_settings: Settings) -> None:
    async with Stack(ha_vm_settings) as stack:
        prom = stack.prometheus
        for call, path in (
            (prom.runtimeinfo, "/api/v1/status/runtimeinfo"),
            (prom.flags, "/api/v1/status/flags"),
            (prom.alertmanagers, "/api/v1/alertmanagers"),
            (prom.rules, "-vmalert.proxyURL"),
            (prom.alerts, "-vmalert.proxyURL"),
            (prom.targets, "-promscrape.config"),
        ):
            with pytest.raises(Unsupported) as caught:
                await call()
            assert path in caught.value.reason and ha_vm_settings.prometheus.url.rstrip("/") in str(
                caught.value
            )
        # what it serves in its own shape: today's series instead of the head block's
        tsdb = await prom.tsdb_status(5)
        assert tsdb.head_series > 0 and 0 < len(tsdb.top_metrics) <= 5


def test_status_works(ha_lab: HALab) -> None:
    code, out, err = opskit(ha_lab, "status", "--json")
    assert code in (0, 1, 2), err
    body: dict[str, Any] = json.loads(out)
    assert body["sources"]["prometheus"]["ok"], body["sources"]
    assert body["targets"] is None  # not "0 targets"
    notes = [f for f in body["findings"] if f["source"] == "prometheus"]
    assert [f["severity"] for f in notes] == ["info"]
    assert "/api/v1/targets" in notes[0]["summary"]
    assert "-promscrape.config" in notes[0]["summary"]


@pytest.mark.parametrize(
    ("command", "names"),
    [
        ("rules", ["VictoriaMetrics serves no rules here", "-vmalert.proxyURL", "/api/v1/rules"]),
        ("targets", ["-promscrape.config", "/api/v1/targets"]),
    ],
)
def test_rules_and_targets_say_not_served(ha_lab: HALab, command: str, names: list[str]) -> None:
    code, out, err = opskit(ha_lab, command)
    assert code == EXIT_UNSUPPORTED, (code, out, err)
    assert len(err.strip().splitlines()) == 1 and not out.strip()
    for name in names:
        assert name in err, err
    assert "0 targets" not in err


def test_retention_reads_victoriametrics_own_flag(ha_lab: HALab) -> None:
    flag = lab_retention_flag()
    code, out, err = opskit(ha_lab, "retention", "prometheus", "--budget", "20GiB", "--json")
    assert code in (0, 1), err
    r = json.loads(out)
    assert r["flavor"] == "victoriametrics"
    assert r["retention_time"] == f"{vm_retention_days(flag):g}d"
    assert r["retention_source"].startswith("victoriametrics")
    assert r["tsdb_path"] and r["blocks_bytes"] > 0
    assert r["disk"] and r["disk"]["available_bytes"] > 0
    if r["fits_days"] is not None:
        assert r["flags_to_set"] == [f"-retentionPeriod={r['fits_days']}d"]
    code, text, err = opskit(ha_lab, "retention", "prometheus", "--budget", "20GiB")
    assert code in (0, 1), err
    assert f"-retentionPeriod={flag}" in text.replace("\n", " ")
    assert "--storage.tsdb" not in text


def test_doctor_names_what_it_could_not_check(ha_lab: HALab) -> None:
    code, out, err = opskit(ha_lab, "doctor", "--wait", "0", "--json")
    assert code in (0, 1, 2), err
    report = json.loads(out)
    assert "prometheus" not in report["unreachable"]
    findings = [f for a in report["areas"] for f in a["findings"]]
    not_checked = {f["check"]: f for f in findings if "unsupported" in (f["evidence"] or {})}
    assert "/api/v1/status/runtimeinfo" in not_checked["config_reload"]["summary"]
    assert "-vmalert.proxyURL" in not_checked["rule_evaluation"]["summary"]
    assert "/api/v1/alertmanagers" in not_checked["alertmanager_connection"]["summary"]
    assert "/api/v1/targets" in not_checked["targets_down"]["summary"]
    assert {f["severity"] for f in not_checked.values()} == {"info"}
    (head,) = [f for f in findings if f["check"] == "prometheus_head_series"]
    assert "today (VictoriaMetrics)" in head["summary"]
    code, text, err = opskit(ha_lab, "doctor", "--only", "scraping", "--wait", "0")
    assert code in (0, 1, 2), err
    assert "not checked (config_reload)" in text and "runtimeinfo" in text
