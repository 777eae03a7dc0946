"""A line's words and baseline, as measured or, when the recognizer did not measure them, estimated.

The rule: every exporter that needs words or a baseline asks here, never `line.words` /
`line.baseline` directly, so a line read by a recognizer that knows neither (EasyOCR,
Tesseract, results stored before schema 2) still exports with word boxes and a baseline,
and every format estimates them the same way. Estimates are in the line's own frame.
"""

from __future__ import annotations

import re

from hwdaemon.model import Box, Line, Point, Word

BASELINE_HEIGHT_FRACTION = 0.8  # the foot of the letters sits about a fifth above the box's bottom (descenders below)

_WORD = re.compile(r"\S+")


def words_of(line: Line) -> tuple[Word, ...]:
    """The line's words; estimated when it has none: its text split on spaces, each word's x range
    proportional to where its characters fall in the text, across the line's box, the box's full height,
    with the line's confidence."""
    if line.words:
        return line.words
    if not line.text or not line.polygon:
        return ()
    box = line.box
    characters = len(line.text)
    top, bottom = box.y, box.y + box.height

    def x_at(offset: int) -> int:
        return box.x + round(box.width * offset / characters)

    words = []
    for match in _WORD.finditer(line.text):
        left, right = x_at(match.start()), x_at(match.end())
        polygon: tuple[Point, ...] = ((left, top), (right, top), (right, bottom), (left, bottom))
        words.append(Word(text=match.group(), confidence=line.confidence, polygon=polygon))
    return tuple(words)


def baseline_of(line: Line) -> tuple[Point, ...]:
    """The line's baseline, left to right; estimated when it has none: straight across its box,
    at `BASELINE_HEIGHT_FRACTION` of the box's height from the top."""
    if line.baseline:
        return line.baseline
    if not line.polygon:
        return ()
    box = line.box
    y = box.y + round(box.height * BASELINE_HEIGHT_FRACTION)
    return ((box.x, y), (box.x + box.width, y))


def bounds_of(lines: tuple[Line, ...]) -> Box:
    """The box holding all `lines` (a page's text block, a region): the union of their boxes."""
    boxes = [line.box for line in lines]
    left, top = min(box.x for box in boxes), min(box.y for box in boxes)
    right, bottom = max(box.x + box.width for box in boxes), max(box.y + box.height for box in boxes)
    return Box(left, top, right - left, bottom - top)


def baseline_slope_offset(baseline: tuple[Point, ...], box: Box) -> tuple[float, float]:
    """hOCR's `baseline`: the slope of the straight line through the baseline's ends, and its height at the box's
    left edge measured from the box's bottom (negative: above it). (0, 0) for a baseline of fewer than two points."""
    if len(baseline) < 2:
        return 0.0, 0.0
    (x1, y1), (x2, y2) = baseline[0], baseline[-1]
    slope = (y2 - y1) / (x2 - x1) if x2 != x1 else 0.0
    return slope, y1 + slope * (box.x - x1) - (box.y + box.height)
