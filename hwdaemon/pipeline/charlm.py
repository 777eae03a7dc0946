"""A character n-gram model of words, for the beam-search decoder: which letter sequences a language spells.

Built from pyspellchecker's word-frequency list for the language (already installed,
OpenSubtitles counts), so it needs no download and no corpus shipped with us. It
models letters inside words only: every character that is not a letter or an
apostrophe is a word boundary, and a word's first letter is predicted from the
boundary. Letters are folded to lower case (a capital is not less likely).
Smoothing is interpolated Witten–Bell, stored in backoff form: one dictionary of
seen n-grams and one of backoff weights, as an ARPA file would hold them.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources import files

from hwdaemon.errors import ConfigError

BOUNDARY = "#"
LM_LANGUAGES = frozenset({"ar", "de", "en", "es", "eu", "fa", "fr", "it", "lv", "nl", "pt", "ru"})


def symbol(character: str) -> str:
    """The model's symbol for a character: a lower-case letter, an apostrophe, or the boundary."""
    if character.isalpha():
        return character.lower()
    if character in "'’":
        return "'"
    return BOUNDARY


@dataclass(frozen=True, slots=True)
class CharLanguageModel:
    order: int
    log_probabilities: dict[str, float]  # context + symbol → ln P, for every seen n-gram
    log_backoffs: dict[str, float]  # context → ln of the mass left to shorter contexts
    log_floor: float  # ln P of a symbol never seen at all
    _memo: dict[tuple[str, str], float] = field(default_factory=dict, repr=False, compare=False)

    def log_probability(self, context: str, next_symbol: str) -> float:
        """ln P(next_symbol | the last order-1 symbols of context); context holds symbols only."""
        context = context[len(context) - self.order + 1 :] if len(context) >= self.order else context
        key = (context, next_symbol)
        cached = self._memo.get(key)
        if cached is None:
            cached = self._backed_off(context, next_symbol)
            if len(self._memo) < 500_000:
                self._memo[key] = cached
        return cached

    def _backed_off(self, context: str, next_symbol: str) -> float:
        penalty = 0.0
        while True:
            seen = self.log_probabilities.get(context + next_symbol)
            if seen is not None:
                return penalty + seen
            penalty += self.log_backoffs.get(context, 0.0)
            if not context:
                return penalty + self.log_floor
            context = context[1:]

    def text_log_probability(self, text: str) -> float:
        """ln P of a whole text's words (boundaries after boundaries are free); for tests and tuning."""
        total, context = 0.0, BOUNDARY
        for character in text + " ":
            current = symbol(character)
            if current == BOUNDARY and context.endswith(BOUNDARY):
                continue
            total += self.log_probability(context, current)
            context = BOUNDARY if current == BOUNDARY else context + current
        return total


def train(words: Iterable[tuple[str, float]], order: int = 6) -> CharLanguageModel:
    """Witten–Bell n-grams over `#word#` sequences, each word counted with its weight."""
    counts: list[dict[str, dict[str, float]]] = [defaultdict(lambda: defaultdict(float)) for _ in range(order)]
    alphabet: set[str] = {BOUNDARY}
    for word, weight in words:
        symbols = BOUNDARY + "".join(symbol(character) for character in word) + BOUNDARY
        if BOUNDARY in symbols[1:-1]:
            continue
        alphabet.update(symbols)
        for end in range(1, len(symbols)):
            for length in range(order):
                start = end - length
                if start < 0:
                    break
                counts[length][symbols[start:end]][symbols[end]] += weight
    log_floor = -math.log(len(alphabet) + 1)
    log_probabilities: dict[str, float] = {}
    log_backoffs: dict[str, float] = {}
    for length in range(order):
        for context, followers in counts[length].items():
            total, distinct = sum(followers.values()), len(followers)
            left = distinct / (total + distinct)
            for follower, count in followers.items():
                lower = math.exp(_lower_order(log_probabilities, context[1:], follower, log_floor)) if context else math.exp(log_floor)
                log_probabilities[context + follower] = math.log(count / (total + distinct) + left * lower)
            log_backoffs[context] = math.log(left)
    return CharLanguageModel(order=order, log_probabilities=log_probabilities, log_backoffs=log_backoffs, log_floor=log_floor)


def _lower_order(log_probabilities: dict[str, float], context: str, follower: str, log_floor: float) -> float:
    while context + follower not in log_probabilities:
        if not context:
            return log_floor
        context = context[1:]
    return log_probabilities[context + follower]


@functools.cache
def for_languages(languages: tuple[str, ...], words: int = 30_000, order: int = 6) -> CharLanguageModel:
    """The model for a profile's languages, built on first use (about 2 s a language).

    Each language contributes its `words` most frequent words, weighted so that
    every language carries the same total: a French word is not drowned by
    English counts in an `[en, fr]` profile.
    """
    weighted: list[tuple[str, float]] = []
    for language in languages:
        ranked = _frequent_words(language, words)
        total = sum(frequency for _, frequency in ranked)
        weighted.extend((word, frequency / total) for word, frequency in ranked)
    smallest = min(weight for _, weight in weighted)
    return train(((word, weight / smallest) for word, weight in weighted), order)


def check_languages(languages: Iterable[str]) -> None:
    for language in languages:
        if language not in LM_LANGUAGES:
            raise ConfigError(
                f"no word list for language {language!r} to build the beam decoder's language model from;"
                f" available: {', '.join(sorted(LM_LANGUAGES))} (or set the recognizer's decoder: greedy)"
            )


def _frequent_words(language: str, words: int) -> list[tuple[str, int]]:
    check_languages([language])
    with gzip.open(str(files("spellchecker") / "resources" / f"{language}.json.gz"), "rt", encoding="utf-8") as stream:
        frequencies: dict[str, int] = json.load(stream)
    return sorted(frequencies.items(), key=lambda item: -item[1])[:words]
