"""Where an upload's bytes go while they arrive: a spool file under state_dir/uploads/.spool, never memory.

The rule: a file becomes visible in state_dir/uploads — and so can become a
job — only whole. Bytes are appended to a private `.part` file, counted
against the limit as they come (413 at the first byte over it), fsynced when
the body has ended, then linked under a free name into the uploads folder.
An upload that is cut off, too large or refused leaves nothing behind: its
spool file is removed. A spool file left by a killed process is swept at start.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from hwdaemon.daemon.filing import free_name, uploads_folder
from hwdaemon.durable import fsync_folder
from hwdaemon.filenames import fit_name

SPOOL_FOLDER = ".spool"
STALE_SPOOL_SECONDS = 3600.0  # no upload trickles for an hour; a .part this old belongs to a dead process
FLUSH_BYTES = 1 << 20  # bytes kept in memory before they are written out, per upload


class UploadTooLargeError(Exception):
    """The upload passed its byte limit; nothing of it is kept."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the upload is larger than the limit of {limit_bytes} bytes (api.max_upload_bytes)")
        self.limit_bytes = limit_bytes


class Spool:
    """One upload's spool file. Call `write` for each piece, then `place` (or `discard`). Used from one thread at a time."""

    def __init__(self, state_dir: Path, limit_bytes: int) -> None:
        self.folder = uploads_folder(state_dir)
        spool = self.folder / SPOOL_FOLDER
        spool.mkdir(parents=True, exist_ok=True)
        self.path = spool / f"{secrets.token_hex(8)}.part"
        # 0600: a scan sent over HTTP may be private, and only the daemon's own account reads it
        self._file = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb")
        self.limit_bytes = limit_bytes
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append `data`; UploadTooLargeError (and the file removed) past the limit."""
        self.size += len(data)
        if self.size > self.limit_bytes:
            self.discard()
            raise UploadTooLargeError(self.limit_bytes)
        self._file.write(data)

    def place(self, name: str) -> Path:
        """The whole upload, fsynced, linked into the uploads folder as `name` (or `name-2`, …); returns its path."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        while True:
            target = free_name(self.folder, name)
            try:
                os.link(self.path, target)  # fails rather than replace a file another upload just placed
                break
            except FileExistsError:
                continue
        self.path.unlink()
        fsync_folder(self.folder)
        return target

    def discard(self) -> None:
        """Remove the spool file (cut off, too large, refused); safe to call twice."""
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def safe_upload_name(name: str | None, fallback: str = "upload") -> str:
    """The client's file name reduced to a name that is safe to create: no folders, no control characters, fits NAME_MAX.

    `../../etc/passwd` becomes `passwd`, `C:\\scans\\a.jpg` becomes `a.jpg`, a
    name of dots or nothing becomes `fallback`.
    """
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(char for char in base if char.isprintable()).strip().lstrip(".")
    return fit_name(cleaned or fallback)


def sweep_spool(state_dir: Path, older_than_seconds: float = STALE_SPOOL_SECONDS) -> int:
    """Remove spool files a killed process left (none is written to for that long); returns how many."""
    spool = uploads_folder(state_dir) / SPOOL_FOLDER
    if not spool.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - older_than_seconds
    for part in spool.glob("*.part"):
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
