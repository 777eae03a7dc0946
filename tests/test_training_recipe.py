"""The fine-tuning recipe's knobs: which layers learn, how strongly lines are varied."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL
from hwdaemon.errors import ConfigError
from hwdaemon.training.crnn import load_network
from hwdaemon.training.data import LineSample
from hwdaemon.training.train import TrainSettings, augment, train
from rendering import render_lines

TEXTS = ["Chère Émilie", "merci beaucoup", "à bientôt"]


def lines() -> list[LineSample]:
    return [
        LineSample(text, "me/notes", f"line-{n}", render_lines([text], font_size=40)) for n, text in enumerate(TEXTS)
    ]


def weights(folder: Path, prefix: str) -> dict[str, torch.Tensor]:
    network, _ = load_network(folder)
    return {name: value for name, value in network.state_dict().items() if name.startswith(prefix)}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_recurrent_only_fine_tune_keeps_the_convolutional_features(tmp_path: Path) -> None:
    settings = TrainSettings(epochs=1, batch_size=3, learning_rate=1e-3, augment=False, trained_layers="recurrent")
    train(lines(), [], tmp_path, SHIPPED_MODEL, settings)
    features = "FeatureExtraction."
    assert not changed(weights(SHIPPED_MODEL, features), weights(tmp_path / "model", features))  # running stats too
    recurrent = changed(weights(SHIPPED_MODEL, "SequenceModeling."), weights(tmp_path / "model", "SequenceModeling."))
    assert recurrent and changed(weights(SHIPPED_MODEL, "Prediction."), weights(tmp_path / "model", "Prediction."))


def test_fine_tuning_all_layers_changes_the_convolutional_features(tmp_path: Path) -> None:
    train(
        lines(), [], tmp_path, SHIPPED_MODEL, TrainSettings(epochs=1, batch_size=3, learning_rate=1e-3, augment=False)
    )
    features = "FeatureExtraction."
    assert changed(weights(SHIPPED_MODEL, features), weights(tmp_path / "model", features))


def test_unknown_trained_layers_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'cnn'.*all, recurrent"):
        train(lines(), [], tmp_path, SHIPPED_MODEL, TrainSettings(epochs=1, trained_layers="cnn"))


def test_augmentation_of_strength_zero_leaves_the_line_as_it_is() -> None:
    crop = render_lines(["merci beaucoup"], font_size=40)
    assert np.array_equal(augment(crop, random.Random(3), strength=0.0), crop)


def test_stronger_augmentation_varies_lines_more() -> None:
    crop = render_lines(["merci beaucoup"], font_size=40)

    def spread(strength: float) -> float:
        shapes = [augment(crop, random.Random(seed), strength).shape for seed in range(40)]
        return float(np.std([width / height for height, width in shapes]))

    assert spread(0.5) < spread(1.0) < spread(2.0)
