"""Export Grafana into the monitoring README's provisioning layout (a git repository).

    DIR/grafana/dashboards/<Folder>/<Subfolder>/<dashboard-slug>.json   (root: no folder)
    DIR/grafana/provisioning/dashboards/opskit.yml    one file provider, folders from files
    DIR/grafana/provisioning/datasources/datasources.yml

Dashboard files hold the model as Grafana's "Export as JSON" gives it, made stable: sorted
keys, 2-space indent, a trailing newline, no `id`, `version` or `iteration` (the values
Grafana changes on every save), the `uid` kept. A file is only rewritten when its bytes
change, so a second export of an unchanged Grafana changes nothing and `git diff` shows
real changes only.

Names: the directory of a folder is its title (made safe for a file name: `/`, control
characters and a leading dot replaced), because Grafana's `foldersFromFilesStructure`
names the folder after the directory; a dashboard's file is the slug of its title
(`Email Service Overview` -> `email-service-overview.json`, as the README's). Two
dashboards whose names would collide in one directory both get `-<uid>` appended, so none
overwrites another. A renamed or moved dashboard is recognised by the uid inside its old
file: the old file is removed when the new one is written (`renamed`). Files of dashboards
that no longer exist are reported as `stale` and removed only with `prune`.

Data sources are written in Grafana's provisioning format (apiVersion 1), their secrets as
`$GRAFANA_DS_<NAME>_<FIELD>` environment references, never values (Grafana never gives the
values anyway). Prints nothing.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VOLATILE = ("id", "version", "iteration")
DASHBOARDS = Path("grafana/dashboards")
DASHBOARD_PROVIDER = Path("grafana/provisioning/dashboards/opskit.yml")
DATASOURCES = Path("grafana/provisioning/datasources/datasources.yml")
DEFAULT_DASHBOARDS_PATH = "/var/lib/grafana/dashboards"  # where Grafana sees DASHBOARDS
DS_KEYS = (
    "name", "type", "uid", "url", "access", "isDefault", "orgId", "database", "user",
    "basicAuth", "basicAuthUser", "withCredentials", "readOnly", "jsonData",
)  # fmt: skip


@dataclass
class ExportSource:
    """What an export needs of one org, from a backup or the live Grafana."""

    org_id: int
    folders: list[dict[str, Any]]  # {uid, title, parentUid}
    dashboards: list[dict[str, Any]]  # {uid, folderUid, dashboard: model}
    datasources: list[dict[str, Any]]  # as GET /api/datasources/uid/:uid returns them


@dataclass
class ExportPlan:
    directory: Path
    files: dict[str, bytes]  # relpath -> content, every file the export consists of
    write: list[str]  # relpaths new or changed
    unchanged: list[str]
    renamed: dict[str, str]  # old relpath -> new relpath (same uid)
    stale: list[str]  # dashboard files whose uid is no longer exported
    dashboards: dict[str, str] = field(default_factory=dict)  # uid -> relpath


@dataclass
class ExportResult:
    directory: Path
    written: list[str]
    unchanged: list[str]
    renamed: dict[str, str]
    stale: list[str]
    removed: list[str]  # stale files removed (prune) and renamed-away files
    dry_run: bool
    dashboards: int
    datasources: int


def source_from_state(org_id: int, state: dict[str, dict[str, dict[str, Any]]]) -> ExportSource:
    """An ExportSource from one org of tasks.grafana_state (`live_state`, `backup_state`)."""
    folders = [
        {"uid": str(f["uid"]), "title": str(f.get("title", "")),
         "parentUid": f.get("parentUid") or None}
        for f in (state.get("folders") or {}).values()
    ]  # fmt: skip
    dashboards = [
        {"uid": uid, "folderUid": str(d.get("folderUid") or ""),
         "dashboard": dict(d.get("model") or d.get("dashboard") or {})}
        for uid, d in sorted((state.get("dashboards") or {}).items())
    ]  # fmt: skip
    datasources = [ds for _, ds in sorted((state.get("datasources") or {}).items())]
    return ExportSource(org_id, folders, dashboards, datasources)


# ------------------------------------------------------------------ pure helpers


def stable_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def stable_model(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in VOLATILE}


def slug(text: str, fallback: str = "dashboard") -> str:
    """`Email Service Overview` -> `email-service-overview` (ASCII, as Grafana slugs)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return out[:80].rstrip("-") or fallback


def dir_name(title: str, uid: str) -> str:
    """A folder title as a directory name: what Grafana will name the folder."""
    name = re.sub(r"[/\\\x00-\x1f\x7f]", "-", title).strip()
    if not name or name in (".", "..") or name.startswith("."):
        name = f"_{name.lstrip('.')}" if name.strip(".") else f"folder-{uid}"
    return name[:120]


def folder_paths(folders: list[dict[str, Any]]) -> dict[str, Path]:
    """uid -> the folder's directory under DASHBOARDS (titles of its ancestors); siblings
    whose names collide get ` (<uid>)` appended."""
    by_uid = {str(f["uid"]): f for f in folders}
    names: dict[str, str] = {}
    siblings: dict[str, list[str]] = {}
    for uid, f in by_uid.items():
        siblings.setdefault(str(f.get("parentUid") or ""), []).append(uid)
    for group in siblings.values():
        taken: dict[str, list[str]] = {}
        for uid in group:
            taken.setdefault(dir_name(str(by_uid[uid]["title"]), uid).lower(), []).append(uid)
        for same in taken.values():
            for uid in same:
                base = dir_name(str(by_uid[uid]["title"]), uid)
                names[uid] = base if len(same) == 1 else f"{base} ({uid})"
    out: dict[str, Path] = {}

    def path(uid: str, seen: tuple[str, ...] = ()) -> Path:
        if uid in out:
            return out[uid]
        parent = str(by_uid[uid].get("parentUid") or "")
        if parent and parent in by_uid and parent not in seen:
            result = path(parent, (*seen, uid)) / names[uid]
        else:
            result = Path(names[uid])
        out[uid] = result
        return result

    for uid in by_uid:
        path(uid)
    return out


def dashboard_paths(dashboards: list[dict[str, Any]], folders: dict[str, Path]) -> dict[str, str]:
    """uid -> relpath of its file; names colliding in one directory get `-<uid>`."""
    wanted: dict[str, tuple[Path, str]] = {}
    for d in dashboards:
        uid = str(d["uid"])
        where = folders.get(str(d.get("folderUid") or ""), Path())
        wanted[uid] = (where, slug(str(d["dashboard"].get("title") or ""), slug(uid, "x")))
    count: dict[tuple[Path, str], int] = {}
    for key in wanted.values():
        count[(key[0], key[1].lower())] = count.get((key[0], key[1].lower()), 0) + 1
    out = {}
    for uid, (where, name) in wanted.items():
        if count[(where, name.lower())] > 1:
            name = f"{name}-{slug(uid, 'x')}"
        out[uid] = (DASHBOARDS / where / f"{name}.json").as_posix()
    return out


def _env_name(ds_name: str, secret: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", secret)
    return (
        "GRAFANA_DS_"
        + slug(ds_name, "ds").replace("-", "_").upper()
        + "_"
        + (re.sub(r"[^A-Za-z0-9]+", "_", snake).upper())
    )


def provisioned_datasource(raw: dict[str, Any], org_id: int) -> dict[str, Any]:
    out = {k: raw[k] for k in DS_KEYS if k in raw and raw[k] not in (None, "")}
    out["orgId"] = org_id
    secrets = raw.get("secureJsonFields") or {}
    if isinstance(secrets, dict):  # as Grafana answers: {name: true}
        names = sorted(str(k) for k, v in secrets.items() if v)
    else:  # normalized (tasks.grafana_state): the names
        names = sorted(str(k) for k in secrets)
    if names:
        out["secureJsonData"] = {k: "$" + _env_name(str(raw.get("name", "")), k) for k in names}
    return out


def _yaml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key) else json.dumps(key)


def to_yaml(value: Any, indent: int = 0) -> list[str]:
    """Block YAML; scalars as JSON (a subset of YAML), so every string is quoted exactly.
    Keys sorted for stable output."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k in sorted(value, key=str):
            v = value[k]
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{_yaml_key(str(k))}:")
                lines += to_yaml(v, indent + 2)
            else:
                lines.append(f"{pad}{_yaml_key(str(k))}: {json.dumps(v, ensure_ascii=False)}")
        return lines
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                inner = to_yaml(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {json.dumps(item, ensure_ascii=False)}")
        return lines
    return [f"{pad}{json.dumps(value, ensure_ascii=False)}"]


HEADER = "# Written by `opskit export grafana`; {what}. Edits here are overwritten.\n"


def render(source: ExportSource, dashboards_path: str = DEFAULT_DASHBOARDS_PATH,
           folder: str | None = None) -> tuple[dict[str, bytes], dict[str, str]]:  # fmt: skip
    """Every file of the export (relpath -> bytes), and uid -> relpath of dashboards.
    `folder`: only the dashboards in that folder (uid) and its subfolders."""
    fpaths = folder_paths(source.folders)
    dashboards = source.dashboards
    if folder is not None:
        under = {folder} | {
            uid for uid, p in fpaths.items() if folder in fpaths and fpaths[folder] in p.parents
        }
        dashboards = [d for d in dashboards if str(d.get("folderUid") or "") in under]
    dpaths = dashboard_paths(dashboards, fpaths)
    files = {dpaths[str(d["uid"])]: stable_json(stable_model(d["dashboard"])) for d in dashboards}
    provider = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "opskit",
                "orgId": source.org_id,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": True,
                "updateIntervalSeconds": 30,
                "options": {"path": dashboards_path, "foldersFromFilesStructure": True},
            }
        ],
    }
    what = "dashboards from grafana/dashboards, one folder per directory"
    files[DASHBOARD_PROVIDER.as_posix()] = (
        HEADER.format(what=what) + "\n".join(to_yaml(provider)) + "\n"
    ).encode()
    dss = sorted(
        (provisioned_datasource(ds, source.org_id) for ds in source.datasources),
        key=lambda d: (str(d.get("name", "")), str(d.get("uid", ""))),
    )
    what = "secrets are $ENV references: set them in Grafana's environment"
    files[DATASOURCES.as_posix()] = (
        HEADER.format(what=what) + "\n".join(to_yaml({"apiVersion": 1, "datasources": dss})) + "\n"
    ).encode()
    return files, dpaths


def existing_dashboards(directory: Path) -> dict[str, str]:
    """relpath -> uid of the dashboard files already under DIR/grafana/dashboards (files
    that are not JSON objects with a uid are not ours and are left alone)."""
    out: dict[str, str] = {}
    root = directory / DASHBOARDS
    if not root.is_dir():
        return out
    for p in sorted(root.rglob("*.json")):
        try:
            body = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(body, dict) and isinstance(body.get("uid"), str) and body["uid"]:
            out[p.relative_to(directory).as_posix()] = body["uid"]
    return out


def plan_export(
    source: ExportSource,
    directory: Path,
    dashboards_path: str = DEFAULT_DASHBOARDS_PATH,
    folder: str | None = None,
) -> ExportPlan:
    files, dpaths = render(source, dashboards_path, folder)
    write: list[str] = []
    unchanged: list[str] = []
    for rel, data in sorted(files.items()):
        target = directory / rel
        try:
            same = target.is_file() and target.read_bytes() == data
        except OSError:
            same = False
        (unchanged if same else write).append(rel)
    exported_uids = set(dpaths)
    all_uids = {str(d["uid"]) for d in source.dashboards}
    renamed: dict[str, str] = {}
    stale: list[str] = []
    scope = None
    if folder is not None:
        fpaths = folder_paths(source.folders)
        scope = (DASHBOARDS / fpaths[folder]).as_posix() + "/" if folder in fpaths else None
    for rel, uid in existing_dashboards(directory).items():
        if rel in files:
            continue
        if uid in exported_uids:
            renamed[rel] = dpaths[uid]
        elif uid not in all_uids and (folder is None or (scope and rel.startswith(scope))):
            stale.append(rel)
    return ExportPlan(directory, files, write, unchanged, renamed, sorted(stale), dpaths)


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _remove(directory: Path, rel: str) -> None:
    path = directory / rel
    path.unlink(missing_ok=True)
    parent = path.parent
    stop = (directory / DASHBOARDS).resolve()
    while parent.resolve() != stop and stop in parent.resolve().parents:
        try:
            parent.rmdir()  # only when empty
        except OSError:
            break
        parent = parent.parent


def apply_export(
    plan: ExportPlan, source: ExportSource, prune: bool = False, dry_run: bool = False
) -> ExportResult:
    removed: list[str] = []
    if not dry_run:
        for rel in plan.write:
            _write_atomic(plan.directory / rel, plan.files[rel])
        for old in sorted(plan.renamed):
            _remove(plan.directory, old)
            removed.append(old)
        if prune:
            for rel in plan.stale:
                _remove(plan.directory, rel)
                removed.append(rel)
    else:
        removed = sorted(plan.renamed) + (list(plan.stale) if prune else [])
    return ExportResult(
        plan.directory, plan.write, plan.unchanged, plan.renamed, plan.stale, removed, dry_run,
        len(plan.dashboards), len(source.datasources),
    )  # fmt: skip
