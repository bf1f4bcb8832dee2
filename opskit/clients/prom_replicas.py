"""Prometheus HA replicas as one Prometheus: several servers scraping the same targets,
told apart by an external label (`[prometheus] urls`, `replica_label`).

- Reads that are not merged (queries, `up` history, flags, TSDB status, ...) go to one
  healthy replica: the one that answered last (sticky), and on a transport error, a
  timeout or a 5xx the next, so every `PrometheusClient` method fails over.
- `targets()`, `alerts()` and `rules()` ask every replica at once and merge the answers
  by their labels minus the replica label, keeping each replica's view
  (`Target.replicas`): a target down on one replica only is shown as such.
- Writes (`reload()`, any non-GET) go to every replica.
- `read_membership()`: each replica's readiness and version, and what they disagree on.

Endpoints (https://prometheus.io/docs/prometheus/latest/querying/api/ and
.../management_api/): `/api/v1/status/config` answers `{"yaml": "<the loaded config>"}`,
whose `global.external_labels` holds the replica label; `/-/ready` is 200 once the server
serves queries; `/api/v1/status/buildinfo` gives `version`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import httpx

from opskit.clients.base import Params
from opskit.clients.prometheus import PrometheusClient
from opskit.errors import BackendError, BackendTimeout, BackendUnreachable
from opskit.models import Member, Membership, PromAlert, Rule, Target

if TYPE_CHECKING:
    from opskit.config.schema import PrometheusBackend

T = TypeVar("T")
SHOWN = 3  # how many examples a disagreement names
ALERT_GRACE = 60.0  # seconds an alert's state may differ between replicas (evaluation timing)
_HEALTH_RANK = {"down": 0, "unknown": 1, "up": 2}
_ALERT_RANK = {"firing": 2, "pending": 1}
_RULE_RANK = {"firing": 2, "pending": 1, "inactive": 0}


def host_port(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    return value


def external_labels(config_yaml: str) -> dict[str, str]:
    """`global.external_labels` of the YAML `/api/v1/status/config` gives. Prometheus
    writes it with Go's YAML encoder: block style, two-space indents, one `key: value`
    a line, quoting only what needs it; that is all this reads (no YAML dependency)."""
    labels: dict[str, str] = {}
    in_global = in_labels = False
    labels_indent = 0
    for line in config_yaml.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        text = line.strip()
        if indent == 0:
            in_global, in_labels = text == "global:", False
            continue
        if not in_global:
            continue
        if in_labels and indent > labels_indent:
            key, sep, value = text.partition(":")
            if sep:
                labels[_unquote(key)] = _unquote(value)
            continue
        in_labels = text == "external_labels:"
        labels_indent = indent
        if text.startswith("external_labels: {") and text.endswith("}"):  # flow style
            for pair in text[len("external_labels: {") : -1].split(","):
                key, sep, value = pair.partition(":")
                if sep:
                    labels[_unquote(key)] = _unquote(value)
    return labels


def _labels_key(labels: dict[str, str], drop: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != drop))


def _show_labels(labels: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"


def _target_name(t: Target) -> str:
    return f"{t.job}/{t.instance}"


def _few(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


@dataclasses.dataclass
class _Seen:
    """What the reads of one replica's configuration found."""

    name: str = ""  # the replica label's value, once its config was read
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # its external labels
    configured: bool = False  # its config was read (or it answered that it has none)


@dataclasses.dataclass
class TargetMerge:
    """The merged targets and what the replicas disagree on."""

    targets: list[Target]
    down_on_some: list[str]  # "edge/edge-1 (down on b)"
    absent_on_some: list[str]  # "edge/edge-2 (not scraped by b)"


def merge_targets(
    per_replica: Sequence[tuple[str, list[Target]]], replica_label: str
) -> TargetMerge:
    """One Target per real target (job + labels minus `replica_label`), with each
    answering replica's health in `replicas`. Health is "up" only when up on every
    replica that has it; a target down on some replicas only carries the error of the
    first of them as "down on b: <error>"."""
    names = [name for name, _ in per_replica]
    found: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Target]] = {}
    for name, targets in per_replica:
        for t in targets:
            found.setdefault((t.job, _labels_key(t.labels, replica_label)), {})[name] = t
    merged: list[Target] = []
    down_on_some: list[str] = []
    absent_on_some: list[str] = []
    for views in found.values():
        base = next(iter(views.values()))
        health = {n: (views[n].health if n in views else "absent") for n in names}
        present = [n for n in names if n in views]
        worst = min((views[n].health for n in present), key=lambda h: _HEALTH_RANK.get(h, 1))
        error = base.last_error
        if worst != "up":
            failing = [n for n in present if views[n].health == worst]
            first = views[failing[0]]
            error = first.last_error
            if len(failing) < len(present):
                error = f"{worst} on {', '.join(failing)}: {first.last_error}".rstrip(": ")
                if worst == "down":
                    down_on_some.append(f"{_target_name(base)} (down on {', '.join(failing)})")
        if len(present) < len(names):
            missing = ", ".join(n for n in names if n not in views)
            absent_on_some.append(f"{_target_name(base)} (not scraped by {missing})")
        labels = base.labels
        if replica_label in labels:
            labels = {k: v for k, v in labels.items() if k != replica_label}
        merged.append(
            dataclasses.replace(
                base,
                health=worst,
                last_error=error,
                labels=labels,
                replicas=health,
                replica_errors={n: views[n].last_error for n in present if views[n].last_error},
            )
        )
    return TargetMerge(merged, down_on_some, absent_on_some)


def merge_alerts(
    per_replica: Sequence[tuple[str, list[PromAlert]]], replica_label: str
) -> tuple[list[PromAlert], dict[str, str]]:
    """One alert per label set (minus `replica_label`): the most advanced state of the
    replicas' (firing over pending), the earliest `activeAt`. Also the differences, one
    sentence per alert: "InstanceDown{...}: firing on b, absent on a"."""
    names = [name for name, _ in per_replica]
    found: dict[tuple[tuple[str, str], ...], dict[str, PromAlert]] = {}
    for name, alerts in per_replica:
        for a in alerts:
            found.setdefault(_labels_key(a.labels, replica_label), {})[name] = a
    merged: list[PromAlert] = []
    differences: dict[str, str] = {}
    for key, views in found.items():
        states = {n: (views[n].state if n in views else "absent") for n in names}
        best = max(views.values(), key=lambda a: _ALERT_RANK.get(a.state, 0))
        starts = [a.active_at for a in views.values() if a.active_at is not None]
        labels = best.labels
        if replica_label in labels:
            labels = {k: v for k, v in labels.items() if k != replica_label}
        merged.append(
            dataclasses.replace(best, labels=labels, active_at=min(starts) if starts else None)
        )
        if len(set(states.values())) > 1:
            what = ", ".join(f"{s} on {n}" for n, s in states.items())
            differences[_show_labels(key)] = what
    return merged, differences


def _rule_keys(rules: Sequence[Rule]) -> list[tuple[str, str, int]]:
    """(group, name, n-th of that name in the group): rules of one name may repeat."""
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for r in rules:
        n = seen.get((r.group, r.name), 0)
        seen[(r.group, r.name)] = n + 1
        keys.append((r.group, r.name, n))
    return keys


def merge_rules(per_replica: Sequence[tuple[str, list[Rule]]]) -> tuple[list[Rule], list[str]]:
    """One rule per group + rule name: the most advanced state, "err" health when any
    replica fails to evaluate it (with that replica named in the error), the most active
    alerts. Also the differences: rules some replicas lack, health and state that differ."""
    names = [name for name, _ in per_replica]
    found: dict[tuple[str, str, int], dict[str, Rule]] = {}
    for name, rules in per_replica:
        for key, r in zip(_rule_keys(rules), rules, strict=True):
            found.setdefault(key, {})[name] = r
    merged: list[Rule] = []
    differences: list[str] = []
    for (group, rule_name, _), views in found.items():
        base = max(views.values(), key=lambda r: _RULE_RANK.get(r.state, 0))
        failing = [n for n, r in views.items() if r.health == "err"]
        error = base.last_error
        health = base.health
        if failing:
            health = "err"
            error = views[failing[0]].last_error
            if len(failing) < len(views):
                error = f"on {', '.join(failing)}: {error}"
        merged.append(
            dataclasses.replace(
                base,
                health=health,
                last_error=error,
                active_alerts=max(r.active_alerts for r in views.values()),
            )
        )
        where = f"{group}/{rule_name}"
        if len(views) < len(names):
            differences.append(f"{where} only on {', '.join(views)}")
        elif len({r.health for r in views.values()}) > 1:
            differences.append(f"{where} fails on {', '.join(failing)}")
    return merged, differences


class PrometheusReplicas(PrometheusClient):
    """HA replicas of one Prometheus behind the `PrometheusClient` interface."""

    def __init__(self, replicas: Sequence[PrometheusClient], cfg: PrometheusBackend) -> None:
        if not replicas:
            raise ValueError("PrometheusReplicas needs at least one replica")
        super().__init__(replicas[0].http, cfg.retries)
        self.replicas = list(replicas)
        self.replica_label = cfg.replica_label
        self.urls = [str(r.http.base_url).rstrip("/") for r in self.replicas]
        self.preferred = 0  # the replica that answered last: reads go there first
        self.seen = [_Seen() for _ in self.replicas]
        self.last_targets: TargetMerge | None = None
        # the (replica name, its targets list) the last merge came from
        self._targets_from: list[tuple[str, list[Target]]] = []
        self._alert_since: dict[str, float] = {}  # an alert difference -> first seen
        self._alert_differences: dict[str, str] = {}

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.aclose()

    # ------------------------------------------------------------------ names

    def names(self) -> list[str]:
        """Each replica's name: its replica label's value, else host:port."""
        return [s.name or host_port(u) for s, u in zip(self.seen, self.urls, strict=True)]

    async def _read_config(self, i: int) -> None:
        """The replica's external labels and so its name; a server without the config
        endpoint (VictoriaMetrics) keeps host:port and is not asked again until the next
        membership read, one not answering is asked again at the next merged read."""
        try:
            data = await self.replicas[i].api("status/config")
            labels = external_labels(str(data["yaml"]))
        except (BackendUnreachable, BackendTimeout):
            return
        except (BackendError, KeyError, TypeError):
            labels = {}
        seen = self.seen[i]
        seen.labels, seen.configured = labels, True
        seen.name = labels.get(self.replica_label, "")

    async def _ensure_names(self, indexes: Sequence[int]) -> None:
        unnamed = [i for i in indexes if not self.seen[i].configured]
        if unnamed:
            await asyncio.gather(*(self._read_config(i) for i in unnamed))

    # ------------------------------------------------------------------ failover

    def _order(self) -> list[int]:
        n = len(self.replicas)
        return [(self.preferred + k) % n for k in range(n)]

    async def _get(self, path: str, params: Params) -> httpx.Response:
        """One GET from a healthy replica: the preferred first, one attempt each, then the
        last with the configured retries. A transport error, a timeout or a 5xx moves on
        to the next; when every replica fails, the first configured's failure as a single
        Prometheus would give it."""
        order = self._order()
        failures: dict[int, BackendError | httpx.Response] = {}
        for position, i in enumerate(order):
            replica = self.replicas[i]
            try:
                if position == len(order) - 1:
                    response = await replica._get(path, params)
                else:
                    response = await self._once(replica, path, params)
            except (BackendUnreachable, BackendTimeout) as exc:
                failures[i] = exc
                continue
            if response.status_code >= 500:
                failures[i] = response
                continue
            self.preferred = i
            return response
        first = failures[min(failures)]
        if isinstance(first, BackendError):
            raise first
        return first

    @staticmethod
    async def _once(replica: PrometheusClient, path: str, params: Params) -> httpx.Response:
        try:
            return await replica.http.get(path, params=params)
        except httpx.DecodingError as exc:
            raise replica.undecodable(exc) from exc
        except httpx.TransportError as exc:
            raise replica.transport_error(exc) from exc

    async def send(
        self, method: str, path: str, json_body: Any = None, params: Params = None
    ) -> Any:
        """A write (`reload()`, admin calls) goes to every replica, at once; the first
        configured replica's answer. When some fail, the first failure, naming which
        replicas did and did not take it."""
        results = await asyncio.gather(
            *(r.send(method, path, json_body, params) for r in self.replicas),
            return_exceptions=True,
        )
        failed = [(i, e) for i, e in enumerate(results) if isinstance(e, BaseException)]
        for _, exc in failed:
            if not isinstance(exc, BackendError):
                raise exc
        if failed:
            await self._ensure_names(range(len(self.replicas)))
            names = self.names()
            i, exc = failed[0]
            assert isinstance(exc, BackendError)
            done = [names[j] for j in range(len(results)) if j not in dict(failed)]
            note = f" (done on {', '.join(done)})" if done else ""
            raise type(exc)(exc.backend, f"replica {names[i]}: {exc.reason}{note}") from exc
        return results[0]

    # ------------------------------------------------------------------ merged reads

    async def _everyone(
        self, call: Callable[[PrometheusClient], Awaitable[T]]
    ) -> list[tuple[int, T]]:
        """`call` on every replica at once: the answers of those that answered (in the
        configured order); when none did, the first replica's error."""
        results = await asyncio.gather(*(call(r) for r in self.replicas), return_exceptions=True)
        answered: list[tuple[int, T]] = []
        errors: list[BackendError] = []
        for i, result in enumerate(results):
            if isinstance(result, BackendError):
                errors.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                answered.append((i, result))
        if not answered:
            raise errors[0]
        await self._ensure_names([i for i, _ in answered])
        return answered

    async def targets(self) -> list[Target]:
        answered = await self._everyone(lambda r: r.targets())
        names = self.names()
        per_replica = [(names[i], lst) for i, lst in answered]
        last, sources = self.last_targets, self._targets_from
        if (
            last is not None
            and len(sources) == len(per_replica)
            and all(n == m and a is b for (n, a), (m, b) in zip(sources, per_replica, strict=True))
        ):
            return last.targets  # no replica's list changed (base.get_records gave it again)
        if sum(len(lst) for _, lst in per_replica) > 2000:
            result = await asyncio.to_thread(merge_targets, per_replica, self.replica_label)
        else:
            result = merge_targets(per_replica, self.replica_label)
        self.last_targets, self._targets_from = result, per_replica
        return result.targets

    async def alerts(self) -> list[PromAlert]:
        answered = await self._everyone(lambda r: r.alerts())
        names = self.names()
        merged, differences = merge_alerts(
            [(names[i], lst) for i, lst in answered], self.replica_label
        )
        now = time.monotonic()
        self._alert_since = {k: self._alert_since.get(k, now) for k in differences}
        self._alert_differences = differences
        return merged

    async def rules(self) -> list[Rule]:
        answered = await self._everyone(lambda r: r.rules())
        names = self.names()
        merged, _ = merge_rules([(names[i], lst) for i, lst in answered])
        return merged

    # ------------------------------------------------------------------ membership

    async def _member(self, i: int) -> tuple[Member, list[Rule] | None]:
        replica, url = self.replicas[i], self.urls[i]
        t0 = time.perf_counter()
        try:
            await replica.get_ok("/-/ready")
        except BackendError as exc:
            ms = round((time.perf_counter() - t0) * 1000, 1)
            return Member(url, False, exc.reason, ms, self.names()[i], "not ready"), None
        ms = (time.perf_counter() - t0) * 1000
        build, rules, _ = await asyncio.gather(
            replica.buildinfo(), replica.rules(), self._read_config(i), return_exceptions=True
        )
        version = build.get("version", "") if isinstance(build, dict) else ""
        detail = f"ready, {version}" if version else "ready"
        ruled = rules if isinstance(rules, list) else None
        return Member(url, True, "", round(ms, 1), self.names()[i], detail), ruled

    async def read_membership(self) -> Membership:
        """Every replica now (ready, version, external labels, rules) and what they
        disagree on: targets down on some replicas only (from the last `targets()`),
        rule sets, external labels other than the replica label, alert states that
        stayed different longer than ALERT_GRACE (from the last `alerts()`)."""
        read = await asyncio.gather(*(self._member(i) for i in range(len(self.replicas))))
        members = [m for m, _ in read]
        names = self.names()
        for member, name in zip(members, names, strict=True):
            member.name = name
        disagreements: list[str] = []
        last = self.last_targets
        if last is not None and last.down_on_some:
            n = len(last.down_on_some)
            disagreements.append(
                f"{n} target{'s' if n != 1 else ''} down on some replicas only: "
                + _few(last.down_on_some)
            )
        if last is not None and last.absent_on_some:
            n = len(last.absent_on_some)
            disagreements.append(
                f"{n} target{'s' if n != 1 else ''} scraped by some replicas only: "
                + _few(last.absent_on_some)
            )
        ruled = [(names[i], rules) for i, (_, rules) in enumerate(read) if rules is not None]
        if len(ruled) > 1:
            _, differences = merge_rules(ruled)
            if differences:
                disagreements.append("rule sets differ: " + _few(differences))
        up = [i for i, m in enumerate(members) if m.ok and self.seen[i].labels]
        shared = {names[i]: _labels_key(self.seen[i].labels, self.replica_label) for i in up}
        if len(set(shared.values())) > 1:
            disagreements.append(
                "external labels differ: "
                + "; ".join(f"{n} {_show_labels(v)}" for n, v in shared.items())
            )
        now = time.monotonic()
        lasting = [
            f"{labels}: {what}"
            for labels, what in self._alert_differences.items()
            if now - self._alert_since.get(labels, now) >= ALERT_GRACE
        ]
        if lasting:
            disagreements.append("alert states differ: " + _few(lasting))
        return Membership("prometheus", members, disagreements)


def replica_summary(t: Target) -> str:
    """'a up, b down' (the `replicas` column), '' for a single Prometheus."""
    return ", ".join(f"{name} {health}" for name, health in t.replicas.items())
