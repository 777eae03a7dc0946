"""The orientation table of docs/accuracy.md: the dev pages turned 0, 90, 180 and 270 degrees, read with orientation off and auto.

    .venv/bin/python benchmarks/orientation.py [--profile default] > table.md

Each page of ../shared/data (or $HWDAEMON_DEV_DATA) is turned in memory as a scanner
that fed it sideways or upside down would deliver it, then read by the profile (French
pages by its French twin) with `orientation: off` (before) and `auto` (after). Prints
CER per turn, which turn was detected, and the seconds orientation adds per page: the
page's time with auto minus with off, and the detection alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rapidfuzz.distance import Levenshtein

from _common import DEV_DATA
from hwdaemon.config import load_config
from hwdaemon.evaluation import normalise, read_manifest, turned
from hwdaemon.inputs import open_document
from hwdaemon.model import Document
from hwdaemon.pipeline import Pipeline
from hwdaemon.pipeline.orientation import judge_orientation
from hwdaemon.plugins import build_registry

TURNS = (0, 90, 180, 270)
FRENCH_TWINS = {"default": "default_fr"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    registry = build_registry()
    config = load_config(Path(__file__).with_name("profiles.yaml"), registry)
    pipelines = {}
    for name in {args.profile, FRENCH_TWINS.get(args.profile, args.profile)}:
        for mode in ("off", "auto"):
            profile = config.profile(name).model_copy(update={"orientation": mode})
            pipelines[name, mode] = Pipeline.from_profile(name, profile, config.models, registry)
            pipelines[name, mode].load()
    items = [item for item in read_manifest(DEV_DATA / "manifest.jsonl") if item.kind == "page"]
    edits = {(turn, mode): 0 for turn in TURNS for mode in ("off", "auto")}
    seconds = {(turn, mode): 0.0 for turn in TURNS for mode in ("off", "auto")}
    detect_seconds = dict.fromkeys(TURNS, 0.0)
    detected: dict[int, list[int]] = {turn: [] for turn in TURNS}
    chars = 0
    for item in items:
        name = FRENCH_TWINS.get(args.profile, args.profile) if item.lang == "fr" else args.profile
        with open_document(item.image, config.inputs) as document:
            (page,) = list(document.pages)
        truth = normalise(item.text)
        chars += len(truth)
        for turn in TURNS:
            (turned_page,) = turned(Document(source=item.id, sha256=document.sha256, pages=[page]), turn).pages
            image = turned_page.image
            for mode in ("off", "auto"):
                started = time.perf_counter()
                result = pipelines[name, mode].run(
                    Document(source=item.id, sha256=document.sha256, pages=[turned_page])
                )
                seconds[turn, mode] += time.perf_counter() - started
                edits[turn, mode] += Levenshtein.distance(truth, normalise(result.text))
            started = time.perf_counter()
            detected[turn].append(judge_orientation(image, pipelines[name, "auto"].recognizer).orientation)
            detect_seconds[turn] += time.perf_counter() - started
    count = len(items)
    print(f"{count} dev pages ({chars} characters), profile {args.profile}")
    print()
    print(
        "| page arrived turned | CER, orientation off | CER, auto | detected right | s/page off | s/page auto | detection s/page |"
    )
    print("|---|---|---|---|---|---|---|")
    for turn in TURNS:
        right = sum(found == turn for found in detected[turn])
        print(
            f"| {turn}° | {edits[turn, 'off'] / chars:.1%} | {edits[turn, 'auto'] / chars:.1%} | {right}/{count} "
            f"| {seconds[turn, 'off'] / count:.2f} | {seconds[turn, 'auto'] / count:.2f} | {detect_seconds[turn] / count:.3f} |"
        )


if __name__ == "__main__":
    main()
