"""Dictionary spelling correction for doubtful lines, with the user's own words protected.

English uses SymSpell with the frequency dictionary symspellpy ships; other
languages use pyspellchecker's bundled word-frequency lists (de, es, fr, it,
nl, pt, ru, …). EasyOCR reports confidence per line, so a line's confidence
stands for its words: only lines below `confidence_below` are touched. The
profile's own words (pipeline/userwords.py), words with digits, and short words are never
changed; the original's case pattern and surrounding punctuation are kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from pydantic import Field, model_validator

from hwdaemon.builtins import wordlists
from hwdaemon.errors import ConfigError
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Line
from hwdaemon.pipeline.stages import PieceContext, PieceOptions, Postprocessor

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
Corrector = Callable[[str], str | None]


class SpellingOptions(PieceOptions):
    confidence_below: float = Field(
        default=0.5, ge=0, le=1, description="only lines read with less confidence are corrected"
    )
    # Defaults measured on the dev set (docs/accuracy.md): distance 2 or shorter words
    # turned misread words into other wrong words and raised CER on pages.
    max_edit_distance: int = Field(default=1, ge=1, le=2)
    min_word_length: int = Field(default=6, ge=1, description="shorter words are left alone")

    @model_validator(mode="before")
    @classmethod
    def _words_belong_to_the_profile(cls, data: object) -> object:
        if isinstance(data, dict) and {"user_words", "user_words_file"} & data.keys():
            raise ValueError(
                "user_words and user_words_file are set on the profile now (the decoder uses them too), not on its spelling step"
            )
        return data


class Spelling(Postprocessor[SpellingOptions]):
    name = "spelling"
    Options = SpellingOptions

    def __init__(self, options: SpellingOptions, context: PieceContext) -> None:
        super().__init__(options, context)
        language = context.languages[0]
        if language != "en" and language not in wordlists.LANGUAGES:
            raise ConfigError(
                f"spelling: no dictionary for language {language!r}; available: en, {', '.join(sorted(wordlists.LANGUAGES))}"
            )
        self._language = language

    def load(self) -> None:
        corrector_for(self._language, self.options.max_edit_distance)

    def apply(self, lines: tuple[Line, ...]) -> tuple[Line, ...]:
        options = self.options
        correct = corrector_for(self._language, options.max_edit_distance)
        protected = {word.casefold() for word in self.context.user_words.words()}  # once per page, not per word
        fixed = []
        for line in lines:
            if line.confidence >= options.confidence_below:
                fixed.append(line)
                continue
            text = _WORD.sub(lambda match: self._fix_word(match.group(0), correct, protected), line.text)
            fixed.append(line.retexted(text))
        return tuple(fixed)

    def _fix_word(self, word: str, correct: Corrector, protected: set[str]) -> str:
        if len(word) < self.options.min_word_length:
            return word
        if word.casefold() in protected:
            return word
        suggestion = correct(word.casefold())
        return word if suggestion is None else _same_case(word, suggestion)


def _same_case(original: str, replacement: str) -> str:
    if original.isupper():
        return replacement.upper()
    if original[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


@functools.cache
def corrector_for(language: str, max_edit_distance: int) -> Corrector:
    """A function word → better word (None when the word is known or nothing is close), cached per language."""
    if language == "en":
        return _symspell(max_edit_distance)
    return _pyspellchecker(language, max_edit_distance)


def _symspell(max_edit_distance: int) -> Corrector:
    from importlib.resources import files

    from symspellpy import SymSpell, Verbosity

    speller = SymSpell(max_dictionary_edit_distance=max_edit_distance)
    speller.load_dictionary(
        str(files("symspellpy") / "frequency_dictionary_en_82_765.txt"), term_index=0, count_index=1
    )

    def correct(word: str) -> str | None:
        suggestions = speller.lookup(word, Verbosity.TOP, max_edit_distance=max_edit_distance, include_unknown=False)
        if not suggestions or suggestions[0].distance == 0:
            return None
        return str(suggestions[0].term)

    return correct


def _pyspellchecker(language: str, max_edit_distance: int) -> Corrector:
    from spellchecker import SpellChecker

    checker = SpellChecker(language=language, distance=max_edit_distance)

    def correct(word: str) -> str | None:
        if word in checker:
            return None
        suggestion = checker.correction(word)
        return suggestion if suggestion and suggestion != word else None

    return correct


@hookimpl
def hwdaemon_register_postprocessors() -> list[type[Postprocessor[Any]]]:
    return [Spelling]
