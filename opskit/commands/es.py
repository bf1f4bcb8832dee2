"""`opskit indices`, `opskit cluster`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import click

from opskit.commands.common import App, json_option, pass_app, run
from opskit.errors import EXIT_CRITICAL, EXIT_OK, EXIT_WARNING
from opskit.models import ClusterHealth, EsNode, Index
from opskit.models_es import NODE_HEADERS, node_cells
from opskit.output import ago, console, esc, human_bytes, print_json, styled, table

SORTS = {
    "name": (lambda i: i.name, False),
    "size": (lambda i: i.store_size_bytes, True),
    "docs": (lambda i: i.docs_count, True),
    "age": (lambda i: i.creation_date or datetime.max.replace(tzinfo=UTC), False),
}


@click.command()
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    default=("*",),
    show_default=True,
    help="Index name pattern (Elasticsearch wildcards; repeatable).",
)
@click.option(
    "--health",
    "healths",
    multiple=True,
    type=click.Choice(["green", "yellow", "red"]),
    help="Only this health.",
)
@click.option(
    "--sort",
    "sort_by",
    type=click.Choice(sorted(SORTS)),
    default="name",
    show_default=True,
    help="Sort key (size and docs descending, age oldest first).",
)
@json_option
@pass_app
def indices(
    app: App, patterns: tuple[str, ...], healths: tuple[str, ...], sort_by: str, as_json: bool
) -> int:
    """Indices with health, status, docs, size and age (hidden and system indices only
    when named). Exit 1 when a shown index is yellow, 2 when one is red."""

    async def go() -> list[Index]:
        async with app.stack() as stack:
            return await stack.elasticsearch.indices(",".join(patterns))

    rows = run(go())
    if healths:
        rows = [i for i in rows if i.health in healths]
    key, reverse = SORTS[sort_by]
    rows.sort(key=key, reverse=reverse)
    if as_json:
        print_json(rows)
    else:
        tb = table(None, "index", "health", "status", "docs", "size", "pri#", "rep#", "age")
        for i in rows:
            tb.add_row(
                esc(i.name),
                styled(i.health) if i.health else "-",
                i.status,
                str(i.docs_count),
                human_bytes(i.store_size_bytes),
                str(i.primaries),
                str(i.replicas),
                ago(i.creation_date).removesuffix(" ago"),
            )
        console().print(tb)
        console().print(f"{len(rows)} indices", style="dim")
    healths_seen = {i.health for i in rows}
    if "red" in healths_seen:
        return EXIT_CRITICAL
    return EXIT_WARNING if "yellow" in healths_seen else EXIT_OK


@click.command()
@json_option
@pass_app
def cluster(app: App, as_json: bool) -> int:
    """Cluster health and every node: its roles, whether it is the elected master, heap
    and disk used of total, and the shard copies it holds. Exit 1 yellow, 2 red."""

    async def go() -> tuple[ClusterHealth, list[EsNode]]:
        async with app.stack() as stack:
            health, nodes = await asyncio.gather(
                stack.elasticsearch.cluster_health(), stack.elasticsearch.nodes()
            )
            return health, nodes

    health, nodes = run(go())
    if as_json:
        print_json({"health": health, "nodes": nodes})
    else:
        out = console()
        out.print(
            f"[bold]{esc(health.cluster_name)}[/] {styled(health.status)}  "
            f"{health.number_of_nodes} node(s), {health.active_primary_shards} primary / "
            f"{health.active_shards} active shards, {health.relocating_shards} relocating, "
            f"{health.initializing_shards} initializing, "
            f"{health.unassigned_shards} unassigned, "
            f"{health.active_shards_percent:.1f}% active"
        )
        tb = table(None, *NODE_HEADERS)
        for n in nodes:
            tb.add_row(*map(esc, node_cells(n)))
        out.print(tb)
    return {"green": EXIT_OK, "yellow": EXIT_WARNING}.get(health.status, EXIT_CRITICAL)
