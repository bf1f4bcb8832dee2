#!/usr/bin/env python3
"""Run one Postfix instance in the foreground for lab.py: `postfix -c DIR start-fg`, and on
SIGTERM `postfix -c DIR stop`, waiting until its master has exited. Postfix's master makes
itself a session leader (unless it is PID 1), so the process-group SIGTERM with which
lab.py stops a server would leave it running. Standard library only."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

POSTFIX = "/usr/sbin/postfix"


def master_pid(queue_dir: Path) -> int | None:
    try:
        return int((queue_dir / "pid" / "master.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphaned master may be left unreaped by a container's init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def stop(conf: str, queue_dir: Path, timeout: float = 20.0) -> None:
    pid = master_pid(queue_dir)
    subprocess.run([POSTFIX, "-c", conf, "stop"], check=False)
    deadline = time.monotonic() + timeout
    while pid is not None and alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)


def main() -> None:
    conf, queue_dir = sys.argv[1], Path(sys.argv[2])
    # A master left over by a crashed wrapper holds the port: stop it first.
    if subprocess.run([POSTFIX, "-c", conf, "status"], capture_output=True).returncode == 0:
        stop(conf, queue_dir)
    child = subprocess.Popen([POSTFIX, "-c", conf, "start-fg"])

    stopping: list[int] = []

    def on_term(signum: int, _frame: FrameType | None) -> None:
        # The handler runs inside child.wait(), which holds Popen's wait lock: stop the
        # master here and let that wait() reap the child.
        if not stopping:
            stopping.append(signum)
            stop(conf, queue_dir)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    code = child.wait()
    sys.exit(0 if stopping else code)


if __name__ == "__main__":
    main()
