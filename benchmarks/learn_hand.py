"""Learning a user's hand: CER on a writer's other pages after fine-tuning on N of their lines.

Plays a user of `hwdaemon train --from-corrections` with writers the shipped
model never saw: each writer is one folder of one hand's ALTO or PAGE pages with
their images (a CREMMA-MSS-19 manuscript, a register of HTR-United/timeuscorpus),
named with its repository so that DO-NOT-TRAIN.tsv applies. The first N lines of
the writer's pages are the corrections to learn from; the writer's last pages
are held back and never trained on. For each N it trains once with the recipe
given (CORRECTIONS_SETTINGS with the flags' changes) and prints one JSON line:
the CER on the held-back lines of the current model, the fine-tuned one and the
mean of the two (the command's two candidates), each read greedily, with the
beam decoder and the profile's language, and with the beam decoder given the
words of the writer's N lines as the profile's own words (`user_words`); and
the seconds training took. N = 0 prints the current model's row alone.

    .venv/bin/python benchmarks/learn_hand.py HTR-United/CREMMA-MSS-19=CREMMA-MSS-19/data/manuscrits-rviven \\
        HTR-United/timeuscorpus=timeuscorpus/data/cph_paris_tissage_1858/alto --lines 0,25,50,100,200,300

Run it at the lowest priority beside other work: `nice -n 19`, `--threads 2`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rapidfuzz.distance import Levenshtein

from _common import DEV_DATA
from hwdaemon.builtins.recognizers import charlm
from hwdaemon.builtins.recognizers.beamsearch import DEFAULT_SETTINGS, BeamDecoder
from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL
from hwdaemon.builtins.recognizers.handwriting_model import HandwritingModel, TextDecoder, load_model
from hwdaemon.evaluation import normalise
from hwdaemon.logging import configure_logging
from hwdaemon.training.corrections import CORRECTIONS_SETTINGS, fine_tune, words_of
from hwdaemon.training.data import LineSample, PageImageMissingError, load_samples
from hwdaemon.training.exclusion import ExclusionList
from hwdaemon.training.train import TRAINED_LAYERS, TrainSettings, encodable

RECIPE_KNOBS = ("epochs", "batch_size", "learning_rate", "schedule", "trained_layers", "augment_strength")


def writer_lines(
    repository: str, folder: Path, exclusions: ExclusionList, charset: str, held_pages: int, wanted: int
) -> tuple[list[LineSample], list[LineSample]]:
    """Lines to learn from (pages in order, up to `wanted` lines) and held-back lines (the last `held_pages` pages with an image)."""
    images = folder if any(folder.glob("*.jp*g")) or any(folder.glob("*.png")) else folder.parent
    pages = sorted(folder.glob("*.xml"), key=_page_order)

    def lines_of(xml: Path) -> list[LineSample] | None:
        try:
            return encodable(load_samples([(repository, xml)], exclusions, image_dir=images), charset)[0]
        except PageImageMissingError:
            return None

    held: list[LineSample] = []
    while pages and held_pages:
        lines = lines_of(pages.pop())
        if lines:
            held, held_pages = lines + held, held_pages - 1
    pool: list[LineSample] = []
    for xml in pages:
        if len(pool) >= wanted:
            break
        pool.extend(lines_of(xml) or [])
    return pool, held


def _page_order(path: Path) -> tuple[str, int]:
    """ "PH 1858-9" before "PH 1858-10": the register's own page order."""
    number = re.search(r"(\d+)$", path.stem)
    return (path.stem[: number.start()] if number else path.stem, int(number.group(1)) if number else 0)


def error_rates(
    model: HandwritingModel, held: list[LineSample], decoders: dict[str, TextDecoder | None]
) -> dict[str, float]:
    """CER of each decoder on the held-back lines; the network runs once."""
    edits = dict.fromkeys(decoders, 0)
    characters = 0
    ordered = sorted(held, key=lambda sample: sample.image.shape[1] / max(1, sample.image.shape[0]))
    for start in range(0, len(ordered), 16):
        chunk = ordered[start : start + 16]
        for sample, probabilities in zip(chunk, model.probabilities([s.image for s in chunk]), strict=True):
            reference = normalise(sample.text)
            characters += len(reference)
            for name, decoder in decoders.items():
                edits[name] += Levenshtein.distance(reference, normalise(model.reading(probabilities, decoder)[0]))
    return {name: round(count / max(1, characters), 4) for name, count in edits.items()}


def recipe(args: argparse.Namespace) -> TrainSettings:
    changes = {name: getattr(args, name) for name in RECIPE_KNOBS if getattr(args, name) is not None}
    return replace(CORRECTIONS_SETTINGS, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "writers",
        nargs="+",
        help="REPOSITORY=FOLDER: one writer's ALTO/PAGE pages (images beside them or one folder up)",
    )
    parser.add_argument(
        "--lines", default="0,25,50,100", help="how many of the writer's lines to learn from; comma-separated"
    )
    parser.add_argument("--held-back-pages", type=int, default=2, help="the writer's last pages, never trained on")
    parser.add_argument("--language", default="fr", help="the profile's language for the beam decoder")
    parser.add_argument("--model-dir", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--exclusions", type=Path, default=DEV_DATA / "DO-NOT-TRAIN.tsv")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training")
    parser.add_argument("--keep", type=Path, help="keep each run's two candidate models under this folder")
    parser.add_argument("--label", default="", help="a name for the recipe in the output")
    group = parser.add_argument_group("the recipe (default: CORRECTIONS_SETTINGS)")
    group.add_argument("--epochs", type=float)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--learning-rate", type=float)
    group.add_argument("--schedule", choices=("constant", "cosine"))
    group.add_argument("--trained-layers", choices=TRAINED_LAYERS)
    group.add_argument("--augment-strength", type=float)
    args = parser.parse_args()
    configure_logging("warning")
    torch.set_num_threads(args.threads)
    settings = recipe(args)
    current = load_model(args.model_dir)
    exclusions = ExclusionList.load(args.exclusions)
    language_model = charlm.for_languages((args.language,))
    for writer in args.writers:
        repository, _, folder_text = writer.rpartition("=")
        folder = Path(folder_text)
        counts = [int(text) for text in args.lines.split(",")]
        pool, held = writer_lines(
            repository or folder.name, folder, exclusions, current.charset, args.held_back_pages, max(counts)
        )
        name = folder.name if folder.name != "alto" else folder.parent.name
        base = {"writer": name, "recipe": args.label or None, "held_back_lines": len(held)}
        current_cer = None
        for count in counts:
            if count > len(pool):
                print(f"{name}: only {len(pool)} lines to learn from, skipping {count}", file=sys.stderr)
                continue
            words = words_of(pool[:count])
            decoders: dict[str, TextDecoder | None] = {
                "greedy": None,
                "beam": BeamDecoder(language_model, DEFAULT_SETTINGS),
                "beam_words": BeamDecoder(charlm.for_languages((args.language,), words), DEFAULT_SETTINGS),
            }
            current_cer = current_cer or error_rates(
                current, held, {k: v for k, v in decoders.items() if k != "beam_words"}
            )
            row: dict[str, object] = {**base, "lines": count, "current": current_cer}
            if count:
                with tempfile.TemporaryDirectory() as scratch:
                    run = args.keep / name / (args.label or "run") / str(count) if args.keep else Path(scratch)
                    started = time.perf_counter()
                    candidates = fine_tune(args.model_dir, pool[:count], run, settings)
                    row["train_seconds"] = round(time.perf_counter() - started, 1)
                    for kind, folder in candidates.items():
                        row[kind] = error_rates(load_model(folder), held, decoders)
                    (run / "checkpoint.pt").unlink(missing_ok=True)
                row["settings"] = {key: value for key, value in asdict(settings).items() if key in RECIPE_KNOBS}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
