"""The objects that flow through hwdaemon: a Document goes in, a Result comes out.

`Document` holds decoded pages (numpy arrays) and never leaves the process.
`Result` is plain data with a schema version: it is stored, exported and sent
to sinks, so it round-trips through `to_dict` / `from_dict` without loss.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

SCHEMA_VERSION = 2  # 2: coordinates in the original image, words, baselines, dpi, orientation
READABLE_SCHEMA_VERSIONS = (1, 2)  # 1: stored by earlier versions, coordinates in the processed page

Point = tuple[int, int]
Coordinates = Literal["original", "processed"]  # which image a Result's polygons are in
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded page: `image` is uint8, greyscale (H, W) or RGB (H, W, 3)."""

    number: int
    image: Image
    dpi: float | None = (
        None  # the page's resolution, when the file says (a PDF's render resolution, an image's metadata)
    )


@dataclass(frozen=True, slots=True)
class Document:
    """An input file: where it came from, its sha256 and its pages in order.

    `pages` may decode each page as it is reached (inputs.open_document does), so
    iterate it once, in order, and let each page go before taking the next.
    """

    source: str
    sha256: str
    pages: Iterable[Page]


@dataclass(frozen=True, slots=True)
class Box:
    """A text line's region in page pixels, as detectors report lines.

    `outline`, when the detector knows it, is the line's own polygon inside the box:
    recognizers read the box with everything outside the outline painted as paper
    (pipeline/crops.py), so the ascenders and descenders of the lines above and
    below are not read into this one. Lines then carry the outline as their polygon.
    """

    x: int
    y: int
    width: int
    height: int
    outline: tuple[Point, ...] = ()
    baseline: tuple[Point, ...] = ()  # left to right, when the detector knows it

    @property
    def polygon(self) -> tuple[Point, ...]:
        if self.outline:
            return self.outline
        right, bottom = self.x + self.width, self.y + self.height
        return ((self.x, self.y), (right, self.y), (right, bottom), (self.x, bottom))


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a line: its text, confidence (0..1) and outline, in the same frame as its line."""

    text: str
    confidence: float
    polygon: tuple[Point, ...]

    @property
    def box(self) -> Box:
        return _bounds(self.polygon)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "polygon": [list(point) for point in self.polygon],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Word:
        return cls(
            text=str(data["text"]),
            confidence=float(data["confidence"]),
            polygon=tuple((int(x), int(y)) for x, y in data["polygon"]),
        )


@dataclass(frozen=True, slots=True)
class Line:
    """One recognised line: its text, the recogniser's confidence (0..1), where it is, its baseline and words.

    `baseline` runs left to right along the foot of the letters (ALTO, PAGE and
    eScriptorium want it); `words` split `text` on spaces, each with its own box.
    Both may be empty for lines read by a recogniser that does not know them.
    """

    text: str
    confidence: float
    polygon: tuple[Point, ...]
    baseline: tuple[Point, ...] = ()
    words: tuple[Word, ...] = ()

    @property
    def box(self) -> Box:
        return _bounds(self.polygon)

    def retexted(self, text: str, confidence: float | None = None) -> Line:
        """The same line spelt `text` (a post-processor's or a reviewer's fix): place and baseline kept.

        Word boxes stay when the words are still as many, each taking its new spelling.
        When words were joined or split ("evice ;" → "evice;"), each new word is boxed over
        the old letters it came from (matched by difflib, each old word's box shared among
        its letters); a line whose old words are unknown keeps none.
        """
        words = text.split()
        if len(words) == len(self.words):
            kept = tuple(replace(word, text=new) for word, new in zip(self.words, words, strict=True))
        else:
            kept = _rewrapped(self.text, self.words, text)
        return replace(self, text=text, confidence=self.confidence if confidence is None else confidence, words=kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "confidence": round(self.confidence, 4),
            "polygon": [list(point) for point in self.polygon],
            "baseline": [list(point) for point in self.baseline],
            "words": [word.to_dict() for word in self.words],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Line:
        return cls(
            text=str(data["text"]),
            confidence=float(data["confidence"]),
            polygon=tuple((int(x), int(y)) for x, y in data["polygon"]),
            baseline=tuple((int(x), int(y)) for x, y in data.get("baseline", ())),
            words=tuple(Word.from_dict(word) for word in data.get("words", ())),
        )


@dataclass(frozen=True, slots=True)
class PageResult:
    """The lines read on one page, in reading order, and the page's size in pixels.

    `width`×`height` is the page in the frame its Result's `coordinates` names (the
    original image, upright as viewers show it, for schema 2). `dpi` is the page's
    resolution when known (a PDF's render resolution, an image's own metadata), so a
    PDF can be written at the original's physical size. `orientation` is how the page
    arrived: 0, 90, 180 or 270 degrees clockwise from upright (undone before reading).
    `not_text` are regions a reviewer marked as no text (a stamp, a drawing): kept with
    their outline and what was read there, but outside `lines`, so no export, text or
    recognizer training sees them.
    """

    number: int
    width: int
    height: int
    lines: tuple[Line, ...]
    dpi: float | None = None
    orientation: int = 0
    not_text: tuple[Line, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "width": self.width,
            "height": self.height,
            "dpi": self.dpi,
            "orientation": self.orientation,
            "text": self.text,
            "lines": [line.to_dict() for line in self.lines],
        } | ({"not_text": [line.to_dict() for line in self.not_text]} if self.not_text else {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PageResult:
        dpi = data.get("dpi")
        return cls(
            number=int(data["number"]),
            width=int(data["width"]),
            height=int(data["height"]),
            lines=tuple(Line.from_dict(line) for line in data["lines"]),
            dpi=None if dpi is None else float(dpi),
            orientation=int(data.get("orientation", 0)),
            not_text=tuple(Line.from_dict(line) for line in data.get("not_text", ())),
        )


@dataclass(frozen=True, slots=True)
class Result:
    """What the pipeline read from one Document; `timings` are seconds per stage.

    `revision` is 0 for what the pipeline read and N for a reviewer's Nth correction.
    """

    source: str
    sha256: str
    profile: str
    pages: tuple[PageResult, ...]
    timings: Mapping[str, float] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    revision: int = 0
    coordinates: Coordinates = "original"

    @property
    def text(self) -> str:
        """All pages' text; pages are separated by a form feed, as printers expect."""
        return "\n\f\n".join(page.text for page in self.pages)

    @property
    def lines(self) -> tuple[Line, ...]:
        return tuple(line for page in self.pages for line in page.lines)

    @property
    def mean_confidence(self) -> float | None:
        lines = self.lines
        return sum(line.confidence for line in lines) / len(lines) if lines else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "source": self.source,
            "sha256": self.sha256,
            "profile": self.profile,
            "revision": self.revision,
            "coordinates": self.coordinates,
            "text": self.text,
            "mean_confidence": _rounded(self.mean_confidence),
            "timings": {stage: round(seconds, 4) for stage, seconds in self.timings.items()},
            "pages": [page.to_dict() for page in self.pages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        version = int(data.get("schema_version", 0))
        if version not in READABLE_SCHEMA_VERSIONS:
            raise ValueError(f"result schema_version {version} is not one of {READABLE_SCHEMA_VERSIONS}")
        return cls(
            source=str(data["source"]),
            sha256=str(data["sha256"]),
            profile=str(data["profile"]),
            pages=tuple(PageResult.from_dict(page) for page in data["pages"]),
            timings={str(k): float(v) for k, v in data.get("timings", {}).items()},
            schema_version=version,
            revision=int(data.get("revision", 0)),
            coordinates="processed"
            if data.get("coordinates", "processed" if version == 1 else "original") == "processed"
            else "original",
        )


def _rewrapped(old_text: str, old_words: tuple[Word, ...], new_text: str) -> tuple[Word, ...]:
    """New words boxed over the old letters they match: each old word's box is shared evenly among its letters."""
    if not old_words or len(old_text.split()) != len(old_words):
        return ()
    letters: dict[int, tuple[float, float, Word]] = {}  # old text index → its x range and the word it is in
    position = 0
    for word in old_words:
        start = old_text.index(word.text, position)
        box, count = word.box, len(word.text)
        for offset in range(count):
            letters[start + offset] = (
                box.x + box.width * offset / count,
                box.x + box.width * (offset + 1) / count,
                word,
            )
        position = start + count
    matched: dict[int, int] = {}  # new text index → old text index
    for tag, old_start, old_end, new_start, new_end in difflib.SequenceMatcher(None, old_text, new_text).get_opcodes():
        if tag in ("equal", "replace"):
            for new_index in range(new_start, new_end):
                span = max(1, new_end - new_start)
                matched[new_index] = old_start + min(
                    old_end - old_start - 1, (new_index - new_start) * (old_end - old_start) // span
                )
    words = []
    for found in re.finditer(r"\S+", new_text):
        sources = [
            letters[matched[index]] for index in range(found.start(), found.end()) if matched.get(index) in letters
        ]
        if not sources:
            return ()
        left, right = round(min(x for x, _, _ in sources)), round(max(x for _, x, _ in sources))
        boxes = [word.box for _, _, word in sources]
        top, bottom = min(box.y for box in boxes), max(box.y + box.height for box in boxes)
        confidence = sum(word.confidence for _, _, word in sources) / len(sources)
        right = max(right, left + 1)
        words.append(Word(found.group(), confidence, ((left, top), (right, top), (right, bottom), (left, bottom))))
    return tuple(words)


def _bounds(polygon: tuple[Point, ...]) -> Box:
    xs = [x for x, _ in polygon]
    ys = [y for _, y in polygon]
    return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
