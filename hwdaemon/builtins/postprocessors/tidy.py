"""Post-processors that tidy recognised lines: whitespace, and lines the recognizer doubts (spelling is spelling.py)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Line
from hwdaemon.pipeline.stages import NoOptions, PieceOptions, Postprocessor

_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r" +([,.;:!?)\]])")


class NormalizeWhitespace(Postprocessor[NoOptions]):
    """Collapse runs of spaces, trim ends, drop empty lines, and remove spaces before , . ; : ! ? )."""

    name = "normalize_whitespace"

    def apply(self, lines: tuple[Line, ...]) -> tuple[Line, ...]:
        tidy = []
        for line in lines:
            text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", line.text).strip())
            if text:
                tidy.append(line.retexted(text))
        return tuple(tidy)


class MinConfidenceOptions(PieceOptions):
    threshold: float = Field(default=0.05, ge=0, le=1)


class MinConfidence(Postprocessor[MinConfidenceOptions]):
    """Drop lines the recognizer is nearly sure are not text (smudges, stamps, ruling)."""

    name = "min_confidence"
    Options = MinConfidenceOptions

    def apply(self, lines: tuple[Line, ...]) -> tuple[Line, ...]:
        threshold = self.options.threshold
        return tuple(line for line in lines if line.confidence >= threshold)


@hookimpl
def hwdaemon_register_postprocessors() -> list[type[Postprocessor[Any]]]:
    return [NormalizeWhitespace, MinConfidence]
