"""Fixed data for SVG snapshots: no clocks, no servers."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from opskit.config import load
from opskit.live import LiveState
from opskit.models import (
    Alert,
    ClusterHealth,
    Index,
    QueueDepth,
    ServiceHealth,
    Silence,
    Target,
)
from opskit.screens.app import OpskitApp, create_app
from opskit.stack import Sourced

if TYPE_CHECKING:
    from tests.tui.capture_lab import LabData

T0 = datetime(2026, 1, 24, 12, 0, 0, tzinfo=UTC)


def target(job: str, instance: str, health: str, error: str = "") -> Target:
    return Target(
        job,
        instance,
        f"http://{instance}/metrics",
        health,
        None,
        0.0123,
        error,
        "15s",
        "10s",
        {"job": job, "instance": instance},
    )


def alert(fp: str, name: str, severity: str, state: str = "active", **labels: str) -> Alert:
    return Alert(
        fp,
        name,
        severity,
        state,
        {"alertname": name, "severity": severity, **labels},
        {"summary": f"{name} summary"},
        None,
        None,
        None,
        "http://prometheus:9090/graph",
        ["s1"] if state == "suppressed" else [],
        [],
        ["ops"],
    )


def fixed_state() -> LiveState:
    state = LiveState()
    values = {
        "targets": [
            target("email-service", "email-service:5000", "down", "connection refused"),
            target("node", "node-1:9100", "up"),
            target("prometheus", "localhost:9090", "up"),
        ],
        "alerts": [
            alert("a1", "EmailServiceDown", "critical", job="email-service"),
            alert("a2", "MailQueueHigh", "warning", job="pushgateway"),
            alert("a3", "CeleryQueueBackup", "warning", "suppressed", queue="default"),
        ],
        "silences": [
            Silence(
                "s1", "active", ['alertname="CeleryQueueBackup"'], T0, T0, "ops@host", "draining"
            )
        ],
        "queues": [
            QueueDepth("celery", 'queue="default"', 1450, 1000, None, "warning"),
            QueueDepth("celery", 'queue="emails"', 230, 1000, None, "ok"),
            QueueDepth("mail", "total", 140, 100, None, "warning"),
        ],
        "cluster": ClusterHealth("opskit-lab", "yellow", 1, 1, 10, 10, 0, 0, 2, 0, 83.3),
        "indices": [
            Index("logs-postfix-2026.01.24", "green", "open", 120, 40960, 1, 0, None, "u1"),
            Index("logs-dovecot-2026.01.24", "yellow", "open", 80, 20480, 1, 1, None, "u2"),
            Index("logs-celery-worker-2026.01.23", "green", "open", 300, 81920, 1, 0, None, "u3"),
        ],
        "services": [
            ServiceHealth(
                "kibana",
                "http://localhost:5601/api/status",
                False,
                None,
                None,
                "connection refused",
            ),
            ServiceHealth("loki", "http://localhost:3100/ready", True, 200, 3.2, ""),
        ],
        "grafana": {"version": "11.2.0", "database": "ok", "org": {"id": 1, "name": "Main"}},
    }
    for name, value in values.items():
        src = state[name]
        src.value = value
        src.last_ok = T0
        src.latency_ms = 5.0
    # the last hour, as the backfill from Prometheus gives it: ten-minute steps
    for q, series in (("celery", 'queue="default"'), ("mail", "total")):
        values = (900, 1000, 1100, 1200, 1300, 1450) if q == "celery" else (80, 90, 140)
        for i, v in enumerate(values):
            at = T0.timestamp() - (len(values) - 1 - i) * 600
            state.append_queue(f"{q} {series}", at, float(v))
    state.signal_history = fixed_signals()
    return state


def fixed_signals() -> dict[str, list[tuple[float, float]]]:
    """An hour of email-service latency (seconds) and 5xx share, one point a minute: a
    slow spell and errors twenty minutes ago."""
    t0 = T0.timestamp()
    out: dict[str, list[tuple[float, float]]] = {}
    for name, base in (("latency_p50", 0.02), ("latency_p95", 0.08), ("latency_p99", 0.15)):
        out[name] = [
            (t0 - (60 - m) * 60, base * (3.0 if 35 <= m <= 45 else 1.0 + (m % 7) / 20))
            for m in range(61)
        ]
    out["error_rate"] = [(t0 - (60 - m) * 60, 0.04 if 38 <= m <= 42 else 0.002) for m in range(61)]
    return out


def fixed_app(mode: str = "overview") -> OpskitApp:
    settings = load(
        environ={
            "XDG_CONFIG_HOME": "/nonexistent",
            "XDG_STATE_HOME": "/nonexistent",
            "OPSKIT_COLOR": "blue",
        }
    ).settings
    app = create_app(settings, refresh=5.0, poll=False, state=fixed_state())
    app.initial_mode = mode
    return app


def fixed_incident() -> dict[str, Sourced[Any]]:
    """Every part of the incident view of EmailServiceDown, as the lab's would be."""
    from opskit.errors import BackendUnreachable
    from opskit.models import (
        AlertHistory,
        Episode,
        IncidentAlert,
        IncidentLogs,
        LogGroup,
        RuleEvidence,
        Sample,
        Series,
        TargetEvidence,
    )

    t0 = T0.timestamp()
    started = datetime.fromtimestamp(t0 - 1800, UTC)
    inst = alert("f1", "EmailServiceDown", "critical", job="email-service")
    points = [(t0 - 7200 + i * 300, 1.0 if i < 18 else 0.0) for i in range(25)]
    return {
        "alert": Sourced(
            IncidentAlert(
                "EmailServiceDown",
                "f1",
                "firing",
                "critical",
                dict(inst.labels),
                {"summary": "Email service is down", "runbook_url": "https://runbooks/email"},
                "Email service is down",
                "up == 0 for 1m",
                "https://runbooks/email",
                started,
                "alertmanager",
                [inst],
                [],
                [],
                [{"fingerprint": "f9", "alertname": "EmailServiceHealthCheckFailing"}],
            )
        ),
        "history": Sourced(
            AlertHistory(
                datetime.fromtimestamp(t0 - 86400, UTC),
                T0,
                60.0,
                [
                    Episode(
                        datetime.fromtimestamp(t0 - 40000, UTC),
                        datetime.fromtimestamp(t0 - 39000, UTC),
                        1000.0,
                        False,
                        {},
                    ),
                    Episode(started, T0, 1800.0, True, {}),
                ],
                2,
                2800.0,
                120.0,
            )
        ),
        "targets": Sourced(
            [
                TargetEvidence(
                    "email-service",
                    "email-service:5000",
                    "http://email-service:5000/metrics",
                    "down",
                    'Get "http://email-service:5000/metrics": connection refused',
                    T0,
                    0.0021,
                    points,
                    0.72,
                )
            ]
        ),
        "rule": Sourced(
            RuleEvidence(
                "application",
                "/etc/prometheus/rules/application.yml",
                "EmailServiceDown",
                'up{job="email-service"} == 0',
                60.0,
                {"severity": "critical"},
                "ok",
                "",
                "firing",
                {"lhs": 'up{job="email-service"}', "op": "==", "value": 0.0},
                'up{job="email-service"}',
                [Sample({"job": "email-service"}, 0.0)],
                [Series({"job": "email-service"}, points)],
                datetime.fromtimestamp(t0 - 7200, UTC),
                T0,
                300.0,
            )
        ),
        "logs": Sourced(
            IncidentLogs(
                ["email-service"],
                ["logs-email-service-*"],
                datetime.fromtimestamp(t0 - 2700, UTC),
                T0,
                42,
                [
                    LogGroup(
                        "ERROR", "database connection refused", 12, started, T0, "email-service"
                    ),
                    LogGroup(
                        "WARNING", "health check unhealthy: redis", 5, started, T0, "email-service"
                    ),
                    LogGroup("INFO", "Shutting down: Master", 1, started, started, "email-service"),
                ],
            )
        ),
        "queues": Sourced(None),
        "dashboards": Sourced(
            error=BackendUnreachable("grafana", "connection refused"),
        ),
    }


# ---------------------------------------------------------------------- the lab's data
# tests/tui/labdata/lab.json: the test lab captured once (python -m tests.tui.capture_lab)


@lru_cache(maxsize=1)
def _lab() -> LabData:
    from tests.tui.capture_lab import load_lab

    return load_lab()


def lab_data() -> LabData:
    """The captured lab, read once per process (each caller gets fresh records)."""
    return copy.deepcopy(_lab())


def lab_now() -> datetime:
    """The capture's instant: what "now" is for the lab's snapshots."""
    return _lab().captured_at


def lab_app(mode: str = "overview") -> OpskitApp:
    """The app on the captured lab's state, not polling, with its Doctor report."""
    data = lab_data()
    settings = load(
        environ={
            "XDG_CONFIG_HOME": "/nonexistent",
            "XDG_STATE_HOME": "/nonexistent",
            "OPSKIT_COLOR": "blue",
        }
    ).settings
    app = create_app(settings, refresh=5.0, poll=False, state=data.state)
    app.doctor_report = data.doctor
    app.initial_mode = mode
    return app


class _FrozenClock:
    """Stands in for the `datetime` class where the screens ask it for "now"."""

    def __init__(self, real: type[datetime], at: datetime) -> None:
        self._real = real
        self._at = at

    def now(self, tz: tzinfo | None = None) -> datetime:
        return self._at.astimezone(tz) if tz is not None else self._at.replace(tzinfo=None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def freeze_now(monkeypatch: Any, at: datetime) -> None:
    """Every relative time on screen ("5m ago") as of `at`: `datetime.now` replaced in
    opskit.output (`ago`) and in every screen module that imports `datetime`."""
    import sys

    names = ["opskit.output", *(m for m in sys.modules if m.startswith("opskit.screens."))]
    for name in names:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "datetime", None) is datetime:
            monkeypatch.setattr(module, "datetime", _FrozenClock(datetime, at))
