"""What the commands load: the config with its plugin registry, the job store, a profile's pipeline.

Each is built one way, here. Nothing heavy is imported at module level: the
store and the pipeline (OpenCV) are imported by the functions that open them,
so `hwdaemon status --help` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from hwdaemon.config import Config, load_config
from hwdaemon.errors import NoInputError
from hwdaemon.plugins import Registry, build_registry

if TYPE_CHECKING:
    from hwdaemon.pipeline import Pipeline
    from hwdaemon.store import Store

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="HWDAEMON_CONFIG",
    help="YAML config file (default: $HWDAEMON_CONFIG, else the embedded default).",
)


def load(config_path: Path | None) -> tuple[Config, Registry]:
    """The config at `config_path` (or the embedded default), checked against the plugins installed."""
    registry = build_registry()
    return load_config(config_path, registry), registry


def open_store(config: Config) -> Store:
    """The daemon's job store for `config`, verified; NoInputError (66) when the daemon never ran with it."""
    from hwdaemon.store import DATABASE_NAME, Store

    if not (config.state_dir / DATABASE_NAME).exists():
        raise NoInputError(
            f"no job store at {config.state_dir / DATABASE_NAME}; has `hwdaemon run` started with this config?"
        )
    return Store(config.state_dir, verify=True)


def build_pipeline(config: Config, registry: Registry, profile: str) -> Pipeline:
    """Profile `profile`'s pipeline, its weights not yet checked (training reads the recognizer's folder itself)."""
    from hwdaemon.pipeline import Pipeline

    return Pipeline.from_profile(profile, config.profile(profile), config.models, registry)


def ready_pipeline(config: Config, registry: Registry, profile: str) -> Pipeline:
    """`pipeline.ready_pipeline`, imported when a command runs (not for `--help`)."""
    from hwdaemon.pipeline import ready_pipeline

    return ready_pipeline(config, registry, profile)
