"""`opskit alerts`, `opskit silence add|list|expire` (amtool's matcher syntax)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from opskit.commands.common import App, json_option, pass_app, run, writable
from opskit.durations import parse_duration
from opskit.errors import EXIT_OK, UsageError
from opskit.findings import Finding, exit_code
from opskit.matchers import Matcher, default_author, parse_matcher
from opskit.models import Alert, Silence
from opskit.output import ago, console, esc, print_json, styled, table


def _matchers(texts: tuple[str, ...]) -> list[Matcher]:
    try:
        return [parse_matcher(t) for t in texts]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


@click.command()
@click.option("--severity", "severities", multiple=True, help="Only this severity (repeatable).")
@click.option("--silenced", is_flag=True, help="Include silenced alerts.")
@click.option("--inhibited", is_flag=True, help="Include inhibited alerts.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="MATCHER",
    help='Label matcher as amtool takes it: alertname=X, severity=~"crit.*".',
)
@json_option
@pass_app
def alerts(
    app: App,
    severities: tuple[str, ...],
    silenced: bool,
    inhibited: bool,
    filters: tuple[str, ...],
    as_json: bool,
) -> int:
    """Alerts in Alertmanager (firing and unsilenced unless asked).

    Exit 0 none firing, 1 warnings firing, 2 a critical alert firing."""
    matchers = _matchers(filters)

    async def go() -> list[Alert]:
        async with app.stack() as stack:
            return await stack.alertmanager.alerts(silenced, inhibited, matchers)

    rows = run(go())
    if severities:
        rows = [a for a in rows if a.severity in severities]
    rows.sort(
        key=lambda a: (
            a.severity != "critical",
            a.alertname,
            a.starts_at or datetime.min.replace(tzinfo=UTC),
        )
    )
    if as_json:
        print_json(rows)
    else:
        tb = table(None, "alertname", "severity", "state", "since", "labels", "summary")
        for a in rows:
            state = "silenced" if a.silenced else "inhibited" if a.inhibited else a.state
            extra = {k: v for k, v in a.labels.items() if k not in ("alertname", "severity")}
            tb.add_row(
                esc(a.alertname),
                styled("critical" if a.severity == "critical" else "warning")
                if a.severity in ("critical", "warning")
                else esc(a.severity),
                state,
                ago(a.starts_at),
                esc(",".join(f"{k}={v}" for k, v in sorted(extra.items()))),
                esc(a.annotations.get("summary", "")),
            )
        console().print(tb)
    return exit_code(
        Finding("critical" if a.severity == "critical" else "warning", a.alertname, "firing")
        for a in rows
        if a.state == "active"
    )


@click.group()
def silence() -> None:
    """Alertmanager silences."""


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", default="1h", show_default=True, help="How long, e.g. 2h, 1d.")
@click.option("--comment", required=True, help="Why (shown to everyone in Alertmanager).")
@click.option("--author", default=None, help="Who (default: user@host).")
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ...}.')
@pass_app
def silence_add(
    app: App,
    matchers: tuple[str, ...],
    duration: str,
    comment: str,
    author: str | None,
    as_json: bool,
) -> int:
    """Silence alerts matching MATCHERS (amtool syntax; a bare word is alertname=word)."""
    parsed = _matchers(matchers)
    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise UsageError(f"--duration: {exc}") from None
    if not comment.strip():
        raise UsageError("--comment must not be empty")
    if all(
        (m.is_regex and m.value in (".*", "")) or (not m.is_equal and m.value == "") for m in parsed
    ):
        raise UsageError("these matchers would silence every alert; name at least one label")
    writable(app, "silence add")
    starts = datetime.now(UTC)

    async def go() -> str:
        async with app.stack() as stack:
            return await stack.alertmanager.add_silence(
                parsed, starts, starts + length, author or default_author(), comment
            )

    silence_id = run(go())
    if as_json:
        print_json({"id": silence_id})
    else:
        console().print(silence_id)
    return EXIT_OK


@silence.command("list")
@click.option("--expired", is_flag=True, help="Include expired silences.")
@json_option
@pass_app
def silence_list(app: App, expired: bool, as_json: bool) -> int:
    """Active and pending silences."""

    async def go() -> list[Silence]:
        async with app.stack() as stack:
            return await stack.alertmanager.silences()

    rows = [s for s in run(go()) if expired or s.state != "expired"]
    rows.sort(key=lambda s: (s.state, s.ends_at or datetime.max.replace(tzinfo=UTC)))
    if as_json:
        print_json(rows)
    else:
        tb = table(None, "id", "state", "matchers", "ends", "created by", "comment")
        for s in rows:
            ends = s.ends_at.strftime("%Y-%m-%d %H:%M UTC") if s.ends_at else "-"
            tb.add_row(
                s.id, s.state, esc(" ".join(s.matchers)), ends, esc(s.created_by), esc(s.comment)
            )
        console().print(tb)
    return EXIT_OK


@silence.command("expire")
@click.argument("ids", nargs=-1, required=True)
@pass_app
def silence_expire(app: App, ids: tuple[str, ...]) -> int:
    """Expire the silences with these IDs."""
    writable(app, "silence expire")

    async def go() -> None:
        async with app.stack() as stack:
            for silence_id in ids:
                await stack.alertmanager.expire_silence(silence_id)

    run(go())
    for silence_id in ids:
        console().print(f"expired {silence_id}")
    return EXIT_OK
