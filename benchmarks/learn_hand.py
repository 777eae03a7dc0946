"""Learning a user's hand: held-back CER after fine-tuning on N of one writer's lines.

Plays a user of `hwdaemon train --from-corrections` with a writer the shipped
model never saw: the writer's ALTO pages (one folder of one hand, e.g. a
CREMMA-MSS-19 manuscript, `git clone https://github.com/HTR-United/CREMMA-MSS-19`),
the first N lines of their pages to learn from, the last quarter of their pages
held back. Prints one JSON line per N with the greedy CER on the held-back lines
of the current model, the fine-tuned one and the mean of the two (the command's
two candidates), and the time to train and measure them.

    .venv/bin/python benchmarks/learn_hand.py CREMMA-MSS-19/data/manuscrit-verne-20000 --lines 25,50,100
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA
from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL
from hwdaemon.builtins.recognizers.handwriting_model import load_model
from hwdaemon.logging import configure_logging
from hwdaemon.training.corrections import CORRECTIONS_SETTINGS, fine_tune_candidates
from hwdaemon.training.data import LineSample, load_samples
from hwdaemon.training.exclusion import ExclusionList
from hwdaemon.training.train import character_error_rate, encodable


def writer_lines(folder: Path, exclusions: ExclusionList, charset: str) -> tuple[list[LineSample], list[LineSample]]:
    """Lines to learn from (the first three quarters of the pages) and held-back lines (the last quarter)."""
    sources = [(folder.name, xml) for xml in sorted(folder.glob("*.xml"))]
    samples, _ = encodable(load_samples(sources, exclusions, image_dir=folder), charset)
    pages = sorted({sample.document for sample in samples})
    held_pages = set(pages[-max(1, len(pages) // 4) :])
    return [s for s in samples if s.document not in held_pages], [s for s in samples if s.document in held_pages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("writer", type=Path, help="a folder of one writer's ALTO pages with their images")
    parser.add_argument(
        "--lines", default="25,50,100", help="how many of the writer's lines to learn from; comma-separated"
    )
    parser.add_argument("--model-dir", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--exclusions", type=Path, default=DEV_DATA / "DO-NOT-TRAIN.tsv")
    args = parser.parse_args()
    configure_logging("warning")
    current = load_model(args.model_dir)
    pool, held = writer_lines(args.writer, ExclusionList.load(args.exclusions), current.charset)
    current_cer = character_error_rate(current, held)
    for count in (int(text) for text in args.lines.split(",")):
        if count > len(pool):
            print(f"{args.writer.name}: only {len(pool)} lines to learn from, skipping {count}", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as run:
            started = time.perf_counter()
            candidates = fine_tune_candidates(args.model_dir, pool[:count], held, Path(run), CORRECTIONS_SETTINGS)
            seconds = time.perf_counter() - started
        row = {"writer": args.writer.name, "lines": count, "held_back_lines": len(held), "current_cer": round(current_cer, 4),
               "fine_tuned_cer": round(candidates["fine-tuned"].cer, 4), "mean_cer": round(candidates["mean"].cer, 4),
               "train_and_measure_seconds": round(seconds, 1)}  # fmt: skip
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
