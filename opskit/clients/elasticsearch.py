"""Elasticsearch through the official 8.x client (AsyncElasticsearch on httpx)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from opskit.clients.base import describe_transport_error, off_loop
from opskit.errors import (
    AuthFailed,
    BackendError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    NotFound,
)
from opskit.models import ClusterHealth, EsNode, Index, NodeHeap, Shard

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

T = TypeVar("T")
NAME = "elasticsearch"
INDEX_COLUMNS = "health,status,index,uuid,pri,rep,docs.count,store.size,creation.date"
NODE_COLUMNS = (
    "name,ip,node.role,master,heap.percent,ram.percent,cpu,load_1m,disk.used_percent,version"
)


def map_error(exc: Exception, url: str) -> BackendError:
    """The client's exceptions as opskit's typed errors (no secrets: messages only)."""
    import elastic_transport
    import elasticsearch

    if isinstance(exc, elastic_transport.ConnectionTimeout):
        return BackendTimeout(NAME, f"no answer from {url} in time")
    if isinstance(exc, elastic_transport.TlsError):
        return BackendUnreachable(NAME, f"{url}: TLS error: {str(exc.message)[:160]}")
    if isinstance(exc, elastic_transport.ConnectionError):
        causes: list[BaseException] = [exc, *getattr(exc, "errors", ())]
        reason = next(
            (r for r in map(describe_transport_error, causes) if r == "connection refused"),
            describe_transport_error(exc),
        )
        return BackendUnreachable(NAME, f"{url}: {reason[:160]}")
    if isinstance(exc, elasticsearch.AuthenticationException):
        return AuthFailed(NAME, "401 Unauthorized: credentials missing or wrong")
    if isinstance(exc, elasticsearch.AuthorizationException):
        return AuthFailed(NAME, "403 Forbidden: these credentials lack permission")
    if isinstance(exc, elasticsearch.NotFoundError):
        return NotFound(NAME, f"404 Not Found: {_reason(exc)}")
    if isinstance(exc, elasticsearch.ApiError):
        return BadResponse(NAME, f"HTTP {exc.meta.status}: {_reason(exc)}")
    if isinstance(exc, elasticsearch.UnsupportedProductError):
        return BadResponse(NAME, f"{url} does not answer as Elasticsearch")
    if isinstance(exc, elastic_transport.SerializationError):
        return BadResponse(NAME, "response is not valid JSON")
    if isinstance(exc, elastic_transport.TransportError):
        return BackendUnreachable(NAME, f"{url}: {str(exc.message)[:160]}")
    return BadResponse(NAME, f"unexpected response: {exc!r}"[:200])


def _reason(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"{err.get('type', '')}: {err.get('reason', '')}"[:200]
    return str(getattr(exc, "message", exc))[:200]


def _int(value: object) -> int:
    return int(str(value)) if value not in (None, "") else 0


def _opt_num(value: object) -> float | None:
    return float(str(value)) if value not in (None, "") else None


class ElasticsearchClient:
    name = NAME

    def __init__(self, es: AsyncElasticsearch, url: str) -> None:
        self.es = es
        self.url = url

    async def aclose(self) -> None:
        await self.es.close()

    async def call(self, fn: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        """Run one client call; its failures become typed errors."""
        try:
            response = await fn(**kwargs)
        except Exception as exc:
            raise map_error(exc, self.url) from exc
        return getattr(response, "body", response)

    def parse(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadResponse(NAME, f"unexpected {what} response: {exc!r}"[:200]) from None

    async def info(self) -> dict[str, Any]:
        body = await self.call(self.es.info)
        return self.parse("info", lambda: dict(body))

    async def cluster_health(self) -> ClusterHealth:
        b = await self.call(self.es.cluster.health)
        return self.parse(
            "cluster health",
            lambda: ClusterHealth(
                cluster_name=str(b["cluster_name"]),
                status=str(b["status"]),
                number_of_nodes=int(b["number_of_nodes"]),
                number_of_data_nodes=int(b["number_of_data_nodes"]),
                active_primary_shards=int(b["active_primary_shards"]),
                active_shards=int(b["active_shards"]),
                relocating_shards=int(b["relocating_shards"]),
                initializing_shards=int(b["initializing_shards"]),
                unassigned_shards=int(b["unassigned_shards"]),
                number_of_pending_tasks=int(b["number_of_pending_tasks"]),
                active_shards_percent=float(b["active_shards_percent_as_number"]),
            ),
        )

    async def indices(self, pattern: str = "*", include_hidden: bool = False) -> list[Index]:
        body = await self.call(
            self.es.cat.indices,
            index=pattern,
            format="json",
            bytes="b",
            h=INDEX_COLUMNS,
            expand_wildcards="all" if include_hidden else "open,closed",
        )
        return await off_loop(self.parse, "indices", lambda: [_index(row) for row in body])

    async def nodes(self) -> list[EsNode]:
        body = await self.call(self.es.cat.nodes, format="json", h=NODE_COLUMNS)
        return self.parse("nodes", lambda: [_node(row) for row in body])

    async def shards(self, pattern: str = "*") -> list[Shard]:
        body = await self.call(
            self.es.cat.shards,
            index=pattern,
            format="json",
            h="index,shard,prirep,state,node,unassigned.reason",
        )
        return self.parse("shards", lambda: [_shard(row) for row in body])

    async def allocation_explain(self, index: str, shard: int, primary: bool) -> dict[str, Any]:
        """Why a shard is where it is, or why it cannot be allocated."""
        body = await self.call(
            self.es.cluster.allocation_explain, index=index, shard=shard, primary=primary
        )
        return self.parse("allocation explain", lambda: dict(body))

    async def heap(self) -> list[NodeHeap]:
        """JVM heap per node, from `_nodes/stats/jvm`."""
        body = await self.call(self.es.nodes.stats, metric="jvm")
        return self.parse("nodes stats", lambda: [_heap(n) for n in body["nodes"].values()])

    async def count(self, index: str) -> int:
        """Documents an index holds as a search sees them (`_count` refreshes idle shards)."""
        body = await self.call(self.es.count, index=index)
        return self.parse("count", lambda: int(body["count"]))

    async def max_shards_per_node(self) -> int:
        """`cluster.max_shards_per_node`, set or default: where index creation starts failing."""
        body = await self.call(
            self.es.cluster.get_settings,
            include_defaults=True,
            flat_settings=True,
            filter_path="*.cluster.max_shards_per_node",
        )

        def pick() -> int:
            for layer in ("transient", "persistent", "defaults"):
                value = (body.get(layer) or {}).get("cluster.max_shards_per_node")
                if value is not None:
                    return int(value)
            return 1000

        return self.parse("cluster settings", pick)


def _shard(row: dict[str, Any]) -> Shard:
    return Shard(
        index=str(row["index"]),
        shard=int(row["shard"]),
        primary=row.get("prirep") == "p",
        state=str(row["state"]),
        node=str(row["node"]) if row.get("node") else None,
        unassigned_reason=str(row["unassigned.reason"]) if row.get("unassigned.reason") else None,
    )


def _heap(node: dict[str, Any]) -> NodeHeap:
    mem = node["jvm"]["mem"]
    return NodeHeap(
        node=str(node["name"]),
        heap_used_bytes=int(mem["heap_used_in_bytes"]),
        heap_max_bytes=int(mem["heap_max_in_bytes"]),
        heap_used_percent=float(mem["heap_used_percent"]),
    )


def _index(row: dict[str, Any]) -> Index:
    created = row.get("creation.date")
    return Index(
        name=str(row["index"]),
        health=str(row.get("health") or ""),
        status=str(row["status"]),
        docs_count=_int(row.get("docs.count")),
        store_size_bytes=_int(row.get("store.size")),
        primaries=_int(row.get("pri")),
        replicas=_int(row.get("rep")),
        creation_date=(datetime.fromtimestamp(int(str(created)) / 1000, UTC) if created else None),
        uuid=str(row.get("uuid", "")),
    )


def _node(row: dict[str, Any]) -> EsNode:
    heap, ram, cpu = (_opt_num(row.get(k)) for k in ("heap.percent", "ram.percent", "cpu"))
    return EsNode(
        name=str(row["name"]),
        ip=str(row.get("ip", "")),
        roles=str(row.get("node.role", "")),
        master=row.get("master") == "*",
        heap_percent=int(heap) if heap is not None else None,
        ram_percent=int(ram) if ram is not None else None,
        cpu_percent=int(cpu) if cpu is not None else None,
        load_1m=_opt_num(row.get("load_1m")),
        disk_used_percent=_opt_num(row.get("disk.used_percent")),
        version=str(row.get("version", "")),
    )
