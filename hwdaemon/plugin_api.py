"""Everything a plugin author imports, from one place: `from hwdaemon.plugin_api import Sink, hookimpl`.

The rule: a plugin (the shipped ones in plugins/ included) imports from hwdaemon
only this module, or the same names from `hwdaemon` itself; the modules behind
these names are hwdaemon's own and may move. The hooks are specified, with
when and where each runs, in `hwdaemon.hookspecs`.

- to implement a hook: `hookimpl`;
- to add a pipeline piece: `Step`, `Detector`, `Recognizer`, `Postprocessor`
  (subclass as `Step[MyOptions]` with `Options = MyOptions`), `PieceOptions`,
  `NoOptions`, `PieceContext`, `UserWords`, `line_crop` for recognizers;
- to add a sink: `Sink` (as `Sink[MyOptions]`), `SinkOptions`, `Artifacts`,
  `DeliveryReceipt`, the name templates (`output_name`, `check_name_template`,
  `NAME_FIELDS`), the export formats (`render`, `render_bytes` and `BINARY_FORMATS` for the pdf, `Format`, `PageSeparator`, `extension`) and
  the redaction helpers, so no credential reaches a message or a log;
- what a plugin is handed: `Result`, `PageResult`, `Line`, `Box`, `Point`,
  `Image`, and `FailedJob` for `hwdaemon_job_failed`;
- what it raises: `RetryableDeliveryError`, `PermanentDeliveryError`
  (sinks), `ModelMissingError` (a piece's `check_ready`).
"""

from __future__ import annotations

from hwdaemon.errors import ModelMissingError, PermanentDeliveryError, RetryableDeliveryError
from hwdaemon.export import BINARY_FORMATS, Format, PageSeparator, extension, files_of, render, render_bytes, with_part
from hwdaemon.hookspecs import FailedJob, hookimpl
from hwdaemon.model import Box, Image, Line, PageResult, Point, Result
from hwdaemon.pipeline.crops import line_crop
from hwdaemon.pipeline.stages import (
    Detector,
    NoOptions,
    Piece,
    PieceContext,
    PieceOptions,
    Postprocessor,
    Recognizer,
    Step,
)
from hwdaemon.pipeline.userwords import UserWords
from hwdaemon.redaction import redact_url, redact_urls_in, redact_values, secrets_of_url
from hwdaemon.sinks import NAME_FIELDS, Artifacts, DeliveryReceipt, Sink, SinkOptions, check_name_template, output_name

__all__ = [
    "BINARY_FORMATS",
    "NAME_FIELDS",
    "Artifacts",
    "Box",
    "DeliveryReceipt",
    "Detector",
    "FailedJob",
    "Format",
    "Image",
    "Line",
    "ModelMissingError",
    "NoOptions",
    "PageResult",
    "PageSeparator",
    "PermanentDeliveryError",
    "Piece",
    "PieceContext",
    "PieceOptions",
    "Point",
    "Postprocessor",
    "Recognizer",
    "Result",
    "RetryableDeliveryError",
    "Sink",
    "SinkOptions",
    "Step",
    "UserWords",
    "check_name_template",
    "extension",
    "files_of",
    "hookimpl",
    "line_crop",
    "output_name",
    "redact_url",
    "redact_urls_in",
    "redact_values",
    "render",
    "render_bytes",
    "secrets_of_url",
    "with_part",
]
