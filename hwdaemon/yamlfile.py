"""YAML text → plain data plus the line of every key, so errors can point at the line.

`${VAR}` and `${VAR:-default}` in string values are replaced from the environment
here, before validation, so secrets never have to be written into the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import yaml

from hwdaemon.errors import ConfigError

KeyPath = tuple[str | int, ...]
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """The parsed data and, for each key path, the 1-based line it was written on."""

    source: str
    data: Any
    lines: dict[KeyPath, int]

    def where(self, path: KeyPath) -> str:
        """`file:line key.path` for the deepest part of `path` that was written in the file."""
        for depth in range(len(path), -1, -1):
            line = self.lines.get(path[:depth])
            if line is not None:
                return f"{self.source}:{line} {format_key(path)}"
        return f"{self.source} {format_key(path)}"


def format_key(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def parse_yaml(text: str, source: str) -> YamlDocument:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(
            _describe_syntax_error(exc, source)
        ) from None  # PyYAML's own text quotes the line: maybe a secret
    lines: dict[KeyPath, int] = {}
    data = {} if root is None else _to_data(root, (), lines, source)
    return YamlDocument(source=source, data=data, lines=lines)


def _describe_syntax_error(exc: yaml.YAMLError, source: str) -> str:
    """Where and what, never the text around it: the line PyYAML would quote may hold a password."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{source}: not valid YAML"
    mark = exc.problem_mark
    message = f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {exc.problem}"
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} that starts on line {exc.context_mark.line + 1})"
    return message


def _to_data(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], source: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in mapping:
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1} {format_key((*path, key))}: duplicate key")
            lines[(*path, key)] = key_node.start_mark.line + 1
            mapping[key] = _to_data(value_node, (*path, key), lines, source)
        return mapping
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, (*path, index), lines, source) for index, item in enumerate(node.value)]
    value = yaml.SafeLoader(  # a scalar: let PyYAML resolve ints, bools, nulls as usual
        ""
    ).construct_object(node)
    if isinstance(value, str):
        return _substitute_environment(value, f"{source}:{node.start_mark.line + 1} {format_key(path)}")
    return value


def _substitute_environment(value: str, where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set; export it or write ${{{name}:-default}}")

    return _ENV_REFERENCE.sub(replace, value)
