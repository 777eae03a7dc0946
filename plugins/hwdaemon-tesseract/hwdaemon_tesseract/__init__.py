"""The `tesseract` recognizer: Tesseract reads each line box the detector found.

Needs the `tesseract` program and its language data (Debian: tesseract-ocr,
tesseract-ocr-eng, tesseract-ocr-fra, …). EasyOCR language codes in the profile
are mapped to Tesseract's (en → eng, fr → fra, …).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from hwdaemon.plugin_api import Box, Line, ModelMissingError, PieceOptions, Recognizer, hookimpl, line_crop

LANGUAGE_CODES = {
    "en": "eng",
    "fr": "fra",
    "de": "deu",
    "es": "spa",
    "it": "ita",
    "nl": "nld",
    "pt": "por",
    "ru": "rus",
    "pl": "pol",
    "sv": "swe",
    "da": "dan",
}


class TesseractOptions(PieceOptions):
    page_segmentation_mode: int = Field(default=7, ge=0, le=13, description="7: one text line per box")
    oem: int = Field(default=1, ge=0, le=3, description="1: LSTM engine")
    padding: int = Field(default=8, ge=0, description="white margin added around each crop")


class TesseractRecognizer(Recognizer[TesseractOptions]):
    name = "tesseract"
    Options = TesseractOptions

    @property
    def languages(self) -> str:
        return "+".join(LANGUAGE_CODES.get(code, code) for code in self.context.languages)

    def check_ready(self) -> None:
        if shutil.which("tesseract") is None:
            raise ModelMissingError("the tesseract program is not installed (Debian: apt install tesseract-ocr)")
        missing = [code for code in self.languages.split("+") if code not in installed_languages()]
        if missing:
            raise ModelMissingError(f"Tesseract has no language data for {missing}; install tesseract-ocr-{missing[0]}")

    def recognize(self, image: np.ndarray, boxes: Sequence[Box]) -> list[Line]:
        import pytesseract

        options = self.options
        gray = image if image.ndim == 2 else image.mean(axis=2).astype(np.uint8)
        config = f"--psm {options.page_segmentation_mode} --oem {options.oem}"
        lines = []
        for box in boxes:
            crop = line_crop(gray, box)
            crop = np.pad(crop, options.padding, constant_values=255)
            data = pytesseract.image_to_data(
                crop, lang=self.languages, config=config, output_type=pytesseract.Output.DICT
            )
            words = [
                (text, float(conf))
                for text, conf in zip(data["text"], data["conf"], strict=False)
                if text.strip() and float(conf) >= 0
            ]
            text = " ".join(word for word, _ in words)
            confidence = sum(conf for _, conf in words) / len(words) / 100 if words else 0.0
            lines.append(Line(text=text, confidence=confidence, polygon=box.polygon))
        return lines


@functools.cache
def installed_languages() -> frozenset[str]:
    output = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=True).stdout
    return frozenset(line.strip() for line in output.splitlines()[1:] if line.strip())


@hookimpl
def hwdaemon_register_recognizers() -> list[type[Recognizer[Any]]]:
    return [TesseractRecognizer]
