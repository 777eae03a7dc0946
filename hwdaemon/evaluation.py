"""`hwdaemon eval`: how well and how fast profiles read a labelled set of scans.

The manifest is JSON Lines: `{"image": path relative to the manifest, "text": truth,
"kind": "line"|"page"|…, "lang": …}` (the format of ../shared/data/manifest.jsonl).
Texts are compared after Unicode NFC, ’→' and whitespace collapsing; CER and WER
are micro-averaged (total edits / total reference length) per kind and language.
"""

from __future__ import annotations

import json
import resource
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

from hwdaemon.config import InputsConfig
from hwdaemon.errors import ConfigError, InputFileError
from hwdaemon.inputs import open_document
from hwdaemon.model import Document
from hwdaemon.pipeline import Pipeline

_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


@dataclass(frozen=True, slots=True)
class ManifestItem:
    id: str
    image: Path
    text: str
    kind: str
    lang: str


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).translate(_QUOTES).split())


def read_manifest(path: Path) -> list[ManifestItem]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            items.append(
                ManifestItem(
                    id=str(data.get("id", data["image"])),
                    image=path.parent / data["image"],
                    text=str(data["text"]),
                    kind=str(data.get("kind", "line")),
                    lang=str(data.get("lang", "")),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{number}: not a manifest line ({exc}); needs at least image and text") from exc
    return items


@dataclass
class Tally:
    """Edit counts for one (profile, kind, lang) group."""

    items: int = 0
    failed: int = 0
    char_edits: int = 0
    char_edits_ignoring_case: int = 0
    chars: int = 0
    word_edits: int = 0
    words: int = 0
    seconds: float = 0.0

    def add(self, truth: str, read: str, seconds: float) -> None:
        reference, hypothesis = normalise(truth), normalise(read)
        self.items += 1
        self.char_edits += Levenshtein.distance(reference, hypothesis)
        self.char_edits_ignoring_case += Levenshtein.distance(reference.casefold(), hypothesis.casefold())
        self.chars += len(reference)
        self.word_edits += Levenshtein.distance(reference.split(), hypothesis.split())
        self.words += len(reference.split())
        self.seconds += seconds

    def row(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "failed": self.failed,
            "cer": round(self.char_edits / max(1, self.chars), 4),
            "cer_ignoring_case": round(self.char_edits_ignoring_case / max(1, self.chars), 4),
            "wer": round(self.word_edits / max(1, self.words), 4),
            "seconds_per_item": round(self.seconds / max(1, self.items), 3),
        }


@dataclass
class ProfileReport:
    profile: str
    groups: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    peak_rss_mb: float = 0.0
    load_seconds: float = 0.0  # models loaded before the first item, so seconds per item are the steady state
    readings: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        total = Tally()
        for tally in self.groups.values():
            for name in ("items", "failed", "char_edits", "char_edits_ignoring_case", "chars", "word_edits", "words"):
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            total.seconds += tally.seconds
        return {
            "profile": self.profile,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "load_seconds": round(self.load_seconds, 2),
            "all": total.row(),
            "groups": [
                {"kind": kind, "lang": lang, **tally.row()} for (kind, lang), tally in sorted(self.groups.items())
            ],
        }


def evaluate(
    pipeline: Pipeline, items: Iterable[ManifestItem], limits: InputsConfig, turned_degrees: int = 0
) -> ProfileReport:
    """Read every item with `pipeline`, loaded first; unreadable images count as empty readings (and failures).

    `turned_degrees` (clockwise) turns every page first, as a scanner fed it sideways or upside down would.
    """
    report = ProfileReport(profile=pipeline.profile_name)
    started = time.perf_counter()
    pipeline.load()
    report.load_seconds = time.perf_counter() - started
    for item in items:
        tally = report.groups[(item.kind, item.lang)]
        started = time.perf_counter()
        try:
            with open_document(item.image, limits) as document:
                text = pipeline.run(turned(document, turned_degrees)).text.replace("\f", "")
        except InputFileError:
            text = ""
            tally.failed += 1
        tally.add(item.text, text, time.perf_counter() - started)
        report.readings.append({"id": item.id, "truth": item.text, "read": text})
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def turned(document: Document, degrees_clockwise: int) -> Document:
    """`document` with each page turned `degrees_clockwise` (a multiple of 90): what orientation detection must undo."""
    if degrees_clockwise % 360 == 0:
        return document
    quarters = -degrees_clockwise // 90
    pages = (replace(page, image=np.ascontiguousarray(np.rot90(page.image, quarters))) for page in document.pages)
    return Document(source=document.source, sha256=document.sha256, pages=pages)


def format_table(reports: list[ProfileReport]) -> str:
    header = f"{'profile':<16} {'kind':<6} {'lang':<5} {'items':>5} {'CER':>7} {'CER(ci)':>8} {'WER':>7} {'s/item':>7}"
    lines = [header, "-" * len(header)]
    for report in reports:
        document = report.to_dict()
        for group in [*document["groups"], {"kind": "all", "lang": "", **document["all"]}]:
            lines.append(
                f"{report.profile:<16} {group['kind']:<6} {group['lang']:<5} {group['items']:>5} "
                f"{group['cer']:>7.1%} {group['cer_ignoring_case']:>8.1%} {group['wer']:>7.1%} {group['seconds_per_item']:>7.2f}"
            )
        lines.append(
            f"{report.profile:<16} loading {document['load_seconds']:.1f} s (not in s/item), peak RSS {document['peak_rss_mb']:.0f} MB (process, cumulative)"
        )
    return "\n".join(lines)
