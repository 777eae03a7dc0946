"""The plugin API: one module a plugin imports, typed options, and `import hwdaemon` still cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import HttpUrl

import hwdaemon
from hwdaemon import plugin_api
from hwdaemon.config import parse_config
from hwdaemon.plugin_api import Artifacts, DeliveryReceipt, Result, Sink, SinkOptions, hookimpl
from hwdaemon.plugins import REGISTRATION_HOOKS, build_registry, get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = {"hwdaemon", "hwdaemon.plugin_api"}
SHIPPED_PLUGINS = sorted(ROOT.glob("plugins/hwdaemon-*/hwdaemon_*/**/*.py"))
TEST_PLUGINS = sorted(path for path in ROOT.glob("tests/plugins/hwdaemon-*/hwdaemon_*/**/*.py"))


def hwdaemon_modules_imported_by(path: Path) -> set[str]:
    """Every hwdaemon module `path` imports, at any depth of the file (lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return {name for name in found if name == "hwdaemon" or name.startswith("hwdaemon.")}


@pytest.mark.parametrize("path", SHIPPED_PLUGINS + TEST_PLUGINS, ids=lambda path: str(path.relative_to(ROOT)))
def test_plugins_import_only_the_plugin_api(path: Path) -> None:
    assert hwdaemon_modules_imported_by(path) <= PUBLIC_MODULES


def test_the_shipped_plugins_are_all_checked() -> None:
    assert {path.parent.name for path in SHIPPED_PLUGINS} >= {"hwdaemon_webhook", "hwdaemon_s3", "hwdaemon_tesseract"}


def test_the_docs_examples_import_only_the_plugin_api() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    imports = {line.split()[1] for line in docs.splitlines() if line.startswith(("from hwdaemon", "import hwdaemon"))}
    assert imports and imports <= PUBLIC_MODULES


def test_hwdaemon_exports_the_plugin_api_by_the_same_names() -> None:
    assert set(plugin_api.__all__) == hwdaemon.PLUGIN_API_NAMES
    for name in plugin_api.__all__:
        assert getattr(hwdaemon, name) is getattr(plugin_api, name), name


def test_importing_hwdaemon_or_a_submodule_does_not_load_the_plugin_api() -> None:
    probe = "import sys, hwdaemon; from hwdaemon import errors; print(sorted(name for name in sys.modules if name.startswith('hwdaemon')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['hwdaemon', 'hwdaemon.errors']"


class EchoOptions(SinkOptions):
    url: HttpUrl
    retries: int = 3


class EchoSink(Sink[EchoOptions]):
    name = "test_echo"
    Options = EchoOptions

    def deliver(self, result: Result, artifacts: Artifacts) -> DeliveryReceipt:
        return DeliveryReceipt(location=f"{self.options.url}{artifacts.idempotency_key}")  # typed: no cast


class EchoPlugin:
    @hookimpl
    def hwdaemon_register_sinks(self) -> list[type[Sink[EchoOptions]]]:
        return [EchoSink]


@pytest.fixture
def manager_with_echo() -> Iterator[object]:
    manager = get_plugin_manager()
    plugin = EchoPlugin()
    manager.register(plugin, name="test-echo")
    try:
        yield manager
    finally:
        manager.unregister(plugin)


def test_a_sink_gets_its_own_options_class_built_from_the_config(manager_with_echo: object) -> None:
    registry = build_registry(manager_with_echo)  # type: ignore[arg-type]
    config = parse_config("sinks:\n  echo: {type: test_echo, url: 'http://127.0.0.1:9/'}\n", "cfg.yaml", registry)
    sink = registry.create("sink", config.sinks["echo"], "echo")
    assert type(sink.options) is EchoOptions and sink.options.retries == 3
    assert sink.instance_name == "echo"
    assert (
        sink.deliver(Result("a.png", "0" * 64, "default", ()), Artifacts("k1", "a.png")).location
        == "http://127.0.0.1:9/k1"
    )


def declared_options(cls: type) -> type | None:
    """The options class named in `cls`'s bases (`Sink[EchoOptions]` → EchoOptions), if any."""
    for klass in cls.__mro__:
        for base in vars(klass).get("__orig_bases__", ()):
            arguments = typing.get_args(base)
            if arguments and isinstance(arguments[0], type):
                return arguments[0]
    return None


def test_every_class_that_names_its_options_type_builds_that_type() -> None:
    registry = build_registry()
    named = 0
    for kind in REGISTRATION_HOOKS:
        for cls in registry.classes[kind].values():
            declared = declared_options(cls)
            if declared is not None:
                named += 1
                assert issubclass(cls.Options, declared), (
                    f"{cls.__name__}: Options is {cls.Options.__name__}, its base says {declared.__name__}"
                )
    assert named >= 4  # the file, webhook and s3 sinks and the tesseract recognizer at least


def test_every_type_a_hook_names_is_in_the_plugin_api() -> None:
    from hwdaemon import hookspecs

    hooks = [value for name, value in vars(hookspecs).items() if name.startswith("hwdaemon_") and callable(value)]
    assert hooks
    for hook in hooks:
        typing.get_type_hints(
            hook, globalns={"Any": typing.Any, **vars(plugin_api)}
        )  # NameError if a hook names a type plugins cannot import (Any: `list[type[Step[Any]]]`)
