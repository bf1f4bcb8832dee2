"""The TUI driven with Textual's pilot against the real lab."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from opskit.config import Settings, load
from opskit.live import SOURCES
from opskit.screens.app import OpskitApp, create_app
from opskit.screens.widgets import KeyedTable
from tests.conftest import Lab, get_json, lab_ctl

SIZE = (160, 45)


def lab_settings(lab: Lab, **extra: str) -> Settings:
    return load(environ=lab.env(**extra)).settings


async def until(
    pilot_pause: Callable[[], object], cond: Callable[[], bool], timeout: float = 30
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        await pilot_pause()  # type: ignore[misc]
        await asyncio.sleep(0.1)
    return cond()


def table_keys(app: OpskitApp) -> list[str]:
    return app.screen.query_one(KeyedTable).keys


async def test_alerts_screen_lists_the_labs_firing_alerts(lab: Lab) -> None:
    app = create_app(lab_settings(lab), refresh=1.0)
    async with app.run_test(size=SIZE) as pilot:
        assert await until(pilot.pause, lambda: app.state["alerts"].status == "ok")
        await pilot.press("3")
        await pilot.pause()
        api = {
            a["fingerprint"]: a["labels"]["alertname"]
            for a in get_json(f"{lab.alertmanager}/api/v2/alerts?silenced=false&inhibited=false")
        }
        assert await until(pilot.pause, lambda: set(table_keys(app)) == set(api))
        assert "EmailServiceDown" in api.values()


async def test_silence_from_the_tui(lab: Lab) -> None:
    app = create_app(lab_settings(lab), refresh=1.0)
    async with app.run_test(size=SIZE) as pilot:
        assert await until(pilot.pause, lambda: app.state["alerts"].status == "ok")
        await pilot.press("3")
        await pilot.press("slash")
        await pilot.press(*"MailQueueHigh")
        await pilot.press("enter")
        assert await until(pilot.pause, lambda: len(table_keys(app)) == 1)
        await pilot.press("s")
        await pilot.pause()
        comment = f"tui-test-{time.time():.0f}"
        await pilot.press(*comment)
        await pilot.press("enter")

        def silenced() -> str | None:
            for s in get_json(f"{lab.alertmanager}/api/v2/silences"):
                if s["comment"] == comment and s["status"]["state"] == "active":
                    return str(s["id"])
            return None

        assert await until(pilot.pause, lambda: silenced() is not None, 15)
        silence_id = silenced()
        matchers = {
            m["name"]: m["value"]
            for m in get_json(f"{lab.alertmanager}/api/v2/silence/{silence_id}")["matchers"]
        }
        assert matchers["alertname"] == "MailQueueHigh"
        # the alert leaves the firing list and shows as silenced on demand
        assert await until(pilot.pause, lambda: table_keys(app) == [], 20)
        await pilot.press("i")
        assert await until(pilot.pause, lambda: len(table_keys(app)) == 1)
        row = app.screen.query_one(KeyedTable).get_row_at(0)
        assert "silenced" in str(row[3])
    get_json(f"{lab.alertmanager}/api/v2/silence/{silence_id}", method="DELETE")


async def test_prometheus_down_then_back(lab: Lab) -> None:
    app = create_app(lab_settings(lab, OPSKIT_PROMETHEUS_RETRIES="0"), refresh=0.5)
    async with app.run_test(size=SIZE) as pilot:
        assert await until(pilot.pause, lambda: app.state["targets"].status == "ok")
        lab_ctl("server", "stop", "prometheus")
        try:
            assert await until(pilot.pause, lambda: app.state["targets"].status == "stale", 20)
            # the poll that meets the stopping server may see its connection reset
            # (ReadError); the next ones see it refused
            assert await until(
                pilot.pause, lambda: "connection refused" in app.state["targets"].banner(), 20
            )
            banner = app.state["targets"].banner()
            assert banner.startswith("prometheus unreachable since ")
            assert app.state["targets"].value  # last good data kept
            tile = app.screen.query_one("#tile-targets")
            # renders are coalesced: the tile shows it within a frame or two
            assert await until(pilot.pause, lambda: tile.has_class("-stale"), 5)
            assert "unreachable since" in str(tile.render())
            # Elasticsearch keeps refreshing meanwhile
            before = app.state["cluster"].last_ok
            assert await until(pilot.pause, lambda: app.state["cluster"].last_ok != before, 10)
            assert app.state["cluster"].status == "ok"
            await pilot.press("2")  # input still answered
            await pilot.pause()
            assert app.screen.query_one("#banner").has_class("-shown")
        finally:
            lab_ctl("server", "start", "prometheus")
        app.poller.refresh_now() if app.poller else None
        assert await until(pilot.pause, lambda: app.state["targets"].status == "ok", 60)
        assert not app.screen.query_one("#banner").has_class("-shown")


async def test_filter_sort_and_faults_only(lab: Lab) -> None:
    app = create_app(lab_settings(lab), refresh=2.0)
    async with app.run_test(size=SIZE) as pilot:
        assert await until(pilot.pause, lambda: app.state["indices"].status == "ok")
        await pilot.press("5")
        assert await until(pilot.pause, lambda: len(table_keys(app)) >= 225)
        await pilot.press("slash", *"logs-postfix-*", "enter")
        assert await until(pilot.pause, lambda: 0 < len(table_keys(app)) < 100)
        keys = table_keys(app)
        assert all(k.startswith("logs-postfix-") for k in keys)
        assert keys == sorted(keys)  # default sort: name
        await pilot.press("o", "o")  # name -> health -> size
        await pilot.pause()
        sizes = {i.name: i.store_size_bytes for i in app.state["indices"].value or []}
        ordered = [sizes[k] for k in table_keys(app)]
        assert ordered == sorted(ordered, reverse=True)
        await pilot.press("escape")
        await pilot.press("2", "f")  # targets, faults only: the down target alone
        assert await until(pilot.pause, lambda: len(table_keys(app)) == 1)
        assert table_keys(app)[0].startswith("email-service|")


async def test_keys_answered_while_a_refresh_hangs(lab: Lab) -> None:
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)  # accepts, never answers: every Prometheus poll hangs until its timeout
    try:
        settings = lab_settings(
            lab,
            OPSKIT_PROMETHEUS_URL=f"http://127.0.0.1:{srv.getsockname()[1]}",
            OPSKIT_PROMETHEUS_TIMEOUT="30s",
        )
        app = create_app(settings, refresh=1.0)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.5)
            t0 = time.monotonic()
            await pilot.press("3")
            await pilot.pause()
            assert app.current_mode == "alerts"
            assert time.monotonic() - t0 < 5  # far below the 30s the hung poll waits
            assert app.state["targets"].status == "loading"
    finally:
        srv.close()


async def test_read_only_context_hides_destructive_actions(lab: Lab) -> None:
    app = create_app(lab_settings(lab, OPSKIT_READ_ONLY="true"), refresh=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        assert app.screen.check_action("silence", ()) is False
        await pilot.press("5")
        await pilot.pause()
        assert app.screen.check_action("delete", ()) is False
        assert app.screen.check_action("snapshot", ()) is False
        shown = {b.binding.action for b in app.active_bindings.values() if b.enabled}
        assert "delete" not in shown and "snapshot" not in shown
        await pilot.press("D")  # nothing happens: no confirmation dialog opens
        await pilot.pause()
        assert app.current_mode == "indices" and len(app.screen_stack) == 1


@pytest.mark.parametrize("mode", ["overview", "targets", "alerts", "queues", "indices", "services"])
async def test_every_screen_renders_against_the_lab(lab: Lab, mode: str) -> None:
    app = create_app(lab_settings(lab), refresh=2.0)
    async with app.run_test(size=SIZE) as pilot:
        # every polled source (an on-demand one, the traces, loads with its screen)
        assert await until(
            pilot.pause, lambda: all(app.state[name].status == "ok" for name in SOURCES), 30
        )
        app.switch_mode(mode)
        await pilot.pause()
        assert app.screen.query_one("#context-bar").render()


async def test_doctor_screen_shows_the_doctor_report(lab: Lab) -> None:
    app = create_app(lab_settings(lab, OPSKIT_PROMETHEUS_RETRIES="0"), refresh=2.0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        assert await until(pilot.pause, lambda: app.doctor_report is not None, 60)
        assert app.doctor_report is not None
        found = {
            (f.check, f.subject) for f in app.doctor_report.findings() if f.severity == "critical"
        }
        assert any("email-service" in subject for _, subject in found), found
        assert await until(pilot.pause, lambda: len(table_keys(app)) > 0)
        await pilot.press("f")  # faults only: no ok rows
        await pilot.pause()
        severities = {str(app.screen.query_one(KeyedTable).get_row(k)[1]) for k in table_keys(app)}
        assert severities <= {"warning", "critical"}


async def test_a_faulty_elasticsearch_leaves_the_rest_refreshing(lab: Lab) -> None:
    from tests.reliability.faults import fault_proxy

    with fault_proxy(lab.elasticsearch) as proxy:
        settings = lab_settings(
            lab, OPSKIT_ELASTICSEARCH_URL=proxy.url, OPSKIT_ELASTICSEARCH_RETRIES="0"
        )
        app = create_app(settings, refresh=0.5)
        async with app.run_test(size=SIZE) as pilot:
            assert await until(pilot.pause, lambda: app.state["indices"].status == "ok")
            good = len(app.state["indices"].value or [])
            for fault in ({"mode": "status", "status": 503}, {"mode": "shape"}):
                proxy.set(**fault)  # type: ignore[arg-type]
                assert await until(pilot.pause, lambda: app.state["indices"].status == "stale")
                assert len(app.state["indices"].value or []) == good  # last good data kept
                before = app.state["targets"].last_ok
                assert await until(pilot.pause, lambda b=before: app.state["targets"].last_ok != b)
                assert app.state["targets"].status == "ok"
                tile = app.screen.query_one("#tile-indices")
                assert tile.has_class("-stale")
                proxy.set("none")
                app.poller.refresh_now() if app.poller else None
                assert await until(pilot.pause, lambda: app.state["indices"].status == "ok", 60)
                assert not tile.has_class("-stale")


async def test_delete_from_the_tui_snapshots_first(lab: Lab) -> None:
    names = [f"opskit-tui-del-{n}" for n in range(2)]
    for name in names:
        get_json(
            f"{lab.elasticsearch}/{name}",
            method="PUT",
            body={"settings": {"number_of_replicas": 0}},
        )
        get_json(f"{lab.elasticsearch}/{name}/_doc?refresh=true", method="POST", body={"n": 1})
    try:
        app = create_app(lab_settings(lab), refresh=1.0)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            assert await until(pilot.pause, lambda: set(names) <= set(table_keys(app)))
            await pilot.press("slash", *"opskit-tui-del-*", "enter")
            assert await until(pilot.pause, lambda: table_keys(app) == names)
            await pilot.press("a", "D")
            await pilot.pause()
            plan = str(app.screen.query_one("#plan").render())
            assert all(n in plan for n in names) and "snapshot" in plan.lower()
            await pilot.press("y")

            def gone() -> bool:
                rows = get_json(f"{lab.elasticsearch}/_cat/indices/opskit-tui-del-*?format=json")
                return rows == []

            assert await until(pilot.pause, gone, 60)
        snaps = get_json(f"{lab.elasticsearch}/_snapshot/backup/retention-tui-*")["snapshots"]
        assert any(set(names) <= set(s["indices"]) and s["state"] == "SUCCESS" for s in snaps)
        for s in snaps:
            get_json(f"{lab.elasticsearch}/_snapshot/backup/{s['snapshot']}", method="DELETE")
    finally:
        for name in names:
            import urllib.error

            with contextlib.suppress(urllib.error.HTTPError):
                get_json(f"{lab.elasticsearch}/{name}", method="DELETE")


async def test_switch_context_without_restarting(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "opskit.toml"
    config.write_text(
        f'[prometheus]\nurl = "{lab.prometheus}"\nretries = 0\n'
        f'[alertmanager]\nurl = "{lab.alertmanager}"\n'
        f'[elasticsearch]\nurl = "{lab.elasticsearch}"\n'
        f'[grafana]\nurl = "{lab.grafana}"\n'
        '[contexts.prod]\ncolor = "red"\nread_only = true\n'
        '[contexts.prod.prometheus]\nurl = "http://127.0.0.1:9"\n'
    )
    env = {k: v for k, v in lab.env().items() if not k.startswith("OPSKIT_")}

    def load_context(name: str) -> Settings:
        return load(config, name, environ=env).settings

    app = create_app(
        load_context("default"), refresh=0.5, contexts=["prod"], load_context=load_context
    )
    async with app.run_test(size=SIZE) as pilot:
        assert await until(pilot.pause, lambda: app.state["targets"].status == "ok")
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*"prod", "enter")
        assert await until(pilot.pause, lambda: app.settings.context == "prod")
        assert app.settings.read_only
        assert await until(pilot.pause, lambda: app.state["targets"].status == "unreachable")
        assert await until(pilot.pause, lambda: app.state["cluster"].status == "ok")
        bar = str(app.screen.query_one("#context-bar").render())
        assert "prod" in bar and "read-only" in bar
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*"default", "enter")
        assert await until(pilot.pause, lambda: app.state["targets"].status == "ok")
