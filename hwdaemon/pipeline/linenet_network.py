"""The line segmenter's network: a small U-Net that marks each text line's middle band on a shrunk page.

Rules on ink (`lines`) cannot tell a stamp, a margin rule or the scanner's dark
surround from writing; a network trained on the line polygons of transcribed
pages (training/segment.py; the detector is pipeline/linenet.py) learns what transcribers count as a line. It sees the
page in grey with its longer side at `SIDE` pixels and answers, per pixel, the
probability of lying in the middle half of a line (the *core*): cores of
neighbouring lines stay apart even where ascenders and descenders touch, so each
connected core is one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional

from hwdaemon.pipeline.crnn import CONV_LAYOUT
from hwdaemon.pipeline.linenet import CARD_FILE, WEIGHTS_FILE

SIDE = 1024  # the page's longer side, in the network's pixels
STRIP, MARGIN = 256, 64  # rows computed per pass, and rows of context either side (multiples of 16)
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
        self.down = nn.ModuleList(_block(inputs, outputs) for inputs, outputs in zip((1, *channels[:-1]), channels, strict=True))
        self.up = nn.ModuleList(_block(deep + skip, skip) for deep, skip in zip(channels[:0:-1], channels[-2::-1], strict=True))
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
        return self.head(features)


def to_network_input(pixels: np.ndarray) -> torch.Tensor:
    """Grey pixels (0–255, any leading shape) → float tensor in [-1, 1], for training and reading alike."""
    return torch.from_numpy(pixels).float().div(127.5).sub(1.0)


def shrink(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The page with its longer side at SIDE pixels, and the factor it was shrunk by."""
    scale = SIDE / max(gray.shape)
    height, width = (max(16, round(size * scale)) for size in gray.shape)
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR), scale


def core_probabilities(network: nn.Module, gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-pixel probability of a line's core on the shrunk page, and the shrink factor.

    The page goes through in bands of STRIP rows, each with MARGIN rows of context above
    and below that are computed and dropped: a whole page at once would hold about 280 MB
    of activations, a band under 100 MB, for a third more arithmetic.
    """
    small, scale = shrink(gray)
    height, width = small.shape
    padded_width = -(-width // 16) * 16
    probabilities = np.empty((height, width), dtype=np.float32)
    for start in range(0, height, STRIP):
        top, bottom = max(0, start - MARGIN), min(height, start + STRIP + MARGIN)
        band = np.full((-(-(bottom - top) // 16) * 16, padded_width), 255, dtype=np.uint8)
        band[: bottom - top, :width] = small[top:bottom]
        with torch.inference_mode():
            logits = network(to_network_input(band)[None, None])[0, 0]
        stop = min(height, start + STRIP)
        probabilities[start:stop] = torch.sigmoid(logits[start - top : stop - top, :width]).numpy()
    return probabilities, scale


def save_linenet(network: nn.Module, folder: Path, card: dict[str, object]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in network.state_dict().items()}
    torch.save(state, folder / WEIGHTS_FILE)
    (folder / CARD_FILE).write_text(json.dumps({"side": SIDE, "channels": list(CHANNELS), **card}, indent=2) + "\n")


def load_linenet(folder: Path) -> LineNet:
    network = LineNet()
    state = torch.load(folder / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    network.load_state_dict({name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()})
    return network.eval().to(memory_format=CONV_LAYOUT)
