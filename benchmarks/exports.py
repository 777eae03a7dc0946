"""What each export format adds per page, and how large a searchable PDF is against its scan.

    .venv/bin/python benchmarks/exports.py [--repeat 5] > exports.md

Each dev page of ../shared/data (or $HWDAEMON_DEV_DATA) is read once by the default
profile; then every format of `hwdaemon.export.FORMATS` is rendered from that Result
`--repeat` times (the first render of a format, which loads fonts or schemas, is
reported apart). Prints a Markdown table: median milliseconds per page after the first,
the first render, and the output's size; for `pdf` also its size against the scan's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA
from hwdaemon.config import load_config
from hwdaemon.evaluation import read_manifest
from hwdaemon.export import FORMATS, render_bytes
from hwdaemon.inputs import open_document
from hwdaemon.logging import configure_logging
from hwdaemon.pipeline import ready_pipeline
from hwdaemon.plugins import build_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    configure_logging("warning")
    if not (DEV_DATA / "manifest.jsonl").is_file():
        sys.exit(f"no dev data at {DEV_DATA}: set HWDAEMON_DEV_DATA")
    registry = build_registry()
    config = load_config(None, registry)
    pipeline = ready_pipeline(config, registry, "default")
    pages = [item for item in read_manifest(DEV_DATA / "manifest.jsonl") if item.kind == "page"]
    first: dict[str, float] = {}
    times: dict[str, list[float]] = {format: [] for format in FORMATS}
    sizes: dict[str, list[int]] = {format: [] for format in FORMATS}
    pdf_ratios = []
    for item in pages:
        with open_document(item.image, config.inputs) as document:
            result = pipeline.run(document)
        for format in FORMATS:
            for _ in range(args.repeat):
                started = time.perf_counter()
                output = render_bytes(result, format, original=item.image)
                elapsed = time.perf_counter() - started
                if format not in first:
                    first[format] = elapsed
                else:
                    times[format].append(elapsed)
            sizes[format].append(len(output))
            if format == "pdf":
                pdf_ratios.append(len(output) / item.image.stat().st_size)
    print(f"{len(pages)} dev pages, {args.repeat} renders each\n")
    print("| format | ms per page (median) | first render ms | size per page (median) |")
    print("|---|---|---|---|")
    for format in FORMATS:
        size = statistics.median(sizes[format])
        print(
            f"| {format} | {1000 * statistics.median(times[format]):.1f} | {1000 * first[format]:.0f} "
            f"| {size / 1024:.1f} KiB |"
        )
    print(
        f"\npdf against the scan: {min(pdf_ratios):.3f}–{max(pdf_ratios):.3f} of its size "
        f"(median {statistics.median(pdf_ratios):.3f})"
    )


if __name__ == "__main__":
    main()
