"""The `craft` detector: EasyOCR's neural text detector, thorough but about 15 s and 3.7 GB a page on CPU."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hwdaemon.builtins.easyocr_reader import load_reader
from hwdaemon.builtins.steps import as_gray
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Box, Image
from hwdaemon.pipeline.stages import Detector, PieceOptions


class CraftOptions(PieceOptions):
    canvas_size: int = Field(default=2560, ge=256, le=8192)
    mag_ratio: float = Field(default=1.0, gt=0, le=4)
    text_threshold: float = Field(default=0.7, gt=0, lt=1)
    low_text: float = Field(default=0.4, gt=0, lt=1)
    link_threshold: float = Field(default=0.4, gt=0, lt=1)
    width_ths: float = Field(default=0.5, ge=0, description="merge boxes closer than this × height into one")


class CraftDetector(Detector[CraftOptions]):
    """EasyOCR's CRAFT network; `canvas_size` trades time and memory for small-text recall."""

    name = "craft"
    Options = CraftOptions

    def load(self) -> None:
        load_reader(self.context.languages, self.context.model_dirs, self.context.download_enabled, part="detector")

    def detect(self, image: Image) -> list[Box]:
        options = self.options
        reader = load_reader(
            self.context.languages, self.context.model_dirs, self.context.download_enabled, part="detector"
        )
        horizontal, free = reader.detect(
            as_gray(image) if image.ndim == 3 else image,
            canvas_size=options.canvas_size,
            mag_ratio=options.mag_ratio,
            text_threshold=options.text_threshold,
            low_text=options.low_text,
            link_threshold=options.link_threshold,
            width_ths=options.width_ths,
        )
        boxes = [Box(int(x0), int(y0), int(x1 - x0), int(y1 - y0)) for x0, x1, y0, y1 in horizontal[0]]
        for polygon in free[0]:
            xs, ys = [int(p[0]) for p in polygon], [int(p[1]) for p in polygon]
            boxes.append(Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)))
        height, width = image.shape[:2]
        clipped = [_clip(box, width, height) for box in boxes]
        return sorted((box for box in clipped if box.width > 0 and box.height > 0), key=lambda box: (box.y, box.x))


def _clip(box: Box, width: int, height: int) -> Box:
    left, top = max(0, box.x), max(0, box.y)
    right, bottom = min(width, box.x + box.width), min(height, box.y + box.height)
    return Box(left, top, right - left, bottom - top)


@hookimpl
def hwdaemon_register_detectors() -> list[type[Detector[Any]]]:
    return [CraftDetector]
