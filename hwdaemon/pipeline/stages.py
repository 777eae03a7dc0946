"""The four kinds of pipeline piece. Plugins subclass these; the host builds them from config.

Every piece has a `name` (what YAML calls it), an `Options` pydantic model
(validated when the config loads) and is built as `Piece(options, context)`.
Pieces run on the worker thread that owns the pipeline; they may keep state
(a loaded model) but must not share mutable state between pipelines.

A piece names its options class twice, `class Mine(Step[MineOptions])` and
`Options = MineOptions`: the first types `self.options` for its author, the
second is what the host validates and builds. Plugins import these classes
from `hwdaemon.plugin_api`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from hwdaemon.model import Box, Image, Line
from hwdaemon.pipeline.geometry import Affine, identity
from hwdaemon.pipeline.userwords import UserWords


class NoOptions(BaseModel):
    """For pieces that take no options; any key given is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PieceOptions(NoOptions):
    """Base for a piece's options: unknown keys are refused, values are frozen."""


@dataclass(frozen=True, slots=True)
class PieceContext:
    """What a piece may know about its profile: languages, its own words, and where model weights live."""

    languages: tuple[str, ...] = ("en",)
    model_dirs: tuple[Path, ...] = ()
    download_enabled: bool = False
    user_words: UserWords = field(default_factory=UserWords)  # the profile's names and jargon
    trained_model_dir: Path | None = None  # this profile's model from `train --from-corrections`, once installed


OptionsT = TypeVar("OptionsT", bound=BaseModel)


class Piece(ABC, Generic[OptionsT]):
    name: ClassVar[str]
    Options: ClassVar[type[OptionsT]] = NoOptions  # type: ignore[assignment]  # the default for a piece without options
    options: OptionsT

    def __init__(self, options: OptionsT, context: PieceContext) -> None:
        self.options = options
        self.context = context

    def check_ready(self) -> None:
        """Raise ModelMissingError naming a missing weights file; called by check-config before any work."""

    def load(self) -> None:
        """Load heavy resources (model weights) now; the daemon calls this before READY=1."""


class Step(Piece[OptionsT]):
    """A preprocessing step: image in, image out (uint8, greyscale or RGB).

    A step that moves pixels (scales, rotates, crops) overrides `apply_mapped` to
    also say where each pixel went, so results land on the original image; the
    default says nothing moved.
    """

    @abstractmethod
    def apply(self, image: Image) -> Image: ...

    def apply_mapped(self, image: Image) -> tuple[Image, Affine]:
        """The processed image and the 3×3 matrix taking a point of `image` to the processed image."""
        return self.apply(image), identity()


class Detector(Piece[OptionsT]):
    """Finds the text lines of a page, returned in reading order."""

    @abstractmethod
    def detect(self, image: Image) -> list[Box]: ...


class Recognizer(Piece[OptionsT]):
    """Reads the text inside each box; returns one Line per box, same order (cut lines with crops.line_crop, which honours a box's outline)."""

    @abstractmethod
    def recognize(self, image: Image, boxes: Sequence[Box]) -> list[Line]: ...

    def confidences(self, image: Image, boxes: Sequence[Box]) -> list[float]:
        """How sure the recognizer is of each box, without spelling it out (orientation asks this); override when cheaper."""
        return [line.confidence for line in self.recognize(image, boxes)]


class Postprocessor(Piece[OptionsT]):
    """Rewrites or filters the recognised lines of one page."""

    @abstractmethod
    def apply(self, lines: tuple[Line, ...]) -> tuple[Line, ...]: ...
