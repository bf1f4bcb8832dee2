"""`opskit alerts`, `opskit silence add|list|expire` (amtool's matcher syntax)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from opskit.clients.am_cluster import AlertmanagerCluster, PeerRow, Replication, read_peers
from opskit.commands.common import App, json_option, pass_app, run, writable
from opskit.durations import parse_duration
from opskit.errors import EXIT_OK, EXIT_UNREACHABLE, EXIT_WARNING, UsageError
from opskit.findings import Finding, exit_code
from opskit.matchers import Matcher, default_author, parse_matcher
from opskit.models import Alert, Membership, Silence
from opskit.output import ago, console, esc, print_json, styled, table
from opskit.stack import Stack


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
@click.option(
    "--peers",
    is_flag=True,
    help="One row per Alertmanager peer: its cluster view, alerts, silences.",
)
@json_option
@pass_app
def alerts(
    app: App,
    severities: tuple[str, ...],
    silenced: bool,
    inhibited: bool,
    filters: tuple[str, ...],
    peers: bool,
    as_json: bool,
) -> int:
    """Alerts in Alertmanager (firing and unsilenced unless asked); several
    `[alertmanager] urls` are one cluster, its alerts de-duplicated.

    Exit 0 none firing, 1 warnings firing, 2 a critical alert firing. With --peers:
    0 every peer answers and agrees, 1 one is down or they disagree, 3 none answers."""
    matchers = _matchers(filters)
    if peers:
        return _peers(app, as_json)

    async def go() -> tuple[list[Alert], Membership | None]:
        async with app.stack() as stack:
            am = stack.alertmanager
            found = await am.alerts(silenced, inhibited, matchers)
            membership = await am.read_membership() if isinstance(am, AlertmanagerCluster) else None
            return found, membership

    rows, membership = run(go())
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
        if membership is not None:  # one header line for a cluster
            console().print(_cluster_header(membership), soft_wrap=True)
        console().print(tb)
    return exit_code(
        Finding("critical" if a.severity == "critical" else "warning", a.alertname, "firing")
        for a in rows
        if a.state == "active"
    )


def _cluster_header(m: Membership) -> str:
    """'alertmanager cluster: 3/3 peers', with who is down and how many disagreements."""
    from opskit.summary import cluster_line

    style = "yellow" if m.degraded else "green"
    text = f"[bold]alertmanager cluster[/]: [{style}]{esc(cluster_line(m))}[/]"
    if m.disagreements:
        text += f"; {len(m.disagreements)} disagreement(s) (opskit alerts --peers)"
    return text


def _peers(app: App, as_json: bool) -> int:
    """`opskit alerts --peers`: each peer's own view, side by side."""

    async def go() -> tuple[list[PeerRow], Membership | None]:
        async with app.stack() as stack:
            am = stack.alertmanager
            if isinstance(am, AlertmanagerCluster):
                return await am.peer_rows(), await am.read_membership()
            return await read_peers([(app.settings.alertmanager.url, am)]), None

    rows, membership = run(go())
    disagreements = membership.disagreements if membership else []
    if as_json:
        print_json({"peers": rows, "disagreements": disagreements})
    else:
        tb = table(
            None, "url", "name", "cluster", "peers seen", "alerts", "silences", "reachable",
            kinds={"reachable": "error"},
        )  # fmt: skip
        for r in rows:

            def count(n: int | None) -> str:
                return "-" if n is None else str(n)

            tb.add_row(
                esc(r.url),
                esc(r.name[:12] or "-"),
                esc(r.cluster_status or "-"),
                count(r.peers_seen),
                count(r.alerts),
                count(r.silences),
                styled("ok") if r.ok else f"[bold red]{esc(r.error)}[/]",
            )
        console().print(tb)
        for sentence in disagreements:
            console().print(f"{styled('warning')}: {esc(sentence)}", soft_wrap=True)
    if not any(r.ok for r in rows):
        return EXIT_UNREACHABLE
    degraded = any(not r.ok for r in rows) or bool(disagreements)
    return EXIT_WARNING if degraded else EXIT_OK


def _replication(app: App, stack: Stack) -> Replication | None:
    am = stack.alertmanager
    return am.last_replication if isinstance(am, AlertmanagerCluster) else None


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

    async def go() -> tuple[str, Replication | None]:
        async with app.stack() as stack:
            silence_id = await stack.alertmanager.add_silence(
                parsed, starts, starts + length, author or default_author(), comment
            )
            return silence_id, _replication(app, stack)

    silence_id, replication = run(go())
    if as_json:
        print_json({"id": silence_id, "replication": replication})
    elif replication is None:
        console().print(silence_id)
    else:  # a cluster: created once, on one peer, then confirmed on the others
        console().print(
            f"created {silence_id} on {replication.origin}; {replication.summary()}",
            soft_wrap=True,
            markup=False,
        )
    return EXIT_OK if replication is None or replication.complete else EXIT_WARNING


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

    async def go() -> list[Replication | None]:
        async with app.stack() as stack:
            done = []
            for silence_id in ids:
                await stack.alertmanager.expire_silence(silence_id)
                done.append(_replication(app, stack))
            return done

    replications = run(go())
    for silence_id, replication in zip(ids, replications, strict=True):
        line = f"expired {silence_id}"
        if replication is not None:
            line += f" on {replication.origin}; {replication.summary()}"
        console().print(line, soft_wrap=True, markup=False)
    complete = all(r is None or r.complete for r in replications)
    return EXIT_OK if complete else EXIT_WARNING
