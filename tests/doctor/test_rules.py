"""The doctor's pure decisions: scrape error classes (on Prometheus's own lastError
texts) and the exit code."""

from __future__ import annotations

import pytest

from opskit.findings import Finding, exit_code
from opskit.tasks.doctor.scraping import classify


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            'Get "http://127.0.0.1:1/metrics": dial tcp 127.0.0.1:1: connect: connection refused',
            "connection refused",
        ),
        (
            'Get "http://no-such-host.invalid:9100/metrics": dial tcp: lookup '
            "no-such-host.invalid on 10.255.255.53:53: no such host",
            "dns",
        ),
        (
            'Get "http://svc:9100/metrics": dial tcp: lookup svc on 127.0.0.11:53: '
            "server misbehaving",
            "dns",
        ),
        ('Get "http://10.0.0.9:9100/metrics": context deadline exceeded', "timeout"),
        ("server returned HTTP status 404 Not Found", "http status"),
        (
            'Get "https://10.0.0.9:9100/metrics": x509: certificate signed by unknown authority',
            "tls",
        ),
        (
            'Get "https://10.0.0.9:9100/metrics": tls: first record does not look like a TLS '
            "handshake",
            "tls",
        ),
        (
            'Get "http://10.0.0.9:9100/metrics": dial tcp 10.0.0.9:9100: connect: no route to host',
            "other",
        ),
    ],
)
def test_scrape_errors_are_classified(error: str, kind: str) -> None:
    assert classify(error) == kind


def _f(severity: str, backend_error: str | None = None) -> Finding:
    return Finding(severity, "", "", check="c", backend_error=backend_error)  # type: ignore[arg-type]


def test_exit_code_is_the_worst_finding_and_3_wins() -> None:
    assert exit_code([_f("ok"), _f("info")]) == 0
    assert exit_code([_f("ok"), _f("warning")]) == 1
    assert exit_code([_f("warning"), _f("critical")]) == 2
    assert exit_code([_f("critical"), _f("critical", "unreachable"), _f("ok")]) == 3
