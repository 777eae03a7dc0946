"""Run the default profile over N pages in one process and watch RSS (EasyOCR has a known leak).

Pages cycle through the dev set's page images (../shared/data), or rendered pages
when it is absent. Prints RSS every `--every` pages and the growth after warm-up.

    .venv/bin/python benchmarks/memory_soak.py --pages 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA, render_note, rss_mb
from hwdaemon.config import InputsConfig, load_config
from hwdaemon.inputs import open_document
from hwdaemon.model import Document, Page
from hwdaemon.pipeline import Pipeline
from hwdaemon.plugins import build_registry


def documents() -> list[Document]:
    manifest = DEV_DATA / "manifest.jsonl"
    if manifest.is_file():
        items = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        return [_decoded(DEV_DATA / item["image"]) for item in items if item["kind"] == "page"]
    return [Document(f"note-{n}", "0" * 64, (Page(1, render_note(n, 40)),)) for n in range(6)]


def _decoded(path: Path) -> Document:
    """The file with its pages decoded now: the soak reads the same pages over and over."""
    with open_document(path, InputsConfig()) as document:
        return Document(document.source, document.sha256, tuple(document.pages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    registry = build_registry()
    config = load_config(None, registry)
    pipeline = Pipeline.from_profile(args.profile, config.profile(args.profile), config.models, registry)
    pages = documents()
    samples = []
    started = time.perf_counter()
    for number in range(1, args.pages + 1):
        pipeline.run(pages[number % len(pages)])
        if number % args.every == 0 or number == 1:
            samples.append(
                {"pages": number, "rss_mb": round(rss_mb(), 1), "seconds": round(time.perf_counter() - started, 1)}
            )
            print(json.dumps(samples[-1]), flush=True)
    warm = next(sample for sample in samples if sample["pages"] >= min(args.every, args.pages))
    print(json.dumps({"pages": args.pages, "rss_mb_after_warmup": warm["rss_mb"], "rss_mb_end": samples[-1]["rss_mb"],
                      "growth_mb": round(samples[-1]["rss_mb"] - warm["rss_mb"], 1),
                      "seconds_per_page": round((time.perf_counter() - started) / args.pages, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
