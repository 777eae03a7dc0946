"""Which paths in an inbox are scans to read: a pure function, tested without a disk."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import PurePath

# Partial downloads, editor locks and temp files: never read, whatever the inbox says.
ALWAYS_IGNORED = ("*.part", "*.crdownload", "*.tmp", "*.partial", "~$*", ".~lock*", "*.swp", "*.error.json")
PROCESSED_FOLDER = "processed"
FAILED_FOLDER = "failed"


def is_candidate(relative: PurePath, patterns: list[str], ignore: list[str], recursive: bool) -> bool:
    """True if `relative` (a path inside the inbox) should become a job."""
    parts = relative.parts
    if not parts:
        return False
    if len(parts) > 1 and not recursive:
        return False
    if parts[0] in (PROCESSED_FOLDER, FAILED_FOLDER):
        return False
    if any(part.startswith(".") for part in parts):
        return False
    name = parts[-1]
    if any(fnmatch(name, pattern) for pattern in (*ALWAYS_IGNORED, *ignore)):
        return False
    return any(fnmatch(name, pattern) for pattern in patterns)
