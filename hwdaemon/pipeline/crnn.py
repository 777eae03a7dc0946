"""Our handwriting network: EasyOCR's generation-2 CRNN (VGG + BiLSTM + CTC, height 64), wider alphabet.

Shared by the `handwriting` recognizer (inference) and `hwdaemon train`. A model
folder holds `weights.pth` (a state dict) and `model.json` (charset, height,
lineage). Starting from english_g2, the output layer keeps every existing row
and gains rows for accented Latin letters, each started from its base letter's
row (é from e), so French accents are learnable from few lines.
"""

from __future__ import annotations

import json
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from hwdaemon.errors import ModelMissingError

HEIGHT = 64
# Loaded networks keep their weights channels-last: on CPU that takes oneDNN's direct
# convolutions instead of im2col buffers, 1.3-2x faster and 150-250 MB less at peak, same outputs.
CONV_LAYOUT = torch.channels_last
ENGLISH_G2_CHARSET = "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Letters and marks that English, French, German, Spanish and Italian handwriting needs beyond english_g2.
EXTRA_LATIN = "ÀÂÄÆÇÉÈÊËÎÏÔŒÙÛÜŸàâäæçéèêëîïôœùûüÿÁÍÑÓÚáíñóúÖößÌÒìò«»’‘“”°§£–—…"
CHARSET_V1 = ENGLISH_G2_CHARSET + EXTRA_LATIN
# Turns one crop's (steps, classes) softmax output into text, given the charset (beamsearch.BeamDecoder).
TextDecoder = Callable[[np.ndarray, str], str]


class BidirectionalLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        recurrent, _ = self.rnn(features)
        return self.linear(recurrent)


class CRNN(nn.Module):
    """EasyOCR's generation-2 recognition network, layer for layer (its weights load as they are).

    Our own definition rather than `easyocr.model.vgg_model.Model`: importing that
    imports all of easyocr and torchvision, 3 s of a 3.5 s model load.
    """

    def __init__(self, num_class: int, channels: int = 256, hidden_size: int = 256) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels // 8, channels // 4, channels // 2, channels
        self.FeatureExtraction = nn.Module()
        self.FeatureExtraction.ConvNet = nn.Sequential(
            nn.Conv2d(1, c1, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
            nn.Conv2d(c1, c2, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d(2, 2),
            nn.Conv2d(c2, c3, 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(c3, c3, 3, 1, 1), nn.ReLU(True), nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c3, c4, 3, 1, 1, bias=False), nn.BatchNorm2d(c4), nn.ReLU(True),
            nn.Conv2d(c4, c4, 3, 1, 1, bias=False), nn.BatchNorm2d(c4), nn.ReLU(True), nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c4, c4, 2, 1, 0), nn.ReLU(True),
        )  # fmt: skip
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))
        self.SequenceModeling = nn.Sequential(BidirectionalLSTM(c4, hidden_size, hidden_size), BidirectionalLSTM(hidden_size, hidden_size, hidden_size))
        self.Prediction = nn.Linear(hidden_size, num_class)

    def forward(self, images: torch.Tensor, text: object = None) -> torch.Tensor:
        """(batch, 1, 64, width) greyscale in [-1, 1] → (batch, width/4 - 1, classes) logits."""
        features = self.FeatureExtraction.ConvNet(images)
        features = self.AdaptiveAvgPool(features.permute(0, 3, 1, 2)).squeeze(3)
        return self.Prediction(self.SequenceModeling(features).contiguous())


def build_network(num_class: int) -> nn.Module:
    return CRNN(num_class)


def _base_letter(char: str) -> str:
    decomposed = unicodedata.normalize("NFD", char)
    return {"’": "'", "‘": "'", "“": '"', "”": '"', "«": '"', "»": '"', "–": "-", "—": "-", "…": ".", "Œ": "O", "œ": "o", "Æ": "A", "æ": "a", "ß": "s"}.get(
        char, decomposed[0]
    )


def from_english_g2(weights: Path, charset: str = CHARSET_V1) -> nn.Module:
    """english_g2's network with its output layer extended to `charset` (blank is class 0)."""
    state = torch.load(weights, map_location="cpu", weights_only=False)
    state = OrderedDict((key.removeprefix("module."), value) for key, value in state.items())
    old_weight, old_bias = state.pop("Prediction.weight"), state.pop("Prediction.bias")
    model = build_network(len(charset) + 1)
    model.load_state_dict(state, strict=False)
    old_index = {char: index + 1 for index, char in enumerate(ENGLISH_G2_CHARSET)}
    with torch.no_grad():
        weight, bias = model.Prediction.weight, model.Prediction.bias
        weight[0], bias[0] = old_weight[0], old_bias[0]
        for index, char in enumerate(charset, start=1):
            source = old_index.get(char) or old_index.get(_base_letter(char))
            if source is not None:
                weight[index], bias[index] = old_weight[source], old_bias[source]
    return model


@dataclass(frozen=True, slots=True)
class HandwritingModel:
    network: nn.Module
    charset: str
    card: dict[str, Any]

    def read(self, crops: list[np.ndarray], decoder: TextDecoder | None = None, max_width: int = 2400) -> list[tuple[str, float]]:
        """Text and confidence for each greyscale line crop; greedy decoding unless a decoder is given.

        The confidence is always the greedy path's (mean best-class probability of the
        kept steps): it measures how sure the network is, whichever decoder spells the
        text, so review thresholds keep their meaning.
        """
        results = []
        for probabilities in self.probabilities(crops, max_width):
            text, confidence = greedy(probabilities, self.charset)
            results.append((text if decoder is None else decoder(probabilities, self.charset), confidence))
        return results

    def probabilities(self, crops: list[np.ndarray], max_width: int = 2400) -> list[np.ndarray]:
        """Per crop, its (steps, classes) softmax output, without the steps computed over another crop's padding."""
        if not crops:
            return []
        was_training = self.network.training
        self.network.eval()
        device = next(self.network.parameters()).device
        batch, widths = to_batch(crops, max_width)
        with torch.inference_mode():
            output = self.network(batch.to(device), None).softmax(dim=2).cpu().numpy()
        self.network.train(was_training)
        return [rows[: max(1, width // 4 - 1)] for rows, width in zip(output, widths, strict=True)]


def save_model(network: nn.Module, charset: str, folder: Path, card: dict[str, Any]) -> None:
    """weights.pth and model.json, each written to a temp name and renamed (a reader never sees half).

    Weights are stored as float16 and loaded back as float32: half the file (7.6
    MB), and the dev set reads the same (v5: 13.34% either way, one item better
    and one worse of 123).
    """
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / ".weights.pth.tmp"
    torch.save({key: value.cpu().half() if value.is_floating_point() else value.cpu() for key, value in network.state_dict().items()}, temporary)
    temporary.replace(folder / "weights.pth")
    (folder / ".model.json.tmp").write_text(json.dumps({**card, "charset": charset, "height": HEIGHT}, ensure_ascii=False, indent=2))
    (folder / ".model.json.tmp").replace(folder / "model.json")


def load_model(folder: Path) -> HandwritingModel:
    card_path, weights = folder / "model.json", folder / "weights.pth"
    for path in (card_path, weights):
        if not path.is_file():
            raise ModelMissingError(f"missing model file {path}; train one with `hwdaemon train` or set the recognizer's model_dir")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    network = build_network(len(card["charset"]) + 1)
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    network.eval().to(memory_format=CONV_LAYOUT)
    return HandwritingModel(network=network, charset=card["charset"], card=card)


def resize_to_height(crop: np.ndarray, height: int = HEIGHT, max_width: int = 2400) -> np.ndarray:
    rows, columns = crop.shape[:2]
    width = max(1, min(max_width, round(columns * height / max(1, rows))))
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if rows > height else cv2.INTER_CUBIC)


def to_batch(crops: list[np.ndarray], max_width: int = 2400) -> tuple[torch.Tensor, list[int]]:
    """Crops → (N, 1, 64, W) in [-1, 1], right-padded with each crop's last column as EasyOCR does; and each crop's width."""
    resized = [resize_to_height(crop, HEIGHT, max_width) for crop in crops]
    width = max(image.shape[1] for image in resized)
    batch = np.empty((len(resized), 1, HEIGHT, width), dtype=np.float32)
    for index, image in enumerate(resized):
        batch[index, 0, :, : image.shape[1]] = image
        batch[index, 0, :, image.shape[1] :] = image[:, -1:]
    return torch.from_numpy(batch / 127.5 - 1.0), [image.shape[1] for image in resized]


def greedy(probabilities: np.ndarray, charset: str) -> tuple[str, float]:
    """Best class per step, repeats collapsed, blanks dropped; confidence = mean probability of the kept steps."""
    best = probabilities.argmax(axis=1)
    keep = (best != 0) & np.concatenate(([True], best[1:] != best[:-1]))
    if not keep.any():
        return "", 0.0
    kept = best[keep]
    return "".join(charset[index - 1] for index in kept.tolist()), float(probabilities[keep, kept].mean())
