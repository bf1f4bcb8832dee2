"""Quarterly version inventory: the versions Prometheus, Alertmanager, Elasticsearch and
Grafana report about themselves, flagged against `[maintenance] min_versions`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from opskit.errors import BackendError, BackendUnreachable, Unsupported
from opskit.tasks.maintenance.framework import Outcome, TaskContext, task

_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")


def version_tuple(text: str) -> tuple[int, ...] | None:
    """`2.42.0+ds` -> (2, 42, 0); None when there is no number to read."""
    m = _VERSION.match(text.strip())
    return tuple(int(p) for p in m[1].split(".")) if m else None


def older(version: str, minimum: str) -> bool | None:
    """Pure: whether `version` is below `minimum` (None: one of them unreadable)."""
    have, want = version_tuple(version), version_tuple(minimum)
    if have is None or want is None:
        return None
    width = max(len(have), len(want))
    return have + (0,) * (width - len(have)) < want + (0,) * (width - len(want))


async def _prometheus(ctx: TaskContext) -> str:
    info = await ctx.stack.prometheus.buildinfo()
    if info.get("flavor") == "victoriametrics":  # not Prometheus' version scale
        raise Unsupported(
            "prometheus", f"VictoriaMetrics {info['version']} answers the Prometheus API"
        )
    return info["version"]


async def _alertmanager(ctx: TaskContext) -> str:
    status: dict[str, Any] = await ctx.stack.alertmanager.status()
    return str((status.get("versionInfo") or {}).get("version", ""))


async def _elasticsearch(ctx: TaskContext) -> str:
    return str((await ctx.stack.elasticsearch.info())["version"]["number"])


async def _grafana(ctx: TaskContext) -> str:
    return (await ctx.stack.grafana.health()).version


READERS: dict[str, Callable[[TaskContext], Awaitable[str]]] = {
    "prometheus": _prometheus,
    "alertmanager": _alertmanager,
    "elasticsearch": _elasticsearch,
    "grafana": _grafana,
}


@task(
    "quarterly",
    "versions",
    "Version inventory",
    "Prometheus buildinfo, Alertmanager status, Elasticsearch info, Grafana health",
)
async def versions(ctx: TaskContext) -> Outcome:
    out = Outcome()
    found: dict[str, str | None] = {}
    for backend, read in READERS.items():
        try:
            version = await read(ctx)
        except BackendUnreachable as exc:
            out.unreachable.append(backend)
            out.add("critical", backend, str(exc))
            found[backend] = None
            continue
        except Unsupported as exc:  # VictoriaMetrics: no Prometheus version to compare
            out.add("info", backend, f"version not compared: {exc.reason}")
            found[backend] = None
            continue
        except BackendError as exc:
            out.add("warning", backend, f"could not read the version: {exc.reason}")
            found[backend] = None
            continue
        found[backend] = version
        minimum = ctx.options.min_versions.get(backend)
        verdict = older(version, minimum) if minimum else False
        if verdict:
            out.add(
                "warning",
                backend,
                f"{version} is older than the minimum {minimum}: plan the upgrade",
            )
        elif verdict is None:
            out.add("warning", backend, f"cannot compare version {version!r} with {minimum!r}")
        else:
            out.add("info", backend, f"{version}" + (f" (minimum {minimum})" if minimum else ""))
    out.data = {"versions": found, "minimums": dict(ctx.options.min_versions)}
    return out
