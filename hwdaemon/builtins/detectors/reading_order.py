"""Reading order: the blocks of writing on a page, in the order a person reads them (recursive XY-cut).

Detectors find lines block by block in this order: the rule-based ones on their ink
mask (rules.py), `linenet` on its line cores (linenet.py).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt

from hwdaemon.builtins.detectors.ink import ink_components
from hwdaemon.model import Image

Region = tuple[int, int, int, int]  # left, top, right, bottom
MAX_CUT_DEPTH = 6


def reading_regions(mask: Image) -> list[Region]:
    """Blocks of writing in reading order, by recursive XY-cut.

    A block is cut into blocks above one another at wide blank rows (a gap of
    several letter heights, not the space between two lines), and into blocks
    side by side at gutters: blank vertical strips through the whole block.
    Words far apart on one line leave a gap on that line only, so they are not
    a gutter. Columns read column after column; scattered notes block by block,
    top to bottom, left to right.
    """
    components = ink_components(mask)
    if not components:
        return []
    char_height = float(np.median([h for _, _, _, h in components]))
    height, width = mask.shape
    return _cut(mask, (0, 0, width, height), char_height, 0)


def _cut(mask: Image, region: Region, char_height: float, depth: int) -> list[Region]:
    left, top, right, bottom = region
    block = mask[top:bottom, left:right] > 0
    rows, columns = np.where(block.any(axis=1))[0], np.where(block.any(axis=0))[0]
    if len(rows) == 0:
        return []
    left, right, top, bottom = (
        left + int(columns[0]),
        left + int(columns[-1]) + 1,
        top + int(rows[0]),
        top + int(rows[-1]) + 1,
    )
    if depth >= MAX_CUT_DEPTH:
        return [(left, top, right, bottom)]
    block = mask[top:bottom, left:right] > 0
    stacked = _splits(cast(npt.NDArray[np.bool_], block.any(axis=1)), max(20, int(4 * char_height)))
    if len(stacked) > 1:
        return [
            part
            for start, end in stacked
            for part in _cut(mask, (left, top + start, right, top + end), char_height, depth + 1)
        ]
    if bottom - top >= 6 * char_height:  # fewer than about three lines: no columns to speak of
        ink_per_column = block.sum(axis=0)
        blank = ink_per_column <= 0.01 * (bottom - top)
        side_by_side = _splits(~blank, max(20, int(2 * char_height), mask.shape[1] // 25))
        if len(side_by_side) > 1:
            return [
                part
                for start, end in side_by_side
                for part in _cut(mask, (left + start, top, left + end, bottom), char_height, depth + 1)
            ]
    return [(left, top, right, bottom)]


def _splits(has_ink: npt.NDArray[np.bool_], min_gap: int) -> list[tuple[int, int]]:
    """Spans of `has_ink` separated by blank runs of at least `min_gap`; each cut in the middle of its gap."""
    spans, start, blank_from = [], 0, None
    for position in range(len(has_ink) + 1):
        if position < len(has_ink) and not has_ink[position]:
            blank_from = position if blank_from is None else blank_from
            continue
        if blank_from is not None and position - blank_from >= min_gap and blank_from > 0 and position < len(has_ink):
            middle = (blank_from + position) // 2
            spans.append((start, middle))
            start = middle
        blank_from = None
    spans.append((start, len(has_ink)))
    return spans
