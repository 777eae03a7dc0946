"""The accuracy table of docs/accuracy.md: every profile in benchmarks/profiles.yaml on the dev set.

    .venv/bin/python benchmarks/accuracy.py [--profile NAME ...] > table.md

Prints a Markdown table: CER per kind and language, overall CER and WER, and
seconds per line and per page. Reads ../shared/data (or $HWDAEMON_DEV_DATA).
A profile with a French twin (`default` → `default_fr`) reads the French items
with the twin, as a user sets a French inbox's profile to French: the
handwriting recognizer's beam decoder spells with the profile's languages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA
from hwdaemon.config import Config, load_config
from hwdaemon.evaluation import ManifestItem, ProfileReport, evaluate, read_manifest
from hwdaemon.pipeline import Pipeline
from hwdaemon.plugins import Registry, build_registry

GROUPS = [("line", "en"), ("line", "fr"), ("page", "en"), ("page", "fr")]
FRENCH_TWINS = {"default": "default_fr"}


def read_all(name: str, items: list[ManifestItem], config: Config, registry: Registry) -> dict[str, Any]:
    """One report over every item; French items go to the profile's French twin when it has one."""
    twin = FRENCH_TWINS.get(name)
    batches = [(name, [item for item in items if twin is None or item.lang != "fr"])]
    if twin is not None:
        batches.append((twin, [item for item in items if item.lang == "fr"]))
    merged = ProfileReport(profile=name)
    for profile, chosen in batches:
        pipeline = Pipeline.from_profile(profile, config.profile(profile), config.models, registry)
        report = evaluate(pipeline, chosen, config.inputs)
        merged.groups.update(report.groups)
    return merged.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", dest="profiles")
    args = parser.parse_args()
    registry = build_registry()
    config = load_config(Path(__file__).with_name("profiles.yaml"), registry)
    items = [item for item in read_manifest(DEV_DATA / "manifest.jsonl") if item.kind in ("line", "page")]
    print(
        "| profile | "
        + " | ".join(f"CER {kind} {lang}" for kind, lang in GROUPS)
        + " | CER all | WER all | s/line | s/page |"
    )
    print("|---" * (len(GROUPS) + 5) + "|")
    for name in args.profiles or [name for name in config.profiles if name not in FRENCH_TWINS.values()]:
        report = read_all(name, items, config, registry)
        groups = {(group["kind"], group["lang"]): group for group in report["groups"]}
        seconds = {
            kind: sum(g["seconds_per_item"] * g["items"] for (k, _), g in groups.items() if k == kind)
            / max(1, sum(g["items"] for (k, _), g in groups.items() if k == kind))
            for kind in ("line", "page")
        }
        cells = [f"{groups[group]['cer']:.1%}" if group in groups else "–" for group in GROUPS]
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {report['all']['cer']:.1%} | {report['all']['wer']:.1%} | {seconds['line']:.2f} | {seconds['page']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
