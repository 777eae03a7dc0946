"""Learn the user's hand: fine-tune a profile's model on lines people approved, install it only if it reads them better.

The lines come from jobs approved on the review page (their approved revision,
cropped from the page previews the daemon kept) or from a manifest the user
gives. Whole documents are held back. Two candidates are measured on them
beside the current model: the fine-tuned one, and the mean of its weights and
the current model's (which keeps more of what the current model knew, and
wins where the user's lines teach little). The better candidate replaces the
profile's model only when its CER there is lower than the current one's. The
previous model is kept beside it. Both candidates carry the words of the lines
they learnt from (their card's `learnt_words`, added to what the current model
had learnt), which their beam decoder spells as the profile's own words.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from hwdaemon.builtins.recognizers.handwriting_model import LEARNT_WORDS, load_model
from hwdaemon.daemon.previews import preview_path
from hwdaemon.errors import ConfigError, NoInputError
from hwdaemon.modelfolder import HANDWRITING
from hwdaemon.store import Store
from hwdaemon.training.average import average_models
from hwdaemon.training.data import LineSample, crop_polygon, read_manifest_lines
from hwdaemon.training.run import split_by_document
from hwdaemon.training.train import Progress, TrainSettings, character_error_rate, encodable, train

CORRECTIONS_SOURCE = "review-page"
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")  # letters, with inner apostrophes and hyphens: aujourd'hui
# Chosen on three 19th-century writers the shipped model never saw (docs/model-card.md): 3 epochs at 1e-4 under-trained;
# batches of 8 read better than 16 on every writer measured (docs/accuracy.md, "Learning one hand").
CORRECTIONS_SETTINGS = TrainSettings(epochs=10, batch_size=8, learning_rate=3e-4, patience=99)


@dataclass(frozen=True, slots=True)
class CorrectionsRequest:
    profile: str
    current_model: Path  # the folder the profile reads with now
    install_to: Path  # the profile's trained-model folder
    samples: list[LineSample]
    work_dir: Path
    holdout_fraction: float = 0.25
    settings: TrainSettings = CORRECTIONS_SETTINGS


def approved_lines(store: Store, state_dir: Path, profile: str) -> list[LineSample]:
    """Every line of every approved job of `profile`, cropped from its page preview; one document per job."""
    samples = []
    for job_id, revision in store.review.approved_jobs(profile):
        result = store.jobs.result_of(job_id, revision)
        if result is None:
            continue
        for page in result.pages:
            path = preview_path(state_dir, job_id, page.number)
            if not path.is_file():
                continue
            with Image.open(path) as opened:
                preview = opened.convert("L")
            scale = preview.width / page.width if page.width else 1.0
            for line in page.lines:
                if line.text.strip():
                    polygon = [(x * scale, y * scale) for x, y in line.polygon]
                    samples.append(
                        LineSample(
                            line.text,
                            CORRECTIONS_SOURCE,
                            f"job-{job_id}",
                            crop_polygon(preview, polygon, margin=4, grow=3),
                        )
                    )
    return samples


def manifest_lines(manifest: Path) -> list[LineSample]:
    """Line items of a user's manifest; each image counts as its own document unless `source` groups them."""
    return [
        LineSample(sample.text, sample.repository or CORRECTIONS_SOURCE, sample.document, sample.image)
        for sample in read_manifest_lines(manifest)
    ]


def hold_back(samples: list[LineSample], fraction: float) -> tuple[list[LineSample], list[LineSample]]:
    """Training lines and held-back lines: whole documents when there are several, else the last lines."""
    training, held = split_by_document(samples, fraction)
    if not held:  # one document: hold back its last lines instead
        count = max(1, round(len(samples) * fraction))
        training, held = samples[:-count], samples[-count:]
    return training, held


@dataclass(frozen=True, slots=True)
class Candidate:
    folder: Path  # a model folder
    cer: float  # on the held-back lines


def fine_tune_candidates(
    current_model: Path, training: list[LineSample], held: list[LineSample], run_dir: Path, settings: TrainSettings, progress: Progress | None = None,
) -> dict[str, Candidate]:  # fmt: skip
    """The two models that may replace the current one, each with its CER on `held`: "fine-tuned" and its "mean" with the current."""
    folders = fine_tune(current_model, training, run_dir, settings, progress)
    return {kind: Candidate(folder, character_error_rate(load_model(folder), held)) for kind, folder in folders.items()}


def fine_tune(
    current_model: Path,
    training: list[LineSample],
    run_dir: Path,
    settings: TrainSettings,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Train on the user's lines into `run_dir`; the folders of the "fine-tuned" model and of its "mean" with the current one."""
    train(training, [], run_dir, current_model, settings, progress)
    average_models([current_model, run_dir / "model"], run_dir / "mean")
    folders = {"fine-tuned": run_dir / "model", "mean": run_dir / "mean"}
    words = sorted(words_of(training) | set(_card(current_model).get(LEARNT_WORDS, ())))
    for folder in folders.values():
        _write_card(folder, {**_card(folder), LEARNT_WORDS: words})
    return folders


def words_of(samples: list[LineSample]) -> frozenset[str]:
    """The words of the user's lines, lower-cased: the new model's `learnt_words`, which its beam decoder spells readily."""
    return frozenset(word.lower() for sample in samples for word in WORD.findall(sample.text))


def _card(folder: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads((folder / HANDWRITING.card_file).read_text(encoding="utf-8"))
    return card


def _write_card(folder: Path, card: dict[str, Any]) -> None:
    (folder / HANDWRITING.card_file).write_text(json.dumps(card, ensure_ascii=False, indent=2), encoding="utf-8")


def learn_from_corrections(request: CorrectionsRequest, progress: Progress | None = None) -> dict[str, Any]:
    """Fine-tune, compare on the held-back lines, install only a better model; returns what happened."""
    current = load_model(request.current_model)
    samples, unspellable = encodable(request.samples, current.charset)
    if len(samples) < 4:
        raise NoInputError(
            f"only {len(samples)} corrected line(s) for profile {request.profile!r}; approve a few more jobs on the review page first"
        )
    training, held = hold_back(samples, request.holdout_fraction)
    if not training:
        raise NoInputError("every corrected line was held back; approve more jobs first")
    current_cer = character_error_rate(current, held)
    run_dir = Path(tempfile.mkdtemp(prefix=f"corrections-{request.profile}-", dir=request.work_dir))
    try:
        candidates = fine_tune_candidates(request.current_model, training, held, run_dir, request.settings, progress)
        chosen = min(candidates, key=lambda kind: candidates[kind].cer)
        new_cer = candidates[chosen].cer
        installed = new_cer < current_cer
        if installed:
            note = {"fine_tuned_from": str(request.current_model), "kind": chosen, "held_back_cer": round(new_cer, 4)}
            _install(candidates[chosen].folder, request.install_to, note)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "profile": request.profile,
        "training_lines": len(training),
        "held_back_lines": len(held),
        "dropped_unspellable": unspellable,
        "current_model": str(request.current_model),
        "current_cer": round(current_cer, 4),
        "new_cer": round(new_cer, 4),
        "fine_tuned_cer": round(candidates["fine-tuned"].cer, 4),
        "mean_cer": round(candidates["mean"].cer, 4),
        "new_model": chosen,
        "installed": installed,
        "model": str(request.install_to) if installed else str(request.current_model),
    }


def _install(candidate: Path, target: Path, note: dict[str, Any]) -> None:
    """Swap `candidate` in as `target`, keeping the old one as `<target>.previous`."""
    _write_card(candidate, {**_card(candidate), **note})
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(candidate, staging)
    previous = target.with_name(f"{target.name}.previous")
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        target.rename(previous)
    staging.rename(target)


def check_profile_reads_handwriting(recognizer_type: str, profile: str) -> None:
    if recognizer_type != "handwriting":
        raise ConfigError(
            f"profile {profile!r} reads with {recognizer_type!r}; only the `handwriting` recognizer learns from corrections"
        )
