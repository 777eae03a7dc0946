"""Fixing a page's lines on the review page: delete, not text, restore, add, merge, split, move; and the check queue.

Through Starlette's test client over a real store, as test_review.py; the
exports are rendered from the stored revision by the same code the sinks use.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from PIL import Image
from starlette.testclient import TestClient

from hwdaemon import review
from hwdaemon.config import Config
from hwdaemon.export import render_bytes
from hwdaemon.line_edits import AddLine, MergeLines, SplitLine, apply_line_edit, clip, convex_hull
from hwdaemon.model import Box, Line, PageResult, Result, Word
from hwdaemon.plugins import Registry
from hwdaemon.review_queue import check_queue
from hwdaemon.store import Store
from hwdaemon.ui.app import create_app
from test_review import add_done_job, csrf_of, make_config

WIDTH, HEIGHT = 400, 200


def line_at(index: int, text: str, confidence: float, words: bool = False) -> Line:
    top = 10 + 45 * index
    polygon = ((10, top), (390, top), (390, top + 35), (10, top + 35))
    boxed: tuple[Word, ...] = ()
    if words:  # each word a box of its own, left to right
        x = 10
        parts = []
        for word in text.split():
            parts.append(Word(word, confidence, ((x, top), (x + 60, top), (x + 60, top + 35), (x, top + 35))))
            x += 80
        boxed = tuple(parts)
    return Line(text, confidence, polygon, ((10, top + 28), (390, top + 28)), boxed)


def letter(sha256: str = "cd" * 32, confidences: tuple[float, ...] = (0.95, 0.41, 0.88, 0.2)) -> Result:
    texts = ("Dear Margaret,", "OFFICIAL STAMP", "the garden is lovely", "yours ever")
    lines = tuple(
        line_at(index, text, confidence, words=True)
        for index, (text, confidence) in enumerate(zip(texts, confidences, strict=True))
    )
    return Result("letter.png", sha256, "default", (PageResult(1, WIDTH, HEIGHT, lines),))


@pytest.fixture
def setup(tmp_path: Path, registry: Registry) -> tuple[Config, Store, TestClient]:
    config = make_config(tmp_path, registry)
    store = Store(config.state_dir)
    client = TestClient(create_app(lambda: config), base_url="http://127.0.0.1:8765", follow_redirects=False)
    return config, store, client


def post(client: TestClient, job_id: int, token: str, **fields: str) -> tuple[int, str]:
    data = {
        "csrf_token": token,
        "page": "1",
        "reviewer": "Ada",
        **{key.replace("_", "-"): value for key, value in fields.items()},
    }
    response = client.post(f"/jobs/{job_id}/save", data=data)
    return response.status_code, response.headers.get("location", "") or response.text


def newest(store: Store, job_id: int) -> PageResult:
    revision = store.review.latest_revision(job_id)
    result = store.jobs.result_of(job_id, revision)
    assert result is not None
    return result.pages[0]


def test_each_fix_of_the_lines_is_a_new_revision_by_its_author(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    token = csrf_of(client, f"/jobs/{job_id}")

    assert post(client, job_id, token, op="not-text:1")[0] == 303  # the stamp
    page = newest(store, job_id)
    assert [line.text for line in page.lines] == ["Dear Margaret,", "the garden is lovely", "yours ever"]
    assert [region.text for region in page.not_text] == ["OFFICIAL STAMP"] and page.not_text[0].polygon == line_at(
        1, "", 0
    ).polygon

    assert post(client, job_id, token, op="restore:0")[0] == 303
    assert [line.text for line in newest(store, job_id).lines][
        1
    ] == "OFFICIAL STAMP"  # back in its place, read in order
    assert post(client, job_id, token, op="delete:1")[0] == 303
    assert [line.text for line in newest(store, job_id).lines] == [
        "Dear Margaret,",
        "the garden is lovely",
        "yours ever",
    ]

    status, location = post(client, job_id, token, op="add", box="20,100,200,30", new_text="  P.S. bring tea ")
    assert status == 303 and "saved+as+revision+4" in location
    page = newest(store, job_id)
    added = page.lines[2]  # after "the garden is lovely", on its row and to its right; before "yours ever"
    assert added.text == "P.S. bring tea" and added.confidence == 1.0
    assert added.polygon == Box(20, 100, 200, 30).polygon

    assert post(client, job_id, token, op="merge:1")[0] == 303  # "the garden is lovely" + the P.S.
    page = newest(store, job_id)
    assert [line.text for line in page.lines] == ["Dear Margaret,", "the garden is lovely P.S. bring tea", "yours ever"]
    merged = page.lines[1]
    assert merged.box == Box(10, 100, 380, 35) and merged.confidence == 0.88
    assert [word.text for word in merged.words] == ["the", "garden", "is", "lovely"]

    assert post(client, job_id, token, op="split:0", at="95,30", axis="x")[0] == 303
    page = newest(store, job_id)
    assert [line.text for line in page.lines[:2]] == ["Dear", "Margaret,"]
    assert page.lines[0].box == Box(10, 10, 85, 35) and page.lines[1].box == Box(95, 10, 295, 35)
    assert page.lines[0].baseline == ((10, 38), (95, 38)) and page.lines[1].baseline == ((95, 38), (390, 38))

    assert post(client, job_id, token, op="down:0")[0] == 303
    assert [line.text for line in newest(store, job_id).lines[:2]] == ["Margaret,", "Dear"]
    assert post(client, job_id, token, op="up:1")[0] == 303
    assert [line.text for line in newest(store, job_id).lines[:2]] == ["Dear", "Margaret,"]

    revisions = store.review.revisions(job_id)
    assert [item.number for item in revisions] == list(range(1, 9)) and {item.author for item in revisions} == {"Ada"}
    original = store.jobs.result_of(job_id)
    assert original is not None and original.pages[0].lines == letter().pages[0].lines  # revision 0 untouched


def test_text_typed_before_a_fix_is_saved_with_it(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    token = csrf_of(client, f"/jobs/{job_id}")
    status, _ = post(client, job_id, token, op="delete:1", **{"line-3": "yours ever, Ada"})
    assert status == 303
    page = newest(store, job_id)
    assert [line.text for line in page.lines] == ["Dear Margaret,", "the garden is lovely", "yours ever, Ada"]
    assert store.review.latest_revision(job_id) == 1


def test_fixes_need_the_csrf_token(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    csrf_of(client, f"/jobs/{job_id}")
    for token in ("", "f" * 43):
        status, _ = post(client, job_id, token, op="delete:0")
        assert status == 403
    assert store.review.latest_revision(job_id) == 0


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"op": "delete:9"}, "there is no line 10"),
        ({"op": "merge:3"}, "there is no line 5"),
        ({"op": "restore:0"}, "no not-text region 1"),
        ({"op": "explode:1"}, "one of save, add"),
        ({"op": "delete:-1"}, "expected VERB:LINE"),
        ({"op": "delete:1e9"}, "expected VERB:LINE"),
        ({"op": "add", "box": "390,150,40,30"}, "leaves the page"),
        ({"op": "add", "box": "-5,0,40,30"}, "leaves the page"),
        ({"op": "add", "box": "10,10,2,30"}, "at least 4×4 px"),
        ({"op": "add", "box": "10,10,40"}, "box: expected X,Y,WIDTH,HEIGHT"),
        ({"op": "add", "box": "nan,10,40,30"}, "box: expected"),
        ({"op": "add", "box": "1e300,10,40,30"}, "box: expected"),
        ({"op": "add", "box": "10,10,40,30", "new_text": "x" * 2001}, "at most 2000 characters"),
        ({"op": "split:0"}, "at: expected X,Y"),
        ({"op": "split:0", "at": "392,20"}, "outside the line"),
        ({"op": "split:0", "at": "100,20", "axis": "z"}, "axis: x"),
        ({"op": "delete:0", "checked": "two"}, "checked: line numbers"),
    ],
)
def test_a_fix_that_does_not_fit_is_a_clear_400_and_saves_nothing(
    setup: tuple[Config, Store, TestClient], fields: dict[str, str], says: str
) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    token = csrf_of(client, f"/jobs/{job_id}")
    status, body = post(client, job_id, token, **{"line-0": "typed before", **fields})
    assert status == 400 and says in body, body
    assert store.review.latest_revision(job_id) == 0


def test_a_fix_on_a_page_the_job_lacks_is_refused(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    token = csrf_of(client, f"/jobs/{job_id}")
    response = client.post(f"/jobs/{job_id}/save", data={"csrf_token": token, "page": "7", "op": "delete:0"})
    assert response.status_code == 400 and "no page 7" in response.text


def test_the_page_draws_the_revisions_lines_and_not_text_regions(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    token = csrf_of(client, f"/jobs/{job_id}")
    post(client, job_id, token, op="not-text:1")
    post(client, job_id, token, op="add", box="20,150,200,30", new_text="P.S.")
    html = client.get(f"/jobs/{job_id}").text
    assert len(re.findall(r'<polygon id="box-\d+"', html)) == 4 and 'id="nottext-0"' in html
    assert 'points="20,150 220,150 220,180 20,180 "' in html  # the drawn line, in page pixels
    assert 'value="restore:0"' in html and "was read as “OFFICIAL STAMP”" in html
    assert "<td>added</td>" in html and "<td>not text</td>" in html  # the changes table says what happened


def test_exports_follow_the_revisions_lines(setup: tuple[Config, Store, TestClient], tmp_path: Path) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    token = csrf_of(client, f"/jobs/{job_id}")
    post(client, job_id, token, op="not-text:1")
    post(client, job_id, token, op="delete:2")  # "yours ever"
    post(client, job_id, token, op="add", box="20,150,200,30", new_text="bring tea")
    post(client, job_id, token, op="split:0", at="95,30")
    result = store.jobs.result_of(job_id, store.review.latest_revision(job_id))
    assert result is not None
    expected = ["Dear", "Margaret,", "the garden is lovely", "bring tea"]

    assert render_bytes(result, "txt").decode().splitlines() == expected
    exported = json.loads(render_bytes(result, "json"))
    assert [line["text"] for line in exported["pages"][0]["lines"]] == expected
    assert [line["text"] for line in exported["pages"][0]["not_text"]] == ["OFFICIAL STAMP"]
    assert Result.from_dict(exported) == result  # the revision round-trips whole

    alto = etree.fromstring(render_bytes(result, "alto"))
    strings = alto.findall(".//{*}TextLine")
    assert [" ".join(s.get("CONTENT") for s in line.findall("{*}String")) for line in strings] == expected
    assert [(line.get("HPOS"), line.get("VPOS"), line.get("WIDTH")) for line in strings][3] == ("20", "150", "200")
    page_xml = etree.fromstring(render_bytes(result, "page"))
    unicode = [line.findtext("{*}TextEquiv/{*}Unicode") for line in page_xml.findall(".//{*}TextLine")]
    assert unicode == expected
    assert page_xml.findall(".//{*}TextLine")[0].find("{*}Coords").get("points").startswith("10,10")
    hocr = render_bytes(result, "hocr").decode()
    assert "OFFICIAL" not in hocr and "bbox 20 150 220 180" in hocr and "bbox 95 10 390 45" in hocr

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils not installed: scripts/setup --test")
    scan = tmp_path / "letter.png"
    Image.fromarray(np.full((HEIGHT, WIDTH), 255, np.uint8)).save(scan)
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(render_bytes(result, "pdf", original=scan))
    text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert "OFFICIAL" not in text and "yours" not in text and "bring tea" in text and "Margaret," in text


def test_split_cuts_the_outline_and_shares_the_words_and_text() -> None:
    slanted = Line("abc def ghi", 0.5, ((0, 0), (90, 10), (90, 40), (0, 30)))
    left, right = apply_line_edit(PageResult(1, 100, 50, (slanted,)), SplitLine(0, (30, 20), "x")).lines
    assert left.polygon == ((0, 0), (30, 3), (30, 33), (0, 30)) and right.polygon == (
        (30, 3),
        (90, 10),
        (90, 40),
        (30, 33),
    )
    assert (left.text, right.text) == ("abc", "def ghi")  # no word boxes: at the space nearest a third of the text
    top, bottom = apply_line_edit(PageResult(1, 100, 50, (slanted,)), SplitLine(0, (45, 20), "y")).lines
    assert top.box.y == 0 and top.box.y + top.box.height == 20 and bottom.box.y == 20
    assert (top.text, bottom.text, bottom.confidence) == ("abc def ghi", "", 0.0)  # the empty piece is checked first


def test_merge_takes_the_hull_and_keeps_a_side_by_side_baseline() -> None:
    left = Line("Dear", 0.9, Box(0, 0, 40, 20).polygon, ((0, 15), (40, 15)))
    right = Line("Sir", 0.4, Box(50, 2, 30, 20).polygon, ((50, 16), (80, 16)))
    page = apply_line_edit(PageResult(1, 100, 50, (left, right)), MergeLines(1, 0))
    (line,) = page.lines
    assert (
        line.text == "Dear Sir" and line.confidence == 0.4 and line.baseline == ((0, 15), (40, 15), (50, 16), (80, 16))
    )
    assert line.box == Box(0, 0, 80, 22)
    assert set(convex_hull(((0, 0), (10, 0), (5, 5), (10, 10), (0, 10)))) == {(0, 0), (10, 0), (10, 10), (0, 10)}
    assert clip(Box(0, 0, 10, 10).polygon, "x", 20, keep="above") == ()


def test_a_drawn_line_goes_in_reading_order_and_empty_ones_come_first_in_the_queue() -> None:
    page = PageResult(1, 400, 200, tuple(line_at(index, f"line {index}", 0.9) for index in range(3)))
    added = apply_line_edit(page, AddLine(Box(50, 44, 100, 12), ""))
    assert [line.text for line in added.lines] == ["line 0", "", "line 1", "line 2"] and added.lines[
        1
    ].confidence == 0.0
    right_of_first = apply_line_edit(page, AddLine(Box(395 - 40, 12, 40, 30), "x"))
    assert [line.text for line in right_of_first.lines][:2] == ["line 0", "x"]


def test_next_line_to_check_is_the_least_sure_across_the_profiles_jobs(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    first = add_done_job(store, config, letter("01" * 32, (0.95, 0.41, 0.88, 0.2)), name="a.png")
    second = add_done_job(store, config, letter("02" * 32, (0.15, 0.9, 0.9, 0.9)), name="b.png")
    approved = add_done_job(store, config, letter("03" * 32, (0.01, 0.9, 0.9, 0.9)), name="c.png")
    store.review.approve(approved, 0, "Ada", [])

    response = client.get("/check/next?profile=default")
    assert response.status_code == 303 and response.headers["location"] == f"/jobs/{second}?page=1&line=0#line-0"
    queue = client.get("/check?profile=default").text
    rows = re.findall(r'<a href="/jobs/(\d+)\?page=1&amp;line=(\d)#line-\d">', queue)
    assert rows[:3] == [(str(second), "0"), (str(first), "3"), (str(first), "1")]  # 15%, 20%, 41%
    assert "8 lines left" in queue  # the approved job's lines are not listed
    assert re.search(r'id="approved-since">4<', queue)  # the approved job's four lines, no model trained yet

    opened = client.get(f"/jobs/{second}?page=1&line=0").text
    assert re.search(r'id="line-0"[^>]*autofocus', opened) and 'name="checked" value="0"' in opened
    token = csrf_of(client, f"/jobs/{second}?page=1&line=0")
    # The reviewer read line 0, found it right, and went on: it leaves the queue, and the next one opens.
    saved = client.post(f"/jobs/{second}/save", data={"csrf_token": token, "page": "1", "checked": "0", "then": "next"})
    assert saved.status_code == 303 and saved.headers["location"].startswith(
        f"/jobs/{first}?page=1&line=3&message=saved"
    )
    assert newest(store, second).lines[0].confidence == 1.0 and newest(store, second).lines[0].text == "Dear Margaret,"
    assert check_queue(store, "default").total == 7

    store.review.approve(first, 0, "Ada", [])
    store.review.approve(second, 1, "Ada", [])
    done = client.get("/check/next?profile=default")
    assert done.status_code == 303 and done.headers["location"].startswith(
        "/check?profile=default&message=no+line+left"
    )
    assert re.search(r'id="approved-since">12<', client.get("/check?profile=default").text)
    assert client.get("/check/next?profile=nobody").status_code == 404
    assert client.get("/check?profile=nobody").status_code == 404


def test_a_fix_from_a_page_opened_before_another_save_is_refused(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    token = csrf_of(client, f"/jobs/{job_id}")
    assert 'name="revision" value="0"' in client.get(f"/jobs/{job_id}").text
    assert post(client, job_id, token, op="delete:0", revision="0")[0] == 303  # one reviewer deletes line 1
    status, body = post(
        client, job_id, token, op="delete:0", revision="0"
    )  # another, from the old page, would delete line 2
    assert status == 409 and "revision 1 was saved since you opened revision 0" in body
    assert store.review.latest_revision(job_id) == 1 and len(newest(store, job_id).lines) == 3
    assert post(client, job_id, token, op="delete:0", revision="x")[0] == 400


def test_control_characters_typed_or_pasted_never_reach_the_exports(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, letter())
    token = csrf_of(client, f"/jobs/{job_id}")
    status, _ = post(
        client,
        job_id,
        token,
        op="add",
        box="20,150,200,30",
        new_text="P.S.\x00 tea\x07",
        **{"line-0": "Dear\x1b Margaret,\r\n"},
    )
    assert status == 303
    result = store.jobs.result_of(job_id, 1)
    assert result is not None and [line.text for line in result.pages[0].lines][::4] == ["Dear Margaret,", "P.S. tea"]
    for format in ("alto", "page", "hocr"):
        exported = render_bytes(result, format)  # lxml refuses a control character: the export would fail
        assert b"tea" in exported and b"Margaret," in exported


def test_the_queue_reads_few_jobs_yet_finds_the_same_lines_as_ranking_them_all(
    setup: tuple[Config, Store, TestClient],
) -> None:
    config, store, _ = setup
    rng = random.Random(7)
    for number in range(40):
        confidences = tuple(round(rng.choice([0.2, 0.5, rng.random()]), 4) for _ in range(4))
        job_id = add_done_job(store, config, letter(f"{number:064x}", confidences), name=f"{number}.png", preview=False)
        if number % 7 == 0:  # a reviewer split a line: its empty piece (confidence 0) must come first
            review.save_revision(store, job_id, 1, {}, "ada", [SplitLine(2, (200, 117), "y")])
        if number % 11 == 0:
            store.review.approve(job_id, store.review.latest_revision(job_id), "ada", [])
    everything = []
    for row in store.review.rows("unreviewed", limit=100)[0]:
        revision = store.review.latest_revision(row.job.id)
        result = store.jobs.result_of(row.job.id, revision)
        assert result is not None
        everything += [
            (line.confidence, row.job.id, 1, index)
            for index, line in enumerate(result.pages[0].lines)
            if line.confidence < 1.0
        ]
    queue = check_queue(store, "default", limit=25)
    assert [(line.confidence, line.job_id, line.page, line.index) for line in queue.lines] == sorted(everything)[:25]
    assert queue.total == len(everything) and queue.lines[0].confidence == 0.0


def test_a_fix_changes_only_the_page_it_was_made_on(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    first, second = letter().pages[0], replace(letter().pages[0], number=2)
    job_id = add_done_job(store, config, replace(letter(), pages=(first, second)), preview=False)
    token = csrf_of(client, f"/jobs/{job_id}?page=2")
    response = client.post(f"/jobs/{job_id}/save", data={"csrf_token": token, "page": "2", "op": "delete:0"})
    assert response.status_code == 303 and "page=2" in response.headers["location"]
    result = store.jobs.result_of(job_id, 1)
    assert result is not None and result.pages[0] == first and len(result.pages[1].lines) == 3
    assert result.text.split("\f")[0].strip().splitlines()[0] == "Dear Margaret,"
