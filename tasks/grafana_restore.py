"""Restore a Grafana backup (tasks.grafana_backup, format 1 or 2) into organisations.

Three steps, each a function so the CLI can show the plan before anything is written:
`load_backup` (checksums first: a corrupted backup stops here), `plan_restore` (reads the
target's state, compares it with the backup's, kind by kind and object by object: a
`RestorePlan`, an opskit.plan.Plan), `apply_restore` (what `RestorePlan.apply` runs:
writes only what differs, in dependency order, then verifies every written object: read
back, or for dashboards the save's answer and one search listing).

Requests: the plan lists dashboards with one search and reads only those of the backup
that exist in the target (a restore into an empty Grafana reads none); 16 at a time.

Idempotent: an object equal to the backup (grafana_state's normalized form) is not
written, so a second restore writes nothing. One that exists and differs is a conflict,
reported and left alone unless `overwrite`; the organisation-wide singletons (the
notification policy tree, the preferences) are always set to the backup's. Whatever the
restore creates ends as the backup has it (its permissions, a team's members). Prints
nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from opskit.clients.grafana import Conflict, Forbidden, GrafanaClient, VersionMismatch
from opskit.errors import EXIT_DATA, AuthFailed, BackendError, NotFound, OpskitError, UsageError
from opskit.plan import Change, Plan
from opskit.tasks.backup_store import read_manifest, verify_checksums
from opskit.tasks.grafana_state import (
    CONCURRENCY,
    FORMAT_1,
    FORMAT_2,
    KINDS,
    REDACTED,
    Kind,
    OrgDump,
    OrgState,
    Problem,
    Progress,
    Reader,
    backup_dumps,
    bounded,
    fetch_org,
    normalize,
    normalize_dump,
)

IGNORED_KEYS = ("id", "version")  # Grafana assigns these: equality ignores them
CONFLICT = "differs from the backup (use --overwrite)"
SINGLETONS = ("policies", "preferences")  # always there: set, never a conflict
FOLDER_KINDS = ("folders", "dashboards", "library_panels", "alert_rules")
DS_WRITE_FIELDS = (
    "uid", "name", "type", "access", "url", "user", "database", "basicAuth",
    "basicAuthUser", "withCredentials", "isDefault", "jsonData",
)  # fmt: skip
DS_ENV = "OPSKIT_GRAFANA_DS_SECRET_"
CP_ENV = "OPSKIT_GRAFANA_CP_SECRET_"

Action = Literal["create", "update", "unchanged", "conflict", "skip"]
Outcome = Literal["created", "updated", "unchanged", "skipped", "failed"]


class CorruptBackup(OpskitError):
    exit_code = EXIT_DATA
    title = "corrupt backup"


# ------------------------------------------------------------------ loading


@dataclass
class GrafanaBackup:
    path: Path
    manifest: dict[str, Any]
    orgs: dict[int, OrgDump]  # backup org id -> stored objects

    @property
    def primary(self) -> OrgDump:
        return next(iter(self.orgs.values()))

    # the first organisation's, as format 1 had them (the drill, the benchmark)
    @property
    def folders(self) -> list[dict[str, Any]]:
        return list(self.primary.kinds.get("folders", {}).values())

    @property
    def dashboards(self) -> list[dict[str, Any]]:
        return list(self.primary.kinds.get("dashboards", {}).values())

    @property
    def datasources(self) -> list[dict[str, Any]]:
        return list(self.primary.kinds.get("datasources", {}).values())


def load_backup(path: Path) -> GrafanaBackup:
    """Read a backup after checking every file against the manifest's sha256."""
    manifest = read_manifest(path)
    if manifest.get("format") not in (FORMAT_1, FORMAT_2):
        raise UsageError(f"{path}: not a Grafana backup (format {manifest.get('format')!r})")
    problems = verify_checksums(path, manifest)
    if problems:
        shown = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" * (len(problems) > 3))
        raise CorruptBackup(f"{path}: {shown}; nothing was restored")
    try:
        orgs = backup_dumps(path, manifest)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptBackup(f"{path}: unreadable: {exc}") from None
    if not orgs:
        raise CorruptBackup(f"{path}: the manifest names no organisation")
    return GrafanaBackup(path, manifest, orgs)


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


def parse_only(specs: Iterable[str]) -> dict[Kind, set[str] | None]:
    """`--only KIND[:KEY,...]` (repeatable): kind -> the keys to restore (None: all)."""
    out: dict[Kind, set[str] | None] = {}
    for spec in specs:
        kind, _, keys = spec.partition(":")
        kind = kind.strip().replace("-", "_")
        if kind not in KINDS:
            raise UsageError(f"--only {spec!r}: unknown kind (one of {', '.join(KINDS)})")
        wanted = {k.strip() for k in keys.split(",") if k.strip()}
        if not wanted:
            out[kind] = None
        elif out.get(kind, set()) is not None:
            out[kind] = (out.get(kind) or set()) | wanted
    return out


# ------------------------------------------------------------------ secrets


@dataclass
class Secrets:
    """Data source and contact point secrets for a restore: from `--secrets FILE` (TOML
    or JSON: {datasource uid or name: {field: value}}, contact points under a
    `contact_points` table by uid) or the environment (OPSKIT_GRAFANA_DS_SECRET_<UID>_
    <FIELD>, OPSKIT_GRAFANA_CP_SECRET_<UID>_<FIELD>). Never from the backup; never shown."""

    datasources: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    contact_points: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    environ: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"Secrets({len(self.datasources)} data sources, {len(self.contact_points)} cp)"

    @staticmethod
    def _env_name(prefix: str, uid: str, name: str) -> str:
        def norm(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9]", "_", text).upper()

        return f"{prefix}{norm(uid)}_{norm(name)}"

    def datasource(self, uid: str, name: str, fields: Iterable[str]) -> dict[str, str]:
        given = {**self.datasources.get(name, {}), **self.datasources.get(uid, {})}
        return self._lookup(DS_ENV, uid, given, fields)

    def contact_point(self, uid: str, fields: Iterable[str]) -> dict[str, str]:
        return self._lookup(CP_ENV, uid, self.contact_points.get(uid, {}), fields)

    def _lookup(
        self, prefix: str, uid: str, given: dict[str, Any], fields: Iterable[str]
    ) -> dict[str, str]:
        """Each field from the environment if set there, else from the secrets file."""
        out: dict[str, str] = {}
        for f in fields:
            env = self.environ.get(self._env_name(prefix, uid, f))
            value = env if env is not None else given.get(f)
            if value is not None:
                out[f] = str(value)
        return out


def load_secrets(path: Path | None, environ: dict[str, str] | None = None) -> Secrets:
    env = dict(os.environ if environ is None else environ)
    env = {k: v for k, v in env.items() if k.startswith((DS_ENV, CP_ENV))}
    if path is None:
        return Secrets(environ=env)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"--secrets {path}: {exc.strerror or exc}") from None
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        # never echo the file's content: it holds secrets
        raise UsageError(
            f"--secrets {path}: not valid TOML or JSON ({type(exc).__name__})"
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"--secrets {path}: expected a table of data sources")
    cps = data.pop("contact_points", {}) or {}

    def table(raw: Any, what: str) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for key, fields in dict(raw).items():
            if not isinstance(fields, dict):
                raise UsageError(f"--secrets {path}: {what} {key!r}: expected {{field: value}}")
            out[str(key)] = {str(k): str(v) for k, v in fields.items()}
        return out

    return Secrets(table(data, "data source"), table(cps, "contact point"), env)


# ------------------------------------------------------------------ the plan


@dataclass
class Step:
    """One object of the backup and what the restore does with it."""

    org: int  # the backup's org id
    kind: Kind
    key: str
    title: str
    action: Action
    detail: str = ""
    stored: dict[str, Any] = field(default_factory=dict, repr=False)  # the backup's
    want: dict[str, Any] = field(default_factory=dict, repr=False)  # normalized, reachable
    live: dict[str, Any] | None = field(default=None, repr=False)  # normalized, or None
    outcome: Outcome | None = None
    result: str = ""  # why it failed or was skipped, after apply
    # a dashboard's save answer (uid, version, folderUid) and the folder it was saved in:
    # what the verification checks against one search listing
    saved: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        name = f" ({self.title})" if self.title and self.title != self.key else ""
        return f"{self.kind[:-1] if self.kind.endswith('s') else self.kind} {self.key}{name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "org": self.org, "kind": self.kind, "key": self.key, "title": self.title,
            "action": self.action, "detail": self.detail, "outcome": self.outcome,
            "result": self.result,
        }  # fmt: skip


@dataclass
class OrgPlan:
    source_id: int
    source_name: str
    target_id: int | None  # None: created by the restore (by name)
    target_name: str
    scoped: bool  # True: requests name the target org (X-Grafana-Org-Id)
    steps: list[Step] = field(default_factory=list)
    live: OrgDump | None = field(default=None, repr=False)  # the target's stored objects
    users: dict[str, int] = field(default_factory=dict, repr=False)  # login/email -> id
    notes: list[str] = field(default_factory=list)  # missing users, secrets not given
    source: OrgDump = field(default_factory=lambda: OrgDump(0, ""), repr=False)
    members: list[dict[str, str]] = field(default_factory=list)  # users to add to the org

    create: bool = False  # the restore creates it (by name)

    def __post_init__(self) -> None:
        self.create = self.target_id is None


@dataclass
class RestorePlan(Plan[GrafanaClient, "RestoreResult"]):
    """What a restore of `backup` will write, decided against the target organisations;
    `apply` carries it out with the options it was planned with."""

    backup: Path
    overwrite: bool
    folder_map: dict[str, str]
    orgs: list[OrgPlan]
    into: str = ""  # where, for the question: "URL (org N)"
    concurrency: int = CONCURRENCY
    secrets: Secrets = field(default_factory=Secrets, repr=False)
    skipped: list[Problem] = field(default_factory=list)  # kinds the target hid (403)
    only: dict[Kind, set[str] | None] | None = None
    folder: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return "Grafana restore" + (f" into {self.into}" if self.into else "")

    @property
    def steps(self) -> list[Step]:
        return [s for o in self.orgs for s in o.steps]

    def of(self, kind: Kind, org: OrgPlan | None = None) -> list[Step]:
        plans = [org] if org is not None else self.orgs[:1]
        return [s for o in plans for s in o.steps if s.kind == kind]

    def count(self, action: str, kind: Kind = "dashboards") -> int:
        return sum(1 for d in self.of(kind) if d.action == action)

    def changes(self) -> list[Change]:
        """In the order `apply` writes."""
        out = [Change("create", f"organisation {o.target_name}") for o in self.orgs if o.create]
        for o in self.orgs:
            where = f" in org {o.target_name}" if len(self.orgs) > 1 else ""
            out += [
                Change("add", f"user {u['login']} to organisation {o.target_name}", u["role"])
                for u in o.members
            ]
            out += [
                Change(s.action, s.label + where, s.detail)
                for s in o.steps
                if s.action in ("create", "update")
            ]
        return out

    def kept(self) -> list[Change]:
        reasons = {"unchanged": "equal to the backup", "conflict": CONFLICT}
        out: list[Change] = []
        for o in self.orgs:
            for s in o.steps:
                if s.action in reasons:
                    out.append(Change("keep", s.label, s.detail or reasons[s.action]))
                elif s.action == "skip":
                    out.append(Change("keep", s.label, s.detail))
        return out

    async def apply(self, target: GrafanaClient, progress: Any = None) -> RestoreResult:
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


def _title(kind: Kind, obj: dict[str, Any]) -> str:
    if kind == "dashboards":
        return str((obj.get("dashboard") or {}).get("title", ""))
    if kind == "annotations":
        return str(obj.get("text", ""))[:40]
    for k in ("title", "name"):
        if obj.get(k):
            return str(obj[k])
    return ""


def _remap(dump: OrgDump, mapping: dict[str, str]) -> OrgDump:
    """The backup's objects with --folder-map applied: the mapped folders are not restored,
    their children and contents go into the new folder."""
    if not mapping:
        return dump

    def to(uid: Any) -> str:
        u = str(uid or "")
        return mapping.get(u, u) if u else ""

    kinds = {k: dict(v) for k, v in dump.kinds.items()}
    if "folders" in kinds:
        kinds["folders"] = {
            uid: {**f, "parentUid": to(f.get("parentUid")) or None}
            for uid, f in kinds["folders"].items()
            if uid not in mapping
        }
    for kind, ref in (("dashboards", "folderUid"), ("library_panels", "folderUid")):
        if kind in kinds:
            kinds[kind] = {u: {**o, ref: to(o.get(ref))} for u, o in kinds[kind].items()}
    if "alert_rules" in kinds:
        kinds["alert_rules"] = {
            u: {**r, "folderUID": to(r.get("folderUID"))} for u, r in kinds["alert_rules"].items()
        }
    return OrgDump(dump.id, dump.name, kinds)


def _select(
    dump: OrgDump, only: dict[Kind, set[str] | None] | None, folders: list[str], subfolders: bool
) -> OrgDump:
    """The objects a selective restore writes, and what they need: the folders above them
    and the library panels their dashboards use."""
    if not only and not folders:
        return dump
    kinds = dump.kinds
    all_folders = kinds.get("folders", {})
    parents = {u: str(f.get("parentUid") or "") for u, f in all_folders.items()}
    in_scope: set[str] | None = None
    if folders:
        in_scope = set(folders)
        if subfolders:
            changed = True
            while changed:
                changed = False
                for uid, parent in parents.items():
                    if parent in in_scope and uid not in in_scope:
                        in_scope.add(uid)
                        changed = True
    out: dict[Kind, dict[str, dict[str, Any]]] = {}
    for kind, objects in kinds.items():
        if only is not None and only and kind not in only:
            continue
        if folders and kind not in FOLDER_KINDS:
            continue
        keys = only.get(kind) if only else None
        chosen = {k: v for k, v in objects.items() if keys is None or k in keys}
        if in_scope is not None:
            ref = {"folders": "uid", "alert_rules": "folderUID"}.get(kind, "folderUid")
            chosen = {k: v for k, v in chosen.items() if str(v.get(ref) or "") in in_scope}
        out[kind] = chosen
    used = {
        str(p["libraryPanel"]["uid"])
        for d in out.get("dashboards", {}).values()
        for p in _panels((d.get("dashboard") or {}).get("panels") or [])
        if isinstance(p.get("libraryPanel"), dict) and p["libraryPanel"].get("uid")
    }
    lib = kinds.get("library_panels", {})
    for uid in used:
        if uid in lib:
            out.setdefault("library_panels", {})[uid] = lib[uid]
    # dependencies: the folders above what is restored, the library panels dashboards use
    needed: set[str] = set()
    for kind in ("dashboards", "library_panels", "folders", "alert_rules"):
        for obj in out.get(kind, {}).values():
            ref = {"folders": "parentUid", "alert_rules": "folderUID"}.get(kind, "folderUid")
            uid = str(obj.get(ref) or "")
            while uid and uid not in needed:
                needed.add(uid)
                uid = parents.get(uid, "")
    if needed:
        chosen_f = out.setdefault("folders", {})
        for uid in needed:
            if uid in all_folders and uid not in chosen_f:
                chosen_f[uid] = all_folders[uid]
        out["folders"] = {u: f for u, f in all_folders.items() if u in chosen_f}
    return OrgDump(dump.id, dump.name, {k: out[k] for k in KINDS if k in out})


def _panels(panels: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in panels:
        if isinstance(p, dict):
            out.append(p)
            out += _panels(p.get("panels") or [])
    return out


def _user_ids(users: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for u in users:
        uid = int(u.get("userId") or u.get("id") or 0)
        for k in ("login", "email"):
            if u.get(k):
                out[str(u[k])] = uid
    return out


def _reachable(
    kind: Kind,
    stored: dict[str, Any],
    live_stored: dict[str, Any] | None,
    org: OrgPlan,
    secrets: Secrets,
    teams: set[str],
) -> tuple[dict[str, Any], list[str]]:
    """The normalized object a restore can actually produce (members and users that exist
    in the target, secrets that are given or already set), and what it cannot."""
    want = normalize(kind, stored)
    notes: list[str] = []

    emails = {
        str(p.get("user")): str(p.get("email") or "")
        for p in stored.get("permissions") or []
        if p.get("user")
    }

    def users_ok(perms: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = []
        for p in perms:
            if (
                "user" in p
                and p["user"] not in org.users
                and emails.get(p["user"]) not in org.users
            ):
                notes.append(f"user {p['user']} not in the organisation: permission left out")
                continue
            if "team" in p and p["team"] not in teams:
                notes.append(f"team {p['team']} does not exist: permission left out")
                continue
            kept.append(p)
        return kept

    if kind in ("folders", "dashboards") and "permissions" in want:
        want["permissions"] = users_ok(want["permissions"])
    elif kind == "teams":
        members = []
        for m in stored.get("members") or []:
            login, email = str(m.get("login") or ""), str(m.get("email") or "")
            if login in org.users or (email and email in org.users):
                members.append(login)
            else:
                notes.append(f"member {login or email} is not a user of the organisation")
        want["members"] = sorted(members)
    elif kind == "datasources":
        have = set((live_stored and normalize(kind, live_stored).get("secureJsonFields")) or [])
        names = want["secureJsonFields"]
        given = secrets.datasource(str(want.get("uid", "")), str(want.get("name", "")), names)
        lacking = [f for f in names if f not in given and f not in have]
        if lacking:
            notes.append(f"secret fields not supplied: {', '.join(lacking)} (--secrets)")
        want["secureJsonFields"] = sorted(f for f in names if f not in lacking)
    elif kind == "contact_points":
        settings = dict(want.get("settings") or {})
        secret = [k for k, v in settings.items() if v == REDACTED]
        live_settings = (live_stored or {}).get("settings") or {}
        given = secrets.contact_point(str(want.get("uid", "")), secret)
        lacking = [k for k in secret if k not in given and live_settings.get(k) != REDACTED]
        if lacking:
            notes.append(f"secure settings not supplied: {', '.join(lacking)} (--secrets)")
        want["settings"] = {k: v for k, v in settings.items() if k not in lacking}
    return want, notes


def _compare(kind: Kind, want: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return False
    if kind == "datasources":
        # a secret field set in Grafana and not in the backup is not a difference we make
        live = {**live, "secureJsonFields": [f for f in live.get("secureJsonFields", [])
                                             if f in want.get("secureJsonFields", [])]}  # fmt: skip
    for part in ("permissions", "members"):
        if part not in want:  # not in the backup (format 1, or unreadable): not compared
            live = {k: v for k, v in live.items() if k != part}
    return want == live


async def plan_restore(
    client: GrafanaClient,
    backup: GrafanaBackup,
    overwrite: bool = False,
    folder_map: dict[str, str] | None = None,
    concurrency: int = CONCURRENCY,
    into: str = "",
    *,
    all_orgs: bool = False,
    source_org: int | None = None,
    only: dict[Kind, set[str] | None] | None = None,
    folders: list[str] | None = None,
    subfolders: bool = True,
    secrets: Secrets | None = None,
    with_annotations: bool = True,
) -> RestorePlan:
    """Compare the backup with the target organisation(s); writes nothing. `into` names
    the target for the confirmation question."""
    mapping = dict(folder_map or {})
    secrets = secrets or Secrets()
    if all_orgs:
        targets = {o.name: o.id for o in await client.orgs()}
        pairs = [
            OrgPlan(d.id, d.name, targets.get(d.name), d.name, True) for d in backup.orgs.values()
        ]
        sources = list(backup.orgs.values())
    else:
        if source_org is not None:
            if source_org not in backup.orgs:
                raise UsageError(
                    f"--source-org {source_org}: the backup has orgs "
                    f"{', '.join(str(i) for i in backup.orgs)}"
                )
            src = backup.orgs[source_org]
        elif len(backup.orgs) > 1:
            raise UsageError(
                f"the backup holds {len(backup.orgs)} organisations: restore them all with "
                "--all-orgs, or one with --source-org ID"
            )
        else:
            src = backup.primary
        own = await client.org()
        pairs = [OrgPlan(src.id, src.name, own.id, own.name, False)]
        sources = [src]
    plan = RestorePlan(
        backup.path, overwrite, mapping, pairs, into, concurrency, secrets,
        only=only, folder=list(folders or []),
    )  # fmt: skip
    for org, source in zip(pairs, sources, strict=True):
        await _plan_org(client, plan, org, source, subfolders, with_annotations)
    return plan


def _scoped(client: GrafanaClient, org: OrgPlan) -> GrafanaClient:
    return client.for_org(org.target_id) if org.scoped else client


async def _plan_org(
    client: GrafanaClient,
    plan: RestorePlan,
    org: OrgPlan,
    source: OrgDump,
    subfolders: bool,
    with_annotations: bool,
) -> None:
    dump = _select(_remap(source, plan.folder_map), plan.only, plan.folder, subfolders)
    if not with_annotations:
        dump.kinds.pop("annotations", None)
    org.source = dump
    await _diff_org(client, plan, org)


async def _diff_org(client: GrafanaClient, plan: RestorePlan, org: OrgPlan) -> None:
    """Compare the selected backup objects with the target organisation: the steps."""
    dump = org.source
    org.steps = []
    kinds = list(dump.kinds)
    if org.target_id is None:  # to be created: empty, as far as the plan can know
        live = OrgDump(0, org.target_name, {k: {} for k in kinds})
        problems: list[Problem] = []
    else:
        scoped = _scoped(client, org)
        for new in sorted({v for v in plan.folder_map.values() if v}):
            in_backup = new in dump.kinds.get("folders", {})
            if not in_backup and await scoped.find_folder(new) is None:
                raise UsageError(
                    f"--folder-map: folder {new!r} is neither in the backup nor in Grafana"
                )
        needed = set(kinds) | ({"teams"} if {"folders", "dashboards"} & set(kinds) else set())
        # dashboards: one search listing says which of the backup's exist; only those are
        # read (a restore into an empty Grafana reads no dashboard at all)
        live, problems = await fetch_org(
            scoped, org.target_id or 0, org.target_name, kinds=needed,
            with_annotations="annotations" in kinds, concurrency=plan.concurrency,
            dashboards_among=list(dump.kinds.get("dashboards", {})),
        )  # fmt: skip
        if {"teams", "folders", "dashboards"} & set(kinds):
            try:
                org.users = _user_ids(await scoped.org_users())
            except (Forbidden, NotFound) as exc:
                org.notes.append(f"users of the organisation not readable: {exc.reason}")
    org.live = live
    org.members = [
        u for u in org.source.users or []
        if u["login"] not in org.users and (not u["email"] or u["email"] not in org.users)
        and u["login"] != "admin"
    ]  # fmt: skip
    hidden = {p["kind"]: p for p in problems if p["status"] == "skipped"}
    plan.skipped += list(hidden.values())
    teams = set(dump.kinds.get("teams", {})) | set(live.kinds.get("teams", {}))
    for kind in kinds:
        objects = dump.kinds[kind]
        if kind == "folders":
            parents = {u: str(f.get("parentUid") or "") for u, f in objects.items()}
            objects = dict(sorted(objects.items(), key=lambda kv: _depth(kv[0], parents)))
        live_kind = live.kinds.get(kind)
        for key, stored in objects.items():
            title = _title(kind, stored)
            if kind in hidden or live_kind is None:
                reason = hidden[kind]["reason"] if kind in hidden else "not readable"
                org.steps.append(
                    Step(org.source_id, kind, key, title, "skip", f"skipped: {reason}", stored)
                )
                continue
            live_stored = live_kind.get(key)
            want, notes = _reachable(kind, stored, live_stored, org, plan.secrets, teams)
            now = normalize(kind, live_stored) if live_stored is not None else None
            if kind == "annotations" and now is None:
                action: Action = "create"
            elif now is None:
                action = "update" if kind in SINGLETONS else "create"
            elif _compare(kind, want, now):
                action = "unchanged"
            elif kind in SINGLETONS or plan.overwrite:
                action = "update"
            else:
                action = "conflict"
            detail = "; ".join(notes)
            if action == "update" and now is not None and not detail:
                detail = "differs from the backup"
            org.steps.append(
                Step(org.source_id, kind, key, title, action, detail, stored, want, now)
            )


# ------------------------------------------------------------------ apply


@dataclass
class RestoreResult:
    plan: RestorePlan
    kinds: dict[Kind, dict[str, int]]  # per kind: created updated unchanged skipped failed
    verified: int
    failures: list[str]
    skipped: list[str]
    forbidden: int = 0  # writes Grafana refused with 403
    written: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return self.kinds.get("dashboards") or _zero()

    def _legacy(self, kind: Kind) -> dict[str, int]:
        c = self.kinds.get(kind) or _zero()
        return {
            "created": c["created"],
            "existing": c["unchanged"] + c["updated"] + c["skipped"],
            "failed": c["failed"],
        }

    @property
    def folders(self) -> dict[str, int]:
        return self._legacy("folders")

    @property
    def datasources(self) -> dict[str, int]:
        return self._legacy("datasources")

    @property
    def exit_code(self) -> int:
        if self.failures:
            return 2
        if self.forbidden and not self.written:
            return 4
        return 1 if self.skipped else 0


def _zero() -> dict[str, int]:
    return {k: 0 for k in ("created", "updated", "unchanged", "skipped", "failed")}


class _Applier:
    def __init__(self, client: GrafanaClient, plan: RestorePlan, org: OrgPlan) -> None:
        self.client = client
        self.plan = plan
        self.org = org
        self.renamed: dict[str, str] = {}  # folder uid in the backup -> the one reused
        self.team_ids: dict[str, int] = {}
        self.forbidden = 0
        self.written = 0

    def fail(self, step: Step, exc: BaseException) -> None:
        if isinstance(exc, Forbidden):
            self.forbidden += 1
            step.outcome, step.result = "skipped", f"skipped: {exc.reason}"
            return
        step.outcome = "failed"
        step.result = exc.reason if isinstance(exc, BackendError) else str(exc)

    def folder(self, uid: str) -> str:
        return self.renamed.get(uid, uid)

    def perm_items(self, stored: dict[str, Any], want: list[dict[str, Any]]) -> list[Any]:
        items: list[dict[str, Any]] = []
        emails = {
            str(p.get("user")): str(p.get("email") or "")
            for p in stored.get("permissions") or []
            if p.get("user")
        }
        for p in want:
            if "role" in p:
                items.append({"role": p["role"], "permission": p["permission"]})
            elif "team" in p and p["team"] in self.team_ids:
                items.append({"teamId": self.team_ids[p["team"]], "permission": p["permission"]})
            elif "user" in p:
                user = self.org.users.get(p["user"]) or self.org.users.get(
                    emails.get(p["user"], "")
                )
                if user:
                    items.append({"userId": user, "permission": p["permission"]})
        return items

    async def run(self, step: Step) -> None:
        if step.action == "unchanged":
            step.outcome = "unchanged"
            return
        if step.action in ("conflict", "skip"):
            step.outcome, step.result = "skipped", step.detail or CONFLICT
            return
        try:
            await getattr(self, f"write_{step.kind}")(step)
        except AuthFailed as exc:
            if not isinstance(exc, Forbidden):
                raise
            self.fail(step, exc)
            return
        except (BackendError, UsageError) as exc:
            self.fail(step, exc)
            return
        self.written += 1
        step.outcome = step.outcome or ("created" if step.action == "create" else "updated")

    # --- one method per kind

    async def write_teams(self, step: Step) -> None:
        c, want = self.client, step.want
        team_id = None
        if step.action == "create":
            team_id = await c.create_team(want["name"], want["email"])
        if team_id is None:  # existed (409) or an update: find it
            found = [t for t in await c.teams() if t.get("name") == want["name"]]
            if not found:
                raise UsageError(f"team {want['name']}: not found after 409")
            team_id = int(found[0]["id"])
            if found[0].get("email", "") != want["email"]:
                await c.update_team(team_id, want["name"], want["email"])
        self.team_ids[want["name"]] = team_id
        have = {
            str(m.get("login")): int(m.get("userId") or 0) for m in await c.team_members(team_id)
        }
        for login in want["members"]:
            if login not in have:
                user = self.org.users.get(login)
                if user is None:
                    emails = [
                        m for m in step.stored.get("members") or [] if m.get("login") == login
                    ]
                    user = self.org.users.get(str(emails[0].get("email"))) if emails else None
                if user:
                    await c.add_team_member(team_id, user)
        for login, user_id in have.items():
            if login not in want["members"]:  # the creator Grafana adds, or --overwrite
                await c.remove_team_member(team_id, user_id)

    async def write_folders(self, step: Step) -> None:
        c, want = self.client, step.want
        parent = self.folder(want["parentUid"]) or None
        uid = want["uid"]
        if step.action == "create":
            made = await c.create_folder(uid, want["title"], parent)
            # 409: the uid exists, or the title does in that parent
            if made is None and await c.find_folder(uid) is None:
                siblings = [f for f in await c.folders(parent) if f.title == want["title"]]
                if not siblings:
                    raise UsageError(f"folder {uid}: 409 but no such folder is visible")
                self.renamed[uid] = siblings[0].uid
                step.outcome = "skipped"
                step.result = (
                    f"a folder {want['title']!r} exists there as {siblings[0].uid}: reused"
                )
                return
        else:
            live = step.live or {}
            if live.get("title") != want["title"]:
                await c.update_folder(uid, want["title"])
            if (live.get("parentUid") or "") != (parent or ""):
                await c.move_folder(uid, parent)
        if "permissions" in want and (step.live or {}).get("permissions") != want["permissions"]:
            items = self.perm_items(step.stored, want["permissions"])
            await c.set_folder_permissions(self.folder(uid), items)

    async def write_library_panels(self, step: Step) -> None:
        c, want = self.client, step.want
        body = {
            "uid": want["uid"], "name": want["name"], "kind": want["kind"],
            "folderUid": self.folder(want["folderUid"]), "model": want["model"],
        }  # fmt: skip
        if step.action == "create":
            try:
                await c.create_library_panel(body)
                return
            except (Conflict, VersionMismatch):
                if not self.plan.overwrite:
                    raise
        current = await c.find_library_panel(want["uid"])
        body["version"] = (current or {}).get("version", 1)
        await c.update_library_panel(want["uid"], {k: v for k, v in body.items() if k != "uid"})

    async def write_datasources(self, step: Step) -> None:
        c, want = self.client, step.want
        record = {k: step.stored[k] for k in DS_WRITE_FIELDS if k in step.stored}
        given = self.plan.secrets.datasource(
            str(want.get("uid", "")), str(want.get("name", "")), want["secureJsonFields"]
        )
        if given:
            record["secureJsonData"] = given
        if step.action == "create":
            made = await c.create_datasource(record)
            if made is not None:
                return
            if not self.plan.overwrite:
                raise Conflict("grafana", "HTTP 409: a data source with this name exists")
        await c.update_datasource(str(want["uid"]), record)

    async def write_dashboards(self, step: Step) -> None:
        c, want = self.client, step.want
        folder = self.folder(want["folderUid"])
        model = {**step.stored["dashboard"], "id": None}
        try:
            saved = await c.save_dashboard(
                model, folder, step.action == "update", "restored by opskit"
            )
        except VersionMismatch as exc:
            # name-exists: another dashboard has this title in the folder; version-mismatch:
            # it appeared since the plan. Neither is silently replaced.
            if not self.plan.overwrite or exc.status == "name-exists":
                step.outcome = "failed" if exc.status == "name-exists" else "skipped"
                step.result = f"{exc.status or 'HTTP 412'}: {exc.reason}"
                if exc.status != "name-exists":
                    step.result = CONFLICT
                raise _Handled() from None
            saved = await c.save_dashboard(model, folder, True, "restored by opskit")
        step.saved = {"uid": saved.uid, "version": saved.version,
                      "folderUid": saved.folder_uid, "folder": folder}  # fmt: skip
        if "permissions" in want and (step.live or {}).get("permissions") != want["permissions"]:
            items = self.perm_items(step.stored, want["permissions"])
            await c.set_dashboard_permissions(want["uid"], items)

    async def write_contact_points(self, step: Step) -> None:
        c, want = self.client, step.want
        body = dict(want)
        secret = [k for k, v in (step.stored.get("settings") or {}).items() if v == REDACTED]
        given = self.plan.secrets.contact_point(str(want.get("uid", "")), secret)
        body["settings"] = {**want.get("settings", {}), **given}
        live = ((self.org.live.kinds.get("contact_points") if self.org.live else None) or {}).get(
            step.key
        )
        if step.action == "create" or live is None:
            await c.create_contact_point({**body, "uid": step.stored.get("uid")})
            return
        await c.update_contact_point(str(live.get("uid")), {**body, "uid": live.get("uid")})

    async def write_templates(self, step: Step) -> None:
        await self.client.put_template(step.key, {"name": step.key, **step.want})

    async def write_mute_timings(self, step: Step) -> None:
        if step.action == "create":
            try:
                await self.client.create_mute_timing(step.want)
                return
            except Conflict:
                if not self.plan.overwrite:
                    raise
        await self.client.update_mute_timing(step.key, step.want)

    async def write_policies(self, step: Step) -> None:
        await self.client.put_policies(step.want)

    async def write_annotations(self, step: Step) -> None:
        await self.client.create_annotation(step.want)

    async def write_preferences(self, step: Step) -> None:
        await self.client.put_preferences(step.want)

    async def write_alert_rules(self, step: Step) -> None:
        raise AssertionError("alert rules are written by group")  # pragma: no cover

    async def rule_groups(self, steps: list[Step]) -> None:
        """Alert rules are written one rule group at a time (PUT replaces the group): the
        backup's rules that differ, plus the group's other rules as they are now."""
        groups: dict[tuple[str, str], list[Step]] = {}
        for s in steps:
            key = (self.folder(str(s.want.get("folderUID") or s.stored.get("folderUID", ""))),
                   str(s.stored.get("ruleGroup", "")))  # fmt: skip
            groups.setdefault(key, []).append(s)
        live_rules = (self.org.live.kinds.get("alert_rules") if self.org.live else None) or {}

        async def one(item: tuple[tuple[str, str], list[Step]]) -> None:
            (folder, group), members = item
            writing = [s for s in members if s.action in ("create", "update")]
            for s in members:
                if s.action not in ("create", "update"):
                    await self.run(s)
            if not writing:
                return
            rules: list[dict[str, Any]] = []
            chosen = {s.key for s in writing}
            for uid, r in live_rules.items():
                if (r.get("folderUID"), r.get("ruleGroup")) == (
                    folder,
                    group,
                ) and uid not in chosen:
                    rules.append({k: v for k, v in r.items() if k != "ruleGroupInterval"})
            for s in writing:
                rule = {k: v for k, v in s.want.items() if k != "ruleGroupInterval"}
                rules.append({**rule, "folderUID": folder, "ruleGroup": group})
            interval = next(
                (
                    s.want.get("ruleGroupInterval")
                    for s in writing
                    if s.want.get("ruleGroupInterval")
                ),
                60,
            )
            body = {"title": group, "folderUid": folder, "interval": interval, "rules": rules}
            try:
                try:
                    await self.client.put_rule_group(folder, group, body)
                except NotFound:  # an older Grafana: create the rules, then set the group
                    for r in rules:
                        await self.client.create_alert_rule(r)
                    await self.client.put_rule_group(folder, group, body)
            except AuthFailed as exc:
                if not isinstance(exc, Forbidden):
                    raise
                for s in writing:
                    self.fail(s, exc)
                return
            except (BackendError, UsageError) as exc:
                for s in writing:
                    self.fail(s, exc)
                return
            for s in writing:
                self.written += 1
                s.outcome = "created" if s.action == "create" else "updated"

        await bounded(list(groups.items()), one, self.plan.concurrency)


class _Handled(Exception):
    """The step's outcome is set already."""


async def apply_restore(
    client: GrafanaClient,
    plan: RestorePlan,
    concurrency: int = CONCURRENCY,
    progress: Progress | None = None,
) -> RestoreResult:
    report = progress or (lambda phase, done, total: None)
    failures: list[str] = []
    forbidden = written = verified = 0
    for org in plan.orgs:
        replan = False
        if org.target_id is None:
            # a new organisation comes with Grafana's defaults (a contact point, the
            # policy tree, preferences): planned again against what it really has
            org.target_id = await client.create_org(org.target_name)
            replan = True
        if org.members or org.create:
            # existing users back into the organisation (never created: a user that does
            # not exist is reported by the steps that need it)
            scoped_now = _scoped(client, org)
            for u in list(org.members) or list(org.source.users or []):
                if u["login"] == "admin":
                    continue
                try:
                    added = await scoped_now.add_org_user(u["login"] or u["email"], u["role"])
                except BackendError as exc:
                    org.notes.append(f"user {u['login']} not added to the organisation: {exc}")
                    continue
                replan = replan or added
        if replan:
            await _diff_org(client, plan, org)
        scoped = _scoped(client, org)
        ap = _Applier(scoped, plan, org)
        if any(s.kind in ("folders", "dashboards") and s.action in ("create", "update")
               for s in org.steps):  # fmt: skip
            try:
                ap.team_ids = {str(t["name"]): int(t["id"]) for t in await scoped.teams()}
            except (Forbidden, NotFound):
                ap.team_ids = {}
        by_kind: dict[Kind, list[Step]] = {}
        for s in org.steps:
            by_kind.setdefault(s.kind, []).append(s)
        order = [
            "teams", "folders", "library_panels", "datasources", "dashboards",
            "contact_points", "templates", "mute_timings", "policies", "alert_rules",
            "annotations", "preferences",
        ]  # fmt: skip
        for kind in order:
            steps = by_kind.get(kind, [])
            if not steps:
                continue
            report(kind, 0, len(steps))
            if kind == "alert_rules":
                await ap.rule_groups(steps)
            elif kind in ("folders", "teams", "policies", "preferences"):
                for s in steps:  # parents before children; one at a time
                    await _run(ap, s)
            else:
                await bounded(steps, partial(_run, ap), concurrency)
            report(kind, len(steps), len(steps))
        verified += await _verify(scoped, org, concurrency)
        forbidden += ap.forbidden
        written += ap.written
    kinds: dict[Kind, dict[str, int]] = {}
    skipped: list[str] = []
    for org in plan.orgs:
        for s in org.steps:
            kinds.setdefault(s.kind, _zero())[s.outcome or "failed"] += 1
            where = f"org {org.target_name}: " if len(plan.orgs) > 1 else ""
            if s.outcome == "failed":
                failures.append(f"{where}{s.label}: {s.result}")
            elif s.outcome == "skipped":
                skipped.append(f"{where}{s.label}: {s.result}")
            elif s.detail and s.action != "update":
                skipped.append(f"{where}{s.label}: {s.detail}")
        for note in org.notes:
            skipped.append(note)
    kinds = {k: kinds[k] for k in KINDS if k in kinds}
    return RestoreResult(plan, kinds, verified, failures, skipped, forbidden, written)


async def _run(ap: _Applier, step: Step) -> None:
    with contextlib.suppress(_Handled):
        await ap.run(step)


async def _verify(client: GrafanaClient, org: OrgPlan, concurrency: int) -> int:
    """Read every created or updated object back (dashboards: `_verify_dashboards`); one
    that differs counts as failed."""
    written = [s for s in org.steps if s.outcome in ("created", "updated")]
    if not written:
        return 0
    reader = Reader(client, org.target_id or 0, concurrency, None)
    kinds = {s.kind for s in written}
    now: dict[Kind, dict[str, dict[str, Any]]] = {}
    ok = 0
    if "dashboards" in kinds:
        kinds.discard("dashboards")
        ok += await _verify_dashboards(client, [s for s in written if s.kind == "dashboards"])
    for kind in kinds:
        try:
            now[kind] = await getattr(reader, kind)()
        except (Forbidden, NotFound):
            continue
    live = normalize_dump(now)
    for s in written:
        if s.kind not in live or s.kind == "dashboards":
            continue
        got = live[s.kind].get(s.key)
        if _compare(s.kind, s.want, got):
            ok += 1
        else:
            s.outcome, s.result = "failed", "read back differs from the backup"
    return ok


async def _verify_dashboards(client: GrafanaClient, steps: list[Step]) -> int:
    """The written dashboards, checked without a GET each: Grafana's answer to each save
    (the uid, a version, the folder) and one search listing afterwards (each is there,
    with its title, in its folder). The permissions' writes were answered 200 each. A full
    read-back is `opskit diff grafana BACKUP` (the same comparison a second restore makes)."""
    try:
        hits = {h.uid: h for h in await client.search_all("dash-db")}
    except (Forbidden, NotFound):
        return 0
    ok = 0
    for s in steps:
        saved, hit = s.saved or {}, hits.get(s.key)
        folder = str(saved.get("folder") or "")
        title = str((s.stored.get("dashboard") or {}).get("title", ""))
        if (
            saved.get("uid") == s.key
            and int(saved.get("version") or 0) > 0
            and str(saved.get("folderUid") or folder) == folder
            and hit is not None
            and hit.folder_uid == folder
            and hit.title == title
        ):
            ok += 1
        else:
            s.outcome, s.result = "failed", "read back differs from the backup"
    return ok


def state_of(plan: RestorePlan) -> dict[int, OrgState]:
    """What the plan wants, normalized (the reachable part of the backup), per org."""
    out: dict[int, OrgState] = {}
    for org in plan.orgs:
        state: OrgState = {}
        for s in org.steps:
            state.setdefault(s.kind, {})[s.key] = s.want
        out[org.source_id] = state
    return out
