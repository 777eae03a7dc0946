"""One background training of a profile, as its folder on disk: what to do, how far it got, how it ended.

Rule: the folder is the run's whole state, so a run survives any crash. The
learner writes `run.json` before it starts the training process; that process
freezes its lines and base version in `lines.pkl` on its first start, keeps its
checkpoint under `train/`, and writes `outcome.json` last. A folder with a
`run.json` and no `outcome.json` is a run to resume; one with an `outcome.json`
is finished and removed.

    <state_dir>/learning/<profile>/run/
        run.json       LearningRun
        lines.pkl      the training and held-back lines, the base version (first start)
        train/         checkpoint.pt, model/, mean/
        progress.jsonl one line per optimiser step and epoch
        starts         how many training processes for it ended by a fault (or run now)
        paused         present while the learner holds the process stopped
        outcome.json   the Attempt, once decided
        trainer.log    the training process's own output (kept as ../last-trainer.log when the run is cleared)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwdaemon.export import write_atomic
from hwdaemon.learning.registry import Attempt

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class LearningRun:
    """What the training process is asked to do; written once by the learner."""

    run_id: str
    profile: str
    state_dir: Path  # the store and the page previews the approved lines are cropped from
    registry_root: Path
    live: Path  # the folder the profile's recognizer reads, where a better model is installed
    reading_now: Path  # the model the profile read when the run was planned: the base, unless it is a kept version
    started_at: float
    epochs: float | None  # None: the corrections recipe's
    learning_rate: float | None  # None: the corrections recipe's
    holdout_fraction: float
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearningRun:
        paths = ("state_dir", "registry_root", "live", "reading_now")
        values: dict[str, Any] = {key: Path(value) if key in paths else value for key, value in data.items()}
        return cls(**values)


class RunFolder:
    """The folder of a profile's run in progress (at most one per profile)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, state_dir: Path, profile: str) -> RunFolder:
        return cls(state_dir / "learning" / profile / "run")

    @property
    def lines(self) -> Path:
        return self.path / "lines.pkl"

    @property
    def train_dir(self) -> Path:
        return self.path / "train"

    @property
    def progress(self) -> Path:
        return self.path / "progress.jsonl"

    @property
    def log(self) -> Path:
        return self.path / "trainer.log"

    def plan(self, run: LearningRun) -> None:
        self.clear()
        self.path.mkdir(parents=True)
        write_atomic(self.path / "run.json", json.dumps(run.to_dict(), indent=2))

    def run(self) -> LearningRun | None:
        """The planned run; None when there is none, or its file cannot be read (the next plan replaces it)."""
        try:
            return LearningRun.from_dict(json.loads((self.path / "run.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def outcome(self) -> Attempt | None:
        try:
            return Attempt.from_dict(json.loads((self.path / "outcome.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def finish(self, attempt: Attempt) -> None:
        write_atomic(self.path / "outcome.json", json.dumps(attempt.to_dict(), indent=2))

    def count_start(self) -> int:
        """One more start of a training process for this run; returns how many there have been."""
        path = self.path / "starts"
        starts = int(path.read_text()) + 1 if path.is_file() else 1
        write_atomic(path, str(starts))
        return starts

    def uncount_start(self) -> None:
        """The last start ended by the daemon (stopping, learning turned off), not by a fault: it does not count."""
        path = self.path / "starts"
        if path.is_file():
            write_atomic(path, str(max(0, int(path.read_text()) - 1)))

    def set_paused(self, is_paused: bool) -> None:
        marker = self.path / "paused"
        if is_paused:
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def is_paused(self) -> bool:
        return (self.path / "paused").exists()

    def last_progress(self) -> dict[str, Any] | None:
        """The newest line the training wrote: epoch, batch, steps."""
        if not self.progress.is_file():
            return None
        for line in reversed(self.progress.read_text(encoding="utf-8").splitlines()):
            try:
                event: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue
            return event
        return None

    @property
    def kept_log(self) -> Path:
        """Where the training process's output stays once its run is cleared: the reason of a failed run points here."""
        return self.path.parent / "last-trainer.log"

    def clear(self) -> None:
        if self.log.is_file():
            self.log.replace(self.kept_log)
        shutil.rmtree(self.path, ignore_errors=True)
