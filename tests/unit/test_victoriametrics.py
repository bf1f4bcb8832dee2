"""VictoriaMetrics' answers as opskit reads them: flavor detection, its /metrics (flags,
storage size, version), its TSDB status, its -retentionPeriod and the sizing advice.
The bodies are what VictoriaMetrics 1.79.5 (Debian) answered on loopback; the real server
is exercised in tests/ha/test_victoriametrics.py."""

from __future__ import annotations

import httpx
import pytest

from opskit.clients.prometheus import (
    PrometheusClient,
    detect_flavor,
    parse_exposition,
    parse_tsdb,
    vm_flags,
    vm_version,
)
from opskit.commands.prom_retention import retention_line
from opskit.errors import EXIT_UNSUPPORTED, BackendError, BackendUnreachable, Unsupported
from opskit.tasks.prom_retention import (
    USABLE_FRACTION,
    VM_MAX_DAYS,
    PromRetention,
    vm_retention_days,
    vm_sizing,
)

# GET /metrics of victoria-metrics 1.79.5 (Debian: the build sets no version), an excerpt
VM_METRICS = """\
# a comment line
vm_data_size_bytes{type="indexdb"} 490
vm_data_size_bytes{type="storage/big"} 0
vm_data_size_bytes{type="storage/small"} 186
vm_free_disk_space_bytes{path="/tmp/vmscratch"} 81260314624
vm_rows_added_to_storage_total 2
vm_rows{type="indexdb"} 28
vm_rows{type="storage/big"} 0
vm_rows{type="storage/small"} 2
vm_app_version{version="", short_version=""} 1
vm_app_uptime_seconds 353
flag{name="retentionPeriod", value="90d", is_set="true"} 1
flag{name="storageDataPath", value="/tmp/vmscratch", is_set="true"} 1
flag{name="vmalert.proxyURL", value="", is_set="false"} 1
flag{name="search.latencyOffset", value="30s", is_set="false"} 1
flag{name="weird", value="a \\"quoted\\" } value", is_set="true"} 1
not a sample line
"""

# GET /api/v1/status/tsdb?topN=10 data (VictoriaMetrics) and ?limit=10 (Prometheus 2.x)
VM_TSDB = {
    "totalSeries": 2,
    "totalLabelValuePairs": 4,
    "seriesCountByMetricName": [
        {"name": "opskit_test_metric", "value": 1},
        {"name": "up", "value": 1},
    ],
    "seriesCountByLabelName": [],
    "seriesCountByFocusLabelValue": [],
    "seriesCountByLabelValuePair": [],
    "labelValueCountByLabelName": [],
}
PROM_TSDB = {
    "headStats": {"numSeries": 508, "chunkCount": 937},
    "seriesCountByMetricName": [{"name": "net_conntrack_dialer_conn_failed_total", "value": 20}],
}


def test_detect_flavor_from_healthy() -> None:
    vm_headers = {"Content-Type": "text/plain; charset=utf-8", "X-Server-Hostname": "vm"}
    assert detect_flavor("VictoriaMetrics is Healthy.\n", vm_headers) == "victoriametrics"
    # the body alone (a proxy that drops the header), the header alone (one that rewrites it)
    assert detect_flavor("VictoriaMetrics is Healthy.\n", {}) == "victoriametrics"
    assert detect_flavor("OK", {"x-server-hostname": "vm-1"}) == "victoriametrics"
    prom = {"Content-Type": "text/plain; charset=utf-8"}
    assert detect_flavor("Prometheus Server is Healthy.\n", prom) == "prometheus"
    assert detect_flavor("", {}) == "prometheus"


def test_parse_exposition_reads_vm_metrics() -> None:
    samples = parse_exposition(VM_METRICS)
    names = [n for n, _, _ in samples]
    assert "not" not in names and names.count("flag") == 5
    assert ("vm_free_disk_space_bytes", {"path": "/tmp/vmscratch"}, 81260314624.0) in samples
    assert ("vm_app_uptime_seconds", {}, 353.0) in samples


def test_vm_flags_and_version() -> None:
    samples = parse_exposition(VM_METRICS)
    flags = vm_flags(samples)
    assert flags["retentionPeriod"] == ("90d", True)
    assert flags["search.latencyOffset"] == ("30s", False)
    assert flags["weird"] == ('a "quoted" } value', True)
    assert vm_version(samples) == ""  # Debian's build
    tagged = (
        'vm_app_version{version="victoria-metrics-20220801-tags-v1.79.5-0-gabc", '
        'short_version="v1.79.5"} 1'
    )
    assert vm_version(parse_exposition(tagged)) == "1.79.5"
    assert vm_version([]) == ""


def test_parse_tsdb_both_shapes() -> None:
    vm = parse_tsdb(VM_TSDB, 10)
    assert vm.head_series == 2
    assert vm.top_metrics == [("opskit_test_metric", 1), ("up", 1)]
    prom = parse_tsdb(PROM_TSDB, 10)
    assert prom.head_series == 508
    assert parse_tsdb(VM_TSDB, 1).top_metrics == [("opskit_test_metric", 1)]
    with pytest.raises(KeyError):
        parse_tsdb({"seriesCountByMetricName": []}, 10)


@pytest.mark.parametrize(
    ("flag", "days"),
    [
        ("90d", 90.0),
        ("1", 31.0),  # months of 31 days (lib/flagutil/duration.go msecsPerMonth)
        ("0.5", 15.5),
        ("2w", 14.0),
        ("1y", 365.0),
        ("36h", 1.5),
        ("1y2d", 367.0),
        ("100Y", 36500.0),
    ],
)
def test_vm_retention_days(flag: str, days: float) -> None:
    assert vm_retention_days(flag) == pytest.approx(days)


@pytest.mark.parametrize("flag", ["", "ninety days", "90x", "d"])
def test_vm_retention_days_rejects(flag: str) -> None:
    with pytest.raises(ValueError, match="retentionPeriod"):
        vm_retention_days(flag)


def test_vm_sizing_keeps_a_month_back() -> None:
    gib = 2**30
    growth = 1 * gib  # a GiB a day
    days, flags = vm_sizing(growth, 100 * gib)
    # 80 GiB usable = 80 days of data, minus the month VictoriaMetrics' monthly
    # partitions may still hold past the retention
    assert days == int(100 * USABLE_FRACTION) - 31 == 49
    assert flags == ["-retentionPeriod=49d"]
    assert vm_sizing(growth, 10 * gib) == (1, ["-retentionPeriod=1d"])  # never below a day
    assert vm_sizing(1.0, 100 * gib)[0] == VM_MAX_DAYS  # VictoriaMetrics' 100 years at most
    assert vm_sizing(None, 100 * gib) == (None, [])
    assert vm_sizing(growth, None) == (None, [])


def _report(flag: str, kept: str) -> PromRetention:
    return PromRetention(
        retention_time=kept,
        retention_size="",
        retention_source="victoriametrics /metrics flag retentionPeriod",
        flag_retention_time=flag,
        flag_retention_size="",
        tsdb_path="/var/lib/victoria-metrics",
        head_series=2,
        head_chunks=0,
        blocks_bytes=676.0,
        oldest_sample=None,
        samples_per_second=None,
        bytes_per_sample=2.0,
        bytes_per_sample_measured=False,
        growth_per_day_bytes=None,
        disk=None,
        budget_bytes=None,
        fits_days=None,
        flags_to_set=[],
        notes=[],
        flavor="victoriametrics",
    )


def test_retention_line_names_vm_flag() -> None:
    assert retention_line(_report("90d", "90d")) == "90d (-retentionPeriod=90d)"
    assert retention_line(_report("3", "93d")) == "93d (-retentionPeriod=3)"
    unset = retention_line(_report("", "31d"))
    assert unset.startswith("31d (-retentionPeriod not set") and "1 month" in unset


def test_unsupported_is_a_backend_error_with_its_own_exit_code() -> None:
    exc = Unsupported("prometheus", "victoriametrics http://vm:8428 has no /api/v1/status/flags")
    assert isinstance(exc, BackendError)  # the doctor, status and fetch() all catch it
    assert exc.exit_code == EXIT_UNSUPPORTED == 7
    assert str(exc).endswith("has no /api/v1/status/flags")


async def test_a_configured_flavor_is_not_probed() -> None:
    """`flavor = "victoriametrics"` (or "prometheus") is taken as said: no request (the
    URL is a closed port, so a probe would fail)."""
    for flavor in ("victoriametrics", "prometheus"):
        http = httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=2)
        prom = PrometheusClient(http, retries=0, flavor=flavor)
        try:
            assert await prom.flavor() == flavor
        finally:
            await prom.aclose()
    auto = PrometheusClient(httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=2), 0)
    try:
        with pytest.raises(BackendUnreachable):
            await auto.flavor()
        assert auto._flavor is None  # not cached: tried again at the next call
    finally:
        await auto.aclose()
