"""Local backups on disk: one directory per backup, named `<kind>-<UTC timestamp>`, with a
`manifest.json` holding counts and a sha256 for every other file.

A backup is written into a hidden `.<name>.partial-<pid>` directory beside its final name
and renamed only once every file and the manifest are on disk (fsynced), so an
interrupted run leaves nothing that looks like a complete backup and never touches the
others. `list_backups` and `prune` only ever consider complete, final-named directories.

Two different words, kept apart: an *interrupted* backup is a partial directory a run
never finished (no manifest; `BackupListing.incomplete`, safe to delete, never restored
from); a *complete: false* backup is a finished backup whose manifest names objects the
source failed to give (`LocalBackup.complete`, `missing`): it is listed, restorable (the
restore plan warns), and `prune` never deletes the newest complete backup of a kind for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opskit.errors import UsageError
from opskit.plan import Change, Plan

MANIFEST = "manifest.json"
NAME_RE = re.compile(r"^(?P<kind>[a-z]+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?$")
PARTIAL_MARK = ".partial-"
ARCHIVE_SUFFIX = ".tar.gz"  # a backup as one file (tasks.grafana_archive)


def default_dir(configured: Path | None) -> Path:
    """`[backup] dir` from the config, else `$XDG_DATA_HOME/opskit/backups`."""
    if configured is not None:
        return configured
    from platformdirs import user_data_path

    return user_data_path("opskit") / "backups"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BackupWriter:
    """Collects files in a partial directory; `commit` writes the manifest and renames."""

    def __init__(self, parent: Path, kind: str, now: datetime | None = None) -> None:
        self.parent = parent
        self.kind = kind
        self.created = (now or datetime.now(UTC)).replace(microsecond=0)
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{parent}: cannot create the backup directory: {exc}") from None
        self.name = self._free_name()
        self.tmp = parent / f".{self.name}{PARTIAL_MARK}{os.getpid()}"
        self.tmp.mkdir()
        self.files: dict[str, str] = {}
        self.size = 0

    def _free_name(self) -> str:
        base = f"{self.kind}-{self.created.strftime('%Y%m%dT%H%M%SZ')}"
        name, n = base, 1
        while (self.parent / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def write_json(self, relpath: str, data: Any) -> None:
        raw = (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        target = self.tmp / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as fh:  # fsynced in `commit`, all at once: not one by one
            fh.write(raw)  # in the event loop (510 fsyncs were 2.3 s of a 502-dashboard backup)
        self.files[relpath] = hashlib.sha256(raw).hexdigest()
        self.size += len(raw)

    def _fsync_files(self) -> None:
        """Every written file to disk before the manifest is: in parallel (the file
        system's journal commits concurrent fsyncs together)."""

        def sync(relpath: str) -> None:
            fd = os.open(self.tmp / relpath, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(sync, self.files))

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Write the manifest (counts + checksums) and move into the final name; every
        file is on disk before the manifest is written, the manifest before the rename."""
        self._fsync_files()
        body = {
            **manifest,
            "kind": self.kind,
            "name": self.name,
            "created": self.created.isoformat().replace("+00:00", "Z"),
            "files": dict(sorted(self.files.items())),
        }
        raw = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
        with (self.tmp / MANIFEST).open("wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        self.size += len(raw)
        for sub in {Path(p).parent for p in self.files} | {Path(".")}:
            _fsync_dir(self.tmp / sub)
        final = self.parent / self.name
        os.rename(self.tmp, final)  # atomic on one filesystem; never replaces: name is free
        _fsync_dir(self.parent)
        return final

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


# ------------------------------------------------------------------ reading


@dataclass
class LocalBackup:
    name: str
    path: Path
    kind: str
    created: str
    counts: dict[str, int]
    size_bytes: int
    manifest: dict[str, Any] = field(repr=False, default_factory=dict)
    complete: bool = True  # False: the manifest names objects the backup lacks
    missing: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BackupListing:
    directory: Path
    backups: list[LocalBackup]
    incomplete: list[Path]  # partial directories left by interrupted runs


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: not a backup (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: unreadable {MANIFEST}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise UsageError(f"{path}: {MANIFEST} has no file list")
    return data


def missing_objects(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Pure: the objects a finished backup's manifest says it lacks ({kind, uid, name,
    error}); none for manifests written before `missing` existed."""
    missing = manifest.get("missing")
    if not isinstance(missing, list):
        return []
    return [m for m in missing if isinstance(m, dict)]


def is_complete(manifest: dict[str, Any]) -> bool:
    """Pure: whether a finished backup holds everything the source had: `complete` is not
    false and nothing is missing. Manifests without the key (before issue 15) were only
    ever written for complete backups."""
    return manifest.get("complete") is not False and not missing_objects(manifest)


def describe_missing(missing: list[dict[str, Any]], limit: int = 3) -> str:
    """Pure: `dashboard gen-030 (Generated 030): HTTP 500...; ...` for one line."""
    shown = []
    for m in missing[:limit]:
        name = f" ({m.get('name')})" if m.get("name") else ""
        shown.append(f"{m.get('kind', '?')} {m.get('uid') or '?'}{name}: {m.get('error', '')}")
    more = f" (+{len(missing) - limit} more)" if len(missing) > limit else ""
    return "; ".join(shown) + more


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _age_order(backup: LocalBackup) -> tuple[str, int]:
    match = NAME_RE.match(backup.name.removesuffix(ARCHIVE_SUFFIX))
    return backup.created, int(match["n"] or 1) if match else 0


def _archived(entry: Path, kind: str | None) -> LocalBackup | None:
    """A `<kind>-<stamp>.tar.gz` backup (tasks.grafana_archive), from the manifest it
    carries first; None when it is not one (or of another kind, or unreadable)."""
    from opskit.tasks.grafana_archive import BadArchive, archive_name
    from opskit.tasks.grafana_archive import read_manifest as archive_manifest

    match = NAME_RE.match(archive_name(entry))
    if match is None or (kind is not None and match["kind"] != kind):
        return None
    try:
        manifest = archive_manifest(entry)
    except BadArchive:
        return None
    counts = manifest.get("counts")
    return LocalBackup(
        entry.name,
        entry,
        match["kind"],
        str(manifest.get("created", "")),
        dict(counts) if isinstance(counts, dict) else {},
        entry.stat().st_size,
        manifest,
        is_complete(manifest),
        missing_objects(manifest),
    )


def list_backups(directory: Path, kind: str | None = None) -> BackupListing:
    """Complete backups, oldest first, and partial leftovers."""
    backups: list[LocalBackup] = []
    incomplete: list[Path] = []
    if directory.is_dir():
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith(".") and PARTIAL_MARK in entry.name:
                incomplete.append(entry)
                continue
            if entry.name.endswith(ARCHIVE_SUFFIX) and entry.is_file():
                archived = _archived(entry, kind)  # a single-file backup (.tar.gz)
                if archived is not None:
                    backups.append(archived)
                continue
            match = NAME_RE.match(entry.name)
            if not entry.is_dir() or match is None or not (entry / MANIFEST).is_file():
                continue
            if kind is not None and match["kind"] != kind:
                continue
            try:
                manifest = read_manifest(entry)
            except UsageError:
                incomplete.append(entry)
                continue
            counts = manifest.get("counts")
            backups.append(
                LocalBackup(
                    entry.name,
                    entry,
                    match["kind"],
                    str(manifest.get("created", "")),
                    dict(counts) if isinstance(counts, dict) else {},
                    _dir_size(entry),
                    manifest,
                    is_complete(manifest),
                    missing_objects(manifest),
                )
            )
    backups.sort(key=_age_order)
    return BackupListing(directory, backups, incomplete)


@dataclass
class PruneResult:
    """What `backups prune` reports (its --json shape): before (dry_run) or after."""

    directory: Path
    keep_last: int
    kept: list[str]
    deleted: list[str]
    dry_run: bool


@dataclass
class PrunePlan(Plan[Path, PruneResult]):
    """The newest `keep_last` backups of each kind stay, the older ones go, except the
    newest one with `complete` (when those kept all lack objects); `apply(directory)`
    deletes them there."""

    directory: Path  # where the backups were listed
    keep_last: int
    keep: list[str]
    delete: list[str]
    kept_complete: list[str] = field(default_factory=list)  # kept as the newest complete one

    @property
    def title(self) -> str:
        return f"backup prune in {self.directory}"

    def changes(self) -> list[Change]:
        return [
            Change("delete", name, f"older than the newest {self.keep_last}")
            for name in self.delete
        ]

    def kept(self) -> list[Change]:
        return [
            Change(
                "keep",
                name,
                "the newest complete backup (the newer ones lack objects)"
                if name in self.kept_complete
                else f"among the newest {self.keep_last}",
            )
            for name in self.keep
        ]

    def dry_run(self) -> PruneResult:
        """The report of a dry run: what would be kept and deleted."""
        return PruneResult(self.directory, self.keep_last, self.keep, self.delete, dry_run=True)

    async def apply(self, target: Path, progress: Any = None) -> PruneResult:
        """Delete the planned backups under `target`; `progress(name, done, total)`."""
        for done, name in enumerate(self.delete, 1):
            # Rename first so a half-deleted backup never looks complete.
            doomed = target / f".{name}.deleting"
            os.rename(target / name, doomed)
            if doomed.is_dir():
                shutil.rmtree(doomed)
            else:  # an archive (.tar.gz)
                doomed.unlink()
            if progress is not None:
                progress(name, done, len(self.delete))
        return PruneResult(target, self.keep_last, self.keep, self.delete, dry_run=False)


def prune_plan(directory: Path, keep_last: int) -> PrunePlan:
    """Plan a prune of the complete backups in `directory`, by kind, newest kept."""
    if keep_last < 1:
        raise UsageError("--keep-last must be at least 1")
    listing = list_backups(directory)
    keep: list[str] = []
    delete: list[str] = []
    kept_complete: list[str] = []
    for kind in sorted({b.kind for b in listing.backups}):
        mine = [b for b in listing.backups if b.kind == kind]
        newest, older = mine[-keep_last:], mine[:-keep_last]
        if not any(b.complete for b in newest):
            rescue = next((b for b in reversed(older) if b.complete), None)
            if rescue is not None:  # never leave only backups that lack objects
                older.remove(rescue)
                kept_complete.append(rescue.name)
                newest = [rescue, *newest]
        keep += [b.name for b in newest]
        delete += [b.name for b in older]
    return PrunePlan(directory, keep_last, keep, delete, kept_complete)


def resolve(spec: str, directory: Path, kind: str) -> Path:
    """A backup given as a path, a name under the backup dir, or `latest`."""
    if spec == "latest":
        listing = list_backups(directory, kind)
        if not listing.backups:
            raise UsageError(f"{directory}: no {kind} backups")
        return listing.backups[-1].path
    path = Path(spec).expanduser()
    if path.is_dir() or (path.is_file() and path.name.endswith(ARCHIVE_SUFFIX)):
        return path
    if "/" not in spec:
        for candidate in (directory / spec, directory / f"{spec}{ARCHIVE_SUFFIX}"):
            if candidate.is_dir() or (
                candidate.is_file() and candidate.name.endswith(ARCHIVE_SUFFIX)
            ):
                return candidate
    raise UsageError(
        f"{spec}: no such backup (a directory, a {ARCHIVE_SUFFIX} archive, a name in "
        f"{directory}, or latest)"
    )


def verify_checksums(path: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems with the backup's files: missing, outside the backup, or changed."""
    problems: list[str] = []
    for relpath, expected in sorted(manifest["files"].items()):
        target = (path / relpath).resolve()
        if path.resolve() not in target.parents:
            problems.append(f"{relpath}: path outside the backup")
            continue
        if not target.is_file():
            problems.append(f"{relpath}: missing")
        elif sha256_file(target) != expected:
            problems.append(f"{relpath}: sha256 mismatch (file changed or corrupted)")
    return problems
