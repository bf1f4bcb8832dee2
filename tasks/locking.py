"""One at a time: an exclusive `fcntl` lock on a file, held for as long as the process
does its work (the kernel drops it when the process dies, so a crash leaves no stale
lock). Used by `opskit maintenance` and `opskit schedule run`."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opskit.errors import EXIT_BUSY, OpskitError


class LockBusy(OpskitError):
    exit_code = EXIT_BUSY
    title = "busy"


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid else ""


@contextmanager
def exclusive(path: Path, what: str, wait: float = 0.0, poll: float = 0.2) -> Iterator[None]:
    """Hold the lock at `path`; wait up to `wait` seconds for it, then raise LockBusy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(f"another {what} is running{_holder(path)}") from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
