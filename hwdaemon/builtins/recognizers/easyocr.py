"""The EasyOCR recognizer: reads each detected line box with EasyOCR's recognition network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from hwdaemon.builtins.easyocr_reader import load_reader, quiet_torch, resolve_model_dir
from hwdaemon.builtins.steps import as_gray
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Box, Image, Line
from hwdaemon.pipeline.stages import PieceOptions, Recognizer


class EasyOcrOptions(PieceOptions):
    decoder: Literal["greedy", "beamsearch", "wordbeamsearch"] = "greedy"
    beam_width: int = Field(default=5, ge=1, le=50)
    batch_size: int = Field(default=1, ge=1, le=256)
    allowlist: str | None = None
    blocklist: str | None = None
    contrast_ths: float = Field(
        default=0.1, ge=0, le=1, description="re-read lines below this confidence with more contrast"
    )
    adjust_contrast: float = Field(default=0.5, ge=0, le=1)


class EasyOcrRecognizer(Recognizer[EasyOcrOptions]):
    """EasyOCR's CRNN on line crops. The Reader is shared by every pipeline with the same languages."""

    name = "easyocr"
    Options = EasyOcrOptions

    def check_ready(self) -> None:
        resolve_model_dir(self.context.languages, self.context.model_dirs, self.context.download_enabled, "recognizer")

    def load(self) -> None:
        load_reader(self.context.languages, self.context.model_dirs, self.context.download_enabled, "recognizer")

    def recognize(self, image: Image, boxes: Sequence[Box]) -> list[Line]:
        options = self.options
        if not boxes:
            return []
        reader = load_reader(
            self.context.languages, self.context.model_dirs, self.context.download_enabled, "recognizer"
        )
        with quiet_torch():
            read = reader.recognize(
                as_gray(image),
                horizontal_list=[[box.x, box.x + box.width, box.y, box.y + box.height] for box in boxes],
                free_list=[],
                decoder=options.decoder,
                beamWidth=options.beam_width,
                batch_size=options.batch_size,
                allowlist=options.allowlist,
                blocklist=options.blocklist,
                contrast_ths=options.contrast_ths,
                adjust_contrast=options.adjust_contrast,
                detail=1,
                paragraph=False,
            )
        # EasyOCR may reorder by position; match its answers back to our boxes by corner.
        by_corner = {
            (int(polygon[0][0]), int(polygon[0][1])): (text, float(confidence)) for polygon, text, confidence in read
        }
        lines = []
        for box in boxes:
            text, confidence = by_corner.get((box.x, box.y), ("", 0.0))
            lines.append(Line(text=text, confidence=confidence, polygon=box.polygon))
        return lines


@hookimpl
def hwdaemon_register_recognizers() -> list[type[Recognizer[Any]]]:
    return [EasyOcrRecognizer]
