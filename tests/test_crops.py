"""Line crops: a box read with everything outside its outline painted as paper, as training crops are made."""

from __future__ import annotations

import numpy as np

from hwdaemon.model import Box
from hwdaemon.pipeline.crops import GROW, line_crop


def test_a_box_without_an_outline_is_read_as_it_is() -> None:
    page = np.random.default_rng(1).integers(0, 255, (100, 200), dtype=np.uint8)
    assert np.array_equal(line_crop(page, Box(10, 20, 50, 30)), page[20:50, 10:60])


def test_strokes_outside_the_outline_are_painted_as_paper_and_the_line_is_kept() -> None:
    page = np.full((120, 200), 240, dtype=np.uint8)
    page[40:60, 20:180] = 20  # the line's ink
    page[100:110, 20:180] = 20  # a neighbour's ascenders reaching into the box
    box = Box(10, 20, 180, 100, outline=((10, 20), (189, 20), (189, 75), (10, 75)))
    crop = line_crop(page, box)
    assert crop.shape == (100, 180)
    assert (crop[20:40, 10:170] == 20).all()  # the line is untouched
    assert (crop[75 - 20 + GROW + 1 :, :] == 240).all()  # below the grown outline: paper
    assert page[100:110, 20:180].max() == 20  # the page itself is not painted
    assert box.polygon == box.outline
