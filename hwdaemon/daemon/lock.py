"""One daemon per state_dir: an exclusive `flock` on `state_dir/daemon.lock`, held for the process's life.

Only `hwdaemon run` takes it. The read commands (`status`, `deliveries`, `ui`, …)
and `hwdaemon worker` (which has no state_dir of its own) never do, so they work
beside a running daemon. The kernel drops the lock when the process dies, kill -9
included, so a crash leaves nothing stale to clean up. The file is never
deleted: unlinking a lock file lets two processes lock two different files.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from hwdaemon.errors import StateDirInUseError

LOCK_NAME = "daemon.lock"


class StateDirLock:
    """A held lock; `release()` (or the process's end) lets the next daemon start."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def acquire_state_dir(state_dir: Path) -> StateDirLock:
    """Lock `state_dir` for this process or raise StateDirInUseError naming the daemon that holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StateDirInUseError(
            f"state_dir {state_dir} is in use by another hwdaemon run ({holder}, lock {path}); "
            "stop that daemon first, or give this one its own state_dir. "
            "status, deliveries and ui work beside it without a lock"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return StateDirLock(path, fd)


def _holder(fd: int) -> str:
    """The pid the lock's holder wrote, as words for the message."""
    text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    return f"pid {text}" if text.isdigit() else "pid not yet written"
