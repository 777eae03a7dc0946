"""Where a processed page's pixels came from: 3×3 affine matrices, composed step by step, inverted once.

A step that moves pixels (resize, deskew, crop, orientation) reports the matrix
taking a point of its input to its output; the Pipeline multiplies them and maps
every polygon, baseline and word box of the page back through the inverse, so
results are in the original image's pixels — the image a viewer shows, which is
what a searchable PDF, ALTO and PAGE are drawn over.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Affine = npt.NDArray[np.float64]
Point = tuple[int, int]


def identity() -> Affine:
    return np.eye(3, dtype=np.float64)


def scaling(factor_x: float, factor_y: float) -> Affine:
    return np.array([[factor_x, 0.0, 0.0], [0.0, factor_y, 0.0], [0.0, 0.0, 1.0]])


def translation(dx: float, dy: float) -> Affine:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def from_cv2(matrix: npt.NDArray[np.float64]) -> Affine:
    """OpenCV's 2×3 warpAffine matrix as a 3×3 one."""
    return np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])


def quarter_turn(width: int, height: int, degrees_clockwise: int) -> Affine:
    """The matrix of np.rot90-style turns of a width×height image by 0, 90, 180 or 270 degrees clockwise."""
    turns = (degrees_clockwise // 90) % 4
    if turns == 0:
        return identity()
    if turns == 1:  # (x, y) → (H-1-y, x)
        return np.array([[0.0, -1.0, height - 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    if turns == 2:  # (x, y) → (W-1-x, H-1-y)
        return np.array([[-1.0, 0.0, width - 1.0], [0.0, -1.0, height - 1.0], [0.0, 0.0, 1.0]])
    return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, width - 1.0], [0.0, 0.0, 1.0]])  # 270: (x, y) → (y, W-1-x)


def map_points(matrix: Affine, points: Sequence[tuple[float, float]], width: int, height: int) -> tuple[Point, ...]:
    """Points through `matrix`, rounded and kept inside a width×height image."""
    if not points:
        return ()
    array = np.asarray(points, dtype=np.float64)
    mapped = array @ matrix[:2, :2].T + matrix[:2, 2]
    xs = np.clip(np.round(mapped[:, 0]), 0, max(0, width - 1)).astype(int)
    ys = np.clip(np.round(mapped[:, 1]), 0, max(0, height - 1)).astype(int)
    return tuple(zip(xs.tolist(), ys.tolist(), strict=True))


def is_identity(matrix: Affine) -> bool:
    return bool(np.allclose(matrix, np.eye(3)))
