"""What happens to an original after its job: moved to processed/ or failed/ (or kept, or deleted), never overwritten.

The one module that files scans: the daemon after a job, at intake (a
refusal, a leftover of a crash) and `hwdaemon retry` all come here. A failed
file gets `<name>.error.json` beside it, written atomically, so the person
who dropped it finds the reason next to the file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from hwdaemon.daemon.filters import FAILED_FOLDER, PROCESSED_FOLDER
from hwdaemon.export import write_atomic
from hwdaemon.filenames import ERROR_REPORT_SUFFIX, NAME_MAX_BYTES, fit_name

UPLOADS_FOLDER = "uploads"


def uploads_folder(state_dir: Path) -> Path:
    """Where files sent to the HTTP API lie: not an inbox, so no watcher takes them in a second time."""
    return (state_dir / UPLOADS_FOLDER).absolute()


def filing_root(job_path: str, inbox_key: str, state_dir: Path) -> Path:
    """The folder a job's file is filed in (processed/, failed/): its inbox, or state_dir/uploads for an upload.

    An upload follows its inbox's `after:` policy all the same; only the place differs.
    """
    uploads = uploads_folder(state_dir)
    return uploads if Path(job_path).absolute().is_relative_to(uploads) else Path(inbox_key)


def file_done(path: Path, after: str, inbox: Path) -> Path | None:
    """A file whose job read it (or found it a duplicate): into processed/, kept, or deleted, as the inbox says.

    Returns where it now lies when it moved (or was read from processed/ already).
    """
    processed = inbox / PROCESSED_FOLDER
    if after == "move" and path.exists():
        if path.absolute().parent == processed.absolute():
            return path  # reprocessed from processed/: already filed
        return move_into(path, processed)
    if after == "delete":
        path.unlink(missing_ok=True)
    return None


def file_failed(path: Path, inbox: Path, error: str, attempts: int, details: dict[str, Any]) -> Path | None:
    """Into failed/ with its `.error.json` (the same keys for every failure); None when the file is gone (deleted meanwhile)."""
    if not (path.exists() or path.is_symlink()):
        return None
    final = move_into(path, inbox / FAILED_FOLDER, with_report=True)
    write_error_report(final, error, attempts, {"original_name": path.name, "traceback": None, **details})
    return final


def return_to_inbox(failed_file: Path, inbox: Path, name: str) -> Path:
    """`hwdaemon retry`: a failed file back into its inbox under its own name (or a free one), its report removed."""
    target = free_name(inbox, name)
    os.rename(failed_file, target)
    Path(f"{failed_file}{ERROR_REPORT_SUFFIX}").unlink(missing_ok=True)
    return target


def with_utf8_name(path: Path) -> Path:
    """A file whose name is not UTF-8 (an old scanner's Latin-1 name on a share), renamed in place to what it meant.

    The store, logs and JSON need text; the bytes are read as Latin-1, which maps
    every byte, so `caf\xe9.png` (the bytes) becomes `café.png`. The contents are not touched.
    """
    name = os.fsencode(path.name).decode("latin-1")
    target = free_name(path.parent, name)
    os.rename(path, target)
    return target


def is_utf8_name(path: Path) -> bool:
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    return (
        candidate.exists()
        or candidate.is_symlink()
        or (len(os.fsencode(report.name)) <= NAME_MAX_BYTES and report.exists())
    )


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
    body = {
        "file": beside.name,
        "error": error,
        "attempts": attempts,
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **details,
    }
    write_atomic(report, json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    return report
