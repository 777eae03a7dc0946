"""Training the line segmenter (builtins/detectors/linenet.py) on the line polygons of transcribed pages.

The target of each line is the middle half of its polygon, column by column:
what the network must mark so that touching lines stay apart. Pages are shrunk
once to the network's scale and kept in memory (a few hundred pages, ~1 MB each);
each step trains on random square crops, jittered in scale and contrast. Sources
are sampled evenly, so 300 forms of one kind do not drown 40 letters of another.
A checkpoint is written every `checkpoint_every` steps and a run resumes from it.

Pages come from ALTO/PAGE sets (`load_pages`) and from the review page
(`approved_pages`): each approved job's pages, from the previews the daemon
kept, with the lines as the reviewer left them (deleted, drawn, merged, split).
A region marked not text is no line's core, so the network learns to leave it.
"""

from __future__ import annotations

import json
import math
import random
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from torch.nn import functional

from hwdaemon.builtins.detectors.linenet import shrink, to_network_input
from hwdaemon.daemon.previews import preview_path
from hwdaemon.errors import ConfigError
from hwdaemon.store import Store
from hwdaemon.training.data import TranscribedLine, read_transcribed_page
from hwdaemon.training.exclusion import ExclusionList
from hwdaemon.training.linenet_network import LineNet, save_linenet

Progress = Callable[[dict[str, Any]], None]
APPROVED_SOURCE = "review-page"  # the source name of pages approved on the review page


@dataclass(frozen=True, slots=True, eq=False)
class SegmentPage:
    """A page at the network's scale with its target: 1 where a line's core is."""

    source: str
    name: str
    gray: np.ndarray
    core: np.ndarray


@dataclass(frozen=True, slots=True)
class SegmentSettings:
    minutes: float = 30.0
    crop: int = 288
    batch_size: int = 8
    learning_rate: float = 1e-3
    checkpoint_every: int = 100
    seed: int = 1
    max_steps: int | None = (
        None  # also stop after this many steps (a run of known length, whatever the machine's speed)
    )


def core_target(shape: tuple[int, int], lines: Iterable[TranscribedLine], scale: float) -> np.ndarray:
    """1 on the middle half of each line: per column, the polygon's centre ± a quarter of the line's median height."""
    target = np.zeros(shape, dtype=np.uint8)
    for line in lines:
        points = np.round(np.asarray(line.polygon, dtype=np.float64) * scale).astype(np.int32)
        left, top = np.maximum(points.min(axis=0), 0)
        right, bottom = np.minimum(points.max(axis=0), (shape[1] - 1, shape[0] - 1))
        if right <= left or bottom <= top:
            continue
        inside = np.zeros((bottom - top + 1, right - left + 1), dtype=np.uint8)
        cv2.fillPoly(inside, [points - (left, top)], 1)
        columns = cast(npt.NDArray[np.bool_], inside.any(axis=0))
        if not columns.any():
            continue
        first = inside.argmax(axis=0)
        last = inside.shape[0] - 1 - inside[::-1].argmax(axis=0)
        half_core = float(np.median((last - first + 1)[columns])) / 4
        centre = (first + last) / 2
        rows = np.arange(inside.shape[0])[:, None]
        core = (np.abs(rows - centre[None, :]) <= half_core) & columns[None, :]
        target[top : bottom + 1, left : right + 1] |= core.astype(np.uint8)
    return target


def load_pages(sources: dict[str, Path], exclusions: ExclusionList, skip: set[str], log: Progress) -> list[SegmentPage]:
    """Every ALTO/PAGE file of each REPOSITORY → folder, minus excluded documents and `skip` (held-out page files)."""
    pages = []
    for repository, folder in sources.items():
        for xml in sorted(folder.rglob("*.xml")):
            relative = str(xml.relative_to(folder))
            if exclusions.is_excluded(repository, relative) or xml.name in skip:
                continue
            try:
                image, lines = read_transcribed_page(xml, image_dir=folder)
            except ConfigError as exc:  # METS files, pages whose image the snapshot lacks
                log({"event": "page_skipped", "file": relative, "reason": str(exc)})
                continue
            if not lines:
                continue
            small, scale = shrink(np.asarray(image.convert("L")))
            pages.append(SegmentPage(repository, xml.name, small, core_target(small.shape, lines, scale)))
    return pages


def approved_pages(store: Store, state_dir: Path, profiles: Iterable[str], log: Progress) -> list[SegmentPage]:
    """The pages of every approved job of `profiles`, from their previews, with the approved revision's lines as targets."""
    pages = []
    for profile in profiles:
        for job_id, revision in store.review.approved_jobs(profile):
            result = store.jobs.result_of(job_id, revision)
            for page in result.pages if result else ():
                path = preview_path(state_dir, job_id, page.number)
                if not path.is_file() or not page.lines:
                    log(
                        {
                            "event": "page_skipped",
                            "job": job_id,
                            "page": page.number,
                            "reason": "no preview or no lines",
                        }
                    )
                    continue
                with Image.open(path) as opened:
                    preview = np.asarray(opened.convert("L"))
                to_preview = preview.shape[1] / page.width if page.width else 1.0
                lines = [
                    TranscribedLine(line.text, [(x * to_preview, y * to_preview) for x, y in line.polygon])
                    for line in page.lines
                ]
                small, scale = shrink(preview)
                name = f"job-{job_id}-page-{page.number}"
                pages.append(SegmentPage(APPROVED_SOURCE, name, small, core_target(small.shape, lines, scale)))
    return pages


def split_validation(pages: list[SegmentPage], fraction: float) -> tuple[list[SegmentPage], list[SegmentPage]]:
    """(training, validation): a page is held back by a hash of its file name, so the split never changes between runs.

    The fraction counts in tenths (0.1: the pages whose hash ends in 0 of ten).
    """
    held = [zlib.crc32(page.name.encode()) % 10 < round(fraction * 10) for page in pages]
    return [page for page, back in zip(pages, held, strict=True) if not back], [
        page for page, back in zip(pages, held, strict=True) if back
    ]


def random_crop(page: SegmentPage, crop: int, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """A crop×crop window at a random place and scale (0.8–1.25×), with jittered contrast, blur and noise."""
    factor = rng.uniform(0.8, 1.25)
    window = min(round(crop / factor), *page.gray.shape)
    top = rng.randrange(page.gray.shape[0] - window + 1)
    left = rng.randrange(page.gray.shape[1] - window + 1)
    gray = cv2.resize(page.gray[top : top + window, left : left + window], (crop, crop), interpolation=cv2.INTER_LINEAR)
    core = cv2.resize(
        page.core[top : top + window, left : left + window], (crop, crop), interpolation=cv2.INTER_NEAREST
    )
    pixels = gray.astype(np.float32) * rng.uniform(0.7, 1.2) + rng.uniform(-30, 30)
    if rng.random() < 0.3:
        pixels = cast(npt.NDArray[np.floating[Any]], cv2.GaussianBlur(pixels, (0, 0), rng.uniform(0.5, 1.5)))
    if rng.random() < 0.3:
        pixels += (
            np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(3, 15), pixels.shape).astype(np.float32)
        )
    return np.clip(pixels, 0, 255), core


def to_tensors(crops: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(to_network_input(np.stack([gray for gray, _ in crops])))[:, None]
    targets = torch.from_numpy(np.stack([core for _, core in crops]).astype(np.float32))[:, None]
    return images, targets


def segment_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus soft Dice: cores are a small share of a page, Dice keeps them from being ignored."""
    probabilities = torch.sigmoid(logits)
    overlap = (probabilities * targets).sum()
    dice = 1 - (2 * overlap + 1) / (probabilities.sum() + targets.sum() + 1)
    return functional.binary_cross_entropy_with_logits(logits, targets) + dice


def train_segmenter(
    pages: list[SegmentPage], validation: list[SegmentPage], out: Path, settings: SegmentSettings, log: Progress
) -> dict[str, Any]:
    """Train until `settings.minutes` have passed (resuming from out/checkpoint.pt); the best model by validation loss goes to out/model."""
    if not pages:
        raise ConfigError("no training pages: give --source REPOSITORY=FOLDER clones of ALTO/PAGE sets")
    torch.manual_seed(settings.seed)
    network = LineNet()
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    state: dict[str, Any] = {"steps": 0, "best_loss": None, "minutes": 0.0}
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        network.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        state = saved["state"]
        log({"event": "resumed", **state})
    by_source: dict[str, list[SegmentPage]] = {}
    for page in pages:
        by_source.setdefault(page.source, []).append(page)
    sources = sorted(by_source)
    held_out = _fixed_crops(validation, settings.crop)
    started = time.monotonic() - 60 * state["minutes"]
    while time.monotonic() - started < 60 * settings.minutes and state["steps"] < (settings.max_steps or math.inf):
        rng = random.Random(settings.seed * 1_000_003 + state["steps"])
        crops = [
            random_crop(rng.choice(by_source[rng.choice(sources)]), settings.crop, rng)
            for _ in range(settings.batch_size)
        ]
        images, targets = to_tensors(crops)
        network.train()
        loss = segment_loss(network(images), targets)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        optimiser.step()
        state["steps"] += 1
        if state["steps"] % 10 == 0:
            log({"event": "segment_progress", "step": state["steps"], "loss": round(float(loss.detach()), 4)})
        if state["steps"] % settings.checkpoint_every == 0:
            state["minutes"] = (time.monotonic() - started) / 60
            _checkpoint(network, optimiser, state, held_out, out, log)
    state["minutes"] = (time.monotonic() - started) / 60
    _checkpoint(network, optimiser, state, held_out, out, log)
    return state


def _fixed_crops(pages: list[SegmentPage], crop: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Validation crops, the same at every check: one per page, drawn once with a fixed seed."""
    rng = random.Random(0)
    return [to_tensors([random_crop(page, crop, rng)]) for page in pages]


def _checkpoint(
    network: LineNet,
    optimiser: torch.optim.Optimizer,
    state: dict[str, Any],
    held_out: list[tuple[torch.Tensor, torch.Tensor]],
    out: Path,
    log: Progress,
) -> None:
    network.eval()
    with torch.inference_mode():
        loss = (
            float(np.mean([float(segment_loss(network(images), targets)) for images, targets in held_out]))
            if held_out
            else float("nan")
        )
    improved = (
        not held_out or state["best_loss"] is None or loss < state["best_loss"]
    )  # without validation pages, the latest
    if improved:
        state["best_loss"] = loss
        save_linenet(network, out / "model", {"steps": state["steps"], "validation_loss": round(loss, 4)})
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "checkpoint.pt.part"
    torch.save({"model": network.state_dict(), "optimiser": optimiser.state_dict(), "state": state}, partial)
    partial.replace(out / "checkpoint.pt")
    log({"event": "segment_checkpoint", "step": state["steps"], "validation_loss": round(loss, 4), "best": improved})
    with (out / "train.jsonl").open("a") as journal:
        journal.write(
            json.dumps({"step": state["steps"], "validation_loss": loss, "minutes": round(state["minutes"], 2)}) + "\n"
        )
