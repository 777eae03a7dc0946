"""Training lines packed small: a manifest and WebP crops at the network's height, to carry to a GPU machine.

The six sources' page images weigh about 800 MB; their 12,000 lines at 64 px,
WebP quality 50, about 33 MB, which a copy to a rented GPU takes in seconds. The
manifest keeps each line's repository and document, so the exclusion list and
the validation hold-out work on the pack as on the sources.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from hwdaemon.builtins.recognizers.handwriting_model import resize_to_height
from hwdaemon.errors import InputFileError
from hwdaemon.modelfolder import HANDWRITING_HEIGHT as HEIGHT
from hwdaemon.training.data import LineSample


def pack_lines(samples: list[LineSample], out: Path, height: int = HEIGHT, quality: int = 50) -> int:
    """Write `out/manifest.jsonl` and `out/lines/NNNNN.webp`; returns the bytes of images written."""
    (out / "lines").mkdir(parents=True, exist_ok=True)
    written = 0
    with (out / "manifest.jsonl").open("w", encoding="utf-8") as manifest:
        for number, sample in enumerate(samples):
            encoded, data = cv2.imencode(
                ".webp", resize_to_height(sample.image, height), [cv2.IMWRITE_WEBP_QUALITY, quality]
            )
            if not encoded:
                raise InputFileError(str(sample.document), f"could not encode the line {sample.text!r} as WebP")
            name = f"lines/{number:05d}.webp"
            (out / name).write_bytes(data.tobytes())
            written += len(data)
            row = {
                "kind": "line",
                "image": name,
                "text": sample.text,
                "source": sample.repository,
                "document": sample.document,
            }
            manifest.write(json.dumps(row, ensure_ascii=False) + "\n")
    return written
