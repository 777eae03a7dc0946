"""A real memory cap for a test's process: a cgroup (v2, else v1's memory controller) with a limit.

The kernel enforces it, as systemd's MemoryMax= would: a process of the group
that goes over is killed by the OOM killer, which is what a memory bomb must
not provoke in the daemon.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

_V2 = Path("/sys/fs/cgroup")
_V1_MEMORY = Path("/sys/fs/cgroup/memory")


class MemoryCap:
    def __init__(self, limit_bytes: int) -> None:
        name = f"hwdaemon-test-{uuid.uuid4().hex[:8]}"
        if (_V2 / "cgroup.controllers").exists() and "memory" in (_V2 / "cgroup.controllers").read_text():
            self.folder = _V2 / name
            self.folder.mkdir()
            (self.folder / "memory.max").write_text(str(limit_bytes))
            (self.folder / "memory.swap.max").write_text("0") if (self.folder / "memory.swap.max").exists() else None
        else:
            self.folder = _V1_MEMORY / name
            self.folder.mkdir()
            (self.folder / "memory.limit_in_bytes").write_text(str(limit_bytes))
            swap = self.folder / "memory.memsw.limit_in_bytes"
            if swap.exists():
                try:
                    swap.write_text(str(limit_bytes))
                except OSError:
                    pass  # swap accounting off: the machine has no swap to escape into anyway

    def add(self, pid: int) -> None:
        (self.folder / "cgroup.procs").write_text(str(pid))

    def peak_bytes(self) -> int | None:
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            if (self.folder / name).exists():
                return int((self.folder / name).read_text())
        return None

    def oom_kills(self) -> int:
        for name in ("memory.events", "memory.oom_control"):
            path = self.folder / name
            if path.exists():
                for line in path.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0

    def remove(self) -> None:
        try:
            self.folder.rmdir()
        except OSError:
            pass  # a process is still in it; the kernel drops the group when it ends


def memory_cap_unavailable() -> str | None:
    """Why no cap can be made here (not root, no writable cgroup), or None."""
    if os.geteuid() != 0:
        return "a memory cgroup needs root"
    for base in (_V2, _V1_MEMORY):
        if os.access(base, os.W_OK) and (
            (base / "cgroup.controllers").exists() or (base / "memory.limit_in_bytes").exists()
        ):
            return None
    return "no writable memory cgroup on this machine"
