"""Synthetic lines: real ink, only characters the font draws, reproducible from the seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwdaemon.training.crnn import CHARSET_V1
from hwdaemon.training.synthetic import covered, default_fonts, synthetic_samples

FONTS = default_fonts()
pytestmark = pytest.mark.skipif(
    not FONTS, reason="no Debian handwriting font installed (scripts/setup --test installs fonts-dkg-handwriting)"
)


def test_lines_have_ink_and_spell_with_the_charset() -> None:
    samples = synthetic_samples(30, FONTS, CHARSET_V1, ["en", "fr"], seed=3)
    assert len(samples) == 30 and len({sample.text for sample in samples}) > 25
    for sample in samples:
        assert set(sample.text) <= set(CHARSET_V1) and sample.text == sample.text.strip() and sample.text
        assert sample.image.dtype == np.uint8 and sample.image.ndim == 2
        assert (
            sample.image.min() < 110 and (sample.image < 128).mean() > 0.002 and (sample.image > 150).mean() > 0.4
        )  # ink on paper
        assert sample.image.shape[1] > sample.image.shape[0]  # a line, wider than high


def test_the_same_seed_renders_the_same_lines() -> None:
    first = synthetic_samples(5, FONTS, CHARSET_V1, ["en"], seed=11)
    second = synthetic_samples(5, FONTS, CHARSET_V1, ["en"], seed=11)
    assert [s.text for s in first] == [s.text for s in second]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(first, second, strict=True))


def test_rendering_processes_draw_the_same_lines_as_one() -> None:
    alone = synthetic_samples(230, FONTS, CHARSET_V1, ["en"], seed=4)
    side_by_side = synthetic_samples(230, FONTS, CHARSET_V1, ["en"], seed=4, workers=2)
    assert [(s.text, s.document) for s in alone] == [(s.text, s.document) for s in side_by_side]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(alone, side_by_side, strict=True))
    assert len({s.document for s in alone}) == 3  # groups of 100 lines


def test_a_font_never_writes_a_character_it_lacks() -> None:
    font = FONTS[0]
    drawn = covered(font, CHARSET_V1 + "\u4e2d")
    assert "a" in drawn and "\u4e2d" not in drawn  # a CJK ideograph no handwriting font here has
    for sample in synthetic_samples(20, [font], CHARSET_V1, ["fr"], seed=5):
        assert set(sample.text) <= drawn


def test_no_font_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no handwriting font"):
        synthetic_samples(3, [], CHARSET_V1, ["en"])


def test_elastic_distortion_bends_strokes_by_a_few_pixels_without_breaking_them() -> None:
    import random

    import cv2

    from hwdaemon.training.synthetic import elastic

    grid = np.full((64, 240), 255, np.uint8)
    grid[:, 20::40] = 0  # vertical strokes, 1 px wide
    bent = elastic(grid, random.Random(1), alpha=3.0, sigma=6.0)
    assert not np.array_equal(bent, grid)
    ink, bent_ink = grid < 128, bent < 128
    near_original = cv2.dilate(ink.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert bent_ink.any() and near_original[bent_ink].all()  # nothing moved more than 4 px
    columns = [np.flatnonzero(row) for row in bent[:, 10:30] < 200]
    assert all(len(found) for found in columns)  # the first stroke is still there on every row: bent, not broken
    assert len({int(found.mean()) for found in columns}) > 1  # and it is bent, not shifted whole
