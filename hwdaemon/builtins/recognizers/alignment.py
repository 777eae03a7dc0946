"""Where each character of a decoded line sits: the CTC forced alignment of the text on the network's output.

The network emits one class distribution per 4 columns of the line resized to
64 px high. Whatever decoder spelt the text (greedy, or the beam with its word
models), the most probable path that spells exactly that text through those
distributions (Viterbi over the text with blanks between letters) says which
steps each character took; steps → columns → page x gives each word its box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwdaemon.model import Box, Word

STEP_COLUMNS = 4  # input columns per output step of the network (its stride)
_FLOOR = 1e-12


@dataclass(frozen=True, slots=True)
class CharacterSpan:
    first_step: int
    last_step: int
    probability: float  # the best probability the aligned path gives this character


def align(probabilities: np.ndarray, labels: list[int]) -> list[CharacterSpan]:
    """Each label's steps on the most probable CTC path spelling `labels` (class 0 is the blank)."""
    steps = probabilities.shape[0]
    if not labels or steps == 0:
        return []
    extended = np.zeros(2 * len(labels) + 1, dtype=np.int64)
    extended[1::2] = labels
    states = len(extended)
    log_probabilities = np.log(np.maximum(probabilities[:, extended], _FLOOR))
    # a state may come from itself, the one before, or (for a letter unlike the one two back) skip a blank
    can_skip = np.zeros(states, dtype=bool)
    can_skip[3::2] = extended[3::2] != extended[1:-2:2]
    score = np.full(states, -np.inf)
    score[0] = log_probabilities[0, 0]
    if states > 1:
        score[1] = log_probabilities[0, 1]
    came_from = np.zeros((steps, states), dtype=np.int8)  # 0 stay, 1 from previous, 2 skip
    for step in range(1, steps):
        stay = score
        previous = np.concatenate(([-np.inf], score[:-1]))
        skip = np.where(can_skip, np.concatenate(([-np.inf, -np.inf], score[:-2])), -np.inf)
        choices = np.stack([stay, previous, skip])
        came_from[step] = choices.argmax(axis=0)
        score = choices.max(axis=0) + log_probabilities[step]
    state = states - 1 if states < 2 or score[-1] >= score[-2] else states - 2
    path = np.empty(steps, dtype=np.int64)
    for step in range(steps - 1, -1, -1):
        path[step] = state
        state -= int(came_from[step, state])
    spans: list[CharacterSpan] = []
    for index in range(len(labels)):
        taken = np.flatnonzero(path == 2 * index + 1)
        if taken.size == 0:  # the text is longer than the path allows: share the neighbour's place
            spans.append(spans[-1] if spans else CharacterSpan(0, 0, 0.0))
            continue
        spans.append(CharacterSpan(int(taken[0]), int(taken[-1]), float(probabilities[taken, labels[index]].max())))
    return spans


def word_boxes(
    text: str, probabilities: np.ndarray, charset: str, box: Box, crop: np.ndarray, resized_width: int
) -> tuple[Word, ...]:
    """The line's words (split on spaces), in page pixels: columns from their characters' steps, rows from their ink."""
    labels = [charset.index(char) + 1 if char in charset else 0 for char in text]
    if not text.strip() or 0 in labels:
        return ()
    spans = align(probabilities, labels)
    columns_per_step = STEP_COLUMNS * box.width / max(1, resized_width)
    words = []
    start = None
    for index, char in enumerate([*text, " "]):
        if char != " " and start is None:
            start = index
        elif char == " " and start is not None:
            first, last = spans[start], spans[index - 1]
            left = box.x + round(first.first_step * columns_per_step)
            right = box.x + min(box.width, round((last.last_step + 1) * columns_per_step))
            right = max(right, left + 1)
            confidence = float(np.mean([span.probability for span in spans[start:index]]))
            top, bottom = _ink_rows(crop, left - box.x, right - box.x)
            top, bottom = box.y + top, box.y + bottom
            words.append(
                Word(text[start:index], confidence, ((left, top), (right, top), (right, bottom), (left, bottom)))
            )
            start = None
    return tuple(words)


def _ink_rows(crop: np.ndarray, left: int, right: int) -> tuple[int, int]:
    """The first and last rows with ink between two columns of a grey line crop (its whole height if none)."""
    window = crop[:, max(0, left) : max(left + 1, right)]
    if window.size == 0:
        return 0, crop.shape[0]
    paper, ink = np.percentile(crop, 90), np.percentile(crop, 2)
    if paper - ink < 40:  # a blank or washed-out crop: no telling ink from paper
        return 0, crop.shape[0]
    rows = np.flatnonzero((window < (paper + ink) / 2).any(axis=1))
    return (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, crop.shape[0])
