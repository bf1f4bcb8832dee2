"""Index and snapshot names in batches whose comma-joined form keeps request URLs short,
and the batched lookup of which indices exist."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient

MAX_CHARS = 3000  # well under the 4 KiB HTTP line limit, with room for the path and query


def batches(names: Iterable[str], max_chars: int = MAX_CHARS) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for name in names:
        extra = len(name) + (1 if batch else 0)
        if batch and size + extra > max_chars:
            yield batch
            batch, size = [], 0
            extra = len(name)
        batch.append(name)
        size += extra
    if batch:
        yield batch


async def index_states(es: ElasticsearchClient, names: list[str]) -> dict[str, str]:
    """name -> "open" | "close" for those of `names` that exist (missing ones are absent)."""
    out: dict[str, str] = {}
    for batch in batches(names):
        out.update(await es.index_states(batch))
    return out
