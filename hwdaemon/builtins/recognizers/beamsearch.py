"""CTC prefix beam search with a character language model (see charlm.py).

Greedy decoding takes the network's best class at every step and cannot weigh
"the network half-saw an m" against "m spells a word here". The beam keeps the
`beam_width` most likely transcriptions, scoring each as
ln P_network + lm_weight · ln P_language + length_bonus · characters.
Classes below `prune` at a step are not tried, which keeps it fast in Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwdaemon.builtins.recognizers.charlm import BOUNDARY, CharLanguageModel

_NEGATIVE_INFINITY = -math.inf


def _log_add(first: float, second: float) -> float:
    if first == _NEGATIVE_INFINITY:
        return second
    if second == _NEGATIVE_INFINITY:
        return first
    larger, smaller = (first, second) if first > second else (second, first)
    return larger + math.log1p(math.exp(smaller - larger))


@dataclass(slots=True)
class _Prefix:
    ends_blank: float  # ln P of the paths that spell this prefix and end in a blank
    ends_character: float  # … and end in its last character
    last_class: int
    lm_context: str
    lm_score: float

    def network_score(self) -> float:
        return _log_add(self.ends_blank, self.ends_character)


@dataclass(frozen=True, slots=True)
class BeamSettings:
    """Weights chosen on 400 CREMMA-MSS-19 lines the shipped model never saw; the width where wider stopped reading better (docs/accuracy.md)."""

    beam_width: int = 32
    lm_weight: float = 0.3
    length_bonus: float = 1.0
    prune: float = 0.01  # 0.001 read the tuning lines 0.16 point better at 2.4 times the cost


DEFAULT_SETTINGS = BeamSettings()


@dataclass(frozen=True, slots=True)
class BeamDecoder:
    """A TextDecoder (handwriting_model.py) for one profile: its languages' model and its settings."""

    language_model: CharLanguageModel
    settings: BeamSettings

    def __call__(self, probabilities: np.ndarray, charset: str) -> str:
        return beam_search(probabilities, charset, self.language_model, self.settings)


def beam_search(
    probabilities: np.ndarray, charset: str, language_model: CharLanguageModel, settings: BeamSettings
) -> str:
    """The best transcription of one line's (steps, classes) softmax output; class 0 is the blank."""
    log_probabilities = np.log(np.maximum(probabilities, 1e-30)).tolist()
    candidates_per_step = [np.flatnonzero(row[1:] > settings.prune) + 1 for row in probabilities]
    beams: dict[str, _Prefix] = {"": _Prefix(0.0, _NEGATIVE_INFINITY, 0, BOUNDARY, 0.0)}
    for row, candidates in zip(log_probabilities, candidates_per_step, strict=True):
        following: dict[str, _Prefix] = {}
        for text, prefix in beams.items():
            total = prefix.network_score()
            stay = following.get(text)
            if stay is None:
                stay = following[text] = _Prefix(
                    _NEGATIVE_INFINITY, _NEGATIVE_INFINITY, prefix.last_class, prefix.lm_context, prefix.lm_score
                )
            stay.ends_blank = _log_add(stay.ends_blank, total + row[0])
            if prefix.last_class:
                stay.ends_character = _log_add(stay.ends_character, prefix.ends_character + row[prefix.last_class])
            for class_index in candidates.tolist():
                # A repeated character needs a blank between the two, else it is the same one held longer.
                reach = prefix.ends_blank if class_index == prefix.last_class else total
                character = charset[class_index - 1]
                extended_text = text + character
                extended = following.get(extended_text)
                if extended is None:
                    context, step = language_model.advance(prefix.lm_context, character)
                    extended = following[extended_text] = _Prefix(
                        _NEGATIVE_INFINITY, _NEGATIVE_INFINITY, class_index, context, prefix.lm_score + step
                    )
                extended.ends_character = _log_add(extended.ends_character, reach + row[class_index])
        beams = dict(
            sorted(following.items(), key=lambda item: -_ranking(item[0], item[1], settings))[: settings.beam_width]
        )
    return max(beams.items(), key=lambda item: _final_ranking(item[0], item[1], language_model, settings))[0]


def _ranking(text: str, prefix: _Prefix, settings: BeamSettings) -> float:
    return prefix.network_score() + settings.lm_weight * prefix.lm_score + settings.length_bonus * len(text)


def _final_ranking(text: str, prefix: _Prefix, language_model: CharLanguageModel, settings: BeamSettings) -> float:
    """The line's end closes its last word: a word cut short scores lower than a whole one."""
    _, closing = language_model.advance(prefix.lm_context, " ")
    return prefix.network_score() + settings.lm_weight * (prefix.lm_score + closing) + settings.length_bonus * len(text)
