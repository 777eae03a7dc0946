"""A line's words and baseline: measured ones pass through, missing ones are estimated from the line's box."""

from __future__ import annotations

from hwdaemon.layout import baseline_of, words_of
from hwdaemon.model import Box, Line, Word


def test_measured_words_and_baseline_are_kept() -> None:
    words = (Word("Dear", 0.9, Box(10, 20, 60, 40).polygon), Word("Sir,", 0.8, Box(80, 22, 50, 38).polygon))
    line = Line("Dear Sir,", 0.85, Box(10, 20, 120, 40).polygon, baseline=((10, 52), (130, 55)), words=words)
    assert words_of(line) == words
    assert baseline_of(line) == ((10, 52), (130, 55))


def test_missing_words_split_the_box_by_character_counts() -> None:
    line = Line("ab cdef", 0.7, Box(100, 50, 70, 20).polygon)  # 7 characters, 10 px each
    words = words_of(line)
    assert [word.text for word in words] == ["ab", "cdef"]
    assert [(word.box.x, word.box.y, word.box.width, word.box.height) for word in words] == [
        (100, 50, 20, 20),
        (130, 50, 40, 20),
    ]
    assert {word.confidence for word in words} == {0.7}


def test_runs_of_spaces_make_no_empty_words() -> None:
    line = Line("  one   two ", 0.5, Box(0, 0, 120, 10).polygon)
    assert [word.text for word in words_of(line)] == ["one", "two"]
    assert [word.box.x for word in words_of(line)] == [20, 80]


def test_an_empty_line_has_no_words() -> None:
    assert words_of(Line("", 0.0, Box(0, 0, 10, 10).polygon)) == ()


def test_words_follow_the_bounding_box_of_an_outline() -> None:
    outline = ((10, 30), (60, 20), (110, 25), (110, 60), (10, 55))
    line = Line("x", 0.6, outline)
    (word,) = words_of(line)
    assert (word.box.x, word.box.y, word.box.width, word.box.height) == (10, 20, 100, 40)


def test_missing_baseline_runs_across_the_box_at_four_fifths_of_its_height() -> None:
    line = Line("text", 0.9, Box(40, 100, 200, 50).polygon)
    assert baseline_of(line) == ((40, 140), (240, 140))
