"""`opskit backup ...` and `opskit restore ...`: click groups shared by the backends.

The `grafana` subcommands live in opskit.commands.grafana (registered at the bottom).
The `elasticsearch` subcommands come from opskit.commands.es_backup (issue 5), which does
`from opskit.commands.backup import backup, restore` and decorates its functions with
`@backup.command("elasticsearch")` / `@restore.command("elasticsearch")`; it is imported
at the bottom of this file, so either module may be missing without breaking the other.
"""

from __future__ import annotations

import click


@click.group()
def backup() -> None:
    """Back up a backend (grafana, elasticsearch)."""


@click.group()
def restore() -> None:
    """Restore a backend from a backup (grafana, elasticsearch)."""


# Subcommands register themselves on the groups above when imported.
try:  # grafana subcommands (issue 6); absent until that module exists
    from opskit.commands import grafana as _grafana  # noqa: F401
except ImportError as exc:
    if exc.name not in ("opskit.commands.grafana", "opskit.commands"):
        raise

try:  # elasticsearch subcommands (issue 5); absent until that module exists
    from opskit.commands import es_backup as _es_backup  # noqa: F401
except ModuleNotFoundError as exc:
    if exc.name != "opskit.commands.es_backup":
        raise
