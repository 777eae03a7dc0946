"""OpenCV preprocessing steps, registered as built-in plugins.

Each step is small and does one thing; a profile lists them in the order they
run. Steps other than `grayscale` convert an RGB page to grey themselves, so an
order mistake costs quality, never a crash.
"""

from __future__ import annotations

import math
from typing import Any, Literal, cast

import cv2
import numpy as np
from pydantic import Field, model_validator

from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Image
from hwdaemon.pipeline.geometry import Affine, from_cv2, identity, scaling, translation
from hwdaemon.pipeline.stages import NoOptions, PieceOptions, Step


def as_gray(image: Image) -> Image:
    if image.ndim == 2:
        return image
    return cast(Image, cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))


def ink_mask(gray: Image) -> Image:
    """Dark-on-light ink as 255 on 0, by Otsu's threshold."""
    _, mask = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    return cast(Image, mask)


def paper_colour(gray: Image) -> int:
    return int(np.percentile(gray, 90))


class Grayscale(Step[NoOptions]):
    """RGB → one channel; every later step works on grey."""

    name = "grayscale"

    def apply(self, image: Image) -> Image:
        return as_gray(image)


class ResizeOptions(PieceOptions):
    scale: float | None = Field(default=None, gt=0, le=8)
    max_side: int | None = Field(default=None, gt=0)
    min_side: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_rule(self) -> ResizeOptions:
        if sum(value is not None for value in (self.scale, self.max_side, self.min_side)) != 1:
            raise ValueError("give exactly one of scale, max_side, min_side")
        return self


class Resize(Step[ResizeOptions]):
    """Scale the page: by a factor, or so its long side is at most / short side at least N px."""

    name = "resize"
    Options = ResizeOptions

    def apply(self, image: Image) -> Image:
        return self.apply_mapped(image)[0]

    def apply_mapped(self, image: Image) -> tuple[Image, Affine]:
        options = self.options
        height, width = image.shape[:2]
        if options.scale is not None:
            factor = options.scale
        elif options.max_side is not None:
            factor = min(1.0, options.max_side / max(height, width))
        else:
            assert options.min_side is not None
            factor = max(1.0, options.min_side / min(height, width))
        if factor == 1.0:
            return image, identity()
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        resized = cast(Image, cv2.resize(image, size, interpolation=interpolation))
        return resized, scaling(size[0] / width, size[1] / height)


class DenoiseOptions(PieceOptions):
    method: Literal["median", "nlmeans", "gaussian"] = "median"
    strength: int = Field(default=3, ge=1, le=31, description="kernel size (median, gaussian) or h (nlmeans)")


class Denoise(Step[DenoiseOptions]):
    """Remove scanner speckle: median keeps strokes sharp, nlmeans is slower and gentler."""

    name = "denoise"
    Options = DenoiseOptions

    def apply(self, image: Image) -> Image:
        options = self.options
        gray = as_gray(image)
        odd = options.strength | 1
        if options.method == "median":
            return cast(Image, cv2.medianBlur(gray, odd))
        if options.method == "gaussian":
            return cast(Image, cv2.GaussianBlur(gray, (odd, odd), 0))
        denoised = cv2.fastNlMeansDenoising(
            gray, None, h=float(options.strength), templateWindowSize=7, searchWindowSize=21
        )
        return cast(Image, denoised)


class ClaheOptions(PieceOptions):
    clip_limit: float = Field(default=2.0, gt=0)
    tile_size: int = Field(default=8, ge=1, le=64)


class Clahe(Step[ClaheOptions]):
    """Local contrast (CLAHE): faint pencil gains contrast without blowing out dark ink."""

    name = "clahe"
    Options = ClaheOptions

    def apply(self, image: Image) -> Image:
        options = self.options
        clahe = cv2.createCLAHE(clipLimit=options.clip_limit, tileGridSize=(options.tile_size, options.tile_size))
        return cast(Image, clahe.apply(as_gray(image)))


class NormalizeBackgroundOptions(PieceOptions):
    kernel_size: int = Field(default=31, ge=3, le=255)


class NormalizeBackground(Step[NormalizeBackgroundOptions]):
    """Divide by the estimated paper (a large closing): removes shadows, yellowing and uneven light."""

    name = "normalize_background"
    Options = NormalizeBackgroundOptions

    def apply(self, image: Image) -> Image:
        options = self.options
        return normalise_background(as_gray(image), options.kernel_size | 1)


def normalise_background(gray: Image, kernel_size: int) -> Image:
    """Paper becomes 255 everywhere; ink keeps its contrast to the paper around it."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel_size, kernel_size))
    background = cv2.medianBlur(cv2.morphologyEx(gray, cv2.MORPH_CLOSE, kernel), 5)
    return cv2.divide(gray, np.maximum(background, 1), scale=255).astype(np.uint8)


class ThresholdOptions(PieceOptions):
    method: Literal["otsu", "adaptive", "sauvola"] = "otsu"
    block_size: int = Field(default=31, ge=3, le=255, description="window (px) for adaptive and sauvola")
    k: float = Field(default=0.2, ge=0, le=1, description="sauvola's k; adaptive's offset is k*50")


class Threshold(Step[ThresholdOptions]):
    """Binarise to black ink on white paper."""

    name = "threshold"
    Options = ThresholdOptions

    def apply(self, image: Image) -> Image:
        options = self.options
        gray = as_gray(image)
        block = options.block_size | 1
        if options.method == "otsu":
            return 255 - ink_mask(gray)
        if options.method == "adaptive":
            binary = cv2.adaptiveThreshold(
                gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, options.k * 50
            )
            return cast(Image, binary)
        return sauvola(gray, block, options.k)


def sauvola(gray: Image, window: int, k: float, dynamic_range: float = 128.0) -> Image:
    """Sauvola's threshold T = m·(1 + k·(s/R − 1)) over a window, from box filters."""
    values = gray.astype(np.float64)
    mean = cv2.boxFilter(values, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    mean_of_squares = cv2.boxFilter(values * values, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    deviation = np.sqrt(np.maximum(mean_of_squares - mean * mean, 0))
    threshold = mean * (1 + k * (deviation / dynamic_range - 1))
    return np.where(values > threshold, 255, 0).astype(np.uint8)


class DeskewOptions(PieceOptions):
    max_angle_degrees: float = Field(default=10.0, gt=0, le=45)
    precision_degrees: float = Field(default=0.25, gt=0, le=5)


class Deskew(Step[DeskewOptions]):
    """Rotate the page so text lines run horizontally.

    The angle is the one whose horizontal ink projection is sharpest (largest
    variance of row sums): robust for handwriting, where characters' own slant
    misleads minimum-area rectangles.
    """

    name = "deskew"
    Options = DeskewOptions

    def apply(self, image: Image) -> Image:
        return self.apply_mapped(image)[0]

    def apply_mapped(self, image: Image) -> tuple[Image, Affine]:
        options = self.options
        gray = as_gray(image)
        angle = estimate_skew_degrees(gray, options.max_angle_degrees, options.precision_degrees)
        if abs(angle) < options.precision_degrees:
            return gray, identity()
        return rotate_mapped(gray, angle)


def estimate_skew_degrees(gray: Image, max_angle: float, precision: float) -> float:
    """The rotation (degrees, counter-clockwise positive) that levels the text lines."""
    mask = ink_mask(gray)
    scale = min(1.0, 1000 / max(mask.shape))
    if scale < 1:
        mask = cast(Image, cv2.resize(mask, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))

    def sharpness(angle: float) -> float:
        rows = rotate(mask, angle, fill=0).sum(axis=1, dtype=np.float64)
        return float(np.var(rows))

    best, step = 0.0, 1.0
    candidates = np.arange(-max_angle, max_angle + step / 2, step)
    while True:
        best = max(candidates, key=sharpness)
        if step <= precision:
            return float(best)
        step = max(step / 4, precision)
        candidates = np.arange(best - 4 * step, best + 4 * step + step / 2, step)


def rotate(image: Image, angle_degrees: float, fill: int | None = None) -> Image:
    """Rotate about the centre, growing the canvas so no corner is cut off."""
    return rotate_mapped(image, angle_degrees, fill)[0]


def rotate_mapped(image: Image, angle_degrees: float, fill: int | None = None) -> tuple[Image, Affine]:
    """`rotate`, and the matrix taking a point of `image` to the rotated canvas."""
    height, width = image.shape[:2]
    radians = math.radians(angle_degrees)
    new_width = int(abs(width * math.cos(radians)) + abs(height * math.sin(radians)))
    new_height = int(abs(height * math.cos(radians)) + abs(width * math.sin(radians)))
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle_degrees, 1.0)
    matrix[0, 2] += (new_width - width) / 2
    matrix[1, 2] += (new_height - height) / 2
    border = paper_colour(image) if fill is None else fill
    rotated = cv2.warpAffine(image, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR, borderValue=border)
    return cast(Image, rotated), from_cv2(cast(Affine, matrix))


class CropBorderOptions(PieceOptions):
    margin: int = Field(default=16, ge=0)
    min_component_pixels: int = Field(default=30, ge=1, description="ignore specks smaller than this")


class CropBorder(Step[CropBorderOptions]):
    """Crop to the ink plus a margin: removes dark scanner edges and empty paper."""

    name = "crop_border"
    Options = CropBorderOptions

    def apply(self, image: Image) -> Image:
        return self.apply_mapped(image)[0]

    def apply_mapped(self, image: Image) -> tuple[Image, Affine]:
        options = self.options
        gray = as_gray(image)
        mask = ink_mask(gray)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        height, width = gray.shape
        keep = [
            stats[i]
            for i in range(1, count)
            if stats[i, cv2.CC_STAT_AREA] >= options.min_component_pixels
            and stats[i, cv2.CC_STAT_WIDTH] < width * 0.9  # a scanner edge spans the page
            and stats[i, cv2.CC_STAT_HEIGHT] < height * 0.9
        ]
        if not keep:
            return gray, identity()
        boxes = np.array(keep)
        left = max(0, int(boxes[:, 0].min()) - options.margin)
        top = max(0, int(boxes[:, 1].min()) - options.margin)
        right = min(width, int((boxes[:, 0] + boxes[:, 2]).max()) + options.margin)
        bottom = min(height, int((boxes[:, 1] + boxes[:, 3]).max()) + options.margin)
        return gray[top:bottom, left:right].copy(), translation(-left, -top)


class AutoInvert(Step[NoOptions]):
    """Light-on-dark scans (negatives, some fax output) become dark ink on light paper."""

    name = "auto_invert"

    def apply(self, image: Image) -> Image:
        gray = as_gray(image)
        return 255 - gray if np.median(gray) < 110 else gray


@hookimpl
def hwdaemon_register_steps() -> list[type[Step[Any]]]:
    return [Grayscale, AutoInvert, Resize, Denoise, Clahe, NormalizeBackground, Threshold, Deskew, CropBorder]
