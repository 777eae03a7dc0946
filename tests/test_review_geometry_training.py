"""Fixed lines teach: the next training's crops follow the reviewer's outlines, and train-segmenter reads approved pages.

A rendered page whose reading went wrong in the usual ways (two lines read as
one, a doodle read as a line, a line missed) is fixed through the review
actions, approved, and then read back by the two trainers' own readers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image, ImageDraw

from hwdaemon import review
from hwdaemon.cli import cli
from hwdaemon.config import Config, load_config
from hwdaemon.daemon.previews import encode_previews, save_previews
from hwdaemon.line_edits import AddLine, LineEdit, MarkNotText, SplitLine
from hwdaemon.model import Box, Document, Line, Page, PageResult, Result
from hwdaemon.plugins import Registry
from hwdaemon.store import Store
from hwdaemon.training.corrections import approved_lines
from hwdaemon.training.segment import APPROVED_SOURCE, approved_pages
from rendering import render_lines

TEXTS = ["Meet me at noon", "by the old mill", "bring the map"]


def write_config(folder: Path) -> Path:
    config = {
        "state_dir": str(folder / "state"),
        "profiles": {"mine": {"recognizer": "handwriting"}},
        "inboxes": [{"path": str(folder / "inbox"), "profile": "mine"}],
        "sinks": {"outbox": {"type": "file", "path": str(folder / "outbox")}},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def rows_of(image: np.ndarray) -> list[tuple[int, int]]:
    """The top and bottom row of each band of ink, top to bottom."""
    inked = [bool((row < 128).any()) for row in image]
    bands, start = [], None
    for row, is_inked in enumerate(inked):
        if is_inked and start is None:
            start = row
        elif not is_inked and start is not None:
            bands.append((start, row - 1))
            start = None
    return bands


@pytest.fixture
def fixed_job(tmp_path: Path, registry: Registry) -> tuple[Config, Store, int, dict[str, Box]]:
    """A page read badly (lines 1 and 2 as one, a doodle as a line, line 3 missed), fixed on review and approved."""
    config = load_config(write_config(tmp_path), registry)
    store = Store(config.state_dir)
    image = Image.fromarray(render_lines(TEXTS, font_size=40))
    width, height = image.size
    doodle = Box(width - 120, 10, 100, 50)
    ImageDraw.Draw(image).ellipse(
        (doodle.x, doodle.y, doodle.x + doodle.width, doodle.y + doodle.height), outline=0, width=4
    )
    bands = rows_of(np.asarray(image)[:, : width - 130])
    assert len(bands) == 3, bands
    (top1, bottom1), (top2, bottom2), (top3, bottom3) = bands
    both = Box(0, top1 - 4, width - 140, bottom2 + 4 - (top1 - 4))
    lines = (
        Line("Meet me ot noon by the old mil", 0.3, both.polygon),
        Line("oO", 0.2, doodle.polygon),
    )
    result = Result("note.png", "ab" * 32, "mine", (PageResult(1, width, height, lines),))
    job = store.jobs.add(str(tmp_path / "inbox/note.png"), str(tmp_path / "inbox"), "mine", result.sha256, 1, 1)
    store.jobs.finish(job.id, result, [])
    page = np.asarray(image)
    save_previews(
        encode_previews(Document("note.png", result.sha256, (Page(1, page),)), max_side=width), config.state_dir, job.id
    )

    cut = (bottom1 + top2) // 2
    missed = Box(0, top3 - 4, width - 140, bottom3 + 4 - (top3 - 4))
    fixes: list[LineEdit] = [SplitLine(0, (both.x + 10, cut), "y"), MarkNotText(2), AddLine(missed, TEXTS[2])]
    assert review.save_revision(store, job.id, 1, {}, "ada", fixes) == 1
    assert review.save_revision(store, job.id, 1, {0: TEXTS[0], 1: TEXTS[1]}, "ada") == 2
    store.review.approve(job.id, 2, "ada", [])
    boxes = {
        "first": Box(both.x, both.y, both.width, cut - both.y),
        "second": Box(both.x, cut, both.width, both.y + both.height - cut),
        "third": missed,
        "doodle": doodle,
    }
    return config, store, job.id, boxes


def test_the_next_trainings_crops_follow_the_fixed_lines(fixed_job: tuple[Config, Store, int, dict[str, Box]]) -> None:
    config, store, _, boxes = fixed_job
    samples = approved_lines(store, config.state_dir, "mine")
    assert [sample.text for sample in samples] == TEXTS  # the doodle is out, the missed line in
    for sample, name in zip(samples, ("first", "second", "third"), strict=True):
        crop, box = sample.image, boxes[name]
        assert abs(crop.shape[0] - box.height) <= 2 * (4 + 3) + 2, (
            name,
            crop.shape,
            box,
        )  # margin 4, grown 3, per side
        assert len(rows_of(crop)) == 1, name  # one line of ink: the other line is not read into it
    assert samples[0].image.shape[1] <= boxes["first"].width + 2 * (4 + 3) + 2  # the doodle beside it is not in it


def test_train_segmenter_reads_the_approved_pages_fixed_lines(
    fixed_job: tuple[Config, Store, int, dict[str, Box]], tmp_path: Path
) -> None:
    config, store, job_id, boxes = fixed_job
    events: list[dict[str, object]] = []
    (page,) = approved_pages(store, config.state_dir, ["mine"], events.append)
    assert (page.source, page.name) == (APPROVED_SOURCE, f"job-{job_id}-page-1")
    width = page.core.shape[1]
    read = store.jobs.result_of(job_id)
    assert read is not None
    scale = width / read.pages[0].width

    def core_rows(box: Box) -> np.ndarray:
        return page.core[round(box.y * scale) : round((box.y + box.height) * scale), : round(box.width * scale)]

    for name in ("first", "second", "third"):
        assert core_rows(boxes[name]).any(), name  # each fixed line has its core
    doodle = boxes["doodle"]
    assert not page.core[
        round(doodle.y * scale) : round((doodle.y + doodle.height) * scale), round(doodle.x * scale) :
    ].any()  # the region marked not text is no line
    cut_row = round(boxes["second"].y * scale)
    assert not page.core[cut_row - 1 : cut_row + 1].any()  # the split keeps the two lines' cores apart

    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["train-segmenter", "--from-approved", "mine", "--config", str(tmp_path / "config.yaml"), "--out", str(out),
         "--minutes", "0.02", "--validation-fraction", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["steps"] >= 1 and (out / "model").is_dir()


def test_train_segmenter_without_pages_or_with_an_unknown_profile_says_what_to_give(tmp_path: Path) -> None:
    write_config(tmp_path)
    nothing = CliRunner().invoke(cli, ["train-segmenter", "--out", str(tmp_path / "run")])
    assert nothing.exit_code == 2 and "--source REPO=PATH" in nothing.output
    unknown = CliRunner().invoke(
        cli,
        ["train-segmenter", "--from-approved", "nobody", "--config", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert unknown.exit_code == 78 and "no profile 'nobody'" in unknown.output
