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
from hwdaemon.filenames import ERROR_REPORT_SUFFIX, NAME_MAX_BYTES, fit_name


def free_name(folder: Path, name: str, reserve_bytes: int = 0) -> Path:
    """`folder/name`, or `folder/stem-2.ext`, `-3`, … when taken; each fits NAME_MAX with `reserve_bytes` to spare."""
    candidate = folder / fit_name(name, reserve_bytes)
    stem, suffix = Path(name).stem, Path(name).suffix
    counter = 2
    while _is_taken(candidate):
        candidate = folder / fit_name(f"{stem}-{counter}{suffix}", reserve_bytes)
        counter += 1
    return candidate


def _is_taken(candidate: Path) -> bool:
    report = Path(f"{candidate}{ERROR_REPORT_SUFFIX}")
    return candidate.exists() or candidate.is_symlink() or (len(os.fsencode(report.name)) <= NAME_MAX_BYTES and report.exists())


def move_into(path: Path, folder: Path, with_report: bool = False) -> Path:
    """Move `path` into `folder` (same filesystem: an atomic rename) without replacing anything.

    `with_report` keeps the name short enough for the `.error.json` written beside it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = free_name(folder, path.name, len(ERROR_REPORT_SUFFIX) if with_report else 0)
    os.rename(path, target)
    return target


def write_error_report(beside: Path, error: str, attempts: int, details: dict[str, Any]) -> Path:
    report = Path(f"{beside}{ERROR_REPORT_SUFFIX}")
    body = {"file": beside.name, "error": error, "attempts": attempts, "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **details}
    write_atomic(report, json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    return report
