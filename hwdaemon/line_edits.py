"""A reviewer's fixes to a page's segmentation: delete, mark not text, restore, add, merge, split and move a line.

The rule: every edit is a pure function of one `PageResult`, checked against
that page before anything changes; a refusal is a `ValueError` whose message
says what is wrong and what would be accepted (the review actions turn it into
their own error, as they do the word list's). Coordinates are the Result's
own: the original image, upright, in pixels. Line numbers are indexes into
`page.lines` as it is when the edit applies, so a list of edits applies in
order, each to the page the one before it left.

A line made by a person (added, or typed after a split) gets the text it was
given; pieces whose text nobody checked keep the recognizer's confidence, and
an empty piece gets 0, so it comes first among the lines to check.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from typing import Literal

from hwdaemon.model import Box, Line, PageResult, Point

HUMAN_CONFIDENCE = 1.0  # a person read the line
MIN_SIDE_PX = 4  # a line box narrower or lower than this holds no letter
MAX_LINES_PER_PAGE = 2000  # far above any page; a bound on what one form may build
MAX_TEXT_CHARS = 2000
UNCHECKED_EMPTY_CONFIDENCE = 0.0

Axis = Literal["x", "y"]  # split across the line at an x (left | right) or along it at a y (above | below)


@dataclass(frozen=True, slots=True)
class DeleteLine:
    """Drop a line that is not wanted at all: a printed header, a scanner's edge, a duplicate."""

    line: int


@dataclass(frozen=True, slots=True)
class MarkNotText:
    """Keep a line's region but as no text (a stamp, a drawing): out of the text, exports and training."""

    line: int


@dataclass(frozen=True, slots=True)
class RestoreText:
    """Undo MarkNotText: region `region` of `page.not_text` becomes a line again, placed in reading order."""

    region: int


@dataclass(frozen=True, slots=True)
class AddLine:
    """A line the segmenter missed: its box and the text a person typed (may be empty, to type later)."""

    box: Box
    text: str = ""


@dataclass(frozen=True, slots=True)
class MergeLines:
    """Two lines that are one: `line` and `other` become one line at the first one's place."""

    line: int
    other: int


@dataclass(frozen=True, slots=True)
class SplitLine:
    """One line that is two: cut at `at`, across the line (axis x: left | right) or along it (axis y: above | below)."""

    line: int
    at: Point
    axis: Axis = "x"


@dataclass(frozen=True, slots=True)
class MoveLine:
    """Put a line elsewhere in the reading order: it becomes line `to`."""

    line: int
    to: int


LineEdit = DeleteLine | MarkNotText | RestoreText | AddLine | MergeLines | SplitLine | MoveLine


def apply_line_edit(page: PageResult, edit: LineEdit) -> PageResult:
    """`page` with `edit` done; ValueError (nothing changed) when the edit does not fit the page."""
    lines = list(page.lines)
    match edit:
        case DeleteLine(line):
            del lines[_index(page, line)]
        case MarkNotText(line):
            region = lines.pop(_index(page, line))
            return replace(page, lines=tuple(lines), not_text=(*page.not_text, region))
        case RestoreText(region):
            if not 0 <= region < len(page.not_text):
                raise ValueError(f"there is no not-text region {region + 1} on page {page.number}")
            restored = page.not_text[region]
            _insert_in_reading_order(lines, restored)
            not_text = page.not_text[:region] + page.not_text[region + 1 :]
            return replace(page, lines=_bounded(lines), not_text=not_text)
        case AddLine(box, text):
            _check_box(page, box)
            _insert_in_reading_order(lines, _new_line(box, _checked_text(text)))
        case MergeLines(line, other):
            first, second = sorted((_index(page, line), _index(page, other)))
            if first == second:
                raise ValueError("a line cannot be merged with itself; pick two lines")
            lines[first] = merged(lines[first], lines[second])
            del lines[second]
        case SplitLine(line, at, axis):
            index = _index(page, line)
            lines[index : index + 1] = split(lines[index], at, axis)
        case MoveLine(line, to):
            moved = lines.pop(_index(page, line))
            lines.insert(max(0, min(to, len(lines))), moved)
    return replace(page, lines=_bounded(lines))


def merged(first: Line, second: Line) -> Line:
    """One line from two, in that order: the hull of both outlines, both texts and words, the lower confidence.

    The baseline is kept only when the two sit side by side (one baseline then
    runs through both); for lines stacked one above the other it is left for
    the exports to estimate.
    """
    polygon = convex_hull((*first.polygon, *second.polygon))
    a, b = first.box, second.box
    is_side_by_side = a.x + a.width <= b.x or b.x + b.width <= a.x
    baseline = tuple(sorted((*first.baseline, *second.baseline))) if is_side_by_side else ()
    text = " ".join(part for part in (first.text, second.text) if part)
    return Line(text, min(first.confidence, second.confidence), polygon, baseline, (*first.words, *second.words))


def split(line: Line, at: Point, axis: Axis) -> tuple[Line, Line]:
    """The two pieces of `line` cut at `at`: left and right (axis x) or above and below (axis y).

    Each word goes with the piece its box's centre lies in; a line without word
    boxes is cut in its text at the space nearest the cut (axis x) or keeps its
    text above (axis y). A piece left with no text gets confidence 0.
    """
    box = line.box
    position, low, high = (at[0], box.x, box.x + box.width) if axis == "x" else (at[1], box.y, box.y + box.height)
    if not low + MIN_SIDE_PX <= position <= high - MIN_SIDE_PX:
        raise ValueError(
            f"cut at {axis}={position} is outside the line ({low}..{high}); "
            f"cut at least {MIN_SIDE_PX} px inside its box"
        )
    before_polygon, after_polygon = (
        clip(line.polygon, axis, position, keep="below"),
        clip(line.polygon, axis, position, keep="above"),
    )
    if len(before_polygon) < 3 or len(after_polygon) < 3:
        raise ValueError(f"cut at {axis}={position} does not cross the line's outline; cut through the line")
    if line.words:
        before_words = tuple(word for word in line.words if _centre(word.box, axis) < position)
        after_words = tuple(word for word in line.words if _centre(word.box, axis) >= position)
        texts = (" ".join(word.text for word in before_words), " ".join(word.text for word in after_words))
    else:
        before_words, after_words = (), ()
        texts = _cut_text(line.text, (position - low) / (high - low)) if axis == "x" else (line.text, "")
    if axis == "x":
        baselines = (
            clip_polyline(line.baseline, position, keep="below"),
            clip_polyline(line.baseline, position, keep="above"),
        )
    else:
        mean_y = sum(y for _, y in line.baseline) / len(line.baseline) if line.baseline else position
        baselines = ((), line.baseline) if mean_y >= position else (line.baseline, ())
    pieces = []
    for text, polygon, baseline, words in zip(
        texts, (before_polygon, after_polygon), baselines, (before_words, after_words), strict=True
    ):
        confidence = line.confidence if text else UNCHECKED_EMPTY_CONFIDENCE
        pieces.append(Line(text, confidence, polygon, baseline, words))
    return pieces[0], pieces[1]


def clip(polygon: tuple[Point, ...], axis: Axis, position: int, keep: Literal["below", "above"]) -> tuple[Point, ...]:
    """The part of `polygon` on one side of the line axis = position (Sutherland–Hodgman against one edge)."""
    coordinate = 0 if axis == "x" else 1

    def is_inside(point: Point) -> bool:
        return point[coordinate] <= position if keep == "below" else point[coordinate] >= position

    result: list[Point] = []
    for current, following in zip(polygon, (*polygon[1:], polygon[0]), strict=True):
        if is_inside(current):
            result.append(current)
        if is_inside(current) != is_inside(following):
            result.append(_crossing(current, following, coordinate, position))
    return tuple(_without_repeats(result))


def clip_polyline(points: tuple[Point, ...], x: int, keep: Literal["below", "above"]) -> tuple[Point, ...]:
    """The part of a left-to-right polyline (a baseline) left of `x` (below) or right of it (above)."""
    result: list[Point] = []
    for index, point in enumerate(points):
        is_kept = point[0] <= x if keep == "below" else point[0] >= x
        if index and (points[index - 1][0] <= x) != (point[0] <= x):
            result.append(_crossing(points[index - 1], point, 0, x))
        if is_kept:
            result.append(point)
    return tuple(_without_repeats(result)) if len(result) >= 2 else ()


def convex_hull(points: tuple[Point, ...]) -> tuple[Point, ...]:
    """The convex hull of `points`, clockwise on screen from the top-left (Andrew's monotone chain)."""
    unique = sorted(set(points))
    if len(unique) < 3:
        return tuple(unique)

    def cross(o: Point, a: Point, b: Point) -> int:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[Point] = []
    upper: list[Point] = []
    for point in unique:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], point) <= 0:
            lower.pop()
        lower.append(point)
    for point in reversed(unique):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], point) <= 0:
            upper.pop()
        upper.append(point)
    return tuple(reversed(lower[:-1] + upper[:-1]))


def _index(page: PageResult, line: int) -> int:
    if not 0 <= line < len(page.lines):
        raise ValueError(f"page {page.number} has lines 1..{len(page.lines)}; there is no line {line + 1}")
    return line


def _check_box(page: PageResult, box: Box) -> None:
    """A new line's box must lie on the page and be big enough to hold a letter."""
    if box.width < MIN_SIDE_PX or box.height < MIN_SIDE_PX:
        raise ValueError(
            f"a line box must be at least {MIN_SIDE_PX}×{MIN_SIDE_PX} px; this one is {box.width}×{box.height}"
        )
    if box.x < 0 or box.y < 0 or box.x + box.width > page.width or box.y + box.height > page.height:
        raise ValueError(
            f"the box {box.x},{box.y} {box.width}×{box.height} leaves the page (0,0 {page.width}×{page.height}); "
            "draw it on the page"
        )


def _new_line(box: Box, text: str) -> Line:
    """A line a person drew: confidence 1 when they typed its text, else 0 so it is checked first."""
    return Line(text, HUMAN_CONFIDENCE if text else UNCHECKED_EMPTY_CONFIDENCE, box.polygon)


def one_line(text: str) -> str:
    """Text a person typed, made one line: breaks and tabs become spaces, other control characters go.

    No XML export can carry a control character (lxml refuses it), so one
    pasted into a line would make every ALTO, PAGE and hOCR delivery fail.
    """
    kept = (" " if char in "\r\n\t" else char for char in text)
    return "".join(char for char in kept if unicodedata.category(char) != "Cc").strip()


def _checked_text(text: str) -> str:
    cleaned = one_line(text)
    if len(cleaned) > MAX_TEXT_CHARS:
        raise ValueError(f"a line's text is at most {MAX_TEXT_CHARS} characters; this one has {len(cleaned)}")
    return cleaned


def _insert_in_reading_order(lines: list[Line], new: Line) -> None:
    """Before the first line further on: on the same row (its box spans the new middle) to the right, else lower down."""
    middle = new.box.y + new.box.height / 2
    for index, line in enumerate(lines):
        other = line.box
        is_same_row = other.y <= middle <= other.y + other.height
        if (other.x > new.box.x) if is_same_row else (other.y + other.height / 2 > middle):
            lines.insert(index, new)
            return
    lines.append(new)


def _bounded(lines: list[Line]) -> tuple[Line, ...]:
    if len(lines) > MAX_LINES_PER_PAGE:
        raise ValueError(f"a page holds at most {MAX_LINES_PER_PAGE} lines")
    return tuple(lines)


def _crossing(a: Point, b: Point, coordinate: int, position: int) -> Point:
    """Where the segment a→b crosses coordinate = position, rounded to pixels."""
    t = (position - a[coordinate]) / (b[coordinate] - a[coordinate])
    other = 1 - coordinate
    crossed = round(a[other] + t * (b[other] - a[other]))
    return (position, crossed) if coordinate == 0 else (crossed, position)


def _without_repeats(points: list[Point]) -> list[Point]:
    kept = [point for index, point in enumerate(points) if point != points[index - 1]] if len(points) > 1 else points
    return kept


def _centre(box: Box, axis: Axis) -> float:
    return box.x + box.width / 2 if axis == "x" else box.y + box.height / 2


def _cut_text(text: str, fraction: float) -> tuple[str, str]:
    """`text` cut at the space nearest `fraction` of its length (all of it on one side when it has no space)."""
    spaces = [index for index, char in enumerate(text) if char == " "]
    if not spaces:
        return (text, "") if fraction >= 0.5 else ("", text)
    cut = min(spaces, key=lambda index: abs(index - fraction * len(text)))
    return text[:cut].strip(), text[cut + 1 :].strip()
