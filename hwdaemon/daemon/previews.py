"""Page previews for the review page: one downscaled JPEG per page, kept in the state folder.

The review page serves only these files, found by job id and page number, so
no request parameter ever becomes a filesystem path. They are written when the
job is read, because the original may be moved, deleted or on a share that is
gone by the time someone reviews it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import cv2

from hwdaemon.export import write_atomic
from hwdaemon.model import Document, Image, Page

PREVIEW_FOLDER = "previews"


def preview_path(state_dir: Path, job_id: int, page_number: int) -> Path:
    return state_dir / PREVIEW_FOLDER / str(int(job_id)) / f"{int(page_number)}.jpg"


def encode_previews(document: Document, max_side: int) -> dict[int, bytes]:
    """One JPEG per page, at most `max_side` pixels long (also sent back by remote workers)."""
    encoded_pages: dict[int, bytes] = {}
    for _ in previewed(document, max_side, encoded_pages).pages:
        pass
    return encoded_pages


def previewed(document: Document, max_side: int, into: dict[int, bytes]) -> Document:
    """The document with each page's preview encoded into `into` as the page passes by.

    Pages are decoded one at a time while the pipeline reads them; encoding on the
    way through is what keeps a preview from decoding the whole file a second time.
    """

    def pages() -> Iterator[Page]:
        for page in document.pages:
            preview = _encoded(page.image, max_side)
            if preview is not None:
                into[page.number] = preview
            yield page

    return replace(document, pages=pages())


def _encoded(image: Image, max_side: int) -> bytes | None:
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cast(Image, cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    if image.ndim == 3:
        image = cast(Image, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return encoded.tobytes() if ok else None


def save_previews(previews: dict[int, bytes], state_dir: Path, job_id: int) -> None:
    """Replace the job's previews with these JPEGs (page number → bytes)."""
    folder = state_dir / PREVIEW_FOLDER / str(int(job_id))
    shutil.rmtree(folder, ignore_errors=True)
    for page_number, jpeg in previews.items():
        write_atomic(preview_path(state_dir, job_id, page_number), jpeg)
