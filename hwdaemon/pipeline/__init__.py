"""The OCR pipeline: preprocess → detect → recognize → postprocess, built from a profile.

A Pipeline knows nothing about files or the daemon: it takes a decoded
`Document` and returns a `Result` with per-stage timings. Build one per profile
and reuse it; the heavy EasyOCR readers behind it are shared process-wide.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hwdaemon.config import ModelsConfig, ProfileConfig
from hwdaemon.model import Document, PageResult, Result
from hwdaemon.pipeline.stages import Detector, PieceContext, Postprocessor, Recognizer, Step
from hwdaemon.pipeline.userwords import UserWords
from hwdaemon.plugins import Registry

STAGES = ("preprocess", "detect", "recognize", "postprocess")


@dataclass(frozen=True, slots=True)
class Pipeline:
    profile_name: str
    steps: tuple[Step, ...]
    detector: Detector
    recognizer: Recognizer
    postprocessors: tuple[Postprocessor, ...]

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
            with _timed(timings, "preprocess"):
                image = page.image
                for step in self.steps:
                    image = step.apply(image)
            with _timed(timings, "detect"):
                boxes = self.detector.detect(image)
            with _timed(timings, "recognize"):
                lines = tuple(self.recognizer.recognize(image, boxes))
            with _timed(timings, "postprocess"):
                for postprocessor in self.postprocessors:
                    lines = postprocessor.apply(lines)
            height, width = image.shape[:2]
            pages.append(PageResult(number=page.number, width=width, height=height, lines=lines))
        return Result(
            source=document.source,
            sha256=document.sha256,
            profile=self.profile_name,
            pages=tuple(pages),
            timings={stage: timings[stage] for stage in STAGES},
        )


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] += time.perf_counter() - started
