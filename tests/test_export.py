"""Results round-trip through JSON; CSV and text exports have the documented shape."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from hwdaemon.export import CSV_COLUMNS, to_csv, to_json, to_txt, write_atomic
from hwdaemon.model import Box, Line, PageResult, Result

RESULT = Result(
    source="scans/letter.tiff",
    sha256="ab" * 32,
    profile="default",
    pages=(
        PageResult(
            1,
            800,
            600,
            (
                Line("Dear Sir,", 0.91, Box(10, 20, 200, 40).polygon),
                Line("thank you", 0.42, Box(10, 70, 220, 40).polygon),
            ),
        ),
        PageResult(2, 800, 600, (Line("Yours, Émile", 0.77, Box(12, 30, 180, 38).polygon),)),
    ),
    timings={"preprocess": 0.1, "detect": 0.2, "recognize": 1.5, "postprocess": 0.0},
)


def test_json_round_trips_the_result() -> None:
    assert Result.from_dict(json.loads(to_json(RESULT))) == RESULT


def test_csv_has_one_row_per_line_with_box_columns() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(RESULT))))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [(row["page"], row["line"], row["text"]) for row in rows] == [
        ("1", "1", "Dear Sir,"),
        ("1", "2", "thank you"),
        ("2", "1", "Yours, Émile"),
    ]
    assert (rows[1]["x"], rows[1]["y"], rows[1]["w"], rows[1]["h"]) == ("10", "70", "220", "40")


def test_text_separates_pages_with_a_form_feed() -> None:
    assert to_txt(RESULT) == "Dear Sir,\nthank you\n\f\nYours, Émile\n"


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out.txt"
    write_atomic(target, "first")
    write_atomic(target, "second")
    assert target.read_text() == "second"
    assert [path.name for path in target.parent.iterdir()] == ["out.txt"]


def test_text_can_label_pages_with_headers() -> None:
    assert to_txt(RESULT, "header") == "--- page 1 ---\nDear Sir,\nthank you\n--- page 2 ---\nYours, Émile\n"


@pytest.mark.parametrize("formats", [["txt", "json"], ["txt"]])
def test_file_sink_replaces_its_own_file_and_never_anothers(tmp_path: Path, formats: list[str]) -> None:
    from dataclasses import replace

    from hwdaemon.builtins.sinks import FileSink, FileSinkOptions
    from hwdaemon.plugin_api import Artifacts

    sink = FileSink(FileSinkOptions(path=tmp_path, formats=formats), "outbox")
    first = RESULT
    sink.deliver(first, Artifacts("k1", "note.png"))
    corrected = replace(
        first,
        pages=(replace(first.pages[0], lines=(replace(first.pages[0].lines[0], text="fixed by hand"),)),),
        revision=1,
    )
    receipt = sink.deliver(corrected, Artifacts("k1:r1", "note.png"))
    assert receipt.location.split(", ")[0] == str(tmp_path / "note.txt")
    assert (tmp_path / "note.txt").read_text().startswith("fixed by hand")
    other = replace(first, sha256="ff" * 32)
    elsewhere = sink.deliver(other, Artifacts("k2", "note.png"))
    assert elsewhere.location.split(", ")[0] == str(tmp_path / "note-ffffffff.txt")
    assert (tmp_path / "note.txt").read_text().startswith("fixed by hand")


def test_an_interrupted_write_leaves_nothing_once_retried(tmp_path: Path) -> None:
    target = tmp_path / "note.txt"
    (tmp_path / ".note.txt.k3j2h1.tmp").write_text("half a resu")  # what kill -9 mid-write leaves
    (tmp_path / ".other.txt.abc.tmp").write_text("another file's write in progress")
    write_atomic(target, "whole")
    assert target.read_text() == "whole"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".other.txt.abc.tmp", "note.txt"]
