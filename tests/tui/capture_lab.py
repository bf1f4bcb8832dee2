"""Capture the test lab's state for the SVG snapshots (tests/tui/test_snapshots.py).

    OPSKIT_LAB_PORT_OFFSET=10000 .venv/bin/python -m tests.tui.capture_lab [--out DIR]

Polls every source once as the TUI's poller does (the same fetchers, the queue history
backfill, the email-service signals), then the Traces screen's Jaeger overview, the
Doctor report and the incident view of EmailServiceDown, all through opskit's own
clients, and writes them as JSON to tests/tui/labdata/ (`lab.json`). For the capture
it puts the lab in the state the screens should show: the standing incident (the
email-service stopped: a down target, EmailServiceDown firing, its health-check alert
inhibited), a silence on that inhibited alert, and an index with a replica no node may
hold (yellow). The silence and the index are removed again before it exits.

Scrubbed on the way out: the lab's secrets (Grafana token and password, the TLS
password), its checkout and state paths, and the port offset (`127.0.0.1:19090` is
written `localhost:9090`, the README's ports). Reading it back (`load_lab`) turns the
JSON into the typed records again, driven by the dataclasses' type hints.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import re
import sys
import tempfile
import types
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Union

from opskit.errors import (
    AuthFailed,
    BackendError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    NotFound,
)
from opskit.live import SOURCES, LiveState, Poller, signal_history
from opskit.models import (
    AlertHistory,
    DashboardLink,
    IncidentAlert,
    IncidentLogs,
    QueueDepth,
    RuleEvidence,
    TargetEvidence,
    to_json,
)
from opskit.models_tracing import IncidentTraces, TracesOverview
from opskit.record import VALUE_FROM_JSON
from opskit.stack import Sourced

LABDATA = Path(__file__).with_name("labdata")
FILE = "lab.json"
INCIDENT_KEY = "EmailServiceDown"
SILENCED = "EmailServiceHealthCheckFailing"  # inhibited already: a silence changes nothing
YELLOW_INDEX = "logs-opskit-capture-yellow"
SILENCE_COMMENT = "opskit snapshot capture (expires on its own in 10 minutes)"

# the incident's parts and their types (Incident's fields, without the Sourced)
INCIDENT_PARTS: dict[str, Any] = {
    "alert": IncidentAlert,
    "history": AlertHistory,
    "targets": list[TargetEvidence],
    "rule": RuleEvidence | None,
    "logs": IncidentLogs,
    "queues": list[QueueDepth] | None,
    "dashboards": list[DashboardLink],
    "traces": IncidentTraces,
}
ERRORS: dict[str, type[BackendError]] = {
    cls.__name__: cls
    for cls in (BackendError, BackendUnreachable, BackendTimeout, AuthFailed, BadResponse, NotFound)
}


# ---------------------------------------------------------------------- JSON to records
def decode(tp: Any, data: Any) -> Any:
    """`data` (as `models.to_json` wrote it) back into type `tp`: dataclasses by their
    type hints, lists, tuples, dicts, optionals, datetimes (ISO strings), timedeltas
    (seconds) and NaN floats (null)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return math.nan if float in args else None
        return decode(args[0], data) if len(args) == 1 else data
    if data is None:
        return math.nan if tp is float else None
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is timedelta:
        return timedelta(seconds=data)
    if tp is float:
        return float(data)
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return [decode(item, d) for d in data]
    if origin is tuple:
        kinds = typing.get_args(tp)
        return tuple(decode(k, d) for k, d in zip(kinds, data, strict=False))
    if origin is dict:
        _, value = typing.get_args(tp) or (Any, Any)
        return {k: decode(value, v) for k, v in data.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: decode(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.name in data and f.init
        }
        return tp(**kwargs)
    return data


def encode_error(error: BackendError | None) -> dict[str, str] | None:
    if error is None:
        return None
    return {"kind": type(error).__name__, "backend": error.backend, "reason": error.reason}


def decode_error(data: dict[str, str] | None) -> BackendError | None:
    if data is None:
        return None
    return ERRORS.get(data["kind"], BackendError)(data["backend"], data["reason"])


# ---------------------------------------------------------------------- capture
def source_json(state: LiveState, name: str) -> dict[str, Any]:
    src = state[name]
    return {
        "value": to_json(src.value),
        "error": src.error,
        "error_title": src.error_title,
        "last_ok": to_json(src.last_ok),
        "failing_since": to_json(src.failing_since),
        "latency_ms": round(src.latency_ms, 1),
        "failures": src.failures,
    }


def sourced_json(part: Sourced[Any] | None) -> dict[str, Any] | None:
    if part is None:
        return None
    return {
        "value": to_json(part.value),
        "error": encode_error(part.error),
        "fetched_at": to_json(part.fetched_at),
        "latency_ms": round(part.latency_ms, 1),
    }


async def capture_stack(settings: Any) -> dict[str, Any]:
    """Every screen's data from the stack `settings` points at, as JSON-ready data."""
    from opskit.stack import Stack
    from opskit.tasks.doctor import run_doctor
    from opskit.tasks.incident import incident

    stack = Stack(settings)
    try:
        state = LiveState()
        poller = Poller(stack, state, 5.0, lambda _name, _changed: None)
        for name in SOURCES:
            await poller.poll_once(name)
        captured_at = datetime.now(UTC)
        signals = await signal_history(stack, end=captured_at)
        traces = LiveState()
        from opskit.live import poll_source

        await poll_source(traces, "traces", stack.traces)
        found = await incident(stack, INCIDENT_KEY)
        report = await run_doctor(stack)
    finally:
        await stack.aclose()
    return {
        "captured_at": to_json(captured_at),
        "context": settings.context,
        "sources": {name: source_json(state, name) for name in SOURCES},
        "queue_history": {k: state.queue_points(k) for k in sorted(state.queue_history)},
        "signal_history": signals,
        "traces": source_json(traces, "traces"),
        "incident": {
            "key": found.key,
            "generated_at": to_json(found.generated_at),
            "parts": {name: sourced_json(part) for name, part in found.parts().items()},
        },
        "doctor": to_json(report),
    }


def scrub(text: str, secrets: list[str], paths: list[str], offset: int) -> str:
    """No secrets, no machine paths, the README's ports."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for path in sorted(paths, key=len, reverse=True):
        if path and path != "/":
            text = text.replace(path, "<lab>" if "lab" in Path(path).parts[-2:] else ".")
    if offset:

        def port(m: re.Match[str]) -> str:
            n = int(m.group(2))
            return f"localhost:{n - offset}" if n > offset else m.group(0)

        text = re.sub(r"(127\.0\.0\.1|localhost):(\d{5})\b", port, text)
    return text


class LabSetup:
    """The capture's additions to the lab (a silence, a yellow index), undone on exit."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.silence_id = ""

    def __enter__(self) -> LabSetup:
        from tests.conftest import get_json, wait_for

        lab = self.lab
        now = datetime.now(UTC)
        body = {
            "matchers": [{"name": "alertname", "value": SILENCED, "isRegex": False}],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=10)).isoformat(),
            "createdBy": "opskit-snapshots",
            "comment": SILENCE_COMMENT,
        }
        self.silence_id = get_json(f"{lab.alertmanager}/api/v2/silences", method="POST", body=body)[
            "silenceID"
        ]
        settings = {"settings": {"number_of_shards": 1, "number_of_replicas": 1}}
        get_json(f"{lab.elasticsearch}/{YELLOW_INDEX}", method="PUT", body=settings)
        doc = f"{lab.elasticsearch}/{YELLOW_INDEX}/_doc?refresh=true"
        get_json(doc, method="POST", body={"message": "capture"})

        def silenced() -> bool:
            alerts = get_json(f"{lab.alertmanager}/api/v2/alerts")
            return any(self.silence_id in a["status"]["silencedBy"] for a in alerts)

        wait_for(silenced, timeout=30)
        return self

    def __exit__(self, *_exc: object) -> None:
        import urllib.error

        from tests.conftest import get_json

        try:
            get_json(f"{self.lab.alertmanager}/api/v2/silence/{self.silence_id}", method="DELETE")
        finally:
            try:
                get_json(f"{self.lab.elasticsearch}/{YELLOW_INDEX}", method="DELETE")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise


def lab_ready(lab: Any) -> None:
    """The standing incident, as the lab fixture makes it: the email-service stopped and
    EmailServiceDown firing (after its `for:`), every target scraped."""
    from tests.conftest import _incident_seen, get_json, standing_incident, wait_for

    standing_incident()

    def firing() -> bool:
        alerts = get_json(f"{lab.alertmanager}/api/v2/alerts?silenced=false&inhibited=false")
        names = {a["labels"]["alertname"] for a in alerts if a["status"]["state"] == "active"}
        return INCIDENT_KEY in names and _incident_seen(lab)

    if not wait_for(firing, timeout=120):
        raise SystemExit(f"capture: {INCIDENT_KEY} is not firing in the lab")

    def scraped() -> bool:
        targets = get_json(f"{lab.prometheus}/api/v1/targets")["data"]["activeTargets"]
        return bool(targets) and all(t["health"] != "unknown" for t in targets)

    wait_for(scraped, timeout=60)


def capture(lab: Any | None = None) -> dict[str, Any]:
    """The lab's state as the snapshots use it (scrubbed, JSON-ready)."""
    from opskit.config import load
    from tests import conftest

    with tempfile.TemporaryDirectory(prefix="opskit-capture-") as home:
        lab = lab or conftest.Lab(home=Path(home))
        lab_ready(lab)
        settings = load(environ=lab.env()).settings
        with LabSetup(lab):
            data = asyncio.run(capture_stack(settings))
        text = json.dumps(data, indent=1, sort_keys=False)
        secrets = [conftest.GRAFANA_TOKEN, conftest.TLS_PASSWORD]
        paths = [str(conftest.STATE), str(conftest.ROOT), home, str(Path(home).resolve())]
        scrubbed: dict[str, Any] = json.loads(scrub(text, secrets, paths, conftest.OFFSET))
    return scrubbed


def write(data: dict[str, Any], out: Path = LABDATA) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILE
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


# ---------------------------------------------------------------------- reading back
@dataclasses.dataclass
class LabData:
    """The captured lab, typed: the instant it was taken and every screen's data."""

    captured_at: datetime
    state: LiveState  # every poller source, the queue history, the signals, the traces
    incident: dict[str, Sourced[Any]]
    doctor: Any  # a DoctorReport
    raw: dict[str, Any]


def state_from_json(data: dict[str, Any]) -> LiveState:
    state = LiveState()
    sources = dict(data["sources"])
    sources["traces"] = data["traces"]
    for name, raw in sources.items():
        src = state[name]
        value = raw["value"]
        if value is not None:
            value = (
                decode(TracesOverview, value) if name == "traces" else VALUE_FROM_JSON[name](value)
            )
        src.value = value
        src.error = raw["error"]
        src.error_title = raw["error_title"]
        src.last_ok = decode(datetime | None, raw["last_ok"])
        src.failing_since = decode(datetime | None, raw["failing_since"])
        src.latency_ms = raw["latency_ms"]
        src.failures = raw["failures"]
    for key, points in data["queue_history"].items():
        for at, value in points:
            state.append_queue(key, at, value)
    state.signal_history = {
        k: [(t, v) for t, v in pts] for k, pts in data["signal_history"].items()
    }
    return state


def incident_from_json(data: dict[str, Any]) -> dict[str, Sourced[Any]]:
    out: dict[str, Sourced[Any]] = {}
    for name, raw in data["parts"].items():
        if raw is None:
            continue
        out[name] = Sourced(
            decode(INCIDENT_PARTS[name], raw["value"]),
            decode_error(raw["error"]),
            datetime.fromisoformat(raw["fetched_at"]),
            raw["latency_ms"],
        )
    return out


def load_lab(path: Path = LABDATA / FILE) -> LabData:
    from opskit.tasks.doctor.model import DoctorReport

    raw = json.loads(path.read_text())
    return LabData(
        datetime.fromisoformat(raw["captured_at"]),
        state_from_json(raw),
        incident_from_json(raw["incident"]),
        decode(DoctorReport, raw["doctor"]),
        raw,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.tui.capture_lab", description=__doc__)
    parser.add_argument("--out", type=Path, default=LABDATA, help="the folder to write lab.json to")
    args = parser.parse_args(argv)
    path = write(capture(), args.out)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
