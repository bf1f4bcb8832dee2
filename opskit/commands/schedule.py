"""`opskit schedule run|crontab|systemd`: run the maintenance cadences at their
`[schedule]` times, or print entries for cron or systemd to do it (docs/maintenance.md).
Never imports textual."""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
from pathlib import Path

import click

from opskit.commands.common import App, pass_app
from opskit.output import print_json
from opskit.when import CADENCES, When, parse_when


def slots(app: App) -> dict[str, When]:
    cfg = app.settings.schedule
    return {c: parse_when(c, getattr(cfg, c)) for c in CADENCES}


def opskit_command(app: App) -> list[str]:
    """How cron or systemd should start opskit, with this invocation's global options."""
    beside = Path(sys.executable).parent / "opskit"  # the venv's entry point
    exe = str(beside) if beside.is_file() else shutil.which("opskit")
    base = [exe] if exe else [sys.executable, "-m", "opskit"]
    for flag, value in (
        ("--config", app.loaded().path),
        ("--context", app.context),
        ("--env-file", app.env_file),
    ):
        if value is not None:
            base += [flag, str(Path(value).resolve()) if flag != "--context" else str(value)]
    return base


def maintenance_line(app: App, cadence: str) -> str:
    wait = int(app.settings.schedule.lock_wait.total_seconds())
    return shlex.join([*opskit_command(app), "maintenance", cadence, "--yes", "--wait", str(wait)])


@click.group(name="schedule")
def schedule() -> None:
    """Run the maintenance checklists on a schedule."""


@schedule.command()
@click.option("--json", "as_json", is_flag=True, help="Log lines as JSON objects.")
@pass_app
def run(app: App, as_json: bool) -> int:
    """Run in the foreground: each cadence at its [schedule] time, one instance at a time.
    SIGTERM or Ctrl-C stops it cleanly (after the job in progress)."""
    import signal

    from opskit.config import state_path
    from opskit.tasks.locking import exclusive
    from opskit.tasks.maintenance.runner import execute
    from opskit.tasks.scheduler import MaintenanceScheduler

    settings = app.settings
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _json_formatter()
        if as_json
        else logging.Formatter("%(asctime)s opskit schedule: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    log = logging.getLogger("opskit.schedule")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    wait = settings.schedule.lock_wait.total_seconds()

    def job(cadence: str) -> str:
        report = execute(
            settings,
            cadence,
            apply=True,
            lock_wait=wait,
            config_path=app.loaded().path,
            env_file=app.env_file,
        )
        return f"exit {report.exit_code}, {report.published or 'not published'}"

    with exclusive(state_path() / "schedule.lock", "opskit scheduler"):
        sched = MaintenanceScheduler(slots(app), job)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: sched.stop())
        upcoming = ", ".join(f"{c} {t:%Y-%m-%d %H:%M}" for c, t in sched.next_runs().items())
        log.info("scheduler started (pid lock held); next: %s", upcoming)
        sched.run_forever()
        log.info("scheduler stopped")
    return 0


def _json_formatter() -> logging.Formatter:
    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps(
                {"time": record.created, "level": record.levelname, "message": record.getMessage()}
            )

    return JsonFormatter()


@schedule.command()
@click.option(
    "--log",
    "log_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append output here (default: the state dir's maintenance.log).",
)
@click.option("--json", "as_json", is_flag=True, help="The entries as JSON.")
@pass_app
def crontab(app: App, log_file: Path | None, as_json: bool) -> int:
    """Print crontab lines for the three cadences (install with `crontab -e`)."""
    from opskit.config import state_path

    target = log_file or state_path() / "maintenance.log"
    entries = {
        c: f"{w.cron()} {maintenance_line(app, c)} >> {shlex.quote(str(target))} 2>&1"
        for c, w in slots(app).items()
    }
    if as_json:
        print_json(entries)
        return 0
    print("# opskit maintenance (opskit schedule crontab); times are the machine's local time")
    for line in entries.values():
        print(line)
    return 0


SERVICE = """[Unit]
Description=opskit %i maintenance checklist
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart={command}
"""

TIMER = """[Unit]
Description=opskit {cadence} maintenance ({spec})

[Timer]
OnCalendar={calendar}
Persistent=true
Unit=opskit-maintenance@{cadence}.service

[Install]
WantedBy=timers.target
"""


@schedule.command()
@click.option("--user", "user_units", is_flag=True, help="Paths for user units (systemctl --user).")
@click.option("--json", "as_json", is_flag=True, help="The unit files as JSON {path: text}.")
@pass_app
def systemd(app: App, user_units: bool, as_json: bool) -> int:
    """Print a service template and one timer per cadence."""
    where = "~/.config/systemd/user" if user_units else "/etc/systemd/system"
    wait = int(app.settings.schedule.lock_wait.total_seconds())
    command = shlex.join([*opskit_command(app), "maintenance"]) + f" %i --yes --wait {wait}"
    files = {f"{where}/opskit-maintenance@.service": SERVICE.format(command=command)}
    for cadence, when in slots(app).items():
        spec = getattr(app.settings.schedule, cadence)
        files[f"{where}/opskit-maintenance-{cadence}.timer"] = TIMER.format(
            cadence=cadence, spec=spec, calendar=when.systemd()
        )
    if as_json:
        print_json(files)
        return 0
    ctl = "systemctl --user" if user_units else "systemctl"
    for path, text in files.items():
        print(f"# {path}\n{text}")
    timers = " ".join(f"opskit-maintenance-{c}.timer" for c in CADENCES)
    print(f"# then: {ctl} daemon-reload && {ctl} enable --now {timers}")
    return 0
