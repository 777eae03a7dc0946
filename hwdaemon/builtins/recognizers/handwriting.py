"""The `handwriting` recognizer: our CRNN trained by `hwdaemon train` (training/crnn.py), read through ONNX Runtime (handwriting_model.py)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from hwdaemon.builtins.recognizers import charlm
from hwdaemon.builtins.recognizers.alignment import word_boxes
from hwdaemon.builtins.recognizers.beamsearch import DEFAULT_SETTINGS, BeamDecoder, BeamSettings
from hwdaemon.builtins.recognizers.handwriting_model import (
    HandwritingModel,
    check_model_files,
    load_model,
    resized_width,
)
from hwdaemon.builtins.steps import as_gray
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Box, Image, Line
from hwdaemon.modelfolder import HANDWRITING
from hwdaemon.pipeline.crops import line_crop
from hwdaemon.pipeline.stages import PieceOptions, Recognizer

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "handwriting"


class HandwritingOptions(PieceOptions):
    model_dir: Path | None = Field(
        default=None,
        description="model.onnx + model.json (and weights.pth to fine-tune) as `hwdaemon train` writes them; default: the profile's model from"
        " `train --from-corrections` when one is installed, else the shipped model",
    )
    batch_size: int = Field(default=16, ge=1, le=256)
    decoder: Literal["beam", "greedy"] = Field(
        default="beam",
        description="beam: weigh the network's readings against the profile's languages' spelling; greedy: its best guess per step",
    )
    beam_width: int = Field(
        default=DEFAULT_SETTINGS.beam_width,
        ge=1,
        le=64,
        description="readings kept at each step; past 32 slower and no better",
    )
    lm_weight: float = Field(
        default=DEFAULT_SETTINGS.lm_weight,
        ge=0,
        le=5,
        description="how much the language model counts against the network",
    )
    length_bonus: float = Field(
        default=DEFAULT_SETTINGS.length_bonus,
        ge=-5,
        le=5,
        description="log-score per character, against the model's bias for short readings",
    )


class HandwritingRecognizer(Recognizer[HandwritingOptions]):
    name = "handwriting"
    Options = HandwritingOptions

    def check_ready(self) -> None:
        """The files are there; loading waits for load() (a `hwdaemon worker` must not start its threads before it forks)."""
        check_model_files(self.model_dir())
        if self.options.decoder == "beam":
            charlm.check_languages(self.context.languages)

    def load(self) -> None:
        self._model()
        self._decoder()

    def model_dir(self) -> Path:
        """The folder read from; checked per call, so a model installed by `train --from-corrections` is used from the next job."""
        configured = self.options.model_dir
        if configured is not None:
            return configured.resolve()
        trained = self.context.trained_model_dir
        if trained is not None and any(
            (trained / name).is_file() for name in (HANDWRITING.onnx_file, HANDWRITING.weights_file)
        ):
            check_model_files(trained)  # a model installed before models carried their ONNX copy gets one
            return trained.resolve()
        return SHIPPED_MODEL

    def _model(self) -> HandwritingModel:
        folder = self.model_dir()
        network = folder / HANDWRITING.onnx_file
        return _cached_model(folder, network.stat().st_mtime_ns if network.is_file() else 0)

    def _decoder(self) -> BeamDecoder | None:
        options = self.options
        if options.decoder == "greedy":
            return None
        settings = BeamSettings(
            beam_width=options.beam_width, lm_weight=options.lm_weight, length_bonus=options.length_bonus
        )
        words = self.context.user_words.words() | self._model().learnt_words()
        return BeamDecoder(charlm.for_languages(tuple(self.context.languages), words), settings)

    def recognize(self, image: Image, boxes: Sequence[Box]) -> list[Line]:
        """Lines of similar width share a batch (less padding to compute); results come back in the boxes' order."""
        options = self.options
        gray = as_gray(image)
        crops = [line_crop(gray, box) for box in boxes]
        model, decoder = self._model(), self._decoder()
        order = sorted(range(len(crops)), key=lambda index: crops[index].shape[1] / max(1, crops[index].shape[0]))
        read: dict[int, Line] = {}
        for start in range(0, len(order), options.batch_size):
            chunk = order[start : start + options.batch_size]
            for index, probabilities in zip(chunk, model.probabilities([crops[index] for index in chunk]), strict=True):
                read[index] = self._line(model, decoder, probabilities, boxes[index], crops[index])
        return [read[index] for index in range(len(boxes))]

    def confidences(self, image: Image, boxes: Sequence[Box]) -> list[float]:
        """The greedy path's confidence per box (what `recognize` reports), skipping the beam and the word alignment."""
        gray = as_gray(image)
        model = self._model()
        crops = [line_crop(gray, box) for box in boxes]
        return [confidence for _, confidence in model.read(crops)]

    @staticmethod
    def _line(
        model: HandwritingModel, decoder: BeamDecoder | None, probabilities: np.ndarray, box: Box, crop: np.ndarray
    ) -> Line:
        """Text, confidence (always the greedy path's: see HandwritingModel.read) and word boxes of one line."""
        text, confidence = model.reading(probabilities, decoder)
        words = word_boxes(text, probabilities, model.charset, box, crop, resized_width(crop))
        return Line(text, confidence, box.polygon, words=words)


@functools.lru_cache(maxsize=4)
def _cached_model(folder: Path, onnx_mtime_ns: int) -> HandwritingModel:
    """One loaded model per folder and version of its network (a reinstalled model is loaded afresh)."""
    return load_model(folder)


@hookimpl
def hwdaemon_register_recognizers() -> list[type[Recognizer[Any]]]:
    return [HandwritingRecognizer]
