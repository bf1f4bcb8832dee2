"""Restore drills: a backup is only worth what a restore proves.

`drill_elasticsearch` restores the newest SUCCESS snapshot (every index, or a random
sample) under a scratch prefix, waits for the copies to recover, compares each copy's
documents and mapping with the live index of the same name where it still exists, and
deletes the copies again, also when anything failed. `drill_grafana` restores a local
Grafana backup into a scratch organisation, reads everything back, compares it with the
backup, and deletes the organisation.

Scratch objects carry the run id (`20260101t120000-1a2b`: the UTC start and four random
hex digits) so a later run recognises what a killed one left behind and removes it:

    Elasticsearch  <prefix><run id>-<index>   e.g. drill-20260101t120000-1a2b-logs-app
    Grafana        opskit-drill-<run id>      an organisation

Leftovers younger than `GRACE` are left alone (another drill may still be running,
from another host) and reported. Prints nothing; returns reports whose findings follow
opskit.findings.
"""

from __future__ import annotations

import contextlib
import random
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from opskit.errors import (
    AuthFailed,
    BackendError,
    BackendUnreachable,
    NotFound,
    OpskitError,
    UsageError,
)
from opskit.findings import Finding, Severity
from opskit.findings import exit_code as findings_exit_code
from opskit.tasks.batches import batches, index_states
from opskit.tasks.grafana_backup import bounded

if TYPE_CHECKING:
    from opskit.clients.elasticsearch import ElasticsearchClient
    from opskit.clients.grafana import GrafanaClient
    from opskit.config import Settings
    from opskit.http import RequestLog
    from opskit.models_es import SnapshotInfo

T = TypeVar("T")

DEFAULT_PREFIX = "drill-"
ORG_PREFIX = "opskit-drill-"
GRACE = timedelta(hours=1)  # younger leftovers may belong to a drill still running
RUN_ID = re.compile(r"(?P<stamp>\d{8}t\d{6})-[0-9a-f]{4}")
STAMP = "%Y%m%dt%H%M%S"
MAX_INDEX_NAME = 255  # bytes, Elasticsearch's limit
IndexStatus = Literal["ok", "mismatch", "unverified", "failed", "skipped"]
DrillStatus = Literal["pass", "warn", "fail", "skipped"]


def new_run_id(now: datetime | None = None) -> str:
    return f"{(now or datetime.now(UTC)).strftime(STAMP)}-{secrets.token_hex(2)}"


def run_started(run_id: str) -> datetime | None:
    match = RUN_ID.fullmatch(run_id)
    if match is None:
        return None
    return datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)


def check_prefix(prefix: str) -> str:
    """A scratch prefix Elasticsearch accepts that no live index name starts with by
    accident: lower case, no separators or wildcards, not starting with - _ + or ."""
    if not prefix or prefix != prefix.lower() or set(prefix) & set(' "*\\<|,>/?#:'):
        raise UsageError(f"--prefix {prefix!r}: lower case, without spaces, commas or wildcards")
    if prefix.startswith(("-", "_", "+", ".")):
        raise UsageError(f"--prefix {prefix!r} must not start with - _ + or .")
    return prefix


def scratch_index(prefix: str, run_id: str, index: str) -> str:
    return f"{prefix}{run_id}-{index}"


def parse_scratch_index(prefix: str, name: str) -> tuple[str, str] | None:
    """(run id, original index) when `name` is a drill's scratch index under `prefix`."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    match = RUN_ID.match(rest)
    if match is None or rest[match.end() : match.end() + 1] != "-":
        return None
    return match.group(0), rest[match.end() + 1 :]


def is_leftover(run_id: str, mine: str, now: datetime, grace: timedelta = GRACE) -> bool:
    """A scratch object of another run started at least `grace` ago."""
    started = run_started(run_id)
    return run_id != mine and started is not None and now - started >= grace


def severity_of(findings: Iterable[Finding]) -> DrillStatus:
    worst = max((f.severity for f in findings), key=("ok", "info", "warning", "critical").index)
    return {"critical": "fail", "warning": "warn"}.get(worst, "pass")  # type: ignore[return-value]


# ================================================================== Elasticsearch


@dataclass
class IndexCheck:
    """One index of the snapshot, restored as `scratch`, compared with the live index."""

    index: str
    scratch: str
    status: IndexStatus
    health: str = ""
    docs_restored: int | None = None
    docs_live: int | None = None  # None: no live index of that name any more
    mapping: Literal["same", "differs", "no live index", ""] = ""
    mapping_diff: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class EsDrillReport:
    repository: str
    run_id: str
    prefix: str
    snapshot: str | None = None
    snapshot_start: datetime | None = None
    snapshot_indices: int = 0  # indices the snapshot holds
    sample: int | None = None
    checks: list[IndexCheck] = field(default_factory=list)
    removed_leftovers: list[str] = field(default_factory=list)
    kept_leftovers: list[str] = field(default_factory=list)  # younger than GRACE
    cleaned: list[str] = field(default_factory=list)  # this run's scratch indices, deleted
    cleanup_error: str | None = None
    findings: list[Finding] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    @property
    def status(self) -> DrillStatus:
        return severity_of(self.findings)

    @property
    def exit_code(self) -> int:
        return findings_exit_code(self.findings)

    def add(self, severity: Severity, subject: str, summary: str, **evidence: Any) -> None:
        self.findings.append(
            Finding(severity, subject, summary, source="drill elasticsearch", evidence=evidence)
        )


def choose_snapshot(snapshots: list[SnapshotInfo], name: str | None) -> SnapshotInfo | None:
    """The named snapshot, else the newest SUCCESS backup (snapshots oldest first);
    retention's archives (kind "archive") hold data the cluster deleted on purpose, so
    there would be nothing live to compare with."""
    if name is not None:
        return next((s for s in snapshots if s.name == name), None)
    done = [s for s in snapshots if s.state == "SUCCESS" and s.kind != "archive"]
    return done[-1] if done else None


def choose_indices(
    indices: list[str], prefix: str, sample: int | None, rng: random.Random | None = None
) -> tuple[list[str], list[str]]:
    """(indices to drill, indices left out and why they are: dot-prefixed system/hidden
    indices and data stream backing indices restore only with their feature state or
    data stream; scratch copies of an earlier drill are not the cluster's data)."""
    eligible = [
        i for i in indices if not i.startswith(".") and parse_scratch_index(prefix, i) is None
    ]
    left_out = [i for i in indices if i not in eligible]
    if sample is not None and sample < len(eligible):
        eligible = sorted((rng or random.Random()).sample(eligible, sample))
    return eligible, left_out


def flatten_mapping(mapping: dict[str, Any], path: str = "") -> dict[str, str]:
    """field path -> type (objects by their sub-fields, multi-fields as path.sub)."""
    out: dict[str, str] = {}
    for name, spec in (mapping.get("properties") or {}).items():
        here = f"{path}{name}"
        if not isinstance(spec, dict):
            continue
        if "properties" in spec:
            out.update(flatten_mapping(spec, here + "."))
            if spec.get("type") not in (None, "object"):
                out[here] = str(spec["type"])
        else:
            out[here] = str(spec.get("type", "object"))
        for sub, subspec in (spec.get("fields") or {}).items():
            if isinstance(subspec, dict):
                out[f"{here}.{sub}"] = str(subspec.get("type", ""))
    return out


def mapping_diff(restored: dict[str, Any], live: dict[str, Any]) -> dict[str, list[str]]:
    """Fields only in the restored copy, only in the live index, or typed differently;
    empty when the mappings agree (ignoring `_meta`-like top-level extras)."""
    a, b = flatten_mapping(restored), flatten_mapping(live)
    diff = {
        "only_restored": sorted(set(a) - set(b)),
        "only_live": sorted(set(b) - set(a)),
        "changed": sorted(f"{k}: {a[k]} -> {b[k]}" for k in set(a) & set(b) if a[k] != b[k]),
    }
    for key in ("dynamic", "_source", "_routing"):
        if restored.get(key) != live.get(key):
            diff["changed"].append(f"{key}: {restored.get(key)!r} -> {live.get(key)!r}")
    return {k: v for k, v in diff.items() if v}


async def _mappings(es: ElasticsearchClient, names: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for batch in batches(names):  # short URLs
        out.update(await es.mappings(batch))
    return out


async def _restore_scratch(
    es: ElasticsearchClient, repository: str, snapshot: str, indices: list[str], replacement: str
) -> None:
    await es.restore_copies(repository, snapshot, indices, replacement)


async def _existing(es: ElasticsearchClient, pattern: str) -> list[str]:
    try:
        return sorted(i.name for i in await es.indices(pattern, include_hidden=True))
    except NotFound:
        return []


async def _delete(es: ElasticsearchClient, names: list[str]) -> None:
    for batch in batches(names):
        await es.delete_indices(batch)


async def remove_es_leftovers(
    es: ElasticsearchClient, prefix: str, run_id: str, now: datetime, grace: timedelta = GRACE
) -> tuple[list[str], list[str]]:
    """Delete scratch indices of earlier drills (killed before they cleaned up);
    (removed, kept because younger than `grace`)."""
    removed: list[str] = []
    kept: list[str] = []
    for name in await _existing(es, f"{prefix}*"):
        parsed = parse_scratch_index(prefix, name)
        if parsed is None or parsed[0] == run_id:
            continue
        (removed if is_leftover(parsed[0], run_id, now, grace) else kept).append(name)
    try:
        await _delete(es, removed)
    except BackendUnreachable:
        raise
    except BackendError as exc:
        return [], kept + [f"{n} (could not delete: {exc.reason})" for n in removed]
    return removed, kept


async def drill_elasticsearch(
    es: ElasticsearchClient,
    repository: str,
    *,
    snapshot: str | None = None,
    sample: int | None = None,
    prefix: str = DEFAULT_PREFIX,
    timeout: str = "300s",
    grace: timedelta = GRACE,
    rng: random.Random | None = None,
    note: Callable[[str], None] | None = None,
) -> EsDrillReport:
    """Restore, wait, compare, delete. Backend errors before anything was restored
    propagate (the caller says unreachable or failed); from the restore on, every
    problem is a finding and the scratch indices are deleted whatever happened."""
    say = note or (lambda text: None)
    check_prefix(prefix)
    if sample is not None and sample < 1:
        raise UsageError("--sample must be at least 1")
    now = datetime.now(UTC)
    report = EsDrillReport(repository, new_run_id(now), prefix, sample=sample)

    report.removed_leftovers, report.kept_leftovers = await remove_es_leftovers(
        es, prefix, report.run_id, now, grace
    )
    if report.removed_leftovers:
        report.add(
            "info",
            "elasticsearch",
            f"removed {len(report.removed_leftovers)} scratch index(es) an earlier drill "
            "left behind",
            indices=report.removed_leftovers,
        )
    if report.kept_leftovers:
        report.add(
            "info",
            "elasticsearch",
            f"{len(report.kept_leftovers)} scratch index(es) of another drill left alone "
            f"(younger than {grace}, or not deletable; a later drill removes them)",
            indices=report.kept_leftovers,
        )

    from opskit.tasks.snapshots import list_snapshots

    snapshots = await list_snapshots(es, repository)
    chosen = choose_snapshot(snapshots, snapshot)
    if chosen is None:
        if snapshot is not None:
            raise UsageError(f"no snapshot {snapshot!r} in repository {repository!r}")
        report.add(
            "critical",
            repository,
            f"no SUCCESS snapshot in repository {repository!r}: nothing a restore could prove",
            snapshots=len(snapshots),
        )
        report.finished_at = datetime.now(UTC)
        return report
    report.snapshot, report.snapshot_start = chosen.name, chosen.start
    report.snapshot_indices = len(chosen.indices)
    if chosen.state != "SUCCESS":
        report.add(
            "critical",
            chosen.name,
            f"snapshot {chosen.name} is {chosen.state}, not SUCCESS: not drilled",
            state=chosen.state,
        )
        report.finished_at = datetime.now(UTC)
        return report

    indices, left_out = choose_indices(chosen.indices, prefix, sample, rng)
    for name in left_out:
        report.checks.append(
            IndexCheck(
                name,
                "",
                "skipped",
                notes=["system, hidden or data stream index (restored with its feature state "
                       "or data stream), or an earlier drill's copy"],
            )
        )  # fmt: skip
    if not indices:
        report.add(
            "warning",
            chosen.name,
            f"snapshot {chosen.name} has no index a drill can restore",
            indices=chosen.indices,
        )
        report.finished_at = datetime.now(UTC)
        return report

    checks = {i: IndexCheck(i, scratch_index(prefix, report.run_id, i), "ok") for i in indices}
    too_long = [c for c in checks.values() if len(c.scratch.encode()) > MAX_INDEX_NAME]
    for c in too_long:
        c.status, c.scratch = "skipped", ""
        c.notes.append(f"name too long for the scratch prefix (over {MAX_INDEX_NAME} bytes)")
        del checks[c.index]
    report.checks.extend(checks.values())
    report.checks.extend(too_long)
    if not checks:  # never an empty index list: that would restore everything
        report.add("warning", chosen.name, f"snapshot {chosen.name}: no index left to drill")
        report.finished_at = datetime.now(UTC)
        return report
    mine = f"{prefix}{report.run_id}-*"
    try:
        say(f"restore {len(checks)} index(es) of {repository}:{chosen.name} as {mine}")
        await _restore_scratch(
            es, repository, chosen.name, list(checks), f"{prefix}{report.run_id}-$1"
        )
        say("wait for the scratch indices to recover")
        await _wait(es, [c.scratch for c in checks.values()], timeout, report)
        say("compare documents and mappings")
        await _compare(es, list(checks.values()))
    except BackendUnreachable:
        raise  # the caller says unreachable; the scratch indices go in `finally`
    except BackendError as exc:
        for c in checks.values():
            if c.status == "ok" and c.docs_restored is None:
                c.status = "failed"
                c.notes.append(f"restore failed: {exc.reason}")
        report.add("critical", chosen.name, f"restore of {chosen.name} failed: {exc.reason}")
    finally:
        await _cleanup(es, mine, report)
    _judge(report, chosen, list(checks.values()))
    report.finished_at = datetime.now(UTC)
    return report


async def _wait(
    es: ElasticsearchClient, names: list[str], timeout: str, report: EsDrillReport
) -> None:
    for batch in batches(names):
        try:
            await es.wait_for_health(batch, status="yellow", timeout=timeout)
        except BackendError as exc:  # 408 on timeout, 404 missing: _compare says which
            report.add("warning", "elasticsearch", f"waiting for recovery: {exc.reason}")


async def _compare(es: ElasticsearchClient, checks: list[IndexCheck]) -> None:
    found: dict[str, str] = {}
    for batch in batches([c.scratch for c in checks]):
        with contextlib.suppress(NotFound):
            found.update({i.name: i.health for i in await es.indices(",".join(batch))})
    live = await index_states(es, [c.index for c in checks])

    async def count(name: str) -> int | None:
        try:
            return await es.count(name)
        except NotFound:
            return None

    present = [c for c in checks if c.scratch in found]
    for c in checks:
        if c.scratch not in found:
            c.status, c.health = "failed", "missing"
            c.notes.append("not restored: no scratch index after the restore")
        else:
            c.health = found[c.scratch]
    good = [c for c in present if c.health in ("green", "yellow")]
    for c in present:
        if c not in good:
            c.status = "failed"
            c.notes.append(
                f"health {c.health or 'unknown'} after the restore: shards did not recover"
            )
    restored_counts = await bounded([c.scratch for c in good], count)
    open_live = [c for c in good if live.get(c.index) == "open"]
    live_counts = await bounded([c.index for c in open_live], count)
    for c, n in zip(good, restored_counts, strict=True):
        c.docs_restored = n
    for c, n in zip(open_live, live_counts, strict=True):
        c.docs_live = n
    restored_maps = await _mappings(es, [c.scratch for c in good])
    live_maps = await _mappings(es, [c.index for c in good if c.index in live])
    for c in good:
        state = live.get(c.index)
        if state is None:
            c.status, c.mapping = "unverified", "no live index"
            c.notes.append(
                "the live index is gone (deleted since the snapshot): nothing to compare"
            )
            continue
        if state != "open":
            c.notes.append("the live index is closed: documents not compared")
        diff = mapping_diff(restored_maps.get(c.scratch, {}), live_maps.get(c.index, {}))
        c.mapping, c.mapping_diff = ("differs", diff) if diff else ("same", {})
        if diff:
            c.status = "mismatch"
        if c.docs_live is not None and c.docs_live != c.docs_restored:
            c.status = "mismatch"


async def _cleanup(es: ElasticsearchClient, pattern: str, report: EsDrillReport) -> None:
    """Delete every scratch index of this run; never raises over an error in flight."""
    try:
        names = await _existing(es, pattern)
        await _delete(es, names)
        report.cleaned = names
        left = await _existing(es, pattern)
    except (BackendError, OpskitError) as exc:
        report.cleanup_error = str(exc)
        left = []
    if report.cleanup_error or left:
        why = report.cleanup_error or f"still there: {', '.join(left)}"
        report.add(
            "warning",
            "elasticsearch",
            f"scratch indices {pattern} not all deleted ({why}); the next drill removes them",
            pattern=pattern,
        )


def _judge(report: EsDrillReport, snap: SnapshotInfo, checks: list[IndexCheck]) -> None:
    when = snap.start.isoformat(timespec="seconds").replace("+00:00", "Z") if snap.start else "?"
    for c in checks:
        evidence: dict[str, Any] = {
            "scratch": c.scratch,
            "health": c.health,
            "docs_restored": c.docs_restored,
            "docs_live": c.docs_live,
            "mapping": c.mapping,
        }
        if c.mapping_diff:
            evidence["mapping_diff"] = c.mapping_diff
        if c.status == "failed":
            report.add("critical", c.index, "; ".join(c.notes) or "restore failed", **evidence)
        elif c.status == "unverified":
            report.add(
                "info",
                c.index,
                f"restored {c.docs_restored} documents; the live index is gone, nothing to "
                "compare with",
                **evidence,
            )
        elif c.status == "mismatch":
            parts = []
            if c.docs_live is not None and c.docs_live != c.docs_restored:
                parts.append(
                    f"{c.docs_restored} documents restored, {c.docs_live} in the live index"
                )
            if c.mapping == "differs":
                parts.append("mapping differs from the live index")
            report.add(
                "warning",
                c.index,
                f"{'; '.join(parts)}: the live index changed since the snapshot ({when}), "
                "or the snapshot does not hold what the index held",
                **evidence,
            )
        elif c.status == "ok":
            docs = f"{c.docs_restored} documents"
            extra = "" if c.docs_live is not None else " (live index closed: not counted)"
            report.add(
                "info", c.index, f"restored {docs}, as the live index; mapping the same{extra}",
                **evidence,
            )  # fmt: skip
    drilled = [c for c in checks if c.status != "skipped"]
    ok = sum(c.status in ("ok", "unverified") for c in drilled)
    skipped = [c.index for c in report.checks if c.status == "skipped"]
    report.add(
        "info",
        snap.name,
        f"drilled {len(drilled)} of {report.snapshot_indices} index(es) of {snap.name}: "
        f"{ok} restored as expected" + (f", {len(skipped)} left out" if skipped else ""),
        snapshot=snap.name,
        repository=report.repository,
        run_id=report.run_id,
        left_out=skipped,
    )


# ================================================================== Grafana


@dataclass
class GrafanaDrillReport:
    run_id: str
    backup: str | None = None  # the backup's path
    org: str = ""  # the scratch organisation's name
    org_id: int | None = None
    org_deleted: bool = False
    skipped: str | None = None  # why the drill could not run
    counts: dict[str, int] = field(default_factory=dict)  # in the backup
    compared: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> ok, differs
    removed_leftovers: list[str] = field(default_factory=list)
    kept_leftovers: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    @property
    def status(self) -> DrillStatus:
        return "skipped" if self.skipped else severity_of(self.findings)

    @property
    def exit_code(self) -> int:
        return findings_exit_code(self.findings)

    def add(self, severity: Severity, subject: str, summary: str, **evidence: Any) -> None:
        self.findings.append(
            Finding(severity, subject, summary, source="drill grafana", evidence=evidence)
        )


NEED_ADMIN = (
    "these credentials cannot create organisations: a drill restores into a scratch "
    "organisation, which needs a Grafana server admin login (basic auth; a service-account "
    "token belongs to one organisation)"
)


def scratch_client(settings: Settings, org_id: int, log: RequestLog | None = None) -> GrafanaClient:
    """A client of the same login, signed in to the scratch organisation."""
    from opskit.clients.grafana import GrafanaClient
    from opskit.http import build_http

    cfg = settings.grafana
    http = build_http("grafana", cfg, log, {"X-Grafana-Org-Id": str(org_id)})
    return GrafanaClient(http, cfg.retries)


async def remove_grafana_leftovers(
    client: GrafanaClient, run_id: str, now: datetime, grace: timedelta = GRACE
) -> tuple[list[str], list[str]]:
    removed: list[str] = []
    kept: list[str] = []
    for org_id, name in [(o.id, o.name) for o in await client.orgs()]:
        if not name.startswith(ORG_PREFIX):
            continue
        other = name[len(ORG_PREFIX) :]
        if RUN_ID.fullmatch(other) is None or other == run_id:
            continue
        if not is_leftover(other, run_id, now, grace):
            kept.append(name)
            continue
        try:
            await client.delete_org(org_id)
        except AuthFailed:
            raise
        except BackendError as exc:
            kept.append(f"{name} (could not delete: {exc.reason})")
            continue
        removed.append(name)
    return removed, kept


def _folder_key(f: dict[str, Any]) -> tuple[str, str, str]:
    return str(f["uid"]), str(f.get("title", "")), str(f.get("parentUid") or "")


async def drill_grafana(
    client: GrafanaClient,
    settings: Settings,
    backup_spec: str | None = None,
    *,
    log: RequestLog | None = None,
    grace: timedelta = GRACE,
    note: Callable[[str], None] | None = None,
) -> GrafanaDrillReport:
    """Restore a local backup (`latest` by default) into a scratch organisation, compare
    it with the backup, delete the organisation."""
    from opskit.tasks.backup_store import default_dir, list_backups, resolve
    from opskit.tasks.grafana_archive import BadArchive, opened
    from opskit.tasks.grafana_restore import CorruptBackup, load_backup

    say = note or (lambda text: None)
    now = datetime.now(UTC)
    report = GrafanaDrillReport(new_run_id(now))
    directory = default_dir(settings.backup.dir)
    if backup_spec in (None, "latest") and not list_backups(directory, "grafana").backups:
        report.add(
            "critical",
            "grafana",
            f"no Grafana backup in {directory}: nothing a restore could prove",
            directory=str(directory),
        )
        report.finished_at = datetime.now(UTC)
        return report
    path = resolve(backup_spec or "latest", directory, "grafana")
    report.backup = str(path)
    try:
        with opened(path) as unpacked:  # a directory, or a .tar.gz unpacked and verified
            backup = load_backup(unpacked)
    except (BadArchive, CorruptBackup, UsageError) as exc:
        report.add("critical", path.name, f"backup does not load: {exc}", backup=str(path))
        report.finished_at = datetime.now(UTC)
        return report
    if backup.manifest.get("complete") is False:
        missing = backup.manifest.get("missing") or []
        report.add(
            "warning",
            path.name,
            f"the backup is incomplete: {len(missing)} object(s) were not backed up and "
            "cannot be restored",
            missing=missing[:20],
        )
    report.counts = {
        "folders": len(backup.folders),
        "dashboards": len(backup.dashboards),
        "datasources": len(backup.datasources),
    }

    try:
        report.removed_leftovers, report.kept_leftovers = await remove_grafana_leftovers(
            client, report.run_id, now, grace
        )
    except AuthFailed as exc:
        return _skip(report, f"{NEED_ADMIN} ({exc.reason})")
    if report.removed_leftovers:
        report.add(
            "info",
            "grafana",
            f"removed {len(report.removed_leftovers)} scratch organisation(s) an earlier "
            "drill left behind",
            orgs=report.removed_leftovers,
        )
    if report.kept_leftovers:
        report.add(
            "info",
            "grafana",
            f"{len(report.kept_leftovers)} scratch organisation(s) of another drill left "
            f"alone (younger than {grace}, or not deletable)",
            orgs=report.kept_leftovers,
        )

    report.org = f"{ORG_PREFIX}{report.run_id}"
    try:
        report.org_id = await client.create_org(report.org)
    except AuthFailed as exc:
        return _skip(report, f"{NEED_ADMIN} ({exc.reason})")
    say(f"restore {path.name} into organisation {report.org} (id {report.org_id})")
    try:
        scratch = scratch_client(settings, report.org_id, log)
        try:
            await _restore_and_compare(scratch, backup, report)
        finally:
            await scratch.aclose()
    except BackendError as exc:
        report.add("critical", report.org, f"restore into the scratch organisation failed: {exc}")
    finally:
        try:
            await client.delete_org(report.org_id)
            report.org_deleted = report.org not in {o.name for o in await client.orgs()}
        except BackendError as exc:
            report.add(
                "warning",
                report.org,
                f"scratch organisation {report.org} (id {report.org_id}) not deleted: {exc}; "
                "the next drill removes it",
                org_id=report.org_id,
            )
        else:
            if not report.org_deleted:
                report.add(
                    "warning",
                    report.org,
                    f"scratch organisation {report.org} still listed after its deletion",
                    org_id=report.org_id,
                )
    report.finished_at = datetime.now(UTC)
    return report


def _skip(report: GrafanaDrillReport, reason: str) -> GrafanaDrillReport:
    report.skipped = reason
    report.add("warning", "grafana", f"drill skipped: {reason}")
    report.finished_at = datetime.now(UTC)
    return report


async def _restore_and_compare(
    scratch: GrafanaClient, backup: Any, report: GrafanaDrillReport
) -> None:
    from opskit.tasks.grafana_backup import folder_tree
    from opskit.tasks.grafana_restore import apply_restore, normalized, plan_restore

    plan = await plan_restore(scratch, backup, into=report.org, source_org=backup.primary.id)
    result = await apply_restore(scratch, plan)
    for failure in result.failures:
        report.add("critical", report.org, f"restore: {failure}")

    # folders: uid, title and parent as the backup has them
    want_folders = {_folder_key(f) for f in backup.folders}
    have_folders = {_folder_key(f) for f in await folder_tree(scratch)}
    missing_f = sorted(want_folders - have_folders)
    extra_f = sorted(have_folders - want_folders)
    for uid, title, parent in missing_f:
        report.add(
            "critical", f"folder {uid}", f"folder {title!r} (parent {parent or 'root'}) not "
            "restored as the backup has it",
        )  # fmt: skip
    for uid, title, _ in extra_f:
        report.add("critical", f"folder {uid}", f"folder {title!r} restored but not in the backup")
    report.compared["folders"] = {
        "ok": len(want_folders & have_folders),
        "differs": len(missing_f) + len(extra_f),
    }

    # dashboards by uid: the model (ignoring id and version) and the folder
    wanted = {str(d["uid"]): d for d in backup.dashboards}
    got = await bounded(list(wanted), scratch.find_dashboard)
    ok = differs = 0
    for (uid, item), now in zip(wanted.items(), got, strict=True):
        title = str(item["dashboard"].get("title", ""))
        if now is None:
            problem = "not found in the scratch organisation"
        elif normalized(now.model) != normalized(dict(item["dashboard"])):
            keys = sorted(
                k
                for k in set(now.model) | set(item["dashboard"])
                if k not in ("id", "version") and now.model.get(k) != item["dashboard"].get(k)
            )
            problem = f"model differs from the backup ({', '.join(keys[:5])})"
        elif now.folder_uid != str(item.get("folderUid") or ""):
            problem = f"in folder {now.folder_uid or 'root'}, not {item.get('folderUid') or 'root'}"
        else:
            ok += 1
            continue
        differs += 1
        report.add("critical", f"dashboard {uid}", f"{title}: {problem}")
    hits = await scratch.search_all("dash-db")
    for extra in sorted({h.uid for h in hits} - set(wanted)):
        differs += 1
        report.add("critical", f"dashboard {extra}", "restored but not in the backup")
    report.compared["dashboards"] = {"ok": ok, "differs": differs}

    # data sources by name: type and url as in the backup
    have = {d.name: d for d in await scratch.datasources()}
    ok = differs = 0
    for ds in backup.datasources:
        name = str(ds.get("name", ""))
        found = have.get(name)
        if found is None:
            problem = "not found in the scratch organisation"
        elif found.type != ds.get("type") or str(found.raw.get("url", "")) != str(
            ds.get("url", "")
        ):
            problem = (
                f"restored as type {found.type} at {found.raw.get('url', '')!r}, the backup "
                f"has {ds.get('type')} at {ds.get('url', '')!r}"
            )
        else:
            ok += 1
            continue
        differs += 1
        report.add("critical", f"data source {name}", problem)
    report.compared["datasources"] = {"ok": ok, "differs": differs}

    counts = ", ".join(
        f"{v['ok']}/{report.counts.get(k, 0)} {k}" for k, v in report.compared.items()
    )
    report.add(
        "info",
        Path(str(report.backup)).name,
        f"restored into {report.org} and compared: {counts} as in the backup",
        **{k: v for k, v in report.compared.items()},
        secrets_note="data source secrets are never in a backup: not compared",
    )
