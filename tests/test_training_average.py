"""Averaging models: the mean of each weight, loadable as a model; other alphabets refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from hwdaemon.cli import cli
from hwdaemon.errors import ConfigError
from hwdaemon.training.average import average_models
from hwdaemon.training.crnn import build_network, load_network, save_model


def _model(folder: Path, charset: str, seed: int) -> Path:
    torch.manual_seed(seed)
    save_model(build_network(len(charset) + 1), charset, folder, {"name": folder.name, "steps": seed})
    return folder


def test_the_average_holds_the_mean_of_every_weight(tmp_path: Path) -> None:
    first, second = _model(tmp_path / "a", "abc", 1), _model(tmp_path / "b", "abc", 2)
    result = CliRunner().invoke(cli, ["average-models", str(first), str(second), "--out", str(tmp_path / "mean")])
    assert result.exit_code == 0, result.output
    mean, one, two = (load_network(folder)[0].state_dict() for folder in (tmp_path / "mean", first, second))
    weight = "Prediction.weight"
    assert not torch.equal(one[weight], two[weight])
    close = {"rtol": 1e-3, "atol": 1e-4}  # the mean is stored as float16, as every model is
    assert torch.allclose(mean[weight], (one[weight] + two[weight]) / 2, **close)
    assert all(
        torch.allclose(mean[key].float(), (one[key].float() + two[key].float()) / 2, **close)
        for key in mean
        if mean[key].is_floating_point()
    )
    assert [source["name"] for source in load_network(tmp_path / "mean")[1]["averaged_from"]] == ["a", "b"]


def test_models_with_another_alphabet_are_refused(tmp_path: Path) -> None:
    first, other = _model(tmp_path / "a", "abc", 1), _model(tmp_path / "b", "abd", 2)
    with pytest.raises(ConfigError, match="another alphabet"):
        average_models([first, other], tmp_path / "mean")
    assert not (tmp_path / "mean").exists()
