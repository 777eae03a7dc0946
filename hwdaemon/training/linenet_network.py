"""The line segmenter's network: a small U-Net that marks each text line's middle band on a shrunk page.

Rules on ink (`lines`) cannot tell a stamp, a margin rule or the scanner's dark
surround from writing; a network trained on the line polygons of transcribed
pages (training/segment.py; the detector is builtins/detectors/linenet.py) learns
what transcribers count as a line. It sees the page in grey with its longer side at
`LINENET_SIDE` pixels and answers, per pixel, the probability of lying in the middle
half of a line (the *core*): cores of neighbouring lines stay apart even where
ascenders and descenders touch, so each connected core is one line.

Training uses this module; the detector reads the ONNX copy `save_linenet` writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from hwdaemon.modelfolder import LINENET, LINENET_SIDE
from hwdaemon.training.crnn import Activated, export_onnx, float16_state, float32_state

CARD_FILE, ONNX_FILE, WEIGHTS_FILE = LINENET.card_file, LINENET.onnx_file, LINENET.weights_file

CHANNELS = (8, 16, 32, 64, 64)


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
    )  # fmt: skip


class LineNet(nn.Module):
    """U-Net: four halvings and back, skip connections; one output channel of core logits."""

    def __init__(self, channels: tuple[int, ...] = CHANNELS) -> None:
        super().__init__()
        self.down = nn.ModuleList(
            _block(inputs, outputs) for inputs, outputs in zip((1, *channels[:-1]), channels, strict=True)
        )
        self.up = nn.ModuleList(
            _block(deep + skip, skip) for deep, skip in zip(channels[:0:-1], channels[-2::-1], strict=True)
        )
        self.head = nn.Conv2d(channels[0], 1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        skips = []
        features = images
        for index, block in enumerate(self.down):
            features = block(features if index == 0 else functional.max_pool2d(features, 2))
            skips.append(features)
        for block, skip in zip(self.up, skips[-2::-1], strict=True):
            features = functional.interpolate(features, size=skip.shape[-2:], mode="nearest")
            features = block(torch.cat([features, skip], dim=1))
        logits: torch.Tensor = self.head(features)
        return logits


def save_linenet(network: nn.Module, folder: Path, card: dict[str, object]) -> None:
    """linenet.pth (float16), its ONNX copy exported from the same rounded weights, and model.json."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(float16_state(network), folder / WEIGHTS_FILE)
    write_onnx_copy(folder)
    (folder / CARD_FILE).write_text(
        json.dumps({"side": LINENET_SIDE, "channels": list(CHANNELS), **card}, indent=2) + "\n"
    )


def load_linenet(folder: Path) -> LineNet:
    network = LineNet()
    network.load_state_dict(float32_state(torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)))
    return network.eval()


def write_onnx_copy(folder: Path) -> None:
    """linenet.onnx from the folder's float16 weights, for the detector to read (and for segmenters saved before it)."""
    export_onnx(
        Activated(load_linenet(folder), torch.sigmoid),
        torch.zeros(1, 1, 384, 512),
        folder / ONNX_FILE,
        {"images": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}},
    )
