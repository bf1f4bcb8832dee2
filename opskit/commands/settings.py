"""`opskit config show`, `opskit context list|use|show`."""

from __future__ import annotations

from datetime import timedelta

import click

from opskit.commands.common import App, json_option, pass_app
from opskit.config import current_context_file, flatten, section_of, source_of
from opskit.durations import format_duration
from opskit.errors import EXIT_OK, UsageError
from opskit.output import console, esc, print_json, table


def _show(app: App, as_json: bool) -> int:
    """Every key of every section of Settings, its value (secrets masked) and its source."""
    loaded = app.loaded()
    rows = [(k, v, source_of(loaded.sources, k)) for k, v in flatten(loaded.settings)]
    if as_json:
        print_json(
            {
                "context": loaded.settings.context,
                "config_file": str(loaded.path) if loaded.path else None,
                "settings": [
                    {"key": k, "section": section_of(k), "value": v, "source": s}
                    for k, v, s in rows
                ],
            }
        )
        return EXIT_OK
    out = console()
    out.print(f"[bold]config file[/] {esc(loaded.path or '(none: built-in defaults)')}")
    sections: dict[str, list[tuple[str, object, str]]] = {}
    for key, value, source in rows:
        # a top-level scalar, or a section: an empty one (`retention`, `[]`) is one row
        nested = "." in key or isinstance(value, list | dict)
        section = section_of(key) if nested else "(top level)"
        sections.setdefault(section, []).append((key, value, source))
    for section, entries in sections.items():
        title = esc(f"[{section}]") if section != "(top level)" else section
        tb = table(title, "key", "value", "source")
        tb.columns[0].no_wrap = True
        tb.columns[1].justify = "left"
        tb.columns[1].overflow = "fold"
        tb.columns[2].overflow = "fold"
        for key, value, source in entries:
            tb.add_row(esc(key), esc(_display(value)), esc(source))
        out.print(tb)
        out.print()
    return EXIT_OK


def _display(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return "(none)"  # an empty table: a filled one is a row per key
    return str(value)


@click.group()
def config() -> None:
    """The effective configuration."""


@config.command("show")
@json_option
@pass_app
def config_show(app: App, as_json: bool) -> int:
    """Every effective setting and where it came from; secrets masked."""
    return _show(app, as_json)


@click.group()
def context() -> None:
    """Contexts: named sets of endpoints and credentials, as kubectl has them."""


@context.command("list")
@json_option
@pass_app
def context_list(app: App, as_json: bool) -> int:
    """Defined contexts; the current one is marked."""
    loaded = app.loaded()
    current = loaded.settings.context
    names = ["default", *sorted(loaded.contexts)]
    rows = [
        {
            "name": n,
            "current": n == current,
            "read_only": bool(loaded.contexts.get(n, {}).get("read_only", False))
            if n != "default"
            else bool(loaded.raw.get("read_only", False)),
        }
        for n in names
    ]
    if as_json:
        print_json(rows)
        return EXIT_OK
    for r in rows:
        mark = "*" if r["current"] else " "
        ro = "  (read-only)" if r["read_only"] else ""
        console().print(f"{mark} {esc(r['name'])}{ro}")
    return EXIT_OK


@context.command("use")
@click.argument("name")
@pass_app
def context_use(app: App, name: str) -> int:
    """Make NAME the current context (stored in opskit's XDG state dir)."""
    loaded = app.loaded()
    if name != "default" and name not in loaded.contexts:
        known = ", ".join(["default", *sorted(loaded.contexts)])
        raise UsageError(f"no context {name!r} (known: {known})")
    path = current_context_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(name + "\n")
    console().print(f"current context: {name}")
    return EXIT_OK


@context.command("show")
@json_option
@pass_app
def context_show(app: App, as_json: bool) -> int:
    """The current context's effective settings, secrets masked."""
    return _show(app, as_json)
