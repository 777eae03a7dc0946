"""The OCR pipeline: preprocess → detect → recognize → postprocess, built from a profile.

A Pipeline knows nothing about files or the daemon: it takes a decoded
`Document` and returns a `Result` with per-stage timings. Build one per profile
and reuse it; the heavy EasyOCR readers behind it are shared process-wide.
"""

from __future__ import annotations

import ctypes
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

import numpy as np

from hwdaemon.config import Config, ModelsConfig, ProfileConfig
from hwdaemon.model import Box, Document, Line, PageResult, Result
from hwdaemon.pipeline.geometry import Affine, is_identity, map_points
from hwdaemon.pipeline.orientation import detect_orientation, rotate_upright
from hwdaemon.pipeline.stages import Detector, PieceContext, Postprocessor, Recognizer, Step
from hwdaemon.pipeline.userwords import UserWords
from hwdaemon.plugins import Registry

STAGES = ("preprocess", "detect", "recognize", "postprocess")


@dataclass(frozen=True, slots=True)
class Pipeline:
    profile_name: str
    steps: tuple[Step[Any], ...]
    detector: Detector[Any]
    recognizer: Recognizer[Any]
    postprocessors: tuple[Postprocessor[Any], ...]
    orientation: Literal["auto", "off"] = "off"  # the profile's `orientation`; auto: pages are turned upright first

    @classmethod
    def from_profile(cls, name: str, profile: ProfileConfig, models: ModelsConfig, registry: Registry) -> Pipeline:
        context = PieceContext(
            languages=tuple(profile.languages),
            model_dirs=tuple(models.dirs),
            download_enabled=models.download_enabled,
            user_words=UserWords(profile.user_words, profile.user_words_file),
            trained_model_dir=models.trained_dir / name / "handwriting" if models.trained_dir else None,
        )
        context.user_words.words()  # an unreadable words file is a config error now, not at the first job
        return cls(
            profile_name=name,
            steps=tuple(registry.create("step", step, context) for step in profile.preprocess),
            detector=registry.create("detector", profile.detector, context),
            recognizer=registry.create("recognizer", profile.recognizer, context),
            postprocessors=tuple(registry.create("postprocessor", step, context) for step in profile.postprocess),
            orientation=profile.orientation,
        )

    def check_ready(self) -> None:
        """Raise ModelMissingError if the detector's or the recognizer's weights are not on disk."""
        self.detector.check_ready()
        self.recognizer.check_ready()

    def load(self) -> None:
        """Load every piece's models now rather than on the first document."""
        for piece in (*self.steps, self.detector, self.recognizer, *self.postprocessors):
            piece.load()

    def run(self, document: Document) -> Result:
        timings: dict[str, float] = defaultdict(float)
        pages = []
        for page in document.pages:
            original_height, original_width = page.image.shape[:2]
            with _timed(timings, "preprocess"):
                orientation = detect_orientation(page.image, self.recognizer) if self.orientation == "auto" else 0
                image, to_processed = rotate_upright(page.image, orientation)  # the first geometric stage
                for step in self.steps:
                    image, moved = step.apply_mapped(image)
                    to_processed = moved @ to_processed
            with _timed(timings, "detect"):
                boxes = self.detector.detect(image)
            with _timed(timings, "recognize"):
                lines = tuple(
                    _with_baseline(line, box)
                    for line, box in zip(self.recognizer.recognize(image, boxes), boxes, strict=True)
                )
            with _timed(timings, "postprocess"):
                for postprocessor in self.postprocessors:
                    lines = postprocessor.apply(lines)
            if not is_identity(to_processed):  # the page moved: lines back onto the original
                to_original = cast(Affine, np.linalg.inv(to_processed))
                lines = tuple(_mapped(line, to_original, original_width, original_height) for line in lines)
            pages.append(
                PageResult(
                    number=page.number,
                    width=original_width,
                    height=original_height,
                    lines=lines,
                    dpi=page.dpi,
                    orientation=orientation,
                )
            )
            del image, boxes
            release_freed_memory()
        return Result(
            source=document.source,
            sha256=document.sha256,
            profile=self.profile_name,
            pages=tuple(pages),
            timings={stage: timings[stage] for stage in STAGES},
        )


def _with_baseline(line: Line, box: Box) -> Line:
    """The detector's baseline for the line read in its box, unless the recognizer gave one."""
    return line if line.baseline or not box.baseline else replace(line, baseline=box.baseline)


def _mapped(line: Line, matrix: Affine, width: int, height: int) -> Line:
    """A line of the processed page in the original image's pixels (and inside it)."""
    return replace(
        line,
        polygon=map_points(matrix, line.polygon, width, height),
        baseline=map_points(matrix, line.baseline, width, height),
        words=tuple(replace(word, polygon=map_points(matrix, word.polygon, width, height)) for word in line.words),
    )


def ready_pipeline(config: Config, registry: Registry, profile: str) -> Pipeline:
    """Profile `profile`'s pipeline with its weights on disk (ModelMissingError, 69, otherwise)."""
    pipeline = Pipeline.from_profile(profile, config.profile(profile), config.models, registry)
    pipeline.check_ready()
    return pipeline


def check_profiles_ready(config: Config, registry: Registry) -> None:
    """Build every profile and check its weights are on disk: what `check-config`, `run` and a reload require."""
    for name in config.profiles:
        ready_pipeline(config, registry, name)


def release_freed_memory() -> None:
    """Hand the memory a page's arrays freed back to the system.

    glibc keeps freed blocks for reuse, and after pages of different sizes they no longer
    fit the next page's arrays: a daemon's RSS crept from 1.1 to 1.3 GB over six pages
    and stayed there. malloc_trim returns them (about a millisecond); elsewhere, no-op.
    """
    if _LIBC_MALLOC_TRIM is not None:
        _LIBC_MALLOC_TRIM(0)


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (musl, macOS)
        return None


_LIBC_MALLOC_TRIM = _find_malloc_trim()


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] += time.perf_counter() - started
