"""The rule-based line detectors, `lines` and `mser`: where the text lines of a page are, in reading order.

Both are pure OpenCV and take well under a second a page (`craft`, EasyOCR's neural
detector, is craft.py; the learnt segmenter `linenet` is linenet.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import Field

from hwdaemon.builtins.detectors.ink import ink_components, is_scan_artefact, width_weighted_median
from hwdaemon.builtins.detectors.reading_order import reading_regions
from hwdaemon.builtins.steps import as_gray, ink_mask, normalise_background
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Box, Image
from hwdaemon.pipeline.stages import Detector, PieceOptions


class LinesOptions(PieceOptions):
    smear_factor: float = Field(default=1.2, gt=0, le=10, description="horizontal smear, in character heights")
    min_line_height_factor: float = Field(
        default=0.5, gt=0, le=1, description="lines lower than this × median are dropped"
    )
    ruling_length_factor: float = Field(
        default=0.25, gt=0, le=1, description="horizontal strokes longer than this × page width are ruling"
    )
    padding_factor: float = Field(
        default=0.25, ge=0, le=2, description="margin added around a line, in character heights"
    )
    min_overlap: float = Field(
        default=0.4, gt=0, le=1, description="vertical overlap that puts two ink blobs on one line"
    )


@dataclass(slots=True)
class _Band:
    """A line being assembled from ink blobs: its vertical extent and its boxes."""

    top: int
    bottom: int
    left: int
    right: int
    core_top: float
    core_bottom: float

    def add(self, x: int, y: int, w: int, h: int) -> None:
        self.top, self.bottom = min(self.top, y), max(self.bottom, y + h)
        self.left, self.right = min(self.left, x), max(self.right, x + w)


class LinesDetector(Detector[LinesOptions]):
    """Binarise, drop ruling and specks, smear ink horizontally, group blobs into lines.

    Blobs join the line whose core band they overlap most, so words far apart on
    one line stay one line, and ascenders, descenders and accents stay with their line.
    """

    name = "lines"
    Options = LinesOptions

    def detect(self, image: Image) -> list[Box]:
        options = self.options
        gray = as_gray(image)
        height, width = gray.shape
        mask = ink_mask(
            normalise_background(
                cast(Image, cv2.GaussianBlur(gray, (3, 3), 0)), _odd(max(15, min(height, width) // 30))
            )
        )
        mask = _remove_ruling(mask, int(width * options.ruling_length_factor))
        mask = _remove_graphics(mask)
        regions = reading_regions(mask)
        if len(regions) <= 1:  # the usual page: no need for a masked copy per region
            return lines_from_ink(mask, options)
        boxes: list[Box] = []
        for left, top, right, bottom in regions:  # reading order: block after block
            block = np.zeros_like(mask)
            block[top:bottom, left:right] = mask[top:bottom, left:right]
            boxes.extend(lines_from_ink(block, options))
        return boxes


def lines_from_ink(mask: Image, options: LinesOptions) -> list[Box]:
    """Ink mask (255 = ink) → line boxes in reading order: smear letters into blobs, group blobs into lines."""
    height, width = mask.shape
    components = ink_components(mask)
    if not components:
        return []
    char_height = float(np.median([h for _, _, _, h in components]))
    smear = max(3, int(char_height * options.smear_factor))
    bands = _group_into_bands(_smeared_blobs(mask, smear, char_height), options.min_overlap)
    if not bands:
        return []
    bands = _attach_fragments(bands, _line_height(bands) * options.min_line_height_factor)
    split = [part for band in bands for part in _split_touching(mask, band, char_height)]
    if len(split) > len(bands):  # pieces of a split may be slivers
        bands = _attach_fragments(split, _line_height(split) * options.min_line_height_factor)
    bands = _merge_same_rows(bands)
    pad = round(char_height * options.padding_factor)
    boxes = []
    for band in sorted(bands, key=lambda band: (band.core_top, band.left)):
        left, top = max(0, band.left - pad), max(0, band.top - pad)
        right, bottom = min(width, band.right + pad), min(height, band.bottom + pad)
        boxes.append(Box(left, top, right - left, bottom - top))
    return boxes


class MserOptions(LinesOptions):
    delta: int = Field(default=10, ge=1, le=50, description="MSER stability step in grey levels")
    blur: int = Field(
        default=5, ge=0, le=15, description="Gaussian blur first: crisp strokes give MSER unstable, tiny regions"
    )
    min_area: int = Field(default=20, ge=1)
    max_area_fraction: float = Field(
        default=0.02, gt=0, le=0.5, description="largest region, as a fraction of the page"
    )


class MserDetector(Detector[MserOptions]):
    """Maximally stable extremal regions as letter candidates, then grouped into lines like `lines`.

    Needs no global threshold, so it copes with uneven light and faint pencil
    where binarisation loses strokes; slower than `lines` on dense pages.
    """

    name = "mser"
    Options = MserOptions

    def detect(self, image: Image) -> list[Box]:
        options = self.options
        gray = as_gray(image)
        if options.blur:
            gray = cast(Image, cv2.GaussianBlur(gray, (options.blur | 1, options.blur | 1), 0))
        height, width = gray.shape
        mser = cv2.MSER.create(
            delta=options.delta,
            min_area=options.min_area,
            max_area=max(options.min_area + 1, int(height * width * options.max_area_fraction)),
        )
        regions, _ = mser.detectRegions(gray)
        mask = np.zeros_like(gray)
        paper, darkest = float(np.percentile(gray, 90)), float(np.percentile(gray, 1))
        darkness_limit = min(paper - 25, (paper + darkest) / 2)  # paper texture and light ruling are not ink
        for points in cast(
            Sequence[npt.NDArray[np.int32]], regions
        ):  # the stubs say lists of points; each is an (n, 2) array
            xs, ys = points[:, 0], points[:, 1]
            if float(gray[ys, xs].mean()) > darkness_limit:
                continue
            mask[ys, xs] = 255
        return lines_from_ink(_remove_ruling(mask, int(width * options.ruling_length_factor)), options)


def _odd(value: int) -> int:
    return value | 1


def _remove_ruling(mask: Image, min_length: int) -> Image:
    """Erase long horizontal strokes (ruled paper, form lines) but keep the ink crossing them."""
    if min_length < 10:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (min_length, 1))
    ruling = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    if not ruling.any():
        return mask
    ruling = cv2.dilate(ruling, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3)))
    cleaned = cv2.subtract(mask, ruling)
    # Re-join strokes the erased rule cut through: close vertically, only where the rule was.
    rejoined = cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 9)))
    near_rule = cv2.dilate(ruling, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 5))) > 0
    cleaned[near_rule] = rejoined[near_rule]
    return cast(Image, cleaned)


GRAPHIC_HEIGHT = 4.0  # in median letter heights
GRAPHIC_MAX_ASPECT = 1.5  # width / height


def _remove_graphics(mask: Image) -> Image:
    """Erase stamps, seals and drawings: single ink components many letters tall and not much wider than tall.

    Beside the text they would otherwise be grouped with every line they span,
    and their ink fills the valleys that separate those lines. Several lines
    whose descenders touch also make a tall component, but a wide one: kept.
    So does anything taller than 40% of the image: in a line crop, that is a word.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 2:
        return mask  # a line crop, or one blob: nothing to compare against
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    letter_height = float(np.median(heights[heights >= 4])) if (heights >= 4).any() else 0.0
    graphics = [
        index for index in range(1, count)
        if GRAPHIC_HEIGHT * letter_height <= stats[index, cv2.CC_STAT_HEIGHT] <= 0.4 * mask.shape[0]
        and letter_height > 0
        and stats[index, cv2.CC_STAT_WIDTH] <= GRAPHIC_MAX_ASPECT * stats[index, cv2.CC_STAT_HEIGHT]
    ]  # fmt: skip
    if not graphics:
        return mask
    cleaned = mask.copy()
    cleaned[np.isin(labels, graphics)] = 0
    return cleaned


def _smeared_blobs(mask: Image, smear: int, char_height: float) -> list[tuple[int, int, int, int]]:
    """Join letters into word- or phrase-sized blobs by closing horizontally."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (smear, 1))
    smeared = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    _count, _, stats, _ = cv2.connectedComponentsWithStats(smeared, connectivity=8)
    min_area = max(12.0, (char_height * 0.3) ** 2)
    return [
        (int(x), int(y), int(w), int(h))
        for x, y, w, h, area in stats[1:]
        if area >= min_area and not is_scan_artefact(int(w), int(h), int(area), mask.shape)
    ]


def _group_into_bands(blobs: list[tuple[int, int, int, int]], min_overlap: float) -> list[_Band]:
    """Tall blobs first set the bands; smaller ones (dots, accents, commas) join the band they overlap most."""
    bands: list[_Band] = []
    for x, y, w, h in sorted(blobs, key=lambda blob: -blob[2] * blob[3]):
        best, best_overlap = None, 0.0
        for band in bands:
            overlap = min(y + h, band.core_bottom) - max(y, band.core_top)
            fraction = overlap / max(1.0, min(h, band.core_bottom - band.core_top))
            if fraction > best_overlap:
                best, best_overlap = band, fraction
        if best is not None and best_overlap >= min_overlap:
            best.add(x, y, w, h)
        elif h >= 3:
            core = h * 0.2  # the core ignores ascenders and descenders
            bands.append(_Band(y, y + h, x, x + w, y + core, y + h - core))
    return bands


def _line_height(bands: list[_Band]) -> float:
    """Typical height of a full line: the median band height, each band counted by its width.

    Counting by width lets the long bands speak for the page: in a line crop with
    a few accents and stray marks beside its one line, the line still sets the height.
    """
    return width_weighted_median([band.bottom - band.top for band in bands], [band.right - band.left for band in bands])


def _attach_fragments(bands: list[_Band], min_height: float) -> list[_Band]:
    """Bands lower than `min_height` (detached descenders, accents, dots) join the nearest full line."""
    full = [band for band in bands if band.bottom - band.top >= min_height]
    for fragment in (band for band in bands if band.bottom - band.top < min_height):
        nearest = min(full, key=lambda band: _vertical_gap(band, fragment), default=None)
        if nearest is not None and _vertical_gap(nearest, fragment) <= min_height:
            nearest.add(fragment.left, fragment.top, fragment.right - fragment.left, fragment.bottom - fragment.top)
    return full


def _split_touching(mask: Image, band: _Band, char_height: float) -> list[_Band]:
    """Cut a band that holds several lines (descenders touching the next line) at its ink valleys.

    A valley is a run of rows with little ink between two rows of dense ink, at least a
    character height from each other and from the band's edges; a single line, whose
    ascenders and descenders thin out but never leave dense ink on both sides, is not cut.
    """
    if band.bottom - band.top < 2.2 * char_height:
        return [band]
    region = mask[band.top : band.bottom, band.left : band.right] > 0
    profile = np.convolve(region.sum(axis=1).astype(np.float64), np.ones(5) / 5, mode="same")
    peak = profile.max()
    if peak <= 0:
        return [band]
    gap = max(3, int(char_height * 0.9))
    edge = max(gap, int(char_height * 1.2))  # no part thinner than a line's body
    cuts: list[int] = []
    row = edge
    while row < len(profile) - edge:
        if profile[row] < 0.15 * peak and profile[row] == profile[max(0, row - gap) : row + gap].min():
            above, below = profile[:row].max(), profile[row + 1 :].max()
            if above > 0.5 * peak and below > 0.5 * peak and (not cuts or row - cuts[-1] >= 1.5 * char_height):
                cuts.append(row)
                row += gap
                continue
        row += 1
    if not cuts:
        return [band]
    parts = []
    for start, stop in zip([0, *cuts], [*cuts, len(profile)], strict=True):
        columns = np.where(region[start:stop].any(axis=0))[0]
        if len(columns) == 0:
            continue
        top, bottom = band.top + start, band.top + stop
        left, right = band.left + int(columns[0]), band.left + int(columns[-1]) + 1
        parts.append(_Band(top, bottom, left, right, top, bottom))
    return parts or [band]


def _merge_same_rows(bands: list[_Band]) -> list[_Band]:
    """Bands sharing most of their rows are one line (a blob of it was first grouped with the line above)."""
    merged: list[_Band] = []
    for band in sorted(bands, key=lambda band: band.top):
        previous = merged[-1] if merged else None
        if previous is not None:
            overlap = min(previous.bottom, band.bottom) - max(previous.top, band.top)
            if overlap >= 0.5 * min(previous.bottom - previous.top, band.bottom - band.top):
                previous.add(band.left, band.top, band.right - band.left, band.bottom - band.top)
                previous.core_top, previous.core_bottom = (
                    min(previous.core_top, band.core_top),
                    max(previous.core_bottom, band.core_bottom),
                )
                continue
        merged.append(band)
    return merged


def _vertical_gap(band: _Band, other: _Band) -> int:
    return max(0, max(band.top, other.top) - min(band.bottom, other.bottom))


@hookimpl
def hwdaemon_register_detectors() -> list[type[Detector[Any]]]:
    return [LinesDetector, MserDetector]
