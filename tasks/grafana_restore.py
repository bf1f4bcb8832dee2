"""Restore a Grafana backup (tasks.grafana_backup) into one organisation.

Three steps, each a function so the CLI can show the plan before anything is written:
`load_backup` (checksums first: a corrupted backup stops here), `plan_restore` (reads
the target, decides per object: a `RestorePlan`, an opskit.plan.Plan), `apply_restore`
(what `RestorePlan.apply` runs: writes, then reads every written dashboard back).
Prints nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from opskit.clients.grafana import GrafanaClient
from opskit.errors import EXIT_DATA, AuthFailed, BackendError, OpskitError, UsageError
from opskit.plan import Change, Plan
from opskit.tasks.backup_store import read_manifest, verify_checksums
from opskit.tasks.grafana_backup import CONCURRENCY, FORMAT, Progress, bounded

IGNORED_KEYS = ("id", "version")  # Grafana assigns these: equality ignores them
DS_FIELDS = (
    "uid", "name", "type", "access", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData",
)  # fmt: skip

CONFLICT = "differs from the backup (use --overwrite)"

DashAction = Literal["create", "update", "unchanged", "conflict"]
Outcome = Literal["created", "updated", "unchanged", "skipped", "failed"]


class CorruptBackup(OpskitError):
    exit_code = EXIT_DATA
    title = "corrupt backup"


@dataclass
class GrafanaBackup:
    path: Path
    manifest: dict[str, Any]
    folders: list[dict[str, Any]]
    datasources: list[dict[str, Any]]
    dashboards: list[dict[str, Any]]  # {uid, folderUid, dashboard}


def load_backup(path: Path) -> GrafanaBackup:
    """Read a backup after checking every file against the manifest's sha256."""
    manifest = read_manifest(path)
    if manifest.get("format") != FORMAT:
        raise UsageError(f"{path}: not a Grafana backup (format {manifest.get('format')!r})")
    problems = verify_checksums(path, manifest)
    if problems:
        shown = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" * (len(problems) > 3))
        raise CorruptBackup(f"{path}: {shown}; nothing was restored")

    def read(relpath: str) -> Any:
        try:
            return json.loads((path / relpath).read_text())
        except (OSError, ValueError) as exc:
            raise CorruptBackup(f"{path / relpath}: unreadable: {exc}") from None

    files = sorted(manifest["files"])
    dashboards = [read(f) for f in files if f.startswith("dashboards/")]
    return GrafanaBackup(path, manifest, read("folders.json"), read("datasources.json"), dashboards)


def normalized(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in IGNORED_KEYS}


def parse_folder_map(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`OLD=NEW` folder uids; NEW empty or `general` means the root."""
    out: dict[str, str] = {}
    for spec in specs:
        old, sep, new = spec.partition("=")
        if not sep or not old.strip():
            raise UsageError(f"--folder-map {spec!r}: expected OLD_UID=NEW_UID")
        new = new.strip()
        out[old.strip()] = "" if new == "general" else new
    return out


# ------------------------------------------------------------------ plan


@dataclass
class FolderStep:
    uid: str
    title: str
    parent_uid: str
    action: Literal["create", "exists"]


@dataclass
class DashboardStep:
    uid: str
    title: str
    folder_uid: str
    action: DashAction
    model: dict[str, Any] = field(repr=False)
    outcome: Outcome | None = None
    detail: str = ""


@dataclass
class DatasourceStep:
    uid: str
    name: str
    action: Literal["create", "exists"]
    record: dict[str, Any] = field(repr=False)
    outcome: Literal["created", "exists", "failed"] | None = None
    detail: str = ""


@dataclass
class RestorePlan(Plan[GrafanaClient, "RestoreResult"]):
    """What a restore of `backup` will write, decided against the target organisation;
    `apply` carries it out with the options it was planned with."""

    backup: Path
    overwrite: bool
    folder_map: dict[str, str]
    folders: list[FolderStep]
    dashboards: list[DashboardStep]
    datasources: list[DatasourceStep]
    into: str = ""  # where, for the question: "URL (org N)"
    concurrency: int = CONCURRENCY

    @property
    def title(self) -> str:
        return "Grafana restore" + (f" into {self.into}" if self.into else "")

    def count(self, action: str) -> int:
        return sum(1 for d in self.dashboards if d.action == action)

    def changes(self) -> list[Change]:
        """In the order `apply` writes: data sources, folders (parents first), dashboards."""
        out = [
            Change("create", f"data source {d.name}") for d in self.datasources
            if d.action == "create"
        ]  # fmt: skip
        out += [
            Change("create", f"folder {f.uid} ({f.title})") for f in self.folders
            if f.action == "create"
        ]  # fmt: skip
        out += [
            Change(
                d.action,
                f"dashboard {d.uid} ({d.title})",
                "differs from the backup" if d.action == "update" else "",
            )
            for d in self.dashboards
            if d.action in ("create", "update")
        ]
        return out

    def kept(self) -> list[Change]:
        out = [
            Change("keep", f"data source {d.name}", "exists") for d in self.datasources
            if d.action == "exists"
        ]  # fmt: skip
        out += [
            Change("keep", f"folder {f.uid} ({f.title})", "exists") for f in self.folders
            if f.action == "exists"
        ]  # fmt: skip
        reasons = {"unchanged": "equal to the backup", "conflict": CONFLICT}
        out += [
            Change("keep", f"dashboard {d.uid} ({d.title})", reasons[d.action])
            for d in self.dashboards
            if d.action in reasons
        ]
        return out

    async def apply(self, target: GrafanaClient, progress: Any = None) -> RestoreResult:
        """Write the plan into `target`; `progress(phase, done, total)` as dashboards go."""
        return await apply_restore(target, self, self.concurrency, progress)


def _depth(uid: str, parents: dict[str, str]) -> int:
    depth, seen = 0, {uid}
    while parents.get(uid):
        uid = parents[uid]
        if uid in seen:
            break
        seen.add(uid)
        depth += 1
    return depth


async def plan_restore(
    client: GrafanaClient,
    backup: GrafanaBackup,
    overwrite: bool = False,
    folder_map: dict[str, str] | None = None,
    concurrency: int = CONCURRENCY,
    into: str = "",
) -> RestorePlan:
    """Compare the backup with the target organisation; writes nothing. `into` names the
    target for the confirmation question."""
    mapping = dict(folder_map or {})

    def target(uid: str) -> str:
        return mapping.get(uid, uid) if uid else ""

    for new in sorted({v for v in mapping.values() if v}):
        in_backup = any(f["uid"] == new and new not in mapping for f in backup.folders)
        if not in_backup and await client.find_folder(new) is None:
            raise UsageError(
                f"--folder-map: folder {new!r} is neither in the backup nor in Grafana"
            )

    parents = {str(f["uid"]): str(f.get("parentUid") or "") for f in backup.folders}
    wanted = [f for f in backup.folders if f["uid"] not in mapping]
    wanted.sort(key=lambda f: _depth(str(f["uid"]), parents))
    found = await bounded([str(f["uid"]) for f in wanted], client.find_folder)
    folders = [
        FolderStep(
            str(f["uid"]),
            str(f["title"]),
            target(str(f.get("parentUid") or "")),
            "exists" if there else "create",
        )
        for f, there in zip(wanted, found, strict=True)
    ]

    current = await bounded(
        [str(d["uid"]) for d in backup.dashboards], client.find_dashboard, concurrency
    )
    dashboards = []
    for item, now in zip(backup.dashboards, current, strict=True):
        model = dict(item["dashboard"])
        folder_uid = target(str(item.get("folderUid") or ""))
        action: DashAction = "create"
        if now is not None:
            same = normalized(now.model) == normalized(model) and now.folder_uid == folder_uid
            action = "unchanged" if same else ("update" if overwrite else "conflict")
        dashboards.append(
            DashboardStep(str(item["uid"]), str(model.get("title", "")), folder_uid, action, model)
        )

    have = await client.datasources()
    names = {d.name for d in have}
    uids = {d.uid for d in have}
    datasources = [
        DatasourceStep(
            str(ds.get("uid", "")),
            str(ds.get("name", "")),
            "exists" if ds.get("uid") in uids or ds.get("name") in names else "create",
            {k: ds[k] for k in DS_FIELDS if k in ds},
        )
        for ds in backup.datasources
    ]
    return RestorePlan(
        backup.path, overwrite, mapping, folders, dashboards, datasources, into, concurrency
    )


# ------------------------------------------------------------------ apply


@dataclass
class RestoreResult:
    plan: RestorePlan
    counts: dict[str, int]  # dashboards: created updated unchanged skipped failed
    folders: dict[str, int]  # created existing failed
    datasources: dict[str, int]  # created existing failed
    verified: int
    failures: list[str]

    @property
    def exit_code(self) -> int:
        if self.counts["failed"] or self.folders["failed"] or self.datasources["failed"]:
            return 2
        return 1 if self.counts["skipped"] else 0


async def _restore_folder(client: GrafanaClient, step: FolderStep) -> str:
    """Create the folder (or reuse it on 409); the uid dashboards should go into."""
    created = await client.create_folder(step.uid, step.title, step.parent_uid or None)
    if created is not None:
        return created.uid
    if await client.find_folder(step.uid) is not None:
        return step.uid
    # 409 for the title: a folder of that name already exists there; reuse it.
    for sibling in await client.folders(step.parent_uid or None):
        if sibling.title == step.title:
            return sibling.uid
    raise UsageError(f"folder {step.uid}: Grafana answered 409 but no such folder is visible")


async def apply_restore(
    client: GrafanaClient,
    plan: RestorePlan,
    concurrency: int = CONCURRENCY,
    progress: Progress | None = None,
) -> RestoreResult:
    report = progress or (lambda phase, done, total: None)
    failures: list[str] = []
    ds_counts = {"created": 0, "existing": 0, "failed": 0}
    for ds in plan.datasources:
        if ds.action == "exists":
            ds_counts["existing"] += 1
            continue
        try:
            made = await client.create_datasource(ds.record)
        except AuthFailed:
            raise
        except BackendError as exc:
            ds_counts["failed"] += 1
            failures.append(f"data source {ds.name}: {exc.reason}")
            continue
        ds_counts["created" if made is not None else "existing"] += 1

    renamed: dict[str, str] = {}
    folder_counts = {"created": 0, "existing": 0, "failed": 0}
    for step in plan.folders:
        if step.action == "exists":
            folder_counts["existing"] += 1
            continue
        parent = renamed.get(step.parent_uid, step.parent_uid)
        try:
            uid = await _restore_folder(client, FolderStep(step.uid, step.title, parent, "create"))
        except AuthFailed:
            raise
        except (BackendError, UsageError) as exc:
            folder_counts["failed"] += 1
            failures.append(f"folder {step.uid} ({step.title}): {exc}")
            continue
        folder_counts["created" if uid == step.uid else "existing"] += 1
        if uid != step.uid:
            renamed[step.uid] = uid

    done = 0
    report("dashboards", 0, len(plan.dashboards))

    async def restore(step: DashboardStep) -> None:
        nonlocal done
        await write(step)
        done += 1
        report("dashboards", done, len(plan.dashboards))

    async def write(step: DashboardStep) -> None:
        if step.action == "unchanged":
            step.outcome = "unchanged"
            return
        if step.action == "conflict":
            step.outcome, step.detail = "skipped", CONFLICT
            return
        step.folder_uid = renamed.get(step.folder_uid, step.folder_uid)
        model = {**step.model, "id": None}
        try:
            await client.save_dashboard(
                model, step.folder_uid, step.action == "update", "restored by opskit"
            )
        except AuthFailed:
            raise
        except BackendError as exc:
            step.outcome, step.detail = "failed", exc.reason
            return
        step.outcome = "created" if step.action == "create" else "updated"

    await bounded(plan.dashboards, restore, concurrency)
    written = [d for d in plan.dashboards if d.outcome in ("created", "updated")]
    report("verifying", 0, len(written))
    readback = await bounded([d.uid for d in written], client.find_dashboard, concurrency)
    verified = 0
    for dash, now in zip(written, readback, strict=True):
        ok = (
            now is not None
            and normalized(now.model) == normalized(dash.model)
            and now.folder_uid == dash.folder_uid
        )
        if ok:
            verified += 1
        else:
            dash.outcome, dash.detail = "failed", "read back differs from the backup"
    counts = {k: 0 for k in ("created", "updated", "unchanged", "skipped", "failed")}
    for dash in plan.dashboards:
        counts[dash.outcome or "failed"] += 1
        if dash.outcome == "failed":
            failures.append(f"dashboard {dash.uid} ({dash.title}): {dash.detail}")
    return RestoreResult(plan, counts, folder_counts, ds_counts, verified, failures)
