"""The training process of a background run: `python -m hwdaemon.learning RUN_FOLDER PARENT_PID`.

Rule: it never competes with reading. It lowers itself to nice 19 and one
thread (torch, ONNX Runtime, OpenCV) before it loads anything, dies with the
daemon (PR_SET_PDEATHSIG), and lets the learner stop and continue it with
SIGSTOP/SIGCONT while jobs are queued. It follows `train --from-corrections`'
rule: whole documents of the user's are held back, the fine-tuned model and its
mean with the base are measured on them, and the better of the two is installed
only when it reads them better than the base; otherwise the base stays and the
attempt records why. Its lines and base are frozen on the first start and its
checkpoint kept, so a process killed at any point is started again by the
learner and continues where the checkpoint left it.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import signal
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwdaemon.errors import HwdaemonError, NoInputError
from hwdaemon.learning.registry import Attempt, ModelRegistry, ModelVersion, Outcome
from hwdaemon.learning.runs import LearningRun, RunFolder

if TYPE_CHECKING:
    from hwdaemon.training.data import LineSample
    from hwdaemon.training.train import TrainSettings

CHECKPOINT_EVERY_STEPS = 10  # about 40 s of one core: what a kill -9 can cost
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class FrozenLines:
    """What a run learns from and is judged on, fixed at its first start so a resumed run sees the same."""

    base_version: int
    training: list[LineSample]
    held: list[LineSample]
    dropped_unspellable: int


def main(argv: list[str]) -> int:
    folder, parent = RunFolder(Path(argv[0])), int(argv[1])
    _stay_out_of_the_way(parent)
    run = folder.run()
    if run is None:
        return 0
    registry = ModelRegistry(run.registry_root, run.live)
    if folder.outcome() is not None or registry.has_run(run.run_id):
        return 0
    try:
        attempt = learn(run, folder, registry)
    except HwdaemonError as error:  # too few lines, a model that cannot be read: no use trying again
        attempt = _failed(run, str(error))
    except Exception as error:
        traceback.print_exc()
        attempt = _failed(
            run, f"{type(error).__name__}: {error}; the training process's output is in {folder.kept_log}"
        )
    with registry.locked():
        registry.record(attempt)
    folder.finish(attempt)
    return 0


def learn(run: LearningRun, folder: RunFolder, registry: ModelRegistry) -> Attempt:
    """Train from the base on the frozen lines, measure, and install the better candidate if it beats the base."""
    from hwdaemon.builtins.recognizers.handwriting_model import load_model
    from hwdaemon.training.corrections import fine_tune_candidates
    from hwdaemon.training.train import character_error_rate

    lines = _frozen_lines(run, folder, registry)
    base_folder = registry.folder_of(lines.base_version)
    cer_before = character_error_rate(load_model(base_folder), lines.held)
    with folder.progress.open("a", encoding="utf-8") as progress_log:

        def progress(event: dict[str, Any]) -> None:
            progress_log.write(_json_line(event))
            progress_log.flush()

        candidates = fine_tune_candidates(
            base_folder, lines.training, lines.held, folder.train_dir, settings_for(run), progress
        )
    kind = min(candidates, key=lambda name: candidates[name].cer)
    cer_after = candidates[kind].cer

    def attempt(outcome: Outcome, reason: str, version: int | None = None) -> Attempt:
        return Attempt(
            run_id=run.run_id, outcome=outcome, started_at=run.started_at, finished_at=time.time(),
            base_version=lines.base_version, version=version, training_lines=len(lines.training),
            held_back_lines=len(lines.held), cer_before=round(cer_before, 4), cer_after=round(cer_after, 4),
            candidates={name: round(candidate.cer, 4) for name, candidate in candidates.items()}, reason=reason,
        )  # fmt: skip

    if cer_after >= cer_before:
        return attempt(
            "kept",
            f"kept version {lines.base_version}: neither the fine-tuned model ({candidates['fine-tuned'].cer:.1%}) "
            f"nor its mean with the current one ({candidates['mean'].cer:.1%}) read the {len(lines.held)} held-back "
            f"line(s) better than it does ({cer_before:.1%})",
        )
    figures = ModelVersion(
        number=-1, origin="learnt", created_at=time.time(), digest="", base_version=lines.base_version, kind=kind,
        lines_learnt=len(lines.training), held_back_lines=len(lines.held), cer_before=round(cer_before, 4),
        cer_after=round(cer_after, 4), run_id=run.run_id,
    )  # fmt: skip
    with registry.locked():
        kept = [version for version in registry.versions() if version.run_id == run.run_id]  # killed after keeping
        version = kept[0] if kept else registry.add_learnt(candidates[kind].folder, figures)
        if registry.current() != version.number:
            registry.install(version.number)
    return attempt(
        "installed",
        f"version {version.number} ({kind}) reads the held-back lines at {cer_after:.1%}, "
        f"version {lines.base_version} at {cer_before:.1%}",
        version.number,
    )


def settings_for(run: LearningRun) -> TrainSettings:
    """The corrections recipe, with the profile's epochs and learning rate when set, and a checkpoint often enough that a kill costs little."""
    from hwdaemon.training.corrections import CORRECTIONS_SETTINGS

    return replace(
        CORRECTIONS_SETTINGS,
        epochs=run.epochs or CORRECTIONS_SETTINGS.epochs,
        learning_rate=run.learning_rate or CORRECTIONS_SETTINGS.learning_rate,
        checkpoint_every=CHECKPOINT_EVERY_STEPS,
        workers=0,
    )


def _frozen_lines(run: LearningRun, folder: RunFolder, registry: ModelRegistry) -> FrozenLines:
    """The lines and base of this run: read from the store on the first start, from `lines.pkl` after."""
    if folder.lines.is_file():
        with folder.lines.open("rb") as saved:
            frozen: FrozenLines = pickle.load(saved)  # our own file, written below
        return frozen
    from hwdaemon.builtins.recognizers.handwriting_model import load_model
    from hwdaemon.store import Store
    from hwdaemon.training.corrections import approved_lines, hold_back
    from hwdaemon.training.train import encodable

    with registry.locked():
        base = registry.adopt(run.reading_now)
    store = Store(run.state_dir)
    try:
        samples = approved_lines(store, run.state_dir, run.profile)
    finally:
        store.close()
    samples, unspellable = encodable(samples, load_model(registry.folder_of(base.number)).charset)
    if len(samples) < 4:
        raise NoInputError(f"only {len(samples)} approved line(s) the model can spell; approve a few more jobs")
    training, held = hold_back(samples, run.holdout_fraction)
    frozen = FrozenLines(base.number, training, held, unspellable)
    temporary = folder.lines.with_suffix(".tmp")
    with temporary.open("wb") as out:
        pickle.dump(frozen, out)
    temporary.replace(folder.lines)
    return frozen


def _failed(run: LearningRun, reason: str) -> Attempt:
    return Attempt(
        run_id=run.run_id, outcome="failed", started_at=run.started_at, finished_at=time.time(),
        base_version=None, reason=reason,
    )  # fmt: skip


def _stay_out_of_the_way(parent: int) -> None:
    """Lowest CPU priority, one thread everywhere, and no life after the daemon's."""
    os.nice(19 - os.nice(0))
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the daemon died before the line above took effect
        os._exit(0)
    import cv2
    import torch

    from hwdaemon.pipeline.onnx_runtime import set_threads

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    cv2.setNumThreads(1)
    set_threads(1)


def _json_line(event: dict[str, Any]) -> str:
    return json.dumps({**event, "at": round(time.time(), 1)}) + "\n"
