"""Which way up a page arrived (0, 90, 180 or 270 degrees clockwise), and turning it upright.

The rule: never turn an upright page. Two measurements decide:
- line direction, from the ink alone: text lines make the projection of the ink across
  them sharp (dense lines, empty gaps) and the one along them flat. Borders, rules and
  stamps are dropped first (components a quarter of the page long), and each axis gets
  a few degrees of skew, since orientation runs before deskew.
- which end is up, from the profile's own recognizer: a few stretches of text lines read
  as they are and turned half round; the right way up reads with clearly more confidence.
A page is turned only when its reading at that orientation beats its reading as it came
by `MIN_CONFIDENCE_GAIN`; pages that are clearly horizontal are only checked for 180°.
Runs on the pipeline's worker thread, before the profile's steps (Pipeline.run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from hwdaemon.model import Box, Image
from hwdaemon.pipeline.geometry import Affine, quarter_turn
from hwdaemon.pipeline.stages import Recognizer

ORIENTATIONS = (0, 90, 180, 270)
MASK_LONG_SIDE = 600  # pixels: the ink mask is measured at this size (lines stay several pixels apart)
SKEWS_DEGREES = (-5.0, 0.0, 5.0)  # orientation runs before deskew: a skewed page's lines still project sharply
CLEARLY_HORIZONTAL = 0.5  # log ratio of the two axes' sharpness; upright dev pages measure 0.64–1.31
CLEARLY_VERTICAL = -0.8  # sideways is only taken unread from much stronger evidence than upright is
MIN_CONFIDENCE_GAIN = 0.05  # mean recognizer confidence a turn must gain over the page as it came
STRETCHES = 3  # line stretches read per candidate orientation
STRETCH_HEIGHTS = 4  # a stretch is this many times as long as it is high: a few words


@dataclass(frozen=True, slots=True)
class Reading:
    """How a page was judged: the line-direction score and the mean confidence at each orientation tried."""

    orientation: int
    direction_score: float
    confidences: dict[int, float]


def detect_orientation(image: Image, recognizer: Recognizer[Any]) -> int:
    """How `image` arrived: degrees clockwise from upright (0 unless a turn reads clearly better)."""
    return judge_orientation(image, recognizer).orientation


def judge_orientation(image: Image, recognizer: Recognizer[Any]) -> Reading:
    """`detect_orientation` with its measurements, for the benchmark and the tests."""
    gray: Image = image if image.ndim == 2 else np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    mask, scale = text_mask(gray)
    score = direction_score(mask)
    candidates = (0, 180) if score >= CLEARLY_HORIZONTAL else (90, 270) if score <= CLEARLY_VERTICAL else ORIENTATIONS
    crops: list[Image] = []
    owners: list[int] = []
    for arrived in candidates:
        turned_gray, turned_mask = _upright_view(gray, arrived), _upright_view(mask, arrived)  # as if it had arrived so
        for stretch in line_stretches(turned_mask, scale):
            crops.append(np.ascontiguousarray(stretch.cut(turned_gray)))
            owners.append(arrived)
    if not crops:
        return Reading(0, score, {})
    read = read_confidences(recognizer, crops)
    confidences = {
        arrived: float(np.mean([c for c, o in zip(read, owners, strict=True) if o == arrived]))
        for arrived in candidates
        if arrived in owners
    }
    best = max(confidences, key=lambda arrived: confidences[arrived])
    if 0 not in confidences:  # clearly sideways: the better reading of the two ends
        return Reading(best, score, confidences)
    orientation = best if best != 0 and confidences[best] >= confidences[0] + MIN_CONFIDENCE_GAIN else 0
    return Reading(orientation, score, confidences)


def rotate_upright(image: Image, orientation: int) -> tuple[Image, Affine]:
    """Undo an arrival `orientation` (degrees clockwise): the upright page and the matrix taking a point of `image` to it."""
    height, width = image.shape[:2]
    matrix = quarter_turn(width, height, (360 - orientation) % 360)
    return (
        (image, matrix) if orientation % 360 == 0 else (np.ascontiguousarray(_upright_view(image, orientation)), matrix)
    )


def text_mask(gray: Image) -> tuple[Image, float]:
    """Ink as 1 on 0 at about MASK_LONG_SIDE pixels, without long straight lines and page-sized components; and its scale."""
    scale = min(1.0, MASK_LONG_SIDE / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    _, threshold = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    ink = np.asarray(threshold, dtype=np.uint8)
    for kernel in (
        (max(3, ink.shape[1] // 8), 1),
        (1, max(3, ink.shape[0] // 8)),
    ):  # ruled lines, which touch the letters
        ruling = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        ink &= 1 - np.asarray(ruling, dtype=np.uint8)
    _count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    height, width = ink.shape
    keep = (
        (stats[:, cv2.CC_STAT_AREA] >= 4)
        & (stats[:, cv2.CC_STAT_WIDTH] < width / 4)
        & (stats[:, cv2.CC_STAT_HEIGHT] < height / 4)
    )
    keep[0] = False  # the background
    return keep[labels].astype(np.uint8), scale


def direction_score(mask: Image) -> float:
    """Positive when text lines run horizontally: log of (row projection's sharpness / column projection's), each at its best skew."""
    if not mask.any():
        return 0.0
    skewed = [_skewed(mask, angle) for angle in SKEWS_DEGREES]
    along = max(_sharpness(view.sum(axis=1)) for view in skewed)
    across = max(_sharpness(view.sum(axis=0)) for view in skewed)
    return float(np.log(max(along, 1e-6) / max(across, 1e-6)))


@dataclass(frozen=True, slots=True)
class Stretch:
    """A piece of one text line, in full-resolution pixels of the page it was found on."""

    top: int
    bottom: int
    left: int
    right: int

    def cut(self, gray: Image) -> Image:
        return gray[self.top : self.bottom, self.left : self.right]


def line_stretches(mask: Image, scale: float, count: int = STRETCHES) -> list[Stretch]:
    """The inkiest horizontal bands of `mask` (text lines), a few words from the middle of each, in page pixels."""
    rows = np.convolve(mask.sum(axis=1, dtype=np.float64), np.ones(3) / 3, mode="same")
    if not rows.any():
        return []
    inked = rows > 0.3 * np.percentile(rows[rows > 0], 90)
    bands: list[tuple[float, int, int]] = []
    start = None
    for index, is_inked in enumerate([*inked.tolist(), False]):
        if is_inked and start is None:
            start = index
        elif not is_inked and start is not None:
            if index - start >= 3:
                bands.append((float(rows[start:index].sum()), start, index))
            start = None
    stretches = []
    for _, top, bottom in sorted(bands, reverse=True)[:count]:
        columns = np.flatnonzero(mask[top:bottom].any(axis=0))
        margin = (bottom - top) * 3 // 4  # the band is the letters' core: ascenders and descenders lie beyond it
        length = min(columns[-1] + 1 - columns[0], STRETCH_HEIGHTS * (bottom - top + 2 * margin))
        middle = (columns[0] + columns[-1] + 1) // 2
        left = max(0, middle - length // 2)
        stretches.append(
            Stretch(
                top=max(0, int((top - margin) / scale)),
                bottom=int((bottom + margin) / scale),
                left=int(left / scale),
                right=int((left + length) / scale),
            )
        )
    return stretches


def read_confidences(recognizer: Recognizer[Any], crops: Sequence[Image]) -> list[float]:
    """The recognizer's confidence for each crop, read in one call: the crops stacked on a paper-white strip."""
    width = max(crop.shape[1] for crop in crops)
    strip = np.full((sum(crop.shape[0] for crop in crops), width), 255, dtype=np.uint8)
    boxes = []
    top = 0
    for crop in crops:
        height, crop_width = crop.shape
        strip[top : top + height, :crop_width] = crop
        boxes.append(Box(0, top, crop_width, height))
        top += height
    return recognizer.confidences(strip, boxes)


def _upright_view(image: Image, orientation: int) -> Image:
    """A page that arrived turned `orientation` degrees clockwise, turned back (a view: np.rot90 copies nothing)."""
    return np.rot90(image, orientation // 90)


def _skewed(mask: Image, angle_degrees: float) -> Image:
    if angle_degrees == 0:
        return mask
    height, width = mask.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle_degrees, 1.0)
    return np.asarray(cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_NEAREST), dtype=np.uint8)


def _sharpness(profile: np.ndarray) -> float:
    """Coefficient of variation of a projection, inside its inked extent."""
    inked = np.flatnonzero(profile)
    if inked.size == 0:
        return 0.0
    span = profile[inked[0] : inked[-1] + 1].astype(np.float64)
    return float(span.std() / max(span.mean(), 1e-9))
