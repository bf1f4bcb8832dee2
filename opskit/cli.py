"""The `opskit` command line. Commands load lazily so `opskit --help` stays fast and the
paths cron runs never import textual."""

from __future__ import annotations

import sys
from pathlib import Path

# httpx's package imports its own command-line client (`httpx._main`: rich, pygments and
# click, ~70 ms) whenever those are installed; opskit never runs it. A None entry makes
# that optional import fail at once, exactly as where they are not installed (httpx then
# defines a stub `main`). Before any `import httpx`: the entry point is the first import.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import click  # noqa: E402

from opskit import __version__  # noqa: E402
from opskit.commands.common import App, LazyGroup  # noqa: E402
from opskit.errors import (  # noqa: E402
    EXIT_DECLINED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    OpskitError,
)

# command name -> "module:attribute"; the module is imported only when the command runs.
COMMANDS = {
    "status": "opskit.commands.overview:status",
    "health": "opskit.commands.overview:health",
    "queues": "opskit.commands.overview:queues",
    "targets": "opskit.commands.prom:targets",
    "rules": "opskit.commands.prom:rules",
    "prometheus": "opskit.commands.prom:prometheus",
    "alerts": "opskit.commands.alerting:alerts",
    "incident": "opskit.commands.incident:incident",
    "traces": "opskit.commands.traces:traces",
    "silence": "opskit.commands.alerting:silence",
    "indices": "opskit.commands.es:indices",
    "cluster": "opskit.commands.es:cluster",
    "config": "opskit.commands.settings:config",
    "context": "opskit.commands.settings:context",
    "backups": "opskit.commands.backups:backups",
    "doctor": "opskit.commands.doctor:doctor",
    "backup": "opskit.commands.backup:backup",
    "restore": "opskit.commands.backup:restore",
    "snapshots": "opskit.commands.es_backup:snapshots",
    "retention": "opskit.commands.retention:retention",
    "maintenance": "opskit.commands.maintenance:maintenance",
    "schedule": "opskit.commands.schedule:schedule",
    "drill": "opskit.commands.drill:drill",
    "record": "opskit.commands.record:record",
    "diff": "opskit.commands.grafana_sync:diff",
    "export": "opskit.commands.grafana_sync:export",
}
HELP = {
    "status": "One summary of the whole stack; exit code says how it is.",
    "health": "Every configured service's health endpoint, with latency.",
    "queues": "Queue depths against their thresholds.",
    "targets": "Prometheus scrape targets, with last error and scrape duration.",
    "rules": "Prometheus alerting and recording rules.",
    "prometheus": "Prometheus admin actions (reload).",
    "alerts": "Alerts in Alertmanager.",
    "incident": "One alert's evidence: history, targets, rule, logs, queues, dashboards.",
    "traces": "Jaeger's traces: per service rate, errors, latency; slowest, failing, deps.",
    "silence": "Add, list and expire Alertmanager silences.",
    "indices": "Elasticsearch indices with health, docs, size and age.",
    "cluster": "Elasticsearch cluster health, nodes and shards.",
    "config": "Show the effective configuration and where each value came from.",
    "context": "List, show and switch contexts (clusters).",
    "backups": "List and prune local Grafana backups.",
    "doctor": "The README's troubleshooting guide, automated: what is wrong, what to do.",
    "backup": "Back up a backend (elasticsearch snapshot, grafana).",
    "restore": "Restore a backend from a backup (elasticsearch snapshot, grafana).",
    "snapshots": "List, delete and prune Elasticsearch snapshots.",
    "retention": "Index retention policies (plan, apply) and Prometheus retention sizing.",
    "maintenance": "Weekly, monthly and quarterly checklists: checks, reports, metrics.",
    "schedule": "Run the maintenance schedule, or print crontab / systemd entries.",
    "drill": "Restore drills: restore backups into scratch space, compare, clean up.",
    "record": "Record the live state headless, for `opskit --replay FILE`.",
    "diff": "What changed in the live Grafana since a backup (exit 1: it differs).",
    "export": "Export Grafana as provisioning files (dashboards JSON + YAML) for git.",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    lazy_help=HELP,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (default: $OPSKIT_CONFIG, then the XDG config dir).",
)
@click.option("--context", help="Context (cluster) to use, as defined in the config.")
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A .env file with the README's variables (ELASTICSEARCH_PASSWORD, ...).",
)
@click.option("--debug", is_flag=True, help="Tracebacks and a request log on stderr.")
@click.option(
    "--refresh",
    type=float,
    default=None,
    help="TUI refresh interval in seconds (overrides config).",
)
@click.option(
    "--record",
    "record_to",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[FILE]",
    help="Record the TUI's polls (default file: the XDG state dir's recordings/).",
)
@click.option(
    "--replay",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Open the TUI read-only on a recording (`opskit record`), with a time cursor.",
)
@click.version_option(__version__, prog_name="opskit")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: Path | None,
    context: str | None,
    env_file: Path | None,
    debug: bool,
    refresh: float | None,
    record_to: str | None,
    replay: Path | None,
) -> int | None:
    """opskit: the operator's companion for Prometheus, Alertmanager, Elasticsearch and
    Grafana. With no command, opens the live TUI (on a terminal; otherwise `status`)."""
    app = App(config_path, context, env_file, debug, refresh)
    ctx.obj = app
    if ctx.invoked_subcommand is not None:
        if record_to is not None or replay is not None:
            raise click.UsageError("--record and --replay open the TUI: give no command")
        return None
    if record_to is not None and replay is not None:
        raise click.UsageError("--record and --replay cannot be used together")
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    if record_to is not None and not terminal:
        raise click.UsageError(
            "--record records the TUI (a terminal): headless, use `opskit record`"
        )
    if replay is None and not terminal:
        from opskit.commands.overview import status

        result: int | None = ctx.invoke(status)
        return result
    tui(app, record_to=record_to, replay=replay)
    return 0


def tui(app: App, record_to: str | None = None, replay: Path | None = None) -> None:
    """Open the Textual app (textual is imported only here). `record_to` ("" for the
    default file) records every poll; `replay` opens a recording instead of polling."""
    from opskit.screens.app import create_app

    loaded = app.loaded()
    record = None
    if record_to is not None:
        from opskit.record import default_file

        record = Path(record_to) if record_to else default_file(loaded.settings.context)
    create_app(
        loaded.settings,
        refresh=app.refresh,
        contexts=sorted(loaded.contexts),
        load_context=app.load_context,
        record=record,
        replay=replay,
    ).run()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        result = cli.main(args=args, prog_name="opskit", standalone_mode=False)
    except click.exceptions.Abort:
        print("opskit: aborted", file=sys.stderr)
        sys.exit(EXIT_DECLINED)
    except click.ClickException as exc:  # bad arguments: click's own message
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OpskitError as exc:
        if "--debug" in args:
            import traceback

            traceback.print_exc()
        print(f"opskit: {exc.title}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("opskit: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # an opskit bug: still one line unless --debug
        if "--debug" in args:
            raise
        print(
            f"opskit: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(result if isinstance(result, int) else 0)
