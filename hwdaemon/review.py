"""Reviewers' corrections as data: apply a page's edited lines to a Result, and list what changed.

A corrected line gets confidence 1.0 — a person read it — and keeps its
polygon, so sinks still get boxes. Everything else is copied unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from hwdaemon.model import Line, PageResult, Result

HUMAN_CONFIDENCE = 1.0


@dataclass(frozen=True, slots=True)
class LineChange:
    """One line a reviewer changed: where it is, what OCR (or the previous revision) read, and what it says now."""

    page: int
    index: int
    before: str
    after: str


def apply_edits(result: Result, page_number: int, texts: Mapping[int, str], revision: int) -> Result:
    """`result` with the lines of one page replaced by `texts` (line index → text), as `revision`."""
    pages = []
    for page in result.pages:
        if page.number != page_number:
            pages.append(page)
            continue
        lines = []
        for index, line in enumerate(page.lines):
            edited = _clean(texts.get(index, line.text))
            lines.append(line if edited == line.text else Line(text=edited, confidence=HUMAN_CONFIDENCE, polygon=line.polygon))
        pages.append(replace(page, lines=tuple(lines)))
    return replace(result, pages=tuple(pages), revision=revision)


def changes_between(before: Result, after: Result) -> list[LineChange]:
    """The lines whose text differs, page by page, in reading order."""
    changes = []
    after_pages: dict[int, PageResult] = {page.number: page for page in after.pages}
    for page in before.pages:
        other = after_pages.get(page.number)
        if other is None:
            continue
        for index, (old, new) in enumerate(zip(page.lines, other.lines)):
            if old.text != new.text:
                changes.append(LineChange(page.number, index, old.text, new.text))
    return changes


def _clean(text: str) -> str:
    """A line is one line: form fields may bring CR/LF or tabs."""
    return " ".join(text.replace("\r", " ").replace("\n", " ").replace("\t", " ").split(" ")).strip()
