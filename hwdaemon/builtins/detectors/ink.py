"""Ink on a page as the detectors measure it: letter-sized components, scan artefacts, typical line height.

Shared by the rule-based detectors (rules.py), reading order (reading_order.py) and
`linenet` (linenet.py), so they agree on what counts as a letter and as a line's height.
"""

from __future__ import annotations

import cv2
import numpy as np

from hwdaemon.model import Image


def ink_components(mask: Image) -> list[tuple[int, int, int, int]]:
    """Boxes of ink components big enough to be letters.

    Specks and scan artefacts (edges, frames) are also erased from `mask` in place,
    so the smearing that follows cannot glue them to the writing.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = []
    for index in range(1, count):
        x, y, w, h, area = (int(value) for value in stats[index])
        if is_scan_artefact(w, h, area, mask.shape):
            mask[labels == index] = 0
        elif area >= 12 and h >= 4:
            boxes.append((x, y, w, h))
    return boxes


def is_scan_artefact(width: int, height: int, area: int, shape: tuple[int, ...]) -> bool:
    """A dark band along a whole edge, a frame around the page, or a solid black page.

    A line crop's writing may span its whole height and width (cursive is often one
    component), so size alone is not enough: a frame is hollow, a black page is full.
    """
    page_height, page_width = shape[:2]
    edge_band = height > page_height * 0.9 and width < page_width * 0.1
    fill = area / max(1, width * height)
    covers_page = height > page_height * 0.9 and width > page_width * 0.9 and (fill < 0.05 or fill > 0.9)
    return edge_band or covers_page


def width_weighted_median(heights: list[float], widths: list[float]) -> float:
    """The median of `heights`, each counted as often as its width."""
    order = np.argsort(heights, kind="stable")
    cumulative = np.cumsum(np.asarray(widths, dtype=np.float64)[order])
    return float(np.asarray(heights, dtype=np.float64)[order][int(np.searchsorted(cumulative, cumulative[-1] / 2))])
