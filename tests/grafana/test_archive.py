"""The single-file form of a backup (tasks.grafana_archive): packed with the manifest
first, unpacked only when every member is a plain file inside the backup's directory and
every checksum matches."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from opskit.tasks.backup_store import BackupWriter, list_backups, resolve
from opskit.tasks.grafana_archive import (
    BadArchive,
    opened,
    read_manifest,
    write_archive,
)


def make_backup(parent: Path) -> Path:
    w = BackupWriter(parent, "grafana")
    w.write_json("folders.json", [{"uid": "f", "title": "F", "parentUid": None}])
    w.write_json("datasources.json", [])
    w.write_json("dashboards/d1.json", {"uid": "d1", "folderUid": "f", "dashboard": {"uid": "d1"}})
    return w.commit({"format": "opskit-grafana-backup/1", "counts": {"dashboards": 1}})


def test_round_trip_manifest_first_and_reproducible(tmp_path: Path) -> None:
    backup = make_backup(tmp_path)
    archive = write_archive(backup)
    assert archive.name == backup.name + ".tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[:2] == [backup.name, f"{backup.name}/manifest.json"]
    assert read_manifest(archive)["counts"] == {"dashboards": 1}
    with opened(archive) as d:
        assert d.name == backup.name
        assert json.loads((d / "dashboards/d1.json").read_text())["uid"] == "d1"
        scratch = d.parent
    assert not scratch.exists()  # removed afterwards
    again = write_archive(backup, tmp_path / "copy.tar.gz")
    assert (
        hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(archive.read_bytes()).digest()
    )
    with pytest.raises(Exception, match="never overwritten"):
        write_archive(backup)


def test_listed_and_resolved_like_a_directory(tmp_path: Path) -> None:
    backup = make_backup(tmp_path)
    archive = write_archive(backup)
    import shutil

    shutil.rmtree(backup)
    listing = list_backups(tmp_path, "grafana")
    assert [b.path for b in listing.backups] == [archive]
    assert listing.backups[0].counts == {"dashboards": 1}
    assert resolve("latest", tmp_path, "grafana") == archive
    assert resolve(archive.name, tmp_path, "grafana") == archive


def _tamper(archive: Path, out: Path, edit: str) -> Path:
    """A copy of `archive` with one thing changed the way an attacker or a bad disk would."""
    with tarfile.open(archive) as src, tarfile.open(out, "w:gz") as dst:
        top = src.getnames()[0]
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            if edit == "content" and m.name.endswith("d1.json"):
                data = b'{"uid": "evil"}\n'
                m.size = len(data)
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
        extra = {
            "symlink": (tarfile.SYMTYPE, f"{top}/link", "/etc/passwd"),
            "hardlink": (tarfile.LNKTYPE, f"{top}/hard", f"{top}/manifest.json"),
            "dotdot": (tarfile.REGTYPE, f"{top}/../escape.json", ""),
            "absolute": (tarfile.REGTYPE, "/tmp/opskit-absolute.json", ""),
            "device": (tarfile.CHRTYPE, f"{top}/dev", ""),
            "outside": (tarfile.REGTYPE, "other/x.json", ""),
            "unlisted": (tarfile.REGTYPE, f"{top}/dashboards/extra.json", ""),
        }.get(edit)
        if extra:
            info = tarfile.TarInfo(extra[1])
            info.type = extra[0]
            info.linkname = extra[2]
            body = b"{}" if extra[0] == tarfile.REGTYPE else b""
            info.size = len(body)
            dst.addfile(info, io.BytesIO(body) if body else None)
    return out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("content", "sha256 mismatch"),
        ("symlink", "link or device"),
        ("hardlink", "link or device"),
        ("device", "link or device"),
        ("dotdot", "unsafe member path"),
        ("absolute", "unsafe member path"),
        ("outside", "outside the backup"),
        ("unlisted", "not in the manifest"),
    ],
)
def test_unsafe_or_corrupt_archives_are_refused(tmp_path: Path, edit: str, message: str) -> None:
    archive = write_archive(make_backup(tmp_path / "b"))
    bad = _tamper(archive, tmp_path / f"{edit}.tar.gz", edit)
    with pytest.raises(BadArchive, match=message), opened(bad):
        pass
    assert not Path("/tmp/opskit-absolute.json").exists()
    assert not (tmp_path / "escape.json").exists()


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "grafana-20260101T000000Z.tar.gz"
    junk.write_bytes(b"not gzip")
    with pytest.raises(BadArchive), opened(junk):
        pass
    with pytest.raises(BadArchive):
        read_manifest(junk)
