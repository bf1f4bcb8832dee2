"""Error classes: one short, stable name for a failure, shown before its raw message.

One classifier for every place that shows a failure: `opskit doctor` groups down targets
by it (and picks the next step from it), the TUI and the CLI tables show the class first
and keep the raw text (Prometheus' Go error strings, a backend's reason) for a detail
pane. It reads Prometheus' scrape `lastError` (Go's net/http and x509 messages) as well as
opskit's own BackendError reasons (opskit/clients/base.py `describe_transport_error`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# kind -> label: `kind` is the stable key (doctor's `error_class` evidence, JSON);
# `label` is what a person reads (an HTTP error names its status: "HTTP 503")
KINDS = ("connection refused", "dns", "timeout", "tls", "auth", "http status", "other")
LABELS = {
    "connection refused": "connection refused",
    "dns": "DNS",
    "timeout": "timeout",
    "tls": "TLS",
    "auth": "auth",
    "http status": "HTTP",
    "other": "error",
}
_STATUS = re.compile(r"(?:server returned http status|http)\s+(\d{3})\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ErrorClass:
    kind: str  # one of KINDS
    status: int | None = None  # the HTTP status, for "http status" and "auth"

    @property
    def label(self) -> str:
        if self.status is not None and self.kind in ("http status", "auth"):
            return f"HTTP {self.status}" if self.kind == "http status" else f"auth ({self.status})"
        return LABELS[self.kind]


def classify(error: str) -> ErrorClass:
    """The class of an error message ("" is not an error: class "other")."""
    text = error.lower()
    status_match = _STATUS.search(error)
    status = int(status_match.group(1)) if status_match else None
    if (
        ("lookup " in text and ("no such host" in text or "dial" in text or "server" in text))
        or "does not resolve" in text
        or "name or service not known" in text
    ):
        return ErrorClass("dns")
    if "connection refused" in text or "all connection attempts failed" in text:
        return ErrorClass("connection refused")
    if "x509:" in text or "tls:" in text or "tls " in text or "certificate" in text:
        return ErrorClass("tls")
    if (
        "deadline exceeded" in text
        or "timeout" in text
        or "timed out" in text
        or "no answer from" in text
    ):
        return ErrorClass("timeout")
    if status in (401, 403) or "unauthorized" in text or "forbidden" in text:
        return ErrorClass("auth", status)
    if status is not None:
        return ErrorClass("http status", status)
    return ErrorClass("other")


def headline(error: str) -> str:
    """The class first, for one-line displays: 'connection refused', 'HTTP 503', or for an
    unclassified error its own first line."""
    if not error:
        return ""
    found = classify(error)
    if found.kind == "other":
        return error.strip().splitlines()[0] if error.strip() else error
    return found.label


def fit(text: str, width: int) -> str:
    """`text` on one line in at most `width` cells: newlines folded, an ellipsis where it
    is cut (never wrapped)."""
    line = " ".join(text.split())
    if width <= 0:
        return ""
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"
