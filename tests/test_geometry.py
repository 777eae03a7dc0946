"""Results are in the original image's pixels: words written at known places come back there, through skew and scaling."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hwdaemon.builtins.recognizers.alignment import align
from hwdaemon.builtins.steps import rotate_mapped
from hwdaemon.config import load_config
from hwdaemon.model import Document, Page
from hwdaemon.pipeline import Pipeline
from hwdaemon.pipeline.geometry import map_points, quarter_turn
from hwdaemon.plugins import Registry
from rendering import handwriting_font

LINES = [
    ["Send", "the", "parcel", "before", "noon"],
    ["Tuesday", "morning", "garden", "party"],
    ["Write", "to", "Margaret", "soon"],
]


def written_page() -> tuple[np.ndarray, dict[str, tuple[int, int, int, int]]]:
    """A page with each word drawn where we say, and each word's true box (x0, y0, x1, y1)."""
    font = handwriting_font(44)
    page = Image.new("L", (1500, 520), 255)
    draw = ImageDraw.Draw(page)
    truth = {}
    for row, words in enumerate(LINES):
        x, y = 70, 80 + row * 130
        for word in words:
            left, top, right, bottom = draw.textbbox((x, y), word, font=font)
            draw.text((x, y), word, font=font, fill=25)
            truth[word] = (left, top, right, bottom)
            x = right + 34
    return np.asarray(page), truth


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def bounds(points: tuple[tuple[int, int], ...]) -> tuple[int, int, int, int]:
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs), max(ys)


@pytest.fixture(scope="module")
def skew_and_scale_pipeline(registry: Registry) -> Pipeline:
    config = load_config(None, registry)
    profile = config.profile("default").model_copy(
        update={
            "preprocess": [
                *config.profile("default").preprocess,
                config.profile("default")
                .preprocess[0]
                .model_copy(update={"type": "resize", "options": {"scale": 0.6}}),
            ]
        }
    )
    return Pipeline.from_profile("skewed", profile, config.models, registry)


def test_words_come_back_on_their_place_in_a_skewed_scan(skew_and_scale_pipeline: Pipeline) -> None:
    upright, truth = written_page()
    skewed, to_skewed = rotate_mapped(upright, 4.0, fill=255)  # the scan as it arrives: 4° off
    result = skew_and_scale_pipeline.run(Document("skewed.png", "0" * 64, (Page(1, skewed),)))
    page = result.pages[0]
    assert (page.width, page.height) == (skewed.shape[1], skewed.shape[0])
    found = {word.text: word for line in page.lines for word in line.words}
    matched = [text for text in truth if text in found]
    assert len(matched) >= 0.7 * len(truth), f"read {sorted(found)}"
    for text in matched:
        x0, y0, x1, y1 = truth[text]
        corners = map_points(to_skewed, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], page.width, page.height)
        assert iou(bounds(found[text].polygon), bounds(corners)) >= 0.5, text
    for line in page.lines:  # baselines run under the words, left to right
        assert line.baseline and line.baseline[0][0] < line.baseline[-1][0]
        top = min(y for _, y in line.polygon)
        assert all(y > top for _, y in line.baseline)


def test_quarter_turns_map_corners_onto_corners() -> None:
    width, height = 40, 30
    for degrees, image in (
        (90, np.rot90(np.zeros((height, width)), -1)),
        (180, np.rot90(np.zeros((height, width)), 2)),
        (270, np.rot90(np.zeros((height, width)), 1)),
    ):
        turned = map_points(quarter_turn(width, height, degrees), [(0, 0), (width - 1, height - 1)], 10_000, 10_000)
        new_height, new_width = image.shape
        assert all(0 <= x < new_width and 0 <= y < new_height for x, y in turned)
        back = map_points(np.linalg.inv(quarter_turn(width, height, degrees)), turned, width, height)
        assert back == ((0, 0), (width - 1, height - 1))


def test_forced_alignment_puts_each_letter_on_its_steps() -> None:
    """Steps 0-2 say 'a', 3 blank, 4-5 'b': the path spelling 'ab' takes exactly those."""
    probabilities = np.full((6, 3), 0.05)
    for step, label in enumerate([1, 1, 1, 0, 2, 2]):
        probabilities[step, label] = 0.9
    spans = align(probabilities, [1, 2])
    assert [(span.first_step, span.last_step) for span in spans] == [(0, 2), (4, 5)]
    doubled = align(
        np.tile(probabilities[:1], (4, 1)) * 0 + np.array([0.3, 0.6, 0.1]), [1, 1]
    )  # 'aa' needs a blank between
    assert doubled[0].last_step < doubled[1].first_step


def test_a_fix_that_joins_or_splits_words_keeps_their_boxes() -> None:
    """A post-processor's "evice ;" → "evice;" (or a reviewer's "be hind") keeps each word over its own letters."""
    from hwdaemon.model import Line, Word

    def word(text: str, left: int, width: int) -> Word:
        return Word(text, 0.9, ((left, 10), (left + width, 10), (left + width, 40), (left, 40)))

    read = (
        word("issue", 0, 50),
        word("behind", 60, 60),
        word("evice", 130, 50),
        word(";", 185, 5),
        word("the", 200, 30),
    )
    line = Line("issue behind evice ; the", 0.8, ((0, 0), (240, 0), (240, 50), (0, 50)), words=read)
    joined = line.retexted("issue behind evice; the")
    assert [(w.text, w.box.x, w.box.width) for w in joined.words] == [
        ("issue", 0, 50),
        ("behind", 60, 60),
        ("evice;", 130, 60),
        ("the", 200, 30),
    ]
    split = line.retexted("issue be hind evice ; the")
    assert [(w.text, w.box.x, w.box.width) for w in split.words][1:3] == [("be", 60, 20), ("hind", 80, 40)]
    assert line.retexted("issue behind evice ; thé").words[-1].box.x == 200  # same count: the boxes as they were
