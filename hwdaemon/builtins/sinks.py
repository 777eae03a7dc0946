"""The built-in `file` sink, registered through `hwdaemon_register_sinks` like any sink plugin.

It writes each result into a folder and never clobbers another document's text;
the sink contract it implements is `hwdaemon.sinks`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

from pydantic import Field, field_validator

from hwdaemon.errors import PermanentDeliveryError, PluginError, RetryableDeliveryError
from hwdaemon.export import (
    BINARY_FORMATS,
    Format,
    PageSeparator,
    extension,
    files_of,
    render_bytes,
    with_part,
    write_atomic,
)
from hwdaemon.filenames import fit_name, split_extension
from hwdaemon.formats.page import MultiPageError
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Result
from hwdaemon.searchable_pdf import UnusableOriginalError
from hwdaemon.sinks import NAME_FIELDS, Artifacts, DeliveryReceipt, Sink, SinkOptions, check_name_template, output_name


class FileSinkOptions(SinkOptions):
    path: Path
    formats: list[Format] = Field(default_factory=lambda: cast(list[Format], ["txt"]), min_length=1)
    name_template: str = Field(default="{stem}.{ext}", description=f"fields: {NAME_FIELDS}")
    overwrite: bool = False
    page_separator: PageSeparator = Field(
        default="formfeed", description="txt: form feed between pages, or a '--- page N ---' header"
    )

    @field_validator("name_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        return check_name_template(value)


class FileSink(Sink[FileSinkOptions]):
    """Writes each result as .txt/.json/.csv/.alto.xml/.page.xml/.hocr/.pdf into a folder, atomically, never clobbering by default."""

    name = "file"
    Options = FileSinkOptions

    def deliver(self, result: Result, artifacts: Artifacts) -> DeliveryReceipt:
        options = self.options
        written = []
        files = [(format, part, document) for format in options.formats for part, document in files_of(result, format)]
        for format, part, document in files:
            name = with_part(output_name(options.name_template, result, artifacts, extension(format)), part)
            target = options.path / fit_name(name, reserve_bytes=len("-12345678"))
            if not options.overwrite:
                target = _unclaimed(target, result.sha256)
            if format in BINARY_FORMATS and artifacts.original_path is None:  # maybe filed this instant: try again
                raise RetryableDeliveryError(
                    f"cannot write {target}: the {format} format is made from the original scan, and "
                    f"{artifacts.original_name} is not there (deleted, `after: delete`, or moved out of processed/)"
                )
            try:
                content = render_bytes(document, format, options.page_separator, artifacts.original_path)
            except (UnusableOriginalError, PluginError, MultiPageError) as exc:
                raise PermanentDeliveryError(f"cannot write {target}: {exc}") from exc
            try:
                write_atomic(target, content)
                _mark_owner(target, result.sha256)
            except PermissionError as exc:
                raise PermanentDeliveryError(
                    f"cannot write {target}: {exc.strerror}; check the folder's permissions"
                ) from exc
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
    stem, extension = split_extension(target.name)
    return target.with_name(f"{stem}-{sha256[:8]}{extension}")


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
        sibling = target.with_name(split_extension(target.name)[0] + ".json")
        return str(json.loads(sibling.read_text(encoding="utf-8"))["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@hookimpl
def hwdaemon_register_sinks() -> list[type[Sink[Any]]]:
    return [FileSink]
