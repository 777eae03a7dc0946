"""Reading lines with our handwriting network: crops in, text and confidence out, without torch.

A model folder holds `model.onnx` (read here through ONNX Runtime), `weights.pth` (the
same network for `hwdaemon train` to fine-tune; training/crnn.py) and `model.json`
(charset, height, lineage): the format is modelfolder.HANDWRITING. Training reads its validation lines through the same
`HandwritingModel`, given its torch network as the forward pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hwdaemon.modelfolder import HANDWRITING, HANDWRITING_HEIGHT, Forward
from hwdaemon.pipeline import onnx_runtime

LEARNT_WORDS = "learnt_words"  # the model card's list of the words its fine-tuning lines held
# Turns one crop's (steps, classes) softmax output into text, given the charset (beamsearch.BeamDecoder).
TextDecoder = Callable[[np.ndarray, str], str]


@dataclass(frozen=True, slots=True)
class HandwritingModel:
    forward: Forward
    charset: str
    card: dict[str, Any]

    def read(
        self, crops: list[np.ndarray], decoder: TextDecoder | None = None, max_width: int = 2400
    ) -> list[tuple[str, float]]:
        """Text and confidence for each greyscale line crop; greedy decoding unless a decoder is given.

        The confidence is always the greedy path's (mean best-class probability of the
        kept steps): it measures how sure the network is, whichever decoder spells the
        text, so review thresholds keep their meaning.
        """
        return [self.reading(probabilities, decoder) for probabilities in self.probabilities(crops, max_width)]

    def reading(self, probabilities: np.ndarray, decoder: TextDecoder | None = None) -> tuple[str, float]:
        """Text and confidence of one crop's network output (see `read`)."""
        text, confidence = greedy(probabilities, self.charset)
        return (text if decoder is None else decoder(probabilities, self.charset)), confidence

    def learnt_words(self) -> frozenset[str]:
        """The words of the lines this model was fine-tuned on (`train --from-corrections`), lower-cased.

        The beam decoder spells them as the profile's own words: a hand's names and
        spellings come back in its other pages (1.3 points of CER fewer on a writer's
        other pages after 100 lines; docs/accuracy.md, "Learning one hand").
        """
        return frozenset(word.lower() for word in self.card.get(LEARNT_WORDS, ()))

    def probabilities(self, crops: list[np.ndarray], max_width: int = 2400) -> list[np.ndarray]:
        """Per crop, its (steps, classes) softmax output, without the steps computed over another crop's padding."""
        if not crops:
            return []
        batch, widths = to_batch(crops, max_width)
        output = self.forward(batch)
        return [rows[: max(1, width // 4 - 1)] for rows, width in zip(output, widths, strict=True)]


def check_model_files(folder: Path) -> None:
    """Raises unless `folder` holds a readable model; a model saved before models carried their ONNX copy gets one."""
    HANDWRITING.check_readable(folder, _write_onnx_copy)


def load_model(folder: Path) -> HandwritingModel:
    """The model in `folder`, read through ONNX Runtime."""
    check_model_files(folder)
    card = json.loads((folder / HANDWRITING.card_file).read_text(encoding="utf-8"))
    session = onnx_runtime.open_session(folder / HANDWRITING.onnx_file)
    return HandwritingModel(forward=lambda batch: onnx_runtime.run(session, batch), charset=card["charset"], card=card)


def _write_onnx_copy(folder: Path) -> None:
    from hwdaemon.training.crnn import write_onnx_copy  # imports torch, once per such model

    write_onnx_copy(folder)


def resized_width(crop: np.ndarray, height: int = HANDWRITING_HEIGHT, max_width: int = 2400) -> int:
    """How wide the network sees a crop: scaled to `height`, at most `max_width` (the network's steps are a quarter of it)."""
    rows, columns = crop.shape[:2]
    width: int = round(columns * height / max(1, rows))
    return max(1, min(max_width, width))


def resize_to_height(crop: np.ndarray, height: int = HANDWRITING_HEIGHT, max_width: int = 2400) -> np.ndarray:
    rows = crop.shape[0]
    width = resized_width(crop, height, max_width)
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if rows > height else cv2.INTER_CUBIC)


def to_batch(crops: list[np.ndarray], max_width: int = 2400) -> tuple[np.ndarray, list[int]]:
    """Crops → (N, 1, 64, W) float32 in [-1, 1], right-padded with each crop's last column as EasyOCR does; and each crop's width."""
    resized = [resize_to_height(crop, HANDWRITING_HEIGHT, max_width) for crop in crops]
    width = max(image.shape[1] for image in resized)
    batch = np.empty((len(resized), 1, HANDWRITING_HEIGHT, width), dtype=np.float32)
    for index, image in enumerate(resized):
        batch[index, 0, :, : image.shape[1]] = image
        batch[index, 0, :, image.shape[1] :] = image[:, -1:]
    batch /= 127.5
    batch -= 1.0
    return batch, [image.shape[1] for image in resized]


def greedy(probabilities: np.ndarray, charset: str) -> tuple[str, float]:
    """Best class per step, repeats collapsed, blanks dropped; confidence = mean probability of the kept steps."""
    best = probabilities.argmax(axis=1)
    keep = (best != 0) & np.concatenate(([True], best[1:] != best[:-1]))
    if not keep.any():
        return "", 0.0
    kept = best[keep]
    return "".join(charset[index - 1] for index in kept.tolist()), float(probabilities[keep, kept].mean())
