"""The handwriting recognizer alone: model load time and seconds per line on the dev line crops.

Issue #9's targets are about the recognizer, not the whole pipeline: inference
≤ 0.1 s per line and model load ≤ 3 s on 2 CPU cores. Three figures, each
with the greedy decoder and with the beam decoder (the default):

- cold start, in a fresh process: importing ONNX Runtime, importing our code (OpenCV, numpy),
  loading the model (its ONNX copy + card), building the beam decoder's language model;
- lines one at a time (a scan with one line, the worst case per line);
- lines in batches of 16 of similar width (a page: the recognizer batches a page's lines).

    .venv/bin/python benchmarks/recognizer_speed.py [--model-dir DIR] [--language en] [--beam-width N ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA

COLD_START = """
import json, sys, time
started = time.perf_counter()
import onnxruntime
imported = time.perf_counter()
from hwdaemon.builtins.recognizers.handwriting_model import load_model
code = time.perf_counter()
model = load_model(__import__("pathlib").Path(sys.argv[1]))
loaded = time.perf_counter()
from hwdaemon.builtins.recognizers import charlm
charlm.for_languages((sys.argv[2],))
print(json.dumps({"import_onnxruntime_s": imported - started, "import_code_s": code - imported, "load_model_s": loaded - code,
                  "build_language_model_s": time.perf_counter() - loaded}))
"""


def dev_line_crops() -> list[np.ndarray]:
    manifest = DEV_DATA / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"no dev data at {DEV_DATA}; set HWDAEMON_DEV_DATA")
    items = [item for item in map(json.loads, manifest.read_text().splitlines()) if item["kind"] == "line"]
    crops = []
    for item in items:
        with Image.open(DEV_DATA / item["image"]) as image:
            crops.append(np.asarray(image.convert("L")))
    return crops


def main() -> None:
    from hwdaemon.builtins.recognizers.handwriting import SHIPPED_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--language", default="en", help="the beam decoder's language model")
    parser.add_argument("--repeats", type=int, default=3, help="cold starts to take the median of")
    parser.add_argument(
        "--beam-width",
        type=int,
        action="append",
        help="beam decoder widths to time (repeatable); default: the profile default",
    )
    args = parser.parse_args()

    command = [sys.executable, "-c", COLD_START, str(args.model_dir), args.language]
    colds = [
        json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        for _ in range(args.repeats)
    ]
    from hwdaemon.builtins.recognizers import charlm
    from hwdaemon.builtins.recognizers.beamsearch import DEFAULT_SETTINGS, BeamDecoder, BeamSettings
    from hwdaemon.builtins.recognizers.handwriting_model import load_model

    model = load_model(args.model_dir)
    crops = dev_line_crops()
    model.read(crops[:2])  # warm-up: first call allocates
    report: dict[str, object] = {
        "model": str(args.model_dir),
        "lines": len(crops),
        "torch_imported": "torch" in sys.modules,
    }
    for name in ("import_onnxruntime_s", "import_code_s", "load_model_s", "build_language_model_s"):
        report[f"cold_{name}"] = round(statistics.median(cold[name] for cold in colds), 2)
    language_model = charlm.for_languages((args.language,))
    widths = args.beam_width or [DEFAULT_SETTINGS.beam_width]
    decoders = [("greedy", None)] + [
        (
            "beam" if width == DEFAULT_SETTINGS.beam_width else f"beam_{width}",
            BeamDecoder(language_model, BeamSettings(beam_width=width)),
        )
        for width in widths
    ]
    for label, decoder in decoders:
        single = []
        for crop in crops:
            started = time.perf_counter()
            model.read([crop], decoder)
            single.append(time.perf_counter() - started)
        ordered = sorted(crops, key=lambda crop: crop.shape[1] / crop.shape[0])
        started = time.perf_counter()
        for start in range(0, len(ordered), 16):
            model.read(ordered[start : start + 16], decoder)
        report[f"{label}_one_at_a_time_s_per_line"] = round(statistics.mean(single), 4)
        report[f"{label}_one_at_a_time_p95_s"] = round(sorted(single)[int(0.95 * len(single))], 4)
        report[f"{label}_batched_16_s_per_line"] = round((time.perf_counter() - started) / len(crops), 4)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
