"""An Alertmanager gossip cluster read and written as one Alertmanager.

What Alertmanager replicates between peers, and what it does not
(https://prometheus.io/docs/alerting/latest/alertmanager/#high-availability): silences
and the notification log are gossiped; alerts are not: every Prometheus sends every
alert to every peer ("It's important not to load balance traffic between Prometheus and
its Alertmanagers, but instead, point Prometheus to a list of all Alertmanagers"). So:

- alerts are read from every peer and de-duplicated by fingerprint (the freshest
  `updatedAt` wins); an alert one reachable peer lacks is a real disagreement (that
  peer is not receiving from some Prometheus), flagged once the alert is older than
  `ALERT_GRACE`;
- silences are read from every peer and merged by id; a silence is created once, on
  the first reachable peer, and then confirmed on every other reachable peer
  (`GET /api/v2/silence/{id}`) within `[alertmanager] replicate_timeout`;
- `/api/v2/status` of every peer gives the cluster's own view: `cluster.name` (the
  peer's name), `cluster.status` (`ready`, `settling`, `disabled`), `cluster.peers`
  (`name`, `address`), `config.original`, `versionInfo` (the API's schema:
  https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml).

A peer down is a member down: the reads answer from the others; only when every peer
fails does a read raise (the first peer's error, as the one-server client would).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from opskit.clients.alertmanager import AlertmanagerClient, _silence
from opskit.clients.base import parse_time
from opskit.errors import BackendError, BackendUnreachable, NotFound
from opskit.matchers import Matcher
from opskit.models import Alert, Member, Membership, Silence

if TYPE_CHECKING:
    from opskit.config import AlertmanagerBackend

T = TypeVar("T")
EPOCH = datetime.min.replace(tzinfo=UTC)
# An alert reaches each peer on its own (Prometheus posts to each; a new alert reaches
# them within one evaluation and send cycle, a peer that just started gets the next
# resend, `resend_delay` 1m by default): an alert one peer lacks is flagged only once
# it started this long ago, not while it is still arriving.
ALERT_GRACE = timedelta(minutes=2)
# Silences are gossiped (within a second on a healthy cluster; a rejoining peer gets
# the full state in its push-pull sync): a silence changed this recently may still be
# on its way.
SILENCE_GRACE = timedelta(seconds=30)
POLL_EVERY = 0.25  # seconds between two checks of a peer for a replicated silence
MERGE_REUSE = 30.0  # seconds a merge of unchanged answers is reused
LISTED = 3  # names listed in one disagreement sentence


def _short(text: str) -> str:
    return text[:8]


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


# ------------------------------------------------------------------ pure merge logic


def merge_alerts(
    per_peer: Mapping[str, list[Alert] | None],
    now: datetime,
    grace: timedelta = ALERT_GRACE,
    started: Mapping[str, datetime | None] | None = None,
) -> tuple[list[Alert], list[str]]:
    """Alerts of every peer that answered (None: it did not), one per fingerprint (the
    freshest `updatedAt`), in the order first seen; and the disagreements: per peer, the
    alerts it lacks that the others have and that started more than `grace` ago. A
    peer that itself started (`started`: its `/api/v2/status` `uptime`) within `grace`
    is not judged: Alertmanager keeps no alerts over a restart, they come back with
    Prometheus' next resend."""
    answered = {url: alerts for url, alerts in per_peer.items() if alerts is not None}
    if len(answered) == 1:
        return next(iter(answered.values())), []
    merged: dict[str, Alert] = {}
    for alerts in answered.values():
        for a in alerts:
            have = merged.get(a.fingerprint)
            if have is None or (a.updated_at or EPOCH) > (have.updated_at or EPOCH):
                merged[a.fingerprint] = a
    disagreements = []
    settled = now - grace
    for url, alerts in answered.items():
        if len(alerts) == len(merged):
            continue  # fingerprints are unique per peer: it has them all
        up_since = (started or {}).get(url)
        if up_since is not None and up_since > settled:
            continue  # just (re)started: still receiving
        held = {a.fingerprint for a in alerts}
        lacking = [
            a
            for fp, a in merged.items()
            if fp not in held and a.starts_at is not None and a.starts_at < settled
        ]
        if lacking:
            names = sorted({a.alertname for a in lacking})
            disagreements.append(
                f"{url} lacks {len(lacking)} alert(s) the other peers have: {_listing(names)}"
            )
    return list(merged.values()), disagreements


@dataclass(slots=True)
class PeerSilence:
    """A silence as one peer holds it, with its `updatedAt` (what decides the freshest)."""

    silence: Silence
    updated_at: datetime | None


def parse_silences(body: Any) -> list[PeerSilence]:
    """`GET /api/v2/silences` (gettableSilences: `id`, `status.state`, `updatedAt`, ...)."""
    return [PeerSilence(_silence(s), parse_time(s.get("updatedAt"))) for s in body]


def merge_silences(
    per_peer: Mapping[str, list[PeerSilence] | None],
    now: datetime,
    grace: timedelta = SILENCE_GRACE,
) -> tuple[list[Silence], list[str]]:
    """The union of every answering peer's silences by id (the freshest `updatedAt`);
    and the disagreements: a silence (not expired, not changed within `grace`) missing
    on a peer, or in another state there."""
    answered = {url: rows for url, rows in per_peer.items() if rows is not None}
    merged: dict[str, PeerSilence] = {}
    states: dict[str, dict[str, str]] = {}  # id -> url -> state
    for url, rows in answered.items():
        for row in rows:
            sid = row.silence.id
            states.setdefault(sid, {})[url] = row.silence.state
            have = merged.get(sid)
            if have is None or (row.updated_at or EPOCH) > (have.updated_at or EPOCH):
                merged[sid] = row
    disagreements: list[str] = []
    if len(answered) < 2:
        return [row.silence for row in merged.values()], disagreements
    settled = now - grace
    missing: dict[str, list[str]] = {}  # url -> silence ids it lacks
    for sid, row in merged.items():
        if row.updated_at is not None and row.updated_at > settled:
            continue  # still replicating
        seen = states[sid]
        if row.silence.state != "expired":
            for url in answered:
                if url not in seen:
                    missing.setdefault(url, []).append(sid)
        if len(set(seen.values())) > 1:
            on = ", ".join(f"{state} on {url}" for url, state in sorted(seen.items()))
            disagreements.append(f"silence {_short(sid)} differs between peers: {on}")
    for url, ids in missing.items():
        disagreements.append(
            f"{url} lacks {len(ids)} silence(s) the other peers have: "
            f"{_listing([_short(i) for i in ids])}"
        )
    return [row.silence for row in merged.values()], disagreements


def config_hash(status: Mapping[str, Any]) -> str:
    """A short digest of the peer's `config.original` (compared, never shown: the
    configuration holds receivers' secrets)."""
    original = str((status.get("config") or {}).get("original", ""))
    return hashlib.blake2b(original.encode(), digest_size=4).hexdigest()


def cluster_view(status: Mapping[str, Any]) -> tuple[str, str, list[str]]:
    """(the peer's own name, cluster status, the names of the peers it sees)."""
    cluster = status.get("cluster") or {}
    peers = [str(p.get("name", "")) for p in cluster.get("peers") or []]
    return str(cluster.get("name", "")), str(cluster.get("status", "")), peers


def cluster_disagreements(statuses: Mapping[str, Mapping[str, Any]], members: int) -> list[str]:
    """What the reachable peers' `/api/v2/status` bodies (url -> body) disagree on: a
    cluster status other than ready, different peer sets, more peers than configured,
    a different configuration (by digest) or version."""
    out: list[str] = []
    views: dict[str, frozenset[str]] = {}
    for url, body in statuses.items():
        _, status, peers = cluster_view(body)
        views[url] = frozenset(peers)
        if status == "disabled":
            out.append(f"{url}: clustering disabled (no --cluster.listen-address)")
        elif status != "ready":
            out.append(f"{url}: cluster status {status or 'unknown'}")
        if len(peers) > members:
            out.append(f"{url} sees {len(peers)} peers; {members} are configured")
    if len(set(views.values())) > 1:
        seen = ", ".join(f"{url} sees {len(v)}" for url, v in views.items())
        out.append(f"peers see different members: {seen}")
    for what, key in (
        ("configuration", config_hash),
        ("version", lambda b: str((b.get("versionInfo") or {}).get("version", ""))),
    ):
        groups: dict[str, list[str]] = {}
        for url, body in statuses.items():
            groups.setdefault(key(body), []).append(url)
        if len(groups) > 1:
            parts = " vs ".join(f"{', '.join(urls)} ({value})" for value, urls in groups.items())
            out.append(f"{what} differs between peers: {parts}")
    return out


def member_from_status(url: str, body: Mapping[str, Any], latency_ms: float) -> Member:
    name, status, peers = cluster_view(body)
    return Member(url, True, "", round(latency_ms, 1), name, f"{status}, {len(peers)} peers")


# ------------------------------------------------------------------ replication


@dataclass(slots=True)
class Replication:
    """How a silence written once reached the cluster: which peers confirmed it within
    `replicate_timeout`, which reachable ones did not, which were down."""

    action: str  # "created" | "expired"
    silence_id: str
    origin: str  # the peer that took the write
    members: int
    confirmed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # reachable, not confirmed in time
    down: dict[str, str] = field(default_factory=dict)  # url -> reason
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Every configured peer confirmed it."""
        return len(self.confirmed) == self.members

    @property
    def reachable(self) -> int:
        return len(self.confirmed) + len(self.missing)

    def summary(self) -> str:
        """'replicated to 3/3 peers', or '... to 2/2 reachable peers; http://.. down:
        connection refused', naming any peer that did not confirm in time."""
        if self.down:
            text = f"replicated to {len(self.confirmed)}/{self.reachable} reachable peers"
        else:
            text = f"replicated to {len(self.confirmed)}/{self.members} peers"
        if self.missing:
            text += f"; not confirmed in time: {', '.join(self.missing)}"
        for url, reason in self.down.items():
            text += f"; {url} down: {reason}"
        return text


# ------------------------------------------------------------------ the client


@dataclass(slots=True)
class PeerRow:
    """One peer for `opskit alerts --peers`."""

    url: str
    ok: bool
    error: str = ""
    name: str = ""
    cluster_status: str = ""
    peers_seen: int | None = None
    alerts: int | None = None
    silences: int | None = None  # not expired


async def read_peers(peers: Sequence[tuple[str, AlertmanagerClient]]) -> list[PeerRow]:
    """Each peer's own view (status, alerts, live silences), read concurrently."""

    async def one(url: str, peer: AlertmanagerClient) -> PeerRow:
        got = await asyncio.gather(
            peer.status(), peer.alerts(), peer.silences(), return_exceptions=True
        )
        status, alerts, silences = got
        errors: list[BackendError] = []
        for g in got:
            if isinstance(g, BackendError):
                errors.append(g)
            elif isinstance(g, BaseException):
                raise g
        row = PeerRow(url, not errors, errors[0].reason if errors else "")
        if isinstance(status, dict):
            name, state, seen = cluster_view(status)
            row.name, row.cluster_status, row.peers_seen = name, state, len(seen)
        if isinstance(alerts, list):
            row.alerts = len(alerts)
        if isinstance(silences, list):
            row.silences = sum(s.state != "expired" for s in silences)
        return row

    return list(await asyncio.gather(*(one(url, p) for url, p in peers)))


@dataclass(slots=True)
class _Outcome:
    url: str
    value: Any = None
    error: BackendError | None = None
    latency_ms: float = 0.0


class AlertmanagerCluster(AlertmanagerClient):
    """Several Alertmanager peers of one gossip cluster as one `AlertmanagerClient`."""

    name = "alertmanager"

    def __init__(self, peers: Sequence[AlertmanagerClient], cfg: AlertmanagerBackend) -> None:
        super().__init__(peers[0].http, cfg.retries)
        self.peers = list(peers)
        self.urls = [str(p.http.base_url).rstrip("/") for p in self.peers]
        self.replicate_timeout = cfg.replicate_timeout.total_seconds()
        # a peer that failed with a transport error is asked once (no retries, no
        # backoff) until it answers again: a peer down does not slow every read
        self._once = [AlertmanagerClient(p.http, 0) for p in self.peers]
        self._down: set[str] = set()
        self.alert_disagreements: list[str] = []
        self._full_read: dict[str, list[Alert] | None] | None = None  # the last full read
        self._started: dict[str, datetime | None] = {}  # url -> its status' `uptime`
        self.silence_disagreements: list[str] = []
        self.last_replication: Replication | None = None
        self._merge_memo: tuple[tuple[int, ...], list[Any], float, list[Alert]] | None = None

    async def aclose(self) -> None:
        for peer in self.peers:
            await peer.aclose()

    # ---------------------------------------------------------------- fan-out

    async def _each(
        self,
        call: Callable[[AlertmanagerClient], Awaitable[T]],
        peers: Sequence[int] | None = None,
    ) -> list[_Outcome]:
        """`call` on every peer (or the ones at these indexes) concurrently, each as its
        value or its error."""
        chosen = list(range(len(self.peers))) if peers is None else list(peers)

        async def one(i: int) -> _Outcome:
            url = self.urls[i]
            client = self._once[i] if url in self._down else self.peers[i]
            t0 = time.perf_counter()
            try:
                value = await call(client)
            except BackendError as exc:
                outcome = _Outcome(url, error=exc)
                if isinstance(exc, BackendUnreachable):
                    self._down.add(url)
            else:
                outcome = _Outcome(url, value)
                self._down.discard(url)
            outcome.latency_ms = (time.perf_counter() - t0) * 1000
            return outcome

        return list(await asyncio.gather(*(one(i) for i in chosen)))

    @staticmethod
    def _answered(outcomes: list[_Outcome]) -> list[_Outcome]:
        """The outcomes that answered; when none did, the first peer's error."""
        ok = [o for o in outcomes if o.error is None]
        if not ok:
            first = outcomes[0].error
            assert first is not None
            raise first
        return ok

    async def _first(self, call: Callable[[AlertmanagerClient], Awaitable[T]]) -> T:
        """The first peer (in configured order) that answers `call`."""
        first: BackendError | None = None
        for i, _ in enumerate(self.peers):
            (outcome,) = await self._each(call, [i])
            if outcome.error is None:
                return outcome.value  # type: ignore[no-any-return]
            first = first or outcome.error
        assert first is not None
        raise first

    # ---------------------------------------------------------------- reads

    async def healthy(self) -> None:
        await self._first(lambda p: p.healthy())

    async def status(self) -> dict[str, Any]:
        """The first reachable peer's status (what one-server callers expect)."""
        return await self._first(lambda p: p.status())

    async def alerts(
        self,
        silenced: bool = True,
        inhibited: bool = True,
        matchers: list[Matcher] | None = None,
    ) -> list[Alert]:
        outcomes = await self._each(lambda p: p.alerts(silenced, inhibited, matchers))
        answered = self._answered(outcomes)
        # reuse the last merge when every peer gave the very same records again
        # (get_records: an unchanged large body is not parsed again)
        key = tuple(id(o.value) if o.error is None else 0 for o in outcomes)
        memo = self._merge_memo
        if memo is not None and memo[0] == key and time.monotonic() - memo[2] < MERGE_REUSE:
            return memo[3]
        per_peer = {o.url: (o.value if o.error is None else None) for o in outcomes}
        merged, disagreements = merge_alerts(per_peer, datetime.now(UTC), started=self._started)
        # a filtered read (some alerts left out by matchers or flags) says nothing of
        # what the peers hold: only the full read judges them
        if silenced and inhibited and not matchers:
            self.alert_disagreements = disagreements
            self._full_read = per_peer
        self._merge_memo = (key, [o.value for o in answered], time.monotonic(), merged)
        return merged

    async def _peer_silences(self, peer: AlertmanagerClient) -> list[PeerSilence]:
        body = await peer.get_json("/api/v2/silences")
        return peer.parse("silences", lambda: parse_silences(body))

    async def silences(self) -> list[Silence]:
        outcomes = await self._each(self._peer_silences)
        self._answered(outcomes)
        per_peer = {o.url: (o.value if o.error is None else None) for o in outcomes}
        merged, self.silence_disagreements = merge_silences(per_peer, datetime.now(UTC))
        return merged

    async def read_membership(self) -> Membership:
        """Every peer's `/api/v2/status`: its name, cluster status and peers; what the
        reachable peers disagree on, with the alert and silence disagreements of the
        last reads. Never raises: a peer that fails is a member down."""
        outcomes = await self._each(lambda p: p.status())
        members: list[Member] = []
        statuses: dict[str, dict[str, Any]] = {}
        for o in outcomes:
            if o.error is None and isinstance(o.value, dict):
                statuses[o.url] = o.value
                self._started[o.url] = parse_time(o.value.get("uptime"))
                members.append(member_from_status(o.url, o.value, o.latency_ms))
            else:
                reason = o.error.reason if o.error else "unexpected status response"
                members.append(Member(o.url, False, reason, round(o.latency_ms, 1)))
        disagreements = cluster_disagreements(statuses, len(self.peers)) if statuses else []
        if len(statuses) > 1:
            if self._full_read is not None:  # judged again with the peers' uptimes now
                now = datetime.now(UTC)
                _, found = merge_alerts(self._full_read, now, started=self._started)
                self.alert_disagreements = found
            disagreements += self.alert_disagreements + self.silence_disagreements
        return Membership("alertmanager", members, disagreements)

    async def peer_rows(self) -> list[PeerRow]:
        return await read_peers(list(zip(self.urls, self.peers, strict=True)))

    # ---------------------------------------------------------------- writes

    async def _reachable(self) -> tuple[list[int], dict[str, str]]:
        """The peers answering `/-/healthy` now (indexes, in configured order), and the
        others with their reasons; none answering raises the first peer's error."""
        outcomes = await self._each(lambda p: p.healthy())
        self._answered(outcomes)
        up = [i for i, o in enumerate(outcomes) if o.error is None]
        down = {
            o.url: o.error.reason.removeprefix(f"{o.url}: ")
            for o in outcomes
            if o.error is not None
        }
        return up, down

    async def _confirm(self, silence_id: str, peers: list[int], expired: bool) -> list[str]:
        """The peers (of `peers`) that show the silence (expired, with `expired`) within
        `replicate_timeout`, polling each every POLL_EVERY seconds."""
        deadline = time.monotonic() + self.replicate_timeout

        async def has_it(peer: AlertmanagerClient) -> bool:
            try:
                body = await peer.get_json(f"/api/v2/silence/{silence_id}")
            except BackendError:  # not there yet (404), or the peer not answering
                return False
            if not isinstance(body, dict):
                return False
            return not expired or (body.get("status") or {}).get("state") == "expired"

        async def one(i: int) -> str | None:
            peer = self._once[i]  # each check is retried by the loop, not the client
            while True:
                left = deadline - time.monotonic()
                try:
                    if await asyncio.wait_for(has_it(peer), max(left, 0.5)):
                        return self.urls[i]
                except TimeoutError:
                    return None
                if time.monotonic() + POLL_EVERY > deadline:
                    return None
                await asyncio.sleep(POLL_EVERY)

        found = await asyncio.gather(*(one(i) for i in peers))
        return [url for url in found if url is not None]

    async def _replicate(
        self, action: str, silence_id: str, origin: int, up: list[int], down: dict[str, str],
        t0: float,
    ) -> None:  # fmt: skip
        confirmed = await self._confirm(silence_id, up, expired=action == "expired")
        missing = [self.urls[i] for i in up if self.urls[i] not in confirmed]
        self.last_replication = Replication(
            action, silence_id, self.urls[origin], len(self.peers), confirmed, missing, down,
            round(time.monotonic() - t0, 2),
        )  # fmt: skip

    async def add_silence(
        self,
        matchers: list[Matcher],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """Created once, on the first reachable peer (never once per peer: gossip
        carries it), then confirmed on every reachable peer; `last_replication` says
        how that went."""
        t0 = time.monotonic()
        self.last_replication = None
        up, down = await self._reachable()
        origin = up[0]
        silence_id = await self.peers[origin].add_silence(
            matchers, starts_at, ends_at, created_by, comment
        )
        await self._replicate("created", silence_id, origin, up, down, t0)
        return silence_id

    async def expire_silence(self, silence_id: str) -> None:
        """Expired once (on the first reachable peer that has it), then confirmed
        expired on every reachable peer."""
        t0 = time.monotonic()
        self.last_replication = None
        up, down = await self._reachable()
        for n, origin in enumerate(up):
            try:
                await self.peers[origin].expire_silence(silence_id)
            except NotFound:
                if n == len(up) - 1:
                    raise
                continue  # not there yet: another peer may have it
            break
        await self._replicate("expired", silence_id, origin, up, down, t0)

    async def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """To every peer, as Prometheus does (alerts are not gossiped)."""
        self._answered(await self._each(lambda p: p.post_alerts(alerts)))
