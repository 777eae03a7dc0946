"""The OpenCV `lines` detector on rendered pages whose line count is known."""

from __future__ import annotations

import numpy as np
import pytest

from hwdaemon.config import PieceConfig
from hwdaemon.pipeline.preprocess import rotate
from hwdaemon.pipeline.stages import Detector, PieceContext
from hwdaemon.plugins import Registry
from rendering import render_lines

TEN_LINES = [
    "Monday: dentist at nine, then the bank",
    "Tuesday: pick up the parcel from Jenny",
    "Wednesday: quiz night at the Red Lion",
    "Thursday: write to grandmother",
    "Friday: pay the gas bill",
    "Saturday: market, bread, apples, cheese",
    "Sunday: lunch with the Hendersons",
    "remember the library books",
    "ring the garage about the brakes",
    "buy a birthday card for Tom",
]


@pytest.fixture(scope="module")
def lines_detector(registry: Registry) -> Detector:
    detector: Detector = registry.create("detector", PieceConfig(type="lines"), PieceContext())
    return detector


def test_finds_ten_lines_on_a_ten_line_page_in_reading_order(lines_detector: Detector) -> None:
    page = render_lines(TEN_LINES, font_size=36)
    boxes = lines_detector.detect(page)
    assert len(boxes) == 10
    assert [box.y for box in boxes] == sorted(box.y for box in boxes)
    assert all(box.width > page.shape[1] * 0.3 for box in boxes)


def test_ruling_lines_do_not_become_text_lines(lines_detector: Detector) -> None:
    page = render_lines(TEN_LINES, font_size=36, ruled=True)
    assert len(lines_detector.detect(page)) == 10


def test_words_far_apart_stay_on_one_line(lines_detector: Detector) -> None:
    page = render_lines(["Total                                        42 pounds", "Paid                                          yes"], font_size=36)
    boxes = lines_detector.detect(page)
    assert len(boxes) == 2
    assert all(box.width > page.shape[1] * 0.7 for box in boxes)


def test_slightly_skewed_page_keeps_its_line_count(lines_detector: Detector) -> None:
    page = rotate(render_lines(TEN_LINES, font_size=36), 1.0)
    assert len(lines_detector.detect(page)) == 10


def test_blank_page_has_no_lines(lines_detector: Detector) -> None:
    assert lines_detector.detect(np.full((300, 400), 250, np.uint8)) == []
