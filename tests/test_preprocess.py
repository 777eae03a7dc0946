"""Each preprocessing step changes the page the way its docstring says."""

from __future__ import annotations

import numpy as np
import pytest

from hwdaemon.builtins.steps import estimate_skew_degrees, ink_mask, rotate
from hwdaemon.config import PieceConfig
from hwdaemon.pipeline.stages import PieceContext, Step
from hwdaemon.plugins import Registry
from rendering import render_lines

TEXT = [
    "Dear Anna, thank you for the letter",
    "and the photographs of the garden.",
    "We arrive on Friday by the late train",
    "with love from all of us",
]


def build(registry: Registry, spec: str | dict[str, object]) -> Step:
    step: Step = registry.create("step", PieceConfig.model_validate(spec), PieceContext())
    return step


@pytest.fixture(scope="module")
def page() -> np.ndarray:
    return render_lines(TEXT, font_size=36)


def test_grayscale_turns_rgb_into_one_channel(registry: Registry, page: np.ndarray) -> None:
    rgb = np.dstack([page, page, page])
    assert build(registry, "grayscale").apply(rgb).shape == page.shape


def test_resize_max_side_shrinks_and_keeps_aspect(registry: Registry, page: np.ndarray) -> None:
    resized = build(registry, {"type": "resize", "max_side": 400}).apply(page)
    assert max(resized.shape) == 400
    assert resized.shape[0] / resized.shape[1] == pytest.approx(page.shape[0] / page.shape[1], rel=0.02)


def test_denoise_median_removes_salt_and_pepper(registry: Registry, page: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    noisy = page.copy()
    noisy[rng.random(page.shape) < 0.02] = 0
    cleaned = build(registry, {"type": "denoise", "method": "median", "strength": 3}).apply(noisy)
    assert np.abs(cleaned.astype(int) - page).mean() < np.abs(noisy.astype(int) - page).mean() / 2


def test_clahe_raises_contrast_of_faint_writing(registry: Registry, page: np.ndarray) -> None:
    faint = (200 + page.astype(np.float64) * 55 / 255).astype(np.uint8)  # ink at 200, paper at 255
    enhanced = build(registry, {"type": "clahe", "clip_limit": 4.0}).apply(faint)
    ink = ink_mask(page) > 0

    def contrast(image: np.ndarray) -> float:
        return float(image[~ink].mean() - image[ink].mean())

    assert contrast(enhanced) > contrast(faint) * 1.3


def test_normalize_background_flattens_a_shadow(registry: Registry, page: np.ndarray) -> None:
    gradient = np.linspace(0.55, 1.0, page.shape[1])[None, :]
    shadowed = (page * gradient).astype(np.uint8)
    flat = build(registry, "normalize_background").apply(shadowed)
    paper = flat[ink_mask(page) == 0]
    assert paper.std() < shadowed[ink_mask(page) == 0].std() / 4


@pytest.mark.parametrize("method", ["otsu", "adaptive", "sauvola"])
def test_threshold_gives_black_ink_on_white(registry: Registry, page: np.ndarray, method: str) -> None:
    binary = build(registry, {"type": "threshold", "method": method}).apply(page)
    assert set(np.unique(binary)) <= {0, 255}
    ink = ink_mask(page) > 0
    assert (binary[ink] == 0).mean() > 0.8 and (binary[~ink] == 255).mean() > 0.95


@pytest.mark.parametrize("angle", [-6.0, -2.5, 3.0, 7.0])
def test_deskew_levels_a_rotated_page_within_one_degree(registry: Registry, page: np.ndarray, angle: float) -> None:
    skewed = rotate(page, angle)
    assert estimate_skew_degrees(skewed, 10, 0.25) == pytest.approx(-angle, abs=1.0)
    levelled = build(registry, "deskew").apply(skewed)
    assert abs(estimate_skew_degrees(levelled, 10, 0.25)) <= 1.0


def test_crop_border_removes_scanner_edge_and_empty_paper(registry: Registry, page: np.ndarray) -> None:
    framed = np.full((page.shape[0] + 400, page.shape[1] + 400), 255, np.uint8)
    framed[200:-200, 200:-200] = page
    framed[:, :15] = 0  # dark scanner edge
    cropped = build(registry, {"type": "crop_border", "margin": 10}).apply(framed)
    assert cropped.shape[0] < page.shape[0] and cropped.shape[1] < page.shape[1]
    assert cropped[:, :5].min() > 100  # the black edge is gone


def test_auto_invert_makes_white_on_black_dark_on_light(registry: Registry, page: np.ndarray) -> None:
    assert np.array_equal(build(registry, "auto_invert").apply(255 - page), page)
    assert np.array_equal(build(registry, "auto_invert").apply(page), page)
