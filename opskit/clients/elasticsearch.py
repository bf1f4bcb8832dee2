"""Elasticsearch through the official 8.x client (AsyncElasticsearch on httpx)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from opskit.clients.base import describe_transport_error, off_loop, parse_time
from opskit.durations import parse_duration
from opskit.errors import (
    AuthFailed,
    BackendError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    NotFound,
    OpskitError,
)
from opskit.models import ClusterHealth, EsNode, Index, LogHits, LogRecord, NodeHeap, Shard
from opskit.models_es import (
    AllocationExplanation,
    DiskSettings,
    IndexFacts,
    IndexSettings,
    NodeDecision,
    Repository,
    RunningRestore,
    RunningSnapshot,
    ShardCopy,
    SnapshotInfo,
    SnapshotProgress,
    Watermark,
    kind_of,
    ordered_roles,
)

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

T = TypeVar("T")
RESTORE_TIMEOUT = 6 * 3600.0  # seconds a restore waited for to completion may take
NAME = "elasticsearch"
INDEX_COLUMNS = "health,status,index,uuid,pri,rep,docs.count,store.size,creation.date"
SHARD_COLUMNS = "index,shard,prirep,state,node,docs,store,unassigned.reason,unassigned.details"
NODE_COLUMNS = (
    "id,name,ip,node.role,master,heap.percent,ram.percent,cpu,load_1m,disk.used_percent,version"
)
UNASSIGNED_COLUMNS = (
    "index,shard,prirep,state,node,unassigned.reason,unassigned.at,unassigned.details"
)
WATERMARKS = ("low", "high", "flood_stage")
DISK_PREFIX = "cluster.routing.allocation.disk."
# Elasticsearch's byte units (docs: "API conventions, byte size units")
BYTE_UNITS = {"b": 1, "kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40, "pb": 2**50}


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
        # node id -> name of every node `nodes()` has seen: a node that left is named by
        # its id only in its shards' `node_left [<id>]`; this names it (a TUI session)
        self.node_names: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.es.close()

    async def call(self, fn: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        """Run one client call; its failures become typed errors."""
        try:
            response = await fn(**kwargs)
        except BackendError:  # already typed: opskit.http.LazyElasticsearch's httpx path
            raise
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
        """Every node: `_cat/nodes` (ip, elected master, load, version), `_nodes/stats/
        jvm,fs` (full role names, heap and disk in bytes) and `_cat/allocation` (shard
        copies per node), fetched concurrently, in name order."""
        cat, stats, allocation = await asyncio.gather(
            self.call(self.es.cat.nodes, format="json", h=NODE_COLUMNS, full_id=True),
            self.call(
                self.es.nodes.stats,
                metric="jvm,fs",
                filter_path="nodes.*.name,nodes.*.roles,nodes.*.jvm.mem,nodes.*.fs.total",
            ),
            self.call(self.es.cat.allocation, format="json", bytes="b", h="node,shards"),
        )
        found = self.parse("nodes", lambda: _nodes(cat, stats, allocation))
        self.node_names.update((n.id, n.name) for n in found if n.id)
        return found

    async def unassigned_copies(self) -> list[ShardCopy]:
        """Every unassigned shard copy (`_cat/shards`, every index), with why and since
        when (`unassigned.reason`, `unassigned.at`, `unassigned.details`)."""
        body = await self.call(self.es.cat.shards, format="json", h=UNASSIGNED_COLUMNS)
        return self.parse(
            "shards",
            lambda: [_shard_copy(r) for r in body if str(r.get("state")) == "UNASSIGNED"],
        )

    async def disk_settings(self) -> DiskSettings:
        """The disk threshold decider's effective settings: `cluster.routing.allocation.
        disk.threshold_enabled` (default true) and the low / high / flood_stage
        watermarks (defaults 85% / 90% / 95%) with their max_headroom (defaults 200GB /
        150GB / 100GB), transient over persistent over defaults (docs: "Disk-based shard
        allocation settings", https://www.elastic.co/guide/en/elasticsearch/reference/
        8.14/modules-cluster.html#disk-based-shard-allocation)."""
        body = await self.call(
            self.es.cluster.get_settings, include_defaults=True, flat_settings=True
        )
        return self.parse("cluster settings", lambda: _disk_settings(body))

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

    async def index_settings(self, name: str) -> IndexSettings:
        """The settings of one index that matter for its placement: shards, replicas,
        creation date, ILM policy, `index.routing.allocation.*`, `index.blocks.*`."""
        body = await self.call(self.es.indices.get_settings, index=name, flat_settings=True)
        return self.parse("index settings", lambda: _index_settings(name, body))

    async def index_shards(self, name: str) -> list[ShardCopy]:
        """Every copy of every shard of one index (`_cat/shards/<name>`), with docs, size
        and, for an unassigned copy, why."""
        body = await self.call(
            self.es.cat.shards,
            index=name,
            format="json",
            bytes="b",
            h=SHARD_COLUMNS,
        )
        return self.parse("shards", lambda: [_shard_copy(row) for row in body])

    async def explain_shard(self, index: str, shard: int, primary: bool) -> AllocationExplanation:
        """`allocation_explain` of one shard copy as a record: can it be allocated, why
        not, and each node's deciders that said no."""
        body = await self.allocation_explain(index, shard, primary)
        return self.parse("allocation explain", lambda: _explanation(body))

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

    async def fs_available_bytes(self) -> int:
        """Free disk over all nodes' data paths, from `_nodes/stats/fs`."""
        body = await self.call(self.es.nodes.stats, metric="fs")
        return self.parse(
            "nodes stats",
            lambda: sum(
                int(n["fs"]["total"].get("available_in_bytes", 0)) for n in body["nodes"].values()
            ),
        )

    # -------------------------------------------------------------- indices by name
    # One request each; callers keep the names to a URL-safe batch (opskit.tasks.batches).

    async def index_states(self, names: list[str]) -> dict[str, str]:
        """name -> "open" | "close" for those of `names` that exist (missing ones absent)."""
        body = await self.call(
            self.es.cluster.state,
            metric="metadata",
            index=",".join(names),
            ignore_unavailable=True,
            expand_wildcards="all",
            filter_path="metadata.indices.*.state",
        )

        def parse() -> dict[str, str]:
            found = (body.get("metadata") or {}).get("indices") or {}
            return {str(k): str(v.get("state")) for k, v in found.items()}

        return self.parse("cluster state", parse)

    async def index_facts(self, patterns: list[str]) -> list[IndexFacts]:
        """Every index matching the patterns, hidden and system ones included, with its
        state, creation date and data stream. NotFound when an exact name is missing."""
        joined = ",".join(sorted(set(patterns)))
        resolved = await self.call(
            self.es.indices.resolve_index, name=joined, expand_wildcards="all"
        )
        rows = await self.call(
            self.es.cat.indices,
            index=joined,
            format="json",
            h="index,status,creation.date",
            expand_wildcards="all",
        )

        def parse() -> list[IndexFacts]:
            created = {str(r["index"]): r.get("creation.date") for r in rows}
            out = []
            for i in resolved.get("indices", []):
                attrs = set(i.get("attributes", []))
                raw = created.get(i["name"])
                out.append(
                    IndexFacts(
                        name=str(i["name"]),
                        status="close" if "closed" in attrs else "open",
                        created=datetime.fromtimestamp(int(raw) / 1000, UTC) if raw else None,
                        hidden="hidden" in attrs,
                        system="system" in attrs,
                        data_stream=i.get("data_stream"),
                    )
                )
            return out

        return self.parse("resolve index", parse)

    async def delete_indices(self, names: list[str]) -> None:
        """Delete exactly these indices (no wildcard expansion)."""
        await self.call(self.es.indices.delete, index=",".join(names), expand_wildcards="none")

    async def close_indices(self, names: list[str]) -> None:
        await self.call(self.es.indices.close, index=",".join(names), expand_wildcards="none")

    async def forcemerge(self, names: list[str], max_num_segments: int = 1) -> None:
        await self.call(
            self.es.indices.forcemerge,
            index=",".join(names),
            max_num_segments=max_num_segments,
            expand_wildcards="none",
        )

    async def wait_for_health(
        self, names: list[str], status: str = "yellow", timeout: str = "120s"
    ) -> None:
        """Wait (up to `timeout`) until these indices reach `status` with no shard
        initializing."""
        # the server waits up to `timeout`: the request may take that long
        seconds = parse_duration(timeout).total_seconds()
        await self.call(
            self.es.options(request_timeout=seconds + 30).cluster.health,
            index=",".join(names),
            wait_for_status=status,
            wait_for_no_initializing_shards=True,
            timeout=timeout,
        )

    # -------------------------------------------------------------- snapshot repositories

    async def path_repo(self) -> list[str]:
        """Every node's `path.repo` setting (where fs repositories may live)."""
        body = await self.call(
            self.es.nodes.info, metric="settings", filter_path="nodes.*.settings.path"
        )

        def parse() -> list[str]:
            out: list[str] = []
            for node in (body.get("nodes") or {}).values():
                value = node.get("settings", {}).get("path", {}).get("repo", [])
                out.extend([value] if isinstance(value, str) else value)
            return sorted(set(out))

        return self.parse("nodes info", parse)

    async def repository(self, name: str) -> Repository:
        """A registered repository; NotFound when there is none of that name."""
        body = await self.call(self.es.snapshot.get_repository, name=name)

        def parse() -> Repository:
            repo = body.get(name, {})
            location = (repo.get("settings") or {}).get("location")
            return Repository(name, str(repo.get("type", "")), location)

        return self.parse("repository", parse)

    async def create_fs_repository(self, name: str, location: str) -> None:
        """Register a shared file system repository at `location`. A location outside the
        nodes' `path.repo` is refused with an error that says so and what path.repo is."""
        try:
            await self.call(
                self.es.snapshot.create_repository,
                name=name,
                repository={"type": "fs", "settings": {"location": location}},
            )
        except BackendError as exc:
            if "path.repo" in exc.reason + str(getattr(exc.__cause__, "body", "")):
                roots = ", ".join(await self.path_repo()) or "(not set)"
                raise OpskitError(
                    f"repository {name!r}: location {location!r} is outside the node's "
                    f"path.repo (path.repo = {roots}); add it to `path.repo` in "
                    "elasticsearch.yml or choose a location under it "
                    "(elasticsearch.snapshot_location)"
                ) from None
            raise

    async def verify_repository(self, name: str) -> list[str]:
        """Verify the repository on every node; the names of the nodes that did."""
        body = await self.call(self.es.snapshot.verify_repository, name=name)
        return self.parse(
            "verify repository",
            lambda: [str(n.get("name", k)) for k, n in (body.get("nodes") or {}).items()],
        )

    # -------------------------------------------------------------- snapshots

    async def create_snapshot(
        self,
        repository: str,
        name: str,
        indices: list[str] | None = None,
        include_global_state: bool = False,
        partial: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Start a snapshot without waiting for it (all indices when `indices` is empty),
        with `metadata` stored in the snapshot (opskit marks backups and archives)."""
        kwargs: dict[str, Any] = {"indices": ",".join(indices)} if indices else {}
        if metadata:
            kwargs["metadata"] = metadata
        await self.call(
            self.es.snapshot.create,
            repository=repository,
            snapshot=name,
            wait_for_completion=False,
            include_global_state=include_global_state,
            partial=partial,
            **kwargs,
        )

    async def snapshot(self, repository: str, name: str) -> SnapshotInfo:
        body = await self.call(self.es.snapshot.get, repository=repository, snapshot=name)
        return self.parse("snapshot", lambda: _snapshot(repository, body["snapshots"][0]))

    async def snapshots(self, repository: str) -> list[SnapshotInfo]:
        """Every snapshot in the repository, in the order Elasticsearch lists them."""
        body = await self.call(self.es.snapshot.get, repository=repository, snapshot="_all")
        return self.parse(
            "snapshots", lambda: [_snapshot(repository, s) for s in body["snapshots"]]
        )

    async def snapshot_progress(self, repository: str, name: str) -> SnapshotProgress:
        """Shards and bytes done of a snapshot (NotFound once it is no longer running on
        some versions)."""
        body = await self.call(self.es.snapshot.status, repository=repository, snapshot=name)

        def parse() -> SnapshotProgress:
            s = body["snapshots"][0]
            shards, stats = s.get("shards_stats", {}), s.get("stats", {})
            total = int(stats.get("incremental", {}).get("size_in_bytes", 0))
            done = int(stats.get("processed", {}).get("size_in_bytes", 0))
            return SnapshotProgress(
                name=name,
                state=str(s.get("state", "")),
                shards_done=int(shards.get("done", 0)) + int(shards.get("failed", 0)),
                shards_total=int(shards.get("total", 0)),
                bytes_done=total if s.get("state") == "SUCCESS" else done,
                bytes_total=total,
            )

        return self.parse("snapshot status", parse)

    async def running_snapshots(self) -> list[RunningSnapshot]:
        """Every snapshot in progress in any repository (`GET _snapshot/_status`), with the
        indices each is copying."""
        body = await self.call(self.es.snapshot.status)
        return self.parse(
            "snapshot status",
            lambda: [
                RunningSnapshot(
                    repository=str(s.get("repository", "")),
                    name=str(s["snapshot"]),
                    state=str(s.get("state", "")),
                    indices=sorted(str(i) for i in (s.get("indices") or {})),
                )
                for s in body.get("snapshots", [])
            ],
        )

    async def running_restores(self) -> list[RunningRestore]:
        """Indices being restored from a snapshot right now, one per index: the cluster
        state's `restore` section (from the moment a restore is accepted) and active shard
        recoveries of type SNAPSHOT (`GET _recovery?active_only=true`)."""
        state = await self.call(self.es.cluster.state, metric="customs", filter_path="restore")
        recovery = await self.call(
            self.es.indices.recovery, active_only=True, expand_wildcards="all"
        )

        def parse() -> list[RunningRestore]:
            out: dict[str, RunningRestore] = {}
            for r in ((state or {}).get("restore") or {}).get("snapshots", []):
                repo, snap = str(r.get("repository", "")), str(r.get("snapshot", ""))
                for index in r.get("indices", []):
                    out[str(index)] = RunningRestore(str(index), repo, snap)
            for index, entry in (recovery or {}).items():
                for shard in (entry or {}).get("shards", []):
                    if shard.get("type") != "SNAPSHOT":
                        continue
                    source = shard.get("source") or {}
                    out.setdefault(str(index), RunningRestore(
                        str(index), str(source.get("repository", "")),
                        str(source.get("snapshot", "")),
                    ))  # fmt: skip
            return sorted(out.values(), key=lambda r: r.index)

        return self.parse("restores", parse)

    async def red_indices(self, patterns: list[str]) -> list[str]:
        """Those indices matching the patterns (exclusions `-pattern` allowed; none: all)
        whose health is red. NotFound when an exactly named index is missing."""
        body = await self.call(
            self.es.cat.indices,
            index=",".join(patterns) if patterns else "*",
            format="json",
            health="red",
            h="index",
            expand_wildcards="all",
        )
        return self.parse("indices", lambda: sorted(str(r["index"]) for r in body))

    async def delete_snapshots(self, repository: str, names: list[str]) -> None:
        """Delete snapshots by exact name, in one request."""
        await self.call(self.es.snapshot.delete, repository=repository, snapshot=",".join(names))

    async def restore_snapshot(
        self,
        repository: str,
        snapshot: str,
        indices: list[str],
        include_global_state: bool = False,
        rename_pattern: str | None = None,
        rename_replacement: str | None = None,
    ) -> None:
        """Restore these indices of the snapshot and wait until the restore has started
        every shard (`wait_for_completion`); renamed with Elasticsearch's `$1` syntax."""
        kwargs: dict[str, str] = {}
        if rename_pattern is not None:
            kwargs = {
                "rename_pattern": rename_pattern,
                "rename_replacement": rename_replacement or "",
            }
        # not idempotent (a second try finds the indices it created): never retried, and
        # given the time a large restore takes
        await self.call(
            self.es.options(
                request_timeout=RESTORE_TIMEOUT, retry_on_timeout=False
            ).snapshot.restore,
            repository=repository,
            snapshot=snapshot,
            indices=",".join(indices),
            include_global_state=include_global_state,
            wait_for_completion=True,
            **kwargs,
        )

    async def restore_copies(
        self, repository: str, snapshot: str, indices: list[str], rename_replacement: str
    ) -> None:
        """Restore copies of the indices under new names (`$1` is the old name), waiting
        for the restore to complete: without aliases (a copy must never join a live
        alias), without replicas, and outside index lifecycle management. For restore
        drills. Never retried: a second try would find the copies it made."""
        once = self.es.options(request_timeout=RESTORE_TIMEOUT, retry_on_timeout=False)
        await self.call(
            once.snapshot.restore,
            repository=repository,
            snapshot=snapshot,
            indices=",".join(indices),
            include_global_state=False,
            include_aliases=False,
            rename_pattern="(.+)",
            rename_replacement=rename_replacement,
            index_settings={"index.number_of_replicas": 0},
            ignore_index_settings=["index.lifecycle.name"],
            wait_for_completion=True,
        )

    async def mappings(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Each existing index's mappings (missing ones are left out)."""
        body = await self.call(
            self.es.indices.get_mapping,
            index=",".join(names),
            ignore_unavailable=True,
            expand_wildcards="all",
        )
        return self.parse(
            "mappings",
            lambda: {
                str(index): dict((value or {}).get("mappings") or {})
                for index, value in (body or {}).items()
            },
        )

    async def search_logs(
        self,
        indices: list[str],
        start: datetime,
        end: datetime,
        levels: list[str] | None = None,
        exclude_levels: list[str] | None = None,
        size: int = 500,
    ) -> LogHits:
        """The newest log documents (`@timestamp`, `level`, `message`, `service`, `host`)
        of the index patterns between start and end, newest first; `levels` keeps only
        these levels, `exclude_levels` drops those. Missing indices match nothing."""
        filters: list[dict[str, Any]] = [
            {"range": {"@timestamp": {"gte": start.isoformat(), "lte": end.isoformat()}}}
        ]
        if levels:
            filters.append({"terms": {"level": levels}})
        query: dict[str, Any] = {"bool": {"filter": filters}}
        if exclude_levels:
            query["bool"]["must_not"] = [{"terms": {"level": exclude_levels}}]
        body = await self.call(
            self.es.search,
            index=",".join(indices),
            query=query,
            sort=[{"@timestamp": {"order": "desc", "unmapped_type": "date"}}],
            size=size,
            track_total_hits=True,
            ignore_unavailable=True,
            allow_no_indices=True,
            source_includes=["@timestamp", "level", "message", "service", "host"],
        )

        def parse() -> LogHits:
            hits = body["hits"]
            total = hits.get("total") or {}
            return LogHits(
                int(total.get("value", 0)) if isinstance(total, dict) else int(total),
                [_log_record(h) for h in hits["hits"]],
            )

        return self.parse("log search", parse)


def _log_record(hit: dict[str, Any]) -> LogRecord:
    src = hit.get("_source") or {}
    stamp = src.get("@timestamp")
    return LogRecord(
        parse_time(stamp) if isinstance(stamp, str) else None,
        str(src.get("level") or ""),
        str(src.get("message") or ""),
        str(src.get("service") or ""),
        str(src.get("host") or ""),
        str(hit.get("_index") or ""),
    )


def _millis(value: object) -> datetime | None:
    return datetime.fromtimestamp(int(str(value)) / 1000, UTC) if value else None


def _snapshot(repository: str, s: dict[str, Any]) -> SnapshotInfo:
    shards = s.get("shards") or {}
    metadata = s.get("metadata") or {}
    kind, policy = kind_of(metadata)
    return SnapshotInfo(
        name=str(s["snapshot"]),
        repository=repository,
        state=str(s.get("state", "")),
        start=_millis(s.get("start_time_in_millis")),
        end=_millis(s.get("end_time_in_millis")),
        indices=sorted(str(i) for i in s.get("indices", [])),
        shards_total=int(shards.get("total", 0)),
        shards_failed=int(shards.get("failed", 0)),
        failures=[
            f"{f.get('index')}[{f.get('shard_id')}]: {f.get('reason')}"
            for f in s.get("failures", [])
        ],
        reason=s.get("reason"),
        kind=kind,
        policy=policy,
        metadata=dict(metadata) if isinstance(metadata, dict) else {},
    )


def _shard(row: dict[str, Any]) -> Shard:
    return Shard(
        index=str(row["index"]),
        shard=int(row["shard"]),
        primary=row.get("prirep") == "p",
        state=str(row["state"]),
        node=str(row["node"]) if row.get("node") else None,
        unassigned_reason=str(row["unassigned.reason"]) if row.get("unassigned.reason") else None,
    )


def _index_settings(name: str, body: dict[str, Any]) -> IndexSettings:
    # the answer is keyed by the concrete index name (an alias resolves to its index)
    flat = body[name]["settings"] if name in body else next(iter(body.values()))["settings"]
    flat = {str(k): str(v) for k, v in flat.items()}
    created = flat.get("index.creation_date")
    shards, replicas = flat.get("index.number_of_shards"), flat.get("index.number_of_replicas")
    return IndexSettings(
        name=name,
        number_of_shards=int(shards) if shards else None,
        number_of_replicas=int(replicas) if replicas else None,
        created=datetime.fromtimestamp(int(created) / 1000, UTC) if created else None,
        ilm_policy=flat.get("index.lifecycle.name") or None,
        auto_expand_replicas=flat.get("index.auto_expand_replicas") or None,
        routing={k: v for k, v in flat.items() if k.startswith("index.routing.allocation.")},
        blocks={k: v for k, v in flat.items() if k.startswith("index.blocks.")},
    )


def _shard_copy(row: dict[str, Any]) -> ShardCopy:
    def opt(key: str) -> str | None:
        value = row.get(key)
        return str(value) if value not in (None, "") else None

    docs, store = opt("docs"), opt("store")
    return ShardCopy(
        index=str(row["index"]),
        shard=int(row["shard"]),
        primary=row.get("prirep") == "p",
        state=str(row["state"]),
        node=opt("node"),
        docs=int(docs) if docs is not None else None,
        store_bytes=int(store) if store is not None else None,
        unassigned_reason=opt("unassigned.reason"),
        unassigned_details=opt("unassigned.details"),
        unassigned_at=parse_time(at) if (at := opt("unassigned.at")) else None,
    )


def _explanation(body: dict[str, Any]) -> AllocationExplanation:
    nodes = []
    for n in body.get("node_allocation_decisions") or []:
        said_no = [
            f"{d.get('decider', '')}: {d.get('explanation', '')}"
            for d in n.get("deciders") or []
            if str(d.get("decision", "")).upper() != "YES"
        ]
        nodes.append(
            NodeDecision(
                node=str(n.get("node_name") or n.get("node_id") or ""),
                decision=str(n.get("node_decision", "")),
                explanations=said_no,
            )
        )
    unassigned = body.get("unassigned_info") or {}
    configured, remaining = (body.get(k) for k in ("configured_delay_in_millis",
                                                   "remaining_delay_in_millis"))  # fmt: skip
    explanation = (
        body.get("allocate_explanation")
        or body.get("move_explanation")
        or body.get("rebalance_explanation")
        or ""
    )
    return AllocationExplanation(
        index=str(body["index"]),
        shard=int(body["shard"]),
        primary=bool(body["primary"]),
        current_state=str(body.get("current_state", "")),
        can_allocate=str(body.get("can_allocate", "")),
        explanation=str(explanation),
        unassigned_reason=str(unassigned["reason"]) if unassigned.get("reason") else None,
        nodes=nodes,
        unassigned_at=parse_time(str(unassigned["at"])) if unassigned.get("at") else None,
        unassigned_details=str(unassigned["details"]) if unassigned.get("details") else None,
        configured_delay_ms=int(configured) if configured is not None else None,
        remaining_delay_ms=int(remaining) if remaining is not None else None,
    )


def _heap(node: dict[str, Any]) -> NodeHeap:
    mem = node["jvm"]["mem"]
    return NodeHeap(
        node=str(node["name"]),
        heap_used_bytes=int(mem["heap_used_in_bytes"]),
        heap_max_bytes=int(mem["heap_max_in_bytes"]),
        heap_used_percent=float(mem["heap_used_percent"]),
    )


def _cat_int(value: object) -> int:
    """`_int` for a `_cat` column: a string of digits, the common case, converted as is."""
    return int(value) if type(value) is str and value else _int(value)


def _index(row: dict[str, Any]) -> Index:
    # 5,000 of these a refresh at the bench's large size
    get = row.get
    created = get("creation.date")
    return Index(
        name=str(row["index"]),
        health=str(get("health") or ""),
        status=str(row["status"]),
        docs_count=_cat_int(get("docs.count")),
        store_size_bytes=_cat_int(get("store.size")),
        primaries=_cat_int(get("pri")),
        replicas=_cat_int(get("rep")),
        creation_date=(datetime.fromtimestamp(int(str(created)) / 1000, UTC) if created else None),
        uuid=str(get("uuid", "")),
    )


def _node(row: dict[str, Any]) -> EsNode:
    heap, ram, cpu = (_opt_num(row.get(k)) for k in ("heap.percent", "ram.percent", "cpu"))
    return EsNode(
        id=str(row.get("id", "")),
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


def _nodes(cat: Any, stats: Any, allocation: Any) -> list[EsNode]:
    by_id = (stats or {}).get("nodes") or {}
    shards = {str(r.get("node")): _opt_num(r.get("shards")) for r in allocation or []}
    out = []
    for row in cat:
        node = _node(row)
        st = by_id.get(node.id) or {}
        mem = (st.get("jvm") or {}).get("mem") or {}
        fs = (st.get("fs") or {}).get("total") or {}
        total, free = fs.get("total_in_bytes"), fs.get("available_in_bytes")
        node.role_names = ordered_roles([str(r) for r in st.get("roles") or []])
        node.heap_used_bytes = _opt_int(mem.get("heap_used_in_bytes"))
        node.heap_max_bytes = _opt_int(mem.get("heap_max_in_bytes"))
        node.disk_total_bytes = _opt_int(total)
        # used as the disk threshold decider counts it: total less what is available
        node.disk_used_bytes = (
            int(total) - int(free) if total is not None and free is not None else None
        )
        count = shards.get(node.name)
        node.shards = int(count) if count is not None else None
        out.append(node)
    return sorted(out, key=lambda n: n.name)


def _opt_int(value: object) -> int | None:
    return int(str(value)) if value not in (None, "") else None


def parse_bytes(value: str) -> int | None:
    """An Elasticsearch byte size ("500mb", "200GB", "1024") as bytes; None if not one."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?b)?\s*", value.lower())
    if not found:
        return None
    return int(float(found.group(1)) * BYTE_UNITS[found.group(2) or "b"])


def parse_watermark(name: str, raw: str, headroom: str | None) -> Watermark:
    """ "85%" or "0.85" (used share) or "500mb" (free space), per the disk settings' docs."""
    text = raw.strip()
    used: float | None = None
    free: int | None = None
    if text.endswith("%"):
        used = float(text[:-1])
    elif re.fullmatch(r"\d*\.\d+|[01]", text):
        used = float(text) * 100
    else:
        free = parse_bytes(text)
    room = parse_bytes(headroom) if headroom and used is not None else None
    return Watermark(name, raw, used, free, room if room and room > 0 else None)


def _disk_settings(body: dict[str, Any]) -> DiskSettings:
    layers = [(n, body.get(n) or {}) for n in ("transient", "persistent", "defaults")]

    def get(key: str, default: str | None = None) -> tuple[str | None, str]:
        for layer, values in layers:
            if key in values and values[key] is not None:
                return str(values[key]), layer
        return default, "built-in default"

    source: dict[str, str] = {}
    enabled, source[DISK_PREFIX + "threshold_enabled"] = get(
        DISK_PREFIX + "threshold_enabled", "true"
    )
    marks = []
    for name, default in zip(WATERMARKS, ("85%", "90%", "95%"), strict=True):
        key = f"{DISK_PREFIX}watermark.{name}"
        raw, source[key] = get(key, default)
        headroom, _ = get(f"{key}.max_headroom")
        marks.append(parse_watermark(name, raw or default, headroom))
    return DiskSettings(str(enabled).lower() != "false", marks, source)
