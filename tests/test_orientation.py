"""Pages that arrive turned a quarter, a half or three quarters round are read upright; upright pages are never turned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from conftest import DEV_DATA, character_error_rate
from hwdaemon.config import InputsConfig, ModelsConfig, ProfileConfig, parse_config
from hwdaemon.errors import ConfigError
from hwdaemon.evaluation import evaluate, read_manifest
from hwdaemon.model import Document, Image, Page
from hwdaemon.pipeline import Pipeline
from hwdaemon.pipeline.geometry import map_points
from hwdaemon.pipeline.orientation import detect_orientation, rotate_upright
from hwdaemon.plugins import Registry
from rendering import render_lines, save

LETTER = [
    "Dear Anna, thank you for the parcel",
    "the garden is full of roses this year",
    "and the children send their love",
    "see you at the station on Sunday",
    "with all my best wishes, Paul",
]
UPRIGHT_PAGES = {
    "letter": lambda: render_lines(LETTER),
    "one line": lambda: render_lines(["buy milk and bread before lunch"]),
    "two lines": lambda: render_lines(["meeting moved to Tuesday", "call the bank about the letter"]),
    "ruled": lambda: render_lines(LETTER[:3], ruled=True),
    "small writing": lambda: render_lines(LETTER, font_size=24),
    "a list": lambda: render_lines(["eggs", "flour", "sugar", "butter", "lemons"]),
}


def arrived(image: Image, degrees_clockwise: int) -> Image:
    """`image` as a scanner that turned it `degrees_clockwise` delivers it."""
    return np.ascontiguousarray(np.rot90(image, -degrees_clockwise // 90))


def pipeline(registry: Registry, orientation: str = "auto") -> Pipeline:
    return Pipeline.from_profile("default", ProfileConfig(orientation=orientation), ModelsConfig(), registry)  # type: ignore[arg-type]


def read(pipe: Pipeline, image: Image) -> tuple[str, int, tuple[int, int]]:
    page = pipe.run(Document(source="page.png", sha256="0" * 64, pages=[Page(number=1, image=image)])).pages[0]
    return page.text, page.orientation, (page.width, page.height)


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_a_written_page_is_found_at_each_quarter_turn(registry: Registry, degrees: int) -> None:
    for size in (40, 28):
        page = render_lines(LETTER, font_size=size)
        assert detect_orientation(arrived(page, degrees), pipeline(registry).recognizer) == degrees


@pytest.mark.parametrize("name", sorted(UPRIGHT_PAGES))
def test_an_upright_page_is_never_turned(registry: Registry, name: str) -> None:
    assert detect_orientation(UPRIGHT_PAGES[name](), pipeline(registry).recognizer) == 0


def test_upright_dev_pages_are_never_turned_and_turned_ones_are_found(
    registry: Registry, dev_manifest: list[dict[str, str]]
) -> None:
    recognizer = pipeline(registry).recognizer
    pages = [item for item in dev_manifest if item["kind"] == "page"]
    assert pages
    for item in pages:
        gray = np.asarray(PILImage.open(DEV_DATA / item["image"]).convert("L"))
        found = {degrees: detect_orientation(arrived(gray, degrees), recognizer) for degrees in (0, 90, 180, 270)}
        assert found == {0: 0, 90: 90, 180: 180, 270: 270}, item["id"]


def test_a_blank_or_tiny_page_is_left_as_it_came(registry: Registry) -> None:
    recognizer = pipeline(registry).recognizer
    assert detect_orientation(np.full((300, 200), 255, dtype=np.uint8), recognizer) == 0
    assert detect_orientation(np.full((3, 2), 0, dtype=np.uint8), recognizer) == 0


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_turning_upright_reports_where_each_pixel_went(degrees: int) -> None:
    image = np.zeros((30, 50, 3), dtype=np.uint8)
    image[7, 11] = 255  # row 7, column 11: the point (11, 7)
    upright, matrix = rotate_upright(arrived(image, degrees), degrees)
    assert upright.shape == image.shape
    assert upright[7, 11].tolist() == [255, 255, 255]
    turned = arrived(image, degrees)
    row, column = (int(index) for index in np.argwhere(turned[:, :, 0])[0])
    assert map_points(matrix, [(column, row)], upright.shape[1], upright.shape[0]) == ((11, 7),)


def test_a_sideways_page_reads_as_upright_in_the_original_frame(registry: Registry) -> None:
    page = render_lines(LETTER)
    upright_text, upright_orientation, _ = read(pipeline(registry), page)
    assert upright_orientation == 0
    for degrees in (90, 180, 270):
        image = arrived(page, degrees)
        result = pipeline(registry).run(Document(source="p.png", sha256="0" * 64, pages=[Page(1, image)]))
        (read_page,) = result.pages
        assert read_page.orientation == degrees
        assert (read_page.width, read_page.height) == (image.shape[1], image.shape[0])  # the page as it came
        assert character_error_rate(upright_text, read_page.text) < 0.02
        first = read_page.lines[0].box  # "Dear Anna": the top line upright, found where the turn put it
        if degrees == 90:
            assert first.x > image.shape[1] / 2  # top of the page turned clockwise: the right-hand side
        elif degrees == 180:
            assert first.y > image.shape[0] / 2
        else:
            assert first.x + first.width < image.shape[1] / 2


def test_orientation_off_reads_the_page_as_it_came(registry: Registry) -> None:
    page = render_lines(LETTER)
    upright_text, _, _ = read(pipeline(registry, "off"), page)
    assert read(pipeline(registry, "off"), page)[1] == 0
    text, orientation, _ = read(pipeline(registry, "off"), arrived(page, 180))
    assert orientation == 0
    assert character_error_rate(upright_text, text) > 0.5  # not turned: read upside down


def test_orientation_is_auto_by_default_and_checked_at_load(registry: Registry) -> None:
    assert ProfileConfig().orientation == "auto"
    for written in ("off", '"off"'):  # YAML reads a bare off as false
        config = parse_config(f"profiles:\n  scans:\n    orientation: {written}\n", "cfg.yaml", registry)
        assert config.profile("scans").orientation == "off"
    with pytest.raises(ConfigError, match=r"cfg.yaml:3 profiles.scans.orientation"):
        parse_config("profiles:\n  scans:\n    orientation: sideways\n", "cfg.yaml", registry)


def test_eval_reads_turned_pages_as_upright_with_auto_and_not_with_off(registry: Registry, tmp_path: Path) -> None:
    save(render_lines(LETTER), tmp_path / "letter.png")
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "letter.png", "text": "\n".join(LETTER), "kind": "page"}))
    items = read_manifest(tmp_path / "m.jsonl")
    for mode, worst, best in (("auto", 0.0, 0.05), ("off", 0.5, 10.0)):
        report = evaluate(pipeline(registry, mode), items, InputsConfig(), turned_degrees=90).to_dict()
        assert worst <= report["all"]["cer"] <= best, mode
