"""`opskit backup ...` and `opskit restore ...`: groups whose subcommands live in the
backends' command modules and are imported only when run (no module imports another)."""

from __future__ import annotations

import click

from opskit.commands.common import LazyGroup

BACKUPS = {
    "elasticsearch": "opskit.commands.es_backup:backup_elasticsearch",
    "grafana": "opskit.commands.grafana:backup_grafana_cmd",
}
RESTORES = {
    "elasticsearch": "opskit.commands.es_backup:restore_elasticsearch",
    "grafana": "opskit.commands.grafana:restore_grafana_cmd",
}
BACKUP_HELP = {
    "elasticsearch": "Take a verified snapshot of the configured indices.",
    "grafana": "Back up Grafana's folders, dashboards and data sources to a directory.",
}
RESTORE_HELP = {
    "elasticsearch": "Restore indices from a snapshot (renamed, or closing what it replaces).",
    "grafana": "Restore a Grafana backup (plan first; idempotent).",
}


@click.group(cls=LazyGroup, lazy=BACKUPS, lazy_help=BACKUP_HELP)
def backup() -> None:
    """Back up a backend (grafana, elasticsearch)."""


@click.group(cls=LazyGroup, lazy=RESTORES, lazy_help=RESTORE_HELP)
def restore() -> None:
    """Restore a backend from a backup (grafana, elasticsearch)."""
