"""Per-page seconds and peak RSS: hwdaemon's default profile against EasyOCR's readtext with defaults.

Each contender runs in its own process over the same dev pages (../shared/data,
kind "page"), so peak RSS is its own. Model load time is reported apart.
`mapped_files_mb` is the part of the resident memory at the end that is files mapped
from disk (PyTorch's CUDA libraries among them): shared, and dropped first when memory is short.

    .venv/bin/python benchmarks/speed.py
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA, rss_mb


def pages() -> list[dict[str, str]]:
    manifest = DEV_DATA / "manifest.jsonl"
    if not manifest.is_file():
        raise SystemExit(f"no dev data at {DEV_DATA}; set HWDAEMON_DEV_DATA")
    return [item for item in map(json.loads, manifest.read_text().splitlines()) if item["kind"] == "page"]


def run_contender(mode: str, profile: str) -> None:
    from hwdaemon.evaluation import Tally

    started = time.perf_counter()
    if mode == "readtext":
        import easyocr
        import easyocr_en_models

        reader = easyocr.Reader(
            ["en"],
            gpu=False,
            model_storage_directory=str(easyocr_en_models.model_dir()),
            download_enabled=False,
            verbose=False,
        )

        def read(path: Path) -> str:
            return "\n".join(text for _, text, _ in reader.readtext(str(path)))
    else:
        from hwdaemon.config import InputsConfig, load_config
        from hwdaemon.inputs import open_document
        from hwdaemon.pipeline import Pipeline
        from hwdaemon.plugins import build_registry

        registry = build_registry()
        config = load_config(Path(__file__).with_name("profiles.yaml"), registry)
        pipeline = Pipeline.from_profile(profile, config.profile(profile), config.models, registry)
        pipeline.load()

        def read(path: Path) -> str:
            with open_document(path, InputsConfig()) as document:
                return pipeline.run(document).text

    load_seconds = time.perf_counter() - started
    tally = Tally()
    for item in pages():
        began = time.perf_counter()
        text = read(DEV_DATA / item["image"])
        tally.add(item["text"], text, time.perf_counter() - began)
    print(json.dumps({"mode": mode if mode == "readtext" else profile, "model_load_seconds": round(load_seconds, 2),
                      **tally.row(), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "mapped_files_mb": round(rss_mb(field="RssFile"))}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contender", choices=["readtext", "profile"], help=argparse.SUPPRESS)
    parser.add_argument("--profile", default="default", help="profile from benchmarks/profiles.yaml to compare")
    args = parser.parse_args()
    if args.contender:
        run_contender(args.contender, args.profile)
        return
    reports = []
    for contender in ("readtext", "profile"):
        output = subprocess.run(
            [sys.executable, __file__, "--contender", contender, "--profile", args.profile],
            capture_output=True,
            text=True,
            check=True,
        )
        reports.append(json.loads(output.stdout.strip().splitlines()[-1]))
    baseline, ours = reports
    print(json.dumps({"pages": baseline["items"], "readtext": baseline, args.profile: ours,
                      "speedup": round(baseline["seconds_per_item"] / ours["seconds_per_item"], 1),
                      "rss_ratio": round(ours["peak_rss_mb"] / baseline["peak_rss_mb"], 2)}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
