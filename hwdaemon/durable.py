"""Durable files: a file renamed into a folder is on disk only once the folder itself is fsynced.

One helper for every place that writes a file whole and renames it in (the store's
fresh database, exports, API upload spools), so they all make it last the same way.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_folder(folder: Path) -> None:
    """Flush `folder`'s entries (a rename, a new name) to disk."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
