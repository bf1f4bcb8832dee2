"""`opskit traces [SERVICE]`: per service request rate, error rate and latency from
Jaeger's traces over a window; the slowest and the failing traces; the dependency
graph; `--trace ID` one trace's span tree (opskit.tracing, opskit.tasks.traces)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from opskit.commands.common import App, json_option, pass_app, run
from opskit.durations import format_duration, parse_duration
from opskit.errors import UsageError
from opskit.findings import Finding, exit_code
from opskit.output import console, esc, print_json, styled, table
from opskit.tracing import dependency_lines, ms, percent, tree_lines

if TYPE_CHECKING:
    from opskit.models_tracing import Trace, TracesOverview, TraceSummary


def _when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if at else "-"


@click.command()
@click.argument("service", required=False)
@click.option(
    "--window",
    default=None,
    help="How far back to read traces (default: [tracing] window, 1h).",
)
@click.option("--trace", "trace_id", help="Show one trace's span tree (by trace id).")
@json_option
@pass_app
def traces(
    app: App, service: str | None, window: str | None, trace_id: str | None, as_json: bool
) -> int:
    """Per service: request rate, error rate and latency p50/p95/p99 from Jaeger's
    traces over the window; the slowest and the failing traces; the service dependency
    graph. With --trace ID: that trace's spans (service, operation, duration, status,
    attributes).

    Exit 0 all error rates below [tracing] error_rate_warning, 1 above it, 2 above
    error_rate_critical, 3 when Jaeger could not be read."""
    from opskit.tasks import traces as tasks

    span = None
    if window is not None:
        try:
            span = parse_duration(window)
        except ValueError as exc:
            raise UsageError(f"--window: {exc}") from None

    if trace_id:

        async def one() -> Trace:
            async with app.stack() as stack:
                return await tasks.trace(stack, trace_id)

        found = run(one())
        if as_json:
            print_json(found)
        else:
            show_tree(found)
        return 0

    async def go() -> TracesOverview:
        async with app.stack() as stack:
            return await tasks.overview(stack, service, span)

    result = run(go())
    if as_json:
        print_json(result)
    else:
        show(result)
    return exit_code(
        Finding(s.state, s.service, f"error rate {percent(s.error_rate)}%") for s in result.services
    )


def failing_span(t: TraceSummary) -> str:
    """The failing span's `service operation: message` in red; on a narrow terminal only the
    message (by its class first) when the span is the trace's own service and operation."""
    from opskit.errorclass import headline
    from opskit.output import Brief

    message = t.error_message or "error"
    full = f"[red]{esc(message)}[/]"
    own = f"{t.service} {t.operation}: "
    if message.startswith(own) and message != own:
        return Brief(full, f"[red]{esc(headline(message.removeprefix(own)))}[/]")
    return full


def show(o: TracesOverview) -> None:
    from opskit.output import stamp

    out = console()
    span = format_duration(o.end - o.start)
    tb = table(
        f"Services: traces of the last {span} from {o.jaeger_url}",
        "service",
        "requests",
        "req/s",
        "errors",
        "error %",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "last trace",
        "state",
    )
    for s in o.services:
        if s.error:
            tb.add_row(esc(s.service), "-", "-", "-", "-", "-", "-", "-", "-", styled("unknown"))
            continue
        rate = f"{s.rate_per_s:.2f}" + ("*" if s.truncated else "")
        tb.add_row(
            esc(s.service),
            str(s.requests),
            rate,
            str(s.errors),
            percent(s.error_rate),
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            stamp(s.last_trace),
            styled(s.state),
        )
    out.print(tb if o.services else "[dim]Jaeger has no services (no traces stored)[/]")
    for s in o.services:
        if s.error:
            out.print(f"[bold red]{esc(s.service)}: {esc(s.error)}[/]")
    if any(s.truncated for s in o.services):
        out.print(
            "[dim]* the trace limit ([tracing] limit) was reached: figures of the newest "
            "traces, the rate over the time they cover[/]"
        )
    _traces("Slowest traces", o.slowest)
    _traces("Failing traces (newest first)", o.failing)
    out.print(f"\n[bold]Dependencies[/] [dim]({esc(o.dependencies_source or 'none')})[/]")
    for line in dependency_lines(o.dependencies) or ["(no calls between services seen)"]:
        out.print(esc(line), highlight=False)
    out.print("\n[dim]opskit traces --trace ID shows a trace's spans[/]")


def _traces(title: str, rows: list[TraceSummary]) -> None:
    out = console()
    if not rows:
        out.print(f"[dim]{title}: none[/]")
        return
    from opskit.output import stamp

    tb = table(title, "start", "duration ms", "service", "operation", "spans", "error", "trace id")
    for t in rows:
        tb.add_row(
            stamp(t.start),
            ms(t.duration_ms),
            esc(t.service),
            esc(t.operation),
            str(t.spans),
            failing_span(t) if t.errors else "",
            t.trace_id,
        )
    out.print(tb)


def show_tree(t: Trace) -> None:
    out = console()
    state = "[bold red]error[/]" if t.error else "[green]ok[/]"
    out.print(
        f"[bold]trace {t.trace_id}[/]  {esc(t.service)} {esc(t.operation)}  "
        f"{ms(t.duration_ms)} ms  {len(t.spans)} spans  {state}  {_when(t.start)}"
    )
    for line, attrs, error in tree_lines(t):
        style = "bold red" if error else ""
        out.print(f"[{style}]{esc(line)}[/]" if style else esc(line), highlight=False)
        if attrs:
            out.print(f"[dim]{esc(attrs)}[/]", highlight=False)
