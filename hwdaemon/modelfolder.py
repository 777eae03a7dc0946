"""The model-folder format: which files a trained network's folder holds, and the checks that it can be read.

Training writes these folders (training/crnn.py, training/linenet_network.py) and the
built-in pieces read them (builtins/recognizers/handwriting_model.py,
builtins/detectors/linenet.py); both sides take the file names from here, so neither
imports the other for them. A folder holds float16 torch weights (for fine-tuning), their
ONNX copy (what reading uses, without torch) and a JSON card (charset, input size, lineage).
This module imports neither torch nor ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwdaemon.errors import ModelMissingError

HANDWRITING_HEIGHT = 64  # the recognizer's line crops, in pixels; its card records it as "height"
LINENET_SIDE = 1024  # the segmenter's page, longer side in pixels; its card records it as "side"
# The handwriting network, torch or ONNX: (batch, 1, 64, width) greyscale in [-1, 1] → (batch, width/4 - 1, classes) softmax probabilities.
Forward = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class FolderFormat:
    """The files of one kind of model folder, and what a user is told when one is missing."""

    weights_file: str
    onnx_file: str
    card_file: str
    readable_files: tuple[str, ...]  # what reading needs, in the order they are checked
    missing: str  # the message's start, before the path
    fix: str  # the message's end, after the path

    def require_files(self, folder: Path, names: tuple[str, ...]) -> None:
        """Raises, naming the first of `names` that `folder` lacks: for reading (ONNX) and for fine-tuning (weights) alike."""
        for name in names:
            if not (folder / name).is_file():
                raise ModelMissingError(f"{self.missing} {folder / name}; {self.fix}")

    def check_readable(self, folder: Path, write_copy: Callable[[Path], None]) -> None:
        """Raises unless `folder` holds a readable model; a folder saved before models carried their ONNX copy gets one."""
        self.ensure_copy(folder, write_copy)
        self.require_files(folder, self.readable_files)

    def ensure_copy(self, folder: Path, write_copy: Callable[[Path], None]) -> None:
        """Give a model folder saved before models carried their ONNX copy one, once (`write_copy` exports it with torch).

        A user's fine-tuned recognizer or segmenter is then read, not skipped for the shipped one.
        """
        if (folder / self.onnx_file).is_file() or not (folder / self.weights_file).is_file():
            return
        try:
            write_copy(folder)
        except OSError as error:
            raise ModelMissingError(
                f"{folder} holds no {self.onnx_file} and it cannot be written there ({error}); copy the folder where it can and point model_dir at the copy"
            ) from error


HANDWRITING = FolderFormat(
    weights_file="weights.pth",
    onnx_file="model.onnx",
    card_file="model.json",
    readable_files=("model.json", "model.onnx"),
    missing="missing model file",
    fix="train one with `hwdaemon train` or set the recognizer's model_dir",
)
LINENET = FolderFormat(
    weights_file="linenet.pth",
    onnx_file="linenet.onnx",
    card_file="model.json",
    readable_files=("linenet.onnx", "model.json"),
    missing="missing segmenter file",
    fix="train one with `hwdaemon train-segmenter` or set the detector's model_dir",
)
