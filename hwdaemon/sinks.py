"""Sinks: where results go. `Sink` is the base every sink plugin subclasses; `file` is built in.

A sink is built once per configured instance (`sinks.NAME` in YAML) as
`cls(options, instance_name)` and its `deliver` is called from the delivery
thread, one result at a time. It raises RetryableDeliveryError or
PermanentDeliveryError from `hwdaemon.errors`; anything else counts as retryable.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hwdaemon.errors import PermanentDeliveryError, RetryableDeliveryError
from hwdaemon.export import Format, PageSeparator, render, write_atomic
from hwdaemon.filenames import fit_name
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Result


@dataclass(frozen=True, slots=True)
class Artifacts:
    """What a sink gets beside the Result: the idempotency key and the original file's name."""

    idempotency_key: str
    original_name: str


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """Where the result went (a path, URL or object key), for the store and the logs."""

    location: str


class SinkOptions(BaseModel):
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
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        sha8=result.sha256[:8],
        sha256=result.sha256,
    )


class Sink(ABC):
    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = SinkOptions

    def __init__(self, options: BaseModel, instance_name: str) -> None:
        self.options = options
        self.instance_name = instance_name

    @abstractmethod
    def deliver(self, result: Result, artifacts: Artifacts) -> DeliveryReceipt: ...

    def close(self) -> None:
        """Release connections; called when the daemon stops or reloads its config."""


class FileSinkOptions(SinkOptions):
    path: Path
    formats: list[Format] = Field(default_factory=lambda: ["txt"], min_length=1)
    name_template: str = Field(default="{stem}.{ext}", description=f"fields: {NAME_FIELDS}")
    overwrite: bool = False
    page_separator: PageSeparator = Field(default="formfeed", description="txt: form feed between pages, or a '--- page N ---' header")

    @field_validator("name_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        return check_name_template(value)


class FileSink(Sink):
    """Writes each result as .txt/.json/.csv into a folder, atomically, never clobbering by default."""

    name = "file"
    Options = FileSinkOptions

    def deliver(self, result: Result, artifacts: Artifacts) -> DeliveryReceipt:
        options: FileSinkOptions = self.options  # type: ignore[assignment]
        written = []
        for format in options.formats:
            target = options.path / fit_name(output_name(options.name_template, result, artifacts, format), reserve_bytes=len("-12345678"))
            if not options.overwrite:
                target = _unclaimed(target, result.sha256)
            try:
                write_atomic(target, render(result, format, options.page_separator))
                _mark_owner(target, result.sha256)
            except PermissionError as exc:
                raise PermanentDeliveryError(f"cannot write {target}: {exc.strerror}; check the folder's permissions") from exc
            except OSError as exc:
                raise RetryableDeliveryError(f"cannot write {target}: {exc.strerror}") from exc
            written.append(str(target))
        return DeliveryReceipt(location=", ".join(written))


def _unclaimed(target: Path, sha256: str) -> Path:
    """`target`, or `stem-<sha8>.ext` when another document's text has that name: never clobber another scan's text.

    A file this document wrote before (a retry, or a reviewer's correction) is
    replaced. The fallback name is fixed per document for the same reason.
    """
    if not target.exists() or _owner_of(target) == sha256:
        return target
    return target.with_name(f"{target.stem}-{sha256[:8]}{target.suffix}")


OWNER_XATTR = "user.hwdaemon.sha256"


def _mark_owner(target: Path, sha256: str) -> None:
    """Tag the file with its document's sha256 (an extended attribute; some shares have none)."""
    try:
        os.setxattr(target, OWNER_XATTR, sha256.encode())
    except OSError:
        pass


def _owner_of(target: Path) -> str | None:
    """Which document wrote `target`: its xattr, else the sha256 in the JSON of the same stem."""
    try:
        return os.getxattr(target, OWNER_XATTR).decode()
    except OSError:
        pass
    try:
        return str(json.loads(target.with_suffix(".json").read_text(encoding="utf-8"))["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@hookimpl
def hwdaemon_register_sinks() -> list[type[Sink]]:
    return [FileSink]
