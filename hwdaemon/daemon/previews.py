"""Page previews for the review page: one downscaled JPEG per page, kept in the state folder.

The review page serves only these files, found by job id and page number, so
no request parameter ever becomes a filesystem path. They are written when the
job is read, because the original may be moved, deleted or on a share that is
gone by the time someone reviews it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2

from hwdaemon.export import write_atomic
from hwdaemon.model import Document

PREVIEW_FOLDER = "previews"


def preview_path(state_dir: Path, job_id: int, page_number: int) -> Path:
    return state_dir / PREVIEW_FOLDER / str(int(job_id)) / f"{int(page_number)}.jpg"


def encode_previews(document: Document, max_side: int) -> dict[int, bytes]:
    """One JPEG per page, at most `max_side` pixels long (also sent back by remote workers)."""
    encoded_pages = {}
    for page in document.pages:
        image = page.image
        scale = max_side / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            encoded_pages[page.number] = encoded.tobytes()
    return encoded_pages


def save_previews(previews: dict[int, bytes], state_dir: Path, job_id: int) -> None:
    """Replace the job's previews with these JPEGs (page number → bytes)."""
    folder = state_dir / PREVIEW_FOLDER / str(int(job_id))
    shutil.rmtree(folder, ignore_errors=True)
    for page_number, jpeg in previews.items():
        write_atomic(preview_path(state_dir, job_id, page_number), jpeg)

