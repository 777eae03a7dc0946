"""What happens to an original after its job: moved to processed/ or failed/, never overwritten.

A failed file gets `<name>.error.json` beside it, written atomically, so the
person who dropped it finds the reason next to the file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hwdaemon.export import write_atomic
from hwdaemon.filenames import ERROR_REPORT_SUFFIX, fit_name

COUNTER_BYTES = 8  # room for "-9999999" when a name is taken


def free_name(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/stem-2.ext`, `-3`, … when taken; short enough for its `.error.json` too."""
    name = fit_name(name, reserve_bytes=len(ERROR_REPORT_SUFFIX) + COUNTER_BYTES)
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    counter = 2
    while candidate.exists() or candidate.is_symlink() or Path(f"{candidate}{ERROR_REPORT_SUFFIX}").exists():
        candidate = folder / f"{stem}-{counter}{suffix}"
        counter += 1
    return candidate


def move_into(path: Path, folder: Path) -> Path:
    """Move `path` into `folder` (same filesystem: an atomic rename) without replacing anything."""
    folder.mkdir(parents=True, exist_ok=True)
    target = free_name(folder, path.name)
    os.rename(path, target)
    return target


def write_error_report(beside: Path, error: str, attempts: int, details: dict[str, Any]) -> Path:
    report = Path(f"{beside}{ERROR_REPORT_SUFFIX}")
    body = {"file": beside.name, "error": error, "attempts": attempts, "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **details}
    write_atomic(report, json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    return report
