"""The `linenet` detector: the learnt line segmenter (training/linenet_network.py) on pages, its cores turned into line boxes.

The network is read from its ONNX copy through ONNX Runtime (pipeline/onnx_runtime.py), opened
when first needed, not when plugins are listed: `hwdaemon worker` must not start its
threads before it forks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from pydantic import Field

from hwdaemon.builtins.detectors.ink import width_weighted_median
from hwdaemon.builtins.detectors.reading_order import reading_regions
from hwdaemon.builtins.detectors.rules import LinesDetector, LinesOptions
from hwdaemon.builtins.steps import as_gray
from hwdaemon.hookspecs import hookimpl
from hwdaemon.model import Box, Image, Point
from hwdaemon.modelfolder import LINENET, LINENET_SIDE
from hwdaemon.pipeline import onnx_runtime
from hwdaemon.pipeline.stages import Detector

if TYPE_CHECKING:
    import onnxruntime

STRIP, MARGIN = 256, 64  # rows computed per pass, and rows of context either side (multiples of 16)
SHIPPED_LINENET = Path(__file__).resolve().parents[2] / "models" / "linenet"
PAGE_MIN_SIDE = 820  # smaller images would be enlarged past the 1.25× of training's scale jitter: they, and strips three times wider than tall, go to `lines`


class LineNetOptions(LinesOptions):
    model_dir: Path | None = Field(
        default=None,
        description="linenet.onnx + model.json as `hwdaemon train-segmenter` writes them; default: the shipped model",
    )
    threshold: float = Field(
        default=0.5, gt=0, lt=1, description="core probability above which a pixel is part of a line"
    )


class LineNetDetector(Detector[LineNetOptions]):
    """The learnt segmenter on pages; line and word crops go to `lines`, whose rules suit one line.

    Each connected core is a line; its box reaches half a core's height above and
    below the core (the polygon's own extent) plus `padding_factor` core heights.
    """

    name = "linenet"
    Options = LineNetOptions

    def check_ready(self) -> None:
        LINENET.check_readable(self.model_dir(), _write_onnx_copy)

    def load(self) -> None:
        self._network()

    def model_dir(self) -> Path:
        configured = self.options.model_dir
        return configured.resolve() if configured is not None else SHIPPED_LINENET

    def _network(self) -> onnxruntime.InferenceSession:
        folder = self.model_dir()
        return _cached_network(folder, (folder / LINENET.onnx_file).stat().st_mtime_ns)

    def detect(self, image: Image) -> list[Box]:
        options = self.options
        gray = as_gray(image)
        height, width = gray.shape
        if max(height, width) < PAGE_MIN_SIDE or width >= 3 * height:
            return LinesDetector(options, self.context).detect(gray)
        probabilities, scale = core_probabilities(self._network(), gray)
        cores = (probabilities > options.threshold).astype(np.uint8) * 255
        return [_scale_box(box, scale, width, height) for box in lines_from_cores(cores, options.padding_factor)]


@dataclass(slots=True)
class _Core:
    """A line's core, or a piece of one, on the shrunk page: its box, mean height (a sloping line's box is taller) and connected components."""

    left: int
    top: int
    right: int
    bottom: int
    height: float
    components: list[int] = field(default_factory=list)

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2

    def absorb(self, other: _Core) -> None:
        width, other_width = self.right - self.left, other.right - other.left
        self.height = (self.height * width + other.height * other_width) / max(1, width + other_width)
        self.left, self.top = min(self.left, other.left), min(self.top, other.top)
        self.right, self.bottom = max(self.right, other.right), max(self.bottom, other.bottom)
        self.components += other.components


SAME_LINE_GAP = 8.0  # pieces of one core further apart than this many core heights are two lines
SAME_LINE_DRIFT = 0.8  # nor are pieces whose middles differ by more core heights (lines are two or more apart)


def lines_from_cores(cores: Image, padding_factor: float) -> list[Box]:
    """Core mask (255 = core) → line boxes on the same scale, in reading order (block after block, top to bottom).

    Pieces a few letters wide within a longer line's reach (a capital, a tall loop the
    network marked apart) join that line first, and specks are dropped; a short line on
    its own is kept. Then pieces level with each other and close are joined: the
    network's core of a line may break at a wide word gap or a blot.
    Each box carries its line's outline: its share of the page between the lines above and
    below, which the recognizer reads on clean paper (pipeline/crops.py), as it was trained.
    """
    _, components, stats, _ = cv2.connectedComponentsWithStats(cores, connectivity=8)
    pieces = [
        _Core(left, top, left + width, top + height, area / width, [number])
        for number, (left, top, width, height, area) in enumerate((tuple(int(value) for value in row) for row in stats[1:]), start=1)
        if area / width >= 2
    ]  # fmt: skip
    if not pieces:
        return []
    typical = _typical_height(pieces)
    regions = reading_regions(cores) or [(0, 0, cores.shape[1], cores.shape[0])]
    lines = _join_level_pieces(_attach_fragments(pieces, typical), typical)
    ordered = sorted(lines, key=lambda core: (_region_of(core, regions), core.middle, core.left))
    shares = _shares(components, ordered)
    boxes = []
    for number, core in enumerate(ordered, start=1):  # a line written larger than the page's others reaches further
        reach = max(core.height, typical) * (0.5 + padding_factor)
        box = Box(core.left, round(core.top - reach), core.right - core.left, round(core.bottom - core.top + 2 * reach))
        boxes.append(replace(box, outline=_outline(shares, number, box), baseline=_baseline(components, core)))
    return boxes


def _baseline(components: np.ndarray, core: _Core) -> tuple[Point, Point]:
    """The straight line fitted through the foot of the core, column by column, from its left end to its right.

    The core is the middle half of the written line, so its foot runs along the
    letters' baseline; a least-squares fit rides over the odd loop dipping below.
    """
    window = np.isin(components[core.top : core.bottom, core.left : core.right], core.components)
    columns = np.flatnonzero(window.any(axis=0))
    if columns.size < 2:
        return ((core.left, core.bottom), (core.right, core.bottom))
    feet = window.shape[0] - 1 - np.argmax(window[::-1, columns], axis=0)
    slope, offset = np.polyfit(columns.astype(np.float64), feet.astype(np.float64), 1)
    width = core.right - core.left
    return ((core.left, round(core.top + offset)), (core.right, round(core.top + offset + slope * width)))


def _shares(components: np.ndarray, lines: list[_Core]) -> np.ndarray:
    """Each pixel's line (1-based): the line whose cores are nearest, so the space between two lines is split halfway."""
    line_of = np.zeros(int(components.max()) + 1, dtype=np.int32)
    for number, core in enumerate(lines, start=1):
        line_of[core.components] = number
    owners = line_of[components]
    marked = owners > 0
    _, nearest = cv2.distanceTransformWithLabels(
        (~marked).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    owner_of_label = np.zeros(int(nearest.max()) + 1, dtype=np.int32)
    owner_of_label[nearest[marked]] = owners[marked]
    return owner_of_label[nearest]


def _outline(shares: np.ndarray, number: int, box: Box) -> tuple[Point, ...]:
    """The line's share of the page within its box, as a polygon (the largest piece: a box can cut a share in two)."""
    left, top = max(0, box.x), max(0, box.y)
    right, bottom = min(shares.shape[1], box.x + box.width), min(shares.shape[0], box.y + box.height)
    mine = (shares[top:bottom, left:right] == number).astype(np.uint8)
    contours, _ = cv2.findContours(mine, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return ()
    polygon = cv2.approxPolyDP(max(contours, key=cv2.contourArea), 1.0, True).reshape(-1, 2)
    return tuple((int(x) + left, int(y) + top) for x, y in polygon)


def _typical_height(pieces: list[_Core]) -> float:
    """The page's core height: the median over pieces, each counted by its width, so long lines speak for the page."""
    return width_weighted_median([core.height for core in pieces], [core.right - core.left for core in pieces])


def _join_level_pieces(pieces: list[_Core], typical: float) -> list[_Core]:
    joined: list[_Core] = []
    for piece in sorted(pieces, key=lambda core: core.left):
        partner = next(
            (
                line
                for line in joined
                if abs(line.middle - piece.middle) <= SAME_LINE_DRIFT * typical
                and piece.left - line.right <= SAME_LINE_GAP * typical
            ),
            None,
        )
        if partner is None:
            joined.append(piece)
        else:
            partner.absorb(piece)
    return joined


def _attach_fragments(cores: list[_Core], typical: float) -> list[_Core]:
    """Drop specks smaller than a letter; a piece narrower than three letters within a longer line's reach joins it.

    Such a piece is a capital or a loop the network marked apart from its line: the line
    takes its width (never its height, which would reach into the next line). Out of
    reach, it is a short line if its core is about as high as the page's, else a loop: dropped.
    """
    lines = [core for core in cores if core.right - core.left >= 3 * typical]
    kept = list(lines)
    for piece in (core for core in cores if core.right - core.left < 3 * typical):
        if (piece.right - piece.left) * piece.height < typical * typical:
            continue
        near = [
            line for line in lines
            if line.top - 1.5 * typical <= piece.middle <= line.bottom + 1.5 * typical
            and max(line.left - piece.right, piece.left - line.right) <= 2 * typical
        ]  # fmt: skip
        if not near:
            if piece.height >= 0.75 * typical:
                kept.append(piece)  # a short line of its own; lower, it is a loop between lines
            continue
        line = min(near, key=lambda line: abs(line.middle - piece.middle))
        line.left, line.right = min(line.left, piece.left), max(line.right, piece.right)
        line.components += piece.components
    return kept


def _region_of(core: _Core, regions: list[tuple[int, int, int, int]]) -> int:
    x, y = (core.left + core.right) / 2, core.middle
    return next(
        (
            index
            for index, (left, top, right, bottom) in enumerate(regions)
            if left <= x <= right and top <= y <= bottom
        ),
        len(regions),
    )


def _scale_box(box: Box, scale: float, width: int, height: int) -> Box:
    """A box and its outline on the shrunk page → page pixels, clipped to the page."""
    left, top = max(0, int(box.x / scale)), max(0, int(box.y / scale))
    right, bottom = (
        min(width, int(np.ceil((box.x + box.width) / scale))),
        min(height, int(np.ceil((box.y + box.height) / scale))),
    )
    outline = tuple(
        (min(right, max(left, round(x / scale))), min(bottom, max(top, round(y / scale)))) for x, y in box.outline
    )
    baseline = tuple(
        (min(right, max(left, round(x / scale))), min(bottom, max(top, round(y / scale)))) for x, y in box.baseline
    )
    return Box(left, top, right - left, bottom - top, outline, baseline)


def to_network_input(pixels: np.ndarray) -> np.ndarray:
    """Grey pixels (0–255, any leading shape) → float32 in [-1, 1], for training and reading alike."""
    return pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def shrink(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The page with its longer side at LINENET_SIDE pixels, and the factor it was shrunk by."""
    scale = LINENET_SIDE / max(gray.shape)
    height, width = (max(16, round(size * scale)) for size in gray.shape)
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR), scale


def core_probabilities(network: onnxruntime.InferenceSession, gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-pixel probability of a line's core on the shrunk page, and the shrink factor.

    The page goes through in bands of STRIP rows, each with MARGIN rows of context above
    and below that are computed and dropped: a whole page at once would hold about 280 MB
    of activations, a band under 100 MB, for a third more arithmetic.
    """
    small, scale = shrink(gray)
    height, width = small.shape
    padded_width = -(-width // 16) * 16
    probabilities = np.empty((height, width), dtype=np.float32)
    for start in range(0, height, STRIP):
        top, bottom = max(0, start - MARGIN), min(height, start + STRIP + MARGIN)
        band = np.full((-(-(bottom - top) // 16) * 16, padded_width), 255, dtype=np.uint8)
        band[: bottom - top, :width] = small[top:bottom]
        stop = min(height, start + STRIP)
        probabilities[start:stop] = onnx_runtime.run(network, to_network_input(band)[None, None])[
            0, 0, start - top : stop - top, :width
        ]
    return probabilities, scale


def _write_onnx_copy(folder: Path) -> None:
    from hwdaemon.training.linenet_network import write_onnx_copy  # imports torch, once per such segmenter

    write_onnx_copy(folder)


@functools.lru_cache(maxsize=2)
def _cached_network(folder: Path, onnx_mtime_ns: int) -> onnxruntime.InferenceSession:
    """One session per model folder and file version: every pipeline shares it, a retrained file is reloaded."""
    return onnx_runtime.open_session(folder / LINENET.onnx_file)


@hookimpl
def hwdaemon_register_detectors() -> list[type[Detector[Any]]]:
    return [LineNetDetector]
