"""Where a profile's handwriting model is read from and where its versions are kept, from the config alone.

The rule is the recognizer's own (`HandwritingRecognizer.model_dir`): the
recognizer's `model_dir` when set, else the profile's trained folder once it
holds a model, else the shipped model. A new version is installed where `train
--from-corrections` installs one: the `model_dir` when set, else the trained folder.
"""

from __future__ import annotations

from pathlib import Path

from hwdaemon.config import Config
from hwdaemon.learning.registry import ModelRegistry


def registry_for(config: Config, profile: str) -> ModelRegistry:
    """The profile's versions under `models.trained_dir/PROFILE`, installing into the folder its recognizer reads."""
    assert config.models.trained_dir is not None  # filled in from state_dir when the config loads
    configured = _configured_model_dir(config, profile)
    live = configured if configured is not None else config.models.trained_dir / profile / "handwriting"
    return ModelRegistry(config.models.trained_dir / profile, live)


def reading_now(config: Config, profile: str) -> Path:
    """The model folder the profile's recognizer reads at this moment."""
    from hwdaemon.builtins.recognizers.handwriting import HandwritingOptions, HandwritingRecognizer
    from hwdaemon.pipeline.stages import PieceContext

    options = HandwritingOptions.model_validate(config.profile(profile).recognizer.options)
    live = registry_for(config, profile).live if options.model_dir is None else None
    return HandwritingRecognizer(options, PieceContext(trained_model_dir=live)).model_dir()


def learning_profiles(config: Config) -> list[str]:
    """The profiles that learn in the background, in name order."""
    return sorted(name for name, profile in config.profiles.items() if profile.learning.enabled)


def _configured_model_dir(config: Config, profile: str) -> Path | None:
    """The recognizer's model_dir; none for a profile since removed from the config (its jobs are still listed)."""
    settings = config.profiles.get(profile)
    value = settings.recognizer.options.get("model_dir") if settings is not None else None
    return Path(value).resolve() if value else None
