"""A backup directory as one `.tar.gz` file, for off-site copies, and back.

`write_archive(backup_dir)` packs `<name>/manifest.json` first (so `backups list` reads it
without unpacking the rest) then every file the manifest lists, in sorted order, with fixed
owners and modes; it writes `<name>.tar.gz.partial-<pid>` beside the directory and renames
it into place, so a killed run never leaves something that looks like an archive.

`opened(path)` gives a directory for any backup path: a directory as it is; an archive is
extracted into a private temporary directory, removed afterwards. Extraction refuses
anything but regular files and directories (links, devices, FIFOs), absolute paths, `..`,
members outside the one top-level directory, files the manifest does not list, and more
than MAX_BYTES in total; it uses tarfile's "data" filter on top of that. Then every file is
checked against the manifest's sha256 before the directory is handed out.

Standard library only, and no import of backup_store (which lists archives through this).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from opskit.errors import EXIT_DATA, OpskitError, UsageError

SUFFIX = ".tar.gz"
MANIFEST = "manifest.json"
MAX_BYTES = 8 * 2**30  # what an archive may unpack to
MAX_MEMBERS = 1_000_000


class BadArchive(OpskitError):
    """An archive that is not a backup, is unsafe to unpack, or fails its checksums."""

    exit_code = EXIT_DATA
    title = "corrupt backup"


def is_archive(path: Path) -> bool:
    return path.name.endswith(SUFFIX) and path.is_file()


def archive_name(path: Path) -> str:
    """`grafana-20261127T215230Z` for `.../grafana-20261127T215230Z.tar.gz`."""
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name


def _manifest_files(manifest: Any, where: object) -> dict[str, str]:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BadArchive(f"{where}: {MANIFEST} has no file list")
    files: dict[str, str] = manifest["files"]
    return files


def _safe_relpath(relpath: str, where: object) -> str:
    p = PurePosixPath(relpath)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in relpath:
        raise BadArchive(f"{where}: unsafe path {relpath!r}")
    return p.as_posix()


def write_archive(backup_dir: Path, dest: Path | None = None) -> Path:
    """Pack a finished backup directory into `dest` (default `<dir>.tar.gz` beside it);
    the directory is left as it is. The archive path."""
    try:
        manifest = json.loads((backup_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{backup_dir}: not a backup: {exc}") from None
    files = _manifest_files(manifest, backup_dir)
    name = backup_dir.name
    final = dest or backup_dir.with_name(name + SUFFIX)
    if final.exists():
        raise UsageError(f"{final}: exists already; an archive is never overwritten")
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    mtime = os.stat(backup_dir / MANIFEST).st_mtime
    try:
        # mtime 0 in the gzip header, fixed tar headers: same backup, same bytes
        with (
            tmp.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            top = tarfile.TarInfo(name)
            top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, int(mtime)
            tar.addfile(top)
            for rel in [MANIFEST, *sorted(files)]:
                rel = _safe_relpath(rel, backup_dir)
                data = (backup_dir / rel).read_bytes()
                info = tarfile.TarInfo(f"{name}/{rel}")
                info.size, info.mode, info.mtime = len(data), 0o644, int(mtime)
                tar.addfile(info, io.BytesIO(data))
        with tmp.open("rb+") as synced:
            os.fsync(synced.fileno())
        os.rename(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:gz")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BadArchive(f"{path}: not a readable .tar.gz: {exc}") from None


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of an archive, read from its first members without unpacking the
    rest; BadArchive when there is none."""
    with _open(path) as tar:
        try:
            for _ in range(3):  # the top directory, then the manifest (as write_archive packs)
                member = tar.next()
                if member is None:
                    break
                if member.isfile() and PurePosixPath(member.name).name == MANIFEST:
                    if len(PurePosixPath(member.name).parts) != 2:
                        break
                    fh = tar.extractfile(member)
                    data = json.loads(fh.read()) if fh else None
                    _manifest_files(data, path)
                    assert isinstance(data, dict)
                    return data
        except (OSError, tarfile.TarError, EOFError, ValueError) as exc:
            raise BadArchive(f"{path}: unreadable: {exc}") from None
    raise BadArchive(f"{path}: no <name>/{MANIFEST} at the start of the archive")


def _check_members(tar: tarfile.TarFile, path: Path) -> str:
    """The one top-level directory name; BadArchive on anything unsafe."""
    top: str | None = None
    total = 0
    for n, member in enumerate(tar):
        if n > MAX_MEMBERS:
            raise BadArchive(f"{path}: more than {MAX_MEMBERS} members")
        name = member.name
        p = PurePosixPath(name)
        if p.is_absolute() or ".." in p.parts or "\\" in name or not p.parts:
            raise BadArchive(f"{path}: unsafe member path {name!r}")
        if not (member.isfile() or member.isdir()):
            raise BadArchive(f"{path}: {name!r} is a link or device: refused")
        if top is None:
            top = p.parts[0]
        if p.parts[0] != top or (member.isfile() and len(p.parts) < 2):
            raise BadArchive(f"{path}: {name!r} is outside the backup's directory {top!r}")
        total += member.size
        if total > MAX_BYTES:
            raise BadArchive(f"{path}: unpacks to more than {MAX_BYTES} bytes")
    if top is None or top in (".", ""):
        raise BadArchive(f"{path}: empty archive")
    return top


def verify(directory: Path, manifest: dict[str, Any], where: object) -> list[str]:
    """Every file of the manifest present with its sha256, and no file the manifest does
    not list (besides itself)."""
    files = _manifest_files(manifest, where)
    problems = []
    for rel, expected in sorted(files.items()):
        target = directory / _safe_relpath(rel, where)
        if not target.is_file():
            problems.append(f"{rel}: missing")
            continue
        if hashlib.sha256(target.read_bytes()).hexdigest() != expected:
            problems.append(f"{rel}: sha256 mismatch (file changed or corrupted)")
    listed = set(files) | {MANIFEST}
    for p in sorted(directory.rglob("*")):
        if p.is_file() and p.relative_to(directory).as_posix() not in listed:
            problems.append(f"{p.relative_to(directory).as_posix()}: not in the manifest")
    return problems


@contextmanager
def opened(path: Path) -> Iterator[Path]:
    """A backup's directory: `path` itself when it is one, else the archive unpacked
    (safely, checksums verified) into a temporary directory removed on exit."""
    if path.is_dir():
        yield path
        return
    if not path.name.endswith(SUFFIX) or not path.is_file():
        raise UsageError(f"{path}: not a backup directory or {SUFFIX} archive")
    scratch = Path(tempfile.mkdtemp(prefix="opskit-archive-"))
    try:
        with _open(path) as tar:
            try:
                top = _check_members(tar, path)
                tar.extractall(scratch, filter="data")
            except tarfile.TarError as exc:  # the data filter's refusals, a truncated file
                raise BadArchive(f"{path}: refused: {exc}") from None
            except (OSError, EOFError) as exc:
                raise BadArchive(f"{path}: unreadable: {exc}") from None
        directory = scratch / top
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise BadArchive(f"{path}: no readable {MANIFEST}: {exc}") from None
        problems = verify(directory, manifest, path)
        if problems:
            more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
            raise BadArchive(f"{path}: {'; '.join(problems[:3])}{more}")
        yield directory
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
