"""Training speed: lines per second of `hwdaemon train` on this machine, CPU or GPU.

Issue #9 plans runs by it (2 CPU cores: about 5 lines/s; v5's runs on one H100:
about 820 lines/s each, two side by side). It renders synthetic lines (Debian's
handwriting fonts), fine-tunes the shipped model on them for a number of steps
and reports lines/s after the first steps (start-up and the first batches
excluded), for each `--workers` value given.

    .venv/bin/python benchmarks/train_speed.py [--device auto] [--batch-size 16] [--steps 12] [--workers 0,2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL
from hwdaemon.training.crnn import CHARSET_V1
from hwdaemon.training.synthetic import default_fonts, synthetic_samples
from hwdaemon.training.train import TrainSettings, train

WARM_UP_STEPS = 2


def lines_per_second(device: str, batch_size: int, steps: int, workers: int) -> dict[str, float]:
    samples = synthetic_samples(batch_size * steps, default_fonts(), CHARSET_V1, ["en"], workers=max(1, workers))
    stamps: list[float] = []
    settings = TrainSettings(
        epochs=1, batch_size=batch_size, learning_rate=1e-5, device=device, workers=workers, checkpoint_every=10**9
    )
    with tempfile.TemporaryDirectory() as out:
        train(
            samples,
            [],
            Path(out),
            SHIPPED_MODEL,
            settings,
            lambda event: stamps.append(time.perf_counter()) if "loss" in event else None,
        )
    timed = stamps[WARM_UP_STEPS:]
    seconds = timed[-1] - timed[0]
    return {
        "workers": workers,
        "steps_timed": len(timed) - 1,
        "lines_per_second": round((len(timed) - 1) * batch_size / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--steps", type=int, default=12, help=f"optimiser steps per measurement ({WARM_UP_STEPS} more are not timed)"
    )
    parser.add_argument("--workers", default="0,2", help="comma-separated loader process counts to measure")
    arguments = parser.parse_args()
    import torch

    results = [
        lines_per_second(arguments.device, arguments.batch_size, arguments.steps + WARM_UP_STEPS, int(count))
        for count in arguments.workers.split(",")
    ]
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available() and arguments.device != "cpu"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    print(json.dumps({"device": device, "batch_size": arguments.batch_size, "results": results}, indent=2))


if __name__ == "__main__":
    main()
