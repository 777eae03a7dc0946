"""The plugin manager: built-ins through the same hooks, third-party pieces usable from a profile."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from click.testing import CliRunner

from hwdaemon.cli import cli
from hwdaemon.config import parse_config
from hwdaemon.model import Document, Page
from hwdaemon.plugin_api import Step, hookimpl
from hwdaemon.plugins import build_registry, get_plugin_manager


class Invert(Step):
    name = "test_invert"

    def apply(self, image: np.ndarray) -> np.ndarray:
        return 255 - image


class InvertPlugin:
    @hookimpl
    def hwdaemon_register_steps(self) -> list[type[Step]]:
        return [Invert]


@pytest.fixture
def manager_with_plugin() -> Iterator[object]:
    manager = get_plugin_manager()
    plugin = InvertPlugin()
    manager.register(plugin, name="test-invert")
    try:
        yield manager
    finally:
        manager.unregister(plugin)


def test_plugins_command_lists_builtins_and_what_they_register() -> None:
    outcome = CliRunner().invoke(cli, ["plugins", "--json"])
    assert outcome.exit_code == 0
    listed = {plugin["name"]: plugin["registered"] for plugin in json.loads(outcome.stdout)["plugins"]}
    assert "deskew" in listed["hwdaemon.builtins.steps"]["step"]
    assert listed["hwdaemon.builtins.detectors.rules"]["detector"] == ["lines", "mser"]
    assert listed["hwdaemon.builtins.detectors.craft"]["detector"] == ["craft"]
    assert listed["hwdaemon.builtins.postprocessors.spelling"]["postprocessor"] == ["spelling"]
    assert listed["hwdaemon.builtins.sinks"]["sink"] == ["file"]


def test_a_plugin_step_is_usable_from_a_profile(manager_with_plugin: object) -> None:
    from hwdaemon.pipeline import Pipeline

    registry = build_registry(manager_with_plugin)  # type: ignore[arg-type]
    config = parse_config("profiles:\n  p: {preprocess: [test_invert]}\n", "cfg.yaml", registry)
    pipeline = Pipeline.from_profile("p", config.profile("p"), config.models, registry)
    blank = np.zeros((50, 80), np.uint8)  # black page → inverted to white paper → no lines
    result = pipeline.run(Document("blank.png", "0" * 64, (Page(1, blank),)))
    assert result.pages[0].lines == () and result.pages[0].width == 80


def test_builtins_win_a_name_clash(manager_with_plugin: object) -> None:
    class FakeGrayscale(Step):
        name = "grayscale"

        def apply(self, image: np.ndarray) -> np.ndarray:
            return image

    class Clash:
        @hookimpl
        def hwdaemon_register_steps(self) -> list[type[Step]]:
            return [FakeGrayscale]

    manager_with_plugin.register(Clash(), name="clash")  # type: ignore[attr-defined]
    assert build_registry(manager_with_plugin).get("step", "grayscale") is not FakeGrayscale  # type: ignore[arg-type]
