"""The accuracy table of docs/accuracy.md: every profile in benchmarks/profiles.yaml on the dev set.

    .venv/bin/python benchmarks/accuracy.py [--profile NAME ...] > table.md

Prints a Markdown table: CER per kind and language, overall CER and WER, and
seconds per line and per page. Reads ../shared/data (or $HWDAEMON_DEV_DATA).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA  # noqa: E402

from hwdaemon.config import load_config  # noqa: E402
from hwdaemon.evaluation import evaluate, read_manifest  # noqa: E402
from hwdaemon.pipeline import Pipeline  # noqa: E402
from hwdaemon.plugins import build_registry  # noqa: E402

GROUPS = [("line", "en"), ("line", "fr"), ("page", "en"), ("page", "fr")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", dest="profiles")
    args = parser.parse_args()
    registry = build_registry()
    config = load_config(Path(__file__).with_name("profiles.yaml"), registry)
    items = [item for item in read_manifest(DEV_DATA / "manifest.jsonl") if item.kind in ("line", "page")]
    print("| profile | " + " | ".join(f"CER {kind} {lang}" for kind, lang in GROUPS) + " | CER all | WER all | s/line | s/page |")
    print("|---" * (len(GROUPS) + 5) + "|")
    for name in args.profiles or list(config.profiles):
        pipeline = Pipeline.from_profile(name, config.profile(name), config.models, registry)
        pipeline.load()
        report = evaluate(pipeline, items, config.inputs).to_dict()
        groups = {(group["kind"], group["lang"]): group for group in report["groups"]}
        seconds = {kind: sum(g["seconds_per_item"] * g["items"] for (k, _), g in groups.items() if k == kind) / max(1, sum(g["items"] for (k, _), g in groups.items() if k == kind)) for kind in ("line", "page")}
        cells = [f"{groups[group]['cer']:.1%}" if group in groups else "–" for group in GROUPS]
        print(f"| {name} | " + " | ".join(cells) + f" | {report['all']['cer']:.1%} | {report['all']['wer']:.1%} | {seconds['line']:.2f} | {seconds['page']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
