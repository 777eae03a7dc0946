"""One training run from the CLI's request: gather samples, hold out validation documents, train, report."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from hwdaemon.errors import NoInputError
from hwdaemon.training.crnn import CHARSET_V1
from hwdaemon.training.data import LineSample, PageImageMissingError, load_samples
from hwdaemon.training.exclusion import ExclusionList
from hwdaemon.training.synthetic import SYNTHETIC_SEED, SYNTHETIC_SOURCE, default_fonts, synthetic_samples
from hwdaemon.training.train import TRAINING_SEED, TrainSettings, encodable, train

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class TrainRequest:
    sources: list[tuple[str, Path]]
    exclusions: Path
    out: Path
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 3e-4
    validation_fraction: float = 0.05
    max_repeats: int = 3
    drop_patterns: list[str] | None = None
    max_minutes: float | None = None
    device: str = "auto"
    base: Path | None = None  # one of our model folders to continue from; default EasyOCR's english_g2
    synthetic: int = 0  # rendered lines added to the real ones
    fonts: list[Path] | None = None  # for the synthetic lines; default: the Debian handwriting fonts found
    synthetic_languages: list[str] | None = None
    line_types: dict[str, list[str]] | None = None  # repository -> the only line types kept (e.g. Handwritten)
    oversample: dict[str, int] | None = None  # repository -> times its training lines are repeated per epoch
    schedule: str = "constant"
    seed: int = 0  # added to the fixed seeds of the synthetic lines, batch order and augmentation
    workers: int = 0  # processes rendering synthetic lines and preparing batches (a GPU needs them; 2 CPU cores don't)


def expand_sources(sources: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    files: list[tuple[str, Path]] = []
    for repository, path in sources:
        if path.is_dir():
            files.extend((repository, xml) for xml in sorted(path.rglob("*.xml")))
        else:
            files.append((repository, path))
    return files


def thin(samples: list[LineSample], max_repeats: int, drop_patterns: list[str]) -> list[LineSample]:
    """Drop lines matching a pattern, and keep each exact text at most `max_repeats` times."""
    compiled = [re.compile(pattern) for pattern in drop_patterns]
    seen: Counter[str] = Counter()
    kept = []
    for sample in samples:
        if any(pattern.search(sample.text) for pattern in compiled):
            continue
        seen[sample.text] += 1
        if seen[sample.text] <= max_repeats:
            kept.append(sample)
    return kept


def keep_line_types(samples: list[LineSample], line_types: dict[str, list[str]]) -> list[LineSample]:
    """Where a repository is given line types, only its lines of those types (Stanford: handwriting, not typescript)."""
    return [
        s
        for s in samples
        if s.repository not in line_types or any(s.is_type(wanted) for wanted in line_types[s.repository])
    ]


def repeat_sources(samples: list[LineSample], times: dict[str, int]) -> list[LineSample]:
    """A small source weighs more when its lines come round several times an epoch (training side only)."""
    return [copy for sample in samples for copy in [sample] * max(1, times.get(sample.repository, 1))]


def split_by_document(
    samples: list[LineSample], fraction: float, seed: int = 1
) -> tuple[list[LineSample], list[LineSample]]:
    """Hold out whole documents (never lines of a document seen in training) for validation."""
    documents = sorted({(sample.repository, sample.document) for sample in samples})
    random.Random(seed).shuffle(documents)
    held = set(documents[: max(1, int(len(documents) * fraction))]) if fraction > 0 and len(documents) > 1 else set()
    return [s for s in samples if (s.repository, s.document) not in held], [
        s for s in samples if (s.repository, s.document) in held
    ]


def load_sources(
    sources: list[tuple[str, Path]], exclusions: ExclusionList, line_types: dict[str, list[str]], max_repeats: int, drop_patterns: list[str],
) -> tuple[list[LineSample], int]:  # fmt: skip
    """The sources' labelled lines as training sees them (excluded documents never loaded, filters applied); and how many documents were skipped."""
    image_roots = {repository: path if path.is_dir() else path.parent for repository, path in sources}
    samples: list[LineSample] = []
    skipped = 0
    for repository, path in expand_sources(sources):
        try:
            samples.extend(load_samples([(repository, path)], exclusions, image_dir=image_roots[repository].parent))
        except PageImageMissingError as exc:  # snapshots of big repositories lack some images: train on the rest
            skipped += 1
            log.warning("training_document_skipped", error=str(exc))
    return thin(keep_line_types(samples, line_types), max_repeats, drop_patterns), skipped


def run_training(request: TrainRequest) -> dict[str, Any]:
    from hwdaemon.builtins.easyocr_reader import embedded_model_dir

    exclusions = ExclusionList.load(request.exclusions)
    samples, skipped = load_sources(
        request.sources, exclusions, request.line_types or {}, request.max_repeats, request.drop_patterns or []
    )
    if request.synthetic:
        fonts, languages = request.fonts or default_fonts(), request.synthetic_languages or ["en"]
        samples += synthetic_samples(
            request.synthetic, fonts, CHARSET_V1, languages, seed=SYNTHETIC_SEED + request.seed, workers=request.workers
        )
    samples, unspellable = encodable(samples, CHARSET_V1)
    if not samples:
        raise NoInputError("no training lines found in the sources (after exclusions and filters)")
    training, validation = split_by_document(samples, request.validation_fraction)
    training = repeat_sources(training, request.oversample or {})
    log.info(
        "training_data", lines=len(training), validation_lines=len(validation), dropped_unspellable=unspellable,
        synthetic=sum(1 for sample in training if sample.repository == SYNTHETIC_SOURCE),
    )  # fmt: skip
    request.out.mkdir(parents=True, exist_ok=True)
    progress_log = (request.out / "train.jsonl").open("a", encoding="utf-8")

    def progress(event: dict[str, Any]) -> None:
        progress_log.write(json.dumps(event) + "\n")
        progress_log.flush()
        if "validation_cer" in event or event.get("batch", 0) % 20 == 0:
            log.info("training_progress", **event)

    settings = TrainSettings(
        epochs=request.epochs, batch_size=request.batch_size, learning_rate=request.learning_rate,
        max_minutes=request.max_minutes, device=request.device, schedule=request.schedule, seed=TRAINING_SEED + request.seed,
        workers=request.workers,
    )  # fmt: skip
    try:
        base = request.base or embedded_model_dir() / "english_g2.pth"
        state = train(training, validation, request.out, base, settings, progress)
    finally:
        progress_log.close()
    return {
        "documents_skipped": skipped,
        "training_lines": len(training),
        "validation_lines": len(validation),
        "dropped_unspellable": unspellable,
        "epochs_completed": state.epoch,
        "steps": state.steps,
        "best_validation_cer": None if state.best_cer == float("inf") else round(state.best_cer, 4),
        "history": state.history,
        "model": str(request.out / "model"),
    }
