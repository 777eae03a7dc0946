"""The plugin manager and the registry of pieces it yields.

Load order: built-ins, then every entry point in the group "hwdaemon". A plugin
that fails to import is recorded in `broken` and the others still load
(pluggy's `load_setuptools_entrypoints` would stop at the first failure).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

import pluggy
from pydantic import BaseModel, ValidationError

from hwdaemon import hookspecs
from hwdaemon.config import PieceConfig, describe_options_error
from hwdaemon.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from hwdaemon.yamlfile import KeyPath, YamlDocument

BUILTIN_PLUGINS = (
    "hwdaemon.builtins.steps",
    "hwdaemon.builtins.detectors.rules",
    "hwdaemon.builtins.detectors.craft",
    "hwdaemon.builtins.detectors.linenet",
    "hwdaemon.builtins.recognizers.easyocr",
    "hwdaemon.builtins.recognizers.handwriting",
    "hwdaemon.builtins.postprocessors.tidy",
    "hwdaemon.builtins.postprocessors.spelling",
    "hwdaemon.builtins.sinks",
)

Kind = Literal["step", "detector", "recognizer", "postprocessor", "sink"]
REGISTRATION_HOOKS: dict[Kind, str] = {
    "step": "hwdaemon_register_steps",
    "detector": "hwdaemon_register_detectors",
    "recognizer": "hwdaemon_register_recognizers",
    "postprocessor": "hwdaemon_register_postprocessors",
    "sink": "hwdaemon_register_sinks",
}


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One loaded plugin as `hwdaemon plugins` shows it."""

    name: str
    version: str | None
    is_builtin: bool
    registered: dict[str, list[str]]


@dataclass
class Registry:
    """Every piece class by kind and name, the plugins they came from, and the broken ones."""

    manager: pluggy.PluginManager
    classes: dict[str, dict[str, type[Any]]] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> type[Any]:
        try:
            return self.classes[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.classes.get(kind, {}))) or "none"
            raise PluginError(f"no {kind} named {name!r} is installed; installed: {known}") from None

    def validate(self, kind: str, piece: PieceConfig, path: KeyPath, document: YamlDocument | None) -> BaseModel:
        """Check `piece` names an installed class and its options fit that class's Options (config.PieceValidator)."""
        try:
            cls = self.get(kind, piece.type)
        except PluginError as exc:
            where = document.where((*path, "type")) if document else str(path)
            raise ConfigError(f"{where}: {exc}") from None
        try:
            options: BaseModel = cls.Options(**piece.options)
        except ValidationError as exc:
            raise ConfigError(describe_options_error(exc, path, document)) from exc
        return options

    def create(self, kind: str, piece: PieceConfig, context: Any) -> Any:
        cls = self.get(kind, piece.type)
        return cls(cls.Options(**piece.options), context)


def get_plugin_manager() -> pluggy.PluginManager:
    """Built-ins first, then entry points; broken entry points are kept in `manager.broken`."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        manager.register(import_module(module_name), name=module_name)
    broken: dict[str, str] = {}
    for entry_point in entry_points(group=hookspecs.PROJECT_NAME):
        if manager.get_plugin(entry_point.name) is not None:
            continue
        try:
            manager.register(entry_point.load(), name=entry_point.name)
        except Exception as exc:  # a broken plugin must not take the others down
            broken[entry_point.name] = f"{type(exc).__name__}: {exc}"
    manager.check_pending()
    manager.broken = broken  # type: ignore[attr-defined]
    return manager


def build_registry(manager: pluggy.PluginManager | None = None) -> Registry:
    """Ask every plugin what it registers and index the classes by kind and name."""
    manager = manager or get_plugin_manager()
    registry = Registry(manager=manager, broken=dict(getattr(manager, "broken", {})))
    per_plugin: dict[str, dict[str, list[str]]] = {}
    for kind, hook_name in REGISTRATION_HOOKS.items():
        by_name = registry.classes.setdefault(kind, {})
        hook = getattr(manager.hook, hook_name)
        # get_hookimpls() lists in registration order: built-ins first, so they win a name clash.
        for implementation in hook.get_hookimpls():
            for cls in implementation.function() or []:
                by_name.setdefault(cls.name, cls)
                per_plugin.setdefault(implementation.plugin_name, {}).setdefault(kind, []).append(cls.name)
    distributions = {ep.name: ep.dist for ep in entry_points(group=hookspecs.PROJECT_NAME)}
    for plugin_name, _ in manager.list_name_plugin():
        distribution = distributions.get(plugin_name)
        registry.plugins.append(
            PluginInfo(
                name=plugin_name,
                version=distribution.version if distribution else None,
                is_builtin=plugin_name in BUILTIN_PLUGINS,
                registered=per_plugin.get(plugin_name, {}),
            )
        )
    return registry
