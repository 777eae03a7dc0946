"""The OpenCV `lines` detector on rendered pages whose line count is known."""

from __future__ import annotations

import numpy as np
import pytest

from hwdaemon.builtins.steps import rotate
from hwdaemon.config import PieceConfig
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
    page = render_lines(
        ["Total                                        42 pounds", "Paid                                          yes"],
        font_size=36,
    )
    boxes = lines_detector.detect(page)
    assert len(boxes) == 2
    assert all(box.width > page.shape[1] * 0.7 for box in boxes)


def test_slightly_skewed_page_keeps_its_line_count(lines_detector: Detector) -> None:
    page = rotate(render_lines(TEN_LINES, font_size=36), 1.0)
    assert len(lines_detector.detect(page)) == 10


def test_blank_page_has_no_lines(lines_detector: Detector) -> None:
    assert lines_detector.detect(np.full((300, 400), 250, np.uint8)) == []


def test_a_tight_line_crop_is_one_line(lines_detector: Detector) -> None:
    """Dev-set line crops have writing from edge to edge; it must not be taken for a scan border."""
    page = render_lines(["Meet me at the station at noon"], font_size=48)
    ink_rows = np.where((page < 128).any(axis=1))[0]
    ink_columns = np.where((page < 128).any(axis=0))[0]
    crop = page[ink_rows[0] : ink_rows[-1] + 1, ink_columns[0] : ink_columns[-1] + 1]
    assert len(lines_detector.detect(crop)) == 1


def test_dark_scanner_frame_is_not_a_line(lines_detector: Detector) -> None:
    page = render_lines(TEN_LINES[:3], font_size=36).copy()
    page[:6, :] = page[-6:, :] = 0
    page[:, :6] = page[:, -6:] = 0
    assert len(lines_detector.detect(page)) == 3


@pytest.mark.parametrize("skew_degrees", [0.0, 1.0])
def test_mser_finds_the_ten_lines_too(registry: Registry, skew_degrees: float) -> None:
    # On ruled paper mser still merges a line whose descenders touch the rule below; use `lines` there.
    detector: Detector = registry.create("detector", PieceConfig(type="mser"), PieceContext())
    boxes = detector.detect(rotate(render_lines(TEN_LINES, font_size=36), skew_degrees))
    assert len(boxes) == 10
    assert [box.y for box in boxes] == sorted(box.y for box in boxes)


@pytest.mark.parametrize("line_spacing", [1.25, 1.3, 1.4])
def test_touching_lines_are_split_at_their_ink_valleys(lines_detector: Detector, line_spacing: float) -> None:
    """Tight spacing: descenders of one line touch the next line (dense forms such as Copiste's).

    Measured: 1.25–1.6 give 10 lines; at 1.2 and tighter two lines still merge.
    """
    boxes = lines_detector.detect(render_lines(TEN_LINES, font_size=36, line_spacing=line_spacing))
    assert len(boxes) == 10
    assert [box.y for box in boxes] == sorted(box.y for box in boxes)


def test_a_blob_grouped_with_the_line_above_rejoins_its_own_line(lines_detector: Detector) -> None:
    page = render_lines(["The quick brown fox", "jumps over the lazy dog"], font_size=48)
    assert len(lines_detector.detect(page)) == 2


def test_two_columns_are_read_column_after_column(lines_detector: Detector) -> None:
    left = render_lines(TEN_LINES[:4], font_size=32)
    right = render_lines(TEN_LINES[4:8], font_size=32)
    height = max(left.shape[0], right.shape[0])
    page = np.full((height, left.shape[1] + 120 + right.shape[1]), 255, np.uint8)
    page[: left.shape[0], : left.shape[1]] = left
    page[: right.shape[0], left.shape[1] + 120 :] = right
    boxes = lines_detector.detect(page)
    assert len(boxes) == 8
    split = left.shape[1] + 60
    assert all(box.x + box.width <= split for box in boxes[:4]) and all(box.x >= split for box in boxes[4:])
    assert [box.y for box in boxes[:4]] == sorted(box.y for box in boxes[:4])


def test_scattered_notes_are_read_note_by_note(lines_detector: Detector) -> None:
    """A note top left, one lower on the right overlapping its rows, a wide one at the bottom."""
    top_left = render_lines(TEN_LINES[:3], font_size=30)
    right = render_lines(TEN_LINES[3:6], font_size=30)
    bottom = render_lines(TEN_LINES[6:8], font_size=30)
    gap = 150
    width = max(top_left.shape[1] + gap + right.shape[1], bottom.shape[1])
    right_top = top_left.shape[0] // 2  # its first line sits level with the left note's second line
    bottom_top = max(top_left.shape[0], right_top + right.shape[0]) + 200
    page = np.full((bottom_top + bottom.shape[0], width), 255, np.uint8)
    page[: top_left.shape[0], : top_left.shape[1]] = top_left
    page[right_top : right_top + right.shape[0], top_left.shape[1] + gap : top_left.shape[1] + gap + right.shape[1]] = (
        right
    )
    page[bottom_top:, : bottom.shape[1]] = bottom
    boxes = lines_detector.detect(page)
    assert len(boxes) == 8
    split = top_left.shape[1] + gap // 2
    assert all(box.x + box.width <= split and box.y < bottom_top for box in boxes[:3])  # the left note first
    assert all(box.x >= split and box.y < bottom_top for box in boxes[3:6])  # then the right one
    assert all(box.y >= bottom_top - 20 for box in boxes[6:])  # then the bottom one
    assert [box.y for box in boxes[:3]] == sorted(box.y for box in boxes[:3])


def test_a_stamp_beside_the_lines_does_not_swallow_them(lines_detector: Detector) -> None:
    """An official stamp (a ringed seal several lines tall) in the left margin, as on wills and forms."""
    import cv2

    lines = TEN_LINES[:4]
    page = np.full((520, 1100), 255, dtype=np.uint8)
    text = render_lines(lines, font_size=36, line_spacing=1.5)
    page[40 : 40 + text.shape[0], 220 : 220 + min(text.shape[1], 880)] = text[:, :880]
    cv2.circle(page, (110, 160), 95, 30, 6)
    cv2.circle(page, (110, 160), 60, 30, 3)
    cv2.line(page, (60, 110), (160, 210), 30, 5)  # the seal's inner drawing, joined to its rings
    cv2.line(page, (60, 210), (160, 110), 30, 5)
    boxes = lines_detector.detect(page)
    assert len(boxes) == 4
    assert all(box.x > 200 and box.height < 36 * 2.5 for box in boxes)  # each box one line of text, none the seal's


def test_a_line_crop_with_stray_marks_is_still_one_line(lines_detector: Detector) -> None:
    """Cut from a page, a line keeps tips of its neighbours' strokes, each at its own height.

    Those slivers outnumber the one real line, so the typical line height is weighed by width.
    """
    line = render_lines(["pleine propriete, sans aucune obligation"], font_size=40)
    ink_rows = np.where((line < 128).any(axis=1))[0]
    crop = line[max(0, ink_rows[0] - 20) : ink_rows[-1] + 21].copy()
    width = crop.shape[1]
    for top, x in ((1, 0.2), (7, 0.45), (13, 0.7)):
        crop[top : top + 4, int(width * x) : int(width * x) + 30] = 0  # tips of the line above
    for bottom, x in ((-2, 0.3), (-8, 0.6)):
        crop[bottom - 4 : bottom, int(width * x) : int(width * x) + 40] = 0  # and of the line below
    boxes = lines_detector.detect(crop)
    assert len(boxes) == 1
    assert boxes[0].width > width * 0.8
