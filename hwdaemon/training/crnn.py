"""Our handwriting network in PyTorch: EasyOCR's generation-2 CRNN (VGG + BiLSTM + CTC, height 64), wider alphabet.

What `hwdaemon train` builds, fine-tunes and saves; the recognizer reads the ONNX copy
that `save_model` writes beside the weights (builtins/recognizers/handwriting_model.py),
in the folder format of modelfolder.HANDWRITING. Starting
from english_g2, the output layer keeps every existing row and gains rows for
accented Latin letters, each started from its base letter's row (é from e), so French
accents are learnable from few lines.
"""

from __future__ import annotations

import json
import os
import threading
import unicodedata
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from hwdaemon.modelfolder import HANDWRITING, HANDWRITING_HEIGHT, Forward

CARD_FILE, ONNX_FILE, WEIGHTS_FILE = HANDWRITING.card_file, HANDWRITING.onnx_file, HANDWRITING.weights_file

# Networks loaded to train keep their weights channels-last: on CPU that takes oneDNN's direct
# convolutions instead of im2col buffers (fine-tuning 16.3 → 19.5 lines/s), same outputs.
CONV_LAYOUT = torch.channels_last
ENGLISH_G2_CHARSET = (
    "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
# Letters and marks that English, French, German, Spanish and Italian handwriting needs beyond english_g2.
EXTRA_LATIN = "ÀÂÄÆÇÉÈÊËÎÏÔŒÙÛÜŸàâäæçéèêëîïôœùûüÿÁÍÑÓÚáíñóúÖößÌÒìò«»’‘“”°§£–—…"
CHARSET_V1 = ENGLISH_G2_CHARSET + EXTRA_LATIN


class BidirectionalLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        recurrent, _ = self.rnn(features)
        output: torch.Tensor = self.linear(recurrent)
        return output


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
        self.SequenceModeling = nn.Sequential(
            BidirectionalLSTM(c4, hidden_size, hidden_size), BidirectionalLSTM(hidden_size, hidden_size, hidden_size)
        )
        self.Prediction = nn.Linear(hidden_size, num_class)

    def forward(self, images: torch.Tensor, text: object = None) -> torch.Tensor:
        """(batch, 1, 64, width) greyscale in [-1, 1] → (batch, width/4 - 1, classes) logits."""
        convnet = cast(nn.Sequential, self.FeatureExtraction.ConvNet)
        features = convnet(images).mean(dim=2).permute(0, 2, 1)  # EasyOCR's AdaptiveAvgPool over the height
        logits: torch.Tensor = self.Prediction(self.SequenceModeling(features).contiguous())
        return logits


def build_network(num_class: int) -> CRNN:
    return CRNN(num_class)


def _base_letter(char: str) -> str:
    decomposed = unicodedata.normalize("NFD", char)
    return {
        "’": "'",
        "‘": "'",
        "“": '"',
        "”": '"',
        "«": '"',
        "»": '"',
        "–": "-",
        "—": "-",
        "…": ".",
        "Œ": "O",
        "œ": "o",
        "Æ": "A",
        "æ": "a",
        "ß": "s",
    }.get(char, decomposed[0])


def from_english_g2(weights: Path, charset: str = CHARSET_V1) -> CRNN:
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


def torch_forward(network: nn.Module) -> Forward:
    """The network as a `Forward` for `HandwritingModel`: how training reads its validation lines, on its own device."""

    def forward(batch: np.ndarray) -> np.ndarray:
        was_training = network.training
        network.eval()
        device = next(network.parameters()).device
        with torch.inference_mode():
            output: np.ndarray = network(torch.from_numpy(batch).to(device)).softmax(dim=2).cpu().numpy()
        network.train(was_training)
        return output

    return forward


class Activated(nn.Module):
    """A network followed by its output's activation: the ONNX copies give probabilities, not logits."""

    def __init__(self, network: nn.Module, activation: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.network, self.activation = network, activation

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.activation(self.network(images))


def save_model(network: nn.Module, charset: str, folder: Path, card: dict[str, Any]) -> None:
    """weights.pth, model.onnx and model.json, each written to a temp name and renamed (a reader never sees half).

    Weights are stored as float16 and loaded back as float32: half the file (7.6
    MB), and the dev set reads the same (v5: 13.34% either way, one item better
    and one worse of 123). The ONNX copy, which the pipeline reads, is exported
    from those float16-rounded weights, so both files hold the same network.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state = float16_state(network)
    torch.save(state, folder / f".{WEIGHTS_FILE}.tmp")
    rounded = build_network(len(charset) + 1)
    rounded.load_state_dict(float32_state(state))
    _export_reader(rounded, folder / f".{ONNX_FILE}.tmp")
    (folder / f".{CARD_FILE}.tmp").write_text(
        json.dumps({**card, "charset": charset, "height": HANDWRITING_HEIGHT}, ensure_ascii=False, indent=2)
    )
    for name in (WEIGHTS_FILE, ONNX_FILE, CARD_FILE):
        (folder / f".{name}.tmp").replace(folder / name)


def write_onnx_copy(folder: Path) -> None:
    """model.onnx for a model saved before models carried one (a user's `train --from-corrections` model)."""
    network, _ = load_network(folder)
    temporary = folder / f".{ONNX_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    _export_reader(network, temporary)
    temporary.replace(folder / ONNX_FILE)


def _export_reader(network: nn.Module, path: Path) -> None:
    export_onnx(
        Activated(network, lambda logits: logits.softmax(dim=2)),
        torch.zeros(2, 1, HANDWRITING_HEIGHT, 256),
        path,
        {"images": {0: "lines", 3: "width"}, "output": {0: "lines", 1: "steps"}},
    )


def load_network(folder: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The torch network in `folder` and its card: what training fine-tunes or averages (reading uses handwriting_model.load_model)."""
    HANDWRITING.require_files(folder, (CARD_FILE, WEIGHTS_FILE))
    card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    network = build_network(len(card["charset"]) + 1)
    network.load_state_dict(float32_state(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)))
    return network.eval().to(memory_format=CONV_LAYOUT), card


def float16_state(network: nn.Module) -> dict[str, torch.Tensor]:
    """The network's weights rounded to float16 for storage: half the file, and they read the same (save_model)."""
    return {
        key: value.cpu().half() if value.is_floating_point() else value.cpu()
        for key, value in network.state_dict().items()
    }


def float32_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stored float16 weights back in float32, which CPU arithmetic and the ONNX exporter work in."""
    return {key: value.float() if value.is_floating_point() else value for key, value in state.items()}


def export_onnx(network: nn.Module, example: torch.Tensor, path: Path, dynamic_axes: dict[str, dict[int, str]]) -> None:
    """The network in ONNX for onnx_runtime, with `dynamic_axes` free (line width, page size)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice; torch is pinned at 2.14
        torch.onnx.export(
            network.eval(), (example,), str(path), input_names=["images"], output_names=["output"],
            dynamic_axes=dynamic_axes, dynamo=False, opset_version=17,
        )  # fmt: skip
