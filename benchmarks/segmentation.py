"""Line detection against transcribed line polygons: how many of a page's lines a detector finds.

Pages come from ALTO or PAGE XML exports with their images — the public HTR sets
of docs/model-card.md, cloned by the user (`git clone https://github.com/HTR-United/CREMMA-AN-TestamentsDePoilus`).
The dev set is not used: documents on the exclusion list are skipped, so the
detector can be tuned here without tuning it to the pages `hwdaemon eval` reads.

A transcribed line is *found* when one detected box overlaps its polygon's
bounding box with IoU >= 0.5; a box is *a line* when it finds one; a box is
*merged* when it holds the centres of two or more transcribed lines. Untranscribed
writing (stamps, printed forms, margin notes) makes boxes that are not lines, so
compare detectors on the same pages rather than read precision as absolute.
Pages are read in greyscale without deskew: the polygons are in the scan's own coordinates.

    .venv/bin/python benchmarks/segmentation.py HTR-United/CREMMA-AN-TestamentsDePoilus=CREMMA-AN-TestamentsDePoilus --pages 40
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEV_DATA
from hwdaemon.config import PieceConfig
from hwdaemon.errors import ConfigError
from hwdaemon.model import Box
from hwdaemon.pipeline.stages import Detector, PieceContext
from hwdaemon.plugins import build_registry
from hwdaemon.training.data import TranscribedLine, read_transcribed_page
from hwdaemon.training.exclusion import ExclusionList

Rect = tuple[float, float, float, float]  # left, top, right, bottom
MATCH_IOU = 0.5


@dataclass
class DetectionTally:
    """Lines found and boxes made, over the pages of one source."""

    pages: int = 0
    lines: int = 0
    found: int = 0
    boxes: int = 0
    boxes_on_a_line: int = 0
    merged_boxes: int = 0
    seconds: list[float] = field(default_factory=list)
    page_files: list[str] = field(default_factory=list)

    def add(self, truth: list[Rect], boxes: list[Rect], seconds: float) -> None:
        self.pages += 1
        self.lines += len(truth)
        self.boxes += len(boxes)
        self.found += sum(1 for line in truth if any(iou(line, box) >= MATCH_IOU for box in boxes))
        self.boxes_on_a_line += sum(1 for box in boxes if any(iou(line, box) >= MATCH_IOU for line in truth))
        self.merged_boxes += sum(1 for box in boxes if sum(1 for line in truth if _holds_centre(box, line)) >= 2)
        self.seconds.append(seconds)

    def row(self) -> dict[str, float]:
        return {
            "pages": self.pages,
            "lines": self.lines,
            "found_pct": round(100 * self.found / max(1, self.lines), 1),
            "boxes": self.boxes,
            "boxes_on_a_line_pct": round(100 * self.boxes_on_a_line / max(1, self.boxes), 1),
            "merged_boxes_pct": round(100 * self.merged_boxes / max(1, self.boxes), 1),
            "s_per_page": round(float(np.median(self.seconds)), 3) if self.seconds else 0.0,
        }


def iou(a: Rect, b: Rect) -> float:
    width, height = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap)


def _holds_centre(box: Rect, line: Rect) -> bool:
    x, y = (line[0] + line[2]) / 2, (line[1] + line[3]) / 2
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def bounding_rect(line: TranscribedLine) -> Rect:
    xs, ys = [x for x, _ in line.polygon], [y for _, y in line.polygon]
    return min(xs), min(ys), max(xs), max(ys)


def box_rect(box: Box) -> Rect:
    return box.x, box.y, box.x + box.width, box.y + box.height


def pick_pages(repository: str, folder: Path, exclusions: ExclusionList, count: int, seed: int) -> list[Path]:
    """Up to `count` ALTO/PAGE files of the folder, at random but the same for every detector; evaluation documents skipped."""
    files = [
        xml
        for xml in sorted(folder.rglob("*.xml"))
        if not exclusions.is_excluded(repository, str(xml.relative_to(folder)))
    ]
    random.Random(seed).shuffle(files)
    return files[:count] if count else files


def measure(
    detector: Detector, repository: str, folder: Path, pages: list[Path], line_type: str | None
) -> DetectionTally:
    tally = DetectionTally()
    for xml in pages:
        try:
            image, lines = read_transcribed_page(xml, image_dir=folder)
        except ConfigError as exc:  # METS files, pages whose image the snapshot lacks
            print(f"skipped {xml}: {exc}", file=sys.stderr)
            continue
        if not lines or (line_type and any(not line.line_type.endswith(line_type) for line in lines)):
            continue
        pixels = np.asarray(image.convert("L"))
        started = time.perf_counter()
        boxes = detector.detect(pixels)
        tally.add(
            [bounding_rect(line) for line in lines], [box_rect(box) for box in boxes], time.perf_counter() - started
        )
        tally.page_files.append(xml.name)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sources", nargs="+", help="REPOSITORY=FOLDER: a clone of a public HTR set (ALTO or PAGE XML with images)"
    )
    parser.add_argument("--detector", action="append", help="detector type to measure (repeatable; default: lines)")
    parser.add_argument("--pages", type=int, default=40, help="pages per source, picked at random (0: all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--line-type",
        help="only pages whose every line has this type, e.g. Handwritten (Stanford letters mix typewriting)",
    )
    parser.add_argument(
        "--exclusions", type=Path, default=DEV_DATA / "DO-NOT-TRAIN.tsv", help="evaluation documents to skip"
    )
    parser.add_argument(
        "--write-pages",
        type=Path,
        help="add the measured pages' file names to this file (train-segmenter --skip-pages)",
    )
    args = parser.parse_args()
    if not args.exclusions.is_file():
        raise SystemExit(
            f"no exclusion list at {args.exclusions}: without it the dev set's pages could be measured; set HWDAEMON_DEV_DATA"
        )
    exclusions = ExclusionList.load(args.exclusions)
    registry = build_registry()
    for detector_type in args.detector or ["lines"]:
        detector = registry.create("detector", PieceConfig(type=detector_type), PieceContext())
        detector.load()
        for source in args.sources:
            repository, _, folder = source.partition("=")
            if not folder:
                raise SystemExit(f"{source!r}: expected REPOSITORY=FOLDER")
            if not Path(folder).is_dir():
                raise SystemExit(f"{folder}: no such folder (clone the repository first)")
            pages = pick_pages(repository, Path(folder), exclusions, args.pages, args.seed)
            tally = measure(detector, repository, Path(folder), pages, args.line_type)
            print(json.dumps({"detector": detector_type, "source": repository, **tally.row()}), flush=True)
            if args.write_pages:
                with args.write_pages.open("a") as listing:
                    listing.writelines(f"{name}\n" for name in tally.page_files)


if __name__ == "__main__":
    main()
