"""opskit's defaults read the lab's real services through their real exporters: the
Celery queue grows by the tasks this test enqueued, the mail queue by the mail it sent,
the error rate by the 500s it caused, and a service it stopped shows as down.

The lab's traffic generators are paused while a test counts (and started again), so
every change is the test's own."""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OFFSET, Lab, lab_py, server_state, wait_for

DANIHODOVIC = "danihodovic/celery-exporter"
EMAIL_SERVICE = f"http://127.0.0.1:{5000 + OFFSET}"


@contextmanager
def stopped(*servers: str) -> Iterator[None]:
    with ExitStack() as stack:
        for name in servers:
            stack.enter_context(server_state(name, running=False))
        yield


@pytest.fixture(scope="module")
def quiet(lab: Lab) -> Iterator[None]:
    """No generated traffic while this module counts."""
    del lab
    with stopped("traffic", "mail_traffic"):
        time.sleep(3)  # let tasks already queued by the traffic drain
        yield


def queues(lab: Lab) -> dict[str, dict[str, dict[str, Any]]]:
    rows = lab.opskit_json("queues")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["queue"], {})[row["series"]] = row
    return out


def test_celery_queues_one_row_per_queue_name(lab: Lab, quiet: None) -> None:
    celery = queues(lab)["celery"]
    assert {'queue_name="default"', 'queue_name="emails"', 'queue_name="reports"'} <= set(celery)
    row = celery['queue_name="reports"']
    assert DANIHODOVIC in row["exporter"]
    assert row["query"] == "sum by (queue_name) (celery_queue_length)"
    text = lab.opskit("queues")
    assert "celery: danihodovic/celery-exporter" in text.stdout, text.stdout


def test_celery_queue_grows_by_the_tasks_enqueued(lab: Lab, quiet: None) -> None:
    with stopped("celery_worker_reports"):
        key = 'queue_name="reports"'

        def settled() -> float | None:
            first = queues(lab)["celery"][key]["value"]
            time.sleep(6)  # a scrape later
            second = queues(lab)["celery"][key]["value"]
            return first if first == second else None

        before = wait_for(settled)
        assert before is not None
        lab_py("celery", "enqueue", "reports", "37")
        grown = wait_for(lambda: queues(lab)["celery"][key]["value"] == before + 37)
        assert grown, (before, queues(lab)["celery"][key])
        lab_py("celery", "purge", "reports")


def test_mail_queue_grows_by_the_mail_sent(lab: Lab, quiet: None) -> None:
    def total() -> float:
        (row,) = queues(lab)["mail"].values()
        assert "postfix" in row["exporter"], row
        return float(row["value"])

    def settled() -> float | None:
        first = total()
        time.sleep(6)
        return first if total() == first else None

    before = wait_for(settled)
    assert before is not None
    to = f"opskit-mailq-{time.time_ns()}"
    lab_py("mail", "send", "9", "--domain", "refused.test", "--to", to)
    try:
        assert wait_for(lambda: total() == before + 9), (before, total())
    finally:  # only this test's mail: the standing incident's stays
        lab_py("mail", "purge", "--recipient", to, "--queue", "ALL")


def test_error_rate_signal_reads_the_500s_caused(lab: Lab, quiet: None) -> None:
    """The default `error_rate` baseline resolves to the Flask exporter's counter, and
    the 500s this test causes, with no other traffic, make the 5xx share rise."""
    from opskit.config import load
    from opskit.stack import Stack

    settings = load(environ=lab.env()).settings

    async def share() -> tuple[str, float]:
        async with Stack(settings) as stack:
            found = await stack.resolve(None, "error_rate")
            if found.query is None:  # not scraped yet since it started
                return "", math.nan
            samples = await stack.prometheus.query(found.query)
            return found.exporter or "", samples[0].value if samples else math.nan

    def good(n: int) -> None:
        for _ in range(n):
            with urllib.request.urlopen(f"{EMAIL_SERVICE}/api/emails?limit=1", timeout=10):
                pass

    with server_state("email_service", running=True):
        assert wait_for(lambda: asyncio.run(share())[0]), "flask exporter never found"
        exporter = asyncio.run(share())[0]
        assert "prometheus-flask-exporter" in exporter
        # a first 500 and a first 200 create the series; Prometheus must see them before
        # the counting, since rate() cannot count what a counter had before its first scrape
        lab_py("app", "errors", "1")
        good(1)
        time.sleep(7)
        good(200)  # good requests in the window, so the share is below 1
        found = wait_for(lambda: (v := asyncio.run(share())[1]) < 1 and (v,), 30)
        assert found, "the share never fell below 1 after 200 good requests"
        (before,) = found
        # The 5m window also holds whatever the service answered before (the same series,
        # across its restart): 1,000 errors against at most ~1,100 other requests in it
        # close at least a fifth of the gap to 1, whatever the share was.
        lab_py("app", "errors", "1000", timeout=300)
        rise = (1 - before) * 0.2
        after = wait_for(lambda: (v := asyncio.run(share())[1]) > before + rise and v, 60)
        assert after and after > before + rise, (before, after)


def test_stopped_service_is_down_and_degraded(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "opskit.toml"  # the test lab's email-service is on its moved port
    config.write_text(f'[[services]]\nname = "email-service"\nurl = "{EMAIL_SERVICE}/health"\n')
    env = lab.env(OPSKIT_CONFIG=str(config))
    with stopped("email_service"):

        def down() -> list[dict[str, Any]]:
            rows = lab.opskit_json("targets", "--down", ok_codes=(0, 1, 2))
            return [t for t in rows if t["job"] == "email-service"]

        found = wait_for(down)
        assert found and "connection refused" in found[0]["last_error"], found
    with server_state("email_service", running=True), stopped("redis"):
        proc = lab.opskit("health", "--json", env=env)
        rows = {r["name"]: r for r in json.loads(proc.stdout)}
        svc = rows["email-service"]
        assert svc["ok"] and svc["reported"] == "degraded", svc
        assert svc["checks"]["redis"] != "healthy" and svc["checks"]["database"] == "healthy"
        text = lab.opskit("health", env=env)
        assert "degraded: redis" in text.stdout, text.stdout
    with server_state("email_service", running=True), stopped("postgres"):
        proc = lab.opskit("health", "--json", env=env)
        assert proc.returncode == 2, proc.stderr
        rows = {r["name"]: r for r in json.loads(proc.stdout)}
        svc = rows["email-service"]
        assert not svc["ok"] and svc["status_code"] == 503 and svc["reported"] == "unhealthy"
