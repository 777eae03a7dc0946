"""pyspellchecker's bundled word-frequency lists (OpenSubtitles counts): one reader for all their users.

The spelling step corrects with them, the beam decoder's language model is
built from them, and `hwdaemon train --synthetic` draws its sentences from them.
For English, symspellpy also ships which words follow which (`word_pairs`).
"""

from __future__ import annotations

import gzip
import json
from importlib.resources import files
from pathlib import Path

LANGUAGES = frozenset({"ar", "de", "en", "es", "eu", "fa", "fr", "it", "lv", "nl", "pt", "ru"})


def path(language: str) -> Path:
    return Path(str(files("spellchecker") / "resources" / f"{language}.json.gz"))


def ranked(language: str) -> list[tuple[str, int]]:
    """Every word of the language's list with its count, most frequent first (ties keep the file's order)."""
    with gzip.open(path(language), "rt", encoding="utf-8") as stream:
        frequencies: dict[str, int] = json.load(stream)
    return sorted(frequencies.items(), key=lambda item: -item[1])


def word_pairs(language: str) -> list[tuple[str, int]]:
    """Two words as they follow each other in text ("of the"), with their counts; [] where no list is installed.

    Only English has one: the 242,342 word pairs symspellpy ships (counts from the
    Google Books n-grams), read from the installed package, never downloaded.
    """
    if language != "en":
        return []
    pairs = []
    for line in (
        (files("symspellpy") / "frequency_bigramdictionary_en_243_342.txt").read_text(encoding="utf-8").splitlines()
    ):
        first, second, count = line.split()
        pairs.append((f"{first} {second}", int(count)))
    return pairs
