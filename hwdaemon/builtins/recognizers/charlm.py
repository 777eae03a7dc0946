"""A character n-gram model of words, for the beam-search decoder: which letter sequences a language spells.

Built from pyspellchecker's word-frequency list for the language (already installed,
OpenSubtitles counts), so it needs no download and no corpus shipped with us, and,
where one is installed (English: symspellpy's), from a list of word pairs as they
follow each other in text. Every character that is not a letter or an apostrophe is a
word boundary, and the context runs on across it: after "of " the pairs make "the"
likelier than "tho". A language with words only learns no n-gram across a boundary,
so its model backs off to the boundary and reads each word on its own. Letters are
folded to lower case (a capital is not less likely).
Smoothing is interpolated Witten–Bell, stored in backoff form: one dictionary of
seen n-grams and one of backoff weights, as an ARPA file would hold them. Built
once per machine and kept in ~/.cache/hwdaemon ($XDG_CACHE_HOME), as JSON.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hwdaemon.builtins import wordlists
from hwdaemon.errors import ConfigError

BOUNDARY = "#"


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

    def advance(self, context: str, character: str) -> tuple[str, float]:
        """One character read after `context` (symbols): the new context, and ln P of that step.

        A boundary closes the word and the context runs on into the next; spaces and
        punctuation after a boundary cost nothing more. The context keeps the last
        order-1 symbols, all that the model reads.
        """
        next_symbol = symbol(character)
        if next_symbol == BOUNDARY and context.endswith(BOUNDARY):
            return context, 0.0
        return (context + next_symbol)[1 - self.order :], self.log_probability(context, next_symbol)

    def text_log_probability(self, text: str) -> float:
        """ln P of a whole text's words; for tests and tuning."""
        total, context = 0.0, BOUNDARY
        for character in text + " ":
            context, step = self.advance(context, character)
            total += step
        return total


def train(texts: Iterable[tuple[str, float]], order: int = 6) -> CharLanguageModel:
    """Witten–Bell n-grams over `#word#` (or `#word#word#`) sequences, each text counted with its weight."""
    counts: dict[str, float] = defaultdict(float)  # n-gram (context + symbol) → weighted count
    for text, weight in texts:
        symbols = re.sub(f"{BOUNDARY}+", BOUNDARY, BOUNDARY + "".join(map(symbol, text)) + BOUNDARY)
        if symbols == BOUNDARY:
            continue
        for end in range(2, len(symbols) + 1):
            for start in range(max(0, end - order), end):
                counts[symbols[start:end]] += weight
    totals: dict[str, float] = defaultdict(float)
    distinct: dict[str, int] = defaultdict(int)
    for ngram, count in counts.items():
        totals[ngram[:-1]] += count
        distinct[ngram[:-1]] += 1
    alphabet = {ngram for ngram in counts if len(ngram) == 1}
    log_floor = -math.log(len(alphabet) + 1)
    log_backoffs = {
        context: math.log(distinct[context] / (total + distinct[context])) for context, total in totals.items()
    }
    log_probabilities: dict[str, float] = {}
    for ngram in sorted(
        counts, key=len
    ):  # shorter first: each n-gram interpolates with the one without its first symbol
        context = ngram[:-1]
        lower = log_probabilities[ngram[1:]] if context else log_floor
        total, left = totals[context], math.exp(log_backoffs[context])
        log_probabilities[ngram] = math.log(counts[ngram] / (total + distinct[context]) + left * math.exp(lower))
    return CharLanguageModel(
        order=order, log_probabilities=log_probabilities, log_backoffs=log_backoffs, log_floor=log_floor
    )


CACHE_VERSION = 2
PAIR_SHARE = 0.5  # of a language's weight, where it has word pairs: half single words, half pairs
USER_WORD_RANK = 1000  # a profile's own word counts as often as the language's 1,000th most frequent word
USER_WORD_CACHES = 4  # per set of languages: each change to a profile's words builds a new model


@functools.lru_cache(maxsize=8)
def for_languages(
    languages: tuple[str, ...], user_words: frozenset[str] = frozenset(), words: int = 30_000, order: int = 6
) -> CharLanguageModel:
    """The model for a profile's languages and its own words: built once (about 2 s a language, 7 s for English), then read from the user's cache.

    Each language contributes its `words` most frequent words and its word pairs,
    weighted so that every language carries the same total: a French word is not
    drowned by English counts in an `[en, fr]` profile. The profile's own words (names,
    jargon: pipeline/userwords.py) join them as fairly common words, so the decoder spells
    them as readily as any, while text that holds none of them reads as before.
    """
    check_languages(languages)
    stamp = (
        sum(wordlists.path(language).stat().st_size for language in languages) % 1_000_000
    )  # a new word list, a new file
    own = sorted(
        {part for word in user_words for part in "".join(map(symbol, word)).split(BOUNDARY) if part}
    )  # Jean-Pierre: jean, pierre
    suffix = f"-u{hashlib.sha256(chr(10).join(own).encode()).hexdigest()[:12]}" if own else ""
    cache = _cache_dir() / f"charlm-v{CACHE_VERSION}-{'-'.join(languages)}-{words}-{order}-{stamp}{suffix}.json.gz"
    cached = _read_cache(cache, order)
    if cached is not None:
        return cached
    weighted: list[tuple[str, float]] = []
    common = 0.0
    for language in languages:
        ranked, pairs = wordlists.ranked(language)[:words], wordlists.word_pairs(language)
        share = 1 - PAIR_SHARE if pairs else 1.0
        total = sum(frequency for _, frequency in ranked) / share
        weighted.extend((word, frequency / total) for word, frequency in ranked)
        pairs_total = sum(count for _, count in pairs) / PAIR_SHARE
        weighted.extend((pair, count / pairs_total) for pair, count in pairs)
        common += ranked[min(USER_WORD_RANK, len(ranked) - 1)][1] / total / len(languages)
    weighted.extend((word, common) for word in own)
    smallest = min(weight for _, weight in weighted)
    model = train(((word, weight / smallest) for word, weight in weighted), order)
    _write_cache(cache, model)
    if own:
        _forget_old_user_word_models(cache)
    return model


def _forget_old_user_word_models(kept: Path) -> None:
    """Keep the newest few models with user words per set of languages; the review page may add a word a day."""
    prefix = kept.name[: kept.name.rindex("-u") + 2]
    try:
        siblings = sorted(kept.parent.glob(f"{prefix}*.json.gz"), key=lambda path: path.stat().st_mtime, reverse=True)
        for old in siblings[USER_WORD_CACHES:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # another process tidied first, or the cache is read-only


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwdaemon"


def _read_cache(path: Path, order: int) -> CharLanguageModel | None:
    """A damaged or foreign cache file is rebuilt, never trusted (JSON: reading it runs no code)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            stored = json.load(stream)
        return CharLanguageModel(
            order=order,
            log_probabilities=stored["log_probabilities"],
            log_backoffs=stored["log_backoffs"],
            log_floor=float(stored["log_floor"]),
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None


def _write_cache(path: Path, model: CharLanguageModel) -> None:
    """Best effort: a read-only home only means building again next start."""
    stored = {
        "log_probabilities": model.log_probabilities,
        "log_backoffs": model.log_backoffs,
        "log_floor": model.log_floor,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with gzip.open(temporary, "wt", encoding="utf-8", compresslevel=3) as stream:
            json.dump(stored, stream, separators=(",", ":"))
        temporary.replace(path)
    except OSError:
        pass


def check_languages(languages: Iterable[str]) -> None:
    for language in languages:
        if language not in wordlists.LANGUAGES:
            raise ConfigError(
                f"no word list for language {language!r} to build the beam decoder's language model from;"
                f" available: {', '.join(sorted(wordlists.LANGUAGES))} (or set the recognizer's decoder: greedy)"
            )
