"""CLI tables on a narrow terminal: one line per row, cut with an ellipsis, errors by their
class first (docs/cli.md, "Narrow terminals"). The real CLI against the lab, made to see a
terminal of 80 or 100 columns the way rich detects one (TTY_COMPATIBLE=1, COLUMNS=N); a
pipe keeps the full text."""

from __future__ import annotations

import json
import re
import time
from io import StringIO
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from opskit.output import Brief, console, fit_widths, table
from tests.conftest import Lab, server_state, wait_for

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TRACE_ROW = re.compile(r"\s[0-9a-f]{16,32}$")  # a traces row ends with its whole trace id


def shown(lab: Lab, *args: str, columns: int = 80, terminal: bool = True) -> list[str]:
    """The command's stdout lines as a terminal of `columns` shows them (escapes removed);
    `terminal=False`: a pipe with COLUMNS set, as cron or `| grep` would run it."""
    extra = {"COLUMNS": str(columns)}
    if terminal:
        extra["TTY_COMPATIBLE"] = "1"
    proc = lab.opskit(*args, env=lab.env(**extra))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1, 2), proc.stderr
    return ANSI.sub("", proc.stdout).splitlines()


def assert_fits(lines: list[str], columns: int) -> None:
    wide = [line for line in lines if cell_len(line) > columns]
    assert not wide, f"{len(wide)} line(s) wider than {columns}: {wide[:3]}"


def steady(lab: Lab, *args: str, columns: int = 80) -> tuple[int, list[str]]:
    """How many rows --json has, and the table, read while that number stays the same
    (live data: an alert may start or stop firing in between)."""
    for _ in range(10):
        before = len(lab.opskit_json(*args))
        lines = shown(lab, *args, columns=columns)
        if len(lab.opskit_json(*args)) == before:
            return before, lines
        time.sleep(2)
    pytest.fail(f"opskit {' '.join(args)}: the number of rows kept changing")


@pytest.mark.parametrize("columns", [80, 100])
def test_down_targets_take_one_line_each_with_the_error_class(lab: Lab, columns: int) -> None:
    rows, lines = steady(lab, "targets", "--down", columns=columns)
    assert rows >= 1  # the lab's standing incident: the email-service is stopped
    assert_fits(lines, columns)
    assert lines[0].split()[:2] == ["job", "instance"]
    assert len(lines) - 1 == rows  # the header, then one line per target
    email = [line for line in lines if line.startswith("email-service")]
    assert email and email[0].rstrip().endswith("connection refused"), lines
    text = "\n".join(lines)
    assert "dial tcp" not in text and "Get " not in text  # the class, not Go's raw error


def test_the_raw_error_stays_on_a_wide_terminal_and_in_a_pipe(lab: Lab) -> None:
    wide = shown(lab, "targets", "--down", columns=250)
    assert len(wide) == 2 and "dial tcp" in wide[1] and "connection refused" in wide[1]
    # a pipe (COLUMNS or not) gets the table whole: one line per row, nothing cut
    piped = shown(lab, "targets", "--down", columns=80, terminal=False)
    assert len(piped) == 2 and "…" not in piped[1], piped
    raw = lab.opskit_json("targets", "--down")[0]["last_error"]
    assert piped[1].rstrip().endswith(" ".join(raw.split()))


@pytest.mark.parametrize("columns", [80, 100])
def test_alerts_one_line_per_alert(lab: Lab, columns: int) -> None:
    rows, lines = steady(lab, "alerts", columns=columns)
    assert rows >= 1
    assert_fits(lines, columns)
    assert lines[0].split()[0] == "alertname"
    assert len(lines) - 1 == rows


def test_indices_one_line_per_index(lab: Lab) -> None:
    rows, lines = steady(lab, "indices")
    assert rows > 100
    assert_fits(lines, 80)
    assert lines[-1] == f"{rows} indices"
    assert len(lines) - 2 == rows  # header, rows, the count


def failing_traces(lab: Lab) -> dict[str, Any]:
    """`opskit traces --json`, with a failing trace in Jaeger (one is made when there is
    none: Jaeger keeps its traces in memory, a test that restarts it loses them)."""
    data: dict[str, Any] = lab.opskit_json("traces")
    if data["failing"]:
        return data
    from tests.core.test_traces import request

    with server_state("email_service", True):
        wait_for(lambda: request("/health", "narrow-warmup") == 200, timeout=30)
        assert request("/api/fail", "narrow-tables") == 500
        data = wait_for(lambda: (d := lab.opskit_json("traces"))["failing"] and d, timeout=60)
    assert data, "the failing request never showed up in `opskit traces`"
    return data


@pytest.mark.parametrize("columns", [80, 100])
def test_traces_tables_one_line_per_row_with_whole_trace_ids(lab: Lab, columns: int) -> None:
    data = failing_traces(lab)
    lines = shown(lab, "traces", columns=columns)
    assert_fits(lines, columns)
    starts = {
        name: next(i for i, line in enumerate(lines) if line.startswith(name))
        for name in ("Services:", "Slowest traces", "Failing traces")
    }
    names = [s["service"] for s in data["services"]]
    first = starts["Services:"] + 2
    assert [line.split()[0] for line in lines[first : first + len(names)]] == names
    after = lines[first + len(names)]  # the next table's title or a note, not a wrapped row
    assert after.startswith(("Slowest traces", "* the trace limit")) or ":" in after, after
    for title, key in (("Slowest traces", "slowest"), ("Failing traces", "failing")):
        assert data[key], f"the lab has no {key} traces"
        assert lines[starts[title] + 1].split()[0] == "start"
        body = []
        for line in lines[starts[title] + 2 :]:
            if not line.strip() or line.startswith(("Failing traces", "Dependencies")):
                break
            body.append(line)
        # every line is a row that ends with the whole trace id: none wrapped
        assert body and all(TRACE_ROW.search(line) for line in body), body
        assert len(body) == len(data[key])  # both capped at the same limit


def test_health_shows_the_class_of_a_failing_service(lab: Lab) -> None:
    lines = shown(lab, "health")
    assert_fits(lines, 80)
    email = [line for line in lines if line.startswith("email-service")]
    assert email and email[0].rstrip().endswith("connection refused")
    assert len(lines) - 1 == len(lab.opskit_json("health"))


def test_json_is_unchanged_by_a_narrow_terminal(lab: Lab) -> None:
    for args in (("config", "show", "--json"), ("maintenance", "list", "--json")):
        narrow = lab.opskit(*args, env=lab.env(COLUMNS="40", TTY_COMPATIBLE="1"))
        piped = lab.opskit(*args)
        assert narrow.returncode == piped.returncode == 0, narrow.stderr
        assert narrow.stdout == piped.stdout
        json.loads(narrow.stdout)


# the fitting itself, on rich's Console as the CLI's (no lab needed)


def render(tb: Any, width: int, terminal: bool) -> list[str]:
    """`tb` printed on a console like opskit's stdout, `width` wide."""
    out = StringIO()
    cls = type(console())
    cls(file=out, width=width, force_terminal=terminal, color_system=None).print(tb)
    return out.getvalue().splitlines()


def sample() -> Any:
    tb = table("Targets", "job", "instance", "health", "last error", "labels")
    error = 'Get "http://10.0.0.7:9100/metrics": dial tcp 10.0.0.7:9100: connect: timeout'
    tb.add_row("node-exporter", "10.0.0.7:9100", "down", error, "team=infra\nzone=a")
    tb.add_row("api", "10.0.0.8:8080", "up", "", Brief("a=1,b=2,c=3,d=4", "a=1"))
    return tb


def test_a_narrow_terminal_gets_one_line_per_row_and_the_class() -> None:
    lines = render(sample(), 60, terminal=True)
    assert lines[0] == "Targets"
    assert len(lines) == 4 and all(cell_len(line) <= 60 for line in lines), lines
    assert lines[2].startswith("node-exporter  10.0.0.7:9100  down    timeout")
    assert "dial tcp" not in "\n".join(lines)
    assert lines[3].rstrip().endswith("a=1")  # the Brief form


def test_not_a_terminal_or_opskit_wide_shows_the_table_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = render(sample(), 60, terminal=False)
    assert len(whole) == 4 and "…" not in "".join(whole)
    assert "dial tcp 10.0.0.7:9100: connect: timeout  team=infra zone=a" in whole[2]
    assert whole[3].rstrip().endswith("a=1,b=2,c=3,d=4")
    monkeypatch.setenv("OPSKIT_WIDE", "1")
    assert render(sample(), 60, terminal=True) == whole
    monkeypatch.setenv("OPSKIT_WIDE", "0")
    assert render(sample(), 60, terminal=True) != whole


def test_another_console_gets_rich_s_own_layout() -> None:
    out = StringIO()
    Console(file=out, width=60, color_system=None).print(sample())
    assert len(out.getvalue().splitlines()) > 4  # wrapped, as rich does


def test_fit_widths_gives_way_text_first_then_errors_then_keys() -> None:
    kinds = ["key", "short", "error", "text"]
    natural, floors = [20, 6, 60, 40], [20, 4, 60, 40]
    assert fit_widths(natural, kinds, floors, 200) == natural
    assert fit_widths(natural, kinds, floors, 90) == [20, 6, 54, 10]  # the text first
    assert fit_widths(natural, kinds, floors, 56) == [20, 6, 20, 10]  # then the error
    assert fit_widths(natural, kinds, floors, 52) == [18, 4, 20, 10]  # short, then the key
    assert sum(fit_widths(natural, kinds, floors, 10)) == 10
