"""The sink contract: the `Sink` base every sink subclasses, what it is given and what it returns.

A sink is built once per configured instance (`sinks.NAME` in YAML) as
`cls(options, instance_name)` and its `deliver` is called from the delivery
thread, one result at a time. It raises RetryableDeliveryError or
PermanentDeliveryError from `hwdaemon.errors`; anything else counts as retryable.
Plugins import these names from `hwdaemon.plugin_api`; the built-in `file` sink
lives in `hwdaemon.builtins.sinks`, registered like any other plugin.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from hwdaemon.model import Result


@dataclass(frozen=True, slots=True)
class Artifacts:
    """What a sink gets beside the Result: the idempotency key, the original file's name and where it is now.

    `original_path` is the scan itself (in processed/ once filed), for formats made
    from its pages (`pdf`); None where no file is at hand, or it is gone.
    """

    idempotency_key: str
    original_name: str
    original_path: Path | None = None


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """Where the result went (a path, URL or object key), for the store and the logs."""

    location: str


class SinkOptions(BaseModel):
    """Base for a sink's options: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


NAME_FIELDS = "stem, ext, date, sha8, sha256"


def check_name_template(template: str) -> str:
    """A pydantic validator's body: the template may use only NAME_FIELDS."""
    try:
        template.format(stem="s", ext="e", date="d", sha8="h", sha256="h")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"bad template {template!r}: {exc}; fields are {NAME_FIELDS}") from None
    return template


def output_name(template: str, result: Result, artifacts: Artifacts, ext: str) -> str:
    """A file name or object key for one format of a result, from a sink's template."""
    return template.format(
        stem=Path(artifacts.original_name).stem,
        ext=ext,
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
        sha8=result.sha256[:8],
        sha256=result.sha256,
    )


OptionsT = TypeVar("OptionsT", bound=BaseModel)


class Sink(ABC, Generic[OptionsT]):
    """Subclass as `class MySink(Sink[MyOptions])` with `Options = MyOptions`: `self.options` is then typed as MyOptions."""

    name: ClassVar[str]
    Options: ClassVar[type[OptionsT]] = SinkOptions  # type: ignore[assignment]  # the default for a sink without options
    options: OptionsT

    def __init__(self, options: OptionsT, instance_name: str) -> None:
        self.options = options
        self.instance_name = instance_name

    @abstractmethod
    def deliver(self, result: Result, artifacts: Artifacts) -> DeliveryReceipt: ...

    def close(self) -> None:
        """Release connections; called when the daemon stops or reloads its config."""
