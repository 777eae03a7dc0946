"""Continuous learning's model versions: kept with their figures, listed by `hwdaemon models`, restored by `models rollback`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL
from hwdaemon.cli import cli
from hwdaemon.config import Config, load_config
from hwdaemon.errors import ConfigError
from hwdaemon.learning.places import reading_now, registry_for
from hwdaemon.learning.registry import ModelVersion, network_digest
from hwdaemon.learning.summary import learning_summary
from hwdaemon.pipeline import Pipeline
from hwdaemon.plugins import Registry
from hwdaemon.store import Store
from hwdaemon.training.crnn import load_network, save_model


def write_config(folder: Path, **learning: object) -> Path:
    config = {
        "state_dir": str(folder / "state"),
        "profiles": {
            "mine": {"recognizer": {"type": "handwriting"}, "learning": {"enabled": True, **learning}},
            "other": {"recognizer": {"type": "handwriting"}},
        },
        "inboxes": [{"path": str(folder / "inbox"), "profile": "mine", "sinks": ["outbox"]}],
        "sinks": {"outbox": {"type": "file", "path": str(folder / "outbox")}},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def nudged_model(folder: Path) -> Path:
    """A real model that reads a little differently from the shipped one (its own ONNX network)."""
    network, card = load_network(SHIPPED_MODEL)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(torch.randn_like(parameter) * 1e-3)
    save_model(network, card["charset"], folder, {"name": "nudged"})
    return folder


def learnt(base: int) -> ModelVersion:
    return ModelVersion(
        number=-1, origin="learnt", created_at=time.time(), digest="", base_version=base, kind="mean",
        lines_learnt=60, held_back_lines=20, cer_before=0.41, cer_after=0.33, run_id="run-1",
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path, registry: Registry) -> Config:
    loaded = load_config(write_config(tmp_path), registry)
    Store(loaded.state_dir).close()  # the daemon has run with it
    return loaded


def test_a_learnt_version_is_kept_beside_the_model_before_learning_and_read_next(
    config: Config, registry: Registry, tmp_path: Path
) -> None:
    models = registry_for(config, "mine")
    assert reading_now(config, "mine") == SHIPPED_MODEL
    with models.locked():
        before = models.adopt(reading_now(config, "mine"))
        installed = models.add_learnt(nudged_model(tmp_path / "run" / "model"), learnt(before.number))
    assert (before.number, before.origin, installed.number, models.current()) == (0, "before-learning", 1, 1)
    assert network_digest(models.live) == network_digest(tmp_path / "run" / "model") != before.digest
    assert reading_now(config, "mine") == models.live.resolve()
    recognizer = Pipeline.from_profile("mine", config.profile("mine"), config.models, registry).recognizer
    other = Pipeline.from_profile("other", config.profile("other"), config.models, registry).recognizer
    assert recognizer.model_dir() == models.live.resolve() and other.model_dir() == SHIPPED_MODEL  # type: ignore[attr-defined]
    kept = json.loads((models.folder_of(1) / "version.json").read_text())
    assert (kept["cer_before"], kept["cer_after"], kept["lines_learnt"], kept["base_version"]) == (0.41, 0.33, 60, 0)


def test_models_lists_versions_and_rollback_restores_the_previous_one(config: Config, tmp_path: Path) -> None:
    models = registry_for(config, "mine")
    with models.locked():
        models.adopt(SHIPPED_MODEL)
        models.add_learnt(nudged_model(tmp_path / "run" / "model"), learnt(0))
    config_path = str(tmp_path / "config.yaml")
    listing = CliRunner().invoke(cli, ["models", "--profile", "mine", "--json", "--config", config_path])
    assert listing.exit_code == 0, listing.output
    entry = json.loads(listing.stdout)["profiles"][0]
    assert [version["number"] for version in entry["versions"]] == [0, 1]
    assert entry["summary"]["version"] == 1 and entry["summary"]["cer_after"] == 0.33
    text = CliRunner().invoke(cli, ["models", "--config", config_path])
    assert "held-back CER 41.0% → 33.0%" in text.output

    rolled = CliRunner().invoke(cli, ["models", "rollback", "mine", "--config", config_path])
    assert rolled.exit_code == 0, rolled.output
    assert "reads model version 0 now (was 1)" in rolled.output
    assert models.current() == 0 and network_digest(models.live) == network_digest(SHIPPED_MODEL)
    forward = CliRunner().invoke(cli, ["models", "rollback", "mine", "1", "--config", config_path])
    assert forward.exit_code == 0 and network_digest(models.live) == network_digest(models.folder_of(1))


def test_rollback_to_a_version_that_is_not_kept_says_which_are(config: Config, tmp_path: Path) -> None:
    config_path = str(tmp_path / "config.yaml")
    nothing = CliRunner().invoke(cli, ["models", "rollback", "mine", "--config", config_path])
    assert nothing.exit_code == 66 and "no kept model versions yet" in nothing.stderr
    models = registry_for(config, "mine")
    with models.locked():
        models.adopt(SHIPPED_MODEL)
    unknown = CliRunner().invoke(cli, ["models", "rollback", "mine", "7", "--config", config_path])
    assert unknown.exit_code == 66 and "no model version 7; versions kept: 0" in unknown.stderr
    oldest = CliRunner().invoke(cli, ["models", "rollback", "mine", "--config", config_path])
    assert oldest.exit_code == 66 and "the oldest kept" in oldest.stderr
    no_profile = CliRunner().invoke(cli, ["models", "rollback", "theirs", "--config", config_path])
    assert no_profile.exit_code == 78 and "no profile 'theirs'" in no_profile.stderr


def test_a_model_put_in_by_hand_is_kept_as_a_version_before_learning_replaces_it(
    config: Config, tmp_path: Path
) -> None:
    models = registry_for(config, "mine")
    with models.locked():
        models.adopt(SHIPPED_MODEL)
    nudged_model(models.live)  # as `train --from-corrections` installs one
    with models.locked():
        adopted = models.adopt(reading_now(config, "mine"))
        again = models.adopt(reading_now(config, "mine"))
    assert (adopted.number, adopted.origin, again.number) == (1, "outside", 1)


def test_learning_needs_a_recognizer_that_can_learn(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "profiles": {"mine": {"recognizer": {"type": "easyocr"}, "learning": {"enabled": True}}},
                "inboxes": [{"path": str(tmp_path / "inbox"), "profile": "mine", "sinks": []}],
            }
        )
    )
    with pytest.raises(ConfigError, match=r"config.yaml:\d+ profiles.mine.*'easyocr' recognizer cannot learn"):
        load_config(path, registry)


def test_the_summary_the_review_page_shows_gives_the_version_its_figures_and_state(
    config: Config, tmp_path: Path
) -> None:
    models = registry_for(config, "mine")
    with models.locked():
        models.adopt(SHIPPED_MODEL)
        models.add_learnt(nudged_model(tmp_path / "run" / "model"), learnt(0))
    store = Store(config.state_dir)
    try:
        mine = learning_summary(config, store, "mine")
        other = learning_summary(config, store, "other")
        gone = learning_summary(config, store, "removed-since")  # its old jobs are still on the review page
    finally:
        store.close()
    assert (mine.state, mine.version, mine.lines_learnt, mine.cer_before, mine.cer_after) == (
        "waiting",
        1,
        60,
        0.41,
        0.33,
    )
    assert (mine.approved_since, mine.min_new_lines, mine.progress, mine.last_attempt) == (0, 50, None, None)
    assert (other.state, other.version, gone.state, gone.version) == ("off", None, "off", None)
    assert mine.to_dict()["cer_after"] == 0.33


def test_a_damaged_registry_leaves_the_summary_unknown_instead_of_failing_the_review_page(
    config: Config, tmp_path: Path
) -> None:
    models = registry_for(config, "mine")
    with models.locked():
        models.adopt(SHIPPED_MODEL)
        models.add_learnt(nudged_model(tmp_path / "run" / "model"), learnt(0))
    shutil.rmtree(models.folder_of(1))  # someone tidied the versions by hand
    store = Store(config.state_dir)
    try:
        deleted = learning_summary(config, store, "mine")
        (models.root / "registry.json").write_text("{not json")
        garbled = learning_summary(config, store, "mine")
    finally:
        store.close()
    assert (deleted.state, deleted.version, deleted.cer_after) == ("waiting", None, None)
    assert (garbled.state, garbled.version, garbled.lines_learnt) == ("waiting", None, 0)
    rolled = CliRunner().invoke(cli, ["models", "rollback", "mine", "0", "--config", str(tmp_path / "config.yaml")])
    assert rolled.exit_code == 0, rolled.output
    assert models.current() == 0 and network_digest(models.live) == network_digest(SHIPPED_MODEL)
