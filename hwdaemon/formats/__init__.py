"""Document exports that carry layout: ALTO, PAGE and hOCR, one module each, each `Result → str`.

The rule: a module here serialises a Result with lxml and asks `hwdaemon.layout` for
words and baselines, so a line without measured ones still exports them. Coordinates
are written as the Result holds them (the original image, for schema 2).
`hwdaemon.export` registers these formats beside txt, json and csv.
"""

from __future__ import annotations

from hwdaemon.model import Point


def points_text(points: tuple[Point, ...]) -> str:
    """'x1,y1 x2,y2 …': the points syntax PAGE requires and ALTO 4.2+ accepts."""
    return " ".join(f"{x},{y}" for x, y in points)
