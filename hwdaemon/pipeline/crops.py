"""Line crops as recognizers read them: the box, with everything outside the line's outline painted as paper.

Training crops are made the same way from transcribed polygons
(training/data.py `crop_polygon`), so a recognizer sees at work what it saw
while learning: one line on clean paper, not the tails of its neighbours.
Third-party recognizers get the same crops by calling `line_crop`.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from hwdaemon.model import Box, Image

GROW = 7  # pixels the outline is grown by before painting: its edge may cut through the line's own strokes


def line_crop(gray: Image, box: Box) -> Image:
    """The box's pixels of a greyscale page; painted outside `box.outline` when the detector gave one."""
    crop = gray[box.y : box.y + box.height, box.x : box.x + box.width]
    if not box.outline or crop.size == 0:
        return crop
    return paint_outside(crop, [(x - box.x, y - box.y) for x, y in box.outline])


def paint_outside(pixels: Image, outline: Sequence[tuple[float, float]], grow: int = GROW) -> Image:
    """A copy of a greyscale crop with everything outside the grown outline (crop coordinates) set to the paper's grey.

    The paper is the crop's 90th-percentile grey: most of a line crop is paper, and ink is darker.
    """
    points = np.round(np.asarray(outline, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
    mask = np.zeros(pixels.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [points], 255)
    cv2.polylines(
        mask, [points], isClosed=True, color=255, thickness=2 * grow + 1
    )  # a thick edge grows the polygon by `grow`
    painted = pixels.copy()
    painted[mask == 0] = np.percentile(pixels, 90)
    return painted
