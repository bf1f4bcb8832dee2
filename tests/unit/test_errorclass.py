"""The one error classifier shared by doctor, the TUI and the CLI tables."""

from __future__ import annotations

import pytest

from opskit.errorclass import classify, fit, headline


@pytest.mark.parametrize(
    ("error", "label"),
    [
        # Prometheus' scrape lastError strings (Go net/http, net, x509)
        (
            'Get "http://127.0.0.1:19999/metrics": dial tcp 127.0.0.1:19999: connect: '
            "connection refused",
            "connection refused",
        ),
        ("server returned HTTP status 503 Service Unavailable", "HTTP 503"),
        ("server returned HTTP status 401 Unauthorized", "auth (401)"),
        ('Get "http://10.0.0.9:9100/metrics": context deadline exceeded', "timeout"),
        ('Get "http://svc:9100/metrics": dial tcp: lookup svc on 10.0.0.2:53: no such host', "DNS"),
        ('Get "https://h:9100/metrics": x509: certificate signed by unknown authority', "TLS"),
        # opskit's own BackendError reasons (opskit/clients/base.py)
        ("host name does not resolve", "DNS"),
        ("TLS certificate not trusted: self-signed certificate", "TLS"),
        ("no answer from /api/v1/targets within 10s", "timeout"),
        ("401 Unauthorized: credentials missing or wrong", "auth"),
        ("HTTP 502 from /_cat/indices", "HTTP 502"),
    ],
)
def test_classes(error: str, label: str) -> None:
    assert classify(error).label == label
    assert headline(error) == label


def test_an_unclassified_error_keeps_its_first_line() -> None:
    assert classify("no route to host").kind == "other"
    assert headline("no route to host\nmore detail") == "no route to host"
    assert headline("") == ""


def test_fit_is_one_line_with_an_ellipsis() -> None:
    assert fit("a\nb  c", 10) == "a b c"
    assert fit("abcdefghij", 5) == "abcd…"
    assert len(fit("x" * 100, 20)) == 20
    assert fit("abc", 0) == ""


def test_a_server_closing_mid_answer_says_so() -> None:
    """httpx's ReadError has no message: say what happened, not just its name."""
    import httpx

    from opskit.clients.base import describe_transport_error

    reason = describe_transport_error(httpx.ReadError(""))
    assert reason == "connection closed by the server mid-answer (ReadError)"
    assert describe_transport_error(httpx.ReadError("boom")) == "boom"
