"""`opskit status` over several contexts (issue 19): `--context prod,staging` or
`--all-contexts` give one report, a row per context, and one exit code (the worst over
the contexts, by the findings rule: opskit/fleet.py)."""

from __future__ import annotations

from typing import Any

from opskit.commands.common import App, run
from opskit.errors import ConfigError, UsageError
from opskit.output import console, esc, print_json, styled, table

SEVERITY_ORDER = ("critical", "warning", "info", "none")


def several(app: App, contexts: str | None, all_contexts: bool) -> list[str] | None:
    """The contexts `status` was asked for when more than one is meant (`--context a,b`
    on `status` or on the group, `--all-contexts`), or None for the single-context
    status; a single name given to `status --context` becomes the app's context."""
    if contexts is not None and all_contexts:
        raise UsageError("--context and --all-contexts: give one of them")
    given = contexts if contexts is not None else app.context
    if all_contexts:
        names = known_contexts(app)
        if not names:
            raise UsageError("--all-contexts: the configuration defines no [contexts.NAME]")
        return names
    if given is None:
        return None
    names = list(dict.fromkeys(n.strip() for n in given.split(",") if n.strip()))
    if not names:
        raise UsageError("--context: no context named")
    if len(names) == 1:
        if contexts is not None:  # `status --context NAME`: that one context
            app.context = names[0]
            app._loaded = None
        return None if "," not in given else names
    return names


def known_contexts(app: App) -> list[str]:
    """The configuration's [contexts.NAME] tables, sorted."""
    from opskit.config import load

    return sorted(load(app.config_path, "default", app.env_file).contexts)


def fleet_status(app: App, names: list[str], as_json: bool) -> int:
    from opskit.fleet import Fleet

    known = known_contexts(app)
    unknown = [n for n in names if n != "default" and n not in known]
    if unknown:
        raise ConfigError(
            f"context {', '.join(map(repr, unknown))} is not defined "
            f"(contexts: {', '.join(known) or 'none defined'})"
        )
    settings = {name: app.load_context(name) for name in names}

    async def go() -> Any:
        async with Fleet(settings, full=True, log=app.request_log()) as fleet:
            await fleet.refresh()
            return fleet

    fleet = run(go())
    rows = [fleet.rows[n] for n in names]
    code = fleet.exit_code
    if as_json:
        print_json({"exit_code": code, "contexts": [r.to_json() for r in rows]})
        return int(code)
    out = console()
    t = table(
        None,
        "context",
        "prometheus",
        "alertmanager",
        "elasticsearch",
        "grafana",
        "targets down#",
        "alerts",
        "es health",
        "clusters degraded",
        "exit#",
        kinds={
            "prometheus": "error",
            "alertmanager": "error",
            "elasticsearch": "error",
            "grafana": "error",
            "alerts": "text",
            "clusters degraded": "text",
        },
    )
    for r in rows:
        states = []
        for backend in ("prometheus", "alertmanager", "elasticsearch", "grafana"):
            s = r.sources.get(backend)
            if s is None:
                states.append("-")
            else:
                states.append("ok" if s.ok else f"[bold red]{esc(s.error_class)}[/]")
        name = f"[{r.colour}]{esc(r.context)}[/]" + (" [dim](read-only)[/]" if r.read_only else "")
        alerts = ", ".join(f"{n} {styled(k)}" for k, n in sorted_alerts(r.alerts)) or "none"
        t.add_row(
            name,
            *states,
            "-" if r.targets_down is None else str(r.targets_down),
            alerts,
            styled(r.es_status) if r.es_status else "-",
            esc(", ".join(r.clusters_degraded)) or "-",
            str(r.exit_code),
        )
    out.print(t)
    problems = [(r, f) for r in rows for f in r.findings if f.actionable]
    if problems:
        ft = table("Findings", "context", "severity", "source", "finding")
        for r, f in problems:
            ft.add_row(
                f"[{r.colour}]{esc(r.context)}[/]",
                styled(f.severity),
                f.source,
                esc(f"{f.subject}: {f.summary}"),
            )
        out.print(ft)
    else:
        out.print("[green]no findings[/]")
    out.print(f"[bold]exit[/] {code} (the worst of {len(rows)} contexts)")
    return int(code)


def sorted_alerts(by_severity: dict[str, int]) -> list[tuple[str, int]]:
    def rank(k: str) -> int:
        return SEVERITY_ORDER.index(k) if k in SEVERITY_ORDER else len(SEVERITY_ORDER)

    return sorted(by_severity.items(), key=lambda kv: (rank(kv[0]), kv[0]))
