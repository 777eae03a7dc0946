"""The pure parts of watching: which names are taken, and when a file counts as settled."""

from __future__ import annotations

from pathlib import Path, PurePath

import pytest

from hwdaemon.daemon.filters import is_candidate
from hwdaemon.daemon.watcher import SettleTracker


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scan.png", True),
        ("Letter to Mum (2).JPG", True),
        (".hidden.png", False),
        ("scan.png.part", False),
        ("download.crdownload", False),
        ("~$draft.tif", False),
        (".~lock.notes#", False),
        ("x.tmp", False),
        ("processed/scan.png", False),
        ("failed/scan.png", False),
        ("sub/scan.png", False),
    ],
)
def test_candidate_names(name: str, expected: bool) -> None:
    assert is_candidate(PurePath(name), ["*"], [], recursive=False) is expected


def test_recursive_inbox_takes_subfolders_but_not_its_own_output_folders() -> None:
    assert is_candidate(PurePath("2024/june/scan.png"), ["*"], [], recursive=True)
    assert not is_candidate(PurePath("processed/scan.png"), ["*"], [], recursive=True)
    assert not is_candidate(PurePath("2024/.cache/scan.png"), ["*"], [], recursive=True)


def test_patterns_and_ignore_lists_apply() -> None:
    assert not is_candidate(PurePath("notes.txt"), ["*.png", "*.jpg"], [], recursive=False)
    assert not is_candidate(PurePath("draft-scan.png"), ["*"], ["draft-*"], recursive=False)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_growing_file_settles_only_after_it_stops_changing(tmp_path: Path) -> None:
    clock = Clock()
    tracker = SettleTracker(lambda index: 2.0, clock)
    path = tmp_path / "scan.png"
    path.write_bytes(b"x" * 10)
    tracker.touch(0, path)
    for _ in range(5):  # keeps growing, with no watch events at all (e.g. NFS)
        clock.now += 2.5
        with path.open("ab") as stream:
            stream.write(b"y" * 10)
        assert tracker.settled() == []
    clock.now += 2.5
    assert tracker.settled() == [(0, path)]
    assert len(tracker) == 0


def test_event_restarts_the_quiet_period(tmp_path: Path) -> None:
    clock = Clock()
    tracker = SettleTracker(lambda index: 2.0, clock)
    path = tmp_path / "scan.png"
    path.write_bytes(b"data")
    tracker.touch(0, path)
    clock.now += 1.5
    tracker.touch(0, path)
    clock.now += 1.5
    assert tracker.settled() == []
    clock.now += 0.6
    assert tracker.settled() == [(0, path)]


def test_file_removed_before_settling_is_forgotten(tmp_path: Path) -> None:
    clock = Clock()
    tracker = SettleTracker(lambda index: 1.0, clock)
    path = tmp_path / "gone.png"
    path.write_bytes(b"data")
    tracker.touch(0, path)
    path.unlink()
    clock.now += 5
    assert tracker.settled() == [] and len(tracker) == 0
