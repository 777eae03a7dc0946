"""The fine-tuning recipe's knobs: which layers learn, how strongly lines are varied, the words a model learnt."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hwdaemon.builtins.recognizers.beamsearch import BeamDecoder
from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL
from hwdaemon.builtins.recognizers.handwriting_model import load_model
from hwdaemon.cli import cli
from hwdaemon.config import parse_config
from hwdaemon.errors import ConfigError
from hwdaemon.pipeline import Pipeline
from hwdaemon.plugins import Registry
from hwdaemon.training.corrections import CORRECTIONS_SETTINGS, fine_tune
from hwdaemon.training.crnn import load_network
from hwdaemon.training.data import LineSample
from hwdaemon.training.options import TrainingOptions
from hwdaemon.training.train import TrainSettings, augment, train
from rendering import render_lines

TEXTS = ["Chère Émilie", "merci beaucoup", "à bientôt"]


def line(text: str, number: int = 0) -> LineSample:
    return LineSample(text, "me/notes", f"line-{number}", render_lines([text], font_size=40))


def lines() -> list[LineSample]:
    return [line(text, number) for number, text in enumerate(TEXTS)]


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


def test_a_model_fine_tuned_on_corrections_spells_their_words(tmp_path: Path, registry: Registry) -> None:
    settings = TrainSettings(epochs=0.5, batch_size=3, augment=False)
    first = fine_tune(SHIPPED_MODEL, [line("Bonjour Lathrop")], tmp_path / "first", settings)
    second = fine_tune(first["fine-tuned"], [line("chez Quimperlé")], tmp_path / "second", settings)
    for folder in second.values():  # both candidates, with what the model they came from had learnt
        assert {"lathrop", "quimperlé", "chez"} <= load_model(folder).learnt_words()

    def decoder(model_dir: Path) -> BeamDecoder:
        text = f"profiles:\n  default: {{recognizer: {{type: handwriting, model_dir: '{model_dir}'}}}}\n"
        config = parse_config(text, "cfg.yaml", registry)
        pipeline = Pipeline.from_profile("default", config.profile("default"), config.models, registry)
        found = pipeline.recognizer._decoder()  # type: ignore[attr-defined]
        assert isinstance(found, BeamDecoder)
        return found

    shipped, learnt = decoder(SHIPPED_MODEL).language_model, decoder(second["mean"]).language_model
    assert learnt.text_log_probability("lathrop") > shipped.text_log_probability("lathrop") + 3


def test_the_recipe_flags_reach_the_fine_tune_on_corrections() -> None:
    settings = TrainingOptions(trained_layers="recurrent", augment_strength=0.0).corrections_settings()
    assert (settings.trained_layers, settings.augment_strength) == ("recurrent", 0.0)
    assert TrainingOptions().corrections_settings() == CORRECTIONS_SETTINGS


@pytest.mark.parametrize(
    "flags", [["--trained-layers", "cnn"], ["--augment-strength", "-1"], ["--augment-strength", "lots"]]
)
def test_a_bad_recipe_flag_is_a_usage_error(flags: list[str]) -> None:
    outcome = CliRunner().invoke(cli, ["train", "--from-corrections", *flags])
    assert outcome.exit_code == 2, outcome.output
    assert flags[0] in outcome.stderr
