"""The learnt line segmenter: its training target, its training loop, and the shipped model on a rendered page."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hwdaemon.builtins.detectors.linenet import SHIPPED_LINENET, LineNetDetector, lines_from_cores
from hwdaemon.config import PieceConfig
from hwdaemon.errors import ModelMissingError
from hwdaemon.pipeline.onnx_runtime import open_session, run
from hwdaemon.pipeline.stages import PieceContext
from hwdaemon.plugins import Registry
from hwdaemon.training.data import TranscribedLine
from hwdaemon.training.linenet_network import LineNet, load_linenet
from hwdaemon.training.segment import (
    SegmentPage,
    SegmentSettings,
    core_target,
    random_crop,
    segment_loss,
    split_validation,
    to_tensors,
    train_segmenter,
)
from rendering import render_lines

LETTER = [
    "Dear Margaret, thank you for the parcel",
    "and the lovely scarf. The garden is full",
    "of snowdrops and the hens are laying again.",
    "Do come at Easter if you can manage it.",
    "With love from us both, Edith",
]


def test_the_target_is_the_middle_half_of_each_line_polygon() -> None:
    line = TranscribedLine("a line", [(10, 20), (110, 20), (110, 60), (10, 60)])
    target = core_target((100, 200), [line], scale=1.0)
    rows = np.where(target.any(axis=1))[0]
    columns = np.where(target.any(axis=0))[0]
    assert (rows[0], rows[-1]) == (30, 50)  # centre 40, line 41 rows tall: ± 10
    assert (columns[0], columns[-1]) == (10, 110)


def test_the_target_follows_a_sloping_line_column_by_column() -> None:
    line = TranscribedLine("sloping", [(0, 10), (100, 50), (100, 70), (0, 30)])
    target = core_target((100, 120), [line], scale=1.0)
    assert target[17:24, 2].all() and not target[60, 2]
    assert target[55:64, 98].all() and not target[20, 98]


def test_cores_become_boxes_in_reading_order_and_specks_are_dropped() -> None:
    cores = np.zeros((200, 300), dtype=np.uint8)
    cores[110:120, 20:280] = 255  # second line
    cores[40:50, 30:250] = 255  # first line
    cores[170:172, 100:103] = 255  # a speck
    boxes = lines_from_cores(cores, padding_factor=0.25)
    assert [(box.x, box.width) for box in boxes] == [(30, 220), (20, 260)]
    first = boxes[0]
    assert first.y < 40 - 5 and first.y + first.height > 50 + 5  # reaches past the core for ascenders and descenders


def test_close_lines_split_the_space_between_them_halfway() -> None:
    cores = np.zeros((200, 300), dtype=np.uint8)
    cores[40:50, 20:280] = 255
    cores[80:90, 20:280] = 255  # the next line, close enough that the boxes overlap
    first, second = lines_from_cores(cores, padding_factor=1.5)
    assert first.y + first.height > second.y  # the boxes overlap ...
    first_bottom = max(y for _, y in first.polygon)
    second_top = min(y for _, y in second.polygon)
    assert 60 <= first_bottom <= 70 and 60 <= second_top <= 71  # ... the outlines meet halfway, at row 65
    assert min(y for _, y in first.polygon) == first.y  # above, nothing is nearer: the outline reaches the box's top


def test_a_short_training_run_lowers_the_loss_and_writes_a_model_that_loads(tmp_path: Path) -> None:
    page = render_lines(LETTER, font_size=24)
    pitch, right = int(24 * 1.9), page.shape[1] - 20
    lines = [
        TranscribedLine(
            text, [(20, 24 + i * pitch), (right, 24 + i * pitch), (right, 58 + i * pitch), (20, 58 + i * pitch)]
        )
        for i, text in enumerate(LETTER)
    ]
    pages = [SegmentPage("test/letters", "letter.xml", page, core_target(page.shape, lines, 1.0))]
    settings = SegmentSettings(minutes=30, max_steps=12, crop=96, batch_size=4, checkpoint_every=10, learning_rate=3e-3)
    images, targets = to_tensors([random_crop(pages[0], 96, random.Random(5)) for _ in range(4)])
    torch.manual_seed(settings.seed)  # the network train_segmenter starts from
    with torch.inference_mode():
        before = float(segment_loss(LineNet().eval()(images), targets))
    state = train_segmenter(pages, pages, tmp_path / "run", settings, lambda event: None)
    assert state["steps"] == 12
    with torch.inference_mode():
        after = float(segment_loss(load_linenet(tmp_path / "run" / "model")(images), targets))
    assert after < before
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    with torch.inference_mode():  # the ONNX copy the detector reads, written beside the weights, is the same network
        ours = torch.sigmoid(load_linenet(tmp_path / "run" / "model")(images[:1])).numpy()
    assert (
        np.abs(ours - run(open_session(tmp_path / "run" / "model" / "linenet.onnx"), images[:1].numpy())).max() < 1e-4
    )


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    page = render_lines(LETTER[:2], font_size=20)
    pages = [SegmentPage("test/letters", "letter.xml", page, np.zeros(page.shape, np.uint8))]
    events: list[dict] = []
    first = train_segmenter(
        pages, [], tmp_path, SegmentSettings(minutes=0.02, crop=64, batch_size=2, checkpoint_every=1000), events.append
    )
    more = first["minutes"] + 0.02  # the budget is for the whole run: a slow first step must not use up the second's
    second = train_segmenter(
        pages, [], tmp_path, SegmentSettings(minutes=more, crop=64, batch_size=2, checkpoint_every=1000), events.append
    )
    assert next(event for event in events if event["event"] == "resumed")["steps"] == first["steps"]
    assert second["steps"] > first["steps"]


def test_the_validation_split_is_stable_and_disjoint() -> None:
    pages = [
        SegmentPage("r", f"page{index}.xml", np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8))
        for index in range(200)
    ]
    training, validation = split_validation(pages, 0.1)
    assert 5 < len(validation) < 40 and len(training) + len(validation) == 200
    assert [page.name for page in split_validation(pages, 0.1)[1]] == [page.name for page in validation]


@pytest.fixture(scope="module")
def linenet(registry: Registry) -> LineNetDetector:
    detector = registry.create("detector", PieceConfig(type="linenet"), PieceContext())
    assert isinstance(detector, LineNetDetector)
    return detector


def test_the_shipped_segmenter_finds_each_line_of_a_rendered_letter(linenet: LineNetDetector) -> None:
    linenet.check_ready()
    page = np.full((1400, 1000), 250, dtype=np.uint8)
    written = render_lines(LETTER, font_size=34, line_spacing=2.2)
    page[200 : 200 + written.shape[0], 60 : 60 + written.shape[1]] = written[:, : 1000 - 60]
    boxes = linenet.detect(page)
    assert len(boxes) == len(LETTER)
    assert [box.y for box in boxes] == sorted(box.y for box in boxes)
    pitch = int(34 * 2.2)
    for index, box in enumerate(boxes):
        middle = 200 + 34 + index * pitch + 17  # the middle of the written line
        assert box.y < middle < box.y + box.height
    shares = [cv2.fillPoly(np.zeros(page.shape, np.uint8), [np.array(box.polygon, np.int32)], 1) for box in boxes]
    overlap = int((sum(shares) > 1).sum())
    assert overlap < 0.01 * min(
        int(share.sum()) for share in shares
    )  # each line's outline is its own, but for the simplified polygons' edges


def test_a_line_crop_is_left_to_the_lines_rules(linenet: LineNetDetector) -> None:
    crop = render_lines(["a single line of writing, much wider than tall"], font_size=40)
    assert len(linenet.detect(crop)) == 1


def test_a_missing_segmenter_is_named(registry: Registry, tmp_path: Path) -> None:
    detector = registry.create(
        "detector", PieceConfig(type="linenet", options={"model_dir": str(tmp_path)}), PieceContext()
    )
    with pytest.raises(ModelMissingError, match=r"linenet.onnx"):
        detector.check_ready()
    assert SHIPPED_LINENET.name == "linenet"
