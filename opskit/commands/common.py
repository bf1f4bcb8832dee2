"""What every command shares: the context object, `run`, the common options, the
read-only guard and the one confirmation every destructive command uses. Commands
import this module, never `opskit.cli` (the entry point) or each other."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from opskit.errors import Declined, NeedsConfirmation, UsageError

if TYPE_CHECKING:
    from opskit.config import Loaded, Settings
    from opskit.http import RequestLog
    from opskit.plan import Plan
    from opskit.stack import Stack

T = TypeVar("T")

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
yes_option = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show the plan only.")


class LazyGroup(click.Group):
    """A group whose subcommands are "module:attribute" strings, imported when run."""

    def __init__(
        self, *args: object, lazy: dict[str, str], lazy_help: dict[str, str], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy = lazy
        self.lazy_help = lazy_help

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.lazy)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table: listing commands must not import them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, self.lazy_help[name]) for name in sorted(self.lazy)])


@dataclass
class App:
    """What every command gets: how to find the configuration, and the --debug switch."""

    config_path: Path | None = None
    context: str | None = None
    env_file: Path | None = None
    debug: bool = False
    refresh: float | None = None
    _loaded: Loaded | None = field(default=None, repr=False)

    def loaded(self) -> Loaded:
        if self._loaded is None:
            from opskit.config import load

            if self.context and "," in self.context:  # issue 19: only `status` takes several
                raise UsageError(f"--context {self.context}: several contexts: `status` only")

            self._loaded = load(self.config_path, self.context, self.env_file)
            for warning in self._loaded.warnings:
                print(f"opskit: warning: {warning}", file=sys.stderr)
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.loaded().settings

    def load_context(self, name: str) -> Settings:
        """Another context of the same configuration (the TUI's context switch)."""
        from opskit.config import load

        return load(self.config_path, name, self.env_file).settings

    def request_log(self) -> RequestLog | None:
        if not self.debug:
            return None
        from opskit.http import RequestLog

        return RequestLog()

    def stack(self) -> Stack:
        from opskit.stack import Stack

        return Stack(self.settings, self.request_log())


pass_app = click.make_pass_decorator(App)


def run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio  # here, not at the top: `opskit --help` does not need it (~50 ms)

    return asyncio.run(coro)


def writable(app: App, action: str) -> None:
    """Refuse a changing action on a context marked read_only."""
    if app.settings.read_only:
        raise UsageError(f"context {app.settings.context!r} is read-only: {action} refused")


def ask(question: str, yes: bool) -> bool | None:
    """The one way opskit asks: True with --yes or a yes at a terminal, False for a no,
    None when there is no terminal to ask (cron)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        return None
    return click.confirm(question, default=False, err=True)


def confirm(plan: Plan[Any, Any], yes: bool) -> None:
    """The confirmation of every destructive command, asked after the plan is shown:
    `--yes` goes on; a terminal is asked (default no; "no" exits with EXIT_DECLINED); with
    no terminal (cron) it refuses with EXIT_USAGE, so nothing is deleted unasked."""
    if plan.empty:
        return
    answer = ask(plan.question(), yes)
    if answer is None:
        raise NeedsConfirmation(f"{plan.question()} (not a terminal: pass --yes to confirm)")
    if not answer:
        raise Declined(f"{plan.title}: nothing changed")


# ------------------------------------------------------------------ Grafana commands
# (backup, restore, diff, export): the organisation option and the one way they run

org_option = click.option(
    "--org-id",
    type=click.IntRange(min=1),
    default=None,
    help="Organisation to work on (X-Grafana-Org-Id); default: the credentials' own.",
)


def describe_credentials(settings: Settings) -> str:
    """Which Grafana credentials were used (never their value)."""
    cfg = settings.grafana
    if cfg.token is not None:
        return "a service-account token (Bearer)"
    if cfg.username and cfg.password is not None:
        return f"basic auth as user {cfg.username!r}"
    return "no credentials (set GRAFANA_USER/GRAFANA_PASSWORD or grafana.token)"


def with_org(settings: Settings, org_id: int | None) -> Settings:
    if org_id is None:
        return settings
    grafana = settings.grafana.model_copy(update={"org_id": org_id})
    return settings.model_copy(update={"grafana": grafana})


def on_grafana(app: App, settings: Settings, work: Callable[[Stack], Awaitable[T]]) -> T:
    """Run `work` against Grafana; a 401/403 names the credentials that were used."""
    from opskit.errors import AuthFailed
    from opskit.stack import Stack

    async def go() -> T:
        async with Stack(settings, app.request_log()) as stack:
            return await work(stack)

    try:
        return run(go())
    except AuthFailed as exc:
        raise AuthFailed(
            "grafana", f"{exc.reason} (used {describe_credentials(settings)})"
        ) from None
